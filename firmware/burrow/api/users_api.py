"""/api/users (admins manage accounts) and /api/tokens (API tokens for automation).

Thin handlers over ``auth`` (burrow.auth.AuthService); every change publishes an audit event (see auth_api.audit)
with a before/after summary that never holds a password, hash, TOTP secret or token.

Tokens: anyone signed in manages their own, except with a read-scoped token (it only reads,
so it lists its owner's tokens and nothing more); an admin session or admin-scoped token also
sees (``?all=true``) and revokes everyone's. A token can never be minted with more power than
its creator holds right now: a viewer gets 403 for scope "admin".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..auth.errors import NotFoundError
from ..auth.service import USERNAME_PATTERN
from .auth_api import NO_STORE, USER_EXAMPLE, User, audit, user_summary
from .errors import ApiError
from .routes import Api
from .schema import NO_CONTROLS, Bool, Int, List, Num, Obj, Query, Str

if TYPE_CHECKING:
    from ..auth import AuthService
    from ..telemetry.events import EventBus

UserList = Obj("UserList", {"users": List(User, max_items=1000), "total": Int()},
               example={"users": [USER_EXAMPLE], "total": 1})

UserCreate = Obj("UserCreate", {
    "username": Str(min_len=1, max_len=64, pattern=USERNAME_PATTERN, hint="a user name (letters, digits, . _ @ -)",
                    description="1-64 letters, digits or . _ @ -, starting with a letter or digit"),
    "password": Str(min_len=1, max_len=1024, strip=False),
    "role": Str(enum=["admin", "viewer"], default="viewer"),
}, example={"username": "vera", "password": "Viewer-pass-2024", "role": "viewer"})

UserUpdate = Obj("UserUpdate", {
    "role": Str(required=False, enum=["admin", "viewer"]),
    "password": Str(required=False, min_len=1, max_len=1024, strip=False,
                    description="a new password; signs the user out everywhere"),
    "disabled": Bool(required=False, description="true signs the user out and refuses logins"),
}, min_fields=1, example={"role": "admin"})

Deleted = Obj("Deleted", {"status": Str(enum=["deleted", "revoked"]), "id": Int()},
              example={"status": "deleted", "id": 2})

_TOKEN_FIELDS = {
    "id": Int(), "user_id": Int(), "name": Str(max_len=64), "scope": Str(enum=["read", "admin"]),
    "created_at": Num(description="unix seconds"),
    "last_used_at": Num(nullable=True, description="unix seconds (to the minute); null if never"),
    "prefix": Str(max_len=16, description="the first characters, to recognise it"),
}
TOKEN_EXAMPLE = {"id": 3, "user_id": 1, "name": "home-assistant", "scope": "read",
                 "created_at": 1763807400.0, "last_used_at": None, "prefix": "brw_Qx7a"}

ApiToken = Obj("ApiToken", dict(_TOKEN_FIELDS), example=TOKEN_EXAMPLE)
TokenList = Obj("ApiTokenList", {"tokens": List(ApiToken, max_items=10_000)},
                example={"tokens": [TOKEN_EXAMPLE]})
NewToken = Obj("NewApiToken", {
    "token": Str(max_len=128, description="the secret: shown only in this answer"),
    **_TOKEN_FIELDS,
}, example={"token": "brw_Qx7a0M2n4JqS8d1Vf3kLr6TyUe9WpZcB5hNg7XoIiA", **TOKEN_EXAMPLE})
TokenCreate = Obj("ApiTokenCreate", {
    "name": Str(min_len=1, max_len=64, pattern=NO_CONTROLS, hint="text without control characters", description="unique per user, 1-64 printable characters"),
    "scope": Str(enum=["read", "admin"], default="read"),
}, example={"name": "home-assistant", "scope": "read"})
TokenQuery = Query({"all": Bool(required=False, default=False,
                                description="admins: every user's tokens")})


def _token_summary(token: dict) -> dict:
    return {"id": token["id"], "name": token["name"], "scope": token["scope"],
            "user_id": token["user_id"]}


def register(api: Api, *, auth: AuthService, events: EventBus) -> None:
    # ---- users (admin only) ------------------------------------------------------------------

    @api.route("GET", "/api/users", role="admin", summary="List users", tags=["users"],
               responses={200: UserList})
    async def list_users(req):
        users = auth.list_users()
        return {"users": users, "total": len(users)}

    @api.route("POST", "/api/users", role="admin", status=201, summary="Create a user",
               tags=["users"], body=UserCreate,
               responses={201: User, 409: "the name is taken, or the user limit is reached"})
    async def create_user(req):
        b = req.g.body
        user = await auth.create_user_async(b["username"], b["password"], b["role"],
                                                client_ip=req.g.client_ip)
        audit(events, req, "user.created", f"user {user['username']!r} created ({user['role']})",
              before=None, after=user_summary(user))
        return user, 201

    @api.route("GET", "/api/users/<int:user_id>", role="admin", summary="One user",
               tags=["users"], responses={200: User, 404: "no such user"})
    async def get_user(req, user_id):
        user = auth.get_user(user_id)
        if user is None:
            raise NotFoundError("no such user")
        return user

    @api.route("PUT", "/api/users/<int:user_id>", role="admin",
               summary="Change a user's role, password or disabled flag", tags=["users"],
               body=UserUpdate, responses={200: User, 404: "no such user",
                                           409: "the last enabled admin would be lost"})
    async def update_user(req, user_id):
        b = req.g.body
        before = auth.get_user(user_id)
        if before is None:
            raise NotFoundError("no such user")
        user = await auth.update_user_async(user_id, role=b.get("role"),
                                                password=b.get("password"),
                                                disabled=b.get("disabled"),
                                                client_ip=req.g.client_ip)
        audit(events, req, "user.updated", f"user {user['username']!r} updated ({', '.join(b)})",
              before=user_summary(before), after=user_summary(user), changed=sorted(b))
        return user

    @api.route("DELETE", "/api/users/<int:user_id>", role="admin", summary="Delete a user",
               tags=["users"], responses={200: Deleted, 404: "no such user",
                                          409: "the last enabled admin cannot be deleted"})
    async def delete_user(req, user_id):
        before = auth.get_user(user_id)
        if before is None:
            raise NotFoundError("no such user")
        auth.delete_user(user_id)
        audit(events, req, "user.deleted", f"user {before['username']!r} deleted",
              before=user_summary(before), after=None)
        return {"status": "deleted", "id": user_id}

    # ---- API tokens (own; admins also everyone's) --------------------------------------------

    @api.route("GET", "/api/tokens", role="self", summary="List API tokens (never the secrets)",
               tags=["tokens"], query=TokenQuery,
               responses={200: TokenList, 403: "?all=true without an admin session or admin-scoped token"})
    async def list_tokens(req):
        principal = req.g.principal
        if req.g.query.get("all"):
            if not principal.can_write:  # admin reads need admin scope too (not a read token)
                raise ApiError(403, "only admins may list everyone's tokens", error="forbidden")
            return {"tokens": auth.list_api_tokens()}
        return {"tokens": auth.list_api_tokens(principal.user_id)}

    @api.route("POST", "/api/tokens", role="self", status=201,
               summary="Create an API token (the secret is shown once)", tags=["tokens"],
               body=TokenCreate, responses={201: NewToken, 409: "the name is taken, or the token limit is reached"})
    async def create_token(req):
        principal = req.g.principal
        b = req.g.body
        if b["scope"] == "admin" and not principal.can_write:
            raise ApiError(403, "an admin-scoped token needs an admin session "
                                "(or an admin-scoped token)", error="forbidden")
        plaintext, meta = auth.create_api_token(principal.user_id, b["name"], b["scope"])
        audit(events, req, "token.created", f"API token {meta['name']!r} ({meta['scope']}) created",
              before=None, after=_token_summary(meta))
        return {"token": plaintext, **meta}, 201, NO_STORE

    @api.route("DELETE", "/api/tokens/<int:token_id>", role="self",
               summary="Revoke an API token (own; admins: any)", tags=["tokens"],
               responses={200: Deleted, 404: "no such token"})
    async def revoke_token(req, token_id):
        principal = req.g.principal
        if principal.can_write:
            candidates = auth.list_api_tokens()
            owner = None
        else:
            candidates = auth.list_api_tokens(principal.user_id)
            owner = principal.user_id
        before = next((t for t in candidates if t["id"] == token_id), None)
        auth.revoke_api_token(token_id, user_id=owner)  # NotFoundError → 404
        audit(events, req, "token.revoked",
              f"API token {before['name']!r} revoked" if before else "API token revoked",
              before=_token_summary(before) if before else {"id": token_id}, after=None)
        return {"status": "revoked", "id": token_id}
