"""Stand-ins shared by the API unit tests: a principal and an auth service keyed by credentials."""

from __future__ import annotations

from dataclasses import dataclass

from burrow.api.errors import ApiError


@dataclass(frozen=True)
class FakePrincipal:
    """What burrow.auth.Principal offers the API layer."""

    username: str
    role: str
    scope: str = "admin"  # "read" for read-scoped tokens
    via: str = "jwt"
    user_id: int = 1

    @property
    def can_write(self) -> bool:
        return self.role == "admin" and self.scope == "admin"

    @property
    def read_only(self) -> bool:
        return self.via == "token" and self.scope != "admin"


VIEWER = FakePrincipal("vera", "viewer", "read")
ADMIN = FakePrincipal("ada", "admin")


class FakeAuth:
    """``authenticate(header, cookie)`` as AuthService does: known credentials give their
    principal, none give None, anything else is a 401."""

    def __init__(self, headers: dict, cookies: dict | None = None):
        self.headers = headers
        self.cookies = cookies or {}

    def authenticate(self, header, cookie):
        if header:
            if header in self.headers:
                return self.headers[header]
            raise ApiError(401, "bad credentials", error="unauthorized")
        if cookie:
            if cookie in self.cookies:
                return self.cookies[cookie]
            raise ApiError(401, "bad credentials", error="unauthorized")
        return None
