"""DNS over TLS, DNS over HTTPS and HTTPS against the real ``burrow`` process.

A test CA and server certificates are made here (tests/support/tlscerts.py); Burrow serves a
manual pair issued by it, and clients verify against that CA: Python's ssl, httpx, and kdig
(knot-dnsutils) as an independent DoT and DoH client. One Burrow process serves the module's
manual-certificate tests (the last ones change its TLS settings through the API); one more is
started for the self-signed certificate.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import shutil
import socket
import ssl
import stat
import struct
import subprocess
import time
import uuid
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import httpx
import pytest

from tests.support.burrow_proc import BurrowProcess, free_port
from tests.support.timing import wait_for
from tests.support.tlscerts import TestCA, fingerprint_of_der, now, write_pair
from tests.support.upstream_client import TestUpstream

NAME = "dns.test"
HANDSHAKE_TIMEOUT = 1.0
ADMIN = {"username": "admin", "password": "Owner-Passphrase-2024"}


@pytest.fixture(scope="module")
def up():
    with TestUpstream() as u:
        yield u


@pytest.fixture(scope="module")
def ca():
    return TestCA()


@pytest.fixture(scope="module")
def pki(ca, tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    cert, key = write_pair(d, "server", ca.issue([NAME], ["127.0.0.1"]))
    return {"dir": d, "ca": ca.write(d / "ca.pem"), "cert": cert, "key": key}


@pytest.fixture(scope="module")
def tb(up, pki, tmp_path_factory):
    """Burrow with the CA's certificate (manual), DoT and HTTPS on, HSTS on."""
    dot_port, https_port = free_port(), free_port()
    b = BurrowProcess(tmp_path_factory.mktemp("burrow"), [up.address], config={"tls": {
        "mode": "manual", "cert_file": str(pki["cert"]), "key_file": str(pki["key"]),
        "dot_enabled": True, "dot_address": f"127.0.0.1:{dot_port}",
        "https_address": f"127.0.0.1:{https_port}", "hsts": True, "handshake_timeout": HANDSHAKE_TIMEOUT}})
    # kdig names the certificate's name (dns.test) in :authority: the certificate's names are the
    # box's own in the Host check (api/origin.py), with no server.allowed_hosts entry for it
    with b:
        b.dot_port, b.https_port = dot_port, https_port
        yield b


# ---- clients ----------------------------------------------------------------------------------

def client_context(ca_file: Path, alpn: list[str] | None = None, **kw) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def dot_connect(port: int, ctx: ssl.SSLContext, name: str = NAME, timeout: float = 10.0, **kw) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=name, **kw)
    except BaseException:
        raw.close()
        raise


def send_msg(sock, msg: dns.message.Message) -> None:
    wire = msg.to_wire()
    sock.sendall(struct.pack("!H", len(wire)) + wire)


def read_exact(sock, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def read_msg(sock) -> dns.message.Message:
    size = struct.unpack("!H", read_exact(sock, 2))[0]
    return dns.message.from_wire(read_exact(sock, size))


def dot_query(port: int, ca_file: Path, name: str, rdtype: str = "A", **make_kw) -> dns.message.Message:
    with dot_connect(port, client_context(ca_file, ["dot"])) as s:
        send_msg(s, dns.message.make_query(name, rdtype, **make_kw))
        return read_msg(s)


def served_fingerprint(port: int) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with dot_connect(port, ctx) as s:
        return fingerprint_of_der(s.getpeercert(binary_form=True))


def https(b, ca_file: Path) -> httpx.Client:
    return httpx.Client(base_url=f"https://127.0.0.1:{b.https_port}", verify=client_context(ca_file), timeout=30)


def b64(wire: bytes) -> str:
    return base64.urlsafe_b64encode(wire).rstrip(b"=").decode()


def unique(prefix: str = "q") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}.example.com"


# ---- DNS over TLS -----------------------------------------------------------------------------

def test_dot_answers_through_the_chain_with_tls13_and_alpn_dot(tb, pki):
    with dot_connect(tb.dot_port, client_context(pki["ca"], ["dot"])) as s:
        assert s.version() == "TLSv1.3" and s.selected_alpn_protocol() == "dot"
        send_msg(s, dns.message.make_query("www.example.com", "A"))
        r = read_msg(s)
        assert r.rcode() == dns.rcode.NOERROR and r.answer
        send_msg(s, dns.message.make_query("doubleclick.burrow.test", "A"))  # the same connection again
        assert read_msg(s).rcode() in (dns.rcode.NXDOMAIN, dns.rcode.NOERROR)


def test_dot_speaks_tls12_too(tb, pki):
    ctx = client_context(pki["ca"], ["dot"], maximum_version=ssl.TLSVersion.TLSv1_2)
    with dot_connect(tb.dot_port, ctx) as s:
        assert s.version() == "TLSv1.2"
        send_msg(s, dns.message.make_query("www.example.com", "A"))
        assert read_msg(s).answer


def test_dot_pipelined_queries_are_answered_as_ready(tb, up, pki):
    slow, fast = unique("slow"), unique("fast")
    up.set_rule(slow, delay_ms=600)  # under the test process's 1 s upstream timeout
    with dot_connect(tb.dot_port, client_context(pki["ca"], ["dot"])) as s:
        q1, q2 = dns.message.make_query(slow, "A"), dns.message.make_query(fast, "A")
        q1.id, q2.id = 1111, 2222
        w1, w2 = q1.to_wire(), q2.to_wire()
        s.sendall(struct.pack("!H", len(w1)) + w1 + struct.pack("!H", len(w2)) + w2)  # one write
        first, second = read_msg(s), read_msg(s)
    assert (first.id, second.id) == (2222, 1111)  # the fast one did not wait behind the slow one
    assert first.question[0].name.to_text().rstrip(".") == fast and second.answer


def test_a_client_verifying_the_name_refuses_a_wrong_one(tb, pki):
    with pytest.raises(ssl.SSLCertVerificationError, match="match|mismatch"):
        dot_connect(tb.dot_port, client_context(pki["ca"]), name="wrong.test")
    other_ca = TestCA("another CA")
    path = pki["dir"] / "other-ca.pem"
    other_ca.write(path)
    with pytest.raises(ssl.SSLCertVerificationError):
        dot_connect(tb.dot_port, client_context(path))


def test_a_client_stalling_mid_handshake_is_cut_at_the_deadline_while_others_are_served(tb, pki):
    stalled = socket.create_connection(("127.0.0.1", tb.dot_port), timeout=30)
    try:
        stalled.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's first bytes, then nothing
        started = time.monotonic()
        r = dot_query(tb.dot_port, pki["ca"], "www.example.com")  # served meanwhile
        assert r.answer
        try:
            data = stalled.recv(4096)
        except ConnectionResetError:
            data = b""
        elapsed = time.monotonic() - started
    finally:
        stalled.close()
    assert data == b""  # closed by the server, with nothing said
    # the handshake deadline (1 s), not the idle timeout (30 s); generous for a loaded machine
    assert elapsed < 20


def test_dnssec_records_pass_over_dot_and_doh(tb, up, pki):
    name = unique("signed")
    up.set_rule(name, records={"A": ["192.0.2.10"]}, extra_answer=[
        f"{name}. 300 IN RRSIG A 13 3 300 20300101000000 20200101000000 4711 example.com. c2lnbmF0dXJlIGJ5dGVz"])
    r = dot_query(tb.dot_port, pki["ca"], name, use_edns=0, want_dnssec=True)
    kinds = {dns.rdatatype.to_text(rrset.rdtype) for rrset in r.answer}
    assert kinds == {"A", "RRSIG"} and r.flags & dns.flags.RD
    assert r.opt is not None and r.ednsflags & dns.flags.DO
    q = dns.message.make_query(name, "A", use_edns=0, want_dnssec=True)
    q.id = 0
    with https(tb, pki["ca"]) as c:
        res = c.post("/dns-query", content=q.to_wire(), headers={"Content-Type": "application/dns-message"})
    assert res.status_code == 200
    r = dns.message.from_wire(res.content)
    assert {dns.rdatatype.to_text(rrset.rdtype) for rrset in r.answer} == {"A", "RRSIG"}
    plain = dot_query(tb.dot_port, pki["ca"], name)  # no DO: no signatures
    assert {dns.rdatatype.to_text(rrset.rdtype) for rrset in plain.answer} == {"A"}


# ---- DNS over HTTPS ---------------------------------------------------------------------------

def test_doh_get_post_and_json_with_cache_control_from_the_smallest_ttl(tb, up, pki):
    name = unique("doh")
    up.set_rule(name, records={"A": ["192.0.2.1", "192.0.2.2"]}, ttl=123)
    q = dns.message.make_query(name, "A")
    q.id = 0
    with https(tb, pki["ca"]) as c:
        get = c.get("/dns-query", params={"dns": b64(q.to_wire())}, headers={"Accept": "application/dns-message"})
        assert get.status_code == 200 and get.headers["content-type"] == "application/dns-message"
        r = dns.message.from_wire(get.content)
        assert sorted(rr.address for rr in r.answer[0]) == ["192.0.2.1", "192.0.2.2"]
        age = int(get.headers["cache-control"].removeprefix("max-age="))
        assert 0 < age <= 123 and age == min(rrset.ttl for rrset in r.answer)
        post = c.post("/dns-query", content=q.to_wire(), headers={"Content-Type": "application/dns-message"})
        assert post.status_code == 200 and dns.message.from_wire(post.content).answer
        assert post.http_version == "HTTP/1.1" and post.headers.get("connection") != "close"  # kept alive
        js = c.get("/dns-query", params={"name": name, "type": "A"}, headers={"Accept": "application/dns-json"})
        assert js.status_code == 200 and js.headers["content-type"] == "application/dns-json"
        body = js.json()
        assert body["Status"] == 0 and body["RD"] and body["RA"] and not body["TC"]
        assert body["Question"] == [{"name": f"{name}.", "type": 1}]
        assert sorted(a["data"] for a in body["Answer"]) == ["192.0.2.1", "192.0.2.2"]
        assert all(a["type"] == 1 and 0 < a["TTL"] <= 123 for a in body["Answer"])
        assert js.headers["cache-control"].startswith("max-age=")
        nx = c.get("/dns-query", params={"name": "nothing.invalid", "type": "AAAA"}).json()
        assert nx["Status"] == 3


def test_doh_refuses_bad_input_with_the_error_shape(tb, pki):
    with https(tb, pki["ca"]) as c:
        bad = c.get("/dns-query", params={"dns": "!!notbase64"})
        assert bad.status_code == 400 and bad.json()["details"][0]["field"] == "dns"
        short = c.get("/dns-query", params={"dns": b64(b"\x00\x01")})
        assert short.status_code == 400 and "message" in short.json()
        wrong_type = c.post("/dns-query", content=b"\x00" * 20, headers={"Content-Type": "text/plain"})
        assert wrong_type.status_code == 415
        big = c.post("/dns-query", content=b"\x00" * 70000, headers={"Content-Type": "application/dns-message"})
        assert big.status_code == 413
        name = c.get("/dns-query", params={"name": "bad..name", "type": "A"})
        assert name.status_code == 400 and name.json()["details"][0]["field"] == "name"


def test_doh_over_plain_http_from_loopback_is_served(tb):
    q = dns.message.make_query("www.example.com", "A")
    res = httpx.get(f"http://127.0.0.1:{tb.web_port}/dns-query", params={"dns": b64(q.to_wire())}, timeout=30)
    assert res.status_code == 200 and dns.message.from_wire(res.content).answer


# ---- kdig, an independent client --------------------------------------------------------------

def kdig(*args: str) -> str:
    if shutil.which("kdig") is None:
        pytest.skip("kdig (knot-dnsutils) is not installed")
    out = subprocess.run(["kdig", *args], capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr


def test_kdig_over_tls(tb, up, pki):
    name = unique("kdig")
    up.set_rule(name, records={"A": ["192.0.2.44"]})
    out = kdig("@127.0.0.1", "-p", str(tb.dot_port), "+tls", f"+tls-ca={pki['ca']}", f"+tls-hostname={NAME}",
               name, "A")
    assert "192.0.2.44" in out and "TLS" in out, out
    bad = kdig("@127.0.0.1", "-p", str(tb.dot_port), "+tls", f"+tls-ca={pki['ca']}", "+tls-hostname=wrong.test",
               name, "A")
    assert "192.0.2.44" not in bad and "ERROR" in bad, bad


def test_kdig_over_https(tb, up, pki):
    """kdig's DoH speaks HTTP/2 only (libnghttp2, ALPN h2): POST by default, GET with +https-get."""
    name = unique("kdig")
    up.set_rule(name, records={"A": ["192.0.2.45"]})
    for how, session in (("+https", "HTTP/2-POST"), ("+https-get", "HTTP/2-GET")):
        out = kdig("@127.0.0.1", "-p", str(tb.https_port), how, f"+tls-ca={pki['ca']}", f"+tls-hostname={NAME}",
                   name, "A")
        assert "192.0.2.45" in out and f"({session})" in out and "(status: 200)" in out, out


# ---- HTTPS for the admin page and the API -----------------------------------------------------

def test_plain_http_redirects_to_https_except_health_metrics_and_loopback_doh(tb):
    base = f"http://127.0.0.1:{tb.web_port}"
    with httpx.Client(timeout=30) as c:
        page = c.get(f"{base}/api/system?x=1", headers={"Host": "burrow.local"})
        assert page.status_code == 301
        assert page.headers["location"] == f"https://burrow.local:{tb.https_port}/api/system?x=1"
        write = c.post(f"{base}/api/auth/login", json=ADMIN)
        assert write.status_code == 308 and write.headers["location"].startswith("https://127.0.0.1:")
        for path in ("/healthz", "/readyz", "/api/health"):
            res = c.get(base + path)
            assert res.status_code in (200, 503), (path, res.status_code)
            assert "strict-transport-security" not in res.headers
        assert c.get(f"{base}/metrics").status_code == 401  # served (its own auth), not redirected


def test_https_answers_carry_hsts_and_sessions_get_secure_cookies(tb, pki):
    with https(tb, pki["ca"]) as c:
        assert c.get("/healthz").headers["strict-transport-security"] == "max-age=31536000"
        setup = c.post("/api/auth/setup", json=ADMIN)
        assert setup.status_code in (201, 409)
        login = c.post("/api/auth/login?cookie=1", json=ADMIN)
        assert login.status_code == 200
        cookies = login.headers.get_list("set-cookie")
        assert len(cookies) == 4 and all("; Secure" in v for v in cookies)
        page = c.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]


# ---- GET/PUT /api/config/tls and the live reload ----------------------------------------------

@contextlib.contextmanager
def admin_client(tb, pki):
    with https(tb, pki["ca"]) as c:
        c.post("/api/auth/setup", json=ADMIN)
        token = c.post("/api/auth/login", json=ADMIN).json()["access_token"]
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def test_get_config_shows_the_certificate_it_serves_and_never_a_key(tb, pki):
    with admin_client(tb, pki) as c:
        body = c.get("/api/config").json()
    tls = body["tls"]
    assert tls["mode"] == "manual" and tls["dot_enabled"] is True and tls["hsts"] is True
    assert tls["dot_address"] == f"127.0.0.1:{tb.dot_port}" and tls["https_address"] == f"127.0.0.1:{tb.https_port}"
    cert = tls["certificate"]
    assert cert["names"] == [NAME, "127.0.0.1"] and cert["subject"] == f"CN={NAME}"
    assert cert["fingerprint_sha256"] == served_fingerprint(tb.dot_port)
    assert "PRIVATE KEY" not in str(body)


def test_put_tls_refuses_bad_files_naming_the_field_and_changes_nothing(tb, ca, pki):
    other_cert, other_key = write_pair(pki["dir"], "other", ca.issue(["other.test"]))
    expired = write_pair(pki["dir"], "expired", ca.issue([NAME], not_before=now().replace(year=2020),
                                                         not_after=now().replace(year=2021)))
    with admin_client(tb, pki) as c:
        before = c.get("/api/config").json()["tls"]
        cases = [({"cert_file": str(pki["dir"] / "missing.pem")}, "cert_file"),
                 ({"cert_file": str(other_cert)}, "key_file"),  # the old key does not match it
                 ({"cert_file": str(expired[0]), "key_file": str(expired[1])}, "cert_file"),
                 ({"mode": "autocert"}, "autocert.hosts"), ({"dot_address": "nonsense"}, "dot_address"),
                 ({"mode": "sideways"}, "mode"), ({"dot_enabled": "maybe"}, "dot_enabled")]
        for body, field in cases:
            res = c.put("/api/config/tls", json=body)
            assert res.status_code == 400, (body, res.text)
            assert [d["field"] for d in res.json()["details"]] == [field], (body, res.text)
        assert c.get("/api/config").json()["tls"] == before
        assert served_fingerprint(tb.dot_port) == before["certificate"]["fingerprint_sha256"]
        del other_key


def test_put_tls_moves_and_stops_listeners_live_and_switches_the_certificate(tb, ca, pki):
    new_port = free_port()
    new_cert, new_key = write_pair(pki["dir"], "next", ca.issue(["next.test"], ["127.0.0.1"]))
    with admin_client(tb, pki) as c:
        res = c.put("/api/config/tls", json={"dot_address": f"127.0.0.1:{new_port}", "cert_file": str(new_cert),
                                             "key_file": str(new_key)})
        assert res.status_code == 200, res.text
        assert res.json()["config"]["certificate"]["names"] == ["next.test", "127.0.0.1"]
        wait_for(lambda: _refused(tb.dot_port), what="the old DoT port to close")
        with dot_connect(new_port, client_context(pki["ca"], ["dot"]), name="next.test") as s:
            send_msg(s, dns.message.make_query("www.example.com", "A"))
            assert read_msg(s).answer
            assert fingerprint_of_der(s.getpeercert(binary_form=True)) == \
                c.get("/api/config").json()["tls"]["certificate"]["fingerprint_sha256"]
        assert c.put("/api/config/tls", json={"dot_enabled": False}).status_code == 200
        wait_for(lambda: _refused(new_port), what="DoT to stop")
        events = c.get("/api/events", params={"type": "config.changed"})
        assert events.status_code == 200 and "tls" in events.text
        # back as the module started, for the tests below
        res = c.put("/api/config/tls", json={"dot_enabled": True, "dot_address": f"127.0.0.1:{tb.dot_port}",
                                             "cert_file": str(pki["cert"]), "key_file": str(pki["key"])})
        assert res.status_code == 200, res.text
    assert dot_query(tb.dot_port, pki["ca"], "www.example.com").answer


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def test_changed_pem_files_are_served_from_the_next_handshake_without_a_restart(tb, ca, pki):
    """Overwrite the files in place: the reload swaps the context; then let the new certificate
    expire while it serves, and a verifying client refuses it."""
    before = served_fingerprint(tb.dot_port)
    cert_pem, key_pem = ca.issue([NAME], ["127.0.0.1"], not_after=now() + dt.timedelta(seconds=8))
    pki["key"].write_bytes(key_pem)
    pki["cert"].write_bytes(cert_pem)
    wait_for(lambda: served_fingerprint(tb.dot_port) != before, what="the new certificate to serve")
    with dot_connect(tb.dot_port, client_context(pki["ca"], ["dot"])) as s:  # trusted and valid for now
        send_msg(s, dns.message.make_query("www.example.com", "A"))
        assert read_msg(s).answer
    wait_for(lambda: _expired_refusal(tb.dot_port, pki["ca"]), timeout=30, interval=0.5,
             what="the served certificate to expire")


def _expired_refusal(port: int, ca_file: Path) -> bool:
    try:
        dot_connect(port, client_context(ca_file)).close()
        return False
    except ssl.SSLCertVerificationError as e:
        assert "expired" in str(e), e
        return True


# ---- the self-signed certificate (a second process) -------------------------------------------

def test_self_signed_certificate_is_made_pinnable_and_resumes_sessions(up, tmp_path):
    dot_port, https_port = free_port(), free_port()
    b = BurrowProcess(tmp_path / "ss", [up.address], config={"tls": {
        "mode": "self_signed", "dot_enabled": True, "dot_address": f"127.0.0.1:{dot_port}",
        "https_address": f"127.0.0.1:{https_port}"}})
    with b:
        pem = b.data_dir / "tls" / "self-signed.pem"
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
        served = served_fingerprint(dot_port)
        with httpx.Client(base_url=f"https://127.0.0.1:{https_port}", verify=insecure, timeout=30) as c:
            c.post("/api/auth/setup", json=ADMIN)
            token = c.post("/api/auth/login", json=ADMIN).json()["access_token"]
            cert = c.get("/api/config", headers={"Authorization": f"Bearer {token}"}).json()["tls"]["certificate"]
            assert "strict-transport-security" not in c.get("/healthz").headers  # hsts off by default
        assert cert["fingerprint_sha256"] == served
        assert "burrow.local" in cert["names"] and "127.0.0.1" in cert["names"]
        # pinned: a client that trusts exactly this certificate verifies it by name
        raw = pem.read_bytes()
        cert_only = raw[raw.index(b"-----BEGIN CERTIFICATE-----"):]
        pinned = ssl.create_default_context(cadata=cert_only.decode())
        with dot_connect(dot_port, pinned, name="burrow.local") as s:
            send_msg(s, dns.message.make_query("www.example.com", "A"))
            assert read_msg(s).answer
        # session resumption (TLS 1.2 session cache; 1.3 tickets are on as well)
        ctx12 = ssl.create_default_context(cadata=cert_only.decode())
        ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
        with dot_connect(dot_port, ctx12, name="burrow.local") as s:
            session = s.session
        with dot_connect(dot_port, ctx12, name="burrow.local", session=session) as s:
            assert s.session_reused
    # the next start keeps the same certificate (what the owner pinned)
    with b:
        assert served_fingerprint(dot_port) == served
        assert hashlib.sha256(pem.read_bytes()).digest()  # still there, still whole
