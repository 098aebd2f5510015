"""The lists screen (#/lists) in real headless Chromium against the real ``burrow`` process:
adding a list served by a loopback HTTP server and watching it download, a list whose URL
fails, switching a list off and on and removing it, allow and deny entries of each kind
(answers checked with dnspython), the regex tester against the server's own answers, "check
a domain" with its one-tap allow, threat feeds and RPZ zones, and a viewer's read-only screen.

Waits are Playwright ``expect`` calls or deadlines on a condition; nothing asserts a duration.
"""

from __future__ import annotations

import http.server
import re
import threading
from urllib.parse import quote, urlencode

import pytest

from tests.browser.test_admin_page_browser import BAD_REQUEST
from tests.support.api_client import ADMIN_PASSWORD, admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.page import DESKTOP, PHONE, Watched, base_url, check_screen, sign_in
from tests.support.timing import wait_for
from tests.support.upstream_client import TestUpstream

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

WAIT_S = 90.0  # bound on waits for list downloads and recompiles on a loaded machine
VIEWER_PW = "Viewer-passphrase-2024"
NOT_FOUND = "404 (Not Found)"  # Chromium's console line for a 404 the test caused


def wait_until(predicate, what: str, timeout: float = WAIT_S):
    return wait_for(predicate, timeout=timeout, what=what, interval=0.2)  # tests/support/timing.py


class ListServer:
    """Loopback HTTP server for list files; a path in ``held`` answers only once released."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.held: dict[str, threading.Event] = {}
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                gate = owner.held.get(self.path)
                if gate is not None:
                    gate.wait(WAIT_S)
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404, "no such list")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def close(self):
        for gate in self.held.values():
            gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def files():
    s = ListServer()
    yield s
    s.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("lists"), [up.address],
                                             {"upstream": {"timeout": 1.0}}) as b:
        yield b


def open_screen(browser, srv, viewport=PHONE, user=("admin", ADMIN_PASSWORD), color_scheme="light"):
    context = browser.new_context(viewport=viewport, color_scheme=color_scheme)
    w = Watched(context)
    sign_in(w, srv, *user)
    w.page.goto(base_url(srv) + "/#/lists")
    expect(w.page.get_by_role("heading", name="Your lists")).to_be_visible()
    return context, w


@pytest.fixture
def admin(browser, srv, api):
    context, w = open_screen(browser, srv)
    yield w
    context.close()


def blocked(srv, name: str) -> bool:
    answer = srv.query(name).answer
    return bool(answer) and answer[0][0].address == "0.0.0.0"


def row(page, name: str):
    return page.locator("#list-rows > li", has=page.get_by_text(name, exact=True))


def lists_by_name(api) -> dict:
    return {x["name"]: x for x in api.get("/api/lists").json()["lists"]}


def add_list(page, name: str, url: str, kind: str | None = None) -> None:
    form = page.locator("#list-add")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Address of the list (URL)").fill(url)
    if kind:
        form.get_by_label("What the list does").select_option(kind)
    form.get_by_role("button", name="Add list").click()


# ---- the empty screen first (the module's box has nothing yet) ----------------------------------

def test_the_empty_screen_points_at_the_add_form(admin, srv):
    page = admin.page
    expect(page.locator("#lists-domains")).to_have_text("No block lists yet")
    expect(page.locator("#lists-empty")).to_contain_text("Add one with the form below.")
    expect(page.locator("#list-rows-empty")).to_contain_text("No list yet")
    expect(page.locator("#allow-entries")).to_have_text("Nothing here yet.")
    expect(page.locator("#rpz-rows")).to_contain_text("No RPZ zone")
    expect(page.locator("#feed-rows-empty")).to_be_visible()
    check_screen(admin, srv, "lists-empty")


# ---- block lists ---------------------------------------------------------------------------------

def test_a_list_is_added_downloads_with_progress_and_counts_what_the_api_counts(admin, srv, api, files):
    files.files["/ads.hosts"] = b"0.0.0.0 ads.one.test\n0.0.0.0 ads.two.test\n0.0.0.0 pixel.three.test\n"
    gate = files.held["/ads.hosts"] = threading.Event()
    try:
        added_with_progress(admin, srv, api, files, gate)
    finally:
        gate.set()  # never leave the download hanging for the next tests
        files.held.pop("/ads.hosts", None)


def added_with_progress(admin, srv, api, files, gate):
    page = admin.page
    add_list(page, "Loopback ads", files.url("/ads.hosts"))
    expect(page.locator("#notice")).to_contain_text("Loopback ads added")
    r = row(page, "Loopback ads")
    # held by the server: the download is running, and both the row and the whole set say so
    expect(r.locator(".progress")).to_have_text("Downloading Loopback ads…", timeout=WAIT_S * 1000)
    expect(page.locator("#lists-progress")).to_contain_text("Downloading Loopback ads")
    gate.set()
    expect(page.locator("#lists-progress")).to_contain_text("Update finished", timeout=WAIT_S * 1000)
    entries = wait_until(lambda: lists_by_name(api)["Loopback ads"]["entries"], "the list's entries")
    assert entries == 3
    expect(r.locator(".list-status")).to_have_text(f"{entries} entries · updated just now")
    expect(r.locator(".progress")).to_be_hidden()
    assert wait_until(lambda: blocked(srv, "pixel.three.test"), "the list to block")
    # "Update now" on the row: progress while the server holds the file, then the figures again
    files.files["/ads.hosts"] += b"0.0.0.0 ads.four.test\n"
    gate.clear()
    r.get_by_role("button", name="Update now").click()
    expect(r.locator(".progress")).to_have_text("Downloading Loopback ads…", timeout=WAIT_S * 1000)
    gate.set()
    expect(page.locator("#notice")).to_contain_text("Loopback ads updated", timeout=WAIT_S * 1000)
    assert lists_by_name(api)["Loopback ads"]["entries"] == 4
    expect(r.locator(".list-status")).to_have_text("4 entries · updated just now")
    assert wait_until(lambda: blocked(srv, "ads.four.test"), "the new name to be blocked")
    check_screen(admin, srv, "lists-filled")


def test_a_list_whose_url_fails_is_shown_failed_with_the_error(admin, srv, api, files):
    page = admin.page
    add_list(page, "Gone list", files.url("/gone.txt"))
    r = row(page, "Gone list")
    expect(r.locator(".list-status")).to_contain_text("Update failed:", timeout=WAIT_S * 1000)
    error = lists_by_name(api)["Gone list"]["last_error"]
    assert error and "404" in error
    expect(r.locator(".list-status")).to_contain_text(error)
    expect(r.locator(".list-status")).to_contain_text("It has never loaded")
    expect(r.locator(".list-status")).to_have_class("state-line list-status bad")
    expect(page.locator("#lists-errors")).to_contain_text("Gone list: the last update failed")
    # a bad form: every bad field is marked, in words
    form = page.locator("#list-add")
    form.get_by_label("Name").fill("")
    form.get_by_label("Address of the list (URL)").fill("")
    form.get_by_role("button", name="Add list").click()
    expect(page.locator("#list-add-name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#list-add-source")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error")).to_contain_text("Name:")
    expect(page.locator("#error")).to_contain_text("Address of the list (URL):")
    form.get_by_label("Name").fill("Not a web list")
    form.get_by_label("Address of the list (URL)").fill("ftp://nope.test/list")
    form.get_by_role("button", name="Add list").click()
    expect(page.locator("#list-add-source-error")).to_contain_text("only http:// and https:// URLs")
    expect(page.locator("#list-add-name")).not_to_have_attribute("aria-invalid", "true")
    assert "Not a web list" not in lists_by_name(api)
    check_screen(admin, srv, "lists-error", BAD_REQUEST)


def test_a_list_is_switched_off_and_on_and_removed(admin, srv, api):
    page = admin.page
    r = row(page, "Loopback ads")
    switch = r.get_by_role("switch")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(r.get_by_role("switch")).to_have_attribute("aria-checked", "false")
    assert lists_by_name(api)["Loopback ads"]["enabled"] is False
    assert wait_until(lambda: not blocked(srv, "pixel.three.test"), "the list to stop blocking")
    r.get_by_role("switch").click()
    expect(r.get_by_role("switch")).to_have_attribute("aria-checked", "true")
    assert lists_by_name(api)["Loopback ads"]["enabled"] is True
    assert wait_until(lambda: blocked(srv, "pixel.three.test"), "the list to block again")
    gone = row(page, "Gone list")
    gone_id = lists_by_name(api)["Gone list"]["id"]
    gone.get_by_role("button", name="Remove").click()
    gone.get_by_role("button", name="Keep").click()  # changed its mind: nothing happens
    assert "Gone list" in lists_by_name(api)
    gone.get_by_role("button", name="Remove").click()
    gone.get_by_role("button", name="Yes, remove Gone list").click()
    expect(row(page, "Gone list")).to_have_count(0)
    assert api.get(f"/api/lists/{gone_id}").status_code == 404
    admin.assert_clean()


# ---- allow and deny entries ------------------------------------------------------------------------

def add_entry(page, target: str, kind: str, text: str) -> None:
    form = page.locator("#entry-add")
    form.get_by_label("Add to").select_option(target)
    form.get_by_label("Kind").select_option(kind)
    form.get_by_label("Name, wildcard or pattern").fill(text)
    form.get_by_role("button", name="Add entry").click()


def test_allow_and_deny_entries_of_each_kind_change_the_answers(admin, srv, api):
    page = admin.page
    names = {"exact": "deny-exact.test", "wildcard": "x.deny-wild.test", "regex": "denyre12.test"}
    for name in names.values():
        assert not blocked(srv, name)
    for kind, text, shown in (("exact", "Deny-Exact.test", "deny-exact.test"),
                              ("wildcard", "deny-wild.test", "*.deny-wild.test"),
                              ("regex", r"^denyre[0-9]+\.", r"^denyre[0-9]+\.")):
        add_entry(page, "denylist", kind, text)
        expect(page.locator("#deny-entries")).to_contain_text(shown)
        expect(page.locator("#notice")).to_contain_text(f"{shown} added to the deny list")
    summary = api.get("/api/denylist").json()
    assert summary["exact"] == ["deny-exact.test"] and summary["wildcard"] == ["*.deny-wild.test"]
    assert summary["regex"] == [r"^denyre[0-9]+\."]
    for name in names.values():
        assert wait_until(lambda n=name: blocked(srv, n), f"{name} to be denied")
    assert not blocked(srv, "deny-wild.test")  # a wildcard covers the names below only

    # An allow entry of each kind beats the deny entries.
    for kind, text in (("exact", "deny-exact.test"), ("wildcard", "*.deny-wild.test"), ("regex", r"^denyre12\.")):
        add_entry(page, "whitelist", kind, text)
        expect(page.locator("#allow-entries")).to_contain_text(text)
    assert api.get("/api/whitelist").json()["total"] == 3
    for name in names.values():
        assert wait_until(lambda n=name: not blocked(srv, n), f"{name} to be allowed")

    # A kind that does not fit the text is refused before anything is sent.
    add_entry(page, "denylist", "regex", "plain.test")
    expect(page.locator("#entry-text")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#entry-text-error")).to_contain_text("reads this as an exact name")
    assert api.get("/api/denylist").json()["total"] == 3

    # Remove them again through the page.
    for ul, entry in (("#allow-entries", "deny-exact.test"), ("#allow-entries", "*.deny-wild.test"),
                      ("#allow-entries", r"^denyre12\."), ("#deny-entries", "deny-exact.test"),
                      ("#deny-entries", "*.deny-wild.test"), ("#deny-entries", r"^denyre[0-9]+\.")):
        li = page.locator(f"{ul} > li").filter(has=page.get_by_text(entry, exact=True))
        li.get_by_role("button", name="Remove").click()
        li.get_by_role("button", name=f"Yes, remove {entry}").click()
        expect(li).to_have_count(0)
    assert api.get("/api/whitelist").json()["total"] == 0 and api.get("/api/denylist").json()["total"] == 0
    assert wait_until(lambda: not blocked(srv, "deny-exact.test"), "the deny entry to be gone")
    admin.assert_clean()


def test_the_regex_tester_marks_the_error_and_agrees_with_the_server(admin, srv, api):
    page = admin.page
    form = page.locator("#entry-add")
    result = page.locator("#entry-test-result")
    form.get_by_label("Kind").select_option("regex")
    form.get_by_label("Name, wildcard or pattern").fill("ads[0-9")
    expect(result).to_have_text("Not valid (at character 4): not a valid regular expression: "
                                "unterminated character set")
    expect(page.locator("#entry-test-where mark")).to_have_text("[")
    expect(page.locator("#entry-text")).to_have_attribute("aria-invalid", "true")
    check_screen(admin, srv, "lists-tester-error")
    cases = [("regex", r"^ads\d+\.", "ads12.example.com"), ("regex", r"^ads\d+\.", "myads12.example.com"),
             # Python's dialect: a named group and its back-reference (JavaScript writes (?<x>))
             ("regex", r"^(?P<x>ads)\.(?P=x)\.", "ads.ads.test"), ("regex", r"(?<x>ads)", "ads.test"),
             ("regex", r"(?i)TRACK", "tracker.test"), ("regex", "a{2,1}", "aa.test"),
             ("wildcard", "cdn.example", "img.cdn.example"), ("wildcard", "cdn.example", "cdn.example"),
             ("exact", "Exact.Example", "exact.example"), ("exact", "*.x.test", "a.x.test")]
    for kind, pattern, domain in cases:
        form.get_by_label("Kind").select_option(kind)
        form.get_by_label("Name, wildcard or pattern").fill(pattern)
        form.get_by_label("Test it against a name").fill(domain)
        sent = "*." + pattern if kind == "wildcard" else pattern
        server = api.get("/api/userlists/test?" + urlencode({"pattern": sent, "kind": kind, "domain": domain})).json()
        expect(result).to_have_attribute("data-valid", str(server["valid"]).lower())
        if server["valid"]:
            expect(result).to_have_attribute("data-matches", str(server["matches"]).lower())
            expect(result).to_have_text(("Matches " if server["matches"] else "Does not match ") + server["domain"])
        else:
            expect(result).to_contain_text(re.sub(r" at position \d+$", "", server["error"]))
            if server["position"] is not None:
                expect(result).to_contain_text(f"(at character {server['position'] + 1})")
    js_agrees = page.evaluate(r"""() => { try { new RegExp("^(?P<x>ads)\\.(?P=x)\\."); return true; }
                                          catch { return false; } }""")
    assert js_agrees is False  # the browser's own RegExp would have called it broken: the server decides
    admin.assert_clean()


# ---- check a domain --------------------------------------------------------------------------------

def test_check_a_domain_says_which_list_blocks_it_and_allows_it_in_one_tap(admin, srv, api):
    page = admin.page
    card = page.locator("#check-card")
    card.get_by_label("Domain").fill("ads.one.test")
    card.get_by_role("button", name="Check").click()
    expect(page.locator("#check-decision")).to_have_text("ads.one.test: Blocked")
    expect(page.locator("#check-by")).to_contain_text("a block list: Loopback ads")
    expect(page.locator("#check-matches")).to_contain_text("Loopback ads")
    explained = api.get("/api/blocklists/check", params={"domain": "ads.one.test"}).json()
    assert explained["decision"] == "blocked" and explained["rule"] == "Loopback ads"
    assert blocked(srv, "ads.one.test")
    page.get_by_role("button", name="Allow ads.one.test").click()
    expect(page.locator("#check-decision")).to_have_text("ads.one.test: Allowed")
    expect(page.locator("#check-by")).to_contain_text("your allow list")
    expect(page.locator("#allow-entries")).to_contain_text("ads.one.test")
    assert api.get("/api/whitelist").json()["exact"] == ["ads.one.test"]
    assert wait_until(lambda: not blocked(srv, "ads.one.test"), "the allowed name to resolve")
    expect(page.locator("#check-allow")).to_have_count(0)
    card.get_by_label("Domain").fill("not a name!")
    card.get_by_role("button", name="Check").click()
    expect(page.locator("#check-domain")).to_have_attribute("aria-invalid", "true")
    assert api.delete("/api/whitelist/ads.one.test").status_code == 200
    admin.assert_clean(BAD_REQUEST)


# ---- threat feeds and RPZ zones, at desktop size too ---------------------------------------------------

def test_threat_feeds_and_rpz_zones_are_listed(browser, srv, api, files):
    files.files["/threats.txt"] = b"evil.threat.test\nphish.threat.test\n"
    feed = api.post("/api/threat-feeds", json={"name": "Loopback threats", "source": files.url("/threats.txt")})
    assert feed.status_code == 201, feed.text
    zone = api.post("/api/rpz", json={"name": "rpz.home", "rules": [{"trigger": "rpz-blocked.test",
                                                                     "action": "nxdomain"}]})
    assert zone.status_code == 201, zone.text
    context, w = open_screen(browser, srv, DESKTOP)
    try:
        page = w.page
        feeds = page.locator("#feed-rows > li", has=page.get_by_text("Loopback threats", exact=True))
        expect(feeds.locator(".list-status")).to_contain_text("2 entries", timeout=WAIT_S * 1000)
        assert api.get(f"/api/threat-feeds/{feed.json()['id']}").json()["entries"] == 2
        rpz = page.locator("#rpz-rows > li", has=page.get_by_text("rpz.home", exact=True))
        expect(rpz).to_contain_text("1 rule")
        expect(rpz).to_contain_text("made here")
        expect(row(page, "rpz.home")).to_have_count(0)  # a zone is not listed twice
        check_screen(w, srv, "lists-filled-desktop")
        rpz.get_by_role("button", name="Remove").click()
        rpz.get_by_role("button", name="Yes, remove rpz.home").click()
        expect(page.locator("#rpz-rows")).to_contain_text("No RPZ zone")
        assert api.get("/api/rpz").json()["total"] == 0
        w.assert_clean()
    finally:
        context.close()


def test_the_filled_screen_in_dark_mode_passes_axe(browser, srv, api):
    context, w = open_screen(browser, srv, PHONE, color_scheme="dark")
    try:
        page = w.page
        expect(row(page, "Loopback ads").locator(".list-status")).to_contain_text("entries")
        page.locator("#entry-add").get_by_label("Kind").select_option("regex")
        page.get_by_label("Name, wildcard or pattern").fill("(dark")
        expect(page.locator("#entry-test-where mark")).to_be_visible()
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        check_screen(w, srv, "lists-dark")
    finally:
        context.close()


# ---- a viewer ------------------------------------------------------------------------------------------

def test_a_viewer_sees_the_lists_but_no_control_that_changes_them(browser, srv, api):
    made = api.post("/api/users", json={"username": "lisa", "password": VIEWER_PW, "role": "viewer"})
    assert made.status_code == 201, made.text
    assert api.post("/api/denylist", json={"domain": "viewer-sees.test"}).status_code == 200
    context, w = open_screen(browser, srv, PHONE, ("lisa", VIEWER_PW))
    try:
        page = w.page
        expect(row(page, "Loopback ads").locator(".list-status")).to_contain_text("entries")
        expect(page.locator("#deny-entries")).to_contain_text("viewer-sees.test")
        for gone in ("#list-add", "#lists-update", "#entry-list", "#check-allow", '[role="switch"]'):
            expect(page.locator(gone)).to_have_count(0)
        for name in ("Update now", "Remove", "Add list", "Add entry", "Update lists now"):
            expect(page.get_by_role("button", name=name)).to_have_count(0)
        # reading is allowed: the tester and the check work
        page.get_by_label("Name, wildcard or pattern").fill("viewer-sees.test")
        page.get_by_label("Test it against a name").fill("viewer-sees.test")
        expect(page.locator("#entry-test-result")).to_have_text("Matches viewer-sees.test")
        page.locator("#check-card").get_by_label("Domain").fill("viewer-sees.test")
        page.get_by_role("button", name="Check").click()
        expect(page.locator("#check-decision")).to_have_text("viewer-sees.test: Blocked")
        expect(page.locator("#check-allow")).to_have_count(0)
        check_screen(w, srv, "lists-viewer")
    finally:
        context.close()
        api.delete("/api/denylist/viewer-sees.test")


# ---- layout --------------------------------------------------------------------------------------------

OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > width) out.push("page " + document.documentElement.scrollWidth);
  for (const el of document.querySelectorAll("#screen .card, #screen .card *")) {
    const r = el.getBoundingClientRect();
    if (r.width && (r.right > width + 0.5 || r.left < -0.5)) {
      const inner = el.querySelector("input, select");
      const what = el.id || el.tagName + "." + el.className + (inner ? "#" + inner.id : "");
      out.push(what + " " + r.left + ".." + r.right);
    }
  }
  return out;
}"""
TAP_TARGETS = """() => {
  const out = [];
  for (const el of document.querySelectorAll("#screen button, #screen input, #screen select, #screen summary")) {
    const r = el.getBoundingClientRect();
    if (r.width && r.height && (r.height < 44 || r.width < 44)) {
      out.push((el.id || el.textContent.trim() || el.tagName) + " " + r.width + "x" + r.height);
    }
  }
  return out;
}"""


@pytest.mark.parametrize("width, text_size", [(390, "200%"), (320, "100%")])
def test_no_overflow_at_320_px_or_200_percent_text_and_44_px_targets(admin, api, width, text_size):
    long_regex = r"^(very-long-label-without-any-break-in-it-at-all-[0-9]+\.)+tracking-example-domain\.test$"
    assert api.post("/api/denylist", json={"domain": long_regex}).status_code == 200
    try:
        page = admin.page
        page.set_viewport_size({"width": width, "height": 844})
        page.evaluate("(size) => { document.documentElement.style.fontSize = size; }", text_size)
        expect(page.locator("#deny-entries")).to_contain_text("tracking-example-domain")
        expect(page.locator("#list-rows > li").first).to_be_visible()
        page.locator("#entry-add").get_by_label("Kind").select_option("regex")
        page.get_by_label("Name, wildcard or pattern").fill("(" + long_regex)
        expect(page.locator("#entry-test-where mark")).to_be_visible()
        page.get_by_text("More options").click()  # the format field, shown and measured too
        expect(page.locator("#list-add-format")).to_be_visible()
        assert page.evaluate(OVERFLOW) == []
        assert page.evaluate(TAP_TARGETS) == []
        admin.assert_clean()
    finally:
        assert api.delete("/api/denylist/" + quote(long_regex, safe="")).status_code == 200


def test_a_well_known_list_is_added_from_the_catalogue_in_one_tap(browser, tmp_path):
    # Its own Burrow whose upstream is the discard port: the catalogue's internet host names
    # never resolve, so adding one stores it and its download fails without leaving loopback.
    with BurrowProcess(tmp_path / "catalogue") as b:  # upstream: 127.0.0.1:9
        token = admin_token(b)
        context, w = open_screen(browser, b)
        try:
            page = w.page
            catalogue = authed(b, token, "GET", "/api/lists/catalogue")[1]["lists"]
            items = page.locator("#list-catalogue-items > li")
            expect(items).to_have_count(len(catalogue))
            pick = catalogue[1]
            item = page.locator(f'#list-catalogue-items > li[data-id="{pick["id"]}"]')
            expect(item).to_contain_text(pick["name"])
            item.get_by_role("button", name=f"Add {pick['name']}").click()
            expect(item.get_by_role("button")).to_have_count(0)
            expect(item).to_contain_text("added")
            expect(page.locator("#notice")).to_contain_text(f"{pick['name']} added")
            lists = authed(b, token, "GET", "/api/lists")[1]["lists"]
            assert [(x["name"], x["source"], x["kind"]) for x in lists] == [(pick["name"], pick["url"], "block")]
            page.reload()  # added ones stay marked as added
            expect(page.locator(f'#list-catalogue-items > li[data-id="{pick["id"]}"]')).to_contain_text("added")
            expect(page.locator(f'#list-catalogue-items > li[data-id="{pick["id"]}"] button')).to_have_count(0)
            expect(page.locator("#list-catalogue-items button")).to_have_count(len(catalogue) - 1)
            check_screen(w, b, "lists-catalogue")
        finally:
            context.close()
