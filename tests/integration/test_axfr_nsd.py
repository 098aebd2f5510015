"""Secondary zones against a real primary: Debian's NSD on 127.0.0.1, random high port.

NSD runs in the foreground (``nsd -c nsd.conf -d``) as the invoking user: no chroot, no user
switch (``username: ""``), no nsd.db (``database: ""``), remote control off, every file in the
test's tmp dir. The zone is big enough (3000 A records) that NSD splits the AXFR over several
messages; the expected record values are written out by hand and also cross-checked by parsing
the same zone file with dnspython.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdatatype
import dns.zone
import pytest

from burrow.zones import axfr as axfr_mod
from burrow.zones.axfr import AxfrError, SecondaryZone, axfr, query_soa_serial
from burrow.zones.records import Record
from tests.support.burrow_proc import free_port

NSD = "/usr/sbin/nsd"
ZONE = "lab.test"
HOSTS = 3000

ZONE_HEAD = r"""$ORIGIN lab.test.
$TTL 300
@           IN SOA  ns1 hostmaster {serial} 3600 600 86400 300
@           IN NS   ns1
@           IN NS   ns2.example.
@           IN MX   10 mail
@           IN MX   20 backup.example.
@           IN TXT  "v=spf1 mx -all"
@           IN CAA  0 issue "letsencrypt.org"
@           IN CAA  0 iodef "mailto:sec@lab.test"
ns1         IN A    192.0.2.1
mail        IN A    192.0.2.2
mail        IN AAAA 2001:db8::2
www   3600  IN AAAA 2001:db8::80
MixedCase   IN A    192.0.2.5
alias       IN CNAME www
quoted      IN TXT  "say \"hi\"" "caf\195\169" "back\\slash" "semi;colon"
_sip._tcp   IN SRV  10 20 5060 sip.example.
_imaps._tcp IN SRV  0 1 993 mail
5.2.0.192.in-addr IN PTR host.lab.test.
*.wild      IN A    192.0.2.9
info        IN HINFO "ARM64" "Debian"
sip         IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp
host        IN SSHFP 4 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
_443._tcp.www IN TLSA 3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
odd         IN TYPE65534 \# 3 010203
"""

# What burrow must produce for the hand-written records (owner, type, ttl, value).
EXPECTED = [
    Record("lab.test", "NS", 300, "ns1.lab.test."),
    Record("lab.test", "NS", 300, "ns2.example."),
    Record("lab.test", "MX", 300, "10 mail.lab.test."),
    Record("lab.test", "MX", 300, "20 backup.example."),
    Record("lab.test", "TXT", 300, '"v=spf1 mx -all"'),
    Record("lab.test", "CAA", 300, '0 issue "letsencrypt.org"'),
    Record("lab.test", "CAA", 300, '0 iodef "mailto:sec@lab.test"'),
    Record("ns1.lab.test", "A", 300, "192.0.2.1"),
    Record("mail.lab.test", "A", 300, "192.0.2.2"),
    Record("mail.lab.test", "AAAA", 300, "2001:db8::2"),
    Record("www.lab.test", "AAAA", 3600, "2001:db8::80"),
    Record("mixedcase.lab.test", "A", 300, "192.0.2.5"),
    Record("alias.lab.test", "CNAME", 300, "www.lab.test."),
    Record("quoted.lab.test", "TXT", 300, r'"say \"hi\"" "caf\195\169" "back\\slash" "semi;colon"'),
    Record("_sip._tcp.lab.test", "SRV", 300, "10 20 5060 sip.example."),
    Record("_imaps._tcp.lab.test", "SRV", 300, "0 1 993 mail.lab.test."),
    Record("5.2.0.192.in-addr.lab.test", "PTR", 300, "host.lab.test."),
    Record("*.wild.lab.test", "A", 300, "192.0.2.9"),
    Record("info.lab.test", "HINFO", 300, '"ARM64" "Debian"'),
    Record("sip.lab.test", "NAPTR", 300, '100 10 "S" "SIP+D2U" "" _sip._udp.lab.test.'),
    Record("host.lab.test", "SSHFP", 300, "4 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"),
    Record("_443._tcp.www.lab.test", "TLSA", 300,
           "3 1 1 00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"),
    Record("odd.lab.test", "TYPE65534", 300, r"\# 3 010203"),
]


def soa(serial: int) -> Record:
    return Record("lab.test", "SOA", 300, f"ns1.lab.test. hostmaster.lab.test. {serial} 3600 600 86400 300")


def zone_text(serial: int, extra: str = "") -> str:
    hosts = "".join(f"h{i} IN A 10.{i // 65536}.{i // 256 % 256}.{i % 256}\n" for i in range(HOSTS))
    return ZONE_HEAD.format(serial=serial) + hosts + extra


def host_records() -> list[Record]:
    return [Record(f"h{i}.lab.test", "A", 300, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
            for i in range(HOSTS)]


def run(coro, limit: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, limit))


class Nsd:
    """One NSD process serving lab.test (transfers allowed to 127.0.0.0/8) and closed.test
    (transfers allowed to nobody)."""

    def __init__(self, root: Path, binary: str):
        self.root = root
        self.binary = binary
        self.port = free_port()
        self.zonefile = root / "lab.test.zone"
        self.log = root / "nsd.log"
        self.proc: subprocess.Popen | None = None

    def write_config(self) -> None:
        r = self.root
        (r / "nsd.conf").write_text(f"""server:
    ip-address: 127.0.0.1
    port: {self.port}
    do-ip4: yes
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{r}"
    database: ""
    pidfile: "{r}/nsd.pid"
    xfrdfile: "{r}/xfrd.state"
    xfrdir: "{r}"
    zonelistfile: "{r}/zone.list"
    logfile: "{self.log}"
    server-count: 1
    verbosity: 1
    hide-version: yes
    zonefiles-check: yes

remote-control:
    control-enable: no

zone:
    name: lab.test
    zonefile: lab.test.zone
    provide-xfr: 127.0.0.0/8 NOKEY

zone:
    name: closed.test
    zonefile: closed.test.zone
""")
        (r / "closed.test.zone").write_text(
            "$ORIGIN closed.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n")

    def write_zone(self, serial: int, extra: str = "") -> None:
        self.zonefile.write_text(zone_text(serial, extra))
        # NSD reloads a zone file only when its mtime moved; make sure it did.
        later = time.time() + 10 + serial
        os.utime(self.zonefile, (later, later))

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.root / "nsd.conf"), "-d"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"nsd exited with {self.proc.returncode}: {self.output()}")
            if self.soa_serial() is not None:
                return
            time.sleep(0.1)
        pytest.fail(f"nsd did not answer within 15 s: {self.output()}")

    def soa_serial(self) -> int | None:
        query = dns.message.make_query(ZONE + ".", "SOA")
        try:
            reply = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5)
        except (dns.exception.Timeout, OSError):
            return None
        if not reply.answer:
            return None
        return reply.answer[0][0].serial

    def wait_serial(self, serial: int, limit: float = 15.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.soa_serial() == serial:
                return
            time.sleep(0.1)
        pytest.fail(f"nsd did not load serial {serial} within {limit} s: {self.output()}")

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def output(self) -> str:
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        return log[-3000:]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def nsd(tmp_path):
    binary = NSD if os.access(NSD, os.X_OK) else shutil.which("nsd")
    if binary is None:
        pytest.skip("nsd is not installed (Debian package nsd)")
    server = Nsd(tmp_path, binary)
    server.write_config()
    server.write_zone(1)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_nsd_splits_the_transfer_over_several_messages(nsd):
    messages = list(dns.query.xfr("127.0.0.1", ZONE, port=nsd.port, timeout=10, lifetime=20))
    assert len(messages) > 1
    assert sum(len(rrset) for m in messages for rrset in m.answer) == 1 + len(EXPECTED) + HOSTS + 1


def test_axfr_from_nsd_returns_every_record_as_zone_text(nsd):
    records = run(axfr(ZONE, "127.0.0.1", nsd.port))
    assert records[0] == soa(1)
    assert records.count(soa(1)) == 1  # the closing SOA is not returned
    assert collections.Counter(records[1:]) == collections.Counter(EXPECTED + host_records())

    # Cross-check: each value parses (dnspython) to exactly the RDATA of the same zone file.
    parsed = dns.zone.from_text(nsd.zonefile.read_text(), relativize=False)
    want = collections.Counter()
    for name, node in parsed.nodes.items():
        for rdataset in node.rdatasets:
            for rd in rdataset:
                want[(name.to_text(omit_final_dot=True).lower(), rdataset.rdtype, rdataset.ttl, rd)] += 1
    got = collections.Counter(
        (r.name, dns.rdatatype.from_text(r.type), r.ttl,
         dns.rdata.from_text("IN", r.type, r.value, origin=dns.name.root, relativize=False))
        for r in records)
    assert got == want


def test_soa_serial_from_nsd(nsd):
    assert run(query_soa_serial(ZONE, "127.0.0.1", nsd.port, timeout=5)) == 1


def test_nsd_refusing_a_transfer_is_reported(nsd):
    with pytest.raises(AxfrError, match="REFUSED"):
        run(axfr("closed.test", "127.0.0.1", nsd.port, timeout=5))
    with pytest.raises(AxfrError, match="REFUSED|NOTAUTH"):
        run(axfr("unknown.test", "127.0.0.1", nsd.port, timeout=5))


def test_record_cap_against_nsd(nsd):
    with pytest.raises(AxfrError, match="record cap"):
        run(axfr(ZONE, "127.0.0.1", nsd.port, max_records=1000))


def test_refresh_once_follows_nsd_reload(nsd, monkeypatch):
    transfers = []
    real_axfr = axfr_mod.axfr

    async def counting_axfr(*args, **kwargs):
        transfers.append(args)
        return await real_axfr(*args, **kwargs)

    monkeypatch.setattr(axfr_mod, "axfr", counting_axfr)
    # the first primary is closed: refresh_once must fall through to NSD
    # timeout bounds a success only (the closed port refuses at once): generous for a loaded machine
    zone = SecondaryZone(ZONE, [f"127.0.0.1:{free_port()}", f"127.0.0.1:{nsd.port}"], timeout=10)

    first = run(zone.refresh_once())
    assert zone.serial == 1 and first[0] == soa(1) and len(first) == 1 + len(EXPECTED) + HOSTS
    assert len(transfers) == 2  # the closed port, then NSD
    assert not zone.expired() and zone.next_check > time.monotonic() + 3000

    assert run(zone.refresh_once()) is None  # serial unchanged: no transfer
    assert len(transfers) == 2 and zone.serial == 1 and zone.records is first

    new = Record("added.lab.test", "TXT", 60, '"fresh"')
    nsd.write_zone(2, 'added 60 IN TXT "fresh"\n')
    nsd.reload()
    nsd.wait_serial(2)

    second = run(zone.refresh_once())
    assert len(transfers) == 3 and zone.serial == 2 and zone.records is second
    assert second[0] == soa(2) and new in second and new not in first
    assert collections.Counter(second[1:]) == collections.Counter(EXPECTED + host_records() + [new])

    assert run(zone.refresh_once()) is None
    assert len(transfers) == 3
