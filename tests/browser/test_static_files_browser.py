"""The page's static files in real Chromium (issue 15): the vendored uPlot loads as an ES module
from the bundle-hashed prefix, gzipped and cached for a year, and draws under the strict CSP;
axe-core (test-only, vendored by scripts/build-web) runs on the first screen."""

from __future__ import annotations

import re

import pytest

from tests.support.axe import axe_violations
from tests.support.burrow_proc import BurrowProcess

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

PHONE = {"width": 390, "height": 844}
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""
DRAW = """async (base) => {
    const { default: uPlot } = await import(base + "vendor/uplot/uPlot.esm.min.js");
    const el = document.createElement("div");
    document.body.append(el);
    const chart = new uPlot({width: 300, height: 150, series: [{}, {label: "queries", stroke: "red"}]},
                            [[1, 2, 3], [1, 4, 9]], el);
    return [typeof uPlot, el.querySelectorAll("canvas").length, chart.width, chart.series.length];
}"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with BurrowProcess(tmp_path_factory.mktemp("static-files")) as b:
        yield b


@pytest.fixture
def watched(browser):
    """A phone-sized page, and what it complained about (checked at the end of each test)."""
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.add_init_script(WATCH_CSP)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    try:
        yield page
        assert page.evaluate("window.__cspViolations") == [] and problems == []
    finally:
        context.close()


def test_uplot_loads_from_the_bundle_gzipped_and_immutable_and_draws(watched, srv):
    page = watched
    base = f"http://127.0.0.1:{srv.web_port}"
    responses = {}
    page.on("response", lambda r: responses.__setitem__(r.url, r))
    page.goto(base + "/")
    bundle = re.search(r'"/ui/v/([0-9a-f]{16})/', page.content()).group(1)
    assert page.evaluate(DRAW, f"/ui/v/{bundle}/") == ["function", 1, 300, 2]
    res = responses[f"{base}/ui/v/{bundle}/vendor/uplot/uPlot.esm.min.js"]
    headers = res.all_headers()
    assert res.status == 200 and headers["content-encoding"] == "gzip"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"


def test_axe_finds_nothing_serious_on_the_first_screen(watched, srv):
    page = watched
    base = f"http://127.0.0.1:{srv.web_port}"
    page.goto(base + "/")
    page.get_by_role("heading", name="Create the admin account").wait_for()
    assert axe_violations(page, base) == []
