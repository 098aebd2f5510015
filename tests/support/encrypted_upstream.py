"""A small DNS-over-TLS or DNS-over-HTTPS upstream for tests, on loopback, in its own thread.

``EncryptedUpstream("tls" | "https" | "h2", cert, key)`` serves until closed (a context manager):
DoT as RFC 7858 asks (length-prefixed messages, each answered in its own task, so a slow one
does not hold up the others: answers leave in any order), DoH as RFC 8484 POST over HTTP/1.1
keep-alive (one request at a time per connection) for "https", over HTTP/2 for "h2" (ALPN h2
only; the ``h2`` library's server side; each stream answered in its own task).

HTTP/2 misbehaviour on demand, by the first label of the question (each at most once per name,
so the client's second try is answered): ``refuse*`` gets RST_STREAM REFUSED_STREAM,
``reset*`` RST_STREAM INTERNAL_ERROR (every time), ``goaway*`` a GOAWAY whose last stream ID
is below its stream (not processed) and the connection closed a moment later, ``drop*`` the
TCP connection closed. ``h2_max_streams`` is the SETTINGS_MAX_CONCURRENT_STREAMS it announces,
``h2_window`` its SETTINGS_INITIAL_WINDOW_SIZE (how much of a request body it takes before a
WINDOW_UPDATE); ``most_streams`` the most streams it saw open at once on one connection,
``cancelled`` the streams the client reset. ``h2_mute`` closes each connection after the TLS
handshake, before its SETTINGS. Every A question is answered 192.0.2.53
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

    def __init__(self, kind: str, cert: Path, key: Path, slow_seconds: float = 0.5,
                 h2_max_streams: int = 128, h2_window: int = 65535, h2_mute: bool = False) -> None:
        self.kind = kind
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        if kind == "https":
            self.ctx.set_alpn_protocols(["http/1.1"])
        elif kind == "h2":
            self.ctx.set_alpn_protocols(["h2"])
        self.slow_seconds = slow_seconds
        self.h2_max_streams = h2_max_streams
        self.h2_window = h2_window
        self.h2_mute = h2_mute
        self.cancelled = 0  # streams the client reset
        self.errors: list[str] = []  # why HTTP/2 connections ended in error
        self.most_streams = 0
        self.misbehaved: set[bytes] = set()
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
        serve = {"tls": self._dot, "https": self._doh, "h2": self._doh2}[self.kind]
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

    async def _doh2(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h2.config
        import h2.connection
        import h2.errors
        import h2.events
        import h2.settings

        self.connections += 1
        if self.h2_mute:  # the handshake, then a close before any SETTINGS
            writer.close()
            return
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        conn.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.h2_max_streams,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.h2_window})
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        requests: dict[int, tuple[dict[bytes, bytes], bytearray]] = {}
        tasks = set()

        async def one(sid: int, headers: dict[bytes, bytes], body: bytes) -> None:
            label = first_label(body) if len(body) > 12 else b""
            fresh = label not in self.misbehaved
            if label.startswith((b"refuse", b"goaway", b"drop")) and fresh:
                self.misbehaved.add(label)
                if label.startswith(b"refuse"):
                    conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                elif label.startswith(b"goaway"):
                    conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=sid - 2)
                    writer.write(conn.data_to_send())
                    await asyncio.sleep(0.2)
                    writer.close()
                    return
                else:
                    writer.transport.abort()
                    return
                writer.write(conn.data_to_send())
                return
            if label.startswith(b"reset"):
                conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
                writer.write(conn.data_to_send())
                return
            if headers.get(b":method") != b"POST" or headers.get(b":path") != b"/dns-query" \
                    or headers.get(b"content-type") != b"application/dns-message":
                conn.send_headers(sid, [(b":status", b"400"), (b"content-length", b"0")], end_stream=True)
                writer.write(conn.data_to_send())
                return
            reply = await self._reply(body)
            conn.send_headers(sid, [(b":status", b"200"), (b"content-type", b"application/dns-message"),
                                    (b"content-length", b"%d" % len(reply))])
            conn.send_data(sid, reply, end_stream=True)
            writer.write(conn.data_to_send())

        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        requests[event.stream_id] = (dict(event.headers), bytearray())
                        self.most_streams = max(self.most_streams, len(requests))
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                        if event.stream_id in requests:
                            requests[event.stream_id][1].extend(event.data)
                    elif isinstance(event, h2.events.StreamEnded) and event.stream_id in requests:
                        headers, body = requests[event.stream_id]
                        task = asyncio.ensure_future(one(event.stream_id, headers, bytes(body)))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                        task.add_done_callback(lambda _t, sid=event.stream_id: requests.pop(sid, None))
                    elif isinstance(event, h2.events.StreamReset):
                        self.cancelled += 1
                        requests.pop(event.stream_id, None)
                writer.write(conn.data_to_send())
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        except Exception as e:  # h2's protocol errors: the connection ends
            self.errors.append(repr(e))
        finally:
            for task in tasks:
                task.cancel()
            writer.close()
