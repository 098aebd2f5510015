"""A zone we are authoritative for, and the answers it gives (RFC 1034 §4.3.2, 2308, 4592).

Lookups work on the canonical Record text of :mod:`validate` and return Records, so the logic
is testable without packets; :func:`to_answer` turns the result into the wire sections the
DNS path splices after the client's question. Answers are right in the ways resolvers care
about: NXDOMAIN only for names that do not exist (an empty non-terminal is NODATA), the SOA in
the authority section of negative answers with the RFC 2308 TTL, CNAME chains followed inside
the zone, wildcards synthesised only where RFC 4592's closest-encloser rule allows, and
referrals (not answers) below a delegation.
"""

from __future__ import annotations

import datetime
import ipaddress
import struct
from functools import lru_cache

from ..dns import wire
from ..dns.decision import Decision
from ..dns.message import Answer
from ..dns.names import reverse_name
from ..dns.serial import next_serial
from .records import Record, TYPE_CODES, TYPE_NAMES
from .validate import RecordError, character_strings, in_zone, normalize_origin, split_strings, \
    validate_record

MAX_CHAIN = 16  # CNAME links followed inside one zone; resolvers give up around here too
_ANY_ORDER = ("SOA", "NS", "CNAME", "A", "AAAA", "MX", "TXT", "SRV", "PTR", "CAA")


class ZoneAnswer:
    """The outcome of one lookup. ``chase`` is the name outside this zone a CNAME chain ended
    at (the caller resolves it through the normal path); ``referral`` marks a delegation."""

    __slots__ = ("rcode", "aa", "answer", "authority", "additional", "chase", "referral")

    def __init__(self, rcode: int = wire.NOERROR, aa: bool = True, answer=None, authority=None,
                 additional=None, chase: str | None = None, referral: bool = False):
        self.rcode = rcode
        self.aa = aa
        self.answer: list[Record] = answer if answer is not None else []
        self.authority: list[Record] = authority if authority is not None else []
        self.additional: list[Record] = additional if additional is not None else []
        self.chase = chase
        self.referral = referral

    def __repr__(self) -> str:
        return "ZoneAnswer(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"

    @property
    def negative(self) -> bool:
        """NXDOMAIN or NODATA: no record of the asked type at the end of the chain."""
        return self.rcode == wire.NXDOMAIN or (not self.referral and any(
            r.type == "SOA" for r in self.authority))

    def to_answer(self, question_name, decision: Decision = Decision.LOCAL) -> Answer:
        """This outcome as the DNS path's Answer (:func:`to_answer`): the local stage asks the
        snapshot's answer for it, so the DNS core needs nothing from this package."""
        return to_answer(self, question_name, decision)


def _parent(name: str) -> str:
    return name.partition(".")[2]


class Zone:
    """The records of one zone, held as RRsets keyed by (owner, type)."""

    def __init__(self, origin: str, records=()):
        self.origin = normalize_origin(origin)
        self.rrsets: dict[tuple[str, str], list[Record]] = {}
        self._nodes: set[str] | None = None  # every existing name, empty non-terminals included
        self._cuts: set[str] = set()  # delegation points below the apex
        for record in records:
            self.add(record)

    # ---- contents ----------------------------------------------------------------------------

    def add(self, record: Record) -> bool:
        """Add a record (False if the same data is already there, whatever its TTL)."""
        rrset = self.rrsets.setdefault((record.name, record.type), [])
        if any(r.value == record.value for r in rrset):
            return False
        rrset.append(record)
        self._nodes = None
        return True

    def remove(self, record: Record) -> bool:
        """Remove the record with the same owner, type and value (the TTL is ignored)."""
        key = (record.name, record.type)
        rrset = self.rrsets.get(key, [])
        kept = [r for r in rrset if r.value != record.value]
        if len(kept) == len(rrset):
            return False
        if kept:
            self.rrsets[key] = kept
        else:
            del self.rrsets[key]
        self._nodes = None
        return True

    def records(self) -> list[Record]:
        return [r for rrset in self.rrsets.values() for r in rrset]

    def __iter__(self):
        return iter(self.records())

    def __len__(self) -> int:
        return sum(len(rrset) for rrset in self.rrsets.values())

    def rrset(self, name: str, rtype: str) -> list[Record]:
        return list(self.rrsets.get((name, rtype), ()))

    @property
    def soa(self) -> Record | None:
        rrset = self.rrsets.get((self.origin, "SOA"))
        return rrset[0] if rrset else None

    def contains(self, name: str) -> bool:
        """True when ``name`` (absolute, no trailing dot) is this zone's apex or below it."""
        return in_zone(name.lower().rstrip("."), self.origin)

    # ---- checks ------------------------------------------------------------------------------

    def validate(self, require_glue: bool = False) -> None:
        """Raise RecordError unless the zone could be served: every record valid and inside the
        zone, one SOA at the apex, NS at the apex, CNAMEs alone at their owner and not at the
        apex. ``require_glue`` also demands addresses for in-zone NS targets (named-checkzone
        refuses a zone without them)."""
        types_at: dict[str, set[str]] = {}
        for record in self.records():
            validate_record(record, self.origin)
            types_at.setdefault(record.name, set()).add(record.type)
            if record.type == "SOA" and record.name != self.origin:
                raise RecordError(f"SOA at {record.name}: an SOA belongs only at the zone apex", "name")
        if len(self.rrsets.get((self.origin, "SOA"), ())) != 1:
            raise RecordError(f"zone {self.origin} needs exactly one SOA record at its apex", "type")
        if not self.rrsets.get((self.origin, "NS")):
            raise RecordError(f"zone {self.origin} needs at least one NS record at its apex", "type")
        if "CNAME" in types_at.get(self.origin, ()):
            raise RecordError("a CNAME cannot sit at the zone apex (it has SOA and NS)", "type")
        for name, types in types_at.items():
            if "CNAME" in types:
                if len(self.rrsets[(name, "CNAME")]) > 1:
                    raise RecordError(f"{name} has more than one CNAME", "type")
                if len(types) > 1:
                    others = ", ".join(sorted(types - {"CNAME"}))
                    raise RecordError(f"{name} has a CNAME, so it can hold no other data (found {others})",
                                      "type")
        if require_glue:
            self._check_glue()

    def _check_glue(self) -> None:
        for (_name, rtype), rrset in self.rrsets.items():
            if rtype != "NS":
                continue
            for record in rrset:
                target = record.value.rstrip(".")
                if self.contains(target) and not (self.rrsets.get((target, "A"))
                                                   or self.rrsets.get((target, "AAAA"))):
                    raise RecordError(f"NS {target} is inside the zone but has no A or AAAA record",
                                      "value")

    # ---- lookup ------------------------------------------------------------------------------

    def _index(self) -> set[str]:
        """Existing names (with every ancestor up to the apex: empty non-terminals exist too)
        and the delegation points, rebuilt after a change."""
        if self._nodes is None:
            nodes = {self.origin}
            for name, _ in self.rrsets:
                while name not in nodes and name != self.origin and in_zone(name, self.origin):
                    nodes.add(name)
                    name = _parent(name)
            self._cuts = {name for name, rtype in self.rrsets if rtype == "NS" and name != self.origin}
            self._nodes = nodes
        return self._nodes

    def _cut_above(self, name: str) -> str | None:
        """The topmost delegation point at or above ``name`` (below the apex), if any."""
        if not self._cuts:
            return None
        found = None
        while name != self.origin and name:
            if name in self._cuts:
                found = name
            name = _parent(name)
        return found

    def _wildcard_for(self, name: str, nodes: set[str]) -> str | None:
        """RFC 4592 §3.3.1: the source of synthesis for a name that does not exist — the
        wildcard directly below its closest encloser, or None (an existing name or empty
        non-terminal on the way down blocks wildcards further up)."""
        encloser = name
        while encloser != self.origin:
            encloser = _parent(encloser)
            if encloser in nodes:
                break
        source = f"*.{encloser}" if encloser else "*"
        return source if source in nodes else None

    def _negative_soa(self) -> list[Record]:
        """RFC 2308 §3: the SOA with TTL min(SOA TTL, SOA MINIMUM)."""
        soa = self.soa
        if soa is None:
            return []
        minimum = int(soa.value.split()[6])
        return [Record(soa.name, "SOA", min(soa.ttl, minimum), soa.value)]

    def _rrset_as(self, owner: str, rtype: str, name: str) -> list[Record]:
        """An RRset answered for ``name`` (the qname, for wildcards) with one TTL: RFC 2181 §5.2
        wants equal TTLs in a set, the lowest is the safe one."""
        rrset = self.rrsets.get((owner, rtype), ())
        ttl = min((r.ttl for r in rrset), default=0)
        return [Record(name, rtype, ttl, r.value) for r in rrset]

    def _referral(self, cut: str, out: ZoneAnswer) -> ZoneAnswer:
        out.aa = False
        out.referral = True
        out.authority = self._rrset_as(cut, "NS", cut)
        for ns in out.authority:
            target = ns.value.rstrip(".")
            if self.contains(target):
                out.additional += self._rrset_as(target, "A", target) + self._rrset_as(target, "AAAA", target)
        return out

    def answer(self, qname, qtype: int) -> ZoneAnswer:
        """The authoritative answer for (qname, qtype); qname text or lower-case wire form.

        Raises ValueError for a name outside the zone (the caller routes by zone first).
        """
        name = wire.name_to_text(qname).lower() if isinstance(qname, bytes) else qname.lower().rstrip(".")
        if not self.contains(name):
            raise ValueError(f"{name} is not in zone {self.origin}")
        nodes = self._index()
        rtype = TYPE_NAMES.get(qtype)
        out = ZoneAnswer()
        seen = {name}
        for _ in range(MAX_CHAIN):
            cut = self._cut_above(name)
            if cut is not None:
                if out.answer:  # a chain led into a delegated child: the resolver takes it on
                    out.chase = name
                    return out
                return self._referral(cut, out)
            node = name if name in nodes else self._wildcard_for(name, nodes)
            if node is None:
                out.rcode = wire.NXDOMAIN  # RFC 6604: the rcode of the last name in the chain
                out.authority = self._negative_soa()
                return out
            if qtype == wire.TYPE_ANY:
                for t in _ANY_ORDER:
                    out.answer += self._rrset_as(node, t, name)
                if not any(r.name == name for r in out.answer):
                    out.authority = self._negative_soa()
                return out
            if rtype is not None and (node, rtype) in self.rrsets:
                out.answer += self._rrset_as(node, rtype, name)
                return out
            if (node, "CNAME") not in self.rrsets:
                out.authority = self._negative_soa()  # NODATA
                return out
            cname = self._rrset_as(node, "CNAME", name)
            out.answer += cname
            target = cname[0].value.rstrip(".")
            if target in seen:
                return out  # a loop: give what we have, the resolver stops too
            seen.add(target)
            if not self.contains(target):
                out.chase = target
                return out
            name = target
        return out

    # ---- maintenance -------------------------------------------------------------------------

    def bump_serial(self, today: datetime.date | None = None) -> int:
        """Advance the SOA serial after a change (secondaries and caches notice); returns it."""
        soa = self.soa
        if soa is None:
            raise RecordError(f"zone {self.origin} has no SOA to bump", "type")
        fields = soa.value.split()
        fields[2] = str(next_serial(int(fields[2]), today))
        self.rrsets[(self.origin, "SOA")] = [soa._replace(value=" ".join(fields))]
        return int(fields[2])


# ---- reverse names ----------------------------------------------------------------------------

def ptr_name(ip: str) -> str:
    """The reverse-lookup owner of an address (``names.reverse_name``), or RecordError."""
    try:
        return reverse_name(ip)
    except ValueError:
        raise RecordError(f"{ip!r} is not an IP address", "value") from None


# ---- wire form --------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def rdata(rtype: str, value: str) -> bytes:
    """Wire RDATA of a canonical value (names uncompressed, as RFC 3597 asks for new types)."""
    if rtype == "A":
        return ipaddress.IPv4Address(value).packed
    if rtype == "AAAA":
        return ipaddress.IPv6Address(value).packed
    if rtype in ("CNAME", "NS", "PTR"):
        return wire.text_to_name(value)
    if rtype == "MX":
        pref, host = value.split()
        return struct.pack("!H", int(pref)) + wire.text_to_name(host)
    if rtype == "SRV":
        prio, weight, port, target = value.split()
        return struct.pack("!HHH", int(prio), int(weight), int(port)) + wire.text_to_name(target)
    if rtype == "SOA":
        mname, rname, *numbers = value.split()
        return wire.text_to_name(mname) + wire.text_to_name(rname) + struct.pack("!5I", *map(int, numbers))
    if rtype == "TXT":
        return b"".join(bytes([len(s)]) + s for s in character_strings(value))
    if rtype == "CAA":
        (flags, _), (tag, _), (raw, _) = split_strings(value)
        return bytes([int(flags), len(tag)]) + tag + raw
    raise ValueError(f"no wire form for type {rtype}")


def to_answer(zone_answer: ZoneAnswer, question_name, decision: Decision = Decision.LOCAL) -> Answer:
    """A :class:`burrow.dns.message.Answer` holding ``zone_answer``'s sections.

    Owners equal to the question name are written as a pointer to it (offset 12), so the
    client's 0x20 case shows and the sections splice after any copy of the question.
    ``ttl`` (how long the fast path may reuse it) is the smallest TTL in it.
    """
    qname = wire.name_to_text(question_name).lower() if isinstance(question_name, bytes) \
        else question_name.lower().rstrip(".")
    parts: list[bytes] = []
    offsets: list[int] = []
    ttls: list[int] = []
    pos = 0
    for record in zone_answer.answer + zone_answer.authority + zone_answer.additional:
        owner = b"\xc0\x0c" if record.name == qname else wire.text_to_name(record.name)
        rr = wire.build_rr(owner, TYPE_CODES[record.type], wire.CLASS_IN, record.ttl,
                           rdata(record.type, record.value))
        offsets.append(pos + len(owner) + 4)
        ttls.append(record.ttl)
        parts.append(rr)
        pos += len(rr)
    return Answer(zone_answer.rcode, decision, b"".join(parts),
                  an=len(zone_answer.answer), ns=len(zone_answer.authority), ar=len(zone_answer.additional),
                  ttl_offsets=tuple(offsets), ttls=tuple(ttls), ttl=min(ttls) if ttls else None,
                  aa=zone_answer.aa)
