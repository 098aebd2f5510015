"""A scriptable upstream DNS server for integration tests, run as its own process.

    python -m tests.support.upstream --host 127.0.0.1 --port 0 --control-port 0

Once every socket is listening it prints one JSON line on stdout::

    {"host": "127.0.0.1", "dns_port": 40123, "control_port": 40124, "pid": 4242}

and then serves until it is killed (SIGTERM / SIGINT end it cleanly). Nothing else is ever
written to stdout; diagnostics go to stderr.

DNS is served over UDP and TCP on the same port number. Without rules it behaves like a
small, honest authoritative server:

- ``A`` for any name: ``10.x.y.z`` derived from a hash of the lower-cased name
  (:func:`address_for`), ``AAAA`` likewise under ``fd00::/8`` (:func:`address6_for`),
  TTL 300;
- a name whose first label starts with ``nx-``: NXDOMAIN with an SOA in authority
  (SOA TTL 3600, SOA minimum 60);
- a name starting with ``nodata-`` and every other query type: NOERROR, no answers, SOA;
- UDP answers larger than the client can take (512 bytes, or its EDNS size) come back
  truncated (TC=1, no records) and whole over TCP.

The control channel is line-based JSON over TCP on the control port: the client writes one
JSON object per line, the server answers one JSON object per line, always with ``"ok"``.

    {"op": "ping"}
    {"op": "set_rule", "name": "example.com", "match": "suffix", "rcode": "SERVFAIL"}
    {"op": "reset"}                       drop every rule (the query log is kept)
    {"op": "queries"}                     -> {"ok": true, "queries": [...]}
    {"op": "clear_log"}
    {"op": "count"}                       -> {"ok": true, "count": N}

Rule keys (all optional except ``name``), see :data:`RULE_KEYS`:

    name              the owner name the rule is for (case-insensitive, trailing dot optional)
    match             "exact" (default) or "suffix" (the name itself and everything below it)
    qtype             only queries of this type ("A", "AAAA", ...); default: every type
    times             apply to the first N matching queries only, then fall back to default
    records           {"TYPE": ["rdata", ...]} fixed records; a CNAME is returned for any
                      type; a name with records but none of the asked type gets NODATA + SOA
    ttl               TTL of the scripted records (default 300)
    rcode             "SERVFAIL", "REFUSED", "NXDOMAIN", "FORMERR", "NOTIMP", ... or a number
    soa               put an SOA in authority for NXDOMAIN / NODATA (default true)
    nodata            NOERROR with no answers (and the SOA)
    delay_ms          wait this long before answering (still answers unless drop)
    drop              never answer
    truncate          UDP: TC=1 and no records; TCP: the full answer
    large             answer with N A (or AAAA) records; true means 100 (> 1232 bytes)
    ignore_size       send UDP answers whole even when larger than the client's buffer
    wrong_id          reply with a different message ID
    wrong_port        UDP: reply from a different socket (another source port)
    wrong_question    reply with this name in the question section instead
    cname_chain       ["a.example", "b.example"]: name CNAME a CNAME b, then b's address
                      (or ``records`` owned by the last name of the chain)
    extra_answer, extra_authority, extra_additional
                      lists of zone-format records ("evil.test. 300 IN A 6.6.6.6") appended
                      to that section, for cache-poisoning tests; any type dnspython can
                      read (RRSIG, NSEC, NSEC3, DNAME, ...) may be given
    ad                set AD in the reply (a validating upstream vouching for the data);
                      without it AD is always clear, whatever the query had
    cd                match only queries with CD set (true) or clear (false); a rule with
                      ``cd`` beats the same rule without it

Each logged query is ``{"name", "type", "transport", "src", "edns", "edns_size", "do",
"id", "rd", "cd", "ad", "time"}`` where ``name`` keeps the case the client sent (no trailing dot) and
``src`` is ``"ip:port"``. The log keeps the last 100,000 queries.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import dns.rrset
from dnslib import AAAA, CNAME, DNSRecord, EDNS0, QTYPE, RCODE, RR, SOA, A, DNSLabel
from dnslib.dns import RD

DEFAULT_TTL = 300
SOA_TTL = 3600
SOA_MINIMUM = 60
LARGE_DEFAULT = 100
LOG_CAP = 100_000  # entries kept in the query log; older ones fall off
TCP_IDLE_TIMEOUT = 30.0  # seconds a DNS-over-TCP connection may sit idle
TCP_MAX_INFLIGHT = 64  # concurrent queries per TCP connection
CONTROL_LINE_CAP = 1 << 20  # bytes in one control request
MAX_DELAY_MS = 60_000  # a scripted delay is capped at one minute
MAX_LARGE = 2000  # records in a "large" answer

RULE_KEYS = {
    "name", "match", "qtype", "times", "records", "ttl", "rcode", "soa", "nodata",
    "delay_ms", "drop", "truncate", "large", "ignore_size", "wrong_id", "wrong_port",
    "wrong_question", "cname_chain", "extra_answer", "extra_authority", "extra_additional",
    "ad", "cd",
}


def address_for(name: str) -> str:
    """The default A answer for ``name``: 10.x.y.z from a hash of the lower-cased name."""
    digest = hashlib.sha256(_norm(name).encode()).digest()
    return f"10.{digest[0]}.{digest[1]}.{digest[2]}"


def address6_for(name: str) -> str:
    """The default AAAA answer for ``name``: fd00::/8 plus 15 bytes of a hash."""
    digest = hashlib.sha256(_norm(name).encode()).digest()
    return str(ipaddress.IPv6Address(b"\xfd" + digest[:15]))


def _norm(name: str) -> str:
    return str(name).rstrip(".").lower()


def _rcode_value(value: Any) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(getattr(RCODE, str(value).upper()))
    except Exception:
        raise ValueError(f"unknown rcode {value!r}") from None


def _qtype_value(value: str) -> int:
    try:
        return int(getattr(QTYPE, str(value).upper()))
    except Exception:
        raise ValueError(f"unknown qtype {value!r}") from None


def _parse_zone_lines(lines: Any, key: str) -> list[RR]:
    if not isinstance(lines, list):
        raise ValueError(f"{key} must be a list of zone-format records")
    parsed: list[RR] = []
    for line in lines:
        rrs = _zone_rrs(str(line))
        if not rrs:
            raise ValueError(f"{key}: cannot parse {line!r}")
        parsed.extend(rrs)
    return parsed


def _zone_rrs(line: str) -> list[RR]:
    """Records from one zone-format line. dnslib cannot read some types (NSEC3, DNAME, ...):
    those are read by dnspython and carried as opaque RDATA, which packs unchanged."""
    try:
        return RR.fromZone(line)
    except Exception:
        pass
    owner, ttl, rclass, rtype, rdata = line.split(None, 4)
    rrset = dns.rrset.from_text(owner, int(ttl), rclass, rtype, rdata)
    return [RR(DNSLabel(owner), int(rrset.rdtype), int(rrset.rdclass), rrset.ttl, RD(rd.to_wire()))
            for rd in rrset]


@dataclass
class Rule:
    """One scripted behaviour, validated when it is set (errors go back to the client)."""

    spec: dict[str, Any]
    name: str = ""
    suffix: bool = False
    qtype: int | None = None
    cd: bool | None = None
    remaining: int | None = None
    records: list[tuple[int, str]] = field(default_factory=list)
    extra: dict[str, list[RR]] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "Rule":
        unknown = set(spec) - RULE_KEYS
        if unknown:
            raise ValueError(f"unknown rule keys: {sorted(unknown)}")
        if not spec.get("name"):
            raise ValueError("a rule needs a name")
        rule = cls(spec=dict(spec), name=_norm(spec["name"]))
        match = spec.get("match", "exact")
        if match not in ("exact", "suffix"):
            raise ValueError("match must be 'exact' or 'suffix'")
        rule.suffix = match == "suffix"
        if spec.get("qtype") is not None:
            rule.qtype = _qtype_value(spec["qtype"])
        if spec.get("times") is not None:
            rule.remaining = int(spec["times"])
        if spec.get("cd") is not None:
            rule.cd = bool(spec["cd"])
        if spec.get("rcode") is not None:
            _rcode_value(spec["rcode"])
        records = spec.get("records") or {}
        if not isinstance(records, dict):
            raise ValueError('records must be {"TYPE": ["rdata", ...]}')
        for rtype, rdatas in records.items():
            if isinstance(rdatas, str):
                rdatas = [rdatas]
            code = _qtype_value(rtype)
            for rdata in rdatas:
                # Parse once now so a bad rdata fails the set_rule call, not a query.
                _zone_rrs(f"check.invalid. 1 IN {QTYPE[code]} {rdata}")
                rule.records.append((code, str(rdata)))
        for key in ("extra_answer", "extra_authority", "extra_additional"):
            if spec.get(key):
                rule.extra[key] = _parse_zone_lines(spec[key], key)
        delay = spec.get("delay_ms") or 0
        if not 0 <= float(delay) <= MAX_DELAY_MS:
            raise ValueError(f"delay_ms must be within 0..{MAX_DELAY_MS}")
        large = spec.get("large")
        if large is not None and not isinstance(large, bool):
            if not 0 <= int(large) <= MAX_LARGE:
                raise ValueError(f"large must be within 0..{MAX_LARGE}")
        chain = spec.get("cname_chain")
        if chain is not None and not (isinstance(chain, list) and chain):
            raise ValueError("cname_chain must be a non-empty list of names")
        return rule

    def matches(self, qname: str, qtype: int, cd: bool = False) -> bool:
        if self.qtype is not None and self.qtype != qtype:
            return False
        if self.cd is not None and self.cd != cd:
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        if qname == self.name:
            return True
        return self.suffix and (self.name == "" or qname.endswith("." + self.name))

    def specificity(self) -> tuple[int, int, int, int]:
        # exact beats suffix, longer suffix beats shorter, a typed rule beats an untyped one,
        # then one for a CD value beats one for both
        return (0 if self.suffix else 1, len(self.name), 1 if self.qtype is not None else 0,
                1 if self.cd is not None else 0)

    def get(self, key: str, default: Any = None) -> Any:
        value = self.spec.get(key)
        return default if value is None else value


class Upstream:
    """The server state: rules, the query log, and the answer logic."""

    def __init__(self) -> None:
        self.rules: dict[tuple[str, bool, int | None, bool | None], Rule] = {}
        self.log: collections.deque[dict[str, Any]] = collections.deque(maxlen=LOG_CAP)
        self.count = 0
        self.udp_transport: asyncio.DatagramTransport | None = None
        self.wrong_port_sock: socket.socket | None = None

    # -- rules ----------------------------------------------------------------
    def set_rule(self, spec: dict[str, Any]) -> None:
        rule = Rule.from_spec(spec)
        self.rules[(rule.name, rule.suffix, rule.qtype, rule.cd)] = rule

    def find_rule(self, qname: str, qtype: int, cd: bool = False) -> Rule | None:
        best: Rule | None = None
        for rule in self.rules.values():
            if rule.matches(qname, qtype, cd) and (
                best is None or rule.specificity() > best.specificity()
            ):
                best = rule
        return best

    # -- answering ------------------------------------------------------------
    def record_query(self, request: DNSRecord, transport: str, addr: tuple) -> None:
        opt = next((rr for rr in request.ar if rr.rtype == QTYPE.OPT), None)
        q = request.q
        self.count += 1
        self.log.append({
            "name": str(q.qname).rstrip(".") if request.questions else "",
            "type": QTYPE.get(q.qtype, str(q.qtype)) if request.questions else "",
            "transport": transport,
            "src": f"{addr[0]}:{addr[1]}",
            "edns": opt is not None,
            "edns_size": opt.rclass if opt is not None else None,
            "do": bool(opt is not None and opt.ttl & 0x8000),
            "id": request.header.id,
            "rd": bool(request.header.rd),
            "cd": bool(request.header.cd),
            "ad": bool(request.header.ad),
            "time": time.time(),
        })

    async def answer(self, data: bytes, transport: str, addr: tuple) -> tuple[bytes, bool] | None:
        """Return (reply bytes, send-from-another-port) or None for no reply."""
        try:
            request = DNSRecord.parse(data)
        except Exception as exc:  # malformed packets are logged and ignored
            print(f"upstream: unparsable packet from {addr}: {exc}", file=sys.stderr)
            return None
        if request.header.qr or not request.questions:
            return None
        self.record_query(request, transport, addr)
        qname = _norm(request.q.qname)
        qtype = request.q.qtype
        rule = self.find_rule(qname, qtype, bool(request.header.cd))
        if rule is not None and rule.remaining is not None:
            rule.remaining -= 1
        if rule is not None and rule.get("delay_ms", 0) > 0:
            await asyncio.sleep(float(rule.get("delay_ms")) / 1000.0)
        if rule is not None and rule.get("drop", False):
            return None

        reply = self.build_reply(request, rule)
        opt = next((rr for rr in request.ar if rr.rtype == QTYPE.OPT), None)
        if opt is not None:
            reply.add_ar(EDNS0(udp_len=1232, flags="do" if opt.ttl & 0x8000 else ""))
        wire = reply.pack()
        if transport == "udp":
            limit = max(512, opt.rclass) if opt is not None else 512
            truncate = rule is not None and rule.get("truncate", False)
            too_big = len(wire) > limit and not (rule is not None and rule.get("ignore_size"))
            if truncate or too_big:
                reply.rr, reply.auth = [], []
                reply.ar = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
                reply.header.tc = 1
                wire = reply.pack()
        if rule is not None and rule.get("wrong_id", False):
            wrong = (request.header.id + 0x1111) & 0xFFFF
            wire = struct.pack("!H", wrong) + wire[2:]
        wrong_port = transport == "udp" and rule is not None and rule.get("wrong_port", False)
        return wire, bool(wrong_port)

    def build_reply(self, request: DNSRecord, rule: Rule | None) -> DNSRecord:
        reply = request.reply(ra=1, aa=1)
        reply.header.ad = 1 if rule is not None and rule.get("ad", False) else 0  # never echoed
        qname_label = request.q.qname  # keeps the client's letter case
        qname = _norm(qname_label)
        qtype = request.q.qtype
        if rule is not None and rule.get("wrong_question"):
            wrong = DNSLabel(rule.get("wrong_question"))
            reply.q.qname = wrong
            qname_label, qname = wrong, _norm(wrong)
        ttl = int(rule.get("ttl", DEFAULT_TTL)) if rule is not None else DEFAULT_TTL
        want_soa = rule is None or rule.get("soa", True)

        if rule is not None and rule.get("rcode") is not None:
            reply.header.rcode = _rcode_value(rule.get("rcode"))
            if reply.header.rcode == RCODE.NXDOMAIN and want_soa:
                reply.add_auth(self.soa_for(qname))
        elif rule is not None and rule.get("nodata", False):
            if want_soa:
                reply.add_auth(self.soa_for(qname))
        elif rule is not None and rule.get("cname_chain"):
            owner = qname_label
            for target in rule.get("cname_chain"):
                reply.add_answer(RR(owner, QTYPE.CNAME, rdata=CNAME(target), ttl=ttl))
                owner = DNSLabel(target)
            if rule.records:
                self.add_records(reply, owner, qtype, rule.records, ttl)
            else:
                self.add_default(reply, owner, _norm(owner), qtype, ttl)
        elif rule is not None and rule.records:
            if not self.add_records(reply, qname_label, qtype, rule.records, ttl) and want_soa:
                reply.add_auth(self.soa_for(qname))
        elif rule is not None and rule.get("large"):
            count = LARGE_DEFAULT if rule.get("large") is True else int(rule.get("large"))
            for i in range(count):
                if qtype == QTYPE.AAAA:
                    rdata = AAAA(str(ipaddress.IPv6Address(f"fd00::{i + 1:x}")))
                    reply.add_answer(RR(qname_label, QTYPE.AAAA, rdata=rdata, ttl=ttl))
                else:
                    rdata = A(f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}")
                    reply.add_answer(RR(qname_label, QTYPE.A, rdata=rdata, ttl=ttl))
        else:
            self.add_default(reply, qname_label, qname, qtype, ttl)

        if rule is not None:
            for rr in rule.extra.get("extra_answer", []):
                reply.add_answer(rr)
            for rr in rule.extra.get("extra_authority", []):
                reply.add_auth(rr)
            for rr in rule.extra.get("extra_additional", []):
                reply.add_ar(rr)
        return reply

    def add_default(self, reply: DNSRecord, owner: Any, name: str, qtype: int, ttl: int) -> None:
        if name.startswith("nx-"):
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(self.soa_for(name))
        elif name.startswith("nodata-") or qtype not in (QTYPE.A, QTYPE.AAAA):
            reply.add_auth(self.soa_for(name))
        elif qtype == QTYPE.A:
            reply.add_answer(RR(owner, QTYPE.A, rdata=A(address_for(name)), ttl=ttl))
        else:
            reply.add_answer(RR(owner, QTYPE.AAAA, rdata=AAAA(address6_for(name)), ttl=ttl))

    @staticmethod
    def add_records(reply: DNSRecord, owner: Any, qtype: int,
                    records: list[tuple[int, str]], ttl: int) -> bool:
        added = False
        for rtype, rdata in records:
            if rtype == qtype or rtype == QTYPE.CNAME or qtype == QTYPE.ANY:
                rr = _zone_rrs(f"{_norm(owner) or '.'}. {ttl} IN {QTYPE[rtype]} {rdata}")[0]
                rr.rname = DNSLabel(owner)
                reply.add_answer(rr)
                added = True
        return added

    @staticmethod
    def soa_for(name: str) -> RR:
        labels = name.split(".")
        zone = ".".join(labels[1:]) if len(labels) > 1 else ""
        zone_label = DNSLabel(zone or ".")
        soa = SOA(
            mname=f"ns.{zone}." if zone else "ns.upstream.test.",
            rname=f"hostmaster.{zone}." if zone else "hostmaster.upstream.test.",
            times=(1, 3600, 600, 86400, SOA_MINIMUM),
        )
        return RR(zone_label, QTYPE.SOA, rdata=soa, ttl=SOA_TTL)

    # -- control --------------------------------------------------------------
    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"ok": True}
        if op == "set_rule":
            spec = {k: v for k, v in request.items() if k != "op"}
            self.set_rule(spec)
            return {"ok": True}
        if op == "reset":
            self.rules.clear()
            return {"ok": True}
        if op == "queries":
            return {"ok": True, "queries": list(self.log)}
        if op == "clear_log":
            self.log.clear()
            self.count = 0
            return {"ok": True}
        if op == "count":
            return {"ok": True, "count": self.count}
        raise ValueError(f"unknown op {op!r}")


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        task = asyncio.ensure_future(self.handle(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def handle(self, data: bytes, addr: tuple) -> None:
        try:
            result = await self.upstream.answer(data, "udp", addr)
            if result is None or self.transport is None:
                return
            wire, from_other_port = result
            if from_other_port and self.upstream.wrong_port_sock is not None:
                self.upstream.wrong_port_sock.sendto(wire, addr)
            else:
                self.transport.sendto(wire, addr)
        except Exception as exc:  # one bad packet never stops the listener
            print(f"upstream: udp error for {addr}: {exc!r}", file=sys.stderr)


async def handle_tcp(upstream: Upstream, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
    addr = writer.get_extra_info("peername")
    lock = asyncio.Lock()
    slots = asyncio.Semaphore(TCP_MAX_INFLIGHT)
    tasks: set[asyncio.Task] = set()

    async def one(data: bytes) -> None:
        try:
            result = await upstream.answer(data, "tcp", addr)
            if result is not None:
                async with lock:
                    writer.write(struct.pack("!H", len(result[0])) + result[0])
                    await writer.drain()
        except Exception as exc:
            print(f"upstream: tcp error for {addr}: {exc!r}", file=sys.stderr)
        finally:
            slots.release()

    try:
        while True:
            try:
                size = struct.unpack("!H", await asyncio.wait_for(
                    reader.readexactly(2), TCP_IDLE_TIMEOUT))[0]
                data = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                break
            await slots.acquire()
            task = asyncio.ensure_future(one(data))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        # Let scripted delays finish (a dropped query has nothing to wait for).
        if tasks:
            await asyncio.wait(tasks, timeout=MAX_DELAY_MS / 1000.0)
    finally:
        for task in tasks:
            task.cancel()
        writer.close()


async def handle_control(upstream: Upstream, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), TCP_IDLE_TIMEOUT)
            except (asyncio.TimeoutError, ConnectionError, ValueError):
                break
            if not line:
                break
            try:
                response = upstream.control(json.loads(line))
            except Exception as exc:
                response = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            writer.write(json.dumps(response).encode() + b"\n")
            await writer.drain()
    finally:
        writer.close()


def _check_loopback(host: str) -> str:
    if not ipaddress.ip_address(host).is_loopback:
        raise argparse.ArgumentTypeError("the test upstream only listens on loopback")
    return host


async def serve(host: str, port: int, control_port: int) -> None:
    upstream = Upstream()
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    # UDP and TCP must share one port number; with port 0 the kernel picks the UDP port
    # and TCP may find it taken, so try a bounded number of times.
    last_error: OSError | None = None
    for _attempt in range(50):
        udp_transport, udp_protocol = await loop.create_datagram_endpoint(
            lambda: UdpProtocol(upstream), local_addr=(host, port), family=family)
        dns_port = udp_transport.get_extra_info("sockname")[1]
        try:
            tcp_server = await asyncio.start_server(
                lambda r, w: handle_tcp(upstream, r, w), host, dns_port,
                family=family, reuse_address=True)
            break
        except OSError as exc:
            last_error = exc
            udp_transport.close()
            if port != 0:
                raise
    else:
        raise RuntimeError(f"could not bind UDP+TCP on one port: {last_error}")
    upstream.udp_transport = udp_transport

    wrong_port_sock = socket.socket(family, socket.SOCK_DGRAM)
    wrong_port_sock.bind((host, 0))
    wrong_port_sock.setblocking(False)
    upstream.wrong_port_sock = wrong_port_sock

    control_server = await asyncio.start_server(
        lambda r, w: handle_control(upstream, r, w), host, control_port,
        family=family, reuse_address=True, limit=CONTROL_LINE_CAP)
    control_port = control_server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    print(json.dumps({"host": host, "dns_port": dns_port, "control_port": control_port,
                      "pid": os.getpid()}), flush=True)
    try:
        await stop.wait()
    finally:
        tcp_server.close()
        control_server.close()
        udp_transport.close()
        wrong_port_sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", type=_check_loopback, default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="DNS port (UDP and TCP)")
    parser.add_argument("--control-port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.control_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
