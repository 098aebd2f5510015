"""Realtime streams against the real ``burrow`` process: live queries over WebSocket, a stalled
WebSocket reader that must not delay DNS, and streams refused without credentials."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket

import dns.rcode
import pytest
import websockets
from websockets.asyncio.client import connect

from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream

PASSWORD = "realtime-tests correct horse 42"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("realtime"), [up.address]) as b:
        yield b


@pytest.fixture(scope="module")
def token(srv):
    status, body = srv.http("POST", "/api/auth/setup", {"username": "admin", "password": PASSWORD})
    if status == 404:
        pytest.skip("POST /api/auth/setup answers 404: the auth endpoints are not served yet, "
                    "so no token can be obtained for the WebSocket tests")
    assert status in (200, 201), (status, body)
    status, body = srv.http("POST", "/api/auth/login", {"username": "admin", "password": PASSWORD})
    assert status == 200, (status, body)
    return body["access_token"]


def run(coro, timeout=90):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def ws_url(srv, path):
    return f"ws://127.0.0.1:{srv.web_port}{path}"


def upgrade_request(path: str, extra: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def test_websocket_without_credentials_is_refused(srv):
    for path in ("/ws/queries", "/ws/metrics", "/ws/events", "/ws/health", "/ws/queries?token=forged"):
        with socket.create_connection(("127.0.0.1", srv.web_port), timeout=10) as s:
            s.sendall(upgrade_request(path))
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert b" 401 " in head.split(b"\r\n")[0], (path, head)
        assert b"101" not in head.split(b"\r\n")[0]
        assert json.loads(body)["code"] == 401

    async def library_client():
        with pytest.raises(websockets.exceptions.InvalidHandshake):
            async with connect(ws_url(srv, "/ws/queries")):
                pass

    run(library_client())


def test_ws_queries_streams_a_dnspython_query(srv, token):
    async def main():
        auth = {"Authorization": f"Bearer {token}"}
        async with connect(ws_url(srv, "/ws/queries?domain=wsprobe"), additional_headers=auth) as c:
            reply = await asyncio.to_thread(srv.query, "wsprobe.example.com", "A", timeout=5)
            assert reply.rcode() == dns.rcode.NOERROR
            for _ in range(50):  # bounded: skip anything else the filter lets through
                message = json.loads(await asyncio.wait_for(c.recv(), 15))
                if message["type"] == "query":
                    break
            assert message["data"]["domain"] == "wsprobe.example.com"
            assert message["data"]["client_ip"] == "127.0.0.1"
            assert message["data"]["query_type"] == "A"

    run(main())


def test_browser_style_token_in_query_string(srv, token):
    async def main():
        async with connect(ws_url(srv, f"/ws/metrics?token={token}")) as c:
            message = json.loads(await asyncio.wait_for(c.recv(), 15))
            assert message["type"] == "metrics"
            assert "qps" in message["data"] and "last_minute" in message["data"]

    run(main())


def test_stalled_websocket_reader_does_not_delay_dns(srv, token):
    """A client that upgrades and then never reads: DNS keeps answering every query, and a
    second (reading) client keeps receiving its stream."""
    stalled = socket.create_connection(("127.0.0.1", srv.web_port), timeout=10)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        stalled.sendall(upgrade_request("/ws/queries", f"Authorization: Bearer {token}\r\n"))
        assert stalled.recv(12).startswith(b"HTTP/1.1 101")
        # From here on the stalled client reads nothing.

        async def main():
            auth = {"Authorization": f"Bearer {token}"}
            async with connect(ws_url(srv, "/ws/queries?domain=stallcheck-last"),
                               additional_headers=auth) as reader:
                answered = 0
                long_labels = f"{'a' * 63}.{'b' * 63}"  # big rows fill the stalled socket sooner
                for i in range(1500):
                    reply = await asyncio.to_thread(
                        srv.query, f"n{i}.{long_labels}.stallcheck.example.com", "A", timeout=5)
                    assert reply.rcode() == dns.rcode.NOERROR
                    answered += 1
                assert answered == 1500
                await asyncio.to_thread(srv.query, "stallcheck-last.example.com", "A", timeout=5)
                for _ in range(50):
                    message = json.loads(await asyncio.wait_for(reader.recv(), 15))
                    if message["type"] == "query":
                        break
                assert message["data"]["domain"] == "stallcheck-last.example.com"

        run(main())
        status, body = srv.http("GET", "/healthz")
        assert status == 200
    finally:
        stalled.close()


def test_ws_events_carries_block_list_update_progress(tmp_path, token):
    """A list update's progress (compile start, per-phase progress, swap, finish) reaches
    /ws/events live as lists.* events, while /api/events (the stored log) keeps none of them."""
    with TestUpstream() as up:
        b = BurrowProcess(tmp_path / "b", [up.address])
        b.data_dir.mkdir(parents=True)
        (b.data_dir / "lists").mkdir()
        names = "".join(f"0.0.0.0 ad{i}.progress.test\n" for i in range(150_000))
        (b.data_dir / "lists" / "big.hosts").write_text(names)
        with b:
            status, _ = b.http("POST", "/api/auth/setup", {"username": "admin", "password": PASSWORD})
            assert status == 201
            status, body = b.http("POST", "/api/auth/login", {"username": "admin", "password": PASSWORD})
            auth = {"Authorization": f"Bearer {body['access_token']}"}

            async def main():
                seen = []
                async with connect(f"ws://127.0.0.1:{b.web_port}/ws/events", additional_headers=auth) as c:
                    status, made = await asyncio.to_thread(
                        b.http, "POST", "/api/lists", {"name": "big", "source": "big.hosts"}, headers=auth)
                    assert status == 201, made
                    while True:
                        msg = json.loads(await asyncio.wait_for(c.recv(), 30))
                        if msg["type"] != "event" or not msg["data"]["type"].startswith("lists."):
                            continue
                        seen.append(msg["data"])
                        if msg["data"]["type"] == "lists.refresh_finished":
                            return seen

            seen = run(main())
            types = [e["type"] for e in seen]
            assert "lists.compile_started" in types and "lists.index_swapped" in types
            phases = [e["data"]["phase"] for e in seen if e["type"] == "lists.compile_progress"]
            assert "list_started" in phases and "progress" in phases and "writing" in phases
            finished = seen[-1]["data"]
            assert finished["status"] == "ok" and finished["entries"] == 150_000
            status, stored = b.http("GET", "/api/events?limit=500", headers=auth)
            assert status == 200
            assert not [e for e in stored["events"] if e["type"].startswith("lists.")]
