"""The query log screen (#/log) in real headless Chromium against the real ``burrow`` process with
a test upstream: the live stream (/ws/queries, no polling), pause, filters (equal to the API's
answer for the same filter), each row's decision trace, "why?" (the explain dry run), allow and
block with undo (checked in the page, in the API's lists and in the answer DNS gives), names made
of markup shown as text, a viewer without admin controls, and check_screen in every state.

Waits are Playwright ``expect`` calls bounded by EXPECT_TIMEOUT_MS, except the one the issue
sets: a query appears in the live log within 2 s of its answer.
"""

from __future__ import annotations

import re
import time
import urllib.parse

import dns.message
import dns.name
import dns.query
import pytest

from tests.browser.test_admin_page_defects_browser import OVERFLOW, TAP_TARGETS
from tests.support.api_client import ADMIN_PASSWORD, admin_token, user_token
from tests.support.burrow_proc import BurrowProcess
from tests.support.page import DESKTOP, PHONE, Watched, base_url, check_screen, screenshot, sign_in
from tests.support.upstream import address_for
from tests.support.upstream_client import TestUpstream

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

VIEWER_PW = "Viewer-pass-2024"
XSS_LABEL = b"<img src=x onerror=alert(1)>"
# now + ms in the phone's local time, as an <input type=datetime-local> takes it
LOCAL_TIME = """(ms) => { const d = new Date(Date.now() + ms); const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
         `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`; }"""
LIVE_WITHIN_MS = 2000  # issue 15: "a query made with dnspython appears in the live log within 2 s"


# ---- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def upstream():
    with TestUpstream() as u:
        yield u


@pytest.fixture(scope="module")
def srv(tmp_path_factory, upstream):
    with BurrowProcess(tmp_path_factory.mktemp("log-screen"), [upstream.address]) as b:
        yield b


def open_log(w: Watched, srv) -> None:
    page = w.page
    page.goto(base_url(srv) + "/#/log")
    expect(page.locator("[data-screen=log]")).to_be_visible()
    expect(page.locator("#log-live")).to_have_text("Live")
    expect(page.locator("#log-loading")).to_have_count(0)


def row(page, domain: str):
    return page.locator("#log-rows > li", has=page.locator(".log-domain", has_text=re.compile(
        "^" + re.escape(domain) + "$")))


def answer(srv, name: str, source: str = "127.0.0.1") -> list[str]:
    reply = srv.query(name, "A", source=source)
    return sorted(rr.to_text() for rrset in reply.answer for rr in rrset)


def logged_rows(api, qs: str) -> list[dict]:
    """The API's rows for a filter, once there are some (a row is listed within a second)."""
    deadline = time.monotonic() + 10
    while True:
        rows = api.get(f"/api/queries?{qs}").json()["queries"]
        if rows or time.monotonic() > deadline:
            assert rows, f"no logged query for {qs}"
            return rows
        time.sleep(0.05)


def lists(api) -> tuple[dict, dict]:
    return api.get("/api/whitelist").json(), api.get("/api/denylist").json()


# ---- tests -------------------------------------------------------------------------------------------

def test_empty_log_says_how_to_start(admin, srv, api):
    # First: nothing was asked of this Burrow yet.
    assert api.get("/api/queries").json()["total"] == 0
    open_log(admin, srv)
    page = admin.page
    expect(page.locator("#log-empty")).to_contain_text("No queries yet — point your router's DNS at Burrow")
    check_screen(admin, srv, "log-empty")


def test_a_query_appears_live_within_2_s_without_polling(admin, srv, api):
    page = admin.page
    open_log(admin, srv)
    asked: list[str] = []

    def note(request):
        asked.append(request.url)

    page.on("request", note)
    name = "live-one.log.test"
    assert answer(srv, name) == [address_for(name)]
    expect(row(page, name)).to_be_visible(timeout=LIVE_WITHIN_MS)
    page.remove_listener("request", note)
    assert not [u for u in asked if "/api/queries" in u], asked  # the stream brought it, no poll
    expect(row(page, name).locator(".log-meta")).to_have_text(re.compile(r" · A · 127\.0\.0\.1 resolved$"))
    expect(page.locator("#log-empty")).to_have_count(0)
    # Paused: new rows wait (and are counted); resumed, they show.
    page.locator("#log-pause").click()
    expect(page.locator("#log-live")).to_have_text("Paused")
    answer(srv, "while-paused.log.test")
    expect(page.locator("#log-held")).to_have_text("1 new query waiting")
    expect(row(page, "while-paused.log.test")).to_have_count(0)
    page.locator("#log-pause").click()
    expect(page.locator("#log-live")).to_have_text("Live")
    expect(row(page, "while-paused.log.test")).to_be_visible()
    # Newest first, as the API lists them.
    ids = [int(x) for x in page.locator("#log-rows > li").evaluate_all("els => els.map(e => e.dataset.id)")]
    assert ids == sorted(ids, reverse=True)
    check_screen(admin, srv, "log-filled")


def subscribers(api) -> int:
    found = re.search(r"^burrow_event_subscribers (\d+)", api.get("/metrics").text, re.M)
    assert found, "burrow_event_subscribers in /metrics"
    return int(found.group(1))


def test_the_query_stream_is_open_only_while_the_log_is_shown(admin, srv, api):
    page = admin.page
    open_log(admin, srv)
    on_log = subscribers(api)  # the page's /ws/events and /ws/queries (and other pages')
    page.goto(base_url(srv) + "/#/dashboard")
    expect(page.locator("[data-screen=dashboard]")).to_be_visible()
    deadline = time.monotonic() + 10  # the server notices the close when the frame arrives
    while subscribers(api) != on_log - 1 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert subscribers(api) == on_log - 1
    open_log(admin, srv)
    assert subscribers(api) == on_log


def test_filters_narrow_the_rows_and_equal_the_api(admin, srv, api):
    page = admin.page
    for name in ("a.filter.test", "b.a.filter.test", "other.test"):
        answer(srv, name)
    srv.query("a.filter.test", "AAAA")
    answer(srv, "kids.filter.test", source="127.0.0.2")
    open_log(admin, srv)
    expect(row(page, "kids.filter.test")).to_be_visible()

    def shown():
        return [int(x) for x in page.locator("#log-rows > li").evaluate_all("els => els.map(e => e.dataset.id)")]

    def apply(**fields):
        page.locator("#log-filters-summary").click() if not page.locator("#log-filters").is_visible() else None
        page.locator("#log-clear").click()
        expect(page.locator("#log-loading")).to_have_count(0)
        for label, value in fields.items():
            el = page.locator(f"#log-f-{label}")
            if el.evaluate("e => e.tagName") == "SELECT":
                el.select_option(value)
            else:
                el.fill(value)
        page.locator("#log-apply").click()
        expect(page.locator("#log-loading")).to_have_count(0)

    cases = [
        ({"domain": "a.filter.test"}, "domain=a.filter.test"),
        ({"domain": "a.filter.test", "type": "AAAA"}, "domain=a.filter.test&type=AAAA"),
        ({"client": "127.0.0.2"}, "client=127.0.0.2"),
        ({"blocked": "false", "domain": "test"}, "blocked=false&domain=test"),
        ({"stage": "forward"}, "stage=forward"),
        ({"range": "15m", "domain": "filter.test"}, "since=15m&domain=filter.test"),
    ]
    for fields, qs in cases:
        apply(**fields)
        want = [q["id"] for q in api.get(f"/api/queries?{qs}&limit=100").json()["queries"]]
        assert want, qs
        expect(page.locator("#log-rows > li")).to_have_count(len(want))
        assert shown() == want, qs
    # A custom range (the phone's local time): from an hour ago to an hour ahead, then one ended.
    local = page.evaluate(LOCAL_TIME, -3600_000)  # an hour ago, as a datetime-local field takes it
    since = page.evaluate("(s) => new Date(s).toISOString()", local)
    apply(range="custom", **{"from": local}, to=page.evaluate(LOCAL_TIME, 3600_000))
    want = [q["id"] for q in api.get("/api/queries", params={"since": since, "limit": 100}).json()["queries"]]
    assert want
    expect(page.locator("#log-rows > li")).to_have_count(len(want))
    assert shown() == want
    apply(range="custom", **{"from": local}, to=local)  # ended an hour ago: nothing since then
    expect(page.locator("#log-empty")).to_have_text("No query matches these filters.")
    # A row arriving live that does not match is not shown; one that does, is.
    apply(domain="a.filter.test")
    answer(srv, "nope.other.test")
    answer(srv, "new.a.filter.test")
    expect(row(page, "new.a.filter.test")).to_be_visible()
    expect(row(page, "nope.other.test")).to_have_count(0)
    assert shown() == [q["id"] for q in api.get("/api/queries?domain=a.filter.test").json()["queries"]]
    # Nothing matches: said so.
    apply(domain="nothing-here.test")
    expect(page.locator("#log-empty")).to_have_text("No query matches these filters.")
    # A bad filter: the API's 400 in words, at its field.
    apply(client="x" * 70)
    expect(page.locator("#log-error")).to_contain_text("could not be read")
    expect(page.locator("#log-f-client")).to_have_attribute("aria-invalid", "true")
    check_screen(admin, srv, "log-filter-error", "the server responded with a status of 400")
    apply()


def test_a_row_expands_to_its_trace_and_why_explains_it(admin, srv, api):
    page = admin.page
    status = api.post("/api/denylist", json={"domain": "*.denied.test"})
    assert status.status_code == 200, status.text
    assert answer(srv, "x.denied.test") == ["0.0.0.0"]
    open_log(admin, srv)
    r = row(page, "x.denied.test")
    expect(r.locator(".pill")).to_have_text("blocked")
    r.locator(".log-row-toggle").click()
    expect(r.locator(".log-row-toggle")).to_have_attribute("aria-expanded", "true")
    trace = r.locator(".log-trace")
    expect(trace).to_contain_text("denylist")
    logged = logged_rows(api, "domain=x.denied.test")[0]["block_trace"]
    assert any(e["stage"] == "denylist" for e in logged)
    expect(trace.locator("li")).to_have_count(len(logged))
    expect(r.locator(".log-facts")).to_contain_text("NOERROR")
    r.get_by_role("button", name="Why?").click()
    explained = api.get("/api/blocklists/check", params={"domain": "x.denied.test", "client": "127.0.0.1",
                                                         "type": "A"}).json()
    box = r.locator(".log-why-answer")
    expect(box.locator(".log-why-decision")).to_have_text(explained["decision"])
    expect(box).to_contain_text(f"at {explained['stage']}")
    expect(box).to_contain_text("*.denied.test")
    expect(box).to_contain_text(f"Answer: {explained['answer']}")
    check_screen(admin, srv, "log-expanded")
    api.delete("/api/denylist/" + "%2A.denied.test")


def test_block_then_undo_changes_dns_and_the_api(admin, srv, api):
    page = admin.page
    name = "tracker.block.test"
    real = [address_for(name)]
    assert answer(srv, name) == real
    open_log(admin, srv)
    r = row(page, name).first
    r.get_by_role("button", name=f"Block {name}").click()
    expect(page.locator("#log-toast")).to_contain_text(
        f"Blocked {name} for everyone. 127.0.0.1 now gets the block answer.")
    assert name in lists(api)[1]["exact"]
    assert answer(srv, name) == ["0.0.0.0"]
    expect(row(page, name).first.locator(".pill")).to_have_text("blocked")  # the new query, live
    page.locator("#log-undo").click()
    expect(page.locator("#log-toast")).to_contain_text(f"Undone: {name} is as it was before.")
    assert name not in lists(api)[1]["exact"]
    assert answer(srv, name) == real


def test_allow_for_everyone_and_for_one_group_then_undo(admin, srv, api):
    page = admin.page
    assert api.post("/api/groups", json={"name": "kids"}).status_code == 201
    assert api.post("/api/clients", json={"client": "127.0.0.2", "groups": ["kids"]}).status_code in (200, 201)
    assert api.post("/api/denylist", json={"domain": "*.broken.test"}).status_code == 200
    name = "cdn.broken.test"
    real = [address_for(name)]
    assert answer(srv, name) == ["0.0.0.0"]
    open_log(admin, srv)
    r = row(page, name).first
    expect(r.locator(".pill")).to_have_text("blocked")
    # For everyone: the allow list gets the name; DNS gives the real address.
    r.get_by_role("button", name=f"Allow {name}").click()
    expect(page.locator("#log-toast")).to_contain_text(f"Allowed {name} for everyone.")
    explained = api.get("/api/blocklists/check", params={"domain": name, "client": "127.0.0.1"}).json()
    expect(page.locator("#log-toast")).to_contain_text(f"127.0.0.1 now gets an answer ({explained['decision']}).")
    allow, deny = lists(api)
    assert name in allow["exact"] and name not in allow.get("groups", {})
    assert deny["wildcard"] == ["*.broken.test"]  # the list entry that broke it stays
    assert answer(srv, name) == real
    assert answer(srv, name, source="127.0.0.2") == real
    page.locator("#log-undo").click()
    expect(page.locator("#log-toast")).to_contain_text("Undone")
    assert name not in lists(api)[0]["exact"]
    assert answer(srv, name) == ["0.0.0.0"]
    # For group kids only: 127.0.0.2 (kids) gets the real answer, 127.0.0.1 is still blocked.
    page.locator("#log-scope").select_option(label="Group kids")
    row(page, name).first.get_by_role("button", name=f"Allow {name}").click()
    expect(page.locator("#log-toast")).to_contain_text(f"Allowed {name} for group kids.")
    allow = lists(api)[0]
    assert allow["groups"][name] == ["kids"]
    assert answer(srv, name, source="127.0.0.2") == real
    assert answer(srv, name) == ["0.0.0.0"]
    page.locator("#log-undo").click()
    expect(page.locator("#log-toast")).to_contain_text("Undone")
    assert name not in lists(api)[0]["exact"]
    assert answer(srv, name, source="127.0.0.2") == ["0.0.0.0"]
    page.locator("#log-scope").select_option(label="Everyone")
    admin.assert_clean()


def test_block_over_an_allow_entry_and_undo_puts_it_back(admin, srv, api):
    page = admin.page
    name = "both.lists.test"
    real = [address_for(name)]
    assert api.post("/api/whitelist", json={"domain": name}).status_code == 200
    assert answer(srv, name) == real
    open_log(admin, srv)
    r = row(page, name).first
    expect(r).to_be_visible()
    # For one group, under an allow entry for everyone: it could not work, so nothing is changed.
    page.locator("#log-scope").select_option(label="Group kids")
    r.get_by_role("button", name=f"Block {name}").click()
    expect(page.locator("#log-toast")).to_contain_text("is on the allow list for everyone")
    expect(page.locator("#log-undo")).to_have_count(0)
    allow, deny = lists(api)
    assert name in allow["exact"] and name not in deny["exact"]
    # For everyone: the allow entry goes, the deny entry comes; undo puts back exactly the old one.
    page.locator("#log-scope").select_option(label="Everyone")
    r.get_by_role("button", name=f"Block {name}").click()
    expect(page.locator("#log-toast")).to_contain_text(f"Blocked {name} for everyone.")
    allow, deny = lists(api)
    assert name not in allow["exact"] and name in deny["exact"]
    assert answer(srv, name) == ["0.0.0.0"]
    page.locator("#log-undo").click()
    expect(page.locator("#log-toast")).to_contain_text("Undone")
    allow, deny = lists(api)
    assert name in allow["exact"] and name not in allow.get("groups", {}) and name not in deny["exact"]
    assert answer(srv, name) == real
    api.delete(f"/api/whitelist/{name}")
    admin.assert_clean()


def test_a_name_made_of_markup_is_text_everywhere(admin, srv, api):
    page = admin.page
    qname = dns.name.Name([XSS_LABEL, b"xss", b"test", b""])
    reply = dns.query.udp(dns.message.make_query(qname, "A"), "127.0.0.1", port=srv.dns_port, timeout=10)
    assert reply is not None
    logged = logged_rows(api, "domain=xss.test")
    shown_name = logged[0]["domain"]
    assert "<img" in shown_name
    open_log(admin, srv)
    r = row(page, shown_name)
    expect(r).to_be_visible()
    r.locator(".log-row-toggle").click()
    expect(r.locator(".log-full-domain")).to_have_text(shown_name)
    r.get_by_role("button", name="Why?").click()
    expect(r.locator(".log-why")).not_to_be_empty()
    # Also live: the name arrives over the stream while the page is open.
    dns.query.udp(dns.message.make_query(dns.name.Name([XSS_LABEL, b"live", b"test", b""]), "A"),
                  "127.0.0.1", port=srv.dns_port, timeout=10)
    live_name = shown_name.replace(".xss.test", ".live.test")
    expect(row(page, live_name)).to_be_visible()
    assert page.locator("#screen img").count() == 0
    assert admin.dialogs == []
    # No list entry can hold the name: no allow/block tap for it, and it says why.
    expect(r.locator(".log-quick")).to_have_count(0)
    expect(r.locator(".log-detail")).to_contain_text("cannot be allowed or blocked from here")
    check_screen(admin, srv, "log-xss", "the server responded with a status of 400")


def test_markup_in_an_event_is_text_on_the_audit_screen(admin, srv, api):
    # The audit screen is another part of issue 15 (built beside this one); once it is in, this
    # checks that an event naming markup (a deny entry made of it) shows as text there.
    entry = XSS_LABEL.decode()
    res = api.post("/api/denylist", json={"domain": entry})
    assert res.status_code == 200, res.text
    try:
        events = api.get("/api/events?type=denylist").json()["events"]
        assert any(entry in e["summary"] for e in events)
        page = admin.page
        page.goto(base_url(srv) + "/#/audit")
        expect(page.locator("#screen > section")).to_be_visible()
        if page.locator("[data-screen=missing]").count():
            pytest.skip("the audit screen is not on this branch yet")
        expect(page.get_by_text(entry).first).to_be_visible()
        assert page.locator("#screen img").count() == 0
        assert admin.dialogs == []
    finally:
        api.delete("/api/denylist/" + urllib.parse.quote(entry, safe=""))


def test_desktop_size(browser, srv, api):
    context = browser.new_context(viewport=DESKTOP)
    try:
        w = Watched(context)
        sign_in(w, srv, "admin", ADMIN_PASSWORD)
        open_log(w, srv)
        expect(w.page.locator("#log-rows > li").first).to_be_visible()
        w.page.locator("#log-filters-summary").click()
        w.page.locator("#log-rows > li").first.locator(".log-row-toggle").click()
        check_screen(w, srv, "log-desktop")
    finally:
        context.close()


def test_viewer_sees_no_allow_or_block(browser, srv, api):
    user_token(srv, admin_token(srv), "watcher", VIEWER_PW)
    context = browser.new_context(viewport=PHONE)
    try:
        w = Watched(context)
        sign_in(w, srv, "watcher", VIEWER_PW)
        open_log(w, srv)
        page = w.page
        first = row(page, "cdn.broken.test").first
        expect(first).to_be_visible()
        first.locator(".log-row-toggle").click()
        expect(first.locator(".log-trace")).to_contain_text("denylist")
        first.get_by_role("button", name="Why?").click()
        expect(first.locator(".log-why")).not_to_be_empty()
        assert page.locator("[data-action], #log-scope, .log-quick").count() == 0
        check_screen(w, srv, "log-viewer")
    finally:
        context.close()


def test_burrow_restarting_shows_offline_then_the_log_goes_live_again(browser, tmp_path, upstream):
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        admin_token(b)
        context = browser.new_context(viewport=PHONE)
        try:
            w = Watched(context)
            sign_in(w, b, "admin", ADMIN_PASSWORD)
            open_log(w, b)
            page = w.page
            answer(b, "before.restart.test")
            expect(row(page, "before.restart.test")).to_be_visible()
            b.stop()
            expect(page.locator("#log-live")).to_have_text("Reconnecting…")
            expect(page.locator("#log-live")).to_have_attribute("data-state", "offline")
            expect(row(page, "before.restart.test")).to_be_visible()  # what was shown stays
            b.start()
            expect(page.locator("#log-live")).to_have_text("Live")
            answer(b, "after.restart.test")
            expect(row(page, "after.restart.test")).to_be_visible()
            expect(row(page, "before.restart.test")).to_be_visible()
            # The refused connections while it was down are the browser's own console lines.
            w.assert_clean("WebSocket connection to", "Failed to load resource", "ERR_CONNECTION_REFUSED")
        finally:
            context.close()


@pytest.mark.parametrize("width, text_size", [(390, "200%"), (320, "100%")])
def test_no_overflow_and_44_px_targets_at_narrow_widths_and_large_text(admin, srv, api, width, text_size):
    page = admin.page
    open_log(admin, srv)
    page.set_viewport_size({"width": width, "height": 844})
    try:
        page.evaluate("(size) => { document.documentElement.style.fontSize = size; }", text_size)
        if not page.locator("#log-filters").is_visible():
            page.locator("#log-filters-summary").click()
        page.locator("#log-f-range").select_option("custom")
        name = f"a-rather-long-label-for-a-narrow-screen-{width}.log.test"
        answer(srv, name)
        first = row(page, name).first
        first.locator(".log-row-toggle").click()
        expect(first.locator(".log-row-toggle")).to_have_attribute("aria-expanded", "true")
        first.get_by_role("button", name="Why?").click()
        expect(first.locator(".log-why-answer")).to_be_visible()
        overflow = page.evaluate(OVERFLOW)
        assert overflow == [], overflow
        assert page.evaluate(TAP_TARGETS) == []
        small = page.evaluate("""() => [...document.querySelectorAll('#screen select, #screen summary')]
          .filter((e) => e.getBoundingClientRect().height < 44).map((e) => e.id || e.tagName)""")
        assert small == []
        screenshot(page, f"log-narrow-{text_size}")
        admin.assert_clean()
    finally:
        page.evaluate("() => { document.documentElement.style.fontSize = ''; }")
        page.locator("#log-f-range").select_option("")
        page.set_viewport_size(PHONE)


def test_loading_then_no_answer_then_try_again(browser, srv, api):
    answer(srv, "loading-state.log.test")
    context = browser.new_context(viewport=PHONE)
    held: list = []
    queries = re.compile(r"/api/queries\?")
    try:
        w = Watched(context)
        sign_in(w, srv, "admin", ADMIN_PASSWORD)
        page = w.page
        context.route(queries, lambda route: held.append(route))
        page.goto(base_url(srv) + "/#/log")
        expect(page.locator("#log-loading")).to_have_text("Loading the query log…")
        deadline = time.monotonic() + 30
        while not held and time.monotonic() < deadline:
            page.wait_for_timeout(50)  # Playwright hands the route over while the test waits in it
        assert held, "the page asked for the log"
        check_screen(w, srv, "log-loading")
        for route in list(held):  # no answer at all, as when Burrow is unplugged
            route.abort("connectionrefused")
        context.unroute(queries)
        error = page.locator("#log-error")
        expect(error).to_contain_text("Burrow did not answer")
        check_screen(w, srv, "log-no-answer", "Failed to load resource", "ERR_CONNECTION_REFUSED")
        error.get_by_role("button", name="Try again").click()
        expect(row(page, "loading-state.log.test")).to_be_visible()
        expect(page.locator("#log-error")).to_have_count(0)
        w.assert_clean("Failed to load resource", "ERR_CONNECTION_REFUSED")
    finally:
        context.close()
