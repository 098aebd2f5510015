"""Download one list over HTTP(S): conditional, size-capped, bootstrapped through our upstreams.

``await fetch(url, dest_path, ...)`` is a small HTTP/1.1 client on asyncio streams and the
standard ``ssl`` module (no new dependency, never a shell):

* Resolution goes through ``resolve(host) -> [ip, ...]`` (sync or async). Burrow passes
  ``upstream_resolver(pool)``, which asks the configured upstream servers directly (A, then
  AAAA) — not the system resolver, which may be Burrow itself and, at boot, has no lists and
  no answers yet. Without ``resolve`` the loop's getaddrinfo is used (tools and tests). The
  addresses are tried in order, each with a connect timeout.
* HTTPS connects to the chosen IP but verifies the certificate against the URL's host name,
  which is also sent as SNI (``server_hostname``); verification is on (the default context,
  or the ``ssl_context`` given — tests pass one trusting their own CA).
* Conditional requests: ``If-None-Match: etag`` and ``If-Modified-Since: last_modified``
  when given; a 304 answer returns ``status="not_modified"`` and leaves ``dest_path`` alone.
* ``Accept-Encoding: gzip, deflate``: a gzip or deflate ``Content-Encoding`` is decoded while
  streaming (in bounded steps, so a compression bomb cannot blow up memory). A file that is
  itself gzip (``list.txt.gz`` served as application/gzip) is saved as is; the parser
  recognises gzip by its magic bytes. ``Transfer-Encoding: chunked`` is decoded.
* ``max_bytes`` caps the bytes written (after decoding) and is enforced while streaming: the
  download aborts as soon as it is passed (also early, from a Content-Length that says so).
* Redirects (301, 302, 303, 307, 308) are followed up to ``max_redirects``; a redirect from
  https to http is refused (it would drop the integrity the user asked for).
* ``timeout`` bounds the whole fetch (resolution, connect, headers and body).
* The body goes to a temporary file next to ``dest_path`` which is fsynced and renamed over
  it only when complete, so ``dest_path`` is either the old file or the whole new one.

Every failure raises ``FetchError`` (subclasses ``TooLarge``, ``TooManyRedirects``,
``HTTPStatusError``) with a message fit for the list's status.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import socket
import ssl
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, BinaryIO, Callable, Iterable, cast
from urllib.parse import urljoin, urlsplit

from burrow.dns import wire

if TYPE_CHECKING:
    from burrow.dns.upstream import UpstreamPool

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 10.0  # per address tried
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
MAX_VALIDATOR = 512  # longest ETag / Last-Modified we keep and send back
READ_SIZE = 64 * 1024
REDIRECTS = (301, 302, 303, 307, 308)

Resolver = Callable[[str], "Awaitable[list[str]] | list[str]"]


class FetchError(Exception):
    """The download failed; the message says why (shown in the list's status)."""


class TooLarge(FetchError):
    pass


class TooManyRedirects(FetchError):
    pass


class HTTPStatusError(FetchError):
    def __init__(self, status: int, reason: str):
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status


@dataclass
class FetchResult:
    status: str  # "updated" | "not_modified"
    bytes: int  # bytes written to dest_path (0 when not modified)
    etag: str | None
    last_modified: str | None
    url: str = ""  # the URL finally fetched (after redirects)
    http_status: int = 0


def _user_agent() -> str:
    try:
        from burrow import __version__
    except Exception:  # noqa: BLE001
        __version__ = "0"
    return f"Burrow/{__version__} (DNS sinkhole list updater)"


def _clean_validator(value: str | None) -> str | None:
    """A validator safe to send back in a header (no CR/LF/controls, bounded), or None."""
    if not value:
        return None
    value = value.strip()
    if not value or len(value) > MAX_VALIDATOR or any(ord(c) < 32 or ord(c) > 126 for c in value):
        return None
    return value


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


async def _resolve(host: str, port: int, resolve: Resolver | None) -> list[str]:
    if _is_ip(host):
        return [host]
    if resolve is not None:
        result = resolve(host)
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        addrs = [str(a) for a in cast("list[str]", result) or ()]
    else:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addrs = []
        for info in infos:
            if info[4][0] not in addrs:
                addrs.append(str(info[4][0]))
    if not addrs:
        raise FetchError(f"cannot resolve {host}: no addresses")
    return addrs


async def _connect(host: str, port: int, https: bool, ctx: ssl.SSLContext | None,
                   resolve: Resolver | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        addrs = await _resolve(host, port, resolve)
    except FetchError:
        raise
    except Exception as exc:  # noqa: BLE001 - resolver failures become a FetchError
        raise FetchError(f"cannot resolve {host}: {exc}") from exc
    last: Exception | None = None
    for ip in addrs:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await asyncio.open_connection(
                    ip, port,
                    ssl=ctx if https else None,
                    server_hostname=host if https else None,
                    limit=MAX_HEADER_BYTES,
                )
        except ssl.SSLError as exc:  # a certificate problem will not improve on another IP
            raise FetchError(f"TLS with {host} ({ip}) failed: {exc}") from exc
        except (OSError, asyncio.TimeoutError) as exc:
            last = exc
    reason = "timed out" if isinstance(last, asyncio.TimeoutError) else str(last)
    raise FetchError(f"cannot connect to {host} port {port} ({', '.join(addrs)}): {reason}")


class _Body:
    """Writes decoded body bytes to a file, enforcing the size cap."""

    def __init__(self, fh: BinaryIO, encoding: str, max_bytes: int) -> None:
        self.fh = fh
        self.max_bytes = max_bytes
        self.written = 0
        self.raw = 0
        self.encoding = encoding
        self._first = True
        self.dec: Any  # a zlib decompressor (zlib's type for it is private), or None
        if encoding == "gzip" or encoding == "x-gzip":
            self.dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.dec = zlib.decompressobj()  # zlib-wrapped; raw deflate detected below
        elif encoding in ("", "identity"):
            self.dec = None
        else:
            raise FetchError(f"unsupported Content-Encoding {encoding!r}")

    def _out(self, data: bytes) -> None:
        if not data:
            return
        self.written += len(data)
        if self.written > self.max_bytes:
            raise TooLarge(f"list is larger than the {self.max_bytes} byte cap; download aborted")
        self.fh.write(data)

    def feed(self, data: bytes) -> None:
        self.raw += len(data)
        if self.dec is None:
            if self.raw > self.max_bytes:
                raise TooLarge(f"list is larger than the {self.max_bytes} byte cap; "
                               "download aborted")
            self._out(data)
            return
        if self._first and self.encoding == "deflate" and data:
            self._first = False
            # Some servers send raw deflate (no zlib header) for "deflate".
            if (data[0] & 0x0F) != 8 or (len(data) > 1 and ((data[0] << 8) | data[1]) % 31):
                self.dec = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            chunk = self.dec.decompress(data, READ_SIZE)
            self._out(chunk)
            while self.dec.unconsumed_tail:
                chunk = self.dec.decompress(self.dec.unconsumed_tail, READ_SIZE)
                self._out(chunk)
        except zlib.error as exc:
            raise FetchError(f"corrupt {self.encoding} body: {exc}") from exc

    def finish(self) -> None:
        if self.dec is not None:
            try:
                self._out(self.dec.flush())
            except zlib.error as exc:
                raise FetchError(f"corrupt {self.encoding} body: {exc}") from exc
            if not self.dec.eof:
                raise FetchError(f"truncated {self.encoding} body")


async def _read_headers(reader: asyncio.StreamReader) -> tuple[int, str, dict[str, str]]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise FetchError("response headers too large") from None
    except asyncio.IncompleteReadError:
        raise FetchError("connection closed before the response headers ended") from None
    if len(head) > MAX_HEADER_BYTES:
        raise FetchError("response headers too large")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise FetchError(f"not an HTTP/1.x response: {status_line[:80]!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers: dict[str, str] = {}
    count = 0
    for line in lines[1:]:
        if not line:
            continue
        count += 1
        if count > MAX_HEADERS:
            raise FetchError("too many response headers")
        name, sep, value = line.partition(":")
        if not sep:
            raise FetchError(f"malformed response header {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return status, reason, headers


async def _read_chunked(reader: asyncio.StreamReader, body: _Body) -> None:
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise FetchError("bad chunked encoding (truncated size line)") from None
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise FetchError(f"bad chunk size {size_text[:20]!r}") from None
        if size < 0:
            raise FetchError("bad chunk size")
        if size == 0:
            # Trailers until an empty line (bounded by the reader's limit per line).
            for _ in range(MAX_HEADERS + 1):
                try:
                    trailer = await reader.readuntil(b"\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return  # some servers close right after the last chunk
                if trailer == b"\r\n":
                    return
            raise FetchError("too many trailers")
        remaining = size
        while remaining:
            data = await reader.read(min(remaining, READ_SIZE))
            if not data:
                raise FetchError("connection closed in the middle of a chunk")
            remaining -= len(data)
            body.feed(data)
        try:
            crlf = await reader.readexactly(2)
        except asyncio.IncompleteReadError:
            raise FetchError("bad chunked encoding (truncated chunk)") from None
        if crlf != b"\r\n":
            raise FetchError("bad chunked encoding (missing CRLF after a chunk)")


async def _read_length(reader: asyncio.StreamReader, body: _Body, length: int) -> None:
    remaining = length
    while remaining:
        data = await reader.read(min(remaining, READ_SIZE))
        if not data:
            raise FetchError(f"connection closed after {length - remaining} of {length} bytes")
        remaining -= len(data)
        body.feed(data)


async def _read_to_eof(reader: asyncio.StreamReader, body: _Body) -> None:
    while True:
        data = await reader.read(READ_SIZE)
        if not data:
            return
        body.feed(data)


def _temp_name(dest: str) -> str:
    head, tail = os.path.split(os.path.abspath(dest))
    return os.path.join(head, f".{tail}.part-{os.getpid()}-{secrets.token_hex(4)}")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


async def _one_request(url: str, dest: str, etag: str | None, last_modified: str | None,
                       max_bytes: int, ctx: ssl.SSLContext | None, resolve: Resolver | None,
                       user_agent: str) -> tuple[str, tuple[Any, ...]]:
    """One request. Returns ("redirect", (status, location)) | ("not_modified", (status,
    headers)) | ("updated", (status, bytes, headers))."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"unsupported URL scheme {scheme!r}")
    host = parts.hostname
    if not host:
        raise FetchError("the URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise FetchError(f"bad port in URL: {exc}") from None
    https = scheme == "https"
    if https and ctx is None:
        ctx = ssl.create_default_context()
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if any(ord(c) <= 32 or ord(c) == 127 for c in target) or any(ord(c) > 126 for c in target):
        raise FetchError("the URL path contains spaces or characters that must be %-encoded")
    host_header = f"[{host}]" if ":" in host else host
    if parts.port and parts.port != (443 if https else 80):
        host_header += f":{parts.port}"
    lines = [f"GET {target} HTTP/1.1", f"Host: {host_header}", f"User-Agent: {user_agent}",
             "Accept: */*", "Accept-Encoding: gzip, deflate", "Connection: close"]
    if etag:
        lines.append(f"If-None-Match: {etag}")
    if last_modified:
        lines.append(f"If-Modified-Since: {last_modified}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")

    reader, writer = await _connect(host, port, https, ctx, resolve)
    try:
        writer.write(request)
        await writer.drain()
        status, reason, headers = await _read_headers(reader)
        while 100 <= status < 200:  # 100 Continue and friends: skip to the real answer
            status, reason, headers = await _read_headers(reader)
        if status in REDIRECTS:
            location = headers.get("location")
            if not location:
                raise FetchError(f"HTTP {status} redirect without a Location")
            return "redirect", (status, location)
        if status == 304:
            if not (etag or last_modified):
                raise FetchError("HTTP 304 Not Modified to an unconditional request")
            return "not_modified", (status, headers)
        if status != 200:
            raise HTTPStatusError(status, reason)
        te = headers.get("transfer-encoding", "").lower()
        encoding = headers.get("content-encoding", "").strip().lower()
        length_text = headers.get("content-length")
        length = None
        if length_text is not None and "chunked" not in te:
            try:
                length = int(length_text.split(",")[0].strip())
            except ValueError:
                raise FetchError(f"bad Content-Length {length_text[:20]!r}") from None
            if length < 0:
                raise FetchError("negative Content-Length")
            if length > max_bytes and encoding in ("", "identity"):
                raise TooLarge(f"list is {length} bytes, over the {max_bytes} byte cap; "
                               "not downloaded")
        if te and te not in ("chunked", "identity"):
            raise FetchError(f"unsupported Transfer-Encoding {te!r}")
        tmp = _temp_name(dest)
        fh = open(tmp, "wb")
        ok = False
        try:
            body = _Body(fh, encoding, max_bytes)
            if "chunked" in te:
                await _read_chunked(reader, body)
            elif length is not None:
                await _read_length(reader, body, length)
            else:
                await _read_to_eof(reader, body)
            body.finish()
            fh.flush()
            await asyncio.get_running_loop().run_in_executor(None, os.fsync, fh.fileno())
            fh.close()
            os.replace(tmp, dest)
            ok = True
        finally:
            if not fh.closed:
                fh.close()
            if not ok:
                _unlink(tmp)
        return "updated", (status, body.written, headers)
    finally:
        writer.transport.abort()  # everything read (or failed): no TLS close handshake to wait on


async def fetch(
    url: str,
    dest_path: str | os.PathLike[str],
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    resolve: Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
    user_agent: str | None = None,
) -> FetchResult:
    """Download ``url`` to ``dest_path`` (see the module doc). Raises FetchError."""
    dest = os.fspath(dest_path)
    etag = _clean_validator(etag)
    last_modified = _clean_validator(last_modified)
    agent = user_agent or _user_agent()
    current = url
    try:
        async with asyncio.timeout(timeout):
            for _hop in range(max_redirects + 1):
                kind, data = await _one_request(current, dest, etag, last_modified, max_bytes,
                                                ssl_context, resolve, agent)
                if kind == "redirect":
                    status, location = data
                    nxt = urljoin(current, location.strip())
                    if urlsplit(nxt).scheme.lower() not in ("http", "https"):
                        raise FetchError(f"redirect to an unsupported URL {nxt[:200]!r}")
                    if (urlsplit(current).scheme.lower() == "https"
                            and urlsplit(nxt).scheme.lower() == "http"):
                        raise FetchError(f"refusing a redirect from https to http ({nxt[:200]})")
                    current = nxt
                    continue
                if kind == "not_modified":
                    status, headers = data
                    return FetchResult("not_modified", 0,
                                       _clean_validator(headers.get("etag")) or etag,
                                       _clean_validator(headers.get("last-modified"))
                                       or last_modified, current, status)
                status, size, headers = data
                return FetchResult("updated", size, _clean_validator(headers.get("etag")),
                                   _clean_validator(headers.get("last-modified")), current, status)
            raise TooManyRedirects(f"more than {max_redirects} redirects (last: {current[:200]})")
    except TimeoutError:
        raise FetchError(f"download timed out after {timeout:g} s") from None
    except FetchError:
        raise
    except ssl.SSLError as exc:
        raise FetchError(f"TLS error: {exc}") from exc
    except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
        raise FetchError(f"{type(exc).__name__}: {exc}") from exc


# ------------------------------------------------------------------ bootstrap resolution


def _addresses(reply: bytes, qname: bytes, qtype: int) -> list[str]:
    """A/AAAA addresses for ``qname`` in ``reply``, following its CNAME chain."""
    if len(reply) < 12:
        return []
    qd, an = struct.unpack_from("!HH", reply, 4)
    offset = 12
    for _ in range(qd):
        offset = wire.question_end(reply, offset) + 4
    rrs, _ = wire.read_rrs(reply, offset, an)
    names = {qname}
    for _ in range(16):  # follow CNAMEs (bounded)
        grew = False
        for rr in rrs:
            if rr.rtype == wire.TYPE_CNAME and rr.owner in names:
                target = wire.rdata_name(reply, rr)
                if target not in names:
                    names.add(target)
                    grew = True
        if not grew:
            break
    out = []
    for rr in rrs:
        if rr.rtype != qtype or rr.owner not in names or rr.rclass != wire.CLASS_IN:
            continue
        raw = reply[rr.rdata_offset:rr.end]
        if qtype == wire.TYPE_A and len(raw) == 4:
            out.append(str(ipaddress.IPv4Address(raw)))
        elif qtype == wire.TYPE_AAAA and len(raw) == 16:
            out.append(str(ipaddress.IPv6Address(raw)))
    return out


def upstream_resolver(pool: UpstreamPool, *, families: Iterable[int] = (wire.TYPE_A, wire.TYPE_AAAA)
                      ) -> Callable[[str], Awaitable[list[str]]]:
    """A ``resolve(host)`` for ``fetch`` that asks Burrow's upstream servers directly.

    ``pool`` is a ``burrow.dns.upstream.UpstreamPool``. A and AAAA are asked at the same
    time; the result lists IPv4 addresses first, then IPv6. Raises FetchError when neither
    yields an address.
    """
    qtypes = tuple(families)

    async def resolve(host: str) -> list[str]:
        if _is_ip(host):
            return [host]
        try:
            qname = wire.text_to_name(host)
        except (wire.WireError, UnicodeError) as exc:
            raise FetchError(f"bad host name {host!r}: {exc}") from None

        async def ask(qtype: int) -> list[str]:
            question = qname + struct.pack("!HH", qtype, wire.CLASS_IN)
            reply, _server = await pool.query(question, 0, False)
            return _addresses(reply, qname, qtype)

        results = await asyncio.gather(*(ask(t) for t in qtypes), return_exceptions=True)
        addrs: list[str] = []
        errors: list[str] = []
        for r in results:
            if isinstance(r, BaseException):
                if isinstance(r, asyncio.CancelledError):
                    raise r
                errors.append(str(r) or type(r).__name__)
            else:
                addrs.extend(a for a in r if a not in addrs)
        if not addrs:
            why = "; ".join(errors) if errors else "no A/AAAA records"
            raise FetchError(f"cannot resolve {host} through the upstream servers: {why}")
        return addrs

    return resolve


def system_resolver() -> Callable[[str], Any]:
    """``resolve`` through the system resolver (getaddrinfo); for tools, not the appliance."""

    async def resolve(host: str) -> list[str]:
        return await _resolve(host, 0, None)

    return resolve
