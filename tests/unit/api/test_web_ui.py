"""The admin page's files through the real route wrapper: types, caching, CSP, no traversal,
and the page and its modules agree with each other and with the strict policy."""

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
        self.module_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        self.handlers += [k for k in a if k.startswith("on")]
        if tag == "script":
            if a.get("src"):
                self.scripts.append(a["src"])
                if a.get("type") == "module":
                    self.module_scripts.append(a["src"])
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
    assert page.scripts == ["/ui/js/main.js"] and page.styles == ["/ui/app.css"]
    assert page.module_scripts == ["/ui/js/main.js"]  # native ES modules, no bundler
    for path, ctype in (("/ui/js/main.js", "text/javascript; charset=UTF-8"),
                        ("/ui/app.css", "text/css; charset=UTF-8")):
        res = get(path)
        assert res.status_code == 200, path
        assert res.headers["content-type"] == ctype
        assert res.headers["cache-control"] == "no-cache"
        assert "content-security-policy" in res.headers
        assert res.body == (WEB / path.removeprefix("/ui/")).read_bytes()


def modules() -> dict[str, str]:
    """Every module of the page, by its path under web/."""
    return {p.relative_to(WEB).as_posix(): p.read_text() for p in sorted((WEB / "js").rglob("*.js"))}


IMPORT = re.compile(r"""(?:^|[;\s])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']"""
                    r"""|import\(\s*["']([^"']+)["']\s*\)""", re.MULTILINE)


def test_every_module_import_is_relative_and_resolves_to_a_served_file(get):
    found = modules()
    assert {"js/main.js", "js/api.js", "js/live.js", "js/router.js", "js/dom.js"} <= set(found)
    assert any(name.startswith("js/screens/") for name in found)
    for name, source in found.items():
        targets = [a or b for a, b in IMPORT.findall(source)]
        for target in targets:
            # Relative, so the files work under any URL prefix (a content-hashed one too).
            assert target.startswith(("./", "../")), (name, target)
            resolved = (WEB / name).parent.joinpath(target).resolve()
            assert resolved.is_file() and resolved.is_relative_to(WEB.resolve()), (name, target)
            res = get("/ui/" + resolved.relative_to(WEB.resolve()).as_posix())
            assert res.status_code == 200 and res.headers["content-type"].startswith("text/javascript")


def test_every_screen_exports_mount_and_unmount():
    for name, source in modules().items():
        if name.startswith("js/screens/"):
            assert re.search(r"^export (async )?function mount\(el, ctx\)", source, re.MULTILINE), name
            assert re.search(r"^export function unmount\(\)", source, re.MULTILINE), name
    routes = modules()["js/router.js"]
    for screen in re.findall(r'import\("\./screens/([a-z_]+)\.js"\)', routes):
        assert f"js/screens/{screen}.js" in modules(), screen


@pytest.mark.parametrize("path", ["/ui/index.html", "/ui/missing.js", "/ui/../api/routes.py",
                                  "/ui/%2e%2e/api/routes.py", "/ui/..%2f..%2fpyproject.toml",
                                  "/ui/" + "a" * 5000 + ".js",
                                  "/ui/\x00", "/ui/a\x00.js", "/ui/js/main.js\x00.css",
                                  "/ui/js/../../api/routes.py", "/ui/js/missing.js"])  # NUL: no 500
def test_only_the_page_files_are_served(get, path):
    res = get(path)
    assert res.status_code == 404
    assert res.json["code"] == 404


def test_setup_state_says_whether_the_first_admin_is_missing(get, app):
    lifetimes = {"remember_seconds": 30 * 86400, "session_seconds": 12 * 3600}  # the sign-in's checkbox
    res = get("/api/auth/setup")
    assert res.status_code == 200 and res.json == {"required": True, **lifetimes}
    app.auth.setup_first_admin("admin", "correct horse battery")
    assert get("/api/auth/setup").json == {"required": False, **lifetimes}


def test_every_element_the_boot_module_uses_is_in_the_page():
    script = modules()["js/main.js"]
    used = set(re.findall(r'byId\("([a-z0-9-]+)"\)', script))
    assert used, "main.js finds the page's elements with byId(\"id\")"
    assert used <= parse_page().ids, used - parse_page().ids


def test_the_page_says_it_needs_javascript_when_it_is_off():
    html = (WEB / "index.html").read_text()
    noscript = re.search(r"<noscript>(.*?)</noscript>", html, re.DOTALL)
    assert noscript and "needs JavaScript" in noscript.group(1)
    assert re.search(r'<p id="loading" hidden>', html)  # "Loading…" only once the script runs


def test_no_module_keeps_secrets_in_storage_or_writes_markup():
    for name, source in modules().items():
        assert not re.search(r"(local|session)Storage\s*[.\[]", source), name
        # Names from the API (domains, groups, lists, errors) are set as text, never markup.
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment",
                     "DOMParser", "eval(", "new Function"):
            assert sink not in source, (name, sink)
