"""Value objects handed to the API layer: who is calling (Principal) and what a login returns
(TokenPair)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("admin", "viewer")
SCOPES = ("admin", "read")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``role`` is the user's current role (read from the database on every request, so a
    demotion takes effect at once); ``via`` says how they authenticated: "jwt" (Bearer access
    token), "cookie" (the same token from the browser cookie — state-changing requests then need
    the CSRF check) or "token" (an API token). ``scope`` is "admin" for sessions of admins and
    for admin-scoped API tokens, otherwise "read". ``session_id`` is set for jwt/cookie,
    ``token_id`` for API tokens.
    """

    user_id: int
    username: str
    role: str
    via: str
    scope: str
    session_id: str | None = None
    token_id: int | None = None

    @property
    def can_write(self) -> bool:
        """True if this caller may change things: an admin, not limited to a read scope."""
        return self.role == "admin" and self.scope == "admin"

    @property
    def read_only(self) -> bool:
        """True for a read-scoped API token: it reads and nothing else, its own account
        included (no minting or revoking tokens, no password or 2FA change), so a leaked one
        cannot outlive its revocation. There is deliberately no unscoped "is admin" test: an
        admin's read token has a viewer's reach (admin reads, such as every user's tokens,
        need ``can_write``). The route wrapper applies both checks to every route."""
        return self.via == "token" and self.scope != "admin"


@dataclass
class TokenPair:
    """What login and refresh return. ``as_response()`` is the exact JSON body scripts rely on;
    ``session_id`` and ``user`` (public dict) are for the API layer (cookie, audit, /me)."""

    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    user: dict[str, Any] = field(default_factory=dict)
    token_type: str = "bearer"
    # How long the session (its refresh token) lives without use, and whether the browser should
    # keep its cookies past closing ("stay signed in on this device"); not in the JSON body.
    session_ttl: int = 0
    persistent: bool = True

    def as_response(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "token_type": self.token_type, "expires_in": self.expires_in}
