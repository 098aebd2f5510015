"""DNS over HTTPS to an upstream (RFC 8484): POST ``application/dns-message`` over HTTP/2 when
the server offers it, else over HTTP/1.1 keep-alive.

The TLS handshake offers ALPN ``h2`` then ``http/1.1`` (upstream_tls.Encryption.context); the
server's choice decides the connection. HTTP/2 (upstream_doh2.py, which imports the ``h2``
library, so only when a server picks it): ONE connection per server carries every query as
its own stream, up to upstream_doh2.H2_MAX_STREAMS at once (or the server's lower limit); a
new one opens only when that one is gone (GOAWAY, closed, idle, CAs changed). Until a
handshake has shown the server to speak HTTP/1.1, one connection is opened at a time and
queries arriving meanwhile wait for it, so an HTTP/2 server never gets a burst of connections.

HTTP/1.1 (here): up to DOH_MAX_CONNECTIONS TLS connections per server. HTTP/1.1 answers in
order, so a connection carries one request at a time (no pipelining: a slow answer would hold
up the ones behind it); a query takes an idle connection, else opens one while under the cap,
else waits for one within its timeout. A connection is reused until the server says
``Connection: close``, closes it, or it sits idle for IDLE_TIMEOUT; a request lost because the
server closed a connection that had served earlier ones is sent again once on a fresh
connection. A query cut off mid-answer (its timeout) closes its connection: what is still on
the wire could not be told from the next answer.

The answer must be ``200`` with ``Content-Type: application/dns-message`` and a body of at
most 65,535 bytes (``Content-Length`` or chunked); anything else is a transport failure of the
server. The head of an answer is capped at MAX_HEAD bytes.

A query asked again (a lost connection that had served, a GOAWAY, a refused stream) is asked
again once; ``snapshot()`` counts those (``retried``), names the protocol the last handshake
chose (``http_version``: ``h2`` or ``http/1.1``) and the most streams one HTTP/2 connection
carried at once (``most_streams``).
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ..config.upstream_spec import UpstreamSpec
from .upstream_tls import IDLE_TIMEOUT, Encryption, TransportError

if TYPE_CHECKING:
    from .upstream_doh2 import H2Connection

DOH_MAX_CONNECTIONS = 4  # HTTP/1.1 connections per DoH upstream (each one request at a time)
MAX_HEAD = 16 * 1024  # bytes of status line and headers in one answer
MAX_BODY = 65535  # bytes of a DNS message
MAX_HEADERS = 64  # header lines in one answer


class Retry(Exception):
    """An HTTP/2 stream was not answered for a reason that is the connection's, not the
    query's (upstream_doh2.py): ask again, once, on a fresh connection."""


class _Lost(Exception):
    """The connection closed before any byte of the answer."""


class _H1Connection:
    __slots__ = ("reader", "writer", "served", "last_used", "generation", "closed")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, generation: int) -> None:
        self.reader = reader
        self.writer = writer
        self.served = 0
        self.last_used = time.monotonic()
        self.generation = generation
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()

    async def post(self, request: bytes) -> tuple[bytes, bool]:
        """Send one request; (body, keep the connection)."""
        self.writer.write(request)
        await self.writer.drain()
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if not e.partial:
                raise _Lost("connection closed by the server") from None
            raise TransportError("the answer's head was cut short") from None
        except asyncio.LimitOverrunError:
            raise TransportError(f"the answer's head is over {MAX_HEAD} bytes") from None
        lines = head[:-4].decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
            raise TransportError(f"not an HTTP/1.1 answer: {lines[0][:80]!r}")
        if len(lines) > MAX_HEADERS + 1:
            raise TransportError(f"over {MAX_HEADERS} header lines")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise TransportError(f"bad header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line[1])
        keep = headers.get("connection", "").lower() != "close" and status_line[0] != "HTTP/1.0"
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        elif "content-length" in headers:
            text = headers["content-length"]
            if not text.isdigit() or int(text) > MAX_BODY:
                raise TransportError(f"bad Content-Length {text[:20]!r}")
            body = await self.reader.readexactly(int(text))
        else:
            if status == 200:
                raise TransportError("an answer without Content-Length or chunked body")
            body, keep = b"", False
        if status != 200:
            raise TransportError(f"HTTP {status} {status_line[2] if len(status_line) > 2 else ''}".strip())
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/dns-message":
            raise TransportError(f"answer of type {ctype or 'none'!r}, not application/dns-message")
        return body, keep

    async def _chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = await self.reader.readuntil(b"\r\n")
            size_text = line.split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise TransportError("bad chunk size") from None
            if len(body) + size > MAX_BODY:
                raise TransportError(f"answer body over {MAX_BODY} bytes")
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return bytes(body)
            body += await self.reader.readexactly(size)
            if await self.reader.readexactly(2) != b"\r\n":
                raise TransportError("bad chunk end")


class DohTransport:
    """DNS over HTTPS to one server (module doc)."""

    def __init__(self, spec: UpstreamSpec, encryption: Encryption) -> None:
        self.spec = spec
        self.encryption = encryption
        self.idle: list[_H1Connection] = []  # ready for a request, most recently used last
        self.busy = 0  # HTTP/1.1 connections with a request on them (or being opened)
        self.h2: H2Connection | None = None  # the HTTP/2 connection that takes new streams
        self._draining: set[H2Connection] = set()  # older ones finishing their streams
        self.room = asyncio.Event()
        self.opened = 0  # connections opened, ever
        self.protocol: str | None = None  # what the last handshake chose: "h2" or "http/1.1"
        self.retried = 0  # queries asked again after a lost connection, a GOAWAY or a refused stream
        self.most_streams = 0  # the most streams open at once on one HTTP/2 connection
        self._connecting: asyncio.Future[None] | None = None
        host = spec.server_name or (f"[{spec.host}]" if ":" in spec.host else spec.host)
        self.authority = host if spec.port == 443 else f"{host}:{spec.port}"
        self._head = (f"POST {spec.path} HTTP/1.1\r\nHost: {self.authority}\r\n"
                      "Content-Type: application/dns-message\r\nAccept: application/dns-message\r\n"
                      "Content-Length: ").encode("ascii")
        self._reaper: asyncio.TimerHandle | None = None

    async def exchange(self, packet: bytes, timeout: float) -> bytes:
        async with asyncio.timeout(timeout):
            for retry in (False, True):
                if retry:
                    self.retried += 1
                conn = await self._acquire()
                if not isinstance(conn, _H1Connection):
                    self.most_streams = max(self.most_streams, len(conn.streams) + 1)
                    try:
                        return await conn.post(packet)
                    except Retry as e:
                        if retry:
                            raise TransportError(str(e)) from None
                    continue
                kept = False
                try:
                    body, keep = await conn.post(self._head + b"%d\r\n\r\n" % len(packet) + packet)
                    conn.served += 1
                    kept = keep
                    return body
                except (_Lost, ConnectionError) as e:
                    if retry or not conn.served:
                        raise TransportError(str(e) or type(e).__name__) from None
                finally:
                    self._release(conn, kept)
        raise AssertionError("unreachable")

    async def _acquire(self) -> _H1Connection | H2Connection:
        """An HTTP/2 connection with room for a stream, else an idle HTTP/1.1 one, else a new
        connection (the handshake decides which) while under the cap, else wait. While the
        server's protocol is not known to be HTTP/1.1, one connection is opened at a time and
        queries arriving meanwhile wait for it: an HTTP/2 server gets one connection."""
        while True:
            generation = self.encryption.generation
            current = self.h2
            if current is not None:
                if current.usable(generation):
                    if current.has_room():
                        return current
                    self.room.clear()
                    await self.room.wait()
                    continue
                self._retire(current)
                continue
            while self.idle:
                conn = self.idle.pop()
                if conn.generation == generation and not conn.closed and not conn.reader.at_eof() \
                        and time.monotonic() - conn.last_used < IDLE_TIMEOUT:
                    self.busy += 1
                    return conn
                conn.close()
            if self._connecting is not None:
                await asyncio.shield(self._connecting)
                continue
            if self.busy < DOH_MAX_CONNECTIONS:
                opened = await self._open(generation)
                if opened is not None:
                    return opened
                continue
            self.room.clear()
            await self.room.wait()

    async def _open(self, generation: int) -> _H1Connection | None:
        """Open a connection: an HTTP/1.1 one is the caller's; an HTTP/2 one becomes self.h2
        once the server's SETTINGS came (one that closes before them is this query's failure,
        not a reason to open another at once)."""
        fut = None
        if self.protocol != "http/1.1":
            fut = self._connecting = asyncio.get_running_loop().create_future()
        self.busy += 1
        counted = True  # in self.busy
        try:
            reader, writer = await self.encryption.connect(self.spec, limit=MAX_HEAD)
            self.opened += 1
            ssl_object = writer.get_extra_info("ssl_object")
            self.protocol = (ssl_object.selected_alpn_protocol() if ssl_object is not None else None) or "http/1.1"
            if self.protocol != "h2":
                return _H1Connection(reader, writer, generation)
            self.busy -= 1
            counted = False
            from .upstream_doh2 import H2Connection as H2
            conn = H2(reader, writer, generation, self.authority, self.spec.path, self._changed)
            try:
                await conn.ready.wait()
            except BaseException:
                conn.close()
                raise
            if conn.closed:
                raise TransportError("the server closed the HTTP/2 connection before its SETTINGS")
            self.h2 = conn
            return None
        except BaseException as e:
            if counted:
                self.busy -= 1
            self.room.set()
            if fut is not None and not isinstance(e, asyncio.CancelledError):
                fut.set_exception(e)
                fut.exception()  # retrieved: nobody need be waiting
            raise
        finally:
            if fut is not None:
                self._connecting = None
                if not fut.done():
                    fut.set_result(None)

    def _retire(self, conn: H2Connection) -> None:
        """The current HTTP/2 connection takes no new streams (GOAWAY, closed, older CAs): it
        serves the ones it has, then closes."""
        if self.h2 is conn:
            self.h2 = None
        if not conn.streams:
            conn.close()
        elif not conn.closed:
            self._draining.add(conn)

    def _changed(self, conn: H2Connection) -> None:
        if conn.closed:
            if self.h2 is conn:
                self.h2 = None
            self._draining.discard(conn)
        elif conn in self._draining and not conn.streams:
            conn.close()
        self.room.set()

    def _release(self, conn: _H1Connection, keep: bool) -> None:
        self.busy -= 1
        if keep and not conn.closed:
            conn.last_used = time.monotonic()
            self.idle.append(conn)
            self._reap_later()
        else:
            conn.close()
        self.room.set()

    def _reap_later(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self._reap)

    def _reap(self) -> None:
        """Close connections idle for IDLE_TIMEOUT."""
        self._reaper = None
        now = time.monotonic()
        keep = []
        for conn in self.idle:
            if now - conn.last_used >= IDLE_TIMEOUT or conn.closed:
                conn.close()
            else:
                keep.append(conn)
        self.idle = keep
        if keep:
            self._reap_later()

    def snapshot(self) -> dict[str, object]:
        h2 = ([self.h2] if self.h2 is not None else []) + list(self._draining)
        return {"connections": len(self.idle) + self.busy + len(h2), "connections_opened": self.opened,
                "in_flight": self.busy + sum(len(c.streams) for c in h2), "http_version": self.protocol,
                "retried": self.retried, "most_streams": self.most_streams}

    def close(self) -> None:
        for h2 in [self.h2, *self._draining]:
            if h2 is not None:
                h2.close()
        self.h2 = None
        self._draining.clear()
        for conn in self.idle:
            conn.close()
        self.idle = []
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
