"""The admin page's files through the real route wrapper: types, caching, CSP, no traversal,
and the page and its script agree with each other and with the strict policy."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser

import pytest
from microdot.test_client import TestClient

from burrow.api import auth_api, web_ui
from burrow.api.routes import Api
from burrow.auth import AuthService
from burrow.dns.access import AccessControl
from burrow.storage.settings import SettingsDB
from burrow.telemetry.events import EventBus

WEB = web_ui.WEB_DIR


class FakeApp:
    version = "test"

    def __init__(self, tmp_path):
        self.settings = SettingsDB(tmp_path / "settings.db")
        self.auth = AuthService(self.settings, tmp_path)
        self.events = EventBus()
        self.acl = AccessControl(["127.0.0.0/8"])


@pytest.fixture
def app(tmp_path):
    a = FakeApp(tmp_path)
    yield a
    a.settings.close()


@pytest.fixture
def get(app):
    api = Api(app.auth, burst=1000, rps=1000.0, auth_burst=1000, auth_rps=1000.0)
    web_ui.register(api)
    auth_api.register(api, auth=app.auth, events=app.events, acl=app.acl)
    client = TestClient(api.web)

    def call(path, headers=None, method="GET", body=None):
        res = asyncio.run(client.request(method, path, headers=dict(headers or {}), body=body))
        # microdot's NoCaseDict misses keys added with setdefault (the security headers): plain names
        res.headers = {k.lower(): v for k, v in res.headers.items()}
        return res
    return call


class PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.styles, self.ids, self.handlers, self.inline_scripts = [], [], set(), [], 0
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        self.handlers += [k for k in a if k.startswith("on")]
        if tag == "script":
            if a.get("src"):
                self.scripts.append(a["src"])
            self._in_script = True
        if tag == "link" and a.get("rel") == "stylesheet":
            self.styles.append(a["href"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1


def parse_page() -> PageParser:
    parser = PageParser()
    parser.feed((WEB / "index.html").read_text())
    return parser


def test_the_page_is_html_under_the_strict_policy(get):
    res = get("/")
    assert res.status_code == 200
    assert res.headers["content-type"] == "text/html; charset=UTF-8"
    csp = res.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert res.headers["x-frame-options"] == "DENY" and res.headers["x-content-type-options"] == "nosniff"
    assert res.headers["cache-control"] == "no-cache" and res.headers["etag"].startswith('"')
    assert "<title>Burrow</title>" in res.text


def test_the_page_has_no_inline_script_and_its_files_are_served(get):
    page = parse_page()
    assert page.inline_scripts == 0 and page.handlers == []  # the CSP would refuse them
    assert page.scripts == ["/ui/app.js"] and page.styles == ["/ui/app.css"]
    for path, ctype in (("/ui/app.js", "text/javascript; charset=UTF-8"),
                        ("/ui/app.css", "text/css; charset=UTF-8")):
        res = get(path)
        assert res.status_code == 200, path
        assert res.headers["content-type"] == ctype
        assert res.headers["cache-control"] == "no-cache"
        assert "content-security-policy" in res.headers
        assert res.body == (WEB / path.removeprefix("/ui/")).read_bytes()


def test_a_client_with_the_current_copy_gets_304(get):
    first = get("/ui/app.js")
    etag = first.headers["etag"]
    again = get("/ui/app.js", {"If-None-Match": etag})
    assert again.status_code == 304 and again.body == b"" and again.headers["etag"] == etag
    assert get("/", {"If-None-Match": get("/").headers["etag"]}).status_code == 304
    stale = get("/ui/app.js", {"If-None-Match": '"old", "older"'})
    assert stale.status_code == 200 and stale.body


@pytest.mark.parametrize("path", ["/ui/index.html", "/ui/missing.js", "/ui/../api/routes.py",
                                  "/ui/%2e%2e/api/routes.py", "/ui/..%2f..%2fpyproject.toml",
                                  "/ui/" + "a" * 5000 + ".js",
                                  "/ui/\x00", "/ui/a\x00.js", "/ui/app.js\x00.css"])  # NUL: no 500
def test_only_the_page_files_are_served(get, path):
    res = get(path)
    assert res.status_code == 404
    assert res.json["code"] == 404


def test_setup_state_says_whether_the_first_admin_is_missing(get, app):
    res = get("/api/auth/setup")
    assert res.status_code == 200 and res.json == {"required": True}
    app.auth.setup_first_admin("admin", "correct horse battery")
    assert get("/api/auth/setup").json == {"required": False}


def test_every_element_the_script_uses_is_in_the_page():
    script = (WEB / "app.js").read_text()
    used = set(re.findall(r'\$\("([a-z0-9-]+)"\)', script))
    assert used, "the script finds elements with $(\"id\")"
    assert used <= parse_page().ids, used - parse_page().ids


def test_the_script_keeps_no_secrets_in_storage():
    script = (WEB / "app.js").read_text()
    assert not re.search(r"(local|session)Storage\s*[.\[]", script)
    assert "innerHTML" not in script  # names from the API (groups) are set as text, never markup
