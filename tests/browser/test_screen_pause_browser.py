"""Pause on the page, checked with `dig`: the countdown runs, dig gets the real answer while
the pause lasts, and blocking comes back by itself when it ends (issue 15: "pause shows a
countdown and dig gets the real answer until it ends")."""

from __future__ import annotations

import re
import subprocess
import uuid

import httpx
import pytest

from tests.conftest import need_tool
from tests.support.api_client import ADMIN_PASSWORD, admin_token
from tests.support.burrow_proc import BurrowProcess
from tests.support.page import PHONE, Watched, base_url, check_screen, sign_in
from tests.support.upstream import address_for
from tests.support.upstream_client import TestUpstream

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


def dig(b: BurrowProcess, name: str) -> str:
    """The A answer dig prints for ``name`` (+short), asked of Burrow's DNS port."""
    out = subprocess.run([need_tool("dig"), "@127.0.0.1", "-p", str(b.dns_port), "+tries=1", "+time=10",
                          "+short", name, "A"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def fresh(suffix: str = "pause.test") -> str:
    return f"n{uuid.uuid4().hex[:8]}.{suffix}"  # never cached: each dig is decided anew


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("pause"), [up.address]) as b:
        yield b


def test_a_pause_counts_down_and_dig_gets_the_real_answer_until_it_ends(browser, srv):
    with httpx.Client(base_url=base_url(srv), timeout=30.0,
                      headers={"Authorization": f"Bearer {admin_token(srv)}"}) as api:
        assert api.post("/api/denylist", json={"domain": "*.pause.test"}).status_code == 200
        name = fresh()
        assert dig(srv, name) == "0.0.0.0"  # blocked (the default null answer)
        context = browser.new_context(viewport=PHONE)
        try:
            w = Watched(context)
            sign_in(w, srv, "admin", ADMIN_PASSWORD)
            page = w.page
            expect(page.locator("#blocking-state")).to_have_text("Blocking is on")
            page.locator("#blocking > .actions").get_by_role("button", name="Pause 5 min", exact=True).click()
            expect(page.locator("#blocking-state")).to_have_text("Blocking is paused")
            left = page.locator("#blocking-left")
            expect(left).to_have_text(re.compile(r"^[0-5]:[0-5]\d left$"))
            shown = left.inner_text()
            expect(left).not_to_have_text(shown)  # it counts down on its own
            name = fresh()
            assert dig(srv, name) == address_for(name)  # the real answer while paused
            check_screen(w, srv, "dashboard-paused")

            # A short pause replaces it (through the API, so the test need not wait 5 minutes):
            # the page follows, dig still gets the real answer, and at zero blocking is back.
            assert api.post("/api/blocking", json={"enabled": False, "duration": 4}).status_code == 200
            expect(left).to_have_text(re.compile(r"^0:0[0-4] left$"))
            name = fresh()
            assert dig(srv, name) == address_for(name) or api.get("/api/blocking").json()["enabled"]
            expect(page.locator("#blocking-state")).to_have_text("Blocking is on")
            assert api.get("/api/blocking").json()["enabled"] is True
            assert dig(srv, fresh()) == "0.0.0.0"
            w.assert_clean()
        finally:
            context.close()
