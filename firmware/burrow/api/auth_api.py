"""/api/auth: first-run setup, login, refresh, logout, who am I, own password and own 2FA.

Thin handlers over ``auth`` (burrow.auth.AuthService): validate → call → serialize. The
service raises errors carrying ``status``/``error``, which the route wrapper maps to the one
error shape (401 "totp_required", 429 with Retry-After for a lockout ("locked_out") or a full
password queue ("busy"), 409, 400 naming a field). Every password check runs through the
service's password pool and, where it checks an existing password or code, its lockout.

Browser sessions: ``POST /api/auth/login?cookie=true`` also sets the access token in an
HttpOnly, SameSite=Strict cookie (``burrow_session``) and a random CSRF token in a readable
SameSite=Strict cookie (``burrow_csrf``); the page echoes that in ``X-CSRF-Token`` on every
state-changing request (the route wrapper enforces it for cookie sessions).

Account-security changes (own password, 2FA) need a signed-in session: an API token — perhaps
a read-only one on a script — must not be able to lock its owner out by enrolling 2FA or
changing the password.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING

from ..auth.errors import AuthError, InvalidInputError, WeakPasswordError
from ..auth.service import USERNAME_PATTERN
from microdot import Response

from .errors import ApiError
from .openapi import Media
from .routes import CSRF_COOKIE, SESSION_COOKIE, Api
from .schema import Bool, Field, Int, List, Num, Obj, Query, Str

if TYPE_CHECKING:
    from ..auth import AuthService
    from ..dns.access import AccessControl
    from ..telemetry.events import EventBus

log = logging.getLogger(__name__)

REFRESH_COOKIE = "burrow_refresh"
REFRESH_PATH = "/api/auth/refresh"  # the only place the refresh cookie is ever sent
# Readable by the page, no secret in it: "a refresh cookie was set", so the page tries a renewal
# on load only when there is one to try (the HttpOnly cookie itself it cannot see).
REFRESH_HINT_COOKIE = "burrow_refresh_hint"

NO_STORE = {"Cache-Control": "no-store"}  # token-bearing answers must not be cached (RFC 6749)


class Code(Field):
    """A TOTP code or recovery code: a string ("123 456", "abcde-fgh23") or a 6-digit number
    (scripts send ``{"totp": 123456}``); numbers become zero-padded strings."""

    type_name = "string"

    def __init__(self, *, max_len: int = 64, **kw):
        super().__init__(**kw)
        self.max_len = max_len

    def convert(self, value):
        if isinstance(value, float) and value.is_integer():  # JSON Schema: 123456.0 is an integer
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= 999_999:
                raise ValueError("must be a 6-digit code")
            return f"{value:06d}"
        if not isinstance(value, str):
            raise ValueError("must be a string")
        value = value.strip()
        if len(value) > self.max_len:
            raise ValueError(f"at most {self.max_len} characters")
        return value

    def _schema(self):
        return {"anyOf": [{"type": "string", "maxLength": self.max_len},
                          {"type": "integer", "minimum": 0, "maximum": 999_999}]}


# ---- schemas ---------------------------------------------------------------------------------

USER_EXAMPLE = {"id": 1, "username": "admin", "role": "admin", "disabled": False,
                "totp_enabled": False, "created_at": 1763807400.0, "last_login_at": None}


def user_fields() -> dict:
    return {
        "id": Int(), "username": Str(max_len=64), "role": Str(enum=["admin", "viewer"]),
        "disabled": Bool(), "totp_enabled": Bool(description="2FA is on"),
        "created_at": Num(description="unix seconds"),
        "last_login_at": Num(nullable=True, description="unix seconds; null if never"),
    }


User = Obj("User", user_fields(), example=USER_EXAMPLE)

SetupRequest = Obj("SetupRequest", {
    "username": Str(min_len=1, max_len=64, pattern=USERNAME_PATTERN, hint="a user name (letters, digits, . _ @ -)", example="admin"),
    "password": Str(min_len=1, max_len=1024, strip=False,
                    description="at least 10 characters; shorter than 14 must mix letters, "
                                "digits or symbols; not a common password"),
    "totp": Code(required=False, description="ignored (enrol 2FA after setup); accepted so "
                                             "setup and login take the same shape"),
}, example={"username": "admin", "password": "correct horse battery"})

LoginRequest = Obj("LoginRequest", {
    "username": Str(min_len=1, max_len=128),
    "password": Str(min_len=1, max_len=1024, strip=False),
    "totp": Code(required=False, description="the 6-digit code, or a recovery code, when the "
                                             "account has 2FA"),
    "remember": Bool(required=False, description="\"stay signed in on this device\": true (or left out) "
                                                 "keeps the session for the server's maximum (remember_seconds "
                                                 "in GET /api/auth/setup) of non-use; false ends it after "
                                                 "session_seconds of non-use, and with ?cookie=true its "
                                                 "cookies end when the browser closes"),
}, example={"username": "admin", "password": "correct horse battery", "totp": "123456"})

LoginQuery = Query({
    "cookie": Bool(required=False, default=False,
                   description="also set the burrow_session (HttpOnly) and burrow_csrf cookies "
                               "for the browser"),
})

TokenPairSchema = Obj("TokenPair", {
    "access_token": Str(max_len=4096, description="JWT (HS256) for Authorization: Bearer"),
    "refresh_token": Str(max_len=4096, description="single use; refresh returns a new one"),
    "token_type": Str(enum=["bearer"]),
    "expires_in": Int(description="seconds the access token is valid"),
}, example={"access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "refresh_token": "q1Vh0ZbqfS2vNwz9c5m3iB7OQ8s1yT4eHqXo6dK2jLw",
            "token_type": "bearer", "expires_in": 900})

RefreshRequest = Obj("RefreshRequest", {
    "refresh_token": Str(min_len=1, max_len=4096, required=False,
                         description="the refresh token; a browser signed in with ?cookie=true may "
                                     "send {} instead: its burrow_refresh cookie is used"),
},
                     example={"refresh_token": "q1Vh0ZbqfS2vNwz9c5m3iB7OQ8s1yT4eHqXo6dK2jLw"})

Me = Obj("Me", {
    **user_fields(),
    "via": Str(enum=["jwt", "cookie", "token"], description="how this request authenticated"),
    "scope": Str(enum=["admin", "read"]),
    "can_write": Bool(description="may call admin routes"),
    "token_id": Int(nullable=True, description="the API token's id when via is token"),
    "recovery_codes_left": Int(description="unused 2FA recovery codes"),
}, example={**USER_EXAMPLE, "via": "jwt", "scope": "admin", "can_write": True,
            "token_id": None, "recovery_codes_left": 0})

SetupState = Obj("SetupState", {
    "required": Bool(description="true while no user exists: POST /api/auth/setup creates the first admin"),
    "remember_seconds": Int(description="how long a session signed in with remember (the default) lives "
                                        "without use: the server's maximum"),
    "session_seconds": Int(description="how long one signed in with remember=false lives without use"),
}, example={"required": False, "remember_seconds": 2592000, "session_seconds": 43200})

Status = Obj("AuthStatus", {"status": Str(), "message": Str(required=False)},
             example={"status": "ok", "message": "signed out"})

PasswordChange = Obj("PasswordChange", {
    "current_password": Str(min_len=1, max_len=1024, strip=False),
    "new_password": Str(min_len=1, max_len=1024, strip=False),
}, example={"current_password": "correct horse battery", "new_password": "battery staple horse"})

TotpEnrolment = Obj("TotpEnrolment", {
    "secret": Str(max_len=128, description="base32; type it in if the QR cannot be scanned"),
    "provisioning_uri": Str(max_len=1024, description="otpauth:// URI"),
    "qr_svg": Str(max_len=1_000_000, description="the URI as an SVG QR code"),
}, example={"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
            "provisioning_uri": "otpauth://totp/Burrow:admin?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
                                "&issuer=Burrow",
            "qr_svg": "<svg xmlns=\"http://www.w3.org/2000/svg\">…</svg>"})

TotpConfirm = Obj("TotpConfirm", {"code": Code(description="the current 6-digit code")},
                  example={"code": "123456"})

RecoveryCodes = Obj("RecoveryCodes", {
    "recovery_codes": List(Str(max_len=32), max_items=64,
                           description="each usable once instead of a code; shown only now"),
}, example={"recovery_codes": ["abcde-fgh23", "k2m4p-q7rst"]})

TotpDisable = Obj("TotpDisable", {
    "code_or_password": Str(min_len=1, max_len=1024, strip=False,
                            description="a current code, an unused recovery code or the password"),
}, example={"code_or_password": "123456"})


# ---- helpers shared with users_api -----------------------------------------------------------

def user_summary(user: dict | None) -> dict | None:
    """What an audit event may say about a user (no secrets, no 2FA details)."""
    if not user:
        return None
    return {"id": user["id"], "username": user["username"], "role": user["role"],
            "disabled": user["disabled"]}


def audit(events: EventBus, req, type_: str, summary: str, *, actor: str | None = None, **data) -> None:
    """Publish an audit event on topic "events": who (the principal, else ``actor``), from
    where, what (``summary``) and ``data`` (before/after, never secrets). Never raises:
    auditing must not undo the change it records."""
    principal = getattr(req.g, "principal", None)
    payload = {"type": type_, "ts": time.time(),
               "actor": getattr(principal, "username", None) or actor,
               "client_ip": getattr(req.g, "client_ip", None), "summary": summary, "data": data}
    try:
        events.publish("events", payload)
    except Exception:
        log.warning("publishing audit event %s failed", type_, exc_info=True)


def require_session(principal) -> None:
    """Refuse API tokens for account-security changes (password, 2FA, sign-out)."""
    if principal.via == "token":
        raise ApiError(403, "sign in with a password for this; API tokens cannot change the "
                            "account's password or 2FA", error="forbidden")


def _cookie(name: str, value: str, *, max_age: int | None, http_only: bool, secure: bool,
            path: str = "/") -> str:
    """One Set-Cookie value; ``max_age`` None makes a browser-session cookie (gone when the
    browser closes)."""
    parts = [f"{name}={value}", f"Path={path}"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if max_age is not None and max_age <= 0:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if http_only:
        parts.append("HttpOnly")
    parts.append("SameSite=Strict")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def session_cookies(auth: AuthService, secure: bool, access_token: str, max_age: int,
                    refresh_token: str | None = None, *, refresh_max_age: int | None = None,
                    persistent: bool = True) -> dict:
    """Set-Cookie headers for a browser session: the token (HttpOnly), a fresh CSRF token the
    page reads and echoes in X-CSRF-Token, and the refresh token (HttpOnly, sent only to
    /api/auth/refresh), so a page opened again after the access token ran out can renew the
    session without the password, for as long as the refresh token lives. ``secure``: over
    HTTPS only (WebSettings.tls). ``refresh_max_age``: the session's lifetime (default the
    server's maximum, auth.refresh_ttl); ``persistent`` False (signed in without "stay signed in
    on this device") makes every cookie a browser-session cookie, gone when the browser closes."""
    keep = max_age if persistent else None
    refresh_keep = (auth.refresh_ttl if refresh_max_age is None else refresh_max_age) if persistent else None
    cookies = [
        _cookie(SESSION_COOKIE, access_token, max_age=keep, http_only=True, secure=secure),
        _cookie(CSRF_COOKIE, secrets.token_urlsafe(32), max_age=keep, http_only=False,
                secure=secure),
    ]
    if refresh_token is not None:
        cookies.append(_cookie(REFRESH_COOKIE, refresh_token, max_age=refresh_keep,
                               http_only=True, secure=secure, path=REFRESH_PATH))
        cookies.append(_cookie(REFRESH_HINT_COOKIE, "1", max_age=refresh_keep,
                               http_only=False, secure=secure))
    return {"Set-Cookie": cookies}


def clear_cookies(secure: bool) -> dict:
    return {"Set-Cookie": [
        _cookie(SESSION_COOKIE, "", max_age=0, http_only=True, secure=secure),
        _cookie(CSRF_COOKIE, "", max_age=0, http_only=False, secure=secure),
        _cookie(REFRESH_COOKIE, "", max_age=0, http_only=True, secure=secure, path=REFRESH_PATH),
        _cookie(REFRESH_HINT_COOKIE, "", max_age=0, http_only=False, secure=secure),
    ]}


def _had_cookie(req) -> bool:
    return bool(req.cookies and any(req.cookies.get(c) for c in (SESSION_COOKIE, CSRF_COOKIE,
                                                                 REFRESH_HINT_COOKIE)))


def _pair_answer(auth: AuthService, secure: bool, req, pair):
    headers = dict(NO_STORE)
    if req.g.query.get("cookie"):
        headers.update(session_cookies(auth, secure, pair.access_token, pair.expires_in, pair.refresh_token,
                                       refresh_max_age=pair.session_ttl or None, persistent=pair.persistent))
    return pair.as_response(), 200, headers


# ---- routes ----------------------------------------------------------------------------------

def register(api: Api, *, auth: AuthService, events: EventBus, acl: AccessControl) -> None:
    """``acl``: who may set up the first admin (access.allowed_networks, as for DNS)."""
    def secure(req) -> bool:
        """Cookies over HTTPS only: while Burrow serves HTTPS (plain HTTP then redirects there, or
        comes from a TLS-terminating proxy on this machine), and on every answer sent over it."""
        return api.settings.tls or getattr(req, "scheme", "http") == "https"

    @api.route("GET", "/api/auth/setup", role="public", tags=["auth"], responses={200: SetupState},
               summary="Whether first-run setup is still open (the admin page shows setup or sign-in)")
    async def setup_state(req):
        return {"required": not auth.has_users(), "remember_seconds": auth.session_ttl(True),
                "session_seconds": auth.session_ttl(False)}

    @api.route("POST", "/api/auth/setup", role="public", auth_limited=True, status=201,
               summary="Create the first admin (first run only, from the local network)",
               tags=["auth"], body=SetupRequest,
               responses={201: User, 403: "not from the allowed local networks", 409: "setup is already done"})
    async def setup(req):
        ip = req.g.client_ip
        if not acl.allowed(ip):
            raise ApiError(403, "setup is only accepted from the allowed local networks",
                           error="forbidden")
        b = req.g.body
        user = await auth.setup_first_admin_async(b["username"], b["password"], client_ip=ip)
        audit(events, req, "auth.setup", f"first admin {user['username']!r} created",
              actor=user["username"], user=user_summary(user))
        return user, 201, NO_STORE

    @api.route("POST", "/api/auth/login", role="public", auth_limited=True,
               summary="Sign in: an access token and a refresh token", tags=["auth"],
               body=LoginRequest, query=LoginQuery,
               responses={200: TokenPairSchema, 401: "wrong name or password, or totp_required"})
    async def login(req):
        b = req.g.body
        pair = await auth.login_async(b["username"], b["password"], b.get("totp"),
                                      req.g.client_ip, remember=b.get("remember"))
        return _pair_answer(auth, secure(req), req, pair)

    @api.route("POST", "/api/auth/refresh", role="public", auth_limited=True,
               summary="Swap a refresh token for a new pair (the old one is spent)",
               tags=["auth"], body=RefreshRequest, query=LoginQuery,
               responses={200: TokenPairSchema, 401: "an invalid, spent, expired or revoked refresh token"})
    async def refresh(req):
        token = req.g.body.get("refresh_token")
        from_cookie = not token
        if from_cookie:
            token = (req.cookies or {}).get(REFRESH_COOKIE)
        if not token:  # what a missing required field answers, as before the cookie existed
            raise ApiError(400, "refresh_token is required (a browser signed in with ?cookie=true "
                                "may send {} and its burrow_refresh cookie)",
                           [{"field": "refresh_token", "message": "required"}])
        try:
            pair = auth.refresh(token)
        except AuthError as e:
            if not from_cookie:
                raise
            # A spent, expired or revoked cookie: drop it, so the page stops offering it.
            raise ApiError(e.status, str(e), error=e.error, headers=clear_cookies(secure(req))) from None
        return _pair_answer(auth, secure(req), req, pair)

    @api.route("POST", "/api/auth/logout", role="self", summary="Sign out: revoke this session",
               tags=["auth"], responses={200: Status, 400: "an API token has no session"})
    async def logout(req):
        principal = req.g.principal
        if principal.session_id is None:
            raise ApiError(400, "an API token has no session; revoke it with "
                                "DELETE /api/tokens/{id}", error="not_a_session")
        auth.logout(principal.session_id)
        headers = clear_cookies(secure(req)) if _had_cookie(req) else None
        return {"status": "ok", "message": "signed out"}, 200, headers

    @api.route("GET", "/api/auth/me", role="viewer", summary="The signed-in user and how",
               tags=["auth"], responses={200: Me})
    async def me(req):
        principal = req.g.principal
        user = auth.get_user(principal.user_id)
        if user is None:
            raise ApiError(401, "the user no longer exists", error="unauthorized")
        left = auth.recovery_codes_left(user["id"]) if user["totp_enabled"] else 0
        return {**user, "via": principal.via, "scope": principal.scope,
                "can_write": principal.can_write, "token_id": principal.token_id,
                "recovery_codes_left": left}

    @api.route("POST", "/api/auth/password", role="self",
               summary="Change your own password (signs out every session)", tags=["auth"],
               body=PasswordChange, responses={200: Status, 400: "wrong current password or a weak new one"})
    async def change_password(req):
        principal = req.g.principal
        require_session(principal)
        b = req.g.body
        try:
            await auth.change_password_async(principal.user_id, b["current_password"],
                                                 b["new_password"], req.g.client_ip)
        except WeakPasswordError as e:
            e.field = "new_password"
            raise
        audit(events, req, "user.password_changed", f"{principal.username} changed their password",
              user_id=principal.user_id)
        headers = clear_cookies(secure(req)) if _had_cookie(req) else None
        return {"status": "ok", "message": "password changed; sign in again"}, 200, headers

    @api.route("POST", "/api/auth/2fa/enrol", role="self",
               summary="Start 2FA: a new TOTP secret, its otpauth URI and a QR code",
               tags=["auth"], responses={200: TotpEnrolment, 409: "2FA is already on"})
    async def totp_enrol(req):
        principal = req.g.principal
        require_session(principal)
        return auth.totp_enrol(principal.user_id), 200, NO_STORE

    @api.route("GET", "/api/auth/2fa/qr.svg", role="self", raw_response=True,
               summary="The pending 2FA enrolment's QR code as an SVG image (for an <img> on the page)",
               tags=["auth"], responses={200: Media("image/svg+xml", "the otpauth URI as a QR code"),
                                         409: "2FA is on already, or no enrolment was started"})
    async def totp_qr(req):
        principal = req.g.principal
        require_session(principal)
        svg = auth.totp_pending_qr(principal.user_id)
        return Response(svg, 200, {"Content-Type": "image/svg+xml; charset=UTF-8", **NO_STORE})

    @api.route("POST", "/api/auth/2fa/confirm", role="self",
               summary="Turn 2FA on with a first code; returns recovery codes (shown once)",
               tags=["auth"], body=TotpConfirm,
               responses={200: RecoveryCodes, 409: "2FA is on already, or no enrolment was started"})
    async def totp_confirm(req):
        principal = req.g.principal
        require_session(principal)
        codes = auth.totp_confirm(principal.user_id, req.g.body["code"])
        return {"recovery_codes": codes}, 200, NO_STORE

    @api.route("POST", "/api/auth/2fa/disable", role="self",
               summary="Turn 2FA off with a code, a recovery code or the password",
               tags=["auth"], body=TotpDisable, responses={200: Status, 409: "2FA is not on"})
    async def totp_disable(req):
        principal = req.g.principal
        require_session(principal)
        try:
            await auth.totp_disable_async(principal.user_id, req.g.body["code_or_password"],
                                              req.g.client_ip)
        except InvalidInputError as e:
            e.field = "code_or_password"
            raise
        return {"status": "ok", "message": "2FA is off"}
