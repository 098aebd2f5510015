"""The admin page's files from the running process, over real HTTP (the browser tests in
tests/browser drive the page itself)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.api_client import admin_token
from tests.support.burrow_proc import BurrowProcess


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    with BurrowProcess(tmp_path_factory.mktemp("page")) as b, \
            httpx.Client(base_url=f"http://127.0.0.1:{b.web_port}", timeout=30.0) as client:
        yield b, client


def test_the_page_and_its_files_over_http(web):
    _, client = web
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=UTF-8"
    csp = page.headers["content-security-policy"]
    assert re.search(r"(^|; )script-src 'self';", csp) and "default-src 'self'" in csp
    assert page.headers["cache-control"] == "no-cache"
    assets = re.findall(r'(?:src|href)="(/ui/[^"]+)"', page.text)
    assert sorted(assets) == ["/ui/app.css", "/ui/app.js"]
    types = {"/ui/app.js": "text/javascript", "/ui/app.css": "text/css"}
    for path in assets:
        res = client.get(path)
        assert res.status_code == 200, path
        assert res.headers["content-type"].startswith(types[path])
        assert res.headers["x-content-type-options"] == "nosniff"  # so the type above is binding
        again = client.get(path, headers={"If-None-Match": res.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_the_page_needs_no_sign_in_but_the_data_does(web):
    proc, client = web
    assert client.get("/api/auth/setup").json() == {"required": True}
    assert client.get("/").status_code == 200
    assert client.get("/api/blocking").status_code == 401
    admin_token(proc)  # sets up the first admin
    assert client.get("/api/auth/setup").json() == {"required": False}
    assert client.get("/").status_code == 200


def test_nothing_else_is_served_from_the_package(web):
    _, client = web
    for path in ("/ui/index.html", "/ui/../api/routes.py", "/ui/%2e%2e/api/routes.py", "/ui/nope.js"):
        res = client.get(path)
        assert res.status_code == 404, path
        assert res.json()["code"] == 404
