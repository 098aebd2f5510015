"""The route registry: every endpoint declared once with its role, schemas and docs.

    @api.route("POST", "/api/cache/purge", role="admin", summary="Empty the DNS cache",
               tags=["cache"], responses={200: PurgeResult})
    async def purge(req):
        return {"status": "ok", "entries_cleared": app.purge_cache()}

Handlers stay thin: the wrapper authenticates, checks the role, enforces CSRF for cookie
sessions, parses and validates the JSON body (``req.g.body``) and query (``req.g.query``),
and turns any exception into the one error shape. ``api.routes`` is what the OpenAPI document
and the role-enforcement tests enumerate.

Roles: "public" (no credentials needed), "viewer" (any signed-in principal, read-only),
"admin" (a principal that may write), "self" (any signed-in principal acting on its own
account: logout, own password, own 2FA, own tokens). A read-scoped API token only ever reads:
the wrapper refuses it every state-changing route, "self" ones included (docs/security.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import ujson
from microdot import Microdot, Request, Response

from ..dns.access import RateLimiter
from . import errors
from .errors import ApiError
from .schema import Obj, Query

log = logging.getLogger(__name__)

MAX_JSON_BODY = 64 * 1024  # bytes; larger JSON bodies get 413 (uploads use streaming routes)
MAX_STREAM_BODY = 16 * 1024 * 1024  # hard cap on any request body (backup archives)
HEADER_DEADLINE = 10.0  # seconds for the request line, headers and a JSON body to arrive
WRITE_DEADLINE = 30.0  # seconds to deliver a (non-streaming) response to a slow reader
MAX_CONNECTIONS = 64  # concurrent HTTP connections (websockets included)
SESSION_COOKIE = "burrow_session"
CSRF_COOKIE = "burrow_csrf"
CSRF_HEADER = "X-CSRF-Token"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ROLES = ("public", "viewer", "admin", "self")

Request.max_content_length = MAX_STREAM_BODY
Request.max_body_length = MAX_JSON_BODY
Request.max_readline = 8 * 1024

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # No inline script anywhere; styles may be inline (the docs viewers need it).
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
                                "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Access-Control-Max-Age": "600",
}


@dataclass
class Route:
    method: str
    path: str  # microdot syntax: /api/users/<int:user_id>
    handler: object
    role: str
    summary: str
    tags: list = field(default_factory=list)
    body: Obj | None = None
    query: Query | None = None
    responses: dict = field(default_factory=dict)  # status → schema (Obj) or description str
    status: int = 200
    stream_body: bool = False  # the handler reads req.stream itself (large uploads)
    raw_response: bool = False  # the handler returns a microdot Response as is

    @property
    def openapi_path(self) -> str:
        out = []
        for part in self.path.split("/"):
            if part.startswith("<") and part.endswith(">"):
                part = "{" + part[1:-1].split(":")[-1] + "}"
            out.append(part)
        return "/".join(out)

    @property
    def mutating(self) -> bool:
        return self.method in WRITE_METHODS


class BurrowWeb(Microdot):
    """Microdot with deadlines for slow-drip clients and a cap on concurrent connections."""

    def __init__(self):
        super().__init__()
        self.active_connections = 0
        self.rejected_connections = 0
        self.deadline_cuts = 0

    async def handle_request(self, reader, writer):
        if self.active_connections >= MAX_CONNECTIONS:
            self.rejected_connections += 1
            writer.close()
            return
        self.active_connections += 1
        try:
            await self._handle(reader, writer)
        finally:
            self.active_connections -= 1

    async def _handle(self, reader, writer):
        peer = writer.get_extra_info("peername")
        try:
            async with asyncio.timeout(HEADER_DEADLINE):
                req = await Request.create(self, reader, writer, peer)
        except (TimeoutError, asyncio.TimeoutError):
            self.deadline_cuts += 1
            writer.close()
            return
        except (ValueError, UnicodeDecodeError, IndexError):  # a malformed request line or header
            body = ujson.dumps(errors.error_body(400, "malformed HTTP request")).encode()
            try:
                writer.write(b"HTTP/1.0 400 Bad Request\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
                async with asyncio.timeout(WRITE_DEADLINE):
                    await writer.drain()
            except (OSError, TimeoutError, asyncio.TimeoutError):
                pass
            writer.close()
            return
        except OSError:
            writer.close()
            return
        if req is None:
            writer.close()
            return
        res = await self.dispatch_request(req)
        try:
            if res is not Response.already_handled:
                async with asyncio.timeout(WRITE_DEADLINE):
                    await res.write(writer)
            await writer.aclose()
        except (TimeoutError, asyncio.TimeoutError, OSError):
            self.deadline_cuts += 1
            writer.close()


def json_response(payload, status: int = 200, headers: dict | None = None) -> Response:
    return Response(ujson.dumps(payload, ensure_ascii=False, escape_forward_slashes=False), status,
                    {"Content-Type": "application/json; charset=UTF-8", **(headers or {})})


def error_response(exc: BaseException) -> Response:
    status, body, headers = errors.from_exception(exc)
    return json_response(body, status, headers)


def client_ip(req) -> str:
    return req.client_addr[0] if req.client_addr else ""


class Api:
    """Registry of routes on one BurrowWeb app, with auth, limits and headers applied."""

    def __init__(self, app, web: BurrowWeb | None = None, *, rps: float = 20.0, burst: int = 60,
                 auth_rps: float = 0.5, auth_burst: int = 10):
        self.app = app
        self.web = web or BurrowWeb()
        self.routes: list[Route] = []
        self._literal: dict[str, set] = {}  # fixed paths → their methods (see the 405 in _wrap)
        self.limiter = RateLimiter(rps, burst, 4096)
        self.auth_limiter = RateLimiter(auth_rps, auth_burst, 4096)  # login, setup, refresh
        self.web.after_request(self._headers)
        self.web.after_error_request(self._headers)
        for status in (400, 404, 405, 413, 500):
            self.web.errorhandler(status)(self._microdot_error(status))

    # ---- declaring -----------------------------------------------------------------------------

    def route(self, method: str, path: str, *, role: str, summary: str, tags=None, body: Obj | None = None,
              query: Query | None = None, responses: dict | None = None, status: int = 200,
              stream_body: bool = False, raw_response: bool = False, auth_limited: bool = False):
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")

        def decorate(handler):
            route = Route(method, path, handler, role, summary, list(tags or []), body, query,
                          dict(responses or {}), status, stream_body, raw_response)
            self.routes.append(route)
            if "<" not in path:
                self._literal.setdefault(path, set()).add(method)
            self.web.route(path, methods=[method])(self._wrap(route, auth_limited))
            return handler

        return decorate

    # ---- the wrapper ---------------------------------------------------------------------------

    def _wrap(self, route: Route, auth_limited: bool):
        async def endpoint(req, **params):
            try:
                ip = client_ip(req)
                limiter = self.auth_limiter if auth_limited else self.limiter
                if not limiter.admit(ip, time.monotonic()):
                    raise ApiError(429, "too many requests; slow down", headers={"Retry-After": "2"})
                req.g.client_ip = ip
                req.g.principal = await self._authorize(req, route)
                if params and req.path in self._literal:
                    # e.g. PUT /api/conditionalforwarding/enabled: a fixed resource that only takes
                    # other methods, not an {id}; answered as such, before any body validation
                    allowed = ", ".join(sorted(self._literal[req.path]))
                    raise ApiError(405, f"{route.method} is not allowed here (allowed: {allowed})",
                                   headers={"Allow": allowed})
                for value in params.values():  # ids are SQLite integers: beyond 64 bits, nothing
                    if isinstance(value, int) and not -(1 << 63) <= value < (1 << 63):
                        raise ApiError(404, "no such item")
                req.g.query = route.query.from_args(req.args) if route.query else {}
                req.g.body = self._body(req, route)
                result = await route.handler(req, **params)
            except Exception as exc:  # one map from exceptions to HTTP errors
                return error_response(exc)
            if isinstance(result, Response):
                return result
            status = route.status
            headers = None
            if isinstance(result, tuple):
                result, status, *rest = result
                headers = rest[0] if rest else None
            return json_response(result, status, headers)

        endpoint.__name__ = f"{route.method.lower()}_{route.path}"
        return endpoint

    async def _authorize(self, req, route: Route):
        auth = getattr(self.app, "auth", None)
        authz = req.headers.get("Authorization")
        cookie = req.cookies.get(SESSION_COOKIE) if req.cookies else None
        principal = None
        if auth is not None and (authz or cookie):
            try:
                principal = auth.authenticate(authz, cookie)
            except Exception:
                if route.role != "public":
                    raise
                principal = None  # a public route does not fail on stale credentials
        req.g.via_cookie = principal is not None and getattr(principal, "via", "") == "cookie"
        if route.role == "public":
            return principal
        if principal is None:
            raise ApiError(401, "authentication required", error="unauthorized",
                           headers={"WWW-Authenticate": "Bearer"})
        if route.mutating and req.g.via_cookie:
            self._check_csrf(req)
        # The one scope check: a read-scoped token bounds every route, role=self ones too.
        if route.mutating and principal.read_only:
            raise ApiError(403, "a read-scoped API token can only read", error="forbidden")
        if route.role == "admin" and not principal.can_write:
            raise ApiError(403, "this needs an admin account (or an admin-scoped token)", error="forbidden")
        return principal

    @staticmethod
    def _check_csrf(req) -> None:
        """Cookie sessions must echo the CSRF cookie in a header a cross-site page cannot set."""
        sent = req.headers.get(CSRF_HEADER, "")
        expected = req.cookies.get(CSRF_COOKIE, "") if req.cookies else ""
        import hmac
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            raise ApiError(403, f"missing or wrong {CSRF_HEADER} header", error="csrf_failed")

    @staticmethod
    def _body(req, route: Route):
        if route.stream_body:
            if req.content_length > MAX_STREAM_BODY:
                raise ApiError(413, f"request body over {MAX_STREAM_BODY} bytes")
            return None
        if route.body is None:
            if req.content_length and req.method in WRITE_METHODS and req.content_length > MAX_JSON_BODY:
                raise ApiError(413, f"request body over {MAX_JSON_BODY} bytes")
            return None
        if req.content_length > MAX_JSON_BODY:
            raise ApiError(413, f"request body over {MAX_JSON_BODY} bytes")
        ctype = (req.content_type or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, "send the body as application/json", error="Unsupported Media Type")
        try:
            data = ujson.loads(req.body or b"null")
        except ValueError:
            raise ApiError(400, "the body is not valid JSON") from None
        return route.body.validate(data)

    # ---- cross-cutting -------------------------------------------------------------------------

    async def _headers(self, req, res):
        for k, v in SECURITY_HEADERS.items():
            res.headers.setdefault(k, v)
        if getattr(self.app, "tls", False):
            res.headers["Strict-Transport-Security"] = "max-age=31536000"
        # CORS '*' only where no cookie rides along: public reads and bearer-token requests.
        # Never with credentials, so a foreign page can not use a signed-in browser's session.
        if req is not None and req.method == "OPTIONS":  # preflight (microdot answers it itself)
            for k, v in CORS_HEADERS.items():
                res.headers.setdefault(k, v)
        elif req is not None and not (req.cookies or {}).get(SESSION_COOKIE):
            if req.method == "GET" or req.headers.get("Authorization"):
                res.headers.setdefault("Access-Control-Allow-Origin", "*")
        return res

    def _microdot_error(self, status: int):
        messages = {400: "malformed request", 404: "no such endpoint", 405: "method not allowed",
                    413: "request body too large", 500: "internal error; see the log"}

        async def handler(req, *args):
            return json_response(errors.error_body(status, messages[status]), status)

        return handler
