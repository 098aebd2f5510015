"""The route registry: every endpoint declared once with its role, schemas and docs.

    @api.route("POST", "/api/cache/purge", role="admin", summary="Empty the DNS cache",
               tags=["cache"], responses={200: PurgeResult})
    async def purge(req):
        return {"status": "ok", "entries_cleared": resolver.purge_cache()}

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
import ipaddress
import logging
import re
import time
from dataclasses import dataclass, field
from urllib.parse import unquote

import ujson
from microdot import Microdot, Request, Response
from microdot.microdot import URLPattern
from microdot.microdot import NoCaseDict

from ..dns.access import RateLimiter
from . import encoding, errors
from .errors import ApiError
from .origin import ANY_HOST_PREFIXES, ANY_HOST_READS, READ_METHODS, Site, split_host
from .schema import Field, Obj, Query

log = logging.getLogger(__name__)

MAX_JSON_BODY = 64 * 1024  # bytes; larger JSON bodies get 413 (uploads use streaming routes)
MAX_STREAM_BODY = 16 * 1024 * 1024  # hard cap on any request body (backup archives)
REQUEST_DEADLINE = 10.0  # seconds for the whole request line, headers and a JSON body to arrive
KEEPALIVE_TIMEOUT = 15.0  # seconds an idle kept-alive connection waits for its next request
WRITE_DEADLINE = 30.0  # seconds to deliver a (non-streaming) response to a slow reader
MAX_CONNECTIONS = 64  # concurrent HTTP connections (websockets included)
MAX_CONNECTIONS_PER_CLIENT = 16  # of those, one client's (address; IPv6 by /64)
MAX_REQUEST_LINE = 8 * 1024  # bytes of "GET /target HTTP/1.1"; longer gets 414 (RFC 9112 3: >= 8000)
MAX_HEADER_BYTES = 16 * 1024  # all header lines together; more gets 431
MAX_HEADERS = 64  # header lines; more gets 431
LINGER = 5.0  # seconds to read and drop what a refused client still sends, so it reads the answer
MAX_LINGERING = 64  # refused connections over the caps lingering at once; more are closed at once
RETRY_AFTER = "5"  # seconds, on the 503 past a connection cap
SESSION_COOKIE = "burrow_session"
CSRF_COOKIE = "burrow_csrf"
CSRF_HEADER = "X-CSRF-Token"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ROLES = ("public", "viewer", "admin", "self")
# What plain HTTP still serves while HTTPS is on (monitoring); everything else is redirected.
PLAIN_HTTP_PATHS = ANY_HOST_READS
DOH_PATH = "/dns-query"  # DNS over HTTPS: over plain HTTP only from loopback (api/doh_api.py)

Request.max_content_length = MAX_STREAM_BODY
Request.max_body_length = MAX_JSON_BODY
Request.max_readline = MAX_REQUEST_LINE  # BurrowWeb reads the head itself; this is microdot's own

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # No inline script anywhere; styles may be inline (the docs viewers need it). Images also from
    # the setup check's probe names (dns/probes.py): loading one is how the page makes the phone's
    # own resolver look the name up; nothing answers there (Burrow answers NXDOMAIN).
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data: http://*.check.burrow.test; connect-src 'self'; worker-src 'self' blob:; "
                                "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
}
# Preflights (docs/security.md): reads from anywhere, writes only from server.allowed_origins.
# Never Access-Control-Allow-Credentials: CORS is for bearer tokens, not the browser's cookie.
CORS_READ = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Access-Control-Max-Age": "600",
}
CORS_WRITE = {**CORS_READ, "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE",
              "Vary": "Origin"}


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
    params: dict = field(default_factory=dict)  # path parameter name → Field (validates, documents)
    static: bool = False  # a file of the page: no request limiter (Api.route)
    body_media: str | None = None  # a body that is not JSON (its media type): documented as binary

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

    @property
    def path_params(self) -> list[tuple[str, str]]:
        """[(converter, name)] of the path's <params>: ("int", "user_id"), ("", "name")."""
        out = []
        for part in self.path.split("/"):
            if part.startswith("<") and part.endswith(">"):
                kind, _, name = part[1:-1].rpartition(":")
                out.append((kind, name))
        return out

    def clean_params(self, raw: dict) -> dict:
        """The path parameters, percent-decoded and checked by their declared Fields (the same
        objects the OpenAPI document describes them with); ValidationError (400) names each bad one."""
        problems: list[tuple[str, str]] = []
        out = dict(raw)
        for name, declared in self.params.items():
            value = raw.get(name)
            out[name] = declared._clean(unquote(value) if isinstance(value, str) else value, name, problems)
        if problems:
            raise errors.ValidationError(problems)
        return out

    def wrapper_statuses(self, literal_paths=()) -> dict[int, str]:
        """The error statuses the route wrapper (and the server around it) can answer for this
        route, whatever its handler does: derived from the declaration itself — role, body,
        query, path parameters — by the same rules _wrap and _authorize apply. The OpenAPI
        document lists these beside the route's own ``responses`` (what its handler raises);
        _wrap logs any answer outside both (docs/api.md, "Errors")."""
        out = {421: "the Host is not a name of this Burrow"}
        if not self.static:
            out[429] = "too many requests from this address"
        refused = []  # the reasons for a 403
        if self.role != "public":
            out[401] = "no or invalid credentials"
        if self.role == "admin":
            refused.append("needs an admin account or an admin-scoped token")
        if self.mutating:
            if self.role != "public":
                refused += ["a browser session without its X-CSRF-Token", "a read-scoped API token"]
            refused.append("a write from another web page (Origin)")
            out[413] = "request body too large"
        if refused:
            out[403] = "refused: " + "; ".join(refused)
        if self.body is not None:
            out.update({400: "invalid body (details name each field)", 415: "the body must be application/json"})
        if self.query is not None:
            out[400] = out.get(400, "invalid query parameter")
        if self.params:
            out[400] = out.get(400, "invalid path parameter")
        if self.query is not None or self.path_params:  # values the client makes as long as it likes
            out[414] = "the request line is over 8 KiB"
        if self.path_params:
            out[404] = "no such item"
            pattern = URLPattern(self.path)
            if any(pattern.match(p) is not None for p in literal_paths):
                out[405] = "a fixed path that takes other methods (Allow lists them)"
        return out


class BurrowWeb(Microdot):
    """Microdot with caps on connections (in all and per client), a whole-request deadline, and
    its own reading of the request head: limits on its size, and framing that two parsers could
    read differently (two Content-Lengths, Content-Length with Transfer-Encoding) refused.

    Whatever is refused before a route runs is answered in the API's error shape with
    ``Connection: close``, and the connection lingers a little, reading and dropping what the
    client still sends, so that the client reads the answer rather than a TCP reset.

    HTTP/1.1 with persistent connections (RFC 9112 §9): a connection serves requests one after
    the other (pipelined ones in order) until the client says ``Connection: close`` (an HTTP/1.0
    client keeps it only with ``Connection: keep-alive``), an answer must close it (a request
    body the route did not read, a refusal, an answer of unknown length to HTTP/1.0), or it
    stays idle for ``keepalive_timeout`` seconds. Each request on it has the whole-request
    deadline of the first, counted from its first byte. An idle connection holds its slot under
    the caps, and is the first to go when a new connection finds a cap full. Every answer
    carries its status's reason phrase; one of unknown length (an export streamed from the
    query log) goes chunked to an HTTP/1.1 client, and closes the connection for HTTP/1.0."""

    def __init__(self):
        super().__init__()
        self.max_connections = MAX_CONNECTIONS
        self.max_per_client = MAX_CONNECTIONS_PER_CLIENT
        self.request_deadline = REQUEST_DEADLINE
        self.keepalive_timeout = KEEPALIVE_TIMEOUT
        self.active_connections = 0
        self.per_client: dict[str, int] = {}  # client → open connections; at most max_connections keys
        self.idle: dict[object, str] = {}  # idle kept-alive connection (its writer) → its client, oldest first
        self._evicted: set = set()  # writers closed by _evict, their slots released already
        self.lingering = 0
        self.rejected_connections = 0
        self.deadline_cuts = 0
        self.refused_requests = 0  # request heads answered 4xx before any route
        self.connections_total = 0  # connections admitted (under the caps)
        self.requests_total = 0  # requests routed (refused heads not included)
        self.reused_requests = 0  # of those, the ones on a connection that had served one already
        self.idle_closes = 0  # kept-alive connections closed idle: timeout, a full cap, or the stop
        self.flood_cuts = 0  # HTTP/2 connections closed for flooding (resets, pings, settings)
        self.closing = False  # set by close_idle(): answers from then on close their connection
        # (req) -> ApiError | None, run on every request from the network before routing: the
        # Api's Host check (origin.py). In-process test clients call dispatch_request directly.
        self.screen = None
        # (req) -> Response | None, after the screen: the Api's redirect of plain HTTP to HTTPS.
        self.redirect = None

    def limit(self, max_connections: int, max_per_client: int, request_deadline: float,
              keepalive_timeout: float = KEEPALIVE_TIMEOUT) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.request_deadline = request_deadline
        self.keepalive_timeout = keepalive_timeout

    def close_idle(self) -> None:
        """Stopping: close the idle connections, and every connection after its current answer."""
        self.closing = True
        for writer in list(self.idle):
            self._evict(writer)

    def _evict(self, writer) -> None:
        """Close an idle connection now, its slot freed at once (its handler will not count it)."""
        client = self.idle.pop(writer)
        self.idle_closes += 1
        self._release(client)
        self._evicted.add(writer)  # its handler must not release the slot again
        writer.close()

    def _make_room(self, client: str) -> None:
        """At a full cap, close the oldest idle connection that frees a slot for ``client``."""
        if self.per_client.get(client, 0) >= self.max_per_client:
            mine = next((w for w, c in self.idle.items() if c == client), None)
            if mine is None:
                return  # its own busy connections fill its share: refused, and nobody else's closed
            self._evict(mine)
        if self.active_connections >= self.max_connections and self.idle:
            self._evict(next(iter(self.idle)))

    def _release(self, client: str) -> None:
        self.active_connections -= 1
        left = self.per_client[client] - 1
        if left:
            self.per_client[client] = left
        else:
            del self.per_client[client]

    async def serve(self, reader, writer):
        """A connection from a listener of our own (asyncio.start_server: the HTTPS one), as
        microdot's start_server serves its own: the writer gets ``awrite`` (microdot's websocket
        handshake and frames write with it) and ``aclose``."""
        if not hasattr(writer, "awrite"):
            async def awrite(data):
                writer.write(data)
                await writer.drain()

            writer.awrite = awrite
        if not hasattr(writer, "aclose"):
            async def aclose():
                writer.close()
                await writer.wait_closed()

            writer.aclose = aclose
        await self.handle_request(reader, writer)

    async def handle_request(self, reader, writer):
        peer = writer.get_extra_info("peername")
        client = client_key(peer[0] if peer else "")
        self._make_room(client)
        held = self.per_client.get(client, 0)
        if held >= self.max_per_client or self.active_connections >= self.max_connections:
            self.rejected_connections += 1
            whose = "this client has" if held >= self.max_per_client else "the server has"
            exc = ApiError(503, f"{whose} too many connections open; try again shortly",
                           headers={"Retry-After": RETRY_AFTER})
            # Lingering holds a socket for a while: bounded, past that the answer may be lost.
            linger = self.lingering < MAX_LINGERING
            self.lingering += linger
            try:
                if _is_h2(writer):  # the same answer on its first stream, within LINGER
                    from .http2 import H2Server
                    try:
                        async with asyncio.timeout(LINGER if linger else 0.5):
                            await H2Server(self, reader, writer, peer, client, refusal=exc).run()
                    except (TimeoutError, asyncio.TimeoutError):
                        writer.close()
                else:
                    await self._refuse(reader, writer, exc, linger)
            finally:
                self.lingering -= linger
            return
        self.active_connections += 1
        self.connections_total += 1
        self.per_client[client] = held + 1
        try:
            if _is_h2(writer):  # HTTP/2 (ALPN h2 on the HTTPS listener): api/http2.py, loaded on first use
                from .http2 import H2Server
                await H2Server(self, reader, writer, peer, client).run()
            else:
                await self._handle(reader, writer, peer, client)
        finally:
            self.idle.pop(writer, None)
            if writer in self._evicted:
                self._evicted.discard(writer)
            else:
                self._release(client)

    async def _handle(self, reader, writer, peer, client: str):
        served = 0
        while True:
            first = b""
            if served:  # kept alive: wait for the next request's first byte, at most keepalive_timeout
                self.idle[writer] = client
                try:
                    async with asyncio.timeout(self.keepalive_timeout):
                        first = await reader.readexactly(1)
                except (TimeoutError, asyncio.TimeoutError):
                    self.idle_closes += 1
                    writer.close()
                    return
                except (OSError, asyncio.IncompleteReadError):  # the client (or close_idle) closed it
                    writer.close()
                    return
                finally:
                    self.idle.pop(writer, None)
            if not await self._serve_one(reader, writer, peer, first, served):
                return
            served += 1

    async def _serve_one(self, reader, writer, peer, first: bytes, served: int) -> bool:
        """Read, route and answer one request (``first``: its first byte, read already); whether
        the connection stays open for another."""
        try:
            # One deadline for the whole request: bytes trickling in do not extend it. On a new
            # connection it runs from the start; on a kept-alive one from the request's first byte.
            async with asyncio.timeout(self.request_deadline):
                req = await self._read_request(reader, writer, peer, first)
        except (TimeoutError, asyncio.TimeoutError):
            self.deadline_cuts += 1
            await self._refuse(reader, writer, ApiError(
                408, f"the request did not arrive within {self.request_deadline:g} s"))
            return False
        except ApiError as exc:
            self.refused_requests += 1
            await self._refuse(reader, writer, exc)
            return False
        except (OSError, asyncio.IncompleteReadError):  # the client left mid-request
            writer.close()
            return False
        if req is None:
            writer.close()
            return False
        refusal = self.screen(req) if self.screen is not None else None
        if refusal is not None:
            await self._refuse(reader, writer, refusal)
            return False
        self.requests_total += 1
        self.reused_requests += served > 0
        res = self.redirect(req) if self.redirect is not None else None
        if res is None:
            res = await self.dispatch_request(req)
        unread = req.content_length > len(req.body)  # a streamed body the route may have left unread
        try:
            if res is Response.already_handled:  # a WebSocket session, over now
                await writer.aclose()
                return False
            keep = wants_keep_alive(req) and not unread and not self.closing
            async with asyncio.timeout(WRITE_DEADLINE):
                keep = await write_response(writer, req, res, keep)
            if keep:
                return True
            if unread:
                await self._linger(reader, writer)
            await writer.aclose()
        except (TimeoutError, asyncio.TimeoutError, OSError):
            self.deadline_cuts += 1
            writer.close()
        return False

    async def _read_request(self, reader, writer, peer, first: bytes = b"") -> Request | None:
        line = await _read_line(reader, MAX_REQUEST_LINE, 414, "the request line", first)
        if line in (b"\r\n", b"\n"):  # one empty line before a request is allowed (RFC 9112 2.2)
            line = await _read_line(reader, MAX_REQUEST_LINE, 414, "the request line")
        if not line:
            return None  # closed before a request
        method, target, version = parse_request_line(line)
        headers = NoCaseDict()
        size = count = 0
        while True:
            line = await _read_line(reader, MAX_HEADER_BYTES - size, 431, "the request header fields")
            if not line:
                return None  # closed mid-head
            if line in (b"\r\n", b"\n"):
                break
            size += len(line)
            count += 1
            if count > MAX_HEADERS:
                raise ApiError(431, f"more than {MAX_HEADERS} request header fields")
            name, value = parse_field(line)
            if name.lower() in SINGLE_FIELDS and name in headers:
                raise ApiError(400, f"more than one {name} header")
            headers[name] = value
        length = body_length(headers)
        body, stream = b"", None
        if length and length <= Request.max_body_length:
            body = await reader.readexactly(length)  # within the request deadline
        elif length:
            stream = reader  # a streaming route reads it (backup.read_upload has its own deadline)
        try:
            return Request(self, peer, method, target, version, headers, body=body, stream=stream,
                           sock=(reader, writer),
                           scheme="https" if writer.get_extra_info("sslcontext") is not None else "http")
        except (ValueError, UnicodeDecodeError):  # the query string's %-escapes
            raise ApiError(400, "the query string is not valid percent-encoded UTF-8") from None

    async def _refuse(self, reader, writer, exc: ApiError, linger: bool = True) -> None:
        """Answer ``exc`` in the error shape and close, lingering (see the class doc) if asked."""
        body = ujson.dumps(errors.error_body(exc.status, exc.message, exc.details, exc.error)).encode()
        headers = {**SECURITY_HEADERS, **exc.headers, "Content-Type": "application/json; charset=UTF-8",
                   "Content-Length": str(len(body)), "Connection": "close"}
        head = status_line(exc.status) + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        try:
            writer.write(head.encode() + body)
            if linger:
                await self._linger(reader, writer)
            else:
                async with asyncio.timeout(LINGER):
                    await writer.drain()
        except (OSError, TimeoutError, asyncio.TimeoutError):
            pass
        writer.close()

    @staticmethod
    async def _linger(reader, writer) -> None:
        """Send what is written and a FIN, then drop what the client still sends until it closes
        (or LINGER passes): closing a socket with unread data in it sends a reset, and the
        client would lose the answer, typically while it still sends a long request."""
        try:
            async with asyncio.timeout(LINGER):
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
                while await reader.read(64 * 1024):
                    pass
        except (OSError, TimeoutError, asyncio.TimeoutError):
            pass


def _is_h2(writer) -> bool:
    """Whether the TLS handshake of this connection chose HTTP/2 (ALPN ``h2``)."""
    sslobj = writer.get_extra_info("ssl_object")
    return sslobj is not None and sslobj.selected_alpn_protocol() == "h2"


# ---- the answer (RFC 9112) ---------------------------------------------------------------------

BODILESS = frozenset({204, 304})  # and 1xx: never a body, nor Content-Length (RFC 9110 8.6)


def status_line(status: int) -> str:
    """``HTTP/1.1 <code> <reason phrase>``: the version Burrow speaks, to 1.0 clients too (RFC
    9110 6.2), and the status's registered phrase (errors.reason)."""
    return f"HTTP/1.1 {status} {errors.reason(status)}\r\n"


def connection_tokens(req) -> set[str]:
    return {t.strip().lower() for t in req.headers.get("Connection", "").split(",") if t.strip()}


def wants_keep_alive(req) -> bool:
    """Whether the client lets the connection persist (RFC 9112 9.3): HTTP/1.1 unless it says
    ``Connection: close``; HTTP/1.0 only when it says ``Connection: keep-alive``."""
    tokens = connection_tokens(req)
    if "close" in tokens:
        return False
    return req.http_version == "1.1" or "keep-alive" in tokens


async def write_response(writer, req, res: Response, keep: bool) -> bool:
    """Send ``res`` for ``req`` (microdot's own writer says HTTP/1.0 and "N/A"); whether the
    connection may stay open. A body of unknown length (a generator or a file) goes chunked to
    HTTP/1.1 and close-delimited to HTTP/1.0; a handler's ``Connection: close`` is kept."""
    headers = res.headers
    status = res.status_code
    body = res.body
    if "close" in {t.strip().lower() for t in str(headers.get("Connection", "")).split(",")}:
        keep = False
    send_body = req.method != "HEAD"
    chunked = False
    if status < 200 or status in BODILESS:  # no body, so no Content-Type or length to add
        for name in ("Content-Length", "Transfer-Encoding"):
            if name in headers:
                del headers[name]
        send_body = False
    else:
        res.complete()  # Content-Length of a bytes body, a default Content-Type
        if "Content-Length" not in headers:  # a generator or a file: length unknown
            if req.http_version == "1.1":
                headers["Transfer-Encoding"] = "chunked"
                chunked = send_body
            else:
                keep = False  # the end of the body is the end of the connection
    if not keep:
        headers["Connection"] = "close"
    elif req.http_version == "1.0":
        headers["Connection"] = "keep-alive"
    elif "Connection" in headers:
        del headers["Connection"]
    head = status_line(status) + "".join(
        f"{name}: {value}\r\n" for name, values in headers.items()
        for value in (values if isinstance(values, list) else [values])) + "\r\n"
    if isinstance(body, bytes) or not send_body:
        writer.write(head.encode() + body if send_body else head.encode())
        await writer.drain()
        if not isinstance(body, bytes):
            await _close_body(res)
        return keep
    writer.write(head.encode())
    chunks = res.body_iter()
    try:
        async for chunk in chunks:
            if isinstance(chunk, str):
                chunk = chunk.encode()
            if not chunk:
                continue  # an empty chunk would end a chunked body
            writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await writer.drain()
    except (OSError, TimeoutError):  # the client's side: the caller closes the connection
        raise
    except Exception:
        # The body failed half-way: the connection closes without the last chunk, so the
        # client sees a cut answer rather than a complete-looking one.
        log.exception("the body of %s %s failed while it was sent", req.method, req.path)
        return False
    finally:
        if hasattr(chunks, "aclose"):
            await chunks.aclose()
    if chunked:
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    return keep


async def _close_body(res: Response) -> None:
    close = getattr(res.body, "aclose", None) or getattr(res.body, "close", None)
    if close is not None:
        result = close()
        if asyncio.iscoroutine(result):
            await result


# ---- the request head (RFC 9112) ---------------------------------------------------------------

SINGLE_FIELDS = frozenset({"content-length", "transfer-encoding", "host"})  # never more than one
TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
CONTROL = frozenset(range(0x20)) | {0x7F}  # NUL, CR, LF, ...: never inside a line


def client_key(host: str) -> str:
    """Whose connection this is: the address; IPv6 by its /64 (one device has many addresses)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


async def _read_line(reader, cap: int, status: int, what: str, first: bytes = b"") -> bytes:
    """One line with its end (``first``: its first byte, read already); b"" at end of input.
    Past ``cap`` bytes, ApiError(status)."""
    if first == b"\n":
        return first
    try:
        line = first + await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:  # past the stream's own limit, which is above our caps
        raise ApiError(status, f"{what} is over {cap} bytes") from None
    except asyncio.IncompleteReadError:
        return b""
    if len(line) > cap:
        raise ApiError(status, f"{what} is over {cap} bytes")
    return line


def _text(raw: bytes, what: str) -> str:
    if CONTROL.intersection(raw):
        raise ApiError(400, f"a control character in {what}")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ApiError(400, f"{what} is not UTF-8") from None


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """(method, target, version such as "1.1") of ``METHOD SP target SP HTTP/1.x``."""
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3 or not parts[0] or not TOKEN.issuperset(parts[0]) or not parts[1]:
        raise ApiError(400, "malformed request line (want: METHOD /target HTTP/1.1)")
    target = _text(parts[1], "the request target")
    if not target.startswith("/"):
        raise ApiError(400, "the request target must be a path starting with /")
    if parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        if re.fullmatch(rb"HTTP/[0-9]\.[0-9]", parts[2]):
            raise ApiError(505, "only HTTP/1.0 and HTTP/1.1 are spoken here")
        raise ApiError(400, "malformed HTTP version")
    return parts[0].decode(), target, parts[2][5:].decode()


def parse_field(line: bytes) -> tuple[str, str]:
    """(name, value) of ``name: value``; no whitespace before the colon, no line folding."""
    name, colon, value = line.rstrip(b"\r\n").partition(b":")
    if not colon or not name or not TOKEN.issuperset(name):
        raise ApiError(400, "malformed header field (want: Name: value, no space before the colon)")
    value = value.strip(b" \t")
    return name.decode(), _text(value.replace(b"\t", b" "), f"the {name.decode()} header")


def body_length(headers) -> int:
    """Content-Length, refusing what could frame the body two ways (RFC 9112 6.3)."""
    length = headers.get("Content-Length")
    if "Transfer-Encoding" in headers:
        if length is not None:
            raise ApiError(400, "Content-Length and Transfer-Encoding together: ambiguous framing")
        raise ApiError(411, "send the body with a Content-Length (Transfer-Encoding is not accepted)")
    if length is None:
        return 0
    if not (length.isascii() and length.isdigit()) or len(length) > 12:
        raise ApiError(400, "Content-Length must be one decimal number")
    return int(length)


def json_response(payload, status: int = 200, headers: dict | None = None) -> Response:
    return Response(ujson.dumps(payload, ensure_ascii=False, escape_forward_slashes=False), status,
                    {"Content-Type": "application/json; charset=UTF-8", **(headers or {})})


def error_response(exc: BaseException) -> Response:
    status, body, headers = errors.from_exception(exc)
    return json_response(body, status, headers)


def client_ip(req) -> str:
    return req.client_addr[0] if req.client_addr else ""


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@dataclass
class WebSettings:
    """How the admin page and the API reach the browser; changed live by the TLS service
    (burrow/tls, wired in app.py) as its HTTPS listener opens and closes.

    ``tls``: Burrow serves HTTPS (on ``https_port``). Plain HTTP then answers a redirect to it
    (except the health checks, /metrics, and DNS over HTTPS from loopback: Api._to_https), and
    the session cookies get ``Secure`` (over plain HTTP a Secure cookie would never come back).
    ``hsts``: ``Strict-Transport-Security`` on answers sent over HTTPS (never over plain HTTP,
    where browsers ignore it and it would only mislead).
    """

    tls: bool = False
    hsts: bool = False
    https_port: int | None = None


class Api:
    """Registry of routes on one BurrowWeb app, with auth, limits and headers applied."""

    def __init__(self, auth=None, site: Site | None = None, web: BurrowWeb | None = None, *,
                 settings: WebSettings | None = None, rps: float = 20.0, burst: int = 60,
                 auth_rps: float = 0.5, auth_burst: int = 10):
        self.auth = auth  # authenticates requests (burrow.auth.AuthService); None: nobody signs in
        self.settings = settings if settings is not None else WebSettings()  # mutable: one per Api
        self.web = web or BurrowWeb()
        self.routes: list[Route] = []
        self._literal: dict[str, set] = {}  # fixed paths → their methods (see the 405 in _wrap)
        self._patterns: list[tuple[URLPattern, str]] = []  # (path pattern, method): Allow on a 405
        self._documented: dict[int, frozenset] = {}  # id(route) → statuses its OpenAPI entry lists
        self.undocumented = 0  # answers with a status the route's OpenAPI entry does not list
        self.limiter = RateLimiter(rps, burst, 4096)
        self.auth_limiter = RateLimiter(auth_rps, auth_burst, 4096)  # login, setup, refresh
        self.site = site or Site()  # Burrow's own names and origins (origin.py)
        self.web.screen = self._screen_host
        self.web.redirect = self._to_https
        self.web.options_handler = self._preflight
        self.web.after_request(self._headers)
        self.web.after_error_request(self._headers)
        self.web.after_request(self._compress)
        self.web.after_error_request(self._compress)
        self.gzipped = 0  # JSON answers sent gzipped
        for status in (400, 404, 405, 413, 500):
            self.web.errorhandler(status)(self._microdot_error(status))
        self.web.errorhandler(403)(self._preflight_refused)

    # ---- declaring -----------------------------------------------------------------------------

    def route(self, method: str, path: str, *, role: str, summary: str, tags=None, body: Obj | None = None,
              query: Query | None = None, responses: dict | None = None, status: int = 200,
              stream_body: bool = False, raw_response: bool = False, auth_limited: bool = False,
              static: bool = False, params: dict[str, Field] | None = None, body_media: str | None = None):
        """Declare a route. ``auth_limited``: the sign-in limiter (login, setup, refresh) instead
        of the per-address API limiter; ``static``: no limiter at all — the page's own files, which
        cost a file read and which a phone fetches by the dozen on its first visit (a budget of
        ``burst`` requests is for API calls, not for the modules of one page); ``body_media``: the
        media type of a body that is not JSON (read by the handler), documented as binary."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")

        def decorate(handler):
            route = Route(method, path, handler, role, summary, list(tags or []), body, query,
                          dict(responses or {}), status, stream_body, raw_response, dict(params or {}), static,
                          body_media)
            unknown = set(route.params) - {name for _, name in route.path_params}
            if unknown:
                raise ValueError(f"{method} {path}: params {sorted(unknown)} are not in the path")
            self.routes.append(route)
            self._documented.clear()  # a new literal path may add a 405 to another route
            if "<" not in path:
                self._literal.setdefault(path, set()).add(method)
            self._patterns.append((URLPattern(path), method))
            self.web.route(path, methods=[method])(self._wrap(route, auth_limited))
            return handler

        return decorate

    def face(self, method: str, path: str, handler) -> None:
        """Serve another product's API route (burrow/faces) on this listener. It is not in
        ``routes`` (so not in Burrow's OpenAPI document nor the role tests): it follows that
        product's specification. It passes what every request here passes — the Host screen,
        the HTTPS redirect, and, through :meth:`face_checks`, which the handler calls first,
        the write-origin check and the per-address limiter. The handler authenticates and
        answers in that product's shapes (a microdot Response)."""
        self._patterns.append((URLPattern(path), method))  # its Allow on a 405; not in _literal (docs)
        self.web.route(path, methods=[method])(handler)

    def face_checks(self, req) -> str:
        """The checks every route makes before it authenticates (see :meth:`face`): a write from
        another web page is refused, and the per-address limiter applies. ApiError, else the
        client's address."""
        if req.method in WRITE_METHODS:
            self.site.check_origin(req)
        ip = client_ip(req)
        if not self.limiter.admit(ip, time.monotonic()):
            raise ApiError(429, "too many requests; slow down", headers={"Retry-After": "2"})
        return ip

    def responses_of(self, route: Route) -> dict:
        """status → schema or description: what the OpenAPI document lists for ``route``, its
        own ``responses`` (what its handler answers) and the wrapper's (Route.wrapper_statuses)."""
        out = dict(route.responses or {route.status: None})
        for status, why in route.wrapper_statuses(self._literal).items():
            out.setdefault(status, why)
        return out

    def _is_documented(self, route: Route, status: int) -> bool:
        documented = self._documented.get(id(route))
        if documented is None:
            documented = self._documented[id(route)] = frozenset(self.responses_of(route))
        return status in documented

    def _check_documented(self, route: Route, status: int) -> None:
        """The document is generated from the same declarations the answers come from; an answer
        outside them is a bug in a declaration: logged (tests fail on the line), never altered."""
        if not self._is_documented(route, status):
            self.undocumented += 1
            log.warning("undocumented status: %s %s answered %d, which its OpenAPI responses do not list",
                        route.method, route.path, status)

    def allowed_methods(self, path: str) -> list[str]:
        """The methods ``path`` takes (a fixed path only its own), HEAD with GET, and OPTIONS."""
        if path in self._literal:
            methods = set(self._literal[path])
        else:
            methods = {m for pattern, m in self._patterns if pattern.match(path) is not None}
        if "GET" in methods:
            methods.add("HEAD")
        methods.add("OPTIONS")
        return sorted(methods)

    # ---- the wrapper ---------------------------------------------------------------------------

    def _wrap(self, route: Route, auth_limited: bool):
        async def endpoint(req, **params):
            try:
                if route.mutating:  # a write from another web page: refused before anything runs
                    self.site.check_origin(req)
                ip = client_ip(req)
                limiter = None if route.static else self.auth_limiter if auth_limited else self.limiter
                if limiter is not None and not limiter.admit(ip, time.monotonic()):
                    raise ApiError(429, "too many requests; slow down", headers={"Retry-After": "2"})
                req.g.client_ip = ip
                req.g.principal = await self._authorize(req, route)
                if params and req.path in self._literal:
                    # e.g. PUT /api/conditionalforwarding/enabled: a fixed resource that only takes
                    # other methods, not an {id}; answered as such, before any body validation
                    allowed = ", ".join(self.allowed_methods(req.path))
                    raise ApiError(405, f"{route.method} is not allowed here (allowed: {allowed})",
                                   headers={"Allow": allowed})
                if route.params:
                    params = route.clean_params(params)
                for value in params.values():  # ids are SQLite integers: beyond 64 bits, nothing
                    if isinstance(value, int) and not -(1 << 63) <= value < (1 << 63):
                        raise ApiError(404, "no such item")
                req.g.query = route.query.from_args(req.args) if route.query else {}
                req.g.body = self._body(req, route)
                result = await route.handler(req, **params)
            except Exception as exc:  # one map from exceptions to HTTP errors
                res = error_response(exc)
                self._check_documented(route, res.status_code)
                return res
            if isinstance(result, Response):
                self._check_documented(route, result.status_code)
                return result
            status = route.status
            headers = None
            if isinstance(result, tuple):
                result, status, *rest = result
                headers = rest[0] if rest else None
            self._check_documented(route, status)
            return json_response(result, status, headers)

        endpoint.__name__ = f"{route.method.lower()}_{route.path}"
        return endpoint

    async def _authorize(self, req, route: Route):
        auth = self.auth
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

    def _screen_host(self, req) -> ApiError | None:
        """BurrowWeb.screen: a request that does not name Burrow (DNS rebinding) gets 421."""
        return None if self.site.host_allowed(req) else self.site.refuse_host()

    def _to_https(self, req) -> Response | None:
        """While HTTPS serves, a plain HTTP request is sent there (301 for GET and HEAD, 308 for
        the rest, which keeps the method and body) — except the health checks and /metrics
        (monitoring speaks plain HTTP) and DNS over HTTPS from this machine (a reverse proxy)."""
        port = self.settings.https_port
        if port is None or req.scheme == "https" or req.path in PLAIN_HTTP_PATHS or req.path.startswith(ANY_HOST_PREFIXES):
            return None
        if req.path == DOH_PATH and is_loopback(client_ip(req)):
            return None
        host = split_host(req.headers.get("Host", "")) if req.headers.get("Host") else None
        name = host[0] if host is not None else "burrow.local"
        if ":" in name:
            name = f"[{name}]"
        location = f"https://{name}{'' if port == 443 else f':{port}'}{req.url}"
        status = 301 if req.method in READ_METHODS else 308
        return Response(b"", status, {"Location": location, "Content-Length": "0", **SECURITY_HEADERS})

    def _preflight(self, req):
        """microdot's OPTIONS answer: the path's Allow header, and CORS for a preflight that
        may go ahead; 403 (see _preflight_refused) for a write from a foreign origin."""
        headers = self.web.default_options_handler(req)
        origin = req.headers.get("Origin")
        method = req.headers.get("Access-Control-Request-Method")
        if origin is None or method is None:
            return headers  # not a CORS preflight
        if method.upper() in READ_METHODS:
            return {**headers, **CORS_READ}
        if self.site.origin_ok(req):  # Burrow's own (browsers do not preflight those) or allowed
            return {**headers, **CORS_WRITE, "Access-Control-Allow-Origin": origin}
        self.site.refuse_origin()  # counted
        return 403

    async def _preflight_refused(self, req, *args):
        # 403 is raised by microdot only for _preflight's refusal; routes answer theirs themselves.
        return error_response(ApiError(403, "this web page's origin may not send this request "
                                            "(see server.allowed_origins)", error="cross_origin"))

    async def _headers(self, req, res):
        for k, v in SECURITY_HEADERS.items():
            res.headers.setdefault(k, v)
        if self.settings.hsts and req is not None and req.scheme == "https":
            res.headers["Strict-Transport-Security"] = "max-age=31536000"
        # CORS only where no cookie rides along: reads ('*'), and token writes from an allowed
        # origin (the foreign ones were refused already). Preflights are _preflight's.
        if req is None or req.method == "OPTIONS" or (req.cookies or {}).get(SESSION_COOKIE):
            return res
        origin = req.headers.get("Origin")
        if req.method in READ_METHODS:
            res.headers.setdefault("Access-Control-Allow-Origin", "*")
        elif origin and req.headers.get("Authorization") and self.site.allowed_origin(origin):
            res.headers.setdefault("Access-Control-Allow-Origin", origin)
            res.headers.setdefault("Vary", "Origin")
        return res

    async def _compress(self, req, res):
        """JSON of GZIP_MIN_BYTES or more: gzip when the client takes it (encoding.py), and in
        any case ``Vary: Accept-Encoding``, since the same URL answers either way. Streamed
        bodies (the exports) stay as they are: their length is not known up front."""
        body = res.body
        if (req is None or not isinstance(body, bytes) or len(body) < encoding.GZIP_MIN_BYTES
                or res.status_code in BODILESS or "Content-Encoding" in res.headers
                or not str(res.headers.get("Content-Type", "")).startswith("application/json")):
            return res
        vary = [v.strip() for v in str(res.headers.get("Vary", "")).split(",") if v.strip()]
        if "accept-encoding" not in (v.lower() for v in vary):
            res.headers["Vary"] = ", ".join([*vary, "Accept-Encoding"])
        if encoding.accepts_gzip(req.headers.get("Accept-Encoding")):
            res.body = await encoding.gzip_body(body)
            res.headers["Content-Encoding"] = "gzip"
            if "Content-Length" in res.headers:  # set by a handler: now the gzip's
                res.headers["Content-Length"] = str(len(res.body))
            self.gzipped += 1
        return res

    def _microdot_error(self, status: int):
        messages = {400: "malformed request", 404: "no such endpoint", 405: "method not allowed",
                    413: "request body too large", 500: "internal error; see the log"}

        async def handler(req, *args):
            headers = None
            if status == 405 and req is not None:  # RFC 9110 §15.5.6: a 405 says what is allowed
                headers = {"Allow": ", ".join(self.allowed_methods(req.path))}
            return json_response(errors.error_body(status, messages[status]), status, headers)

        return handler
