"""Burrow forwarding to real resolvers from Debian (unbound, dnsmasq) started by the test."""

from __future__ import annotations

import shutil
import subprocess
import time

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.support.burrow_proc import BurrowProcess, free_port

ZONE = [
    ("www.real.test", "A", "192.0.2.10"),
    ("alias.real.test", "CNAME", "www.real.test"),
    ("txt.real.test", "TXT", '"hello world"'),
    ("v6.real.test", "AAAA", "2001:db8::10"),
    ("mail.real.test", "MX", "10 www.real.test"),
]


def wait_dns(port, name="www.real.test", timeout=30.0):  # bounds a failure only
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=0.3)
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("upstream did not come up")


def start_unbound(tmp_path, port):
    exe = shutil.which("unbound") or "/usr/sbin/unbound"
    if not shutil.which(exe):
        pytest.skip("unbound is not installed (scripts/test installs it)")
    data = "\n".join(f"  local-data: '{n}. 300 IN {t} {v}'" for n, t, v in ZONE)
    conf = tmp_path / "unbound.conf"
    conf.write_text(f"""server:
  interface: 127.0.0.1
  port: {port}
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "{tmp_path}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "real.test." static
  local-data: "real.test. 3600 IN SOA ns.real.test. host.real.test. 1 3600 900 86400 120"
{data}
remote-control:
  control-enable: no
""")
    return subprocess.Popen([exe, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def start_dnsmasq(tmp_path, port):
    exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not shutil.which(exe):
        pytest.skip("dnsmasq is not installed (scripts/test installs dnsmasq-base)")
    args = [exe, "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", f"--port={port}",
            "--listen-address=127.0.0.1", "--bind-interfaces", "--local-ttl=300", "--user=root" if
            __import__("os").geteuid() == 0 else "--user=nobody", "--pid-file=",
            "--local=/real.test/"]
    for n, t, v in ZONE:
        if t == "A":
            args.append(f"--host-record={n},{v}")
        elif t == "AAAA":
            args.append(f"--host-record={n},{v}")
        elif t == "CNAME":
            args.append(f"--cname={n},{v}")
        elif t == "TXT":
            args.append(f"--txt-record={n},{v.strip(chr(34))}")
        elif t == "MX":
            pref, host = v.split()
            args.append(f"--mx-host={n},{host},{pref}")
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(params=["unbound", "dnsmasq"])
def real(request, tmp_path):
    port = free_port()
    proc = (start_unbound if request.param == "unbound" else start_dnsmasq)(tmp_path, port)
    try:
        wait_dns(port)
        with BurrowProcess(tmp_path / "burrow", [f"127.0.0.1:{port}"]) as b:
            yield request.param, b
    finally:
        proc.terminate()
        proc.wait(5)


def test_record_types_forwarded_and_cached(real):
    kind, b = real
    a = b.query("www.real.test")
    assert a.answer[0][0].address == "192.0.2.10"
    cname = b.query("alias.real.test")
    assert [rr.rdtype for rr in cname.answer][0] == dns.rdatatype.CNAME
    if cname.answer[-1].rdtype == dns.rdatatype.A:  # dnsmasq follows the chain itself
        assert cname.answer[-1][0].address == "192.0.2.10"
    else:  # unbound's local-data gives the CNAME alone; the client follows it
        assert cname.answer[0][0].target.to_text() == "www.real.test."
    txt = b.query("txt.real.test", "TXT")
    assert b"hello" in b"".join(txt.answer[0][0].strings)
    assert b.query("v6.real.test", "AAAA").answer[0][0].address == "2001:db8::10"
    mx = b.query("mail.real.test", "MX")
    assert mx.answer[0][0].preference == 10
    time.sleep(1.1)
    again = b.query("www.real.test")
    assert again.answer[0].ttl < 300  # from cache, aged


def test_nxdomain_from_real_resolver(real):
    kind, b = real
    r = b.query("missing.real.test")
    assert r.rcode() == dns.rcode.NXDOMAIN
    if kind == "unbound":  # dnsmasq --local answers without an SOA
        assert r.authority and r.authority[0].rdtype == dns.rdatatype.SOA


def test_tcp_client_through_real_resolver(real):
    _, b = real
    r = b.query("www.real.test", tcp=True)
    assert r.answer[0][0].address == "192.0.2.10"
