"""HTTP/2 on the HTTPS listener (api/http2.py): the adapter and its caps, against an in-process
BurrowWeb over TLS (ALPN h2) with a client made of the same ``h2`` library. Through the real
burrow with httpx and kdig: tests/integration/test_http2.py, test_encrypted_dns.py."""

from __future__ import annotations

import asyncio
import ssl

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from h2.errors import ErrorCodes
from microdot import Response

from burrow.api import http2, routes
from burrow.api.routes import Api
from burrow.tls import certs
from tests.support.tlscerts import TestCA, write_pair

DEADLINE = 20.0  # seconds any wait in these tests may take on a loaded machine


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return write_pair(tmp_path_factory.mktemp("h2pki"), "server", TestCA().issue(["burrow.test"], ["127.0.0.1"]))


class App:
    """An Api with a few routes: ``gate`` holds /api/slow until set."""

    def __init__(self):
        self.api = Api()
        self.gate = asyncio.Event()
        self.read = 0
        api = self.api

        @api.route("GET", "/api/ping", role="public", summary="ping", static=True)
        async def ping(req):
            return {"ok": True, "version": req.http_version, "host": req.headers.get("Host"),
                    "cookie": req.headers.get("Cookie")}

        @api.route("GET", "/api/slow", role="public", summary="slow", static=True)
        async def slow(req):
            await self.gate.wait()
            return {"slow": True}

        @api.route("POST", "/api/nobody", role="public", summary="takes no body", static=True)
        async def nobody(req):
            return {"length": len(req.body or b"")}

        @api.route("POST", "/api/upload", role="public", summary="reads a large body", stream_body=True,
                   static=True)
        async def upload(req):
            got = 0
            while got < req.content_length:
                piece = await req.stream.read(32 * 1024)
                if not piece:
                    break
                got += len(piece)
            self.read = got
            return {"read": got}

        @api.route("GET", "/api/big", role="public", summary="a large answer", raw_response=True, static=True)
        async def big(req):
            return Response(b"x" * 300_000, 200, {"Content-Type": "application/octet-stream"})

        @api.route("GET", "/api/chunks", role="public", summary="a streamed answer", raw_response=True,
                   static=True)
        async def chunks(req):
            async def gen():
                for i in range(50):
                    yield b"%d;" % i
            return Response(gen(), 200, {"Content-Type": "text/plain"})


async def serve(app: App, pair, alpn=("h2", "http/1.1")):
    ctx = certs.server_context(str(pair[0]), str(pair[1]), list(alpn))
    server = await asyncio.start_server(app.api.web.serve, "127.0.0.1", 0, ssl=ctx)
    return server, server.sockets[0].getsockname()[1]


class Client:
    """A bare HTTP/2 client: sends what a test says, collects the events that come back."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.events: list = []
        self.closed = False

    @classmethod
    async def open(cls, port: int, alpn=("h2",)) -> Client:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.set_alpn_protocols(list(alpn))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
        c = cls(reader, writer)
        c.conn.initiate_connection()
        c.flush()
        return c

    def flush(self):
        self.writer.write(self.conn.data_to_send())

    def request(self, method: str, path: str, headers=(), body: bytes = b"", end: bool = True) -> int:
        sid = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":path", path), (":scheme", "https"), (":authority", "127.0.0.1"),
                  *headers]
        self.conn.send_headers(sid, fields, end_stream=end and not body)
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    async def pump(self, until, timeout: float = DEADLINE):
        """Read and collect events until ``until(self)`` holds (or the connection ends)."""
        async with asyncio.timeout(timeout):
            while not until(self):
                data = await self.reader.read(65536)
                if not data:
                    self.closed = True
                    return
                for event in self.conn.receive_data(data):
                    self.events.append(event)
                    if isinstance(event, h2.events.DataReceived):
                        self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                self.flush()

    def finished(self, sid: int) -> bool:
        return any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == sid
                   for e in self.events)

    def answer(self, sid: int) -> tuple[int, dict, bytes]:
        status, headers, body = 0, {}, b""
        for e in self.events:
            if getattr(e, "stream_id", None) != sid:
                continue
            if isinstance(e, h2.events.ResponseReceived):
                headers = dict(e.headers)
                status = int(headers[":status"])
            elif isinstance(e, h2.events.DataReceived):
                body += e.data
        return status, headers, body

    async def get(self, sid: int) -> tuple[int, dict, bytes]:
        await self.pump(lambda c: c.finished(sid))
        return self.answer(sid)

    def reset(self, sid: int):
        return next((e for e in self.events if isinstance(e, h2.events.StreamReset) and e.stream_id == sid), None)

    def terminated(self):
        return next((e for e in self.events if isinstance(e, h2.events.ConnectionTerminated)), None)

    def close(self):
        self.writer.close()


async def send_body(c: Client, sid: int, body: bytes, end: bool = True) -> None:
    """DATA within the windows, waiting for the server's WINDOW_UPDATEs as needed."""
    sent = 0
    async with asyncio.timeout(DEADLINE):
        while sent < len(body):
            room = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size, len(body) - sent)
            if room <= 0:
                before = len(c.events)
                await c.pump(lambda c, before=before: len(c.events) > before)
                continue
            c.conn.send_data(sid, body[sent:sent + room], end_stream=end and sent + room == len(body))
            sent += room
            c.flush()


async def finish(app: App, server, *clients: Client) -> None:
    """Close the clients and wait for the server to let go of their connections."""
    for c in clients:
        c.close()
    async with asyncio.timeout(DEADLINE):
        while app.api.web.active_connections:
            await asyncio.sleep(0.02)
    server.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_a_request_is_served_like_http11_with_the_same_headers(pair):
    async def main():
        app = App()
        server, port = await serve(app, pair)
        c = await Client.open(port)
        sid = c.request("GET", "/api/ping", [("cookie", "a=1"), ("cookie", "b=2")])
        status, headers, body = await c.get(sid)
        assert status == 200
        assert routes.ujson.loads(body) == {"ok": True, "version": "2", "host": "127.0.0.1", "cookie": "a=1; b=2"}
        assert headers["content-type"].startswith("application/json")
        assert headers["x-content-type-options"] == "nosniff" and "content-security-policy" in headers
        assert "connection" not in headers
        # a wrong Host is screened as over HTTP/1.1 (421, the error shape)
        sid = c.request("GET", "/api/ping")
        c.conn.send_headers(sid + 2, [(":method", "GET"), (":path", "/api/ping"), (":scheme", "https"),
                                      (":authority", "evil.example")], end_stream=True)
        c.flush()
        await c.get(sid)
        status, _, body = await c.get(sid + 2)
        assert status == 421 and b'"error"' in body
        # the server's settings: our stream cap, no extended CONNECT (RFC 8441), no push
        remote = c.conn.remote_settings
        assert remote.max_concurrent_streams == http2.MAX_STREAMS
        assert remote.enable_connect_protocol == 0
        assert remote.max_header_list_size == routes.MAX_HEADER_BYTES
        await finish(app, server, c)

    run(main())


def test_streams_on_one_connection_are_answered_as_ready(pair):
    async def main():
        app = App()
        server, port = await serve(app, pair)
        c = await Client.open(port)
        slow = [c.request("GET", "/api/slow") for _ in range(3)]
        fast = c.request("GET", "/api/ping")
        status, _, _ = await c.get(fast)  # not behind the slow ones
        assert status == 200 and not any(c.finished(s) for s in slow)
        app.gate.set()
        for s in slow:
            assert (await c.get(s))[0] == 200
        assert app.api.web.connections_total == 1 and app.api.web.requests_total == 4
        await finish(app, server, c)

    run(main())


def test_streams_past_the_cap_are_refused_and_the_rest_served(pair):
    async def main():
        app = App()
        server, port = await serve(app, pair)
        c = await Client.open(port)  # sends before it has seen the server's SETTINGS
        sids = [c.request("GET", "/api/slow") for _ in range(http2.MAX_STREAMS + 4)]
        await c.pump(lambda c: sum(c.reset(s) is not None for s in sids) >= 4)
        refused = [s for s in sids if c.reset(s) is not None]
        assert len(refused) == 4 and all(c.reset(s).error_code == ErrorCodes.REFUSED_STREAM for s in refused)
        app.gate.set()
        served = [s for s in sids if s not in refused]
        for s in served:
            assert (await c.get(s))[0] == 200
        await finish(app, server, c)

    run(main())


@pytest.mark.parametrize("flood", ["rapid_reset", "ping", "settings"])
def test_a_flooding_client_gets_goaway_enhance_your_calm(pair, flood):
    async def main():
        app = App()
        server, port = await serve(app, pair)
        c = await Client.open(port)
        for i in range(2000):  # far past FLOOD_BURST + FLOOD_RATE × any plausible time
            if flood == "rapid_reset":
                sid = c.request("GET", "/api/slow")
                c.conn.reset_stream(sid, ErrorCodes.CANCEL)
            elif flood == "ping":
                c.conn.ping(i.to_bytes(8, "big"))
            else:
                c.conn.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 4096})
        try:
            c.flush()
            await c.writer.drain()
        except (OSError, ConnectionError):
            pass
        try:
            await c.pump(lambda c: c.terminated() is not None)
        except (OSError, ConnectionError):
            pass
        assert c.terminated() is not None and c.terminated().error_code == ErrorCodes.ENHANCE_YOUR_CALM
        assert app.api.web.flood_cuts == 1
        await finish(app, server, c)

    run(main())


def test_a_header_list_over_the_cap_gets_431_and_the_connection_goes_on(pair):
    async def main():
        app = App()
        server, port = await serve(app, pair)
        c = await Client.open(port)
        await c.pump(lambda c: any(isinstance(e, h2.events.SettingsAcknowledged) for e in c.events))
        big = c.request("GET", "/api/ping", [("x-big", "v" * (routes.MAX_HEADER_BYTES + 100))])
        status, _, body = await c.get(big)
        assert status == 431 and b"header" in body
        many = c.request("GET", "/api/ping", [(f"x-h{i}", "1") for i in range(routes.MAX_HEADERS + 1)])
        assert (await c.get(many))[0] == 431
        assert (await c.get(c.request("GET", "/api/ping")))[0] == 200
        await finish(app, server, c)

    run(main())


def test_a_stream_whose_body_does_not_arrive_gets_408_and_others_are_served(pair):
    async def main():
        app = App()
        app.api.web.request_deadline = 0.5
        server, port = await serve(app, pair)
        c = await Client.open(port)
        stuck = c.request("POST", "/api/nobody", [("content-length", "10")], body=b"", end=False)
        ok = c.request("GET", "/api/ping")
        assert (await c.get(ok))[0] == 200
        status, _, body = await c.get(stuck)
        assert status == 408 and b"did not arrive" in body
        assert app.api.web.deadline_cuts == 1
        await finish(app, server, c)

    run(main())


def test_an_idle_connection_is_closed_with_goaway(pair):
    async def main():
        app = App()
        app.api.web.keepalive_timeout = 0.5
        server, port = await serve(app, pair)
        c = await Client.open(port)
        assert (await c.get(c.request("GET", "/api/ping")))[0] == 200
        await c.pump(lambda c: c.terminated() is not None or c.closed)
        assert c.terminated() is not None and c.terminated().error_code == ErrorCodes.NO_ERROR
        assert app.api.web.idle_closes == 1 and app.api.web.active_connections == 0
        await finish(app, server, c)

    run(main())


def test_an_oversize_body_gets_413_and_the_connection_goes_on(pair):
    async def main():
        app = App()
        server, port = await serve(app, pair)
        c = await Client.open(port)
        await c.pump(lambda c: any(isinstance(e, h2.events.SettingsAcknowledged) for e in c.events))
        body = b"z" * (routes.MAX_JSON_BODY + 1)
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "POST"), (":path", "/api/nobody"), (":scheme", "https"),
                                  (":authority", "127.0.0.1"), ("content-length", str(len(body)))])
        c.conn.send_data(sid, body[:16384])
        c.flush()
        status, _, answer = await c.get(sid)  # answered from the Content-Length; the stream reset
        assert status == 413 and b"over 65536 bytes" in answer
        # without a Content-Length, a body past 64 KiB is refused as HTTP/1.1 refuses chunked: 411
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "POST"), (":path", "/api/nobody"), (":scheme", "https"),
                                  (":authority", "127.0.0.1")])
        await send_body(c, sid, body[:70000], end=False)
        status, _, answer = await c.get(sid)
        assert status == 411 and b"Content-Length" in answer
        assert (await c.get(c.request("GET", "/api/ping")))[0] == 200  # the connection goes on
        await finish(app, server, c)

    run(main())


def test_a_large_body_flows_to_the_route_as_it_reads_and_a_large_answer_within_the_windows(pair):
    async def main():
        app = App()
        server, port = await serve(app, pair)
        c = await Client.open(port)
        size = 1_000_000
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "POST"), (":path", "/api/upload"), (":scheme", "https"),
                                  (":authority", "127.0.0.1"), ("content-length", str(size))])
        c.flush()
        await send_body(c, sid, b"u" * size)  # the server's window opens as the route reads
        status, _, body = await c.get(sid)
        assert status == 200 and routes.ujson.loads(body) == {"read": size} and app.read == size
        status, headers, body = await c.get(c.request("GET", "/api/big"))
        assert status == 200 and body == b"x" * 300_000 and headers["content-length"] == "300000"
        status, headers, body = await c.get(c.request("GET", "/api/chunks"))
        assert status == 200 and body == b"".join(b"%d;" % i for i in range(50))
        head = c.request("HEAD", "/api/ping")
        status, headers, body = await c.get(head)
        assert status == 200 and body == b""
        await finish(app, server, c)

    run(main())


def test_the_connection_caps_are_shared_with_http11(pair):
    async def main():
        app = App()
        app.api.web.max_connections = 1
        server, port = await serve(app, pair)
        first = await Client.open(port)
        busy = first.request("GET", "/api/slow")  # holds the one slot: not idle, so not evicted
        await first.pump(lambda c: app.api.web.active_connections == 1 and bool(c.events))
        second = await Client.open(port)
        status, headers, body = await second.get(second.request("GET", "/api/ping"))
        assert status == 503 and headers["retry-after"] == routes.RETRY_AFTER and b"too many" in body
        # an HTTP/1.1 client over TLS meets the same cap
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        writer.write(b"GET /api/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        async with asyncio.timeout(DEADLINE):
            line = await reader.readline()
        assert line.startswith(b"HTTP/1.1 503")
        writer.close()
        app.gate.set()
        assert (await first.get(busy))[0] == 200
        assert app.api.web.rejected_connections == 2
        await finish(app, server, first, second)

    run(main())


def test_h2_is_imported_only_when_an_h2_connection_arrives():
    """Import time matters on the board: the app and the web server load neither h2 nor our glue."""
    import subprocess
    import sys

    code = ("import sys, burrow.app, burrow.api, burrow.api.routes, burrow.api.server, burrow.tls.service; "
            "loaded = sorted(m for m in ('h2', 'hpack', 'hyperframe', 'burrow.api.http2') if m in sys.modules); "
            "print(loaded); sys.exit(1 if loaded else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_header_reaches_the_log_even_at_debug(pair, caplog):
    """hpack logs each header it decodes at DEBUG: a bearer token or a cookie must not reach the
    log when the owner sets logging.level = debug (docs/security.md: secrets never in a log)."""
    import logging

    caplog.set_level(logging.DEBUG)

    async def main():
        app = App()
        server, port = await serve(app, pair)
        c = await Client.open(port)
        sid = c.request("GET", "/api/ping", [("authorization", "Bearer brw_SECRET-TOKEN"),
                                             ("cookie", "burrow_session=SECRET-COOKIE")])
        assert (await c.get(sid))[0] == 200
        await finish(app, server, c)

    run(main())
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "SECRET" not in text
