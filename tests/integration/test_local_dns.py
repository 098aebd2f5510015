"""Local DNS through the running server: seed 003 local records (round robin, wildcards,
auto-PTR, CNAME chase local and remote), seed 000 zones and records (every type, AA,
NXDOMAIN/NODATA with SOA, wildcards), zone import of a BIND-style file and export checked by
named-checkzone, a secondary zone transferred from a real NSD, and nothing local leaking
upstream. Queries with dnspython and dig."""

import shutil
import subprocess
import time

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

from tests.integration.test_axfr_nsd import nsd  # noqa: F401  (fixture: a real NSD primary)
from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess

BIND_FILE = """; a real-looking BIND zone file
$ORIGIN home.test.
$TTL 1h
@       IN SOA  ns1.home.test. hostmaster.home.test. (
                2026112401 ; serial
                3600       ; refresh
                900        ; retry
                1w         ; expire
                300 )      ; minimum
        IN NS   ns1
        IN MX   10 mail
ns1     IN A    192.0.2.53
mail    IN A    192.0.2.25
www     600 IN A 192.0.2.80
        IN AAAA 2001:db8::80
ftp     IN CNAME www
_sip._udp IN SRV 10 5 5060 sip.home.test.
sip     IN A    192.0.2.60
txt     IN TXT  "v=spf1 -all" "second ; string"
caa     IN CAA  0 issue "letsencrypt.org"
*.dyn   IN A    192.0.2.99
"""


def dig(b, *args):
    exe = shutil.which("dig")
    if exe is None:
        pytest.skip("dig is not installed (dnsutils)")
    out = subprocess.run([exe, "@127.0.0.1", "-p", str(b.dns_port), "+tries=1", "+time=3", *args],
                         capture_output=True, text=True, timeout=20)
    return out.stdout


def test_local_records_seed_003(tmp_path, upstream):
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        examples = [{"domain": "nas.local", "type": "A", "ips": ["192.168.1.100"], "ttl": 300},
                    {"domain": "server.local", "type": "AAAA", "ips": ["2001:db8::100"], "ttl": 600},
                    {"domain": "www.local", "type": "CNAME", "target": "nas.local", "ttl": 300},
                    {"domain": "web.local", "type": "A", "ips": ["192.168.1.10", "192.168.1.11", "192.168.1.12"],
                     "ttl": 300}]
        for body in examples:
            status, out = authed(b, token, "POST", "/api/localrecords", body)
            assert status == 200 and out["message"] == "Local record added successfully", out
        assert out["record"]["id"] == "web.local.:A:0" and out["record"]["domain"] == "web.local."
        status, listing = authed(b, token, "GET", "/api/localrecords")
        assert status == 200 and listing["total"] == 4
        cname = next(r for r in listing["records"] if r["type"] == "CNAME")
        assert cname == {"id": "www.local.:CNAME:0", "domain": "www.local.", "type": "CNAME", "ips": [],
                         "target": "nas.local.", "ttl": 300, "wildcard": False}
        for bad, field in (({"type": "A", "ips": ["1.2.3.4"]}, "domain"),
                           ({"domain": "x.local", "type": "MX", "ips": ["1.2.3.4"]}, "type"),
                           ({"domain": "x.local", "type": "A", "ips": ["1.2.3.999"]}, "ips"),
                           ({"domain": "x.local", "type": "A", "ips": []}, "ips"),
                           ({"domain": "x.local", "type": "CNAME"}, "target"),
                           ({"domain": "x.local", "type": "A", "ips": ["1.2.3.4"], "ttl": 0}, "ttl")):
            status, err = authed(b, token, "POST", "/api/localrecords", bad)
            assert status == 400 and any(field in d["field"] for d in err.get("details") or []), (bad, err)

        upstream.clear_log()
        r = b.query("nas.local")
        assert r.answer[0][0].address == "192.168.1.100" and r.answer[0].ttl == 300
        assert b.query("server.local", "AAAA").answer[0][0].address == "2001:db8::100"
        assert b.query("nas.local", "AAAA").rcode() == dns.rcode.NOERROR  # NODATA: local name, other type
        r = b.query("www.local")  # CNAME chased locally
        assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
        assert r.answer[1][0].address == "192.168.1.100"
        orders = {tuple(rr.address for rr in b.query("web.local").answer[0]) for _ in range(3)}
        assert len(orders) == 3 and all(sorted(o) == ["192.168.1.10", "192.168.1.11", "192.168.1.12"] for o in orders)
        ptr = b.query("100.1.168.192.in-addr.arpa", "PTR")  # auto-PTR from the A record
        assert str(ptr.answer[0][0].target) == "nas.local."
        ptr6 = b.query("0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR")
        assert str(ptr6.answer[0][0].target) == "server.local."
        assert upstream.queries() == []  # none of it went upstream

        # wildcards: any name below, dot-bounded; the exact name wins
        authed(b, token, "POST", "/api/localrecords", {"domain": "*.home.lan", "type": "A", "ips": ["192.168.1.5"]})
        authed(b, token, "POST", "/api/localrecords", {"domain": "nas.home.lan", "type": "A", "ips": ["192.168.1.6"]})
        assert b.query("plex.home.lan").answer[0][0].address == "192.168.1.5"
        assert b.query("a.b.home.lan").answer[0][0].address == "192.168.1.5"
        assert b.query("nas.home.lan").answer[0][0].address == "192.168.1.6"
        assert b.query("evilhome.lan").rcode() == dns.rcode.NXDOMAIN  # not the wildcard (and .lan stays home)
        assert b.query("home.lan").rcode() == dns.rcode.NXDOMAIN

        # CNAME to an outside name: resolved through the normal path, so filtering applies
        authed(b, token, "POST", "/api/localrecords",
               {"domain": "tv.local", "type": "CNAME", "target": "cdn.example.test"})
        r = b.query("tv.local")
        assert str(r.answer[0][0].target) == "cdn.example.test." and r.answer[1][0].address.startswith("10.")
        assert authed(b, token, "POST", "/api/denylist", {"domain": "cdn.example.test"})[0] == 200
        assert b.query("tv.local").answer[-1][0].address == "0.0.0.0"

        status, out = authed(b, token, "DELETE", "/api/localrecords/nas.local.:A:0")
        assert status == 200 and out["message"] == "Local record removed successfully"
        assert authed(b, token, "DELETE", "/api/localrecords/nas.local.:A:0")[0] == 404
        assert authed(b, token, "DELETE", "/api/localrecords/not-an-id")[0] == 400
        assert b.query("nas.local").rcode() == dns.rcode.NXDOMAIN  # gone, and .local stays home


def test_authoritative_zone_records_import_export(tmp_path, upstream):
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        status, zone = authed(b, token, "POST", "/api/zones", {"name": "lab.test", "type": "master"})
        assert status == 201 and zone["id"] and zone["name"] == "lab.test"
        records = [("www", "A", "192.0.2.10", None), ("www", "AAAA", "2001:db8::10", None),
                   ("alias", "CNAME", "www", None), ("@", "MX", "mail.lab.test.", 10),
                   ("mail", "A", "192.0.2.25", None),
                   ("txt", "TXT", '"hello world"', None), ("_http._tcp", "SRV", "0 5 80 www.lab.test.", None),
                   ("10", "PTR", "www.lab.test.", None), ("sub", "NS", "ns.elsewhere.test.", None),
                   ("@", "CAA", '0 issue "letsencrypt.org"', None), ("*.wild", "A", "192.0.2.99", None)]
        for name, rtype, value, prio in records:
            body = {"zone": "lab.test", "name": name, "type": rtype, "value": value}
            if prio is not None:
                body["priority"] = prio
            status, rec = authed(b, token, "POST", "/api/dns-records", body)
            assert status == 201 and rec["id"], (body, rec)
        status, err = authed(b, token, "POST", "/api/dns-records",
                             {"zone": "lab.test", "name": "alias", "type": "A", "value": "192.0.2.1"})
        assert status == 400  # CNAME exclusivity
        status, err = authed(b, token, "POST", "/api/dns-records",
                             {"zone": zone["id"], "name": "bad", "type": "A", "value": "300.1.1.1"})
        assert status == 400 and err["details"][0]["field"] == "value"

        upstream.clear_log()
        r = b.query("www.lab.test")
        assert r.flags & dns.flags.AA and r.answer[0][0].address == "192.0.2.10"
        assert b.query("www.lab.test", "AAAA").answer[0][0].address == "2001:db8::10"
        r = b.query("alias.lab.test")
        assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
        assert b.query("lab.test", "MX").answer[0][0].preference == 10
        assert b"hello world" in b.query("txt.lab.test", "TXT").answer[0][0].strings
        assert b.query("_http._tcp.lab.test", "SRV").answer[0][0].port == 80
        assert b.query("lab.test", "CAA").answer[0][0].value == b"letsencrypt.org"
        assert b.query("a.wild.lab.test").answer[0][0].address == "192.0.2.99"
        assert str(b.query("10.lab.test", "PTR").answer[0][0].target) == "www.lab.test."
        r = b.query("host.sub.lab.test")  # delegated: a referral, not an authoritative answer
        assert not r.answer and not r.flags & dns.flags.AA
        assert str(r.authority[0][0].target) == "ns.elsewhere.test."
        r = b.query("nope.lab.test")
        assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA
        assert r.authority[0].rdtype == dns.rdatatype.SOA and r.authority[0].ttl <= 300
        r = b.query("www.lab.test", "TXT")
        assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority[0].rdtype == dns.rdatatype.SOA
        assert "status: NXDOMAIN" in dig(b, "nope.lab.test", "A") and "flags: qr aa" in dig(b, "www.lab.test")
        assert upstream.queries() == []  # a name inside a local zone never goes upstream
        serial1 = b.query("lab.test", "SOA").answer[0][0].serial
        authed(b, token, "POST", "/api/dns-records",
               {"zone": "lab.test", "name": "new", "type": "A", "value": "192.0.2.11"})
        assert b.query("lab.test", "SOA").answer[0][0].serial > serial1  # bumped on every change

        # import a BIND-style file, export, and let BIND's own checker judge the export
        status, home = authed(b, token, "POST", "/api/zones", {"name": "home.test", "type": "master"})
        status, out = authed(b, token, "POST", f"/api/zones/{home['id']}/import", {"zone": BIND_FILE})
        assert status == 200, out
        assert b.query("www.home.test").answer[0].ttl == 600
        assert str(b.query("ftp.home.test").answer[0][0].target) == "www.home.test."
        assert b.query("x.dyn.home.test").answer[0][0].address == "192.0.2.99"
        strings = b.query("txt.home.test", "TXT").answer[0][0].strings
        assert [s.decode() for s in strings] == ["v=spf1 -all", "second ; string"]
        status, bad = authed(b, token, "POST", f"/api/zones/{home['id']}/import",
                             {"zone": "$ORIGIN home.test.\nwww IN A 1.2.3\n"})
        assert status == 400 and "line" in bad["message"].lower()
        assert b.query("www.home.test").answer[0][0].address == "192.0.2.80"  # the bad import changed nothing
        checker = shutil.which("named-checkzone")
        for name in ("lab.test", "home.test"):
            status, text = b.http("GET", f"/api/zones/{name}/export", headers={"Authorization": f"Bearer {token}"})
            assert status == 200 and "SOA" in text
            if checker:
                path = tmp_path / f"{name}.zone"
                path.write_text(text)
                done = subprocess.run([checker, "-i", "local", name, str(path)], capture_output=True, text=True)
                assert done.returncode == 0, done.stdout + done.stderr

        # the local zone's records are also dns-records (one store, two faces)
        authed(b, token, "POST", "/api/localrecords", {"domain": "nas.lan", "type": "A", "ips": ["192.168.1.9"]})
        all_records = authed(b, token, "GET", "/api/dns-records")[1]
        assert any(r.get("name", "").rstrip(".") == "nas.lan" for r in all_records["records"]), all_records
        assert authed(b, token, "DELETE", f"/api/zones/{zone['id']}")[0] == 200
        assert b.query("www.lab.test").flags & dns.flags.AA == 0  # gone: now asked upstream


def test_secondary_zone_from_a_real_nsd_primary(tmp_path, upstream, nsd):  # noqa: F811
    with BurrowProcess(tmp_path / "b", [upstream.address]) as b:
        token = admin_token(b)
        status, zone = authed(b, token, "POST", "/api/zones",
                              {"name": "lab.test", "type": "slave", "primaries": [f"127.0.0.1:{nsd.port}"]})
        assert status == 201, zone
        deadline = time.monotonic() + 20
        r = None
        while time.monotonic() < deadline:
            r = b.query("h5.lab.test")
            if r.rcode() == dns.rcode.NOERROR and r.answer:
                break
            time.sleep(0.2)
        assert r.answer[0][0].address == "10.0.0.5" and r.flags & dns.flags.AA
        assert b.query("h2999.lab.test").answer[0][0].address == "10.0.11.183"
        assert b.query("nope.lab.test").rcode() == dns.rcode.NXDOMAIN
        upstream.clear_log()
        b.query("h7.lab.test")
        assert upstream.queries() == []
        viewer_pw = "viewer-pass-123"
        authed(b, token, "POST", "/api/users", {"username": "v", "password": viewer_pw, "role": "viewer"})
        vtok = b.http("POST", "/api/auth/login", {"username": "v", "password": viewer_pw})[1]["access_token"]
        assert authed(b, vtok, "GET", "/api/zones")[0] == 200
        for method, path, body in (("POST", "/api/zones", {"name": "x.test", "type": "master"}),
                                   ("POST", "/api/dns-records",
                                    {"zone": "lab.test", "name": "a", "type": "A", "value": "1.2.3.4"}),
                                   ("POST", "/api/localrecords", {"domain": "a.lan", "type": "A", "ips": ["1.2.3.4"]}),
                                   ("DELETE", f"/api/zones/{zone['id']}", None)):
            assert authed(b, vtok, method, path, body)[0] == 403


def test_cli_import_reaches_the_running_server(tmp_path, upstream):
    import sys
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        zone_file = tmp_path / "home.zone"
        zone_file.write_text(BIND_FILE)
        run = subprocess.run([sys.executable, "-m", "burrow", "zone", "--config", str(b.config_path), "import",
                              "home.test", str(zone_file)], capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr
        assert "running Burrow reloaded" in run.stdout
        deadline = time.monotonic() + 30  # bounds a failure only
        while time.monotonic() < deadline and not b.query("www.home.test").answer:
            time.sleep(0.1)
        r = b.query("www.home.test")
        assert r.answer[0][0].address == "192.0.2.80" and r.flags & dns.flags.AA
        bad = tmp_path / "bad.zone"
        bad.write_text("$ORIGIN home.test.\nwww IN A 1.2.3\n")
        run = subprocess.run([sys.executable, "-m", "burrow", "zone", "--config", str(b.config_path), "import",
                              "home.test", str(bad)], capture_output=True, text=True, timeout=30)
        assert run.returncode == 1 and "line 2" in run.stderr
        out = subprocess.run([sys.executable, "-m", "burrow", "zone", "--config", str(b.config_path), "export",
                              "home.test"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "www" in out.stdout and "192.0.2.80" in out.stdout
