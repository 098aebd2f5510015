"""The API platform: error shape, OpenAPI generated from the registry, docs, headers, limits."""

from __future__ import annotations

import socket

import pytest

from burrow.api.schema import Obj
from tests.support.burrow_proc import BurrowProcess


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.support.upstream_client import TestUpstream
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("api"), [up.address]) as b:
        yield b


def raw_http(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """The answer to ``request``, sent with ``Connection: close`` so the answer ends with the
    connection (an HTTP/1.1 connection stays open otherwise)."""
    line, rest = request.split(b"\r\n", 1)
    request = line + b"\r\nConnection: close\r\n" + rest
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_unknown_path_and_method_use_the_error_shape(srv):
    status, body = srv.http("GET", "/api/nope")
    assert status == 404
    assert body["code"] == 404 and body["error"] == "Not Found" and body["message"] and body["timestamp"]
    status, body = srv.http("DELETE", "/healthz")
    assert status == 405 and body["code"] == 405


def test_security_headers_and_cors_on_public_get(srv):
    reply = raw_http(srv.web_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").decode()
    head = reply.split("\r\n\r\n")[0].lower()
    assert "x-content-type-options: nosniff" in head
    assert "frame-ancestors 'none'" in head and "script-src 'self'" in head
    assert "referrer-policy: no-referrer" in head
    assert "access-control-allow-origin: *" in head
    assert "access-control-allow-credentials" not in head


def test_preflight_answers_without_credentials(srv):
    # A read with a token from another page; writes are only preflighted for allowed origins
    # (tests/integration/test_cross_origin_http.py).
    reply = raw_http(srv.web_port, b"OPTIONS /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   b"Origin: http://example.org\r\nAccess-Control-Request-Method: GET\r\n"
                                   b"Access-Control-Request-Headers: authorization\r\n\r\n").decode()
    status_line, head = reply.split("\r\n", 1)
    assert status_line.split()[1] in ("200", "204")
    head = head.lower()
    assert "access-control-allow-origin: *" in head and "access-control-allow-methods:" in head
    assert "authorization" in head.split("access-control-allow-headers:")[1].split("\r\n")[0]
    assert "access-control-allow-credentials" not in head


def test_openapi_document_lists_every_route(srv):
    status, doc = srv.http("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    from burrow.api import offline_api

    api = offline_api()
    for route in api.routes:
        assert route.method.lower() in doc["paths"][route.openapi_path], route.path


def test_documented_examples_validate_against_their_schemas():
    from burrow.api import offline_api
    from burrow.api.schema import _MISSING

    api = offline_api()
    seen = 0
    for route in api.routes:
        for schema in [route.body, *route.responses.values()]:
            if isinstance(schema, Obj) and schema.example is not _MISSING:
                schema.validate(schema.example)  # raises ValidationError naming the field
                seen += 1
    assert seen > 0


def test_docs_pages_load_local_assets_without_inline_script(srv):
    for path, asset in (("/docs", "/docs/assets/swagger-ui-dist/swagger-ui-bundle.js"),
                        ("/redoc", "/docs/assets/redoc/bundles/redoc.standalone.js")):
        status, html = srv.http("GET", path)
        assert status == 200, html
        assert "<script>" not in html and "http://" not in html and "https://" not in html
        status, js = srv.http("GET", asset)
        assert status == 200 and len(js) > 10000
    status, _ = srv.http("GET", "/docs/assets/../../../etc/passwd")
    assert status == 404


def test_slow_drip_client_is_cut_off_while_others_are_served(srv, monkeypatch):
    drip = socket.create_connection(("127.0.0.1", srv.web_port), timeout=30)
    drip.sendall(b"GET /healthz HTTP/1.1\r\n")  # never finishes its headers
    assert srv.http("GET", "/healthz")[0] == 200  # others are served meanwhile
    drip.settimeout(30)
    data = drip.recv(100)  # the server answers 408 and closes at the request deadline
    assert data.startswith(b"HTTP/1.1 408 ")  # not a silent close (recv would time out otherwise)
    drip.close()


def test_malformed_request_line_gets_a_400_in_the_error_shape(srv):
    reply = raw_http(srv.web_port, b"GET /api/stats?since=%ff\xff HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    import json as _json
    parsed = _json.loads(body)
    assert parsed["code"] == 400 and parsed["timestamp"]


def test_oversized_and_wrong_type_bodies(srv):
    import json as _json
    big = b'{"username": "' + b"a" * (70 * 1024) + b'", "password": "x"}'
    req = (b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(big)) + big
    head, _, body = raw_http(srv.web_port, req).partition(b"\r\n\r\n")
    assert b" 413 " in head.split(b"\r\n")[0] and _json.loads(body)["code"] == 413
    form = b"username=a&password=b"
    req = (b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
           b"Content-Length: %d\r\n\r\n" % len(form)) + form
    head, _, body = raw_http(srv.web_port, req).partition(b"\r\n\r\n")
    assert b" 415 " in head.split(b"\r\n")[0] and _json.loads(body)["code"] == 415
