"""Role enforcement on the running process: every operation /openapi.json marks "x-role":
"admin" answers 403 to a viewer and to an admin's read-scoped API token, and every non-public
operation answers 401 without credentials. The routes are read from the served document (and
checked against the registry), never listed by hand.
"""

from __future__ import annotations

import time

import pytest

from tests.support.api_client import admin_token, authed, user_token
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
    viewer = user_token(srv, admin, "vera", VIEWER_PW)
    status, body = authed(srv, admin, "POST", "/api/tokens", {"name": "read-only", "scope": "read"})
    assert status == 201, body
    return {"admin": admin, "viewer": viewer, "read_token": body["token"]}


def send(srv, token, method, path, source):
    """One request; a 429 (the source's request budget, 20/s with bursts of 60, spent by a fast
    loop over more routes than the burst) is waited out and the request sent again."""
    body = {} if method.lower() in WRITE_METHODS else None
    deadline = time.monotonic() + 30
    while True:
        if token is None:
            status, answer = srv.http(method, path, body, source=source)
        else:
            status, answer = authed(srv, token, method, path, body, source=source)
        if status != 429 or time.monotonic() > deadline:
            return status, answer
        time.sleep(0.25)


def test_the_document_matches_the_registry(operations):
    from burrow.api import offline_api

    registry = {(r.method, r.openapi_path, r.role) for r in offline_api().routes}
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
    # The same credentials do work where reading is allowed (from another address: the loop above
    # spent this one's request budget).
    fresh = source.rsplit(".", 1)[0] + "." + str(int(source.rsplit(".", 1)[1]) + 100)
    assert authed(srv, token, "GET", "/api/auth/me", source=fresh)[0] == 200


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


def test_a_read_token_is_read_only_on_its_own_account_too(srv, operations, principals):
    """Issue 20, item 7: a read-scoped token must not reach writes through the role=self
    routes: minting a token (access that outlives revoking the leaked one), revoking the
    owner's admin tokens, own password/2FA, nor list every user's tokens with ?all=true."""
    admin, source = principals["admin"], "127.0.0.51"
    status, kept = authed(srv, admin, "POST", "/api/tokens", {"name": "automation", "scope": "admin"})
    assert status == 201, kept
    status, made = authed(srv, admin, "POST", "/api/tokens", {"name": "leaked", "scope": "read"})
    assert status == 201, made
    leaked = made["token"]

    status, body = authed(srv, leaked, "POST", "/api/tokens", {"name": "survivor", "scope": "read"},
                          source=source)
    assert status == 403 and body["error"] == "forbidden", body
    status, body = authed(srv, leaked, "DELETE", f"/api/tokens/{kept['id']}", source=source)
    assert status == 403 and body["error"] == "forbidden", body
    assert authed(srv, kept["token"], "GET", "/api/auth/me")[0] == 200  # still valid
    status, body = authed(srv, leaked, "GET", "/api/tokens?all=true", source=source)
    assert status == 403 and body["error"] == "forbidden", body
    # Reading its own account is what a read token is for.
    status, body = authed(srv, leaked, "GET", "/api/tokens", source=source)
    assert status == 200 and {t["user_id"] for t in body["tokens"]} == {1}, body

    # Every state-changing operation the document lists, role=self ones included, is refused
    # before its body is looked at (an empty {} would otherwise get a 400).
    for i, (method, path, role) in enumerate(operations):
        if role == "public" or method.lower() not in WRITE_METHODS:
            continue
        # a few source addresses, so the per-IP API rate limit is not what answers
        status, body = send(srv, leaked, method, path, f"127.0.0.{60 + i % 8}")
        assert status == 403 and body["error"] == "forbidden", (method, path, status, body)
    assert {t["name"] for t in authed(srv, admin, "GET", "/api/tokens")[1]["tokens"]} >= {
        "automation", "leaked"}


def test_sessions_and_admin_tokens_keep_self_service(srv, principals):
    """The scope check bounds read tokens only: a viewer's session and an admin-scoped token
    still manage their own tokens."""
    status, body = authed(srv, principals["viewer"], "POST", "/api/tokens",
                          {"name": "viewer-script", "scope": "read"}, source="127.0.0.52")
    assert status == 201, body
    status, body = authed(srv, principals["viewer"], "DELETE", f"/api/tokens/{body['id']}",
                          source="127.0.0.52")
    assert status == 200, body
    status, admin_scoped = authed(srv, principals["admin"], "POST", "/api/tokens",
                                  {"name": "ci", "scope": "admin"})
    assert status == 201, admin_scoped
    status, body = authed(srv, admin_scoped["token"], "POST", "/api/tokens",
                          {"name": "ci-child", "scope": "read"}, source="127.0.0.53")
    assert status == 201, body
