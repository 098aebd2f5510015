"""A small DNS-over-TLS or DNS-over-HTTPS upstream for tests, on loopback, in its own thread.

``EncryptedUpstream("tls" | "https", cert, key)`` serves until closed (a context manager):
DoT as RFC 7858 asks (length-prefixed messages, each answered in its own task, so a slow one
does not hold up the others: answers leave in any order), DoH as RFC 8484 POST over HTTP/1.1
keep-alive (one request at a time per connection). Every A question is answered 192.0.2.53
(TTL 60), anything else with no data; a name whose first label starts with ``slow`` is answered
after ``slow_seconds``. ``connections`` counts accepted TLS connections (handshake done),
``queries`` the questions answered. The test's own answer, so the test knows what to expect;
Unbound (Debian's, HTTP/2 only for DoH) is the other upstream the integration tests use.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
import threading
from pathlib import Path

ANSWER_A = bytes([192, 0, 2, 53])


def answer(query: bytes) -> bytes:
    i = 12
    while query[i]:
        i += query[i] + 1
    qend = i + 5
    qtype = struct.unpack_from("!H", query, i + 1)[0]
    flags = 0x8000 | 0x0080 | (struct.unpack_from("!H", query, 2)[0] & 0x0100)
    if qtype == 1:
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + ANSWER_A
        return query[:2] + struct.pack("!HHHHH", flags, 1, 1, 0, 0) + query[12:qend] + rr
    return query[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + query[12:qend]


def first_label(query: bytes) -> bytes:
    return query[13:13 + query[12]].lower()


class EncryptedUpstream:
    __test__ = False

    def __init__(self, kind: str, cert: Path, key: Path, slow_seconds: float = 0.5) -> None:
        self.kind = kind
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        if kind == "https":
            self.ctx.set_alpn_protocols(["http/1.1"])
        self.slow_seconds = slow_seconds
        self.connections = 0
        self.queries = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def __enter__(self) -> "EncryptedUpstream":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    async def _start(self) -> asyncio.AbstractServer:
        serve = self._dot if self.kind == "tls" else self._doh
        return await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.ctx)

    async def _reply(self, query: bytes) -> bytes:
        if first_label(query).startswith(b"slow"):
            await asyncio.sleep(self.slow_seconds)
        self.queries += 1
        return answer(query)

    async def _dot(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        tasks = set()

        async def one(query: bytes) -> None:
            reply = await self._reply(query)
            writer.write(struct.pack("!H", len(reply)) + reply)

        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                task = asyncio.ensure_future(one(await reader.readexactly(size)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()

    async def _doh(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                pairs = (line.partition(":") for line in lines[1:] if line)
                headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                method, path = lines[0].split(" ")[:2]
                if method != "POST" or path != "/dns-query" \
                        or headers.get("content-type") != "application/dns-message":
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    continue
                reply = await self._reply(body)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\n"
                             b"Cache-Control: max-age=60\r\nContent-Length: %d\r\n\r\n" % len(reply) + reply)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, ValueError):
            pass
        finally:
            writer.close()
