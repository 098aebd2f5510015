"""The backup screen's "Import from Pi-hole or AdGuard Home" card in real Chromium against the
real ``burrow`` process, with an AdGuardHome.yaml the test writes: choose the file, see the dry
run's plan (created / changed / not imported, with why) while nothing changes, import, see the
result and the API's state; the same file again has nothing to do; a broken file shows the
error with its key path and changes nothing. Axe, narrow screens, 44 px targets and dark mode as
every screen test checks them.
"""

from __future__ import annotations

import pytest

from tests.browser.test_screen_admin_browser import OVERFLOW, TAP_TARGETS
from tests.support.api_client import ADMIN_PASSWORD
from tests.support.burrow_proc import BurrowProcess
from tests.support.page import DESKTOP, PHONE, Watched, base_url, check_screen, sign_in
from tests.support.upstream_client import TestUpstream

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

BAD_REQUEST = "the server responded with a status of 400"
XSS = "<img src=x onerror=alert(1)>"
ADGUARD_YAML = f"""\
dns:
  upstream_dns:
    - quic://dns.adguard-dns.com
  ratelimit: 25
filtering:
  blocking_mode: nxdomain
  rewrites:
    - domain: nas.lan
      answer: 192.168.1.5
      enabled: true
  blocked_services:
    ids: [tiktok]
filters: []
user_rules:
  - '||ads.example^'
  - '@@||ok.ads.example^'
  - '||kids.example^$client=tablet'
clients:
  persistent:
    - name: '{XSS}'
      ids: [192.168.1.20, aa:bb:cc:dd:ee:ff]
      tags: [device_tablet]
schema_version: 34
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("import-card"), [up.address]) as b:
        yield b


def open_backup(w: Watched) -> None:
    page = w.page
    if page.url.endswith("#/backup"):
        page.reload()
    else:
        page.goto(f"{page.url.split('#')[0]}#/backup")
    expect(page.get_by_role("heading", name="Import from Pi-hole or AdGuard Home")).to_be_visible()


def snapshot(api) -> dict:
    return {path: api.get(path).json() for path in (
        "/api/config", "/api/denylist", "/api/whitelist", "/api/groups", "/api/clients", "/api/localrecords")}


def test_import_an_adguard_file_with_the_plan_first(admin, srv, api, tmp_path):
    page = admin.page
    path = tmp_path / "AdGuardHome.yaml"
    path.write_text(ADGUARD_YAML)
    before = snapshot(api)
    open_backup(admin)
    card = page.locator("#import")
    card.get_by_label("File to import").set_input_files(str(path))
    expect(card.get_by_label("The file is from")).to_have_value("adguard")  # from the file's name
    card.get_by_role("button", name="Check this file").click()

    plan = page.locator("#import-plan")
    expect(plan).to_contain_text("Importing this file would:")
    created = plan.locator('ul[data-action="create"]')
    expect(created).to_contain_text("ads.example")
    expect(created.locator('li[data-area="record"]')).to_contain_text("nas.lan")
    expect(plan.locator('ul[data-action="change"]')).to_contain_text("filtering.blocking_mode")
    skipped = plan.locator('ul[data-action="skipped"]')
    expect(skipped).to_contain_text("tiktok")
    expect(skipped).to_contain_text("quic://dns.adguard-dns.com")
    expect(skipped.locator('li[data-area="client"]')).to_contain_text("aa:bb:cc:dd:ee:ff")
    expect(skipped).to_contain_text("$client=tablet")
    expect(page.locator("#import-counts")).to_contain_text("to create")
    assert snapshot(api) == before  # the dry run changed nothing
    check_screen(admin, srv, "backup-import-plan-phone")
    page.set_viewport_size(DESKTOP)
    try:
        check_screen(admin, srv, "backup-import-plan-desktop")
    finally:
        page.set_viewport_size(PHONE)
    page.set_viewport_size({"width": 320, "height": 844})
    try:
        assert page.evaluate(OVERFLOW) == []
        assert page.evaluate(TAP_TARGETS) == []
    finally:
        page.set_viewport_size(PHONE)

    card.get_by_role("button", name="Import now").click()
    expect(page.locator("#notice")).to_contain_text("Imported from AdGuard Home")
    expect(plan).to_contain_text("Imported. What was done:")
    assert "ads.example" in str(api.get("/api/denylist").json())
    assert "ok.ads.example" in str(api.get("/api/whitelist").json())
    assert api.get("/api/config").json()["filtering"]["blocking_mode"] == "nxdomain"
    assert "nas.lan" in str(api.get("/api/localrecords").json())
    assert page.locator("#import-apply").count() == 0
    after = snapshot(api)

    # The same file again: nothing to do, nothing to confirm.
    card.get_by_role("button", name="Check this file").click()
    expect(plan).to_contain_text("Nothing would change")
    expect(plan.locator("details")).to_contain_text("Already in Burrow")
    assert page.locator("#import-apply").count() == 0
    assert snapshot(api) == after
    admin.assert_clean()


def test_cancel_imports_nothing(admin, srv, api, tmp_path):
    page = admin.page
    path = tmp_path / "other.yaml"
    path.write_text("schema_version: 34\nuser_rules: ['||cancelled.example^']\n")
    before = snapshot(api)
    open_backup(admin)
    page.get_by_label("File to import").set_input_files(str(path))
    page.get_by_role("button", name="Check this file").click()
    expect(page.locator("#import-plan")).to_contain_text("cancelled.example")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#notice")).to_contain_text("Nothing was imported")
    expect(page.locator("#import-plan")).to_have_count(0)
    assert snapshot(api) == before
    admin.assert_clean()


def test_a_broken_file_shows_the_error_in_words_and_changes_nothing(admin, srv, api):
    page = admin.page
    before = snapshot(api)
    open_backup(admin)
    page.get_by_label("File to import").set_input_files(files=[{
        "name": "AdGuardHome.yaml", "mimeType": "application/yaml",
        "buffer": b"schema_version: 34\nclients:\n  persistent:\n    - name: x\n      ids: 10.0.0.1\n"}])
    page.get_by_role("button", name="Check this file").click()
    error = page.locator("#import-error")
    expect(error).to_contain_text("Nothing was imported")
    expect(error).to_contain_text("clients.persistent[0].ids")
    expect(page.locator("#import-file")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error")).to_be_visible()
    assert page.locator("#import-apply").count() == 0
    assert snapshot(api) == before
    check_screen(admin, srv, "backup-import-error", BAD_REQUEST)

    # No file chosen: said on the page, nothing sent.
    open_backup(admin)
    page.get_by_role("button", name="Check this file").click()
    expect(page.locator("#import-file-error")).to_contain_text("Choose a file first")
    admin.assert_clean()


def test_the_plan_in_dark_mode_passes_axe(browser, srv, api, tmp_path):
    context = browser.new_context(viewport=PHONE, color_scheme="dark")
    try:
        w = Watched(context)
        sign_in(w, srv, "admin", ADMIN_PASSWORD)
        w.page.goto(base_url(srv) + "/#/backup")
        expect(w.page.get_by_role("heading", name="Import from Pi-hole or AdGuard Home")).to_be_visible()
        path = tmp_path / "AdGuardHome.yaml"
        path.write_text("schema_version: 34\nuser_rules: ['||dark.example^', '||x.example^$important']\n")
        w.page.get_by_label("File to import").set_input_files(str(path))
        w.page.get_by_role("button", name="Check this file").click()
        expect(w.page.locator("#import-plan")).to_contain_text("dark.example")
        assert w.page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        check_screen(w, srv, "backup-import-dark")
    finally:
        context.close()
