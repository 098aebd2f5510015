"""The interop lab: signed zones on NSD, a validating Unbound, and Burrow and dnsmasq side by side.

Everything runs on loopback from one temporary folder:

    NSD (authoritative)  ←  Unbound "upstream" (validating, lab root trust anchor)
                                  ↑                         ↑
                               Burrow                    dnsmasq --proxy-dnssec

The lab has its own root zone, so single-label questions (``test. DS``, ``nosuchtld. SOA``)
behave as on the Internet. Zones are signed when the lab starts (BIND's dnssec-keygen and
dnssec-signzone, ECDSA P-256): ``.`` and ``test.`` with NSEC, ``nsec3.test.`` with NSEC3 (no
opt-out), ``bogus.test.`` with signatures that expired (its DS is in the parent, so it is bogus),
``insecure.test.`` unsigned and delegated without DS.

Every process is started by ``Lab`` and stopped by ``Lab.stop`` (terminate, then kill, by pid).
"""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode

from tests.support.burrow_proc import BurrowProcess, free_port

TOOLS = ("nsd", "unbound", "dnsmasq", "dnssec-keygen", "dnssec-signzone", "dnssec-dsfromkey")
START_DEADLINE = 20.0  # seconds a lab process may take to answer its first question
ALGORITHM = "ECDSAP256SHA256"
LAB_TTL = 300

# ---- zones --------------------------------------------------------------------------------------
# The parent DS records are appended when the children are signed (see Lab._build_zones).

ROOT_ZONE = """\
$ORIGIN .
$TTL 3600
@        SOA  ns.test. hostmaster.test. 1 3600 600 86400 3600
@        NS   ns.test.
test.    NS   ns.test.
ns.test. A    127.0.0.1
"""

BIG_TXT = " ".join('"' + (chr(ord("a") + i) * 200) + '"' for i in range(14))  # ~2.8 KB: TC over UDP

TEST_ZONE = f"""\
$ORIGIN test.
$TTL {LAB_TTL}
@          SOA   ns hostmaster 1 3600 600 86400 {LAB_TTL}
@          NS    ns
@          MX    10 mail
@          TXT   "lab top zone"
@          CAA   0 issue "ca.test"
ns         A     127.0.0.1
mail       A     192.0.2.25
www        A     192.0.2.1
www        AAAA  2001:db8::1
www        TXT   "www"
alias      CNAME www
chain      CNAME chain1
chain1     CNAME www.nsec3
cn-nodata  CNAME c-nodata1
c-nodata1  CNAME txt-only
txt-only   TXT   "only text here"
cn-nx      CNAME c-nx1
c-nx1      CNAME gone
dn         DNAME nsec3.test.
*.wild     A     192.0.2.10
*.wild     TXT   "wildcard"
big        TXT   {BIG_TXT}
svc        A     192.0.2.2
svc        HTTPS 1 . alpn="h2,h3" ipv4hint=192.0.2.2 ipv6hint=2001:db8::2
svc        SVCB  1 www.test. port=8443
alias-svc  HTTPS 0 svc.test.
_sip._tcp  SRV   0 5 5060 www
ptr        PTR   www.test.
rebind     A     192.168.1.10
nsec3      NS    ns
bogus      NS    ns
insecure   NS    ns
"""

NSEC3_ZONE = f"""\
$ORIGIN nsec3.test.
$TTL {LAB_TTL}
@          SOA   ns.test. hostmaster.test. 1 3600 600 86400 {LAB_TTL}
@          NS    ns.test.
@          MX    10 mail.test.
www        A     192.0.2.3
www        AAAA  2001:db8::3
*.wild     A     192.0.2.11
cn-nodata  CNAME txt-only
txt-only   TXT   "nsec3 text"
cn-nx      CNAME gone
svc        HTTPS 1 . alpn="h2"
"""

BOGUS_ZONE = f"""\
$ORIGIN bogus.test.
$TTL {LAB_TTL}
@          SOA   ns.test. hostmaster.test. 1 3600 600 86400 {LAB_TTL}
@          NS    ns.test.
www        A     192.0.2.4
www        TXT   "expired signatures"
"""

INSECURE_ZONE = f"""\
$ORIGIN insecure.test.
$TTL {LAB_TTL}
@          SOA   ns.test. hostmaster.test. 1 3600 600 86400 {LAB_TTL}
@          NS    ns.test.
www        A     192.0.2.5
alias      CNAME www.test.
*.wild     A     192.0.2.12
"""

# (origin, file stem, zone text, signing) — children before parents (a parent carries their DS)
ZONES = [
    ("nsec3.test.", "nsec3.test", NSEC3_ZONE, "nsec3"),
    ("bogus.test.", "bogus.test", BOGUS_ZONE, "expired"),
    ("insecure.test.", "insecure.test", INSECURE_ZONE, None),
    ("test.", "test", TEST_ZONE, "nsec"),
    (".", "root", ROOT_ZONE, "nsec"),
]
ZONE_CUTS = [origin for origin, *_ in ZONES]

# Questions are asked about these names (existing, empty, wildcard-expanded and nonexistent).
NAMES = [
    ".", "test.", "www.test.", "alias.test.", "chain.test.", "cn-nodata.test.", "cn-nx.test.",
    "dn.test.", "www.dn.test.", "x.wild.test.", "big.test.", "svc.test.", "alias-svc.test.",
    "_sip._tcp.test.", "ptr.test.", "rebind.test.", "nx.test.",
    "nsec3.test.", "www.nsec3.test.", "x.wild.nsec3.test.", "cn-nodata.nsec3.test.", "cn-nx.nsec3.test.",
    "nx.nsec3.test.", "bogus.test.", "www.bogus.test.", "nx.bogus.test.",
    "insecure.test.", "www.insecure.test.", "nx.insecure.test.", "nosuchtld.", "www.nosuchtld.",
]


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y%m%d%H%M%S")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _run(cmd: list[str], cwd: Path) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def wait_answering(port: int, proc: subprocess.Popen, log: Path, name: str = ".",
                   deadline: float = START_DEADLINE) -> None:
    """Wait until something on 127.0.0.1:port answers ``name SOA`` (any rcode)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            dns.query.udp(dns.message.make_query(name, "SOA"), "127.0.0.1", port=port, timeout=0.5)
            return
        except (OSError, dns.exception.Timeout):
            time.sleep(0.1)
    raise RuntimeError(f"{proc.args[0]} did not answer on port {port} within {deadline} s:\n"
                       f"{log.read_text()[-4000:]}")


@dataclass
class Server:
    """One lab process: what it is, where it answers, its log."""
    name: str
    port: int
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Lab:
    """Build and run the lab in ``root`` (a fresh folder). ``start()``, then ``stop()``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.servers: list[Server] = []
        self.burrow: BurrowProcess | None = None
        self.trust_anchor: Path = self.root / "keys" / "root.anchor"
        self.nsd_port = self.unbound_port = self.dnsmasq_port = 0

    # ---- processes --------------------------------------------------------------------------

    def spawn(self, name: str, cmd: list[str], port: int, probe: str = ".") -> Server:
        log = self.root / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        server = Server(name, port, proc, log)
        self.servers.append(server)
        wait_answering(port, proc, log, probe)
        return server

    def start(self) -> "Lab":
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._build_zones()
            self.nsd_port = self._start_nsd()
            self.unbound_port = self.start_unbound("unbound-upstream", stubs=True).port
            self.dnsmasq_port = self._start_dnsmasq()
            self.burrow = BurrowProcess(self.root / "burrow", [f"127.0.0.1:{self.unbound_port}"], {
                "logging": {"level": "info"},
                # thousands of questions from one client: the limiter is tested on its own
                "rate_limit": {"enabled": False},
                "local": {"rebind_protection": True},  # Burrow's default; BurrowProcess turns it off
            }).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.burrow is not None:
            self.burrow.stop()
            # keep Burrow's log with the others in the lab folder (pytest keeps the last few)
            log = Path(self.burrow.log.name)
            if log.exists():
                shutil.copyfile(log, self.root / "burrow.log")
                log.unlink()
        for server in reversed(self.servers):
            server.stop()

    @property
    def burrow_port(self) -> int:
        return self.burrow.dns_port

    # ---- zones ------------------------------------------------------------------------------

    def _build_zones(self) -> None:
        keys = self.root / "keys"
        zones = self.root / "zones"
        keys.mkdir()
        zones.mkdir()
        now = dt.datetime.now(dt.timezone.utc)
        ds: dict[str, str] = {}  # child origin → its DS lines
        for origin, stem, text, signing in ZONES:
            children = "".join(ds[o] for o in ds if _parent(o) == origin)
            path = zones / f"{stem}.zone"
            if signing is None:
                path.write_text(text)
                continue
            base = _run(["dnssec-keygen", "-q", "-K", str(keys), "-a", ALGORITHM, "-f", "KSK",
                         "-n", "ZONE", origin], keys).strip()
            key_text = (keys / f"{base}.key").read_text()
            path.write_text(text + children + key_text)
            if signing == "expired":
                start, end = now - dt.timedelta(days=60), now - dt.timedelta(days=30)
            else:
                start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=30)
            cmd = ["dnssec-signzone", "-q", "-P", "-z", "-o", origin, "-K", str(keys),
                   "-s", _stamp(start), "-e", _stamp(end), "-f", str(zones / f"{stem}.signed")]
            if signing == "nsec3":
                cmd += ["-3", "-", "-H", "0"]  # no salt, no extra iterations (RFC 9276), no opt-out
            _run(cmd + [str(path), str(keys / base)], zones)
            if origin != ".":
                ds[origin] = _run(["dnssec-dsfromkey", "-2", str(keys / f"{base}.key")], keys)
            else:
                self.trust_anchor.write_text(key_text)

    def _zone_file(self, stem: str) -> Path:
        signed = self.root / "zones" / f"{stem}.signed"
        return signed if signed.exists() else self.root / "zones" / f"{stem}.zone"

    # ---- servers ----------------------------------------------------------------------------

    def _start_nsd(self) -> int:
        port = free_port()
        d = self.root / "nsd"
        d.mkdir()
        zones = "".join(f'zone:\n    name: "{origin}"\n    zonefile: "{self._zone_file(stem)}"\n'
                        for origin, stem, *_ in ZONES)
        conf = d / "nsd.conf"
        conf.write_text(f"""server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    server-count: 1
    verbosity: 1
    hide-version: yes
remote-control:
    control-enable: no
{zones}""")
        self.spawn("nsd", ["nsd", "-d", "-c", str(conf)], port)
        return port

    def start_unbound(self, name: str, *, stubs: bool = False, forward_port: int = 0) -> Server:
        """A validating Unbound with the lab's root trust anchor: the upstream (``stubs``: asks
        NSD for every zone of the lab) or a resolver behind a forwarder (``forward_port``)."""
        port = free_port()
        d = self.root / name
        d.mkdir()
        if stubs:
            where = "".join(f'stub-zone:\n    name: "{origin}"\n    stub-addr: 127.0.0.1@{self.nsd_port}\n'
                            for origin in ZONE_CUTS)
        else:
            where = f'forward-zone:\n    name: "."\n    forward-addr: 127.0.0.1@{forward_port}\n'
        conf = d / "unbound.conf"
        conf.write_text(f"""server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-not-query-localhost: no
    chroot: ""
    username: ""
    directory: "{d}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
    val-log-level: 2
    num-threads: 1
    so-reuseport: no
    access-control: 127.0.0.0/8 allow
    module-config: "validator iterator"
    trust-anchor-file: "{self.trust_anchor}"
    # the lab's TLD is special-use (RFC 6761); Unbound answers it locally unless told not to
    local-zone: "test." nodefault
    aggressive-nsec: no
    harden-referral-path: no
    qname-minimisation: no
remote-control:
    control-enable: no
{where}""")
        return self.spawn(name, ["unbound", "-d", "-c", str(conf)], port)

    def _start_dnsmasq(self) -> int:
        port = free_port()
        self.spawn("dnsmasq", [
            "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--proxy-dnssec", f"--server=127.0.0.1#{self.unbound_port}", f"--port={port}",
            # Burrow's default local.special_names is dnsmasq's domain-needed: compare like with like
            "--domain-needed",
            "--listen-address=127.0.0.1", "--bind-interfaces",
            # no cache: the reference is a pure relay (docs/dns-compliance.md, "The lab")
            "--cache-size=0",
            "--pid-file=", "--user=root", "--group=root",
        ], port)
        return port


def _parent(origin: str) -> str:
    head, _, rest = origin.partition(".")
    return rest if rest else "."
