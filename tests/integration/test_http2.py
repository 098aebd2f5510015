"""HTTP/2 on the HTTPS listener against the real ``burrow`` (api/http2.py): httpx with
``http2=True`` for DoH and the API, Python's ssl for what ALPN chooses, and HTTP/1.1 over TLS
still served (ALPN http/1.1, or none). kdig's DoH (HTTP/2 only): test_encrypted_dns.py.
The adapter's caps (streams, floods, deadlines, header sizes): tests/unit/api/test_http2.py."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import time
import uuid

import dns.message
import dns.rcode
import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.burrow_proc import BurrowProcess, free_port
from tests.support.tlscerts import TestCA, write_pair
from tests.support.upstream_client import TestUpstream

NAME = "dns.test"
ADMIN = {"username": "admin", "password": "Owner-Passphrase-2024"}

pytest.importorskip("h2", reason="httpx's http2 extra (h2) is not installed")


@pytest.fixture(scope="module")
def up():
    with TestUpstream() as u:
        yield u


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = TestCA()
    cert, key = write_pair(d, "server", ca.issue([NAME], ["127.0.0.1"]))
    return {"ca": ca.write(d / "ca.pem"), "cert": cert, "key": key}


@pytest.fixture(scope="module")
def tb(up, pki, tmp_path_factory):
    https_port = free_port()
    b = BurrowProcess(tmp_path_factory.mktemp("burrow"), [up.address], config={"tls": {
        "mode": "manual", "cert_file": str(pki["cert"]), "key_file": str(pki["key"]),
        "https_address": f"127.0.0.1:{https_port}"}})
    with b:
        b.https_port = https_port
        yield b


def ctx(pki, alpn=None) -> ssl.SSLContext:
    c = ssl.create_default_context(cafile=str(pki["ca"]))
    if alpn is not None:
        c.set_alpn_protocols(alpn)
    return c


def h2client(tb, pki) -> httpx.Client:
    return httpx.Client(base_url=f"https://127.0.0.1:{tb.https_port}", verify=ctx(pki), http2=True, timeout=30)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}.example.com"


def query(name: str) -> bytes:
    q = dns.message.make_query(name, "A")
    q.id = 0
    return q.to_wire()


def test_doh_get_post_and_json_over_http2(tb, up, pki):
    name = unique("h2doh")
    up.set_rule(name, records={"A": ["192.0.2.61"]}, ttl=77)
    with h2client(tb, pki) as c:
        wire = query(name)
        get = c.get("/dns-query", params={"dns": base64.urlsafe_b64encode(wire).rstrip(b"=").decode()})
        assert get.http_version == "HTTP/2" and get.status_code == 200
        assert get.headers["content-type"] == "application/dns-message"
        assert get.headers["cache-control"] == "max-age=77"
        assert [r.to_text() for rrset in dns.message.from_wire(get.content).answer for r in rrset] == ["192.0.2.61"]
        post = c.post("/dns-query", content=wire, headers={"Content-Type": "application/dns-message"})
        assert post.http_version == "HTTP/2" and post.status_code == 200
        assert dns.message.from_wire(post.content).rcode() == dns.rcode.NOERROR
        js = c.get("/dns-query", params={"name": name, "type": "A"}, headers={"Accept": "application/dns-json"})
        assert js.http_version == "HTTP/2" and js.status_code == 200
        assert [a["data"] for a in js.json()["Answer"]] == ["192.0.2.61"]
        bad = c.get("/dns-query", params={"dns": "!!"})  # the one error shape, over h2 too
        assert bad.status_code == 400 and bad.json()["details"][0]["field"] == "dns"


def test_the_api_with_a_cookie_session_over_http2(tb, pki):
    with h2client(tb, pki) as c:
        assert c.post("/api/auth/setup", json=ADMIN).status_code in (201, 409)
        login = c.post("/api/auth/login?cookie=1", json=ADMIN)
        assert login.http_version == "HTTP/2" and login.status_code == 200
        assert all("; Secure" in v for v in login.headers.get_list("set-cookie"))
        me = c.get("/api/auth/me")  # the cookies go back as HTTP/2 cookie crumbs, joined again
        assert me.status_code == 200 and me.json()["username"] == "admin"
        assert c.post("/api/cache/purge").json()["error"] == "csrf_failed"  # no X-CSRF-Token
        csrf = c.cookies["burrow_csrf"]
        purge = c.post("/api/cache/purge", headers={"X-CSRF-Token": csrf})
        assert purge.status_code == 200 and purge.json()["status"] == "ok"
        page = c.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        doc = c.get("/openapi.json")  # a large JSON answer, gzipped for a client that takes it
        assert doc.status_code == 200 and doc.headers["content-encoding"] == "gzip" and doc.json()["paths"]
        evil = c.get("/api/system", headers={"Host": "evil.example"})  # :authority, screened as Host
        assert evil.status_code == 421


def test_concurrent_streams_on_one_connection_are_answered_as_ready(tb, up, pki):
    slow = unique("h2slow")
    up.set_rule(slow, records={"A": ["192.0.2.62"]}, delay_ms=600)  # under the 1 s upstream timeout
    fast = [unique("h2fast") for _ in range(6)]
    for name in fast:
        up.set_rule(name, records={"A": ["192.0.2.63"]})

    async def main():
        done: list[str] = []
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{tb.https_port}", verify=ctx(pki),
                                     http2=True, timeout=30) as c:
            assert (await c.get("/healthz")).http_version == "HTTP/2"  # the connection, open

            async def ask(name):
                res = await c.post("/dns-query", content=query(name),
                                   headers={"Content-Type": "application/dns-message"})
                assert res.status_code == 200 and res.http_version == "HTTP/2"
                done.append(name)

            await asyncio.gather(ask(slow), *(ask(n) for n in fast))
        return done

    done = asyncio.run(main())
    assert done[-1] == slow and sorted(done[:-1]) == sorted(fast)  # none waited behind the slow one


def test_an_oversize_body_is_refused_and_the_connection_goes_on(tb, pki):
    with h2client(tb, pki) as c:
        big = c.post("/api/auth/login", content=json.dumps({"username": "x" * 100_000}).encode(),
                     headers={"Content-Type": "application/json"})
        assert big.http_version == "HTTP/2" and big.status_code == 413
        assert big.json()["code"] == 413
        doh = c.post("/dns-query", content=b"\0" * 70_000, headers={"Content-Type": "application/dns-message"})
        assert doh.status_code == 413
        assert c.get("/healthz").status_code == 200  # the same connection, still serving


@pytest.mark.parametrize("alpn, expected", [(["http/1.1"], "http/1.1"), (None, None), (["h2", "http/1.1"], "h2")])
def test_alpn_chooses_http2_or_http11_and_http11_over_tls_still_works(tb, pki, alpn, expected):
    raw = socket.create_connection(("127.0.0.1", tb.https_port), timeout=30)
    with ctx(pki, alpn).wrap_socket(raw, server_hostname=NAME) as s:
        assert s.selected_alpn_protocol() == expected
        if expected == "h2":
            return
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    with httpx.Client(base_url=f"https://127.0.0.1:{tb.https_port}", verify=ctx(pki), timeout=30) as c:
        res = c.get("/healthz")
        assert res.http_version == "HTTP/1.1" and res.status_code == 200


def test_websockets_stay_on_http11(tb, pki):
    """No extended CONNECT (RFC 8441): over h2 /ws/events answers 400; a browser opens an
    HTTP/1.1 connection for its websocket, which works over TLS."""
    with h2client(tb, pki) as c:
        assert c.post("/api/auth/setup", json=ADMIN).status_code in (201, 409)
        token = c.post("/api/auth/login", json=ADMIN).json()["access_token"]
        res = c.get("/ws/events", headers={"Authorization": f"Bearer {token}"})
        assert res.http_version == "HTTP/2" and res.status_code == 400 and "WebSocket" in res.json()["message"]

    async def main():
        async with connect(f"wss://127.0.0.1:{tb.https_port}/ws/events", ssl=ctx(pki),
                           additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            async with asyncio.timeout(20):
                return json.loads(await ws.recv())

    started = time.monotonic()
    hello = asyncio.run(main())
    assert hello["type"] == "hello", hello
    assert time.monotonic() - started < 20
