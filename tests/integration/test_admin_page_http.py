"""The admin page's files from the running process, over real HTTP (the browser tests in
tests/browser drive the page itself)."""

from __future__ import annotations

import gzip
import re

import httpx
import pytest

from tests.support.api_client import admin_token
from tests.support.burrow_proc import REPO_ROOT, BurrowProcess


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
    bundle = re.fullmatch(r"/ui/v/([0-9a-f]{16})/js/main\.js", [a for a in assets if a.endswith(".js")][0]).group(1)
    assert sorted(assets) == [f"/ui/v/{bundle}/app.css", f"/ui/v/{bundle}/js/main.js"]
    types = {"js/main.js": "text/javascript", "app.css": "text/css"}
    for path in assets:
        res = client.get(path)
        assert res.status_code == 200, path
        assert res.headers["content-type"].startswith(types[path.split(f"/ui/v/{bundle}/", 1)[1]])
        assert res.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert res.headers["x-content-type-options"] == "nosniff"  # so the type above is binding
        again = client.get(path, headers={"If-None-Match": res.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_the_page_needs_no_sign_in_but_the_data_does(web):
    proc, client = web
    assert client.get("/api/auth/setup").json()["required"] is True
    assert client.get("/").status_code == 200
    assert client.get("/api/blocking").status_code == 401
    admin_token(proc)  # sets up the first admin
    assert client.get("/api/auth/setup").json()["required"] is False
    assert client.get("/").status_code == 200


def test_nothing_else_is_served_from_the_package(web):
    _, client = web
    for path in ("/ui/index.html", "/ui/../api/routes.py", "/ui/%2e%2e/api/routes.py", "/ui/nope.js"):
        res = client.get(path)
        assert res.status_code == 404, path
        assert res.json()["code"] == 404


# ---- static files: bundle hash, gzip, ETags (issue 15) ---------------------------------------

WEB = REPO_ROOT / "firmware" / "burrow" / "web"
IMMUTABLE = "public, max-age=31536000, immutable"


def page_files() -> list[str]:
    """The page's files this checkout serves: ours and the vendored ones, each with its .gz
    (scripts/build-web makes both; scripts/test runs it before the suite)."""
    files = sorted(p.relative_to(WEB).as_posix() for p in WEB.rglob("*")
                   if p.suffix in (".js", ".css") and p.is_file())
    missing = [f for f in files if not (WEB / (f + ".gz")).is_file()]
    assert "vendor/uplot/uPlot.esm.min.js" in files and not missing, \
        f"run scripts/build-web first (vendored uPlot and the .gz files are made by it): {missing}"
    return files


def raw_get(client: httpx.Client, path: str, headers: dict) -> tuple[httpx.Response, bytes]:
    """The answer and its bytes as sent (httpx would decode gzip otherwise)."""
    with client.stream("GET", path, headers=headers) as res:
        return res, b"".join(res.iter_raw())


def bundle_of(client: httpx.Client) -> str:
    return re.search(r'"/ui/v/([0-9a-f]{16})/', client.get("/").text).group(1)


def test_every_page_file_is_immutable_under_the_bundle_and_gzipped_when_asked(web):
    _, client = web
    bundle = bundle_of(client)
    for rel in page_files():
        plain = (WEB / rel).read_bytes()
        res, raw = raw_get(client, f"/ui/v/{bundle}/{rel}", {"Accept-Encoding": "gzip"})
        assert res.status_code == 200, rel
        assert res.headers["cache-control"] == IMMUTABLE
        assert res.headers["content-encoding"] == "gzip" and res.headers["vary"] == "Accept-Encoding"
        assert raw == (WEB / (rel + ".gz")).read_bytes() and gzip.decompress(raw) == plain
        assert int(res.headers["content-length"]) == len(raw)
        res, raw = raw_get(client, f"/ui/v/{bundle}/{rel}", {"Accept-Encoding": "identity"})
        assert "content-encoding" not in res.headers and res.headers["vary"] == "Accept-Encoding"
        assert raw == plain
        # The old address still answers, to be revalidated.
        res, raw = raw_get(client, f"/ui/{rel}", {"Accept-Encoding": "gzip, deflate, br"})
        assert res.headers["cache-control"] == "no-cache" and res.headers["content-encoding"] == "gzip"
        assert gzip.decompress(raw) == plain


def test_the_page_itself_is_gzipped_and_revalidated(web):
    _, client = web
    res, raw = raw_get(client, "/", {"Accept-Encoding": "gzip"})
    assert res.headers["content-encoding"] == "gzip" and res.headers["cache-control"] == "no-cache"
    plain, plain_raw = raw_get(client, "/", {"Accept-Encoding": "identity"})
    assert gzip.decompress(raw) == plain_raw and b"/ui/v/" in plain_raw
    assert res.headers["etag"] != plain.headers["etag"]
    for headers, tag in (({"Accept-Encoding": "gzip"}, res.headers["etag"]),
                         ({"Accept-Encoding": "identity"}, plain.headers["etag"])):
        again, body = raw_get(client, "/", {**headers, "If-None-Match": tag})
        assert again.status_code == 304 and body == b"" and again.headers["etag"] == tag
        assert again.headers["vary"] == "Accept-Encoding"


def test_conditional_and_head_requests_on_the_static_files(web):
    _, client = web
    bundle = bundle_of(client)
    path = f"/ui/v/{bundle}/vendor/uplot/uPlot.esm.min.js"
    gz, gz_raw = raw_get(client, path, {"Accept-Encoding": "gzip"})
    plain, plain_raw = raw_get(client, path, {"Accept-Encoding": "identity"})
    assert gz.headers["etag"] != plain.headers["etag"]  # RFC 9110 8.8.3: one per representation
    not_modified, body = raw_get(client, path, {"Accept-Encoding": "gzip", "If-None-Match": gz.headers["etag"]})
    assert not_modified.status_code == 304 and body == b""
    assert not_modified.headers["cache-control"] == IMMUTABLE and not_modified.headers["vary"] == "Accept-Encoding"
    # A client that switches encodings does not get the other representation's 304.
    other, body = raw_get(client, path, {"Accept-Encoding": "identity", "If-None-Match": gz.headers["etag"]})
    assert other.status_code == 200 and body == plain_raw
    head = client.head(path, headers={"Accept-Encoding": "gzip"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(gz_raw)) and head.headers["content-encoding"] == "gzip"
    assert head.headers["etag"] == gz.headers["etag"] and head.headers["cache-control"] == IMMUTABLE


def test_no_traversal_under_the_bundle(web):
    _, client = web
    bundle = bundle_of(client)
    for path in (f"/ui/v/{bundle}/../api/routes.py", f"/ui/v/{bundle}/%2e%2e/%2e%2e/api/routes.py",
                 f"/ui/v/{bundle}/index.html", f"/ui/v/{bundle}/js/main.js.gz", "/ui/js/main.js.gz",
                 f"/ui/v/{bundle}/vendor/uplot/LICENSE", f"/ui/v/{bundle}/vendor/uplot/VERSIONS.json",
                 "/ui/v/not-a-hash/js/main.js", f"/ui/v/{bundle}/nope.js"):
        res = client.get(path)
        assert res.status_code == 404, path
        assert res.json()["code"] == 404


def test_the_page_files_are_not_counted_against_the_api_request_budget(web):
    """A phone's first visit fetches the page, its style and a dozen modules: the per-address
    budget (20/s, burst 60) is for API calls, and the page's files once used it up (429s for
    the page's own modules; a test fetching each file once tripped it)."""
    _, client = web
    bundle = bundle_of(client)
    files = [f"/ui/v/{bundle}/{rel}" for rel in page_files()] + ["/"]
    fetched = [client.get(files[i % len(files)]).status_code for i in range(150)]
    assert set(fetched) == {200}, fetched
    # The API keeps its budget: well past the burst, some answers are 429.
    api = [client.get("/api/auth/setup").status_code for _ in range(150)]
    assert 429 in api and 200 in api
