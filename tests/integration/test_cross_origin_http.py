"""Origin, Host and CORS rules through the real ``burrow`` process, in plain HTTP.

What a browser would send is written by hand here (``Origin``, ``Host``, preflights); the same
attacks in real Chromium are in tests/browser/test_cross_origin_browser.py. docs/security.md
has the rules.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket

import pytest

from tests.support.api_client import ADMIN_PASSWORD, admin_token
from tests.support.burrow_proc import BurrowProcess

FOREIGN = "http://127.0.0.2:8000"  # a page on another loopback address: not Burrow
DASHBOARD = "http://dashboard.test:3000"  # an origin the owner allows in server.allowed_origins


def call(srv: BurrowProcess, method: str, path: str, body=None, headers: dict | None = None,
         host: str | None = None) -> tuple[int, dict, object]:
    """(status, lower-cased headers, parsed JSON or text) for one request with exactly these
    headers; ``host`` replaces the Host header (default: the address the test connects to)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.web_port, timeout=10)
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else f"127.0.0.1:{srv.web_port}")
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        res = conn.getresponse()
        raw = res.read()
        heads = {k.lower(): v for k, v in res.getheaders()}
    finally:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return res.status, heads, parsed


def own(srv: BurrowProcess) -> str:
    return f"http://127.0.0.1:{srv.web_port}"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A box nobody has set up yet (setup is tested before anything else signs in)."""
    with BurrowProcess(tmp_path_factory.mktemp("xo-fresh")) as b:
        yield b


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    config = {"server": {"allowed_hosts": ["burrow.home.arpa", "192.0.2.10"],
                         "allowed_origins": [DASHBOARD]}}
    with BurrowProcess(tmp_path_factory.mktemp("xo"), config=config) as b:
        admin_token(b)
        yield b


# ---- Origin on state-changing requests ------------------------------------------------------

def test_foreign_origin_cannot_create_the_first_admin(fresh):
    for origin in (FOREIGN, "null", f"http://127.0.0.1:{fresh.web_port + 1}"):
        status, _, body = call(fresh, "POST", "/api/auth/setup",
                               {"username": "mallory", "password": "Hostile-page-2024"},
                               {"Origin": origin})
        assert status == 403, (origin, status, body)
        assert body["error"] == "cross_origin" and body["code"] == 403 and body["timestamp"]
    status, _, state = call(fresh, "GET", "/api/auth/setup")
    assert status == 200 and state["required"] is True, state
    # The owner's own page (same origin) and a script (no Origin) still can.
    status, _, body = call(fresh, "POST", "/api/auth/setup",
                           {"username": "admin", "password": ADMIN_PASSWORD}, {"Origin": own(fresh)})
    assert status == 201, body


def test_foreign_failed_logins_are_refused_before_they_count(srv):
    for _ in range(8):  # more than the lockout threshold
        status, _, body = call(srv, "POST", "/api/auth/login",
                               {"username": "admin", "password": "wrong-guess-123"}, {"Origin": FOREIGN})
        assert status == 403 and body["error"] == "cross_origin", (status, body)
    status, _, body = call(srv, "POST", "/api/auth/login",
                           {"username": "admin", "password": ADMIN_PASSWORD})
    assert status == 200, body  # not locked out


def test_same_origin_and_originless_writes_work(srv):
    token = admin_token(srv)
    bearer = {"Authorization": f"Bearer {token}"}
    status, _, _ = call(srv, "POST", "/api/cache/purge", headers=bearer)
    assert status == 200
    status, _, _ = call(srv, "POST", "/api/cache/purge", headers={**bearer, "Origin": own(srv)})
    assert status == 200
    # Same origin under another of Burrow's names: localhost, with its port.
    status, _, _ = call(srv, "POST", "/api/cache/purge", host=f"localhost:{srv.web_port}",
                        headers={**bearer, "Origin": f"http://localhost:{srv.web_port}"})
    assert status == 200
    # A name Burrow has, but not the one this request went to: another origin.
    status, _, body = call(srv, "POST", "/api/cache/purge",
                           headers={**bearer, "Origin": f"http://localhost:{srv.web_port}"})
    assert status == 403 and body["error"] == "cross_origin"


def test_a_foreign_origin_is_refused_even_with_a_token(srv):
    bearer = {"Authorization": f"Bearer {admin_token(srv)}"}
    for method, path in (("POST", "/api/cache/purge"), ("DELETE", "/api/tokens/999999")):
        status, heads, body = call(srv, method, path, headers={**bearer, "Origin": FOREIGN})
        assert status == 403 and body["error"] == "cross_origin", (method, path, status, body)
        assert "access-control-allow-credentials" not in heads


def test_an_allowed_origin_writes_with_a_token_and_reads_the_answer(srv):
    bearer = {"Authorization": f"Bearer {admin_token(srv)}"}
    status, heads, _ = call(srv, "POST", "/api/cache/purge", headers={**bearer, "Origin": DASHBOARD})
    assert status == 200
    assert heads.get("access-control-allow-origin") == DASHBOARD
    assert "access-control-allow-credentials" not in heads


# ---- CORS preflights ------------------------------------------------------------------------

def preflight(srv, path, origin, method, headers="content-type"):
    return call(srv, "OPTIONS", path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                               "Access-Control-Request-Headers": headers})


def test_preflight_for_a_write_from_a_foreign_origin_is_refused(srv):
    for path, method in (("/api/auth/setup", "POST"), ("/api/auth/login", "POST"),
                         ("/api/config/cache", "PUT"), ("/api/tokens/1", "DELETE")):
        status, heads, body = preflight(srv, path, FOREIGN, method)
        assert status == 403, (path, status, heads)
        assert body["error"] == "cross_origin"
        assert not any(k.startswith("access-control-allow") for k in heads), heads


def test_preflight_for_a_read_with_a_token_is_allowed_without_credentials(srv):
    status, heads, _ = preflight(srv, "/api/stats", FOREIGN, "GET", "authorization")
    assert status in (200, 204)
    assert heads["access-control-allow-origin"] == "*"
    assert "authorization" in heads["access-control-allow-headers"].lower()
    assert "POST" not in heads["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in heads


def test_preflight_for_a_write_from_an_allowed_origin(srv):
    for origin in (DASHBOARD, own(srv)):  # (a browser does not preflight its own origin; allowed)
        status, heads, _ = preflight(srv, "/api/cache/purge", origin, "POST", "authorization")
        assert status in (200, 204), origin
        assert heads["access-control-allow-origin"] == origin
        assert "POST" in heads["access-control-allow-methods"]
        assert "origin" in heads.get("vary", "").lower()
        assert "access-control-allow-credentials" not in heads


def test_reads_with_a_cookie_never_get_cors(srv):
    status, heads, _ = call(srv, "GET", "/api/health", headers={"Origin": FOREIGN})
    assert status == 200 and heads["access-control-allow-origin"] == "*"
    status, heads, _ = call(srv, "GET", "/api/health",
                            headers={"Origin": FOREIGN, "Cookie": "burrow_session=x"})
    assert status == 200 and "access-control-allow-origin" not in heads


# ---- Host ---------------------------------------------------------------------------------------

def test_unknown_host_is_misdirected(srv):
    for host in ("rebind.test", f"rebind.test:{srv.web_port}", "burrow.local.evil.example",
                 "192.0.2.99", "[2001:db8::1]:80", "127.0.0.1.evil.example", "", "localhost@evil"):
        for method, path in (("GET", "/api/auth/setup"), ("GET", "/"), ("GET", "/api/stats"),
                             ("POST", "/api/auth/login"), ("OPTIONS", "/api/auth/login")):
            status, heads, body = call(srv, method, path, host=host,
                                       body={"username": "admin", "password": "x"} if method == "POST" else None)
            assert status == 421, (host, method, path, status, body)
            assert isinstance(body, dict) and body["code"] == 421 and body["error"] == "misdirected_request"
            assert "access-control-allow-origin" not in heads
            assert heads.get("x-content-type-options") == "nosniff"


def test_burrows_names_and_addresses_are_served(srv):
    port = srv.web_port
    hostname = socket.gethostname().lower()
    for host in (f"127.0.0.1:{port}", "127.0.0.1", f"127.9.8.7:{port}", f"localhost:{port}", "LOCALHOST.",
                 "burrow.local", f"burrow.local:{port}", "[::1]", f"[::1]:{port}", hostname,
                 f"{hostname}.local:{port}", "burrow.home.arpa", "BURROW.HOME.ARPA:8080", "192.0.2.10:80"):
        status, _, body = call(srv, "GET", "/api/auth/setup", host=host)
        assert status == 200, (host, status, body)


def test_health_endpoints_answer_reads_under_any_name(srv):
    for path in ("/healthz", "/readyz", "/api/health"):
        status, _, body = call(srv, "GET", path, host="monitor.example")
        assert status in (200, 503), (path, status, body)
        status, _, _ = call(srv, "HEAD", path, host="monitor.example")
        assert status in (200, 503), path
    # /metrics is there too; it still needs a login unless server.metrics_public.
    status, _, _ = call(srv, "GET", "/metrics", host="monitor.example")
    assert status == 401
    # Read-only: the same names refuse everything else under a foreign Host.
    status, _, _ = call(srv, "DELETE", "/healthz", host="monitor.example")
    assert status == 421


def test_requests_without_a_host_header_are_served(srv):
    """HTTP/1.0 scripts may send no Host at all; no name, no rebinding."""
    with socket.create_connection(("127.0.0.1", srv.web_port), timeout=10) as s:
        s.sendall(b"GET /api/auth/setup HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.split(b"\r\n", 1)[0].split()[1] == b"200", data[:200]


# ---- WebSocket Origin ------------------------------------------------------------------------

def upgrade(srv, path, extra: dict) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    head = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{srv.web_port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
    head += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
    with socket.create_connection(("127.0.0.1", srv.web_port), timeout=10) as s:
        s.sendall((head + "\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


def test_websocket_upgrade_checks_origin(srv):
    token = {"Authorization": f"Bearer {admin_token(srv)}"}
    for path in ("/ws/queries", "/ws/events", "/ws/metrics", "/ws/health"):
        for origin in (FOREIGN, f"http://127.0.0.1:{srv.web_port + 1}", "null"):
            status = upgrade(srv, path, {**token, "Origin": origin})
            assert b" 403 " in status, (path, origin, status)
        assert b" 101 " in upgrade(srv, path, {**token, "Origin": own(srv)}), path
        assert b" 101 " in upgrade(srv, path, token), path  # scripts send no Origin


def test_refusals_are_counted_in_metrics(srv):
    call(srv, "GET", "/api/stats", host="rebind.test")
    call(srv, "POST", "/api/auth/login", {"username": "admin", "password": "x"}, {"Origin": FOREIGN})
    status, _, text = call(srv, "GET", "/metrics", headers={"Authorization": f"Bearer {admin_token(srv)}"})
    assert status == 200
    counts = dict(line.rsplit(" ", 1) for line in text.splitlines()
                  if line.startswith("burrow_http_foreign_requests_total{"))
    assert int(float(counts['burrow_http_foreign_requests_total{reason="host"}'])) >= 1, counts
    assert int(float(counts['burrow_http_foreign_requests_total{reason="origin"}'])) >= 1, counts
