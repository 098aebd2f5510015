"""The dashboard screen in real headless Chromium against the real ``burrow`` process with a
test upstream: its figures against the API's own answers after real DNS queries (dnspython),
the chart and its 24 h / 7 d switch, live updates without a reload, the status LED's dot,
hostile domain names shown as text, a viewer without admin controls, and axe-core, CSP and a
screenshot per state (tests/support/page.py check_screen).

Waits are Playwright ``expect`` calls or deadline loops bounded by EXPECT_TIMEOUT_MS; nothing
asserts how long anything took.
"""

from __future__ import annotations

import re
import time

import dns.message
import dns.name
import dns.query
import pytest

from tests.browser.conftest import EXPECT_TIMEOUT_MS
from tests.support.api_client import ADMIN_PASSWORD
from tests.support.burrow_proc import BurrowProcess
from tests.support.page import DESKTOP, PHONE, Watched, check_screen, sign_in
from tests.support.upstream_client import TestUpstream

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

VIEWER_PW = "Viewer-pass-2024"
HOSTILE_LABEL = b"<img/src=x/onerror=alert(1)>"  # no spaces: the log writes them \\032
HOSTILE_NAME = dns.name.Name([HOSTILE_LABEL, b"evil", b"example", b""])
UNAUTHORIZED = "the server responded with a status of 401"


# ---- fixtures: one upstream, one burrow, one signed-in admin page per module ----------------------

@pytest.fixture(scope="module")
def upstream():
    with TestUpstream() as u:
        yield u


@pytest.fixture(scope="module")
def srv(tmp_path_factory, upstream):
    with BurrowProcess(tmp_path_factory.mktemp("dashboard"), upstreams=[upstream.address]) as b:
        yield b


# ---- helpers -------------------------------------------------------------------------------------

def ask(srv: BurrowProcess, name, rdtype: str = "A", times: int = 1) -> None:
    for _ in range(times):
        answer = srv.query(name, rdtype)
        assert answer.rcode() in (0, 3), answer  # NOERROR or NXDOMAIN: Burrow answered


def number(n: int) -> str:
    return f"{n:,}"  # the page writes numbers in the browser's locale (en-US here)


def until(check, what: str):
    """Call ``check()`` until it returns something true; fail after EXPECT_TIMEOUT_MS."""
    deadline = time.monotonic() + EXPECT_TIMEOUT_MS / 1000
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def page_list(page, selector: str) -> list[str]:
    return page.locator(selector).all_inner_texts()


def top_names(api, blocked: bool) -> list[str]:
    answer = api.get("/api/top-domains", params={"limit": 5, "blocked": str(blocked).lower(), "since": "24h"})
    assert answer.status_code == 200, answer.text
    return [d["domain"] for d in answer.json()["domains"]]


def top_clients(api) -> list[str]:
    answer = api.get("/api/top-clients", params={"limit": 5, "since": "24h"})
    assert answer.status_code == 200, answer.text
    return [c["client_ip"] for c in answer.json()["clients"]]


def stats(api) -> dict:
    answer = api.get("/api/stats", params={"since": "24h"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def shown_figures(page) -> dict:
    return {key: page.locator(sel).inner_text() for key, sel in
            (("queries", "#stat-queries"), ("blocked", "#stat-blocked"), ("rate", "#stat-rate"),
             ("cache", "#stat-cache"), ("avg", "#stat-avg"))}


def api_figures(s: dict) -> dict:
    avg = s["avg_response_ms"]
    return {"queries": number(s["total_queries"]), "blocked": number(s["blocked_queries"]),
            "rate": f"{s['block_rate']:.1f} %", "cache": f"{s['cache_hit_rate']:.1f} %",
            "avg": f"{avg:.0f} ms" if avg >= 10 else f"{avg:.1f} ms"}


# ---- the tests (in file order: the empty screen first) ----------------------------------------------

def test_an_empty_box_shows_zeros_and_says_there_is_nothing_yet(admin, srv):
    page = admin.page
    expect(page.locator("#stat-queries")).to_have_text("0")
    expect(page.locator("#led-dot")).to_have_attribute("data-led", "ready")
    expect(page.locator("#top-allowed + p")).to_have_text("None yet.")
    expect(page.locator("#activity-summary")).to_have_text(re.compile(r"^No (figures|queries) "))
    expect(page.locator("#upstream-list li")).to_contain_text(["working"])
    check_screen(admin, srv, "dashboard-empty")


def test_figures_and_tops_equal_the_api_after_real_queries(admin, srv, api, upstream):
    page = admin.page
    assert api.post("/api/denylist", json={"domain": "ads.tracker.example"}).status_code in (200, 201)
    ask(srv, "www.example.org", times=6)
    ask(srv, "www.example.org", "AAAA", times=2)
    ask(srv, "mail.example.net", "MX", times=3)
    ask(srv, "cdn.example.com", times=2)
    ask(srv, "ads.tracker.example", times=4)
    # The tops read the query log: wait until the API has every name, then the page must agree.
    until(lambda: "ads.tracker.example" in top_names(api, True)
          and {"www.example.org", "mail.example.net", "cdn.example.com"} <= set(top_names(api, False)),
          "the queries in the log")
    until(lambda: shown_figures(page) == api_figures(stats(api)), "the page's figures to equal /api/stats")
    s = stats(api)
    assert s["total_queries"] >= 17 and s["blocked_queries"] >= 4
    expect(page.locator("#top-allowed .top-name")).to_have_text(top_names(api, False))
    expect(page.locator("#top-blocked .top-name")).to_have_text(top_names(api, True))
    expect(page.locator("#top-clients .top-name")).to_have_text(top_clients(api))
    dashboard = api.get("/api/dashboard").json()
    types = [t["type"] for t in dashboard["query_types"]]
    assert {"A", "AAAA", "MX"} <= set(types)
    expect(page.locator("#query-types .top-name")).to_have_text(types)
    expect(page.locator("#upstream-list li").first).to_contain_text(upstream.address)
    check_screen(admin, srv, "dashboard-filled")


def test_the_chart_draws_and_the_switch_asks_for_seven_days(page):
    chart = page.locator("#activity-chart canvas")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > 200
    expect(page.locator("#range-24h")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#activity-summary")).to_have_text(re.compile(r"^In the last 24 hours: [\d,]+ queries"))
    # Its text alternative: the figures as a table (hidden in a <details> until opened).
    page.locator("#activity details summary").click()
    expect(page.locator("#activity-table tbody tr").first).to_be_visible()
    with page.expect_request(lambda r: "/api/stats/timeseries?since=7d" in r.url) as asked:
        page.locator("#range-7d").click()
    assert "step=" in asked.value.url
    expect(page.locator("#range-7d")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#range-24h")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#activity-summary")).to_have_text(re.compile(r"^In the last 7 days: "))
    expect(page.locator("#activity-table caption")).to_contain_text("the last 7 days")
    expect(chart).to_be_visible()
    page.locator("#range-24h").click()
    expect(page.locator("#activity-summary")).to_have_text(re.compile(r"^In the last 24 hours: "))
    marks = page.evaluate("performance.getEntriesByType('mark').map((m) => m.name)")
    assert "dashboard-figures" in marks and "dashboard-chart" in marks


def test_a_new_query_shows_without_a_reload(page, srv, api):
    page.evaluate("window.__sameDocument = true")
    before = stats(api)["total_queries"]
    expect(page.locator("#stat-queries")).to_have_text(number(before))
    ask(srv, "live.example.org", times=12)  # enough to lead the allowed top list
    expect(page.locator("#stat-queries")).to_have_text(number(before + 12))
    until(lambda: top_names(api, False)[:1] == ["live.example.org"], "the new name at the top of the API's list")
    expect(page.locator("#top-allowed .top-name").first).to_have_text("live.example.org")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened


def test_the_status_dot_follows_a_pause(page, api):
    expect(page.locator("#led-dot")).to_have_attribute("data-led", "ready")
    expect(page.locator("#led-dot")).to_have_attribute("aria-label", "Status light: green, steady")
    assert api.post("/api/blocking", json={"enabled": False}).status_code == 200
    try:
        expect(page.locator("#led-dot")).to_have_attribute("data-led", "paused")
        expect(page.locator("#led-meaning")).to_have_text("Blocking is paused; names are answered as usual.")
        assert api.get("/api/system").json()["status"]["led"] == "paused"
    finally:
        assert api.post("/api/blocking", json={"enabled": True}).status_code == 200
    expect(page.locator("#led-dot")).to_have_attribute("data-led", "ready")
    expect(page.locator("#led-meaning")).to_have_text("Working: answering and blocking.")


def test_a_hostile_domain_name_shows_as_text_and_runs_nothing(admin, srv, api):
    page = admin.page
    ask(srv, HOSTILE_NAME, times=40)  # to the top of the allowed list
    logged = until(lambda: next((d for d in top_names(api, False) if "onerror" in d), None),
                   "the hostile name in the API's top list")
    shown = page.locator("#top-allowed .top-name").first
    expect(shown).to_have_text(logged)
    assert HOSTILE_LABEL.decode() in shown.inner_text()  # as text, markup and all
    assert page.locator("#tops img").count() == 0
    check_screen(admin, srv, "dashboard-hostile-name")  # no dialog opened, no CSP violation


def test_the_board_card_shows_the_system_figures(page, api):
    system = api.get("/api/system").json()
    expect(page.locator("#sys-uptime")).not_to_have_text("–")
    expect(page.locator("#sys-memory")).to_have_text(re.compile(r"^\d+ % of [\d.]+ [KMGT]?B$"))
    writes = system.get("storage_writes")
    if writes and isinstance(writes.get("bytes_today"), int):
        expect(page.locator("#sys-writes")).to_have_text(re.compile(r"^[\d.]+ [KMGT]?B$"))
    else:
        expect(page.locator("#sys-writes")).to_have_text("not measured")


CARD_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll("#screen .card, #screen .card *")) {
    const r = el.getBoundingClientRect();
    if (r.width && (r.right > width + 0.5 || r.left < -0.5)) {
      out.push((el.id || el.tagName) + " " + r.left + ".." + r.right);
    }
  }
  return out;
}"""


@pytest.mark.parametrize("width, text_size", [(390, "200%"), (320, "100%")])
def test_no_card_overflows_at_large_text_or_a_narrow_screen(admin, width, text_size):
    page = admin.page
    page.set_viewport_size({"width": width, "height": 844})
    page.evaluate("(size) => { document.documentElement.style.fontSize = size; }", text_size)
    try:
        expect(page.locator("#top-allowed .top-name").first).to_be_visible()
        expect(page.locator("#activity-chart canvas")).to_be_visible()
        until(lambda: page.evaluate(CARD_OVERFLOW) == [], "no card wider than the screen")
    finally:
        page.evaluate("() => { document.documentElement.style.fontSize = ''; }")
        page.set_viewport_size(PHONE)
    admin.assert_clean()


def test_the_dashboard_at_desktop_size(browser, srv):
    context = browser.new_context(viewport=DESKTOP)
    try:
        w = Watched(context)
        sign_in(w, srv, "admin", ADMIN_PASSWORD)
        expect(w.page.locator("#activity-chart canvas")).to_be_visible()
        expect(w.page.locator("#top-allowed .top-name").first).to_be_visible()
        check_screen(w, srv, "dashboard-desktop")
    finally:
        context.close()


def test_a_viewer_sees_the_dashboard_without_admin_controls(browser, srv, api):
    created = api.post("/api/users", json={"username": "vic", "password": VIEWER_PW, "role": "viewer"})
    assert created.status_code == 201, created.text
    context = browser.new_context(viewport=PHONE)
    try:
        w = Watched(context)
        page = w.page
        sign_in(w, srv, "vic", VIEWER_PW)
        expect(page.locator("#who-name")).to_have_text("vic (read-only)")
        expect(page.locator("#blocking-state")).to_have_text("Blocking is on")
        expect(page.locator("#top-allowed .top-name").first).to_be_visible()
        expect(page.locator("#activity-chart canvas")).to_be_visible()
        for admin_only in ("#blocking button", "#lists-update", "#router-switch", "#router-form", ".write"):
            expect(page.locator(admin_only)).to_have_count(0)
        # What is left to press only changes the view: the chart's range and its table.
        assert set(page.locator("#app button").evaluate_all("bs => bs.map(b => b.id)")) == {"range-24h", "range-7d"}
        check_screen(w, srv, "dashboard-viewer")
    finally:
        context.close()


def test_an_unreadable_figure_says_so(browser, srv):
    context = browser.new_context(viewport=PHONE)
    try:
        w = Watched(context)
        w.page.route("**/api/stats/timeseries?since=7d*", lambda route: route.fulfill(
            status=503, content_type="application/json",
            body='{"error": "Service Unavailable", "code": 503, "message": "storage not available"}'))
        sign_in(w, srv, "admin", ADMIN_PASSWORD)
        expect(w.page.locator("#activity-chart canvas")).to_be_visible()
        w.page.locator("#range-7d").click()
        expect(w.page.locator("#activity-summary")).to_have_text(re.compile(r"^The figures could not be read: "))
        check_screen(w, srv, "dashboard-error", "status of 503")
    finally:
        context.close()
