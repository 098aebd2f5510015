"""WebSocket streams on a real loopback server: auth before the upgrade, filters, caps, loss
reports, slow clients cut off, and websockets never cut by the HTTP write deadline."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from types import SimpleNamespace

import pytest
import websockets
from websockets.asyncio.client import connect

from burrow.api import routes, ws
from burrow.api.routes import Api
from burrow.telemetry.events import EventBus
from tests.support.timing import until

from tests.support.fakes import VIEWER, FakeAuth, FakePrincipal


class FakeStats:
    def realtime(self):
        return {"qps": 1.5, "last_minute": {"total": 90, "blocked": 3, "cached": 40}}


class FakeRecorder:
    stats = FakeStats()
    received = 0  # queries counted
    flushed = 0  # rows written to the log


class FakeCache:
    def stats(self):
        return {"entries": 7, "hits": 5}


class FakeCounters:
    def as_dict(self):
        return {"udp": 3, "tcp": 1}


class FakeResolver:
    cache = FakeCache()
    fastpath = SimpleNamespace(stats=lambda: {"entries": 2})
    server = SimpleNamespace(counters=FakeCounters())


class FakeStatus:
    def __init__(self, state):
        self.state = state

    def as_dict(self):
        return {"state": self.state, "reasons": [], "led": self.state}


class FakeBoard:
    def __init__(self):
        self.state = "ready"

    def status(self):
        return FakeStatus(self.state)

    async def system_recent(self):
        return {"cpu": {"percent": 2.0}}


class FakeApp:
    def __init__(self):
        self.auth = FakeAuth({"Bearer good": VIEWER},
                             {"cookie-good": FakePrincipal("vera", "viewer", "read", via="cookie")})
        self.events = EventBus()
        self.recorder = FakeRecorder()
        self.resolver = FakeResolver()
        self.board = FakeBoard()


class Server:
    def __init__(self, app):
        self.app = app
        self.api = Api(app.auth)
        ws.register(self.api, events=app.events, recorder=app.recorder, resolver=app.resolver, board=app.board)

    async def __aenter__(self):
        self.server = await self.api.web.start_server("127.0.0.1", 0, start_serving=False)
        await self.server.start_serving()
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    def url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"


GOOD = {"Authorization": "Bearer good"}


def run(coro):
    asyncio.run(asyncio.wait_for(coro, 60))


async def raw_upgrade(port, path, headers=""):
    """Send a WebSocket upgrade by hand; return (status line, headers+body text)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n").encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    text = data.decode(errors="replace")
    return text.split("\r\n", 1)[0], text


def query_row(domain, client="10.0.0.5", blocked=False, decision="resolved"):
    return {"id": None, "domain": domain, "client_ip": client, "blocked": blocked,
            "decision": decision, "query_type": "A"}


def test_no_or_bad_credentials_get_json_401_and_no_upgrade():
    async def main():
        app = FakeApp()
        async with Server(app) as srv:
            for headers in ("", "Authorization: Bearer forged\r\n", "Cookie: burrow_session=bad\r\n"):
                status, text = await raw_upgrade(srv.port, "/ws/queries", headers)
                assert " 401 " in status, (headers, status)
                body = json.loads(text.split("\r\n\r\n", 1)[1])
                assert body["code"] == 401 and "timestamp" in body
            status, _ = await raw_upgrade(srv.port, "/ws/queries?token=forged")
            assert " 401 " in status
            with pytest.raises(websockets.exceptions.InvalidHandshake):
                async with connect(srv.url("/ws/events")):
                    pass
            assert len(app.events) == 0  # nothing subscribed for refused clients

    run(main())


def test_plain_http_get_is_refused_without_subscribing():
    async def main():
        app = FakeApp()
        async with Server(app) as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(b"GET /ws/queries HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\n\r\n")
            data = await asyncio.wait_for(reader.read(65536), 10)
            writer.close()
            assert b" 400 " in data.split(b"\r\n", 1)[0]
            assert len(app.events) == 0

    run(main())


def test_queries_stream_applies_filters_header_token_and_cookie():
    async def main():
        app = FakeApp()
        async with Server(app) as srv:
            async with connect(srv.url("/ws/queries?domain=Ads.&blocked=true"), additional_headers=GOOD) as c1, \
                    connect(srv.url("/ws/queries?token=good&client=10.0.0.9")) as c2, \
                    connect(srv.url("/ws/queries?decision=cached"),
                            additional_headers={"Cookie": "burrow_session=cookie-good"}) as c3:
                assert await until(lambda: len(app.events) == 3)
                app.events.publish("queries", query_row("ads.example.com", blocked=False))
                app.events.publish("queries", query_row("www.example.com", client="10.0.0.9"))
                app.events.publish("queries", query_row("x.ads.example.net", blocked=True, decision="blocked"))
                app.events.publish("queries", query_row("c.example", decision="cached"))
                m1 = json.loads(await asyncio.wait_for(c1.recv(), 10))
                m2 = json.loads(await asyncio.wait_for(c2.recv(), 10))
                m3 = json.loads(await asyncio.wait_for(c3.recv(), 10))
                assert m1 == {"type": "query", "data": query_row("x.ads.example.net", blocked=True,
                                                                 decision="blocked")}
                assert m2["data"]["domain"] == "www.example.com"
                assert m3["data"]["domain"] == "c.example"
            # Closing the client frees its subscription and its slot.
            assert await until(lambda: len(app.events) == 0 and srv.api.streams.open == 0)

    run(main())


def test_cap_refuses_with_503_before_upgrade():
    async def main():
        app = FakeApp()
        async with Server(app) as srv:
            srv.api.streams.max_clients = 1
            async with connect(srv.url("/ws/metrics"), additional_headers=GOOD) as c1:
                await asyncio.wait_for(c1.recv(), 10)
                status, text = await raw_upgrade(srv.port, "/ws/events", "Authorization: Bearer good\r\n")
                assert " 503 " in status
                assert json.loads(text.split("\r\n\r\n", 1)[1])["code"] == 503
            assert await until(lambda: srv.api.streams.open == 0)
            async with connect(srv.url("/ws/events"), additional_headers=GOOD):
                pass  # a slot is free again

    run(main())


def test_relay_reports_lost_messages_before_the_next_one():
    async def main():
        bus = EventBus()
        sub = bus.subscribe("queries", maxsize=4)
        for i in range(10):
            bus.publish("queries", query_row(f"d{i}.example"))
        sent = []

        async def send(obj):
            sent.append(obj)
            if len(sent) == 5:
                sub.close()

        await ws._relay(sub, send, lambda e: {"type": "query", "data": e.payload})
        assert sent[0] == {"type": "lost", "count": 6}
        assert [m["data"]["domain"] for m in sent[1:]] == [f"d{i}.example" for i in range(6, 10)]

    run(main())


def test_metrics_events_and_health_streams():
    async def main():
        app = FakeApp()
        async with Server(app) as srv:
            async with connect(srv.url("/ws/metrics"), additional_headers=GOOD) as c:
                m = json.loads(await asyncio.wait_for(c.recv(), 10))
                assert m["type"] == "metrics"
                assert m["data"]["qps"] == 1.5 and m["data"]["last_minute"]["total"] == 90
                assert m["data"]["cache"] == {"entries": 7, "hits": 5} and m["data"]["fast_path"] == {"entries": 2}
                assert m["data"]["dns"] == {"udp": 3, "tcp": 1} and m["data"]["system"] == {"cpu": {"percent": 2.0}}
            async with connect(srv.url("/ws/events"), additional_headers=GOOD) as c:
                hello = json.loads(await asyncio.wait_for(c.recv(), 10))
                assert hello == {"type": "hello", "heartbeat": ws.EVENTS_HEARTBEAT}
                assert await until(lambda: app.events.has_subscribers("events"))
                app.events.publish("events", {"type": "auth.login_failed", "username": "bob",
                                              "password": "hunter2", "reason": "bad_password"})
                m = json.loads(await asyncio.wait_for(c.recv(), 10))
                assert m["type"] == "event" and m["data"]["type"] == "auth.login_failed"
                assert m["data"]["actor"] == "bob" and m["data"]["severity"] == "warning"
                assert "hunter2" not in json.dumps(m)

    run(main())


def test_a_quiet_event_stream_says_hello_then_pings(monkeypatch):
    """A page tells a healthy quiet /ws/events from a dead one by these (js/live.js)."""
    monkeypatch.setattr(ws, "EVENTS_HEARTBEAT", 0.3)

    async def main():
        app = FakeApp()
        async with Server(app) as srv:
            async with connect(srv.url("/ws/events"), additional_headers=GOOD) as c:
                assert json.loads(await asyncio.wait_for(c.recv(), 10)) == {"type": "hello", "heartbeat": 0.3}
                assert json.loads(await asyncio.wait_for(c.recv(), 10)) == {"type": "ping"}
                assert await until(lambda: app.events.has_subscribers("events"))
                app.events.publish("events", {"type": "blocking.paused", "summary": "x"})
                seen = []
                while not any(m["type"] == "event" for m in seen):  # pings may come in between
                    seen.append(json.loads(await asyncio.wait_for(c.recv(), 10)))
                assert {m["type"] for m in seen} <= {"event", "ping"}
                assert seen[-1]["data"]["type"] == "blocking.paused"

    run(main())


def test_the_event_stream_carries_status_changes_and_throttled_stats_updates(monkeypatch):
    """What keeps the dashboard live without polling (js/live.js: status.changed is applied as
    it is, stats.updated makes the page ask for the figures)."""
    monkeypatch.setattr(ws, "STATS_EVENT_INTERVAL", 0.1)

    async def next_event(c):
        while True:
            m = json.loads(await asyncio.wait_for(c.recv(), 10))
            if m["type"] == "event":
                return m["data"]

    async def main():
        app = FakeApp()
        async with Server(app) as srv:
            async with connect(srv.url("/ws/events"), additional_headers=GOOD) as c:
                assert json.loads(await asyncio.wait_for(c.recv(), 10))["type"] == "hello"
                assert await until(lambda: app.events.has_subscribers("health"))
                app.events.publish("health", {"state": "paused", "reasons": ["blocking paused"], "led": "paused"})
                e = await next_event(c)
                assert e["type"] == "status.changed" and e["summary"] == "status paused"
                assert e["data"] == {"state": "paused", "reasons": ["blocking paused"], "led": "paused"}
                app.recorder.received = 5  # queries were counted: one update says so
                e = await next_event(c)
                assert e["type"] == "stats.updated" and e["data"] == {"received": 5, "written": 0}
                app.recorder.flushed = 5  # and written to the log: one more
                e = await next_event(c)
                assert e["data"] == {"received": 5, "written": 5}
                app.events.publish("events", {"type": "blocking.resumed", "summary": "x"})
                assert (await next_event(c))["type"] == "blocking.resumed"  # nothing in between: no change

    run(main())


def test_health_is_the_board_status_then_each_change_it_publishes():
    async def main():
        app = FakeApp()
        async with Server(app) as srv:
            async with connect(srv.url("/ws/health"), additional_headers=GOOD) as c:
                assert json.loads(await asyncio.wait_for(c.recv(), 10))["data"]["state"] == "ready"
                app.events.publish("health", {"state": "degraded", "reasons": ["upstream"], "led": "blink"})
                m = json.loads(await asyncio.wait_for(c.recv(), 10))
                assert m == {"type": "health", "data": {"state": "degraded", "reasons": ["upstream"],
                                                        "led": "blink"}}

    run(main())


def test_websocket_outlives_the_http_write_deadline(monkeypatch):
    # The write deadline wraps res.write only; a websocket returns already_handled and is not cut.
    monkeypatch.setattr(routes, "WRITE_DEADLINE", 0.01)

    async def main():
        app = FakeApp()
        async with Server(app) as srv:
            async with connect(srv.url("/ws/queries"), additional_headers=GOOD) as c:
                assert await until(lambda: len(app.events) == 1)
                await asyncio.sleep(0.2)  # well past the (patched) deadline
                app.events.publish("queries", query_row("late.example"))
                m = json.loads(await asyncio.wait_for(c.recv(), 10))
                assert m["data"]["domain"] == "late.example"
            assert srv.api.web.deadline_cuts == 0

    run(main())


def test_client_that_never_reads_is_disconnected_and_frees_its_slot(monkeypatch):
    monkeypatch.setattr(ws, "SEND_TIMEOUT", 0.2)

    async def main():
        app = FakeApp()
        async with Server(app) as srv:
            sock = socket.create_connection(("127.0.0.1", srv.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall((f"GET /ws/queries HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                          "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer good\r\n\r\n").encode())
            try:
                assert await until(lambda: len(app.events) == 1)
                big = query_row("x" * 60_000)
                deadline = time.monotonic() + 30  # bounded: until the server gives up on this reader
                while not srv.api.streams.send_timeouts and time.monotonic() < deadline:
                    app.events.publish("queries", big)
                    await asyncio.sleep(0.001)
                assert srv.api.streams.send_timeouts == 1
                assert await until(lambda: srv.api.streams.open == 0 and len(app.events) == 0)
            finally:
                sock.close()

    run(main())
