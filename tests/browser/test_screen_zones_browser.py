"""The local records (#/records), zones (#/zones) and conditional forwarding (#/forwarding)
screens in real headless Chromium against the real ``burrow`` process (issue 15).

Every change is made through the page and checked three ways: on the page, in the API's own
answer (httpx with a bearer token), and in what Burrow's DNS port answers (dnspython). The
conditional forwarder points at the test upstream (tests/support/upstream.py), Burrow's usual
upstream is a closed port: only the rule can answer. Waits are Playwright ``expect`` calls or
deadline loops; nothing asserts how long anything took.
"""

from __future__ import annotations

import re

import dns.flags
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

from tests.browser.test_admin_page_browser import BAD_REQUEST, VIEWER_PW
from tests.browser.test_admin_page_defects_browser import NO_CODES, TAP_TARGETS
from tests.support.api_client import ADMIN_PASSWORD
from tests.support.burrow_proc import BurrowProcess
from tests.support.page import DESKTOP, PHONE, Watched, base_url, check_screen, sign_in
from tests.support.timing import wait_for
from tests.support.upstream import address_for
from tests.support.upstream_client import TestUpstream

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

WAIT_S = 30.0
GOOD_ZONE = """$ORIGIN lab.test.
$TTL 300
www     IN A     192.0.2.10
        IN AAAA  2001:db8::10
mail    IN A     192.0.2.25
@       IN MX    10 mail
info    IN TXT   "hello from lab"
"""
BAD_ZONE = """$TTL 300
www     IN A     192.0.2.10
broken  IN A     999.0.2.11
mail    IN A     192.0.2.25
"""
NOT_FOUND = "the server responded with a status of 404"
# The page does not scroll sideways and nothing on the screen sticks out (the nav is one row a
# thumb scrolls, on purpose: it is not looked at here).
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > width) out.push("page " + document.documentElement.scrollWidth);
  for (const el of document.querySelectorAll("#screen, #screen *")) {
    const r = el.getBoundingClientRect();
    if (r.width && (r.right > width + 0.5 || r.left < -0.5)) {
      out.push((el.id || el.tagName) + " " + r.left + ".." + r.right);
    }
  }
  return out;
}"""


def wait_until(predicate, what: str, timeout: float = WAIT_S):
    return wait_for(predicate, timeout=timeout, what=what, interval=0.1)  # tests/support/timing.py


def addresses(srv: BurrowProcess, name: str, rdtype: str = "A") -> list[str]:
    answer = srv.query(name, rdtype)
    return sorted(rd.to_text() for rrset in answer.answer if rrset.rdtype == dns.rdatatype.from_text(rdtype)
                  for rd in rrset)


# ---- fixtures: one upstream, one burrow, one signed-in admin page per module --------------------

@pytest.fixture(scope="module")
def upstream():
    with TestUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with BurrowProcess(tmp_path_factory.mktemp("zones-screens")) as b:  # upstream: a closed port
        yield b


def open_screen(w: Watched, srv: BurrowProcess, route: str) -> None:
    w.page.set_viewport_size(PHONE)
    w.page.goto(base_url(srv) + "/#/" + route)
    expect(w.page.locator(f'[data-screen="{route.split("/")[0]}"]')).to_be_visible()


def local_records(api) -> list[dict]:
    return api.get("/api/dns-records", params={"zone": "local"}).json()["records"]


# ---- local records --------------------------------------------------------------------------------

def test_a_local_record_is_added_changed_and_deleted_through_the_page(admin, srv, api):
    page = admin.page
    open_screen(admin, srv, "records")
    expect(page.locator("#records-state")).to_contain_text("No local records yet")
    check_screen(admin, srv, "records-empty")

    page.get_by_label("Name", exact=True).fill("nas.home.lan")
    page.get_by_label("Type").select_option("A")
    page.get_by_label("IPv4 address").fill("192.168.1.20")
    page.get_by_role("button", name="Add record").click()
    item = page.locator('#records-list li[data-name="nas.home.lan"]')
    expect(item).to_contain_text("A → 192.168.1.20")
    expect(page.locator("#error")).to_be_hidden()
    assert [(r["name"], r["type"], r["value"]) for r in local_records(api)] == [("nas.home.lan", "A", "192.168.1.20")]
    wait_until(lambda: addresses(srv, "nas.home.lan") == ["192.168.1.20"], "the new record in DNS")

    # A second kind: the label follows the type (CNAME asks for a target name).
    page.get_by_label("Name", exact=True).fill("files.home.lan")
    page.get_by_label("Type").select_option("CNAME")
    page.get_by_label("Target name").fill("nas.home.lan")
    page.get_by_role("button", name="Add record").click()
    expect(page.locator('#records-list li[data-name="files.home.lan"]')).to_contain_text("CNAME → nas.home.lan.")
    answer = srv.query("files.home.lan", "A")
    assert [rrset.to_text().split()[-1] for rrset in answer.answer] == ["nas.home.lan.", "192.168.1.20"]
    # A wildcard: every name below iot.home.lan, never iot.home.lan itself.
    page.get_by_label("Name", exact=True).fill("*.iot.home.lan")
    page.get_by_label("Type").select_option("A")
    page.get_by_label("IPv4 address").fill("192.168.1.50")
    page.get_by_role("button", name="Add record").click()
    expect(page.locator('#records-list li[data-name="*.iot.home.lan"]')).to_contain_text("A → 192.168.1.50")
    wait_until(lambda: addresses(srv, "cam.iot.home.lan") == ["192.168.1.50"], "the wildcard in DNS")
    assert addresses(srv, "iot.home.lan") == []
    check_screen(admin, srv, "records-filled")
    page.get_by_role("button", name="Delete *.iot.home.lan A").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(page.locator('#records-list li[data-name="*.iot.home.lan"]')).to_have_count(0)

    # Edit: the form is filled from the row, the change is saved with PUT (the id stays).
    record_id = next(r["id"] for r in local_records(api) if r["name"] == "nas.home.lan")
    page.get_by_role("button", name="Edit nas.home.lan A").click()
    expect(page.get_by_label("IPv4 address")).to_have_value("192.168.1.20")
    page.get_by_label("IPv4 address").fill("192.168.1.21")
    page.get_by_role("button", name="Save changes").click()
    expect(item).to_contain_text("A → 192.168.1.21")
    assert api.get(f"/api/dns-records/{record_id}").json()["value"] == "192.168.1.21"
    assert len(local_records(api)) == 2
    wait_until(lambda: addresses(srv, "nas.home.lan") == ["192.168.1.21"], "the changed record in DNS")

    # Delete asks in the page first; "Keep" keeps it.
    page.get_by_role("button", name="Delete files.home.lan CNAME").click()
    page.get_by_role("button", name="Keep").click()
    assert len(local_records(api)) == 2
    page.get_by_role("button", name="Delete files.home.lan CNAME").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(page.locator('#records-list li[data-name="files.home.lan"]')).to_have_count(0)
    assert [r["name"] for r in local_records(api)] == ["nas.home.lan"]
    wait_until(lambda: "nas.home.lan." not in srv.query("files.home.lan", "A").to_text(), "the CNAME gone from DNS")
    page.set_viewport_size(DESKTOP)
    check_screen(admin, srv, "records-filled-desktop")
    admin.assert_clean()


def test_every_bad_field_of_a_local_record_is_marked_and_nothing_changes(admin, srv, api):
    page = admin.page
    open_screen(admin, srv, "records")
    expect(page.locator("#records-list li")).not_to_have_count(0)
    before = local_records(api)

    # An IPv4 address in an AAAA record: the address field is marked, in words.
    page.get_by_label("Name", exact=True).fill("printer.home.lan")
    page.get_by_label("Type").select_option("AAAA")
    page.get_by_label("IPv6 address").fill("192.168.1.30")
    page.get_by_role("button", name="Add record").click()
    expect(page.locator("#record-value")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#record-value-error")).to_contain_text("not an IPv6 address")
    expect(page.locator("#error")).to_contain_text("IPv6 address:")
    expect(page.locator("#error")).not_to_have_text(NO_CODES)
    expect(page.locator("#record-name")).not_to_have_attribute("aria-invalid", "true")

    # A bad name and a bad TTL at once: both are marked.
    page.get_by_label("Name", exact=True).fill("bad name!")
    page.get_by_label("IPv6 address").fill("fd00::30")
    page.get_by_label("TTL (seconds)").fill("soon")
    page.get_by_role("button", name="Add record").click()
    expect(page.locator("#record-name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#record-ttl")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#record-name-error")).not_to_be_empty()
    expect(page.locator("#error")).to_contain_text("Name:")
    expect(page.locator("#error")).to_contain_text("TTL (seconds):")
    expect(page.locator("#record-value")).not_to_have_attribute("aria-invalid", "true")
    assert local_records(api) == before
    check_screen(admin, srv, "records-error", BAD_REQUEST)
    admin.assert_clean(BAD_REQUEST)


# ---- zones ----------------------------------------------------------------------------------------

def api_zone_records(api, zone: str) -> set[tuple[str, str, str]]:
    """(owner, type, rdata) of every record the API lists, in dnspython's canonical text."""
    origin = dns.name.from_text(zone)
    out = set()
    for r in api.get(f"/api/zones/{zone}").json()["records"]:
        rd = dns.rdata.from_text(dns.rdataclass.IN, r["type"], r["value"], origin=origin, relativize=False)
        out.add((r["name"].rstrip(".") + ".", r["type"], rd.to_text()))
    return out


def test_a_zone_is_created_imported_and_exported_through_the_page(admin, srv, api, tmp_path):
    page = admin.page
    open_screen(admin, srv, "zones")
    expect(page.locator("#zones-state")).to_contain_text("No zones yet")
    check_screen(admin, srv, "zones-empty")

    page.get_by_label("Zone name").fill("lab.test")
    page.get_by_role("button", name="Create zone").click()
    expect(page).to_have_url(re.compile(r"#/zones/lab\.test$"))
    expect(page.locator("#zone-title")).to_have_text("lab.test")
    expect(page.locator('#zone-records tr[data-type="SOA"]')).to_have_count(1)
    assert api.get("/api/zones/lab.test").json()["type"] == "master"
    before = api_zone_records(api, "lab.test")
    assert {t for _, t, _ in before} == {"SOA", "NS"}

    # A file with one bad line, through the file picker: the error names the line, the line is
    # selected in the box, and nothing is imported.
    bad = tmp_path / "lab.test.zone"
    bad.write_text(BAD_ZONE)
    page.get_by_label("Zone file to read").set_input_files(str(bad))
    expect(page.get_by_label("Zone file", exact=True)).to_have_value(BAD_ZONE)
    page.get_by_role("button", name="Import and replace records").click()
    expect(page.locator("#error")).to_contain_text("line 3")
    expect(page.locator("#error")).to_contain_text("Nothing was imported")
    expect(page.locator("#error")).not_to_have_text(NO_CODES)
    expect(page.locator("#zone-text")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#zone-text-error")).to_contain_text("999.0.2.11")
    selected = page.evaluate("() => { const t = document.getElementById('zone-text');"
                             " return t.value.slice(t.selectionStart, t.selectionEnd); }")
    assert selected == "broken  IN A     999.0.2.11"
    assert api_zone_records(api, "lab.test") == before
    assert srv.query("www.lab.test", "A").rcode() == dns.rcode.NXDOMAIN
    check_screen(admin, srv, "zone-import-error", BAD_REQUEST)

    # A good file, pasted: every record is there, and DNS answers with authority.
    page.get_by_label("Zone file", exact=True).fill(GOOD_ZONE)
    page.get_by_role("button", name="Import and replace records").click()
    expect(page.locator("#notice")).to_contain_text("Imported")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator('#zone-records tr[data-type="MX"]')).to_contain_text("10 mail.lab.test.")
    imported = api_zone_records(api, "lab.test")
    assert ("www.lab.test.", "A", "192.0.2.10") in imported
    assert ("info.lab.test.", "TXT", '"hello from lab"') in imported
    answer = wait_until(lambda: (a := srv.query("www.lab.test", "A")).answer and a, "www.lab.test in DNS")
    assert [rd.to_text() for rd in answer.answer[0]] == ["192.0.2.10"]
    assert answer.flags & dns.flags.AA

    # A record added through the form (type-aware: MX has its own priority field).
    page.get_by_label("Name", exact=True).fill("backup")
    page.get_by_label("Type").select_option("MX")
    page.get_by_label("Priority").fill("20")
    page.get_by_label("Mail server").fill("mail")
    page.get_by_role("button", name="Add record").click()
    expect(page.locator('#zone-records tr[data-type="MX"]', has_text="20 mail.lab.test.")).to_have_count(1)
    assert ("backup.lab.test.", "MX", "20 mail.lab.test.") in api_zone_records(api, "lab.test")
    wait_until(lambda: addresses(srv, "backup.lab.test", "MX") == ["20 mail.lab.test."], "the MX in DNS")
    # ... and a bad one: every bad field is marked, nothing is added.
    with_backup = api_zone_records(api, "lab.test")
    page.get_by_label("Name", exact=True).fill("bad name!")
    page.get_by_label("Type").select_option("AAAA")
    page.get_by_label("IPv6 address").fill("192.0.2.99")
    page.get_by_label("TTL").fill("soon")
    page.get_by_role("button", name="Add record").click()
    expect(page.locator("#zrec-name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#zrec-ttl")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#zrec-value-error")).to_be_empty()  # (the name and TTL fail first)
    assert api_zone_records(api, "lab.test") == with_backup
    check_screen(admin, srv, "zone-filled", BAD_REQUEST)

    # Export: the endpoint takes the cookie session (no bearer token here) and names the file.
    res = page.request.get(base_url(srv) + "/api/zones/lab.test/export")
    assert res.status == 200 and res.headers["content-disposition"] == 'attachment; filename="lab.test.zone"'
    # ... a download through the page's link has the same records as the API's.
    with page.expect_download() as info:
        page.locator("#zone-export").click()
    download = info.value
    assert download.suggested_filename == "lab.test.zone"
    text = open(download.path(), encoding="utf-8").read()
    zone = dns.zone.from_text(text, origin="lab.test.", relativize=False, check_origin=True)
    exported = {(name.to_text(), dns.rdatatype.to_text(rds.rdtype), rd.to_text())
                for name, rds in zone.iterate_rdatasets() for rd in rds}
    assert exported == api_zone_records(api, "lab.test")

    page.set_viewport_size(DESKTOP)
    check_screen(admin, srv, "zone-filled-desktop")
    open_screen(admin, srv, "zones")
    expect(page.locator('#zones-list li[data-name="lab.test"]')).to_contain_text("Master")
    check_screen(admin, srv, "zones-filled")
    admin.assert_clean(BAD_REQUEST)


def test_a_zone_record_is_changed_and_deleted_and_a_zone_deleted(admin, srv, api):
    page = admin.page
    assert api.post("/api/zones", json={"name": "gone.test"}).status_code == 201
    assert api.post("/api/dns-records", json={"zone": "gone.test", "name": "host", "type": "A",
                                              "value": "192.0.2.50"}).status_code == 201
    open_screen(admin, srv, "zones/gone.test")
    row = page.locator('#zone-records tr[data-type="A"]')
    expect(row).to_contain_text("192.0.2.50")
    page.get_by_role("button", name="Edit host.gone.test A").click()
    expect(page.get_by_label("Name", exact=True)).to_have_value("host")
    page.get_by_label("IPv4 address").fill("192.0.2.51")
    page.get_by_role("button", name="Save changes").click()
    expect(row).to_contain_text("192.0.2.51")
    wait_until(lambda: addresses(srv, "host.gone.test") == ["192.0.2.51"], "the changed record in DNS")
    page.get_by_role("button", name="Delete host.gone.test A").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(row).to_have_count(0)
    assert srv.query("host.gone.test", "A").rcode() == dns.rcode.NXDOMAIN

    page.get_by_role("button", name="Delete zone").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(page).to_have_url(re.compile(r"#/zones$"))
    expect(page.locator('#zones-list li[data-name="lab.test"]')).to_be_visible()
    expect(page.locator('#zones-list li[data-name="gone.test"]')).to_have_count(0)
    assert api.get("/api/zones/gone.test").status_code == 404
    admin.assert_clean()


def test_a_slave_zone_is_created_and_made_a_master_through_the_page(admin, srv, api):
    page = admin.page
    open_screen(admin, srv, "zones")
    page.get_by_label("Zone name").fill("copy.test")
    page.get_by_label("Kind").select_option("slave")
    page.get_by_label("Primary servers").fill("127.0.0.1:9, nope")
    page.get_by_role("button", name="Create zone").click()
    expect(page.locator("#zone-primaries")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#zone-primaries-error")).to_contain_text("item 2 (nope)")
    expect(page.locator("#error")).to_contain_text("Primary servers: item 2")
    assert api.get("/api/zones/copy.test").status_code == 404
    page.get_by_label("Primary servers").fill("127.0.0.1:9")  # nothing answers there
    page.get_by_role("button", name="Create zone").click()
    expect(page).to_have_url(re.compile(r"#/zones/copy\.test$"))
    expect(page.locator("#zone-facts")).to_contain_text("Slave")
    expect(page.locator("#zone-facts")).to_contain_text("127.0.0.1:9")
    expect(page.locator("#zone-records-state")).to_contain_text("not been copied")
    expect(page.locator("#zrec-form")).to_be_hidden()  # a copy's records come from its primaries
    expect(page.locator("#zone-export")).to_have_count(0)  # nothing to export yet
    assert api.get("/api/zones/copy.test").json()["primaries"] == ["127.0.0.1:9"]

    page.locator("#zset-type").select_option("master")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#zone-facts")).to_contain_text("Master")
    expect(page.locator("#zrec-form")).to_be_visible()
    assert api.get("/api/zones/copy.test").json()["type"] == "master"
    page.get_by_role("button", name="Delete zone").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(page).to_have_url(re.compile(r"#/zones$"))
    assert api.get("/api/zones/copy.test").status_code == 404
    admin.assert_clean(BAD_REQUEST)


# ---- conditional forwarding -----------------------------------------------------------------------

def test_a_conditional_forwarder_is_added_and_answers_for_its_domain(admin, srv, api, upstream):
    page = admin.page
    open_screen(admin, srv, "forwarding")
    expect(page.locator("#forwarding-state")).to_contain_text("No rules yet")
    expect(page.locator("#router-title")).to_have_text("Ask the router")  # the dashboard's card, reused
    check_screen(admin, srv, "forwarding-empty")

    # Every bad field is marked, list items named.
    page.get_by_label("Rule name").fill("Office")
    page.get_by_label("Domains").fill("corp.test, bad domain!")
    page.get_by_label("DNS servers to ask").fill(f"{upstream.address} not-an-ip")
    page.get_by_label("Timeout per try").fill("soon")
    page.get_by_role("button", name="Add rule").click()
    expect(page.locator("#fwd-domains")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#fwd-upstreams")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#fwd-timeout")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#fwd-upstreams-error")).to_contain_text("item 2 (not-an-ip)")
    expect(page.locator("#error")).to_contain_text("DNS servers to ask: item 2")
    expect(page.locator("#error")).not_to_have_text(NO_CODES)
    assert api.get("/api/conditionalforwarding").json()["rules"] == []
    check_screen(admin, srv, "forwarding-error", BAD_REQUEST)

    page.get_by_label("Domains").fill("corp.test")
    page.get_by_label("DNS servers to ask").fill(upstream.address)
    page.get_by_label("Timeout per try").fill("")
    page.get_by_role("button", name="Add rule").click()
    item = page.locator('#forwarding-list li[data-name="Office"]')
    expect(item).to_contain_text("Names: corp.test")
    expect(item).to_contain_text(f"Asks {upstream.address}")
    rules = api.get("/api/conditionalforwarding").json()["rules"]
    assert [(r["name"], r["domains"], r["upstreams"]) for r in rules] == [("Office", ["corp.test"], [upstream.address])]

    upstream.clear_log()
    # Burrow's usual upstream is a closed port: only the rule's server can answer this.
    wait_until(lambda: addresses(srv, "host.corp.test") == [address_for("host.corp.test")], "the forwarded answer")
    assert "host.corp.test" in [q["name"] for q in upstream.queries()]
    check_screen(admin, srv, "forwarding-filled")

    # Edit: priority; the rule keeps its name.
    page.get_by_role("button", name="Edit rule Office").click()
    page.get_by_label("Priority").fill("70")
    page.get_by_role("button", name="Save changes").click()
    expect(item).to_contain_text("priority 70")
    assert api.get("/api/conditionalforwarding/Office").json()["priority"] == 70

    # The switch for all rules.
    switch = page.locator("#forwarding-switch")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(page.locator("#forwarding-on")).to_have_text("Off")
    assert api.get("/api/conditionalforwarding/enabled").json() == {"enabled": False}
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    assert api.get("/api/conditionalforwarding/enabled").json() == {"enabled": True}

    page.set_viewport_size(DESKTOP)
    check_screen(admin, srv, "forwarding-filled-desktop")
    page.set_viewport_size(PHONE)
    page.get_by_role("button", name="Delete rule Office").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(item).to_have_count(0)
    assert api.get("/api/conditionalforwarding").json()["rules"] == []
    upstream.clear_log()
    wait_until(lambda: addresses(srv, "other.corp.test") == [], "no answer once the rule is gone")
    assert upstream.queries() == []
    admin.assert_clean(BAD_REQUEST)


# ---- every screen: a viewer, narrow screens, large text, tap targets ------------------------------

def seed(api) -> None:
    """Something on every screen (idempotent)."""
    if not any(r["name"] == "long-name-of-a-device-on-the-home-network.home.lan" for r in
               api.get("/api/dns-records", params={"zone": "local"}).json()["records"]):
        assert api.post("/api/dns-records", json={"zone": "local", "type": "AAAA", "value": "fd00::1234:5678:9abc",
                        "name": "long-name-of-a-device-on-the-home-network.home.lan"}).status_code == 201
    if api.get("/api/zones/lab.test").status_code == 404:
        assert api.post("/api/zones", json={"name": "lab.test"}).status_code == 201
        assert api.post("/api/zones/lab.test/import", json={"zone": GOOD_ZONE}).status_code == 200
    if api.get("/api/conditionalforwarding/Company VPN").status_code == 404:
        assert api.post("/api/conditionalforwarding", json={
            "name": "Company VPN", "domains": ["corp.example.com", "*.internal.example.com"],
            "upstreams": ["10.8.0.1", "10.8.0.2:5353"], "client_cidrs": ["192.168.1.0/24"]}).status_code == 200


SCREENS = ["records", "zones", "zones/lab.test", "forwarding"]


def test_a_viewer_sees_everything_and_no_control_that_changes_anything(browser, srv, api):
    seed(api)
    created = api.post("/api/users", json={"username": "vic", "password": VIEWER_PW, "role": "viewer"})
    assert created.status_code == 201, created.text
    context = browser.new_context(viewport=PHONE, accept_downloads=True)
    try:
        w = Watched(context)
        sign_in(w, srv, "vic", VIEWER_PW)
        page = w.page
        expect(page.locator("#who-name")).to_have_text("vic (read-only)")
        for route in SCREENS:
            page.goto(base_url(srv) + "/#/" + route)
            screen = page.locator("#screen")
            expect(screen.locator(".items li, #zone-records tr").first).to_be_visible()
            expect(screen.locator("form, input, select, textarea")).to_have_count(0)
            expect(screen.locator("button:visible")).to_have_count(0)
            expect(screen.locator("[role=switch]")).to_have_count(0)
            check_screen(w, srv, f"{route.replace('/', '-')}-viewer")
        # What a viewer may do: read, and download the zone file.
        page.goto(base_url(srv) + "/#/zones/lab.test")
        with page.expect_download() as info:
            page.locator("#zone-export").click()
        assert "www\t300\tIN\tA\t192.0.2.10" in open(info.value.path(), encoding="utf-8").read()
        expect(page.locator("#router-on")).to_have_count(0)  # (the card is on #/forwarding)
        page.goto(base_url(srv) + "/#/forwarding")
        expect(page.locator("#router-on")).to_have_text("Off")
        expect(page.locator("#forwarding-on")).to_have_text("On")
        w.assert_clean()
    finally:
        context.close()


@pytest.mark.parametrize("width, text_size", [(320, "100%"), (390, "200%")])
def test_no_screen_overflows_and_every_target_is_44_px(admin, srv, api, width, text_size):
    seed(api)
    page = admin.page
    try:
        for route in SCREENS:
            open_screen(admin, srv, route)
            page.set_viewport_size({"width": width, "height": 844})
            page.evaluate("(size) => { document.documentElement.style.fontSize = size; }", text_size)
            expect(page.locator("#screen .items li, #zone-records tr").first).to_be_visible()
            assert page.evaluate(OVERFLOW) == [], (route, page.evaluate(OVERFLOW))
            assert page.evaluate(TAP_TARGETS) == [], route
    finally:
        page.evaluate("() => { document.documentElement.style.fontSize = ''; }")
    admin.assert_clean()


def test_an_error_state_says_so_in_words(admin, srv):
    # A zone that does not exist: the screen says so instead of showing an empty table.
    page = admin.page
    open_screen(admin, srv, "zones/nowhere.test")
    expect(page.locator("#zone-state")).to_have_text("There is no zone nowhere.test (any more).")
    expect(page.locator("#zone-records tr")).to_have_count(0)
    check_screen(admin, srv, "zone-missing", NOT_FOUND)


@pytest.mark.parametrize("route, endpoint, state", [
    ("records", r"/api/dns-records\?zone=local$", "#records-state"),
    ("zones", r"/api/zones$", "#zones-state"),
    ("forwarding", r"/api/conditionalforwarding$", "#forwarding-state"),
])
def test_a_screen_whose_data_cannot_be_read_says_so_and_tries_again(browser, srv, api, route, endpoint, state):
    seed(api)
    context = browser.new_context(viewport=PHONE)  # a fresh page: nothing loaded before
    try:
        w = Watched(context)
        sign_in(w, srv, "admin", ADMIN_PASSWORD)
        page = w.page
        pattern = re.compile(endpoint)
        page.route(pattern, lambda r: r.fulfill(status=500, content_type="application/json",
                                                body='{"error": "Internal Server Error", "code": 500, '
                                                     '"message": "disk on fire"}'))
        page.goto(base_url(srv) + "/#/" + route)
        expect(page.locator(state)).to_contain_text("could not be read")
        expect(page.locator(state)).to_contain_text("Something went wrong inside Burrow: Disk on fire.")
        expect(page.locator(state)).not_to_have_text(NO_CODES)
        check_screen(w, srv, f"{route}-unreadable", "status of 500")
        page.unroute(pattern)
        page.get_by_role("button", name="Try again").click()
        expect(page.locator("#screen .items li").first).to_be_visible()
        expect(page.get_by_role("button", name="Try again")).to_be_hidden()
        w.assert_clean("status of 500")
    finally:
        context.close()
