"""The encryption card of the settings screen in real Chromium against the real ``burrow``: it shows
the mode and the certificate in force with its fingerprint (the one a TLS client is served),
switches DNS over TLS on through the page (a TLS client is then answered), and marks the field
the API names when a change is refused (and the change is not made).
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import struct

import pytest

from tests.support.burrow_proc import BurrowProcess, free_port
from tests.support.page import Watched, check_screen, sign_in
from tests.support.timing import wait_for

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect
pytest.importorskip("cryptography", reason="the self-signed certificate needs cryptography")

BAD_REQUEST = "the server responded with a status of 400"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    # A self-signed certificate and DoT off: the page turns it on. No HTTPS listener, so the page
    # stays on plain HTTP (with one, plain HTTP would send the browser to HTTPS).
    with BurrowProcess(tmp_path_factory.mktemp("tls-screen"),
                       config={"tls": {"mode": "self_signed", "dot_enabled": False, "https_address": ""}}) as b:
        yield b


def open_settings(w: Watched) -> None:
    w.page.goto(f"{w.page.url.split('#')[0]}#/settings")
    expect(w.page.locator('section[data-screen="settings"]')).to_be_visible()
    expect(w.page.locator("#settings-tls")).to_be_visible()


def colon_hex(der: bytes) -> str:
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def dot_query(port: int, name: str) -> tuple[bytes, bytes]:
    """One A query over DNS over TLS (no verification: the test reads what is served); returns the
    served certificate (DER) and the answer."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    question = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + b"".join(
        bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00\x00\x01\x00\x01"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="burrow.local") as tls:
        tls.sendall(struct.pack("!H", len(question)) + question)
        head = b""
        while len(head) < 2:
            chunk = tls.recv(2 - len(head))
            assert chunk, "DoT connection closed before an answer"
            head += chunk
        (length,) = struct.unpack("!H", head)
        body = b""
        while len(body) < length:
            chunk = tls.recv(length - len(body))
            assert chunk, "DoT connection closed mid-answer"
            body += chunk
        cert = tls.getpeercert(binary_form=True)
    assert cert is not None
    return cert, body


def test_the_card_shows_the_certificate_and_turns_dns_over_tls_on(admin, srv, api):
    page = admin.page
    tls = api.get("/api/config").json()["tls"]
    assert tls["mode"] == "self_signed" and tls["dot_enabled"] is False
    fingerprint = tls["certificate"]["fingerprint_sha256"]
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fingerprint)

    open_settings(admin)
    card = page.locator("#settings-tls")
    expect(card.get_by_label("Certificate", exact=True)).to_have_value("self_signed")
    expect(card.locator("#tls-fingerprint")).to_have_text(fingerprint)
    expect(card.locator("#tls-certificate")).to_contain_text("burrow.local")
    check_screen(admin, srv, "settings-tls")

    port = free_port()
    card.get_by_label("DNS over TLS address").fill(f"127.0.0.1:{port}")
    card.get_by_label("Answer DNS over TLS").check()
    card.get_by_role("button", name="Save encryption").click()
    expect(card.locator(".saved")).to_contain_text("Saved and applied")
    after = api.get("/api/config").json()["tls"]
    assert after["dot_enabled"] is True and after["dot_address"] == f"127.0.0.1:{port}"

    # A real TLS client is answered on the new address, and is served the certificate whose
    # fingerprint the page shows.
    served: dict[str, bytes] = {}

    def answered() -> bool:
        try:
            served["cert"], served["answer"] = dot_query(port, "dot-from-page.example.test")
        except OSError:
            return False
        return True

    wait_for(answered, timeout=20, what="a DoT answer on the address saved through the page")
    assert served["answer"][:2] == b"\x42\x42"
    assert colon_hex(served["cert"]) == fingerprint
    expect(card.locator("#tls-fingerprint")).to_have_text(fingerprint)


def test_a_refused_change_marks_its_field_and_changes_nothing(admin, srv, api):
    page = admin.page
    before = api.get("/api/config").json()["tls"]
    open_settings(admin)
    card = page.locator("#settings-tls")
    card.get_by_label("Certificate", exact=True).select_option("manual")
    card.get_by_label("Certificate file (PEM, full chain)").fill(str(srv.workdir / "no-such-cert.pem"))
    card.get_by_label("Private key file (PEM)").fill(str(srv.workdir / "no-such-key.pem"))
    card.get_by_role("button", name="Save encryption").click()
    field = card.get_by_label("Certificate file (PEM, full chain)")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(card.locator("#set-tls-cert_file-error")).to_contain_text("no-such-cert.pem")
    expect(page.get_by_role("alert").filter(has_text="Certificate file")).to_be_visible()
    assert api.get("/api/config").json()["tls"] == before
    admin.assert_clean(BAD_REQUEST)


def test_a_viewer_sees_the_fingerprint_and_no_control(browser, srv, api):
    from tests.support.page import PHONE

    assert api.post("/api/users", json={"username": "tina", "password": "Viewer-pass-2024",
                                        "role": "viewer"}).status_code == 201
    context = browser.new_context(viewport=PHONE)
    try:
        w = Watched(context)
        sign_in(w, srv, "tina", "Viewer-pass-2024")
        open_settings(w)
        card = w.page.locator("#settings-tls")
        fingerprint = api.get("/api/config").json()["tls"]["certificate"]["fingerprint_sha256"]
        expect(card.locator("#tls-fingerprint")).to_have_text(fingerprint)
        expect(card.locator("input, select, textarea, button")).to_have_count(0)
        w.assert_clean()
    finally:
        context.close()
