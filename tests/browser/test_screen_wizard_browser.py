"""The first-run guide (#/welcome) and the sign-in screen in real headless Chromium against the
real ``burrow`` process.

The guide end to end: the first account with the strength meter, 2FA enrolment (QR image from our
own origin, the secret as text, recovery codes once), block lists from the catalogue and a custom
URL (served by a loopback HTTP server this test starts; the catalogue's internet URLs are only
stored: the test Burrow's upstream is 127.0.0.1:9, so their host names never resolve), and the
router step's "is this phone using Burrow?" check, both ways:

- yes: Chromium runs in a mount namespace of its own (``unshare --mount``) where /etc/resolv.conf
  says ``nameserver <loopback address>`` and Burrow listens on port 53 of that address, so the
  browser's own resolver asks Burrow;
- no: the same, with the namespace's resolver a small recording DNS server of the test's: the
  lookup happens, and goes there, and Burrow never sees the name.

Both need root and unshare; without them those tests skip, saying why. Sign-in: TOTP, a recovery
code, the lockout message, and "stay signed in on this device" checked through the cookies the
browser keeps. Every step is checked on the page and in the API's answer; check_screen (axe-core,
CSP, console, a screenshot) on every guide step at phone size and once at desktop size.
"""

from __future__ import annotations

import http.server
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import dns.message
import dns.rcode
import httpx
import pyotp
import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.support.api_client import ADMIN_PASSWORD, admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.page import DESKTOP, PHONE, Watched, base_url, check_screen, sign_in

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

BAD_REQUEST = "the server responded with a status of 400"
UNAUTHORIZED = "the server responded with a status of 401"
TOO_MANY = "the server responded with a status of 429"
PROBE_FAILED = "ERR_NAME_NOT_RESOLVED"  # the probe image's load fails by design
OTTO_PW = "Sesame-passphrase-2024"


# ---- helpers ---------------------------------------------------------------------------------

class ListServer:
    """A loopback HTTP server with one hosts file, counting requests."""

    def __init__(self, body: bytes):
        outer = self
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/family.hosts"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class RecordingResolver:
    """A DNS server on ``address``:53 that answers NXDOMAIN and remembers every name asked."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.2)
        self.names: list[str] = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            self.names.append(str(query.question[0].name).rstrip(".").lower())
            reply = dns.message.make_response(query)
            reply.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(reply.to_wire(), peer)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


def namespace_support() -> str | None:
    """Why a browser in its own mount namespace cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (unshare --mount and a bind mount over /etc/resolv.conf)"
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed"
    probe = subprocess.run(["unshare", "--mount", "--", "sh", "-c", "mount --bind /dev/null /etc/hostname"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"unshare --mount does not work here: {probe.stderr.strip() or probe.returncode}"
    return None


def free_loopback() -> str:
    """A loopback address whose port 53 (UDP) is free now."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(50):
        address = f"127.{rng.randint(80, 250)}.{rng.randint(0, 255)}.{rng.randint(2, 250)}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((address, 53))
            except OSError:
                continue
        return address
    pytest.skip("no free loopback address with port 53")


def resolving_browser(browser, tmp_path: Path, nameserver: str):
    """A second Chromium (same Playwright) in a mount namespace whose /etc/resolv.conf names
    ``nameserver``: its lookups go there. The wrapper script is what Playwright starts."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {nameserver}\noptions timeout:1 attempts:1\n")
    wrapper = tmp_path / "chromium-in-namespace"
    wrapper.write_text("#!/bin/sh\n"
                       f"exec unshare --mount -- /bin/sh -c 'mount --bind \"$0\" /etc/resolv.conf && "
                       f"exec {CHROMIUM} \"$@\"' {resolv} \"$@\"\n")
    wrapper.chmod(0o755)
    return browser.browser_type.launch(executable_path=str(wrapper), headless=True, args=CHROMIUM_FLAGS)


def burrow_on_port_53(tmp_path: Path, address: str) -> BurrowProcess:
    b = BurrowProcess(tmp_path / "burrow")
    b.config["server"]["listen_address"] = [b.dns_address, f"{address}:53"]
    return b


def cookie_names(context) -> dict:
    return {c["name"]: c for c in context.cookies()}


# ---- the first-run guide end to end ---------------------------------------------------------------

def create_first_account(w: Watched, proc: BurrowProcess) -> None:
    page = w.page
    page.goto(base_url(proc) + "/")
    setup = page.locator("#setup")
    expect(setup).to_be_visible()
    setup.get_by_label("User name").fill("keeper")
    password = setup.get_by_label("Password", exact=True)
    password.fill("password1")
    expect(page.locator("#strength-word")).to_have_text("Very weak")
    expect(page.locator("#strength-hints")).to_contain_text("most common passwords")
    expect(page.locator("#strength-hints")).to_contain_text("at least 10 characters")
    password.fill("abcdefghijkl")
    expect(page.locator("#strength-hints")).to_contain_text("sequences")
    password.fill(ADMIN_PASSWORD)
    expect(page.locator("#strength-word")).to_have_text(re.compile("^(Strong|Very strong)$"))
    assert page.locator("#strength-meter").evaluate("m => m.value") >= 3
    check_screen(w, proc, "signin-setup-strength")
    page.get_by_role("button", name="Create account and sign in").click()
    expect(page.locator("#who-name")).to_have_text("keeper (admin)")
    expect(page).to_have_url(re.compile(r"#/welcome$"))
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()


def enrol_two_factor(w: Watched, proc: BurrowProcess, token: str) -> list[str]:
    page = w.page
    check_screen(w, proc, "welcome-2fa-start")
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    qr = page.locator("#totp-qr")
    expect(qr).to_be_visible()
    page.wait_for_function("() => { const i = document.getElementById('totp-qr'); "
                           "return i && i.complete && i.naturalWidth > 0; }")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    check_screen(w, proc, "welcome-2fa-scan")
    # A wrong code: marked at the field, in words; 2FA stays off.
    code = page.get_by_label("The 6-digit code the app shows")
    totp = pyotp.TOTP(secret)
    code.fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Turn it on").click()
    expect(page.locator("#totp-code")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error")).not_to_contain_text("400")
    assert authed(proc, token, "GET", "/api/auth/me")[1]["totp_enabled"] is False
    code.fill(totp.now())
    page.get_by_role("button", name="Turn it on").click()
    expect(page.locator("#totp-enabled")).to_have_text("Two-factor sign-in is on.")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-7]{5}-[a-z2-7]{5}", c) for c in codes)
    me = authed(proc, token, "GET", "/api/auth/me")[1]
    assert me["totp_enabled"] is True and me["recovery_codes_left"] == 10
    check_screen(w, proc, "welcome-2fa-recovery-codes", BAD_REQUEST)
    page.get_by_role("button", name="I have saved them: next step").click()
    expect(page.get_by_role("heading", name="Block lists")).to_be_visible()
    return codes


def choose_lists(w: Watched, proc: BurrowProcess, token: str, list_url: str) -> None:
    page = w.page
    catalogue = authed(proc, token, "GET", "/api/lists/catalogue")[1]["lists"]
    items = page.locator(".catalogue-item")
    expect(items).to_have_count(len(catalogue))
    recommended = [e for e in catalogue if e["recommended"]]
    expect(page.get_by_label(recommended[0]["name"])).to_be_checked()
    check_screen(w, proc, "welcome-lists")
    other = next(e for e in catalogue if e["id"] == "oisd-small")
    page.get_by_label(other["name"]).check()
    custom = page.get_by_label("Other lists (optional)")
    # A line that is no web address: marked at the field, in words, and nothing is added.
    custom.fill(f"{list_url}\nnot a web address")
    page.get_by_role("button", name="Add the chosen lists").click()
    expect(page.locator("#custom-urls-error")).to_have_text(re.compile("^Line 2 is not a web address"))
    expect(custom).to_have_attribute("aria-invalid", "true")
    assert authed(proc, token, "GET", "/api/lists")[1]["lists"] == []
    custom.fill(list_url)
    page.get_by_role("button", name="Add the chosen lists").click()
    expect(page.locator("#lists-added")).to_contain_text("Added 3 lists")
    expect(custom).to_have_value("")
    expect(custom).not_to_have_attribute("aria-invalid", "true")
    lists = authed(proc, token, "GET", "/api/lists")[1]["lists"]
    sources = {row["source"] for row in lists}
    assert {recommended[0]["url"], other["url"], list_url} == sources
    check_screen(w, proc, "welcome-lists-added", BAD_REQUEST)
    # The custom list is downloaded from the loopback server; the catalogue's are only stored.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = next(r for r in authed(proc, token, "GET", "/api/lists")[1]["lists"] if r["source"] == list_url)
        if row["entries"]:
            break
        time.sleep(0.2)
    assert row["entries"] == 2, row
    reply = proc.query("ads.family.test", "A")
    assert [str(rr) for rrset in reply.answer for rr in rrset] == ["0.0.0.0"]
    # Added ones show as added when the step opens again.
    page.reload()
    expect(page.get_by_label(other["name"])).to_be_disabled()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Point your router at Burrow")).to_be_visible()


def router_step_says_what_to_type(w: Watched, proc: BurrowProcess, token: str) -> None:
    page = w.page
    network = authed(proc, token, "GET", "/api/system")[1]["network"]
    instruction = page.locator("#router-instruction")
    if network.get("available") and network.get("primary_v4"):
        expect(instruction).to_have_text(f"set the DNS server to {network['primary_v4']}")
    else:  # no netlink here: the page falls back to the address it was opened at
        expect(page.locator("#router-unknown")).to_be_visible()
        expect(instruction).to_have_text("127.0.0.1")


def test_first_run_guide_end_to_end_and_this_phone_uses_burrow(browser, tmp_path):
    why = namespace_support()
    if why:
        pytest.skip(why)
    address = free_loopback()
    with burrow_on_port_53(tmp_path, address) as proc, \
            ListServer(b"0.0.0.0 ads.family.test\n0.0.0.0 track.family.test\n") as lists:
        ns_browser = resolving_browser(browser, tmp_path, address)
        try:
            context = ns_browser.new_context(viewport=PHONE)
            w = Watched(context)
            create_first_account(w, proc)
            token = admin_token(proc, "keeper", ADMIN_PASSWORD)
            enrol_two_factor(w, proc, token)
            choose_lists(w, proc, token, lists.url)
            router_step_says_what_to_type(w, proc, token)
            check_screen(w, proc, "welcome-router", BAD_REQUEST)
            with w.page.expect_response(lambda r: r.url.endswith("/api/setup/check")) as issued:
                w.page.get_by_role("button", name="Is this phone using Burrow?").click()
            name = issued.value.json()["name"]
            expect(w.page.locator("#check-yes")).to_have_text("Yes: this phone is using Burrow.")
            # The API says the same about the name it handed out: Chromium's own lookup reached
            # Burrow (at address:53; the kernel sends loopback traffic from 127.0.0.1).
            state = authed(proc, token, "GET", f"/api/setup/check/{name}")[1]
            assert state["seen"] is True and state["lookups"] >= 1 and state["client"].startswith("127.")
            expect(w.page.locator("#check-result")).to_contain_text(f"Its lookup came from {state['client']}")
            check_screen(w, proc, "welcome-router-yes", BAD_REQUEST, PROBE_FAILED)
            # Desktop size, once.
            w.page.set_viewport_size(DESKTOP)
            check_screen(w, proc, "welcome-router-yes-desktop", BAD_REQUEST, PROBE_FAILED)
            w.page.get_by_role("button", name="Finish").click()
            expect(w.page.locator("#blocking-state")).to_be_visible()
            context.close()
        finally:
            ns_browser.close()


def test_a_phone_resolving_elsewhere_is_told_no(browser, tmp_path):
    why = namespace_support()
    if why:
        pytest.skip(why)
    burrow_address, other = free_loopback(), free_loopback()
    with burrow_on_port_53(tmp_path, burrow_address) as proc, RecordingResolver(other) as elsewhere:
        token = admin_token(proc)
        ns_browser = resolving_browser(browser, tmp_path, other)
        try:
            context = ns_browser.new_context(viewport=PHONE)
            w = Watched(context)
            sign_in(w, proc, "admin", ADMIN_PASSWORD)
            w.page.goto(base_url(proc) + "/#/welcome/router")
            w.page.get_by_role("button", name="Is this phone using Burrow?").click()
            expect(w.page.locator("#check-no")).to_have_text("No: this phone is not using Burrow yet.")
            asked = [n for n in elsewhere.names if n.endswith(".check.burrow.test")]
            assert asked, elsewhere.names  # the phone did look the name up: at the other resolver
            state = authed(proc, token, "GET", f"/api/setup/check/{asked[0]}")[1]
            assert state["seen"] is False and state["client"] is None
            check_screen(w, proc, "welcome-router-no", PROBE_FAILED)
            context.close()
        finally:
            ns_browser.close()


# ---- sign-in -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with BurrowProcess(tmp_path_factory.mktemp("signin")) as b:
        yield b


@pytest.fixture(scope="module")
def otto(srv):
    """A second admin with 2FA on: (secret, recovery codes)."""
    token = admin_token(srv)
    status, body = authed(srv, token, "POST", "/api/users", {"username": "otto", "password": OTTO_PW, "role": "admin"})
    assert status == 201, body
    own = srv.http("POST", "/api/auth/login", {"username": "otto", "password": OTTO_PW})[1]["access_token"]
    secret = authed(srv, own, "POST", "/api/auth/2fa/enrol")[1]["secret"]
    status, body = authed(srv, own, "POST", "/api/auth/2fa/confirm", {"code": pyotp.TOTP(secret).now()})
    assert status == 200, body
    return secret, body["recovery_codes"]


def fill_login(page, username, password, remember=False):
    form = page.locator("#login")
    expect(form).to_be_visible()
    form.get_by_label("User name").fill(username)
    form.get_by_label("Password", exact=True).fill(password)
    if remember:
        form.get_by_label(re.compile("Stay signed in on this device")).check()
    form.get_by_role("button", name="Sign in").click()


def test_sign_in_with_totp(browser, srv, otto):
    secret, _ = otto
    context = browser.new_context(viewport=PHONE)
    try:
        w = Watched(context)
        page = w.page
        page.goto(base_url(srv) + "/")
        check_screen(w, srv, "signin")
        fill_login(page, "otto", OTTO_PW)
        code = page.get_by_label("Two-factor code")
        expect(code).to_be_visible()
        expect(code).to_be_focused()
        check_screen(w, srv, "signin-totp", UNAUTHORIZED)
        # The next 30-s step's code: the one used to confirm is spent (replay guard).
        code.fill(pyotp.TOTP(secret).at(time.time() + 30))
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#who-name")).to_have_text("otto (admin)")
        # Not "stay signed in": every cookie ends with the browser.
        cookies = cookie_names(context)
        assert {"burrow_session", "burrow_csrf", "burrow_refresh", "burrow_refresh_hint"} <= set(cookies)
        assert all(c["expires"] == -1 for c in cookies.values()), cookies
        w.assert_clean(UNAUTHORIZED)
    finally:
        context.close()


def test_sign_in_with_a_recovery_code_and_stay_signed_in(browser, srv, otto):
    _, codes = otto
    token = admin_token(srv)
    context = browser.new_context(viewport=PHONE)
    try:
        w = Watched(context)
        page = w.page
        page.goto(base_url(srv) + "/")
        expect(page.locator("#login")).to_contain_text("Stay signed in on this device for 30 days")
        fill_login(page, "otto", OTTO_PW, remember=True)
        page.get_by_role("button", name="Use a recovery code instead").click()
        recovery = page.get_by_label("Recovery code")
        expect(recovery).to_have_attribute("inputmode", "text")
        recovery.fill(codes[0])
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#who-name")).to_have_text("otto (admin)")
        otto_user = next(u for u in authed(srv, token, "GET", "/api/users")[1]["users"] if u["username"] == "otto")
        assert otto_user["totp_enabled"] is True
        # The code is spent: the API refuses it now.
        again = srv.http("POST", "/api/auth/login", {"username": "otto", "password": OTTO_PW, "totp": codes[0]})
        assert again[0] == 401
        # "Stay signed in": the refresh cookie lives the server's maximum (30 days).
        cookies = cookie_names(context)
        left = cookies["burrow_refresh"]["expires"] - time.time()
        assert 29 * 86400 < left <= 30 * 86400 + 60, cookies["burrow_refresh"]
        assert cookies["burrow_refresh_hint"]["expires"] > time.time() + 29 * 86400
        w.assert_clean(UNAUTHORIZED)
    finally:
        context.close()


def test_lockout_says_when_to_try_again(browser, tmp_path):
    with BurrowProcess(tmp_path) as fresh:
        admin_token(fresh)
        context = browser.new_context(viewport=PHONE)
        try:
            w = Watched(context)
            page = w.page
            page.goto(base_url(fresh) + "/")
            for _ in range(5):
                fill_login(page, "admin", "not the password")
                expect(page.locator("#error")).to_have_text(re.compile("Wrong user name or password|Too many"))
            fill_login(page, "admin", ADMIN_PASSWORD)  # even the right password waits now
            error = page.locator("#error")
            expect(error).to_have_text(re.compile(r"^Too many failed attempts\. Try again in \d+ (minutes?|seconds?) "
                                                  r"\(at \d{1,2}:\d{2}( [AP]M)?\)\.$"))
            expect(page.get_by_role("button", name="Sign in")).to_be_disabled()
            status, body = fresh.http("POST", "/api/auth/login", {"username": "admin", "password": ADMIN_PASSWORD})
            assert status == 429 and body["error"] == "locked_out"
            check_screen(w, fresh, "signin-locked-out", UNAUTHORIZED, TOO_MANY)
        finally:
            context.close()


def test_viewer_sees_the_catalogue_without_add_controls(browser, srv):
    token = admin_token(srv)
    status, _ = authed(srv, token, "POST", "/api/users", {"username": "vic", "password": "Viewer-pass-2024",
                                                         "role": "viewer"})
    assert status in (201, 409)
    context = browser.new_context(viewport=PHONE)
    try:
        w = Watched(context)
        sign_in(w, srv, "vic", "Viewer-pass-2024")
        w.page.goto(base_url(srv) + "/#/welcome/lists")
        expect(w.page.locator(".catalogue-item").first).to_be_visible()
        assert w.page.locator("#lists-form, #lists-add, .catalogue input").count() == 0
        with httpx.Client(base_url=base_url(srv)) as client:
            own = srv.http("POST", "/api/auth/login", {"username": "vic", "password": "Viewer-pass-2024"})[1]
            refused = client.post("/api/lists", json={"name": "x", "source": "https://example.org/x"},
                                  headers={"Authorization": f"Bearer {own['access_token']}"})
            assert refused.status_code == 403
        check_screen(w, srv, "welcome-lists-viewer")
    finally:
        context.close()
