"""ACME certificates (tls.mode autocert and acme) in the real ``burrow`` process, against Debian's
Pebble started on loopback (tests/support/acme_lab.py).

Pebble validates HTTP-01 by fetching ``http://<name>:<httpPort>/.well-known/acme-challenge/<token>``
after resolving ``<name>`` through the test's DNS responder (every name → 127.0.0.1); its
``httpPort`` is Burrow's web port, so the answer can only come from Burrow's own web listener.
DNS-01 goes through the fake Cloudflare API, whose records the same responder serves.
Clients check the served chain against Pebble's root (its management interface), with the
certificate's name as SNI.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import shutil
import socket
import ssl
import struct
from pathlib import Path

import dns.message
import pytest

from tests.support.acme_lab import PEBBLE, LabThread, Pebble
from tests.support.burrow_proc import BurrowProcess, free_port
from tests.support.timing import wait_for
from tests.support.tlscerts import TestCA, fingerprint_of_der, now
from tests.support.upstream_client import TestUpstream

pytestmark = pytest.mark.skipif(shutil.which("pebble") is None and not os.path.exists(PEBBLE),
                                reason="pebble (Debian package 'pebble') is not installed")

NAME = "burrow.test"
TOKEN = "cf-live-token-5e3b1c0d9a8f7e6d"
ADMIN = {"username": "admin", "password": "Owner-Passphrase-2024"}
ISSUE_TIMEOUT = 120.0  # an issuance on a loaded machine: account, order, validation, finalisation


@pytest.fixture(scope="module")
def up():
    with TestUpstream() as u:
        yield u


@pytest.fixture(scope="module")
def lab():
    lab = LabThread(free_port(), TOKEN, {NAME: "zone0burrow"}).start()
    yield lab
    lab.stop()


def start_pebble(workdir: Path, lab: LabThread, http_port: int) -> Pebble:
    return Pebble(workdir, dns_port=lab.dns_port, http_port=http_port).start()


# ---- clients ----------------------------------------------------------------------------------

class Admin:
    """Signed in to a BurrowProcess over plain HTTP from loopback."""

    def __init__(self, b: BurrowProcess):
        self.b = b
        b.http("POST", "/api/auth/setup", ADMIN)
        status, body = b.http("POST", "/api/auth/login", ADMIN)
        assert status == 200, body
        self.headers = {"Authorization": f"Bearer {body['access_token']}"}

    def get(self, path: str):
        return self.b.http("GET", path, headers=self.headers)

    def put_tls(self, body: dict):
        return self.b.http("PUT", "/api/config/tls", body, headers=self.headers)

    def tls(self) -> dict:
        status, body = self.get("/api/config")
        assert status == 200, body
        return body["tls"]

    def events(self, type_: str) -> list[dict]:
        status, body = self.get(f"/api/events?type={type_}&limit=50")
        assert status == 200, body
        return body["events"]


def trusting(root_pem: bytes, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=root_pem.decode())
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def dot_ask(port: int, ctx: ssl.SSLContext, sni: str, name: str = "www.example.com") -> tuple[dns.message.Message, str]:
    """One DoT query; (answer, the served certificate's SHA-256 fingerprint)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            wire = dns.message.make_query(name, "A").to_wire()
            s.sendall(struct.pack("!H", len(wire)) + wire)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                chunk = s.recv(65535)
                if not chunk:
                    raise ConnectionError("closed")
                data += chunk
            der = s.getpeercert(binary_form=True)
    return dns.message.from_wire(data[2:]), fingerprint_of_der(der)


def https_get(port: int, ctx: ssl.SSLContext, sni: str, path: str = "/healthz") -> tuple[int, bytes]:
    """GET over HTTPS with ``sni`` as the name checked and sent (Host too)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65535):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def plain_get(port: int, path: str, host: str) -> tuple[int, dict[str, str], bytes]:
    """GET over plain HTTP, no redirect followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path, headers={"Host": host})
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def unverified_fingerprint(port: int) -> str | None:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=NAME) as s:
            return fingerprint_of_der(s.getpeercert(binary_form=True))
    except OSError:
        return None


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def state_is(admin: Admin, status: str) -> bool:
    state = admin.tls()["acme_state"]
    return state is not None and state["status"] == status


def readiness_reasons(b: BurrowProcess) -> list[str]:
    _status, body = b.http("GET", "/readyz")
    return body["reasons"]


# ---- HTTP-01 through Burrow's own web listener ---------------------------------------------------

def test_autocert_switched_on_live_issues_through_the_web_listener_then_fails_and_recovers(
        up, lab, tmp_path_factory):
    """self_signed → PUT autocert (the seed's ``autocert.enabled``): issued over HTTP-01 by
    Pebble fetching from Burrow's web port; DoT and HTTPS then serve a chain Pebble's root
    verifies. Then a renewal that fails (the directory unreachable) leaves the previous
    certificate serving with the error in /api/config, a fault and an event; a working
    directory again issues and clears them."""
    work = tmp_path_factory.mktemp("autocert")
    dot_port, https_port = free_port(), free_port()
    b = BurrowProcess(work / "burrow", [up.address], config={"tls": {
        "mode": "self_signed", "dot_enabled": True, "dot_address": f"127.0.0.1:{dot_port}"}})
    pebble = start_pebble(work, lab, b.web_port)
    try:
        with b:
            admin = Admin(b)
            self_signed = admin.tls()["certificate"]["fingerprint_sha256"]
            assert unverified_fingerprint(dot_port) == self_signed
            status, body = admin.put_tls({
                "directory_url": pebble.directory, "directory_ca_file": str(pebble.ca_file),
                "autocert": {"enabled": True, "hosts": [NAME], "email": "owner@burrow.test"}})
            assert status == 200, body
            assert body["config"]["mode"] == "autocert" and body["config"]["autocert"]["enabled"] is True
            # Until the first certificate exists the encrypted listeners are closed.
            wait_for(lambda: state_is(admin, "valid"), timeout=ISSUE_TIMEOUT, interval=0.5,
                     what=f"the ACME certificate ({b.output()[-3000:]})")
            root = pebble.roots()
            tls = admin.tls()
            cert = tls["certificate"]
            assert cert["names"] == [NAME] and cert["fingerprint_sha256"] != self_signed
            assert tls["acme_state"]["challenge"] == "http-01" and tls["acme_state"]["last_error"] is None
            assert tls["acme_state"]["last_issued"] and tls["acme_state"]["next_renewal"]
            wait_for(lambda: not refused(dot_port), what="DoT")
            answer, served = dot_ask(dot_port, trusting(root, ["dot"]), NAME)
            assert answer.answer and served == cert["fingerprint_sha256"]
            issued = admin.events("tls.certificate_issued")
            assert issued and NAME in issued[0]["summary"]
            folder = b.data_dir / "tls" / "autocert"
            assert oct((folder / "privkey.pem").stat().st_mode & 0o777) == "0o600"
            assert oct((folder / "account.key").stat().st_mode & 0o777) == "0o600"

            # A renewal that fails: a certificate past its renewal time in the cache folder and a
            # directory nobody listens on.
            old_cert, old_key = TestCA().issue([NAME], ["127.0.0.1"], not_before=now() - dt.timedelta(days=80),
                                               not_after=now() + dt.timedelta(days=10))
            (folder / "privkey.pem").write_bytes(old_key)
            (folder / "fullchain.pem").write_bytes(old_cert)
            dead = f"https://127.0.0.1:{free_port()}/dir"
            status, body = admin.put_tls({"directory_url": dead})
            assert status == 200, body
            wait_for(lambda: state_is(admin, "failing"), timeout=60, interval=0.5, what="the renewal to fail")
            tls = admin.tls()
            assert "network" in tls["acme_state"]["last_error"] and tls["acme_state"]["failures"] == 1
            old = tls["certificate"]["fingerprint_sha256"]
            assert old != cert["fingerprint_sha256"]
            assert unverified_fingerprint(dot_port) == old, "the previous certificate keeps serving"
            assert any("ACME" in r and NAME in r for r in readiness_reasons(b))
            failed = admin.events("tls.acme_failed")
            assert failed and failed[0]["severity"] == "error" and "network" in failed[0]["summary"]

            status, body = admin.put_tls({"directory_url": pebble.directory})
            assert status == 200, body
            wait_for(lambda: state_is(admin, "valid") and admin.tls()["certificate"]["fingerprint_sha256"] != old,
                     timeout=ISSUE_TIMEOUT, interval=0.5, what="a new certificate")
            renewed = admin.tls()["certificate"]["fingerprint_sha256"]
            assert renewed not in (old, cert["fingerprint_sha256"])
            wait_for(lambda: not any("ACME" in r for r in readiness_reasons(b)), what="the fault to clear")
            _answer, served = dot_ask(dot_port, trusting(root, ["dot"]), NAME)
            assert served == renewed

            # HTTPS with it; plain HTTP then redirects, except the challenge path (any Host).
            status, body = admin.put_tls({"https_address": f"127.0.0.1:{https_port}"})
            assert status == 200, body
            wait_for(lambda: not refused(https_port), what="HTTPS")
            status, text = https_get(https_port, trusting(root), NAME)
            assert status == 200 and b"alive" in text
            status, headers, _ = plain_get(b.web_port, "/api/auth/me", NAME)
            assert status == 301 and headers["location"] == f"https://{NAME}:{https_port}/api/auth/me"
            status, headers, text = plain_get(b.web_port, "/.well-known/acme-challenge/nothing-pending", NAME)
            assert status == 404 and b"challenge" in text, text
    finally:
        pebble.stop()


# ---- DNS-01 through the Cloudflare API ----------------------------------------------------------

def test_acme_dns01_through_cloudflare_serves_a_wildcard_and_never_shows_the_token(up, lab, tmp_path_factory):
    work = tmp_path_factory.mktemp("acme")
    dot_port = free_port()
    pebble = start_pebble(work, lab, free_port())  # no HTTP-01 here
    b = BurrowProcess(work / "burrow", [up.address], config={"tls": {
        "mode": "acme", "dot_enabled": True, "dot_address": f"127.0.0.1:{dot_port}",
        "directory_url": pebble.directory, "directory_ca_file": str(pebble.ca_file),
        # TOML dotted keys inside [tls] (the test's TOML writer has no nested tables)
        "acme.hosts": [NAME, f"*.{NAME}"], "acme.email": "owner@burrow.test", "acme.dns_propagation": 0,
        "acme.renew_before": "720h", "acme.cloudflare.api_token": TOKEN,
        "acme.cloudflare.api_base": lab.cloudflare.api},
        # A board whose clock is not synchronised yet: nothing is ordered before it is.
        "clock": {"wait_for_sync": True, "sync_file": str(work / "synchronized"), "sync_sources": ["timesyncd"]}})
    try:
        with b:
            admin = Admin(b)
            asked = len(lab.cloudflare.requests)
            assert state_is(admin, "waiting_for_clock"), admin.tls()
            assert admin.tls()["certificate"] is None and refused(dot_port)
            assert len(lab.cloudflare.requests) == asked
            (work / "synchronized").touch()  # systemd-timesyncd's first synchronisation
            wait_for(lambda: state_is(admin, "valid"), timeout=ISSUE_TIMEOUT, interval=0.5,
                     what=f"the ACME certificate ({b.output()[-3000:]})")
            tls = admin.tls()
            assert sorted(tls["certificate"]["names"]) == sorted([NAME, f"*.{NAME}"])
            assert tls["acme_state"]["challenge"] == "dns-01"
            assert tls["acme"]["cloudflare"] == {"api_token_set": True, "zone_id": "", "api_base": lab.cloudflare.api}
            wait_for(lambda: not refused(dot_port), what="DoT")
            answer, served = dot_ask(dot_port, trusting(pebble.roots(), ["dot"]), f"phone.{NAME}")
            assert answer.answer and served == tls["certificate"]["fingerprint_sha256"]
            posts = [p for m, p, ok in lab.cloudflare.requests[asked:] if m == "POST" and ok]
            assert len(posts) == 2 and not lab.cloudflare.records, "one TXT record per name, deleted after"

            # Bad input: 400 naming the field, nothing changes.
            before = admin.tls()
            for body, field in [({"acme": {"cloudflare": {"api_token": "two words"}}}, "acme.cloudflare.api_token"),
                                ({"acme": {"hosts": ["bad_name"]}}, "acme.hosts[0]"),
                                ({"acme": {"renew_before": "soon"}}, "acme.renew_before"),
                                ({"autocert": {"enabled": True, "hosts": [f"*.{NAME}"]}}, "autocert.hosts[0]"),
                                ({"acme": {"enabled": False}}, "acme.enabled"),
                                ({"directory_url": "ftp://x"}, "directory_url")]:
                status, res = admin.put_tls(body)
                assert status == 400, (body, res)
                assert [d["field"] for d in res["details"]] == [field], (body, res)
                assert TOKEN not in json.dumps(res)
            after = admin.tls()
            assert {k: v for k, v in after.items() if k != "acme_state"} == \
                {k: v for k, v in before.items() if k != "acme_state"}

            # A new token through the API: kept, applied, never shown.
            status, res = admin.put_tls({"acme": {"cloudflare": {"api_token": TOKEN + "x"}}})
            assert status == 200 and TOKEN not in json.dumps(res)
            status, res = admin.put_tls({"acme": {"cloudflare": {"api_token": TOKEN}}})
            assert status == 200
            status, config = admin.get("/api/config")
            status_e, events = admin.get("/api/events?limit=200")
            assert TOKEN not in json.dumps(config) and TOKEN not in json.dumps(events)
            assert "acme" in Path(b.log.name).read_text(errors="replace")  # the log does speak of it
            assert TOKEN not in Path(b.log.name).read_text(errors="replace"), "the token in the log"
    finally:
        pebble.stop()
