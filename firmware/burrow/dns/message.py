"""The two objects that travel through the chain: a Query in, an Answer out.

An Answer keeps its records as wire bytes *after the question* (``sections``) with the offsets
of their TTLs, so the cache can age it and the fast path can splice any client's question
(and so its 0x20 case) in front without re-encoding anything.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from . import wire
from .decision import Decision, TraceEntry

if TYPE_CHECKING:
    from .explain import Explain


class Query:
    """One client question, parsed once. ``trace`` collects breadcrumbs as stages act.

    Besides the question it carries facts about this query alone, set by one part and read by
    a later one: ``admitted`` (the fast path's rate-limit verdict), ``route`` (conditional or a
    policy FORWARD rule chose the upstreams), ``policy_allowed`` (a policy ALLOW rule matched)
    and ``explain`` (a dry run). State that outlives a query and that several stages read is
    the shared state (dns/shared.py), never a flag here.
    """

    __slots__ = ("packet", "id", "flags", "qname", "question", "qtype", "qclass", "edns",
                 "client_ip", "client_port", "transport", "view", "mono", "trace", "admitted",
                 "route", "policy_allowed", "explain", "_text")

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
        # Set (a dns.explain.Explain) when the chain runs as a dry run for /api/blocklists/check:
        # stages then skip what has effects (upstream queries, cache writes, counters, events).
        self.explain: Explain | None = None
        self._text: str | None = None

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
    def cd(self) -> bool:
        """Checking Disabled: the client validates itself and wants data a validator would
        refuse, so such answers must never reach a CD=0 client (RFC 4035 §3.2.2)."""
        return bool(self.flags & wire.CD)

    @property
    def max_udp(self) -> int:
        if self.edns is None:
            return wire.PLAIN_UDP_MAX
        return min(self.edns.udp_size, wire.EDNS_UDP_MAX)

    def note(self, stage: str, action: str, rule: str = "", source: str = "", detail: str = "") -> None:
        self.trace.append(TraceEntry(stage, action, rule, source, detail))


class Answer:
    """A reply in the making: rcode, flags, record sections (after the question), TTL offsets.

    ``ttl`` is how long the answer may be reused (fast path, cache); None means never. ``ad``
    is a trusted upstream's word that the data validated (RFC 4035 §3.2.3); every answer
    Burrow makes itself has it False, and render() shows it only to clients that asked.
    """

    __slots__ = ("rcode", "aa", "ad", "an", "ns", "ar", "sections", "ttl_offsets", "ttls", "ttl",
                 "decision", "ede", "upstream")

    def __init__(self, rcode: int, decision: Decision, sections: bytes = b"", an: int = 0,
                 ns: int = 0, ar: int = 0, ttl_offsets: tuple[int, ...] = (), ttls: tuple[int, ...] = (),
                 ttl: float | None = None, aa: bool = False, ede: tuple[int, str] | None = None,
                 upstream: str = "", ad: bool = False):
        self.rcode = rcode
        self.aa = aa
        self.ad = ad
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

    def replace(self, **changes: object) -> "Answer":
        new = Answer.__new__(Answer)
        for slot in Answer.__slots__:
            setattr(new, slot, changes.get(slot, getattr(self, slot)))
        return new

    def aged(self, age: int) -> "Answer":
        """The same answer with every TTL lowered by ``age`` seconds (never below zero)."""
        if not self.ttl_offsets or age <= 0:
            return self
        return self.replace(sections=wire.patch_ttls(self.sections, self.ttl_offsets, self.ttls, age))


# Sentinels for "send nothing", compared by identity: a list or rule's drop (RPZ rpz-drop.)
# and the rate limiter's drop are logged and counted under their own decisions.
DROP = Answer(0, Decision.DROPPED)
RATE_LIMIT_DROP = Answer(0, Decision.RATE_LIMITED)


# What a stage hands a query on to: the rest of the chain (chain.Chain links them).
Next = Callable[[Query], Awaitable[Answer]]


def silent(answer: Answer) -> bool:
    """True for an answer that is no reply at all: the query is dropped."""
    return answer is DROP or answer is RATE_LIMIT_DROP


def read_answer_records(query: Query, answer: Answer) -> tuple[bytes, list[wire.RR]] | None:
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

    Over ``max_size`` the reply is cut to a TC=1 header so the client retries over TCP. AD is
    set when a trusted upstream set it and the client showed it understands it, with DO=1 or
    AD=1 (RFC 6840 §5.7-5.8); the fast path keys on this (DnsServer.remember).
    """
    ad = answer.ad and (query.flags & wire.AD or query.edns is not None and query.edns.do)
    flags = wire.response_flags(query.flags, answer.rcode, aa=answer.aa, ad=ad)
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
    opcode = flags & 0x7800  # copied into the reply (RFC 1035 §4.1.1)
    if opcode:  # RA, AD and CD are defined for QUERY only: of the query's bits, echo just RD
        rflags = wire.QR | opcode | (flags & wire.RD) | (rcode & 0xF)
    else:
        rflags = wire.response_flags(flags, rcode)
    opt = b""
    if rcode > 15 or ede is not None:
        opt = wire.opt_record(False, ede, rcode >> 4)
    return wire.header(qid, rflags, 1 if question else 0, 0, 0, 1 if opt else 0) + question + opt


MAX_CHAIN = 16  # CNAME/DNAME links followed; resolvers refuse longer chains anyway
# What a DNSSEC-aware client gets in the authority section besides the SOA: the denial proofs.
_PROOF_TYPES = frozenset({wire.TYPE_NSEC, wire.TYPE_NSEC3})
_DNSSEC_TYPES = frozenset({wire.TYPE_RRSIG, wire.TYPE_NSEC, wire.TYPE_NSEC3})


def follow_chain(packet: bytes, qname: bytes, qtype: int, rrs: list[wire.RR]) -> tuple[list[bytes], set[bytes]]:
    """The names the answer is about, in chain order, and the owners of the DNAMEs used.

    From the question name, each step takes the CNAME owned by the current name, or else a
    DNAME owned by one of its ancestors (RFC 6672 §2.2: the DNAME rewrites the ancestor part
    of the name; a server sends the CNAME it synthesised too, which then wins). The last name
    is the chain's end: its data, or its absence, is the answer. A CNAME question is not
    followed past its own name (the CNAME is the answer), nor is a loop.
    """
    names = [qname]
    dnames = set()
    current = qname
    for _ in range(MAX_CHAIN):
        target = None
        for rr in rrs:
            if rr.rtype == wire.TYPE_CNAME and rr.owner == current and target is None:
                target = wire.rdata_name(packet, rr)
            elif rr.rtype == wire.TYPE_DNAME and rr.owner != current and wire.is_subdomain(current, rr.owner):
                dnames.add(rr.owner)
                if target is None:
                    rewritten = current[:len(current) - len(rr.owner)] + wire.rdata_name(packet, rr)
                    target = rewritten if len(rewritten) <= 255 else None
        if qtype == wire.TYPE_CNAME or target is None or target in names:
            break
        names.append(target)
        current = target
    return names, dnames


def sanitize_upstream(packet: bytes, qname: bytes, qtype: int, qend: int, min_ttl: int,
                      max_ttl: int, negative_ttl: int, do: bool = False) -> Answer:
    """Turn an upstream reply into a cacheable Answer holding only what belongs to the question.

    Answer section: records owned by a name of the question's CNAME/DNAME chain (their RRSIGs
    included), and the DNAMEs the chain passed through with their RRSIGs. Authority section,
    for a negative answer (NXDOMAIN, or NOERROR without the asked type at the chain's end): the
    SOA of a zone enclosing the chain's end (RFC 2308; its TTL set to the negative TTL, capped
    by ``negative_ttl``). For a DNSSEC client (``do``), also the denial proofs: NSEC/NSEC3
    records and the RRSIGs over them and over the SOA, when their owner lies in a zone of this
    answer: the kept SOA's zone, or the zone that signed a kept answer record (the signer of
    its RRSIG, itself enclosing the signed name). That is how a wildcard answer keeps its
    no-closer-match proof (RFC 4035 §3.1.3, RFC 5155 §7.2). Everything else (NS, glue,
    additional data, records of other zones) is dropped: the classic poisoning vectors.
    TTLs are clamped to [min_ttl, max_ttl]; a negative answer's authority records to its
    negative TTL. ``ad`` carries the upstream's AD bit (whether to believe it is the caller's
    decision).
    """
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", packet)
    rcode = flags & 0xF
    answers, after_an = wire.read_rrs(packet, qend, an)
    authority, after_ns = wire.read_rrs(packet, after_an, ns)
    names, dnames = follow_chain(packet, qname, qtype, answers) if answers else ([qname], set())
    chain = set(names)
    kept_an = []
    for rr in answers:
        if rr.rclass != wire.CLASS_IN:
            continue
        if not do and rr.rtype in _DNSSEC_TYPES and rr.rtype != qtype:
            continue  # RFC 4035 §3.2.1: no DNSSEC records for a client that did not ask
        if rr.owner in chain or rr.owner in dnames and (
                rr.rtype == wire.TYPE_DNAME
                or rr.rtype == wire.TYPE_RRSIG and wire.rrsig_covered(packet, rr) == wire.TYPE_DNAME):
            kept_an.append(rr)
    end = names[-1]
    positive = rcode == wire.NOERROR and any(rr.owner == end and rr.rtype == qtype for rr in kept_an)
    soa = None
    zones = []
    if not positive and rcode in (wire.NOERROR, wire.NXDOMAIN):
        for rr in authority:
            if rr.rtype == wire.TYPE_SOA and rr.rclass == wire.CLASS_IN and rr.rdlen >= 22 \
                    and wire.is_subdomain(end, rr.owner):
                soa = rr
                zones.append(rr.owner)
                break
    kept_ns = []
    if do:
        for rr in kept_an:
            if rr.rtype == wire.TYPE_RRSIG:
                try:
                    signer = wire.rrsig_signer(packet, rr)
                except wire.WireError:
                    continue
                if wire.is_subdomain(rr.owner, signer):  # a zone signs only its own names
                    zones.append(signer)
    for rr in authority:
        if rr is soa:
            kept_ns.append(rr)
        elif zones and do and rr.rclass == wire.CLASS_IN and rr.rtype in _DNSSEC_TYPES \
                and any(wire.is_subdomain(rr.owner, zone) for zone in zones):
            if rr.rtype == wire.TYPE_RRSIG:
                covered = wire.rrsig_covered(packet, rr)
                if covered not in _PROOF_TYPES and (covered != wire.TYPE_SOA or soa is None):
                    continue
            kept_ns.append(rr)
    negative_cap = None
    if soa is not None:
        minimum = struct.unpack_from("!I", packet, soa.end - 4)[0]
        negative_cap = min(soa.ttl, minimum, negative_ttl)  # RFC 2308 §5
    kept = kept_an + kept_ns
    ttls = [min(max(rr.ttl, min_ttl), max_ttl) for rr in kept_an]
    if negative_cap is None:
        ttls += [min(max(rr.ttl, min_ttl), max_ttl) for rr in kept_ns]
    else:
        ttls += [min(rr.ttl, negative_cap) for rr in kept_ns]
    if len(kept_an) == len(answers) and all(a is b for a, b in zip(kept_ns, authority)):
        # Everything kept is a prefix of the original message, so compression pointers (which
        # only point backwards) stay valid: slice instead of re-encoding.
        buf = bytearray(packet[qend:kept_ns[-1].end if kept_ns else after_an])
        offsets = [rr.ttl_offset - qend for rr in kept]
    else:
        buf = bytearray()
        offsets = []
        for rr in kept:
            rdata = wire.rdata_uncompressed(packet, rr)
            offsets.append(len(buf) + len(rr.owner) + 4)
            buf += wire.build_rr(rr.owner, rr.rtype, rr.rclass, rr.ttl, rdata)
    for off, ttl in zip(offsets, ttls):
        struct.pack_into("!I", buf, off, ttl)
    lifetime = None
    if ttls and (positive or soa is not None):
        lifetime = min(ttls)  # a negative answer without its SOA is not cached (RFC 2308 §5)
    return Answer(rcode, Decision.RESOLVED, bytes(buf), len(kept_an), len(kept_ns), 0,
                  tuple(offsets), tuple(ttls), lifetime, aa=False, ad=bool(flags & wire.AD))
