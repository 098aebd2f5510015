"""Role enforcement on the running process: every operation /openapi.json marks "x-role":
"admin" answers 403 to a viewer and to an admin's read-scoped API token, and every non-public
operation answers 401 without credentials. The routes are read from the served document (and
checked against the registry), never listed by hand.
"""

from __future__ import annotations

import pytest

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream

VIEWER_PW = "Viewer-pass-2024"
WRITE_METHODS = {"post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("roles"), [up.address]) as b:
        yield b


@pytest.fixture(scope="module")
def operations(srv):
    """[(method, concrete path, x-role)] for every operation in the served OpenAPI document."""
    status, doc = srv.http("GET", "/openapi.json")
    assert status == 200
    ops = []
    for template, item in doc["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            path = template
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    value = "1" if param["schema"].get("type") == "integer" else "x"
                    path = path.replace("{" + param["name"] + "}", value)
            ops.append((method.upper(), path, op["x-role"]))
    return ops


@pytest.fixture(scope="module")
def principals(srv):
    admin = admin_token(srv)
    status, body = authed(srv, admin, "POST", "/api/users",
                          {"username": "vera", "password": VIEWER_PW, "role": "viewer"})
    assert status == 201, body
    status, body = srv.http("POST", "/api/auth/login", {"username": "vera", "password": VIEWER_PW})
    assert status == 200, body
    viewer = body["access_token"]
    status, body = authed(srv, admin, "POST", "/api/tokens", {"name": "read-only", "scope": "read"})
    assert status == 201, body
    return {"admin": admin, "viewer": viewer, "read_token": body["token"]}


def send(srv, token, method, path, source):
    body = {} if method.lower() in WRITE_METHODS else None
    if token is None:
        return srv.http(method, path, body, source=source)
    return authed(srv, token, method, path, body, source=source)


def test_the_document_matches_the_registry(operations):
    from burrow.api import create_api

    class FakeApp:
        version = "x"
    registry = {(r.method, r.openapi_path, r.role) for r in create_api(FakeApp()).routes}
    assert len(registry) == len(operations)
    assert sum(1 for *_, role in operations if role == "admin") >= 10
    for method, _, role in operations:
        assert role in ("public", "viewer", "admin", "self")
        if method.lower() in WRITE_METHODS:
            assert role in ("admin", "self", "public"), method


@pytest.mark.parametrize("who,source", [("viewer", "127.0.0.41"), ("read_token", "127.0.0.42")])
def test_viewers_and_read_tokens_get_403_on_every_admin_operation(srv, operations, principals,
                                                                  who, source):
    token = principals[who]
    checked = []
    for method, path, role in operations:
        if role != "admin":
            continue
        status, body = send(srv, token, method, path, source)
        assert status == 403, (who, method, path, status, body)
        assert body["code"] == 403 and body["error"] == "forbidden"
        checked.append(path)
    assert checked
    # The same credentials do work where reading is allowed.
    assert authed(srv, token, "GET", "/api/auth/me", source=source)[0] == 200


def test_every_non_public_operation_needs_credentials(srv, operations):
    for i, (method, path, role) in enumerate(operations):
        if role == "public":
            continue
        # a few source addresses, so the per-IP API rate limit is not what answers
        status, body = send(srv, None, method, path, f"127.0.0.{43 + i % 8}")
        assert status == 401, (method, path, status, body)


def test_admin_is_not_refused_on_admin_reads(srv, principals):
    for path in ("/api/users", "/api/tokens?all=true"):
        assert authed(srv, principals["admin"], "GET", path)[0] == 200, path
