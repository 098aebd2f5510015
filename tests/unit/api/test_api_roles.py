"""Role enforcement over every route the app registers: enumerated, never listed by hand."""

import asyncio
import re

import pytest
from microdot.test_client import TestClient

from burrow.api import offline_api

from tests.support.fakes import FakeAuth, FakePrincipal

# Only authentication is real: every service is a stand-in that fails if a handler runs.
AUTH = FakeAuth({
    "Bearer viewer": FakePrincipal("v", "viewer", "read"),
    "Bearer admin-read-token": FakePrincipal("a", "admin", "read", via="token"),
    "Bearer admin": FakePrincipal("a", "admin", "admin"),
})


def concrete(path: str) -> str:
    """A request path for a route pattern: fill each <param> with a plausible value."""
    return re.sub(r"<(?:int:)?([^>]+)>", lambda m: "1" if m.group(0).startswith("<int:") else "x", path)


def routes():
    return offline_api(auth=AUTH).routes


def call(method, path, token=None):
    api = offline_api(auth=AUTH)
    client = TestClient(api.web)
    headers = {"Authorization": token} if token else {}
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        headers["Content-Type"] = "application/json"
        return asyncio.run(client.request(method, path, headers=headers, body=b"{}"))
    return asyncio.run(client.request(method, path, headers=headers))


ADMIN_ROUTES = [r for r in routes() if r.role == "admin"]
PRIVATE_ROUTES = [r for r in routes() if r.role != "public"]


def test_every_mutating_route_is_admin_or_self_service():
    for r in routes():
        if r.mutating:
            assert r.role in ("admin", "self", "public"), r.path


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_viewer_and_read_scoped_tokens_get_403_on_admin_routes(route):
    for token in ("Bearer viewer", "Bearer admin-read-token"):
        res = call(route.method, concrete(route.path), token)
        assert res.status_code == 403, (token, res.status_code, res.text)
        assert res.json["code"] == 403


@pytest.mark.parametrize("route", PRIVATE_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_anonymous_and_bad_tokens_get_401(route):
    assert call(route.method, concrete(route.path)).status_code == 401
    assert call(route.method, concrete(route.path), "Bearer forged").status_code == 401


SELF_WRITES = [r for r in routes() if r.role == "self" and r.mutating]


@pytest.mark.parametrize("route", SELF_WRITES, ids=lambda r: f"{r.method} {r.path}")
def test_read_scoped_tokens_get_403_on_self_service_writes(route):
    """A token's scope bounds its own account too (issue 20, item 7); the handler never runs."""
    res = call(route.method, concrete(route.path), "Bearer admin-read-token")
    assert res.status_code == 403, (res.status_code, res.text)
    assert res.json["error"] == "forbidden"
