"""HTTP/1.1 through the running process (issue 15): status lines with their reason phrases,
persistent connections (RFC 9112 §9: reuse, pipelining, HTTP/1.0, ``Connection: close``, the
idle timeout, a full cap), request deadlines on a kept-alive connection, a body the route did
not read, chunked exports, and gzip of large JSON by Accept-Encoding.

Raw sockets see exactly what goes on the wire; http.client and httpx check that ordinary
clients reuse one connection. Every wait has a deadline; none relies on speed."""

from __future__ import annotations

import gzip
import http.client
import json
import select
import socket
import time
from http import HTTPStatus

import httpx
import pytest

from tests.support.api_client import admin_token, metric
from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream

LONG_DEADLINE = 120.0  # a busy machine must not cut the requests these tests hold open
SHORT = 2.0  # the short fixture's request deadline and idle timeout, seconds


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """Burrow with a test upstream, the default keep-alive timeout and a long request deadline."""
    config = {"server": {"http_request_deadline": LONG_DEADLINE}}
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("keepalive"), [up.address],
                                             config=config) as b:
        yield b


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """Burrow whose request deadline and keep-alive idle timeout are both SHORT."""
    config = {"server": {"http_request_deadline": SHORT, "http_keepalive_timeout": SHORT}}
    with BurrowProcess(tmp_path_factory.mktemp("keepalive-short"), config=config) as b:
        yield b


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Burrow with two connections per client, four in all."""
    config = {"server": {"http_max_connections": 4, "http_max_connections_per_client": 2,
                         "http_request_deadline": LONG_DEADLINE}}
    with BurrowProcess(tmp_path_factory.mktemp("keepalive-small"), config=config) as b:
        yield b


# ---- a raw HTTP/1.1 client -----------------------------------------------------------------------

class Answer:
    def __init__(self, status_line: str, headers: dict, body: bytes):
        self.status_line = status_line
        self.status = int(status_line.split(" ", 2)[1])
        self.headers = headers  # lower-cased names; a repeated field's values joined by ", "
        self.body = body

    def json(self):
        return json.loads(gzip.decompress(self.body) if self.headers.get("content-encoding") == "gzip"
                          else self.body)


class Raw:
    """One TCP connection; ``answer()`` reads exactly one response (by Content-Length, chunked,
    or until the close), leaving whatever follows in the buffer."""

    def __init__(self, b: BurrowProcess, source: str = "127.0.0.1", timeout: float = 30.0):
        self.b = b
        self.sock = socket.create_connection(("127.0.0.1", b.web_port), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""
        self.timeout = timeout

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Raw":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, path: str, *fields: str, body: bytes = b"", version: str = "1.1") -> None:
        lines = [f"{method} {path} HTTP/{version}", f"Host: 127.0.0.1:{self.b.web_port}", *fields]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _more(self) -> bytes:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return chunk

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            if not self._more():
                raise AssertionError(f"closed before {marker!r}; got {self.buf[:300]!r}")
        out, self.buf = self.buf.split(marker, 1)
        return out

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._more():
                raise AssertionError(f"closed {n - len(self.buf)} bytes short")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def answer(self, head_only: bool = False) -> Answer:
        lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
        status = int(lines[0].split(" ", 2)[1])
        if head_only or status in (204, 304) or status < 200:
            body = b""
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._until(b"\r\n")  # no trailers: the empty line
                    break
                body += self._exactly(size)
                assert self._exactly(2) == b"\r\n"
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        else:
            while self._more():
                pass
            body, self.buf = self.buf, b""
        return Answer(lines[0], headers, body)

    def closed_within(self, seconds: float) -> bool:
        """Whether the server closes the connection (EOF, nothing more sent) within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
                try:
                    if not self._more():
                        return True
                except ConnectionResetError:
                    return True
        return False

    def still_open(self) -> bool:
        """No EOF waiting right now (a closed connection is readable with b"")."""
        if not select.select([self.sock], [], [], 0)[0]:
            return True
        return bool(self._more())


def phrase(status: int) -> str:
    return f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"


# ---- status lines --------------------------------------------------------------------------------

def test_every_status_line_is_http11_with_its_reason_phrase(web, short):
    cases = [
        (web, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 200),
        (web, b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 401),
        (web, b"GET /api/nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404),
        (web, b"DELETE /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405),
        (web, b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
              b"Content-Length: 2\r\n\r\nab", 415),
        (web, b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: 70000\r\n\r\n" + b" " * 70000, 413),
        (web, b"GET /api/auth/setup HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421),
        # refused before any route
        (web, b"GET  /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
        (web, b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"0\r\n\r\n", 411),
        (web, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
        (web, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
        (web, b"GET /healthz HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 505),
        (short, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", 408),  # never finished
    ]
    for b, data, status in cases:
        with Raw(b) as c:
            c.send(data)
            answer = c.answer()
        assert answer.status_line == phrase(status), (data[:60], answer.status_line)
        if status >= 400:
            assert answer.json()["code"] == status
    # 201 (or 409 once set up) and 304 too
    with Raw(web) as c:
        c.request("POST", "/api/auth/setup", "Content-Type: application/json",
                  body=json.dumps({"username": "admin", "password": "Owner-Passphrase-2024"}).encode())
        created = c.answer()
        assert created.status_line in (phrase(201), phrase(409)), created.status_line
        c.request("GET", "/")
        page = c.answer()
        assert page.status_line == phrase(200) and page.headers.get("etag"), page.headers
        c.request("GET", "/", f"If-None-Match: {page.headers['etag']}")
        cached = c.answer()
        assert cached.status_line == phrase(304)
        # no body, no Content-Length: the next answer on the connection starts right after it
        assert "content-length" not in cached.headers and "transfer-encoding" not in cached.headers
        c.request("GET", "/healthz")
        assert c.answer().json() == {"status": "alive"}


# ---- persistent connections ----------------------------------------------------------------------

def test_one_http11_connection_serves_many_requests_in_sequence(web):
    with Raw(web) as c:
        for i in range(20):
            path = ("/healthz", "/api/nope", "/api/auth/setup")[i % 3]
            c.request("GET", path)
            answer = c.answer()
            assert answer.status == (404 if path == "/api/nope" else 200), answer.status_line
            assert "close" not in answer.headers.get("connection", "")
        assert c.still_open()


def test_pipelined_requests_are_answered_in_order(web):
    paths = ["/healthz", "/api/nope", "/api/auth/setup", "/healthz", "/api/nope"]
    with Raw(web) as c:
        c.send(b"".join(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % p.encode() for p in paths))
        answers = [c.answer() for _ in paths]
    assert [a.status for a in answers] == [200, 404, 200, 200, 404]
    assert answers[0].json() == {"status": "alive"} and answers[3].json() == {"status": "alive"}
    assert answers[1].json()["code"] == 404 and answers[4].json()["code"] == 404
    assert isinstance(answers[2].json()["required"], bool)  # the setup answer, third in line


def test_http_client_and_httpx_reuse_one_connection(web):
    """Counted on both sides: the client's local port stays the same, and the server's count
    of requests on a reused connection grows by one per request after the first."""
    token = admin_token(web)
    before = metric(web, token, "burrow_http_reused_requests_total")
    conn = http.client.HTTPConnection("127.0.0.1", web.web_port, timeout=30)
    ports = set()
    for _ in range(10):
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.reason == "OK" and json.loads(resp.read()) == {"status": "alive"}
        ports.add(conn.sock.getsockname()[1])
    conn.close()
    assert len(ports) == 1, ports
    reused = metric(web, token, "burrow_http_reused_requests_total") - before
    assert reused >= 9, reused  # (other tests' clients may add to it, never take away)

    with httpx.Client(base_url=f"http://127.0.0.1:{web.web_port}", timeout=30) as client:
        seen = set()
        for _ in range(10):
            r = client.get("/api/auth/setup")
            assert r.status_code == 200 and r.http_version == "HTTP/1.1" and r.reason_phrase == "OK"
            seen.add(r.extensions["network_stream"].get_extra_info("client_addr"))
        assert len(seen) == 1, seen


def test_http10_closes_unless_it_asks_for_keep_alive(web):
    with Raw(web) as c:
        c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = c.answer()
        assert answer.status_line == phrase(200) and answer.headers["connection"] == "close"
        assert c.closed_within(30.0)
    with Raw(web) as c:
        for _ in range(3):
            c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            answer = c.answer()
            assert answer.json() == {"status": "alive"} and answer.headers["connection"] == "keep-alive"
        assert c.still_open()


def test_connection_close_is_honoured(web):
    with Raw(web) as c:
        c.request("GET", "/healthz")
        assert c.answer().status == 200
        c.request("GET", "/healthz", "Connection: close")
        answer = c.answer()
        assert answer.status == 200 and answer.headers["connection"] == "close"
        c.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # too late: never answered
        assert c.closed_within(30.0)
        assert c.buf == b"", c.buf[:200]


def test_an_idle_connection_is_closed_after_the_keepalive_timeout(short):
    with Raw(short) as c:
        c.request("GET", "/healthz")
        assert c.answer().status == 200
        c.request("GET", "/healthz")  # still open right after an answer
        assert c.answer().status == 200
        start = time.monotonic()
        assert c.closed_within(SHORT + 30.0), "the idle connection was never closed"
        assert time.monotonic() - start >= SHORT * 0.5  # idle for a while first, not cut at once
        assert c.buf == b""  # closed without a word: an idle connection has nothing to answer


def test_a_slow_second_request_is_cut_at_the_deadline_like_a_first(short):
    with Raw(short) as c:
        c.request("GET", "/healthz")
        assert c.answer().status == 200
        c.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        start = time.monotonic()
        c.sock.setblocking(False)
        while time.monotonic() - start < SHORT * 4:  # a dribble that would outlast the deadline
            if select.select([c.sock], [], [], 0.3)[0]:
                break
            try:
                c.sock.send(b"X-Drip: a\r\n")
            except OSError:
                break
        c.sock.setblocking(True)
        answer = c.answer()
        elapsed = time.monotonic() - start
    assert answer.status_line == phrase(408) and answer.headers["connection"] == "close"
    assert elapsed < SHORT * 4, elapsed  # cut at the deadline (a busy machine adds to it)


def test_a_body_the_route_did_not_read_does_not_become_a_request(web):
    smuggled = b"GET /api/nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    # A small body (read with the head): the next request on the connection parses as sent.
    with Raw(web) as c:
        c.request("POST", "/healthz", "Content-Type: text/plain", body=smuggled)
        assert c.answer().status == 405
        c.request("GET", "/healthz")
        assert c.answer().json() == {"status": "alive"}
        assert c.still_open()
    # A body over the JSON cap, which no route read: the connection closes after the answer,
    # and a request inside the body is never answered.
    with Raw(web) as c:
        c.request("POST", "/healthz", "Content-Type: text/plain", body=smuggled * 2000)
        answer = c.answer()
        assert answer.status == 405 and answer.headers["connection"] == "close"
        assert c.closed_within(30.0)
        assert b"HTTP/1.1" not in c.buf


def test_idle_connections_give_way_at_a_full_cap(small):
    """Two idle kept-alive connections fill the client's cap; a third connection is served,
    the oldest idle one closed for it, instead of a 503."""
    first, second = Raw(small, "127.0.0.2"), Raw(small, "127.0.0.2")
    try:
        for c in (first, second):
            c.request("GET", "/healthz")
            assert c.answer().status == 200
        with Raw(small, "127.0.0.2") as third:
            third.request("GET", "/healthz")
            assert third.answer().status == 200
        assert first.closed_within(30.0)
        assert first.buf == b""
        second.request("GET", "/healthz")
        assert second.answer().status == 200
    finally:
        first.close()
        second.close()


# ---- bodies --------------------------------------------------------------------------------------

def test_a_streamed_export_is_chunked_on_http11_and_close_delimited_on_http10(web):
    token = admin_token(web)
    for i in range(5):
        web.query(f"export-{i}.example")
    auth = f"Authorization: Bearer {token}"
    with Raw(web) as c:
        c.request("GET", "/api/reports/queries?format=json", auth)
        answer = c.answer()
        assert answer.status == 200 and answer.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in answer.headers
        export = json.loads(answer.body)
        assert isinstance(export["queries"], list)
        c.request("HEAD", "/api/reports/queries?format=csv", auth)
        head = c.answer(head_only=True)
        assert head.status == 200
        c.request("GET", "/healthz")  # the connection goes on after both
        assert c.answer().json() == {"status": "alive"}
    with Raw(web) as c:
        c.send(f"GET /api/reports/queries?format=json HTTP/1.0\r\n{auth}\r\nConnection: keep-alive\r\n\r\n".encode())
        answer = c.answer()
        assert answer.status == 200 and answer.headers["connection"] == "close"
        assert "transfer-encoding" not in answer.headers
        assert isinstance(json.loads(answer.body)["queries"], list)


def test_large_json_is_gzipped_when_the_client_takes_it(web):
    plain_bytes = None
    cases = {None: False, "gzip": True, "GZIP": True, "x-gzip": True, "gzip, deflate, br": True,
             "br;q=1, gzip;q=0.8": True, "*": True, "gzip;q=0": False, "gzip;q=0.000": False,
             "*;q=0": False, "identity": False, "": False, "deflate": False,
             "gzip;q=0.5, identity": False, "gzip;q=nonsense": False, "*, gzip;q=0": False}
    with Raw(web) as c:
        for accept, gzipped in cases.items():
            c.request("GET", "/openapi.json", *([f"Accept-Encoding: {accept}"] if accept is not None else []))
            answer = c.answer()
            assert answer.status == 200
            assert (answer.headers.get("content-encoding") == "gzip") is gzipped, (accept, answer.headers)
            assert "accept-encoding" in answer.headers.get("vary", "").lower()
            assert int(answer.headers["content-length"]) == len(answer.body)
            body = gzip.decompress(answer.body) if gzipped else answer.body
            if plain_bytes is None:
                plain_bytes = body
            assert body == plain_bytes
            if gzipped:
                assert len(answer.body) < len(plain_bytes) / 3
        # HEAD says the length the GET would send
        c.request("HEAD", "/openapi.json", "Accept-Encoding: gzip")
        head = c.answer(head_only=True)
        c.request("GET", "/openapi.json", "Accept-Encoding: gzip")
        assert head.headers["content-length"] == c.answer().headers["content-length"]
        # small JSON: as it is, and no Vary on it
        c.request("GET", "/healthz", "Accept-Encoding: gzip")
        small = c.answer()
        assert "content-encoding" not in small.headers and small.json() == {"status": "alive"}
        assert "accept-encoding" not in small.headers.get("vary", "").lower()


def test_an_authenticated_api_page_is_gzipped_through_httpx(web):
    token = admin_token(web)
    for i in range(40):
        web.query(f"gzip-page-{i}.example")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{web.web_port}", headers=headers, timeout=30) as client:
        deadline = time.monotonic() + 30
        while True:  # the recorder flushes each second
            r = client.get("/api/queries", params={"limit": 1000}, headers={"Accept-Encoding": "gzip"})
            if len(r.content) >= 4096 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert int(r.headers["content-length"]) < len(r.content)  # the wire held the gzip
        assert r.json()["queries"]
        plain = client.get("/api/queries", params={"limit": 1000}, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers


def test_a_websocket_upgrade_works_on_a_kept_alive_connection(web):
    """A browser may reuse a connection for the upgrade: 101, then WebSocket frames."""
    token = admin_token(web)
    with Raw(web) as c:
        c.request("GET", "/healthz")
        assert c.answer().status == 200
        c.request("GET", f"/ws/health?token={token}", "Upgrade: websocket", "Connection: Upgrade",
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13")
        answer = c.answer(head_only=True)
        assert answer.status_line == phrase(101)
        assert answer.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3
        while len(c.buf) < 2:  # the first message (the health status) arrives as a text frame
            assert c._more(), "closed before the first frame"
        assert c.buf[0] == 0x81  # FIN + text
