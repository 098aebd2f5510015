"""The admin screens (settings, users and tokens, audit, backup, system) in real Chromium against
the real ``burrow`` process: every change is made through the page and checked in the API's
answer (and in a DNS answer where it changes one).
"""

from __future__ import annotations

import re

import dns.rcode
import pytest

from tests.support.burrow_proc import BurrowProcess
from tests.support.page import DESKTOP, PHONE, Watched, check_screen, sign_in

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

BAD_REQUEST = "the server responded with a status of 400"
UNAUTHORIZED = "the server responded with a status of 401"
XSS = "<img src=x onerror=alert(1)>"
VIEWER = "vera"
VIEWER_PW = "Viewer-pass-2024"
VIEWER_NEW_PW = "Another-viewer-pass-77"
SCREENS = ("settings", "users", "audit", "backup", "system")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with BurrowProcess(tmp_path_factory.mktemp("admin-screens")) as b:
        yield b


def open_screen(w: Watched, name: str) -> None:
    """Open the screen afresh (reloaded when it is the one shown: a new hash is no navigation)."""
    if w.page.url.endswith(f"#/{name}"):
        w.page.reload()
    else:
        w.page.goto(f"{w.page.url.split('#')[0]}#/{name}")
    expect(w.page.locator(f'section[data-screen="{name}"]')).to_be_visible()


def check_both_sizes(w: Watched, srv, name: str, *expected: str) -> None:
    check_screen(w, srv, f"{name}-phone", *expected)
    w.page.set_viewport_size(DESKTOP)
    try:
        check_screen(w, srv, f"{name}-desktop", *expected)
    finally:
        w.page.set_viewport_size(PHONE)


# ---- settings ---------------------------------------------------------------------------------

def test_settings_change_through_the_page_reaches_the_api_and_dns(admin, srv, api):
    page = admin.page
    assert api.post("/api/denylist", json={"domain": "ads.example.test"}).status_code == 200
    before = srv.query("ads.example.test")
    assert before.rcode() == dns.rcode.NOERROR and "0.0.0.0" in before.answer[0].to_text()

    open_screen(admin, "settings")
    card = page.locator("#settings-blocking")
    card.get_by_label("Answer blocked names with").select_option("nxdomain")
    card.get_by_label("Time to live of a blocked answer (seconds)").fill("30")
    card.get_by_role("button", name="Save blocked names").click()
    expect(card.locator(".saved")).to_contain_text("Saved and applied")
    filtering = api.get("/api/config").json()["filtering"]
    assert (filtering["blocking_mode"], filtering["blocked_ttl"]) == ("nxdomain", 30)
    assert srv.query("ads.example.test").rcode() == dns.rcode.NXDOMAIN  # the DNS answer follows
    check_both_sizes(admin, srv, "settings-filled")

    # Every bad field is marked, the banner says it in words, and nothing changes.
    cache_before = api.get("/api/config").json()["cache"]
    cache = page.locator("#settings-cache")
    cache.get_by_label("Longest time kept (seconds)").fill("0")
    cache.get_by_label("Time a \"no such name\" is kept (seconds)").fill("lots")
    cache.get_by_role("button", name="Save cache").click()
    expect(page.locator("#set-cache-max_ttl")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#set-cache-negative_ttl")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#set-cache-max_ttl-error")).not_to_be_empty()
    expect(page.locator("#error")).to_contain_text("Longest time kept (seconds):")
    expect(page.locator("#error")).not_to_contain_text("(400")
    assert api.get("/api/config").json()["cache"] == cache_before

    upstreams = page.locator("#settings-upstreams")
    old_upstreams = api.get("/api/config").json()["upstream_dns_servers"]
    upstreams.get_by_label("Upstream servers").fill("192.0.2.53\nnot-an-address")
    upstreams.get_by_role("button", name="Save upstream servers").click()
    expect(page.locator("#set-upstreams-upstream_dns_servers-error")).to_contain_text("line 2")
    assert api.get("/api/config").json()["upstream_dns_servers"] == old_upstreams
    check_screen(admin, srv, "settings-error", BAD_REQUEST)

    # A good upstream list is taken and applied.
    upstreams.get_by_label("Upstream servers").fill(f"{old_upstreams[0]}\n192.0.2.53")
    upstreams.get_by_role("button", name="Save upstream servers").click()
    expect(upstreams.locator(".saved")).to_contain_text("Saved and applied")
    assert api.get("/api/config").json()["upstream_dns_servers"] == [old_upstreams[0], "192.0.2.53:53"]
    expect(page.locator("#set-upstreams-upstream_dns_servers")).not_to_have_attribute("aria-invalid", "true")

    privacy = page.locator("#settings-privacy")
    privacy.get_by_label("Keep why each answer was given (decision trace)").uncheck()
    privacy.get_by_label("Keep the query log for (days)").fill("3")
    privacy.get_by_role("button", name="Save privacy").click()
    expect(privacy.locator(".saved")).to_contain_text("Saved and applied")
    config = api.get("/api/config").json()
    assert config["server"]["decision_trace"] is False and config["storage"]["query_log_retention_days"] == 3

    page.get_by_role("button", name="Empty the cache now").click()
    expect(page.locator("#cache-purge-result")).to_contain_text(re.compile(r"Cache emptied: \d+ answers removed"))
    admin.assert_clean(BAD_REQUEST)


# ---- users, password, tokens -------------------------------------------------------------------

def test_users_a_viewer_made_on_the_page_sees_no_admin_control_and_changes_its_password(admin, browser, srv, api):
    page = admin.page
    open_screen(admin, "users")
    form = page.locator("#user-form")
    form.get_by_label("User name").fill(VIEWER)
    form.get_by_label("Password").fill(VIEWER_PW)
    form.get_by_label("Role").select_option("viewer")
    form.get_by_role("button", name="Add account").click()
    expect(page.locator(f'#user-list li[data-user="{VIEWER}"]')).to_be_visible()
    users = {u["username"]: u for u in api.get("/api/users").json()["users"]}
    assert users[VIEWER]["role"] == "viewer"
    check_both_sizes(admin, srv, "users-admin")

    context = browser.new_context(viewport=PHONE)
    try:
        v = Watched(context)
        sign_in(v, srv, VIEWER, VIEWER_PW)
        expect(v.page.locator("#who-name")).to_have_text(f"{VIEWER} (read-only)")
        for name in ("dashboard", *SCREENS):
            open_screen(v, name)
            screen = v.page.locator("#screen")
            expect(screen.locator(".loading")).to_have_count(0)
            # No control that changes anything but the viewer's own account.
            assert screen.locator("button.write:not([disabled])").count() == 0
            if name == "settings":
                expect(screen.locator("#settings-cache dl")).to_be_visible()
                assert screen.locator("form, button, select, textarea, input").count() == 0
            if name == "backup":
                expect(screen.locator("#backup-viewer")).to_be_visible()
                assert screen.locator("a[href^='/api/backup'], input, button").count() == 0
            if name == "users":
                expect(screen.locator("#password-form")).to_be_visible()
                assert screen.locator("#users, #user-form, #user-list, #token-form").count() == 0
            if name == "system":
                expect(screen.locator("#system-version")).not_to_be_empty()
                assert screen.locator("button").count() == 0
            if name in SCREENS:
                check_screen(v, srv, f"{name}-viewer")
        # The API refuses the viewer anyway.
        refused = v.page.evaluate("""async () => (await fetch('/api/config/cache', {method: 'PUT',
            headers: {'Content-Type': 'application/json',
                      'X-CSRF-Token': document.cookie.match(/burrow_csrf=([^;]+)/)[1]},
            body: JSON.stringify({enabled: false})})).status""")
        assert refused == 403

        # The viewer changes its own password: signed out, the old one no longer works.
        open_screen(v, "users")
        pw = v.page.locator("#password-form")
        pw.get_by_label("Current password").fill(VIEWER_PW)
        pw.get_by_label("New password").fill(VIEWER_NEW_PW)
        pw.get_by_role("button", name="Change password").click()
        expect(v.page.locator("#login")).to_be_visible()
        expect(v.page.locator("#notice")).to_contain_text("Password changed")
        assert srv.http("POST", "/api/auth/login", {"username": VIEWER, "password": VIEWER_PW})[0] == 401
        sign_in(v, srv, VIEWER, VIEWER_NEW_PW)
        expect(v.page.locator("#who-name")).to_have_text(f"{VIEWER} (read-only)")
        v.assert_clean(UNAUTHORIZED, "status of 403")
    finally:
        context.close()


def test_a_token_made_on_the_page_works_as_bearer_and_is_shown_once(admin, srv):
    page = admin.page
    open_screen(admin, "users")
    form = page.locator("#token-form")
    form.get_by_label("Token name").fill("grafana")
    form.get_by_label("What it may do").select_option("read")
    form.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-secret")
    expect(secret).to_have_text(re.compile(r"^brw_\S+$"))
    token = secret.text_content()
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    status, me = srv.http("GET", "/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and me["via"] == "token" and me["scope"] == "read"
    expect(page.locator("#token-list")).to_contain_text("grafana")
    check_screen(admin, srv, "users-token-once")
    # Shown once: open the screen again and the secret is nowhere on the page.
    open_screen(admin, "dashboard")
    open_screen(admin, "users")
    expect(page.locator("#token-list")).to_contain_text("grafana")
    assert token not in page.content()
    admin.assert_clean()


def test_role_change_delete_and_revoke_through_the_page(admin, srv, api):
    page = admin.page
    assert api.post("/api/users", json={"username": "otto", "password": "Third-passphrase-2024"}).status_code == 201
    made = api.post("/api/tokens", json={"name": "to-revoke", "scope": "read"}).json()
    open_screen(admin, "users")
    row = page.locator('#user-list li[data-user="otto"]')
    row.get_by_label("Role").select_option("admin")
    expect(page.locator("#notice")).to_contain_text("otto is now an admin")
    assert {u["username"]: u["role"] for u in api.get("/api/users").json()["users"]}["otto"] == "admin"

    page.locator('#user-list li[data-user="otto"]').get_by_role("button", name="Delete otto").click()
    page.get_by_role("button", name="Cancel").click()  # asked on the page; nothing happens
    assert "otto" in {u["username"] for u in api.get("/api/users").json()["users"]}
    page.locator('#user-list li[data-user="otto"]').get_by_role("button", name="Delete otto").click()
    page.get_by_role("button", name="Delete it").click()
    expect(page.locator('#user-list li[data-user="otto"]')).to_have_count(0)
    assert "otto" not in {u["username"] for u in api.get("/api/users").json()["users"]}

    # The token list is the signed-in admin's own; the API token above belongs to the same admin.
    bearer = {"Authorization": f"Bearer {made['token']}"}
    assert srv.http("GET", "/api/auth/me", headers=bearer)[0] == 200
    page.reload()
    expect(page.locator(f'#token-list li[data-token="{made["id"]}"]')).to_be_visible()
    page.get_by_role("button", name="Revoke token to-revoke").click()
    page.get_by_role("button", name="Revoke it").click()
    expect(page.locator(f'#token-list li[data-token="{made["id"]}"]')).to_have_count(0)
    assert srv.http("GET", "/api/auth/me", headers=bearer)[0] == 401  # stops working at once
    admin.assert_clean()


def test_two_factor_enrol_on_the_page_then_disable(browser, srv, api):
    pyotp = pytest.importorskip("pyotp")
    name, password = "tess", "Second-passphrase-2024"
    assert api.post("/api/users", json={"username": name, "password": password, "role": "viewer"}).status_code == 201
    context = browser.new_context(viewport=PHONE)
    try:
        w = Watched(context)
        sign_in(w, srv, name, password)
        page = w.page
        open_screen(w, "users")
        page.get_by_role("button", name="Set up two-factor sign-in").click()
        secret = page.locator("#twofa-secret")
        expect(secret).to_have_text(re.compile(r"^[A-Z2-7]{16,}$"))
        # A wrong code is marked at its field and turns nothing on.
        page.get_by_label("Code from the app").fill("000000")
        page.get_by_role("button", name="Turn on two-factor sign-in").click()
        expect(page.locator("#twofa-code")).to_have_attribute("aria-invalid", "true")
        assert srv.http("POST", "/api/auth/login", {"username": name, "password": password})[0] == 200
        # The right code: recovery codes shown once, and signing in now asks for a code.
        page.get_by_label("Code from the app").fill(pyotp.TOTP(secret.text_content()).now())
        page.get_by_role("button", name="Turn on two-factor sign-in").click()
        codes = page.locator("#recovery-codes")
        expect(codes).to_have_text(re.compile(r"^(\S+\n){9}\S+$"))
        check_screen(w, srv, "users-2fa-recovery-codes", BAD_REQUEST)
        status, body = srv.http("POST", "/api/auth/login", {"username": name, "password": password})
        assert status == 401 and body["error"] == "totp_required"
        page.get_by_role("button", name="I have kept them").click()
        expect(page.locator("#twofa-state")).to_contain_text("On")
        # Turned off with the password: signing in takes the password alone again.
        page.get_by_label("Password or current code").fill(password)
        page.get_by_role("button", name="Turn off two-factor sign-in").click()
        expect(page.locator("#twofa-state")).to_contain_text("Off")
        assert srv.http("POST", "/api/auth/login", {"username": name, "password": password})[0] == 200
        w.assert_clean(BAD_REQUEST)
    finally:
        context.close()


# ---- backup and restore ------------------------------------------------------------------------

def test_backup_download_change_restore_with_dry_run_diff(admin, srv, api, tmp_path):
    page = admin.page
    open_screen(admin, "backup")
    with page.expect_download() as got:
        page.get_by_role("link", name="Download a backup").click()
    download = got.value
    assert re.fullmatch(r"burrow-backup-\d{8}T\d{6}Z\.tar\.gz", download.suggested_filename)
    archive = tmp_path / download.suggested_filename
    download.save_as(archive)
    check_both_sizes(admin, srv, "backup-empty")

    old_ttl = api.get("/api/config").json()["cache"]["max_ttl"]
    assert api.put("/api/config/cache", json={"max_ttl": 777}).status_code == 200

    page.get_by_label("Backup file").set_input_files(str(archive))
    page.get_by_role("button", name="Check this backup").click()
    diff = page.locator("#restore-diff")
    expect(diff).to_contain_text("Restoring this backup would change")
    expect(diff.locator('li[data-table="settings"]')).to_contain_text("config.overrides")
    expect(diff.locator('li[data-table="settings"]')).to_contain_text("1 changed")
    assert api.get("/api/config").json()["cache"]["max_ttl"] == 777  # the dry run changed nothing
    check_screen(admin, srv, "backup-dry-run")

    page.get_by_role("button", name="Restore now").click()
    expect(page.locator("#notice")).to_contain_text("Backup restored")
    assert api.get("/api/config").json()["cache"]["max_ttl"] == old_ttl
    admin.assert_clean()


def test_a_corrupt_backup_shows_an_error_and_changes_nothing(admin, srv, api):
    page = admin.page
    open_screen(admin, "backup")
    before = api.get("/api/config").json()
    lists_before = api.get("/api/lists").json()
    page.get_by_label("Backup file").set_input_files(
        files=[{"name": "broken.tar.gz", "mimeType": "application/gzip", "buffer": b"\x1f\x8bnot a backup at all"}])
    page.get_by_role("button", name="Check this backup").click()
    expect(page.locator("#restore-error")).to_contain_text("Nothing was restored")
    expect(page.locator("#restore-file")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error")).to_be_visible()
    assert page.locator("#restore-apply").count() == 0  # nothing to confirm
    assert api.get("/api/config").json() == before and api.get("/api/lists").json() == lists_before
    check_screen(admin, srv, "backup-error", BAD_REQUEST)


# ---- audit ------------------------------------------------------------------------------------

def test_audit_lists_the_actions_and_shows_names_as_text(admin, srv, api):
    page = admin.page
    # An actor-chosen name with markup: a token name is free text (the event names it).
    assert api.post("/api/tokens", json={"name": XSS, "scope": "read"}).status_code == 201
    open_screen(admin, "audit")
    events = page.locator("#audit-list")
    expect(events).to_contain_text("token.created")
    expect(events).to_contain_text("user.created")
    expect(events).to_contain_text("config.changed")
    page.locator("#audit-list details").first.locator("summary").click()
    expect(events).to_contain_text(XSS)
    assert events.locator("img").count() == 0
    check_both_sizes(admin, srv, "audit-filled")

    page.get_by_label("Type").fill("config")
    page.get_by_role("button", name="Show").click()
    # Wait for the filtered page itself (the summary said "of" before the click too: reading the
    # rows at once raced the answer on a loaded machine).
    heads = page.locator("#audit-list .event-head strong")
    expect(heads.filter(has_not_text=re.compile(r"^config\."))).to_have_count(0)
    expect(heads.first).to_have_text(re.compile(r"^config\."))

    page.get_by_label("Type").fill("no.such.event")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#audit-summary")).to_have_text("No events match.")
    check_screen(admin, srv, "audit-empty")

    page.get_by_label("Type").fill("")
    page.get_by_label("Since").fill("yesterday-ish")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#audit-since")).to_have_attribute("aria-invalid", "true")
    check_screen(admin, srv, "audit-error", BAD_REQUEST)
    assert admin.dialogs == []


# ---- system -----------------------------------------------------------------------------------

def test_system_shows_what_the_api_reports(admin, srv, api):
    system = api.get("/api/system").json()
    open_screen(admin, "system")
    page = admin.page
    expect(page.locator("#system-version")).to_have_text(system["version"])
    expect(page.locator("#system-board")).to_have_text(system["board"])
    expect(page.locator("#system-state")).to_contain_text(system["status"]["state"].replace("_", " "))
    for address in system["listen_addresses"]["dns"]:
        expect(page.locator("#system-network")).to_contain_text(address)
    # This test's Burrow listens on loopback only: no box address is offered for the router.
    assert all(a.startswith("127.") for a in system["listen_addresses"]["dns"])
    expect(page.locator("#system-no-address")).to_be_visible()
    assert page.locator("#system-addresses").count() == 0
    check_both_sizes(admin, srv, "system")


# ---- layout: narrow screens, large text, tap targets ---------------------------------------------

# The nav is one row a thumb scrolls (wave15), so it is left out; everything in the screen must fit.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > width) out.push("page " + document.documentElement.scrollWidth);
  for (const el of document.querySelectorAll("header, header *, #screen, #screen *")) {
    const r = el.getBoundingClientRect();
    if (r.width && (r.right > width + 0.5 || r.left < -0.5)) {
      out.push((el.id || el.tagName) + " " + r.left + ".." + r.right);
    }
  }
  return out;
}"""
TAP_TARGETS = """() => {
  const out = [];
  for (const el of document.querySelectorAll("#screen button, #screen input, #screen select, #screen textarea, "
                                             + "#screen a.button-link, #screen summary")) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    if (r.height < 44 || r.width < 44) {
      out.push((el.id || el.textContent.trim() || el.tagName) + " " + r.width + "x" + r.height);
    }
  }
  return out;
}"""


@pytest.mark.parametrize("width, text_size", [(320, "100%"), (390, "200%")])
def test_admin_screens_fit_narrow_screens_and_large_text_with_44_px_targets(admin, width, text_size):
    page = admin.page
    page.set_viewport_size({"width": width, "height": 844})
    try:
        for name in SCREENS:
            open_screen(admin, name)
            expect(page.locator("#screen .loading")).to_have_count(0)
            page.evaluate("(size) => { document.documentElement.style.fontSize = size; }", text_size)
            assert page.evaluate(OVERFLOW) == [], name
            if text_size == "100%":
                assert page.evaluate(TAP_TARGETS) == [], name
    finally:
        page.evaluate("() => { document.documentElement.style.fontSize = ''; }")
        page.set_viewport_size(PHONE)
    admin.assert_clean()
