"""The admin page over HTTPS, where Chromium speaks HTTP/2 (ALPN h2, api/http2.py): sign in, the
dashboard's API calls, and the live stream, whose websocket goes over HTTP/1.1 (Burrow offers no
extended CONNECT, RFC 8441, so Chromium opens an HTTP/1.1 connection for it)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.api_client import ADMIN_PASSWORD
from tests.support.burrow_proc import BurrowProcess, free_port
from tests.support.page import PHONE, Watched
from tests.support.timing import wait_for
from tests.support.tlscerts import TestCA, write_pair


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("h2-pki")
    cert, key = write_pair(d, "server", TestCA().issue(["burrow.local"], ["127.0.0.1"]))
    port = free_port()
    with BurrowProcess(tmp_path_factory.mktemp("h2-page"), config={"tls": {
            "mode": "manual", "cert_file": str(cert), "key_file": str(key),
            "https_address": f"127.0.0.1:{port}"}}) as b:
        b.https_port = port
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=60) as c:
            res = c.post("/api/auth/setup", json={"username": "admin", "password": ADMIN_PASSWORD})
            assert res.status_code in (201, 409), res.text
        yield b


def test_admin_page_over_https_uses_http2_and_the_live_stream_http11(browser, srv):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=PHONE, ignore_https_errors=True)  # the test CA's certificate
    try:
        w = Watched(context)
        page = w.page
        frames: list[str] = []
        sockets: list[str] = []

        def on_ws(ws):
            sockets.append(ws.url)
            ws.on("framereceived", lambda payload: frames.append(payload if isinstance(payload, str) else ""))

        page.on("websocket", on_ws)
        page.goto(f"https://127.0.0.1:{srv.https_port}/")
        form = page.locator("#login")
        expect(form).to_be_visible()
        form.get_by_label("User name").fill("admin")
        form.get_by_label("Password").fill(ADMIN_PASSWORD)
        form.get_by_role("button", name="Sign in").click()
        expect(page.locator("#who-name")).to_have_text("admin (admin)")
        expect(page.locator("#blocking-state")).to_be_visible()
        script = """() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const api = performance.getEntriesByType('resource').filter(e => e.name.includes('/api/'));
            return {page: nav.nextHopProtocol, api: api.map(e => [e.name, e.nextHopProtocol])};
        }"""
        protocols = wait_for(lambda: page.wait_for_timeout(100) or (
            lambda p: p if any("/api/dashboard" in name for name, _ in p["api"]) else None)(page.evaluate(script)),
            timeout=30, what="the dashboard's API call")
        assert protocols["page"] == "h2", protocols
        assert {proto for _, proto in protocols["api"]} == {"h2"}, protocols
        # the live stream: its websocket opened (over HTTP/1.1: h2 offers no extended CONNECT) and said hello
        # (Playwright delivers the frame events while the page is waited on, not during a sleep)
        wait_for(lambda: page.wait_for_timeout(100) or any(
            json.loads(f).get("type") == "hello" for f in frames if f.startswith("{")),
            timeout=30, what="the live stream's hello")
        assert any(url.startswith("wss://") and url.endswith("/ws/events") for url in sockets), sockets
        w.assert_clean()
    finally:
        context.close()
