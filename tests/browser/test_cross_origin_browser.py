"""Drive-by attacks from a hostile web page, in real headless Chromium (issue 20, items 3-4).

Burrow runs on 127.0.0.1; the hostile page is served by a small HTTP server on another
loopback address (127.0.0.2) or on another port of 127.0.0.1, so the browser treats it as
another origin exactly as it would a page from the internet. The page's script is run with
``page.evaluate``: it runs in the page, with the page's origin, as the page's own script would.
DNS rebinding is simulated with Chromium's resolver rules: ``rebind.test`` resolves to Burrow's
address, so a page loaded from ``http://rebind.test:<port>/`` has the attacker's origin while its
requests reach Burrow.

Each attack is judged by Burrow's state seen from outside the browser (is the box still
unconfigured, can the owner still sign in, did the WebSocket open), not by what the page
could read back.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.api_client import ADMIN_PASSWORD, admin_token
from tests.support.burrow_proc import BurrowProcess
from tests.support.page import PHONE, Watched, base_url, sign_in

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

REBIND = "rebind.test"
CHROMIUM_EXTRA_FLAGS = [f"--host-resolver-rules=MAP {REBIND} 127.0.0.1"]
HOSTILE_HTML = b"<!doctype html><title>Cute cats</title><p>Nothing to see here.</p>"
WAIT_S = 10.0  # bound on every wait for the browser or the server

# The hostile page's attempts, as its own script would make them. Each returns what the page
# saw (an HTTP status, or the error fetch raised), for the failure messages.
FETCH_JSON = """async ([url, method, body]) => {
  const out = [];
  for (const mode of ["cors", "no-cors"]) {  // a preflighted JSON call, and a "simple" one
    try {
      const r = await fetch(url, {method, mode, body: JSON.stringify(body),
                                  headers: {"Content-Type": mode === "cors" ? "application/json" : "text/plain"}});
      out.push(mode + " " + r.status);
    } catch (e) {
      out.push(mode + " " + e);
    }
  }
  return out;
}"""
OPEN_SOCKET = """(url) => {
  const s = window.__ws = {opened: false, messages: [], done: false};
  const ws = new WebSocket(url);
  ws.onopen = () => { s.opened = true; };
  ws.onmessage = (m) => { s.messages.push(m.data); };
  ws.onerror = ws.onclose = () => { s.done = true; };
}"""


class HostilePage(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(HOSTILE_HTML)))
        self.end_headers()
        self.wfile.write(HOSTILE_HTML)

    def log_message(self, *args):
        pass


@contextmanager
def hostile_site(address: str):
    """The attacker's web server on ``address`` (a free port); yields its base URL."""
    server = ThreadingHTTPServer((address, 0), HostilePage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def fresh(tmp_path):
    with BurrowProcess(tmp_path / "fresh") as b:
        yield b


@pytest.fixture
def owned(tmp_path):
    with BurrowProcess(tmp_path / "owned") as b:
        admin_token(b)
        yield b


def owner_sets_up_through_the_page(browser, srv: BurrowProcess) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        w = Watched(context)
        w.page.goto(base_url(srv) + "/")
        setup = w.page.locator("#setup")
        setup.get_by_label("User name").fill("keeper")
        setup.get_by_label("Password").fill(ADMIN_PASSWORD)
        w.page.get_by_role("button", name="Create account and sign in").click()
        expect(w.page.locator("#who-name")).to_have_text("keeper (admin)")
        w.assert_clean()
    finally:
        context.close()
    assert srv.http("GET", "/api/auth/setup")[1]["required"] is False


# ---- (a) the first admin -------------------------------------------------------------------------

def posts_from_a_hostile_page(browser, url: str, bodies: list) -> list:
    """The hostile page on 127.0.0.2 POSTs each body to ``url`` (FETCH_JSON); what it saw."""
    with hostile_site("127.0.0.2") as site:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(site + "/")
            return [page.evaluate(FETCH_JSON, [url, "POST", body]) for body in bodies]
        finally:
            context.close()


def test_a_hostile_page_cannot_create_the_first_admin(browser, fresh):
    seen = posts_from_a_hostile_page(browser, base_url(fresh) + "/api/auth/setup",
                                     [{"username": "mallory", "password": "Hostile-page-2024"}])
    # Still unconfigured: the page's attempts never reached the handler.
    assert fresh.http("GET", "/api/auth/setup")[1]["required"] is True, seen
    owner_sets_up_through_the_page(browser, fresh)


# ---- (b) locking the admin out ---------------------------------------------------------------------

def test_a_hostile_page_cannot_lock_the_admin_out(browser, owned):
    seen = posts_from_a_hostile_page(browser, base_url(owned) + "/api/auth/login",
                                     [{"username": "admin", "password": f"wrong-guess-{i}"} for i in range(5)])
    # The owner signs in from the same machine (the same client address as the page's browser).
    context = browser.new_context(viewport=PHONE)
    try:
        w = Watched(context)
        sign_in(w, owned, "admin", ADMIN_PASSWORD)
        expect(w.page.locator("#who-name")).to_have_text("admin (admin)")
        w.assert_clean()
    finally:
        context.close()
    assert seen  # (for the message when the sign-in above fails: what the page saw)


# ---- (c) DNS rebinding -----------------------------------------------------------------------------

def test_a_rebinding_name_cannot_reach_the_api(browser, fresh):
    page_url = f"http://{REBIND}:{fresh.web_port}/"
    context = browser.new_context()
    try:
        # A document whose origin is the attacker's name, and whose requests to that name reach
        # Burrow: same origin, no CORS in the way. (The document itself comes from 127.0.0.1 too:
        # one answered by the test, say by a Playwright route, counts as public address space,
        # and Chromium's Private Network Access then blocks its requests to loopback. Other
        # browsers have no such rule, and a LAN box is not loopback: Burrow must refuse itself.)
        page = context.new_page()
        page.goto(page_url)
        read = page.evaluate("""async () => {
          const r = await fetch("/api/auth/setup");
          return [r.status, await r.text()];
        }""")
        write = page.evaluate("""async () => {
          const r = await fetch("/api/auth/setup", {method: "POST", headers: {"Content-Type": "application/json"},
                                body: JSON.stringify({username: "mallory", password: "Hostile-page-2024"})});
          return [r.status, await r.text()];
        }""")
    finally:
        context.close()
    assert read[0] == 421 and '"misdirected_request"' in read[1], read
    assert write[0] == 421, write
    assert fresh.http("GET", "/api/auth/setup")[1]["required"] is True
    owner_sets_up_through_the_page(browser, fresh)


# ---- (d) cross-site WebSocket hijacking ---------------------------------------------------------

def test_a_page_on_another_port_cannot_read_the_live_query_log(browser, owned):
    context = browser.new_context(viewport=PHONE)
    try:
        admin = Watched(context)
        sign_in(admin, owned, "admin", ADMIN_PASSWORD)  # the session cookie is in this browser
        with hostile_site("127.0.0.1") as site:  # same host, another port: the cookie rides along
            page = context.new_page()
            page.goto(site + "/")
            page.evaluate(OPEN_SOCKET, f"ws://127.0.0.1:{owned.web_port}/ws/queries")
            # The handshake ends one way or the other; while it may be open, the house queries.
            deadline = time.monotonic() + WAIT_S
            while not page.evaluate("window.__ws.done || window.__ws.messages.length > 0"):
                assert time.monotonic() < deadline, "the hostile WebSocket neither opened nor failed"
                owned.query("bank-of-the-family.example", "A", timeout=1.0)
            state = page.evaluate("window.__ws")
        assert not state["opened"] and state["messages"] == [], state
        # The admin page's own origin still gets the stream.
        admin.page.evaluate(OPEN_SOCKET, f"ws://127.0.0.1:{owned.web_port}/ws/queries")
        wait_for(lambda: admin.page.evaluate("window.__ws.opened"), "the admin page's WebSocket")
        deadline = time.monotonic() + WAIT_S
        while not admin.page.evaluate("window.__ws.messages.length > 0"):
            assert time.monotonic() < deadline, "no query reached the admin page's stream"
            owned.query("family-laptop.example", "A", timeout=1.0)
    finally:
        context.close()
