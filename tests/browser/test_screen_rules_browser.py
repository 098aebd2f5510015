"""The groups-and-clients screen (#/groups) and the policy rules screen (#/rules) in real headless
Chromium against the real ``burrow`` process with a test upstream.

Every change is made through the page and checked on the page, in the API's own answer, and
where it changes DNS in the answer dnspython gets from the client's own address (127.0.0.2 is
the kids' tablet, 127.0.0.3 another device). Waits are Playwright ``expect`` calls or deadline
loops; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.test_admin_page_defects_browser import TAP_TARGETS
from tests.support.api_client import ADMIN_PASSWORD
from tests.support.burrow_proc import BurrowProcess
from tests.support.page import DESKTOP, PHONE, Watched, base_url, check_screen, sign_in
from tests.support.timing import wait_for
from tests.support.upstream_client import TestUpstream

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

KID, OTHER = "127.0.0.2", "127.0.0.3"
VIEWER_PW = "Viewer-pass-2024"
BAD_REQUEST = "the server responded with a status of 400"
RULE_LOGIC = 'InClientGroup(ClientIP, "kids") && DomainEndsWith(Domain, "tiktok.test")'
RULE_SENTENCE = "Blocks tiktok.test and *.tiktok.test for group kids at any time"


# What sticks out of the screen sideways: the page itself, or anything in the screen's part of it
# (the nav above is a row a thumb scrolls, so its links run past the edge by design).
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > width) out.push("page " + document.documentElement.scrollWidth);
  for (const el of document.querySelectorAll("#screen, #screen *, header, header *")) {
    const r = el.getBoundingClientRect();
    if (r.width && (r.right > width + 0.5 || r.left < -0.5)) {
      out.push((el.id || el.tagName + "." + el.className) + " " + r.left + ".." + r.right);
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("rules-screen"), [up.address]) as b:
        yield b


def go(w: Watched, srv, route: str, heading: str):
    w.page.goto(base_url(srv) + "/#/" + route)
    expect(w.page.get_by_role("heading", name=heading, exact=True)).to_be_visible()


def answer(srv, name: str, source: str) -> str | None:
    reply = srv.query(name, source=source)
    return reply.answer[0][0].address if reply.answer else None


def reset(api):
    for rule in api.get("/api/policies").json()["policies"]:
        assert api.delete(f"/api/policies/{rule['id']}").status_code == 200
    for client in api.get("/api/clients").json()["clients"]:
        assert api.delete(f"/api/clients/{client['id']}").status_code == 200
    for group in api.get("/api/groups").json()["groups"]:
        if not group["builtin"]:
            assert api.delete(f"/api/groups/{group['name']}").status_code == 200


def open_editor(page):
    page.get_by_role("button", name="New rule").click()
    editor = page.locator("#rule-editor")
    expect(editor).to_be_visible()
    return editor


# ---- groups and clients -------------------------------------------------------------------------

def test_a_group_with_a_client_and_a_rule_for_it_blocks_that_client_only(admin, srv, api):
    reset(api)
    page = admin.page
    go(admin, srv, "groups", "Groups")
    expect(page.locator("#group-state")).to_have_text("Only the built-in group so far.")
    expect(page.locator("#client-state")).to_contain_text("No client entries yet")
    expect(page.locator('#group-list li[data-name="default"]')).to_contain_text("built in")
    check_screen(admin, srv, "groups-empty")

    # a group, through the page
    form = page.locator("#group-form")
    form.get_by_label("Name").fill("kids")
    form.get_by_label("Description (optional)").fill("tablets and the console")
    form.get_by_role("button", name="Add group").click()
    kids = page.locator('#group-list li[data-name="kids"]')
    expect(kids).to_contain_text("tablets and the console")
    expect(kids).to_contain_text("Blocking is on for this group.")
    assert {"name": "kids", "description": "tablets and the console"}.items() <= \
        next(g for g in api.get("/api/groups").json()["groups"] if g["name"] == "kids").items()

    # a bad client entry: every bad field is marked, nothing is made
    form = page.locator("#client-form")
    form.get_by_label("IP address or network").fill("127.0.0.300")
    form.get_by_role("button", name="Add client").click()
    expect(page.locator("#client-address")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#client-groups")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error")).to_contain_text("IP address or network:")
    assert api.get("/api/clients").json()["clients"] == []

    # the kids' tablet, in kids
    form.get_by_label("IP address or network").fill(KID)
    form.get_by_label("Name (optional)").fill("tablet")
    form.get_by_role("button", name="kids").click()
    expect(form.get_by_role("button", name="kids")).to_have_attribute("aria-pressed", "true")
    form.get_by_role("button", name="Add client").click()
    row = page.locator("#client-list li").filter(has_text=KID)
    expect(row).to_contain_text("tablet")
    expect(row).to_contain_text("In group: kids")
    expect(kids).to_contain_text(f"1 client entry: {KID} (tablet)")
    expect(page.locator("#client-address")).not_to_have_attribute("aria-invalid", "true")
    (client,) = api.get("/api/clients").json()["clients"]
    assert client["client"] == KID and client["groups"] == ["kids"] and client["name"] == "tablet"
    # which groups is an address in?
    page.get_by_label("IP address", exact=True).fill(KID)
    page.get_by_role("button", name="Look up").click()
    expect(page.locator("#lookup-answer")).to_have_text(f"{KID} is in group kids.")
    check_screen(admin, srv, "groups-filled", BAD_REQUEST)

    # a rule for that group, through the editor
    before = answer(srv, "www.tiktok.test", KID)
    assert before not in (None, "0.0.0.0")
    go(admin, srv, "rules", "Policy rules")
    expect(page.locator("#rule-state")).to_contain_text("No rules yet")
    check_screen(admin, srv, "rules-empty")
    editor = open_editor(page)
    editor.get_by_label("Name").fill("No tiktok for the kids")
    editor.get_by_label("Action").select_option("BLOCK")
    editor.get_by_label("Condition").fill(RULE_LOGIC)
    expect(page.locator("#rule-preview")).to_have_text(RULE_SENTENCE)
    expect(editor).to_have_attribute("data-valid", "true")
    check_screen(admin, srv, "rules-editor")
    editor.get_by_role("button", name="Add rule").click()
    expect(page.locator("#rule-editor")).to_have_count(0)
    row = page.locator("#rule-list li").first
    expect(row).to_contain_text("No tiktok for the kids")
    expect(row.locator(".summary")).to_have_text(RULE_SENTENCE)
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "true")
    (rule,) = api.get("/api/policies").json()["policies"]
    assert rule["name"] == "No tiktok for the kids" and rule["logic"] == RULE_LOGIC and rule["action"] == "BLOCK"
    assert api.get("/api/policies/summaries").json()["summaries"] == [{"id": rule["id"], "summary": RULE_SENTENCE}]

    # the kids' tablet gets the rule's answer; the other device the real one
    assert answer(srv, "www.tiktok.test", KID) == "0.0.0.0"
    assert answer(srv, "tiktok.test", KID) == "0.0.0.0"
    assert answer(srv, "www.tiktok.test", OTHER) not in (None, "0.0.0.0")
    check_screen(admin, srv, "rules-filled")


def test_editing_and_removing_clients_and_groups(admin, srv, api):
    reset(api)
    assert api.post("/api/groups", json={"name": "guests"}).status_code == 201
    assert api.post("/api/groups", json={"name": "iot"}).status_code == 201
    made = api.post("/api/clients", json={"client": "127.0.0.4", "groups": ["guests"]}).json()
    page = admin.page
    go(admin, srv, "groups", "Groups")
    row = page.locator(f'#client-list li[data-id="{made["id"]}"]')
    row.get_by_role("button", name="Edit 127.0.0.4").click()
    page.locator(f'#client-{made["id"]}-address').fill("127.0.0.0/30")
    page.locator(f'#client-{made["id"]}-name').fill("the lab")
    row.get_by_role("button", name="iot").click()
    row.get_by_role("button", name="Save").click()
    expect(row).to_contain_text("127.0.0.0/30")
    expect(row).to_contain_text("In groups: guests, iot")
    after = api.get(f"/api/clients/{made['id']}").json()
    assert after["client"] == "127.0.0.0/30" and after["groups"] == ["guests", "iot"] and after["name"] == "the lab"
    assert api.get("/api/clients?ip=127.0.0.2").json()["lookup"]["groups"] == ["guests", "iot"]

    # a group's description
    guests = page.locator('#group-list li[data-name="guests"]')
    guests.get_by_role("button", name="Edit description of guests").click()
    page.get_by_label("Description of guests").fill("visitors' phones")
    guests.get_by_role("button", name="Save").click()
    expect(guests).to_contain_text("visitors' phones")
    assert api.get("/api/groups/guests").json()["description"] == "visitors' phones"

    # deleting a group asks first, in the page; the client keeps its other group
    guests.get_by_role("button", name="Delete group guests").click()
    guests.get_by_role("button", name="Cancel").click()
    expect(guests).to_be_visible()
    guests.get_by_role("button", name="Delete group guests").click()
    guests.get_by_role("button", name="Delete guests").click()
    expect(page.locator('#group-list li[data-name="guests"]')).to_have_count(0)
    expect(row).to_contain_text("In group: iot")
    assert api.get(f"/api/clients/{made['id']}").json()["groups"] == ["iot"]

    # removing the client entry
    row.get_by_role("button", name="Remove 127.0.0.0/30").click()
    row.get_by_role("button", name="Remove", exact=True).click()
    expect(page.locator("#client-list li")).to_have_count(0)
    expect(page.locator("#client-state")).to_contain_text("No client entries yet")
    assert api.get("/api/clients").json()["clients"] == []
    admin.assert_clean()


def test_a_pause_for_a_group_shows_on_its_row(admin, srv, api):
    reset(api)
    assert api.post("/api/groups", json={"name": "kids"}).status_code == 201
    page = admin.page
    go(admin, srv, "groups", "Groups")
    kids = page.locator('#group-list li[data-name="kids"]')
    expect(kids).to_contain_text("Blocking is on for this group.")
    # the dashboard's pause card, on this screen
    page.get_by_role("button", name="Pause 5 min for group kids").click()
    expect(kids).to_contain_text(re.compile(r"Blocking is paused for this group until \d"))
    assert api.get("/api/blocking").json()["groups"]["kids"]["enabled"] is False
    page.get_by_role("button", name="Resume blocking for group kids").click()
    expect(kids).to_contain_text("Blocking is on for this group.")
    assert api.get("/api/blocking").json()["groups"] == {}
    admin.assert_clean()


# ---- the rule editor ------------------------------------------------------------------------------

def test_the_editor_marks_a_syntax_error_where_it_is(admin, srv, api):
    reset(api)
    page = admin.page
    go(admin, srv, "rules", "Policy rules")
    editor = open_editor(page)
    editor.get_by_label("Name").fill("broken")
    logic = editor.get_by_label("Condition")
    logic.fill("Hour >= && Minute < 3")
    error = page.locator("#rule-logic-error")
    expect(error).to_have_text("expected a value, found operator '&&' (line 1, character 9)")
    expect(logic).to_have_attribute("aria-invalid", "true")
    where = page.locator("#rule-logic-where")
    expect(where).to_have_text("Hour >= && Minute < 3")
    expect(where.locator("mark")).to_have_text("&")
    expect(where).to_have_attribute("data-position", "8")
    expect(page.locator("#rule-preview")).to_have_text("The sentence appears once the rule is complete and correct.")
    expect(editor).to_have_attribute("data-valid", "false")
    check_screen(admin, srv, "rules-editor-error")
    # "Show in the condition" puts the text cursor on it
    page.get_by_role("button", name="Show in the condition").click()
    assert page.evaluate("() => document.activeElement.id") == "rule-logic"
    assert page.evaluate("() => document.activeElement.selectionStart") == 8

    # on the second line, after a character outside the BMP (positions count characters)
    logic.fill('Domain == "😀x" &&\n  Hourr > 1')
    expect(error).to_have_text("unknown name 'Hourr' (line 2, character 3)")
    expect(where).to_have_text("  Hourr > 1")
    expect(where.locator("mark")).to_have_text("H")
    page.get_by_role("button", name="Show in the condition").click()
    assert page.evaluate("() => { const t = document.activeElement; "
                         "return t.value.slice(t.selectionStart, t.selectionEnd); }") == "H"

    # something missing at the end: the mark is after the last character
    logic.fill("Hour > 1 && (Minute < 2")
    expect(error).to_contain_text("unbalanced '(' at position 12: expected ')' (line 1, character 24)")
    expect(where.locator("mark.at-end")).to_have_count(1)

    # other fields: each marked at its own place
    editor.get_by_label("Action").select_option("REDIRECT")
    editor.get_by_label("Answer with (IPv4 and/or IPv6, comma-separated)").fill("not-an-ip")
    expect(page.locator("#rule-target-error")).to_have_text("'not-an-ip' is not an IP address")
    expect(page.locator("#rule-target")).to_have_attribute("aria-invalid", "true")

    # fixed: no marks, the sentence
    editor.get_by_label("Answer with (IPv4 and/or IPv6, comma-separated)").fill("10.1.2.3")
    logic.fill("Hour >= 22 || Hour < 6")
    expect(page.locator("#rule-preview")).to_have_text(
        "Answers every name with 10.1.2.3 for every client every day 22:00–06:00")
    expect(error).to_have_text("")
    expect(where).to_be_hidden()
    expect(logic).not_to_have_attribute("aria-invalid", "true")
    editor.get_by_role("button", name="Cancel").click()
    assert api.get("/api/policies").json()["policies"] == []  # checking saved nothing
    admin.assert_clean()


def test_saving_a_bad_rule_is_refused_and_marked(admin, srv, api):
    reset(api)
    page = admin.page
    go(admin, srv, "rules", "Policy rules")
    editor = open_editor(page)
    editor.get_by_label("Condition").fill("Hour > ")
    expect(page.locator("#rule-logic-error")).to_contain_text("(line 1, character 8)")
    # while typing, the name not reached yet is not called wrong; saving marks it
    expect(page.locator("#rule-name")).not_to_have_attribute("aria-invalid", "true")
    editor.get_by_role("button", name="Add rule").click()
    expect(page.locator("#error")).to_contain_text("Name:")
    expect(page.locator("#rule-name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#rule-logic")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#rule-logic-error")).to_contain_text("(line 1, character 8)")
    assert api.get("/api/policies").json()["policies"] == []
    editor.get_by_role("button", name="Cancel").click()
    admin.assert_clean(BAD_REQUEST)


def test_editing_turning_off_and_deleting_a_rule(admin, srv, api):
    reset(api)
    assert api.post("/api/groups", json={"name": "kids"}).status_code == 201
    assert api.post("/api/clients", json={"client": KID, "groups": ["kids"]}).status_code == 201
    rule = api.post("/api/policies", json={"name": "tiktok", "logic": RULE_LOGIC, "action": "BLOCK"}).json()
    assert answer(srv, "edit.tiktok.test", KID) == "0.0.0.0"
    page = admin.page
    go(admin, srv, "rules", "Policy rules")
    row = page.locator(f'#rule-list li[data-id="{rule["id"]}"]')
    expect(row.locator(".summary")).to_have_text(RULE_SENTENCE)

    # edit: a redirect on school nights
    row.get_by_role("button", name="Edit rule tiktok").click()
    editor = page.locator("#rule-editor")
    expect(editor.get_by_label("Condition")).to_have_value(RULE_LOGIC)
    editor.get_by_label("Name").fill("tiktok to the lamp")
    editor.get_by_label("Action").select_option("REDIRECT")
    editor.get_by_label("Answer with (IPv4 and/or IPv6, comma-separated)").fill("10.9.9.9")
    expect(page.locator("#rule-preview")).to_have_text(
        "Answers tiktok.test and *.tiktok.test with 10.9.9.9 for group kids at any time")
    editor.get_by_role("button", name="Save rule").click()
    expect(row).to_contain_text("tiktok to the lamp")
    expect(row.locator(".summary")).to_have_text(
        "Answers tiktok.test and *.tiktok.test with 10.9.9.9 for group kids at any time")
    got = api.get(f"/api/policies/{rule['id']}").json()
    assert got["name"] == "tiktok to the lamp" and got["action"] == "REDIRECT" and got["action_data"] == "10.9.9.9"
    wait_for(lambda: answer(srv, "edit.tiktok.test", KID) == "10.9.9.9", what="the redirect")

    # off: the real answer again
    row.get_by_role("switch", name="Rule tiktok to the lamp on").click()
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "false")
    expect(row).to_contain_text("Rule is off")
    assert api.get(f"/api/policies/{rule['id']}").json()["enabled"] is False
    assert answer(srv, "edit.tiktok.test", KID) not in (None, "0.0.0.0", "10.9.9.9")

    # delete, asked first
    row.get_by_role("button", name="Delete rule tiktok to the lamp").click()
    row.get_by_role("button", name="Delete rule", exact=True).click()
    expect(page.locator("#rule-list li")).to_have_count(0)
    assert api.get("/api/policies").json() == {"policies": [], "total": 0}
    admin.assert_clean()


# ---- roles, sizes ---------------------------------------------------------------------------------

def test_a_viewer_sees_both_screens_without_any_control_that_changes(browser, srv, api):
    reset(api)
    assert api.post("/api/groups", json={"name": "kids", "description": "tablets"}).status_code == 201
    assert api.post("/api/clients", json={"client": KID, "groups": ["kids"], "name": "tablet"}).status_code == 201
    assert api.post("/api/policies", json={"name": "tiktok", "logic": RULE_LOGIC, "action": "BLOCK"}).status_code == 201
    made = api.post("/api/users", json={"username": "vera", "password": VIEWER_PW, "role": "viewer"})
    assert made.status_code in (201, 409), made.text
    context = browser.new_context(viewport=PHONE)
    try:
        w = Watched(context)
        sign_in(w, srv, "vera", VIEWER_PW)
        page = w.page
        go(w, srv, "groups", "Groups")
        expect(page.locator('#group-list li[data-name="kids"]')).to_contain_text(f"{KID} (tablet)")
        expect(page.locator("#client-list li")).to_contain_text("In group: kids")
        for gone in ("#group-form", "#client-form", "#blocking", "#group-list button", "#client-list button"):
            expect(page.locator(gone)).to_have_count(0)
        page.get_by_label("IP address", exact=True).fill(KID)  # reading stays possible
        page.get_by_role("button", name="Look up").click()
        expect(page.locator("#lookup-answer")).to_have_text(f"{KID} is in group kids.")
        check_screen(w, srv, "groups-viewer")

        go(w, srv, "rules", "Policy rules")
        row = page.locator("#rule-list li").first
        expect(row.locator(".summary")).to_have_text(RULE_SENTENCE)
        expect(row.locator(".rule-state")).to_have_text("On")
        for gone in ("#new-rule", "#rule-editor", "#rule-list button", "[role=switch]"):
            expect(page.locator(gone)).to_have_count(0)
        check_screen(w, srv, "rules-viewer")
    finally:
        context.close()


def test_desktop_narrow_and_large_text(browser, srv, api):
    reset(api)
    assert api.post("/api/groups", json={"name": "teenagers-with-a-long-name"}).status_code == 201
    assert api.post("/api/clients", json={"client": "192.168.100.0/24", "name": "the whole upstairs network",
                                          "groups": ["teenagers-with-a-long-name"]}).status_code == 201
    long_logic = ('InClientGroup(ClientIP, "teenagers-with-a-long-name") && DomainEndsWith(Domain, '
                  '"a-rather-long-name-of-a-video-site.example") && !IsWeekend() '
                  '&& InTimeRange(Hour, Minute, 22, 30, 6, 45)')
    made = api.post("/api/policies", json={"name": "late video", "logic": long_logic, "action": "BLOCK"})
    assert made.status_code == 201, made.text
    context = browser.new_context(viewport=DESKTOP)
    try:
        w = Watched(context)
        sign_in(w, srv, "admin", ADMIN_PASSWORD)
        page = w.page
        go(w, srv, "groups", "Groups")
        expect(page.locator('#group-list li[data-name="teenagers-with-a-long-name"]')).to_be_visible()
        check_screen(w, srv, "groups-desktop")
        go(w, srv, "rules", "Policy rules")
        expect(page.locator("#rule-list .summary").first).to_have_text(
            "Blocks a-rather-long-name-of-a-video-site.example and *.a-rather-long-name-of-a-video-site.example "
            "for group teenagers-with-a-long-name on weekdays 22:30–06:45")
        editor = open_editor(page)
        editor.get_by_label("Condition").fill(long_logic + " &&")
        expect(page.locator("#rule-logic-where mark.at-end")).to_have_count(1)
        check_screen(w, srv, "rules-desktop")

        for width, size in ((320, "100%"), (390, "200%")):
            page.set_viewport_size({"width": width, "height": 844})
            page.evaluate("(size) => { document.documentElement.style.fontSize = size; }", size)
            for route, heading in (("rules", "Policy rules"), ("groups", "Groups")):
                page.evaluate("(r) => { location.hash = '#/' + r; }", route)
                expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
                if route == "rules":
                    open_editor(page).get_by_label("Condition").fill("Hour >= && 1")
                    expect(page.locator("#rule-logic-where mark")).to_have_text("&")
                else:
                    expect(page.locator("#client-list li").first).to_be_visible()
                overflow = page.evaluate(OVERFLOW)
                assert overflow == [], (route, width, size, overflow)
                if size == "100%":
                    assert page.evaluate(TAP_TARGETS) == [], (route, width)
        w.assert_clean()
    finally:
        context.close()


def test_hostile_names_render_as_text(admin, srv, api):
    reset(api)
    hostile = '<img src=x onerror=alert(1)>'
    assert api.post("/api/groups", json={"name": "kids"}).status_code == 201
    assert api.post("/api/clients", json={"client": KID, "groups": ["kids"], "name": hostile}).status_code == 201
    rule = {"name": hostile, "logic": f'DomainRegex(Domain, "{hostile}")', "action": "BLOCK"}
    assert api.post("/api/policies", json=rule).status_code == 201
    page = admin.page
    go(admin, srv, "groups", "Groups")
    expect(page.locator("#client-list li .client-name")).to_have_text(hostile)
    expect(page.locator('#group-list li[data-name="kids"]')).to_contain_text(f"{KID} ({hostile})")
    go(admin, srv, "rules", "Policy rules")
    row = page.locator("#rule-list li").first
    expect(row.locator(".row-title")).to_contain_text(hostile)
    expect(row.locator(".summary")).to_have_text(f"Blocks names matching “{hostile}” for every client at any time")
    assert page.locator("#screen img").count() == 0
    admin.assert_clean()  # no dialog opened, no script ran
