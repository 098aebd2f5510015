"""The two objects that travel through the chain: a Query in, an Answer out.

An Answer keeps its records as wire bytes *after the question* (``sections``) with the offsets
of their TTLs, so the cache can age it and the fast path can splice any client's question
(and so its 0x20 case) in front without re-encoding anything.
"""

from __future__ import annotations

import struct

from . import wire
from .decision import Decision, TraceEntry


class Query:
    """One client question, parsed once. ``trace`` collects breadcrumbs as stages act."""

    __slots__ = ("packet", "id", "flags", "qname", "question", "qtype", "qclass", "edns",
                 "client_ip", "client_port", "transport", "view", "mono", "trace", "admitted",
                 "route", "policy_allowed", "_text")

    def __init__(self, parsed: wire.ParsedQuery, packet: bytes, client_ip: str, client_port: int,
                 transport: str, mono: float, view: str = "default", admitted: bool | None = None):
        self.packet = packet
        self.id = parsed.id
        self.flags = parsed.flags
        self.qname = parsed.qname
        self.question = parsed.question
        self.qtype = parsed.qtype
        self.qclass = parsed.qclass
        self.edns = parsed.edns
        self.client_ip = client_ip
        self.client_port = client_port
        self.transport = transport
        self.view = view
        self.mono = mono
        self.trace: list[TraceEntry] = []
        self.admitted = admitted  # fast path's rate-limit verdict, so the guard counts once
        self.route = ""  # which upstream set answers ("" = the default upstreams); part of cache keys
        self.policy_allowed = False  # a policy ALLOW rule matched: the filter must not block it
        self._text = None

    @property
    def name(self) -> str:
        """The question name as lower-case text without the trailing dot."""
        if self._text is None:
            self._text = wire.name_to_text(self.qname)
        return self._text

    @property
    def qkey(self) -> bytes:
        """Lower-case name + type + class: the question as cache and coalescing keys use it."""
        return self.qname + self.question[-4:]

    @property
    def do(self) -> bool:
        return self.edns is not None and self.edns.do

    @property
    def max_udp(self) -> int:
        if self.edns is None:
            return wire.PLAIN_UDP_MAX
        return min(self.edns.udp_size, wire.EDNS_UDP_MAX)

    def note(self, stage: str, action: str, rule: str = "", source: str = "", detail: str = "") -> None:
        self.trace.append(TraceEntry(stage, action, rule, source, detail))


class Answer:
    """A reply in the making: rcode, flags, record sections (after the question), TTL offsets.

    ``ttl`` is how long the answer may be reused (fast path, cache); None means never.
    """

    __slots__ = ("rcode", "aa", "an", "ns", "ar", "sections", "ttl_offsets", "ttls", "ttl",
                 "decision", "ede", "upstream")

    def __init__(self, rcode: int, decision: Decision, sections: bytes = b"", an: int = 0,
                 ns: int = 0, ar: int = 0, ttl_offsets: tuple = (), ttls: tuple = (),
                 ttl: float | None = None, aa: bool = False, ede: tuple[int, str] | None = None,
                 upstream: str = ""):
        self.rcode = rcode
        self.aa = aa
        self.an = an
        self.ns = ns
        self.ar = ar
        self.sections = sections
        self.ttl_offsets = ttl_offsets
        self.ttls = ttls
        self.ttl = ttl
        self.decision = decision
        self.ede = ede
        self.upstream = upstream

    def replace(self, **changes) -> "Answer":
        new = Answer.__new__(Answer)
        for slot in Answer.__slots__:
            setattr(new, slot, changes.get(slot, getattr(self, slot)))
        return new

    def aged(self, age: int) -> "Answer":
        """The same answer with every TTL lowered by ``age`` seconds (never below zero)."""
        if not self.ttl_offsets or age <= 0:
            return self
        return self.replace(sections=wire.patch_ttls(self.sections, self.ttl_offsets, self.ttls, age))


def read_answer_records(query: Query, answer: Answer) -> tuple[bytes, list] | None:
    """The answer section's records as (packet, rrs) for stages that inspect upstream answers;
    ``packet`` is a zeroed header + the question + the sections, which the RRs' offsets (and
    ``wire.rdata_name``) refer to. None when the sections cannot be read."""
    packet = bytes(12) + query.question + answer.sections
    try:
        rrs, _ = wire.read_rrs(packet, 12 + len(query.question), answer.an)
    except wire.WireError:
        return None
    return packet, rrs


def render(query: Query, answer: Answer, max_size: int = 65535) -> bytes:
    """The reply packet for ``query``: its ID, its question bytes (case kept), OPT if it sent one.

    Over ``max_size`` the reply is cut to a TC=1 header so the client retries over TCP.
    """
    flags = wire.response_flags(query.flags, answer.rcode, aa=answer.aa)
    opt = b""
    if query.edns is not None:
        opt = wire.opt_record(query.edns.do, answer.ede, answer.rcode >> 4)
    ar = answer.ar + (1 if opt else 0)
    packet = (wire.header(query.id, flags, 1, answer.an, answer.ns, ar) + query.question
              + answer.sections + opt)
    if len(packet) > max_size:
        return wire.header(query.id, flags | wire.TC, 1, 0, 0, 1 if opt else 0) + query.question + opt
    return packet


def error_reply(packet: bytes, rcode: int, ede: tuple[int, str] | None = None) -> bytes | None:
    """Reply to a packet that could not be parsed fully: echo ID and question if readable.

    Returns None when not even the header can be read (the packet is then dropped).
    """
    if len(packet) < 12:
        return None
    qid, flags = struct.unpack_from("!HH", packet)
    question = b""
    try:
        qd = struct.unpack_from("!H", packet, 4)[0]
        if qd == 1:
            end = wire.question_end(packet, 12) + 4
            if end <= len(packet):
                question = packet[12:end]
    except wire.WireError:
        question = b""
    rflags = wire.QR | (flags & (wire.RD | wire.CD | 0x7800)) | (rcode & 0xF) | wire.RA
    opt = b""
    if rcode > 15 or ede is not None:
        opt = wire.opt_record(False, ede, rcode >> 4)
    return wire.header(qid, rflags, 1 if question else 0, 0, 0, 1 if opt else 0) + question + opt


def chase_chain(packet: bytes, qname: bytes, rrs: list) -> set:
    """Owner names belonging to the question: qname plus every CNAME target reached from it."""
    names = {qname}
    changed = True
    rounds = 0
    while changed and rounds < 16:  # a CNAME chain longer than 16 is refused by resolvers anyway
        changed = False
        rounds += 1
        for rr in rrs:
            if rr.rtype == wire.TYPE_CNAME and rr.owner in names:
                target = wire.rdata_name(packet, rr)
                if target not in names:
                    names.add(target)
                    changed = True
    return names


def sanitize_upstream(packet: bytes, qname: bytes, qtype: int, qend: int, min_ttl: int,
                      max_ttl: int, negative_ttl: int) -> Answer:
    """Turn an upstream reply into a cacheable Answer holding only what belongs to the question.

    Kept: answer records owned by the question name or its CNAME chain; for negative answers
    the SOA whose owner encloses the name (its TTL set to the RFC 2308 negative TTL, capped by
    ``negative_ttl``). Dropped: other answer records, NS and glue, additional data — the
    classic poisoning vectors. TTLs are clamped to [min_ttl, max_ttl].
    """
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", packet)
    rcode = flags & 0xF
    answers, after_an = wire.read_rrs(packet, qend, an)
    authority, after_ns = wire.read_rrs(packet, after_an, ns)
    owners = chase_chain(packet, qname, answers) if answers else {qname}
    kept_an = [rr for rr in answers if rr.owner in owners and rr.rclass == wire.CLASS_IN]
    positive = rcode == wire.NOERROR and any(
        rr.owner in owners and (rr.rtype == qtype or rr.rtype == wire.TYPE_CNAME) for rr in kept_an)
    kept_ns = []
    if not positive and rcode in (wire.NOERROR, wire.NXDOMAIN):
        last = max(owners, key=len) if kept_an else qname
        for rr in authority:
            if rr.rtype == wire.TYPE_SOA and rr.rdlen >= 22 and wire.is_subdomain(last, rr.owner):
                kept_ns.append(rr)
                break
    # Fast case: everything kept is a prefix of the original message, so compression pointers
    # (which only point backwards) stay valid and we can slice instead of re-encoding.
    if len(kept_an) == len(answers) and (not kept_ns or (len(authority) == 1 and kept_ns[0] is authority[0])):
        end = after_ns if kept_ns else after_an
        sections = packet[qend:end]
        base = qend
        rrs = kept_an + kept_ns
    else:
        parts = []
        rrs = []
        pos = 0
        for rr in kept_an + kept_ns:
            rdata = wire.rdata_uncompressed(packet, rr)
            rec = wire.build_rr(rr.owner, rr.rtype, rr.rclass, rr.ttl, rdata)
            parts.append(rec)
            ttl_offset = pos + len(rr.owner) + 4
            rrs.append(_Relocated(packet, rr, ttl_offset))
            pos += len(rec)
        sections = b"".join(parts)
        base = 0
    offsets = []
    ttls = []
    buf = bytearray(sections)
    for rr in rrs:
        off = rr.ttl_offset - base
        if rr.rtype == wire.TYPE_SOA and not positive:
            minimum = struct.unpack_from("!I", packet, rr.end - 4)[0] if isinstance(rr, wire.RR) \
                else rr.minimum
            ttl = min(rr.ttl, minimum, negative_ttl)
        else:
            ttl = min(max(rr.ttl, min_ttl), max_ttl)
        struct.pack_into("!I", buf, off, ttl)
        offsets.append(off)
        ttls.append(ttl)
    lifetime = None
    if positive:
        lifetime = min(ttls) if ttls else None
    elif kept_ns:
        lifetime = ttls[-1]
    elif rcode in (wire.NOERROR, wire.NXDOMAIN) and kept_an:
        lifetime = min(ttls)  # a CNAME chain ending in no data: keep it as long as the chain
    return Answer(rcode, Decision.RESOLVED, bytes(buf), len(kept_an), len(kept_ns), 0,
                  tuple(offsets), tuple(ttls), lifetime, aa=False)


class _Relocated:
    """An RR re-encoded into new sections: same facts, new TTL offset."""

    __slots__ = ("rtype", "ttl", "ttl_offset", "minimum")

    def __init__(self, packet: bytes, rr: wire.RR, ttl_offset: int):
        self.rtype = rr.rtype
        self.ttl = rr.ttl
        self.ttl_offset = ttl_offset
        self.minimum = struct.unpack_from("!I", packet, rr.end - 4)[0] if rr.rtype == wire.TYPE_SOA else 0
