"""The page's static files through the real route wrapper, from a page folder made here: the
bundle hash and its immutable prefix, gzip negotiation with .gz files made by
scripts/build_web.py, ETags per encoding, stale and missing .gz files, and the bounds."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest
from microdot.test_client import TestClient

from burrow.api import web_ui
from burrow.api.routes import Api

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "build_web.py"
INDEX = ('<!doctype html><title>t</title><link rel="stylesheet" href="/ui/css/app.css">\n'
         '<link rel="stylesheet" href="/ui/vendor/uplot/uPlot.min.css">\n'
         '<script type="module" src="/ui/js/main.js"></script><a href="/docs">API</a>\n')


def precompress(root: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_web", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_web"] = module
    spec.loader.exec_module(module)
    module.precompress(root)


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "web"
    for rel, text in {"index.html": INDEX, "css/app.css": "body{margin:0}\n" * 40,
                      "js/main.js": "import {x} from './screens/x.js';\n" * 40,
                      "js/screens/x.js": "export const x = 1;\n" * 40,
                      "vendor/uplot/uPlot.min.css": ".uplot{}\n" * 40}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    precompress(root)
    return root


def client_for(root: Path):
    api = Api(None, burst=1000, rps=1000.0)
    files = web_ui.register(api, root)
    client = TestClient(api.web)

    def call(path, headers=None, method="GET"):
        res = asyncio.run(client.request(method, path, headers=dict(headers or {})))
        res.headers = {k.lower(): v for k, v in res.headers.items()}
        return res
    return call, files


@pytest.fixture
def get(site):
    return client_for(site)[0]


GZ = {"Accept-Encoding": "gzip, deflate, br"}


def bundle_of(get) -> str:
    return re.search(r'/ui/v/([0-9a-f]{16})/js/main\.js', get("/").text).group(1)


def test_the_page_names_its_files_under_the_bundle_hash(get, site):
    res = get("/")
    assert res.status_code == 200 and res.headers["cache-control"] == "no-cache"
    bundle = bundle_of(get)
    assert res.text == INDEX.replace('"/ui/', f'"/ui/v/{bundle}/')  # only the /ui/ references
    assert 'href="/docs"' in res.text
    assert "script-src 'self';" in res.headers["content-security-policy"]
    assert res.headers["vary"] == "Accept-Encoding"


def test_the_bundled_files_are_immutable_and_the_old_urls_revalidate(get, site):
    bundle = bundle_of(get)
    for rel in ("css/app.css", "js/main.js", "js/screens/x.js", "vendor/uplot/uPlot.min.css"):
        res = get(f"/ui/v/{bundle}/{rel}")
        assert res.status_code == 200, rel
        assert res.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert res.body == (site / rel).read_bytes()
        old = get(f"/ui/{rel}")
        assert old.status_code == 200 and old.headers["cache-control"] == "no-cache"
        assert old.body == res.body and old.headers["etag"] == res.headers["etag"]
    assert get("/ui/v/{}/js/main.js".format(bundle)).headers["content-type"] == "text/javascript; charset=UTF-8"


def test_gzip_is_sent_only_when_accepted(get, site):
    bundle = bundle_of(get)
    plain_body = (site / "js/main.js").read_bytes()
    for accept, gzipped in (("gzip", True), ("gzip, deflate, br", True), ("br;q=1, gzip;q=0.5", True),
                            ("*", True), ("x-gzip", True), ("identity", False), ("gzip;q=0", False),
                            ("*;q=0", False), ("br", False), ("gzip;q=zzz", False), ("", False)):
        for path in (f"/ui/v/{bundle}/js/main.js", "/ui/js/main.js"):
            res = get(path, {"Accept-Encoding": accept} if accept else {})
            assert res.status_code == 200
            assert res.headers["vary"] == "Accept-Encoding", (accept, path)
            if gzipped:
                assert res.headers.get("content-encoding") == "gzip", (accept, path)
                assert gzip.decompress(res.body) == plain_body
                assert res.headers["content-length"] == str(len(res.body)) and len(res.body) < len(plain_body)
            else:
                assert "content-encoding" not in res.headers, (accept, path)
                assert res.body == plain_body
    page = get("/", GZ)
    assert page.headers["content-encoding"] == "gzip" and page.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(page.body).decode() == get("/").text


def test_each_encoding_has_its_own_etag_and_304(get):
    bundle = bundle_of(get)
    for path in ("/", f"/ui/v/{bundle}/css/app.css", "/ui/css/app.css"):
        plain, packed = get(path), get(path, GZ)
        assert plain.headers["etag"] != packed.headers["etag"], path  # RFC 9110 8.8.3
        for res, headers in ((plain, {}), (packed, GZ)):
            again = get(path, {**headers, "If-None-Match": res.headers["etag"]})
            assert again.status_code == 304 and again.body == b"", path
            assert again.headers["etag"] == res.headers["etag"]
            assert again.headers["cache-control"] == res.headers["cache-control"]
            assert again.headers["vary"] == "Accept-Encoding"
            assert again.headers["content-type"] == res.headers["content-type"]
            assert again.headers["content-length"] == str(len(res.body))  # what a 200 would carry
            assert get(path, {**headers, "If-None-Match": f'W/{res.headers["etag"]}, "x"'}).status_code == 304
        # The other encoding's tag does not validate this one.
        assert get(path, {"If-None-Match": packed.headers["etag"]}).status_code == 200
        assert get(path, {**GZ, "If-None-Match": plain.headers["etag"]}).status_code == 200


def test_a_missing_or_stale_gz_serves_the_plain_file(site):
    get, _ = client_for(site)
    (site / "css/app.css.gz").unlink()
    res = get("/ui/css/app.css", GZ)
    assert res.status_code == 200 and "content-encoding" not in res.headers
    assert res.body == (site / "css/app.css").read_bytes()
    # Edited after the build: its .gz holds the old bytes and is not used.
    (site / "js/main.js").write_text("export const edited = true;\n")
    res = get("/ui/js/main.js", GZ)
    assert "content-encoding" not in res.headers and res.body == b"export const edited = true;\n"
    precompress(site)
    res = get("/ui/js/main.js", GZ)
    assert res.headers["content-encoding"] == "gzip"
    assert gzip.decompress(res.body) == b"export const edited = true;\n"


def test_a_change_makes_a_new_bundle_and_the_old_one_is_not_immutable(site):
    get, files = client_for(site)
    old = bundle_of(get)
    (site / "js/screens/x.js").write_text("export const x = 2;\n")
    # Before the page is asked for again, the changed file is not the bundle's: not immutable.
    res = get(f"/ui/v/{old}/js/screens/x.js")
    assert res.status_code == 200 and res.headers["cache-control"] == "no-cache"
    assert res.body == b"export const x = 2;\n"
    new = bundle_of(get)
    assert new != old and files.bundle == new
    assert get(f"/ui/v/{new}/js/screens/x.js").headers["cache-control"] == "public, max-age=31536000, immutable"
    # A page loaded before the change still gets its files, but not for a year.
    assert get(f"/ui/v/{old}/css/app.css").headers["cache-control"] == "no-cache"


def test_the_bundle_hash_depends_on_content_not_on_when_it_is_taken(site, tmp_path):
    _, first = client_for(site)
    _, second = client_for(site)
    assert first.bundle == second.bundle and re.fullmatch(r"[0-9a-f]{16}", first.bundle)
    os.utime(site / "css/app.css", ns=(1, 1))  # a new mtime, the same bytes
    assert client_for(site)[1].bundle == first.bundle


@pytest.mark.parametrize("path", ["/ui/v/0123/js/main.js", "/ui/v/ZZZZZZZZZZZZZZZZ/js/main.js",
                                  "/ui/v/{bundle}/index.html", "/ui/v/{bundle}/../index.html",
                                  "/ui/v/{bundle}/%2e%2e/%2e%2e/etc/passwd", "/ui/v/{bundle}/nope.js",
                                  "/ui/v/{bundle}/js/main.js.gz", "/ui/js/main.js.gz",
                                  "/ui/v/{bundle}/.hidden/a.js", "/ui/.hidden/a.js", "/ui/v/{bundle}/a\x00.js"])
def test_nothing_else_is_served(get, site, path):
    (site / ".hidden").mkdir()
    (site / ".hidden/a.js").write_text("1")
    res = get(path.format(bundle=bundle_of(get)))
    assert res.status_code == 404, path
    assert res.json["code"] == 404


def test_what_is_kept_in_memory_is_bounded(site, monkeypatch):
    monkeypatch.setattr(web_ui, "MAX_FILES", 3)
    for i in range(10):
        (site / f"js/extra{i}.js").write_text(f"export const n = {i};\n")
    get, files = client_for(site)
    assert len(files._listing) == 3  # the bundle covers at most MAX_FILES
    for i in range(10):
        assert get(f"/ui/js/extra{i}.js", GZ).status_code == 200
        assert len(files._known) <= 3
    # A file beyond the cap is served, never as immutable: the hash does not cover it.
    bundle = bundle_of(get)
    assert get(f"/ui/v/{bundle}/js/extra9.js").headers["cache-control"] == "no-cache"
