"""DNS over HTTPS to an upstream (RFC 8484): POST ``application/dns-message`` over HTTP/1.1
keep-alive, on up to DOH_MAX_CONNECTIONS TLS connections per server.

HTTP/1.1 answers in order, so a connection carries one request at a time (no pipelining: a
slow answer would hold up the ones behind it); a query takes an idle connection, else opens one
while under the cap, else waits for one within its timeout. A connection is reused until the
server says ``Connection: close``, closes it, or it sits idle for IDLE_TIMEOUT; a request lost
because the server closed a connection that had served earlier ones is sent again once on a
fresh connection. A query cut off mid-answer (its timeout) closes its connection: what is
still on the wire could not be told from the next answer.

The answer must be ``200`` with ``Content-Type: application/dns-message`` and a body of at
most 65,535 bytes (``Content-Length`` or chunked); anything else is a transport failure of the
server. The head of an answer is capped at MAX_HEAD bytes. HTTP/2 is not spoken (the TLS
handshake offers ALPN ``http/1.1`` only; a server that insists on h2 fails the handshake).
"""

from __future__ import annotations

import asyncio
import time

from ..config.upstream_spec import UpstreamSpec
from .upstream_tls import IDLE_TIMEOUT, Encryption, TransportError

DOH_MAX_CONNECTIONS = 4  # HTTP/1.1 connections per DoH upstream (each one request at a time)
MAX_HEAD = 16 * 1024  # bytes of status line and headers in one answer
MAX_BODY = 65535  # bytes of a DNS message
MAX_HEADERS = 64  # header lines in one answer


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
        self.busy = 0  # connections with a request on them
        self.room = asyncio.Event()
        self.opened = 0  # connections opened, ever
        host = spec.server_name or (f"[{spec.host}]" if ":" in spec.host else spec.host)
        authority = host if spec.port == 443 else f"{host}:{spec.port}"
        self._head = (f"POST {spec.path} HTTP/1.1\r\nHost: {authority}\r\n"
                      "Content-Type: application/dns-message\r\nAccept: application/dns-message\r\n"
                      "Content-Length: ").encode("ascii")
        self._reaper: asyncio.TimerHandle | None = None

    async def exchange(self, packet: bytes, timeout: float) -> bytes:
        request = self._head + b"%d\r\n\r\n" % len(packet) + packet
        async with asyncio.timeout(timeout):
            for retry in (False, True):
                conn = await self._acquire()
                kept = False
                try:
                    body, keep = await conn.post(request)
                    conn.served += 1
                    kept = keep
                    return body
                except (_Lost, ConnectionError) as e:
                    if retry or not conn.served:
                        raise TransportError(str(e) or type(e).__name__) from None
                finally:
                    self._release(conn, kept)
        raise AssertionError("unreachable")

    async def _acquire(self) -> _H1Connection:
        while True:
            generation = self.encryption.generation
            while self.idle:
                conn = self.idle.pop()
                if conn.generation == generation and not conn.closed and not conn.reader.at_eof() \
                        and time.monotonic() - conn.last_used < IDLE_TIMEOUT:
                    self.busy += 1
                    return conn
                conn.close()
            if self.busy < DOH_MAX_CONNECTIONS:
                self.busy += 1
                try:
                    reader, writer = await self.encryption.connect(self.spec, limit=MAX_HEAD)
                except BaseException:
                    self.busy -= 1
                    self.room.set()
                    raise
                self.opened += 1
                return _H1Connection(reader, writer, generation)
            self.room.clear()
            await self.room.wait()

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
        return {"connections": len(self.idle) + self.busy, "connections_opened": self.opened,
                "in_flight": self.busy}

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle = []
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
