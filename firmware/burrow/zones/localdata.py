"""The local DNS data the resolver answers from: one immutable snapshot, swapped whole.

:class:`LocalData` is built from the store (:meth:`LocalData.from_store`) after every change
and handed to the local stage in one attribute assignment, so a query sees the old data or the
new, never a mix. Lookups work on text and Records (like :class:`burrow.zones.authority.Zone`)
and return a :class:`LocalAnswer` the stage turns into wire sections with ``to_answer``.

How a name is answered, in this order:

1. **Authoritative zones** (master and slave): the zone with the longest origin containing the
   name answers with :meth:`Zone.answer` — AA set, NXDOMAIN vs NODATA with the SOA, in-zone
   CNAME chains, RFC 4592 wildcards. A name inside a zone never goes upstream. A slave zone
   that has expired (or was never transferred) answers SERVFAIL.
2. **Local records** (seed 003: A, AAAA, CNAME for any name; not authoritative, AA clear):
   an exact name wins over wildcards; ``*.home.lan`` matches any name *below* home.lan, one or
   more labels, dot-bounded (never ``home.lan`` itself, never ``evilhome.lan``); the closest
   wildcard wins. A local name asked for a type it lacks is NODATA (no SOA: there is no zone),
   so it never leaks upstream. Local records also answer names a zone does not hold (the zone
   said NXDOMAIN): one store, the owner's data wins over nothing.
3. **Auto-PTR**: the addresses of local A/AAAA records (wildcards excepted) and of master
   zones' A/AAAA records answer PTR questions for their reverse names (in-addr.arpa, ip6.arpa),
   unless a zone holds that reverse name itself.

**Round robin.** A local A/AAAA set of several addresses is rotated one step per answer
(a counter per set: the one mutable thing in the snapshot). Such answers are marked
``rotated``: the stage gives them no fast-path lifetime, since a replayed answer would freeze
the order.

**Edits.** A snapshot is built once from every record (:meth:`LocalData.from_store`); after an
edit of local records, :meth:`LocalData.with_local` makes the next snapshot from the previous
one and the touched owner names' records alone (the unchanged parts are shared, the dicts
copied), so an edit costs the same with 20 local records as with 2,000.

**CNAMEs.** A chain is followed through all local data (zones and local records, across
both); where it leaves the local data the answer carries ``chase`` = the outside target, and
the stage resolves that through the rest of the chain (so filtering applies to the target).
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterable

from ..dns import wire
from .authority import MAX_CHAIN, Zone, ZoneAnswer, ptr_name
from .records import Record, TYPE_CODES, TYPE_NAMES
from .validate import RecordError

_ANY_ORDER = ("CNAME", "A", "AAAA", "PTR")


class LocalAnswer(ZoneAnswer):
    """A ZoneAnswer with what the stage needs besides the sections.

    ``source``: the zone origin that answered, ``"local"`` (local records) or ``"auto-ptr"``.
    ``rotated``: the order was rotated for this answer (round robin): never replay it.
    ``lifetime``: for a NODATA without SOA (local records), how long it may be replayed.
    """

    __slots__ = ("source", "rotated", "lifetime")

    def __init__(self, rcode: int = wire.NOERROR, aa: bool = False, answer=None, authority=None,
                 additional=None, chase: str | None = None, referral: bool = False, *, source: str = "local",
                 rotated: bool = False, lifetime: int | None = None):
        super().__init__(rcode, aa, answer, authority, additional, chase, referral)
        self.source = source
        self.rotated = rotated
        self.lifetime = lifetime

    def __repr__(self) -> str:
        slots = ZoneAnswer.__slots__ + LocalAnswer.__slots__
        return "LocalAnswer(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in slots) + ")"

    @classmethod
    def of(cls, zone_answer: ZoneAnswer, source: str) -> "LocalAnswer":
        z = zone_answer
        return cls(z.rcode, z.aa, z.answer, z.authority, z.additional, z.chase, z.referral, source=source)


def _text(qname) -> str:
    if isinstance(qname, (bytes, bytearray)):
        return wire.name_to_text(bytes(qname)).lower()
    return qname.lower().rstrip(".")


def _parent(name: str) -> str:
    return name.partition(".")[2]


class LocalData:
    """An immutable snapshot of zones, local records and auto-PTR names.

    ``zones``: (origin, type, records) for master and slave zones; ``local``: the local zone's
    Records; ``expired(origin) -> bool`` tells whether a slave zone's copy has expired (its
    :class:`burrow.zones.axfr.SecondaryZone`); without it a slave zone with data is served.
    """

    def __init__(self, zones: Iterable[tuple[str, str, Iterable[Record]]] = (),
                 local: Iterable[Record] = (), *, expired: Callable[[str], bool] | None = None):
        self._zones: dict[str, tuple[Zone, str]] = {}
        self._expired = expired
        # Auto-PTR sources kept apart (reverse name → PTR records), so an edit of local records
        # recomputes only the reverse names it touches; _ptr is what lookups read.
        self._zone_ptr: dict[str, tuple[Record, ...]] = {}
        for origin, ztype, records in zones:
            zone = Zone(origin, (r for r in records if r.type in TYPE_CODES))
            self._zones[zone.origin] = (zone, ztype)
            if ztype == "master":
                self._add_ptrs(self._zone_ptr, zone.records())
        self._exact: dict[str, dict[str, tuple[Record, ...]]] = {}
        self._wild: dict[str, dict[str, tuple[Record, ...]]] = {}  # "home.lan" for *.home.lan
        self._local_ptr: dict[str, tuple[Record, ...]] = {}
        local = list(local)
        for r in local:
            table, key = self._slot(r.name)
            node = table.setdefault(key, {})
            node[r.type] = node.get(r.type, ()) + (r,)
        self._add_ptrs(self._local_ptr, local)
        self._ptr = {name: self._merged_ptr(name) for name in self._zone_ptr.keys() | self._local_ptr.keys()}
        self._turns: dict[tuple[str, str], itertools.count] = {}
        self.records = sum(len(z) for z, _ in self._zones.values()) + len(local)
        self.empty = not (self._zones or self._exact or self._wild)

    def _slot(self, owner: str) -> tuple[dict, str]:
        """Where a local owner's records live: (_wild, "home.lan") for *.home.lan, else (_exact, name)."""
        if owner == "*" or owner.startswith("*."):
            return self._wild, owner[2:]
        return self._exact, owner

    @staticmethod
    def _add_ptrs(ptr: dict, records: Iterable[Record]) -> set[str]:
        """Add the PTRs of ``records``' addresses to ``ptr`` (one per target and reverse name; a
        new tuple each time, never changing one a snapshot holds); the reverse names touched."""
        touched = set()
        for r in records:
            if r.type not in ("A", "AAAA") or r.name == "*" or r.name.startswith("*."):
                continue
            try:
                reverse = ptr_name(r.value)
            except RecordError:
                continue
            target = r.name + "."
            recs = ptr.get(reverse, ())
            if not any(p.value == target for p in recs):
                ptr[reverse] = recs + (Record(reverse, "PTR", r.ttl, target),)
                touched.add(reverse)
        return touched

    def _merged_ptr(self, reverse: str) -> tuple[Record, ...] | None:
        """The PTR set lookups answer for ``reverse``: the zones' first, then local targets they
        lack, sorted by target; None when neither has one."""
        recs = self._zone_ptr.get(reverse, ())
        have = {p.value for p in recs}
        recs += tuple(p for p in self._local_ptr.get(reverse, ()) if p.value not in have)
        return tuple(sorted(recs, key=lambda r: r.value)) if recs else None

    def with_local(self, changed: dict[str, list[Record]]) -> "LocalData":
        """A new snapshot: this one with the local records of each owner in ``changed`` replaced
        by the records given for it (all it holds now; [] when it has none left).

        The zones are shared and the lookup tables copied at C speed; Python work is spent only
        on the changed owners and the reverse names of their old and new addresses. The result
        is the snapshot a full build from the same records would give (round-robin counters of
        untouched sets carry on)."""
        new = object.__new__(LocalData)
        new._zones, new._expired, new._zone_ptr = self._zones, self._expired, self._zone_ptr
        new._exact, new._wild, new._local_ptr = dict(self._exact), dict(self._wild), dict(self._local_ptr)
        new._turns = dict(self._turns)
        records = self.records
        touched: set[str] = set()
        targets = {owner + "." for owner in changed}
        for owner in changed:  # take out what the owners had, and their PTRs
            table, key = new._slot(owner)
            node: dict[str, tuple[Record, ...]] = table.pop(key, None) or {}
            for rtype, rrset in node.items():
                records -= len(rrset)
                new._turns.pop((owner, rtype), None)
                if rtype in ("A", "AAAA") and table is new._exact:
                    for r in rrset:
                        try:
                            touched.add(ptr_name(r.value))
                        except RecordError:
                            pass
        for reverse in touched:
            kept = tuple(p for p in new._local_ptr.get(reverse, ()) if p.value not in targets)
            if kept:
                new._local_ptr[reverse] = kept
            else:
                new._local_ptr.pop(reverse, None)
        for owner, recs in changed.items():  # put in what they hold now
            if not recs:
                continue
            table, key = new._slot(owner)
            node = {}
            for r in recs:
                node[r.type] = node.get(r.type, ()) + (r,)
            table[key] = node
            records += len(recs)
            touched |= new._add_ptrs(new._local_ptr, recs)
        new._ptr = dict(self._ptr)
        for reverse in touched:
            merged = new._merged_ptr(reverse)
            if merged is None:
                new._ptr.pop(reverse, None)
            else:
                new._ptr[reverse] = merged
        new.records = records
        new.empty = not (new._zones or new._exact or new._wild)
        return new

    @classmethod
    def from_store(cls, store, expired: Callable[[str], bool] | None = None) -> "LocalData":
        """A snapshot of everything in a :class:`burrow.zones.store.ZoneStore`."""
        zones, local = [], []
        for z in store.snapshot():
            if z.type == "local":
                local = z.records
            else:
                zones.append((z.origin, z.type, z.records))
        return cls(zones, local, expired=expired)

    # ---- questions ---------------------------------------------------------------------------

    def zone_for(self, name) -> tuple[str, str] | None:
        """(origin, type) of the zone with the longest origin containing ``name``, or None."""
        found = self._zone_of(_text(name))
        return None if found is None else (found[0].origin, found[1])

    def _zone_of(self, name: str):
        zones = self._zones
        if not zones:
            return None
        while True:
            hit = zones.get(name)
            if hit is not None:
                return hit
            if not name:
                return None
            name = _parent(name)

    def _wildcard(self, name: str):
        wild = self._wild
        if not wild or not name:
            return None, None
        while name:
            name = _parent(name)
            node = wild.get(name)
            if node is not None:
                return node, name
        return None, None

    def covers(self, name) -> bool:
        """True when local data answers for ``name``: a zone contains it, a local record (exact
        or wildcard) names it, or it is the reverse name of a local address."""
        name = _text(name)
        return (self._zone_of(name) is not None or name in self._exact or name in self._ptr
                or self._wildcard(name)[0] is not None)

    def lookup(self, qname, qtype: int, client_ip: str | None = None, *,
               rotate: bool = True) -> LocalAnswer | None:
        """The local answer for (qname, qtype), or None when local data has nothing to say.

        ``qname`` is text or lower-case wire form. ``client_ip`` is reserved for per-client
        views. The answer's ``chase`` names an outside CNAME target still to be resolved.
        ``rotate=False`` leaves round-robin sets in their stored order and their turn where it
        was (a look that must change nothing: explaining a decision).
        """
        if self.empty:
            return None
        name = _text(qname)
        out: LocalAnswer | None = None
        seen = {name}
        for _ in range(MAX_CHAIN):
            part = self._step(name, qtype, rotate)
            if part is None:
                if out is not None:
                    out.chase = name  # the chain leaves local data here
                return out
            if out is None:
                out = part
            else:
                out.answer += part.answer
                out.authority = part.authority
                out.additional = part.additional
                out.rcode = part.rcode
                out.referral = part.referral
                out.rotated = out.rotated or part.rotated
                out.lifetime = part.lifetime
                out.chase = None
            target = part.chase
            if target is None or part.rcode == wire.SERVFAIL:
                out.chase = None
                return out
            if target in seen:
                out.chase = None  # a loop: stop with what we have, as resolvers do
                return out
            seen.add(target)
            name = target
        if out is not None:  # (set on the first step)
            out.chase = None
        return out

    def _step(self, name: str, qtype: int, rotate: bool = True) -> LocalAnswer | None:
        hit = self._zone_of(name)
        if hit is not None:
            zone, ztype = hit
            if ztype == "slave" and (zone.soa is None or (self._expired is not None and self._expired(zone.origin))):
                return LocalAnswer(wire.SERVFAIL, False, source=zone.origin)
            answer = zone.answer(name, qtype)
            if answer.rcode == wire.NXDOMAIN and not answer.answer:
                other = self._local_step(name, qtype, rotate)  # local records and auto-PTR fill the gaps
                if other is not None:
                    return other
            return LocalAnswer.of(answer, zone.origin)
        return self._local_step(name, qtype, rotate)

    def _local_step(self, name: str, qtype: int, rotate: bool = True) -> LocalAnswer | None:
        node = self._exact.get(name)
        key = name
        source = "local"
        if node is None:
            node, suffix = self._wildcard(name)
            key = "*." + suffix if suffix else "*"
            if node is None:
                ptrs = self._ptr.get(name)
                if ptrs is None:
                    return None
                node, key, source = {"PTR": ptrs}, name, "auto-ptr"
        return self._answer_node(name, key, node, qtype, source, rotate)

    def _answer_node(self, name: str, key: str, node: dict, qtype: int, source: str,
                     rotate: bool = True) -> LocalAnswer:
        rtype = TYPE_NAMES.get(qtype)
        if qtype == wire.TYPE_ANY:
            records = [r for t in _ANY_ORDER for r in self._rrset(name, node.get(t, ()))]
            return LocalAnswer(answer=records, source=source, lifetime=self._ttl(node))
        rrset = node.get(rtype) if rtype is not None else None
        if rrset:
            records = self._rrset(name, rrset)
            rotated = False
            if len(records) > 1 and rtype in ("A", "AAAA"):
                if not rotate:
                    return LocalAnswer(answer=records, source=source, rotated=True)
                turns = self._turns.get((key, rtype))
                if turns is None:
                    turns = self._turns[(key, rtype)] = itertools.count()
                k = next(turns) % len(records)
                records = records[k:] + records[:k]
                rotated = True
            return LocalAnswer(answer=records, source=source, rotated=rotated)
        cname = node.get("CNAME")
        if cname:
            records = self._rrset(name, cname)
            return LocalAnswer(answer=records, source=source, chase=records[0].value.rstrip(".").lower())
        return LocalAnswer(source=source, lifetime=self._ttl(node))  # NODATA: the name is ours

    @staticmethod
    def _rrset(name: str, rrset) -> list[Record]:
        """The set answered for ``name`` (the qname, for wildcards) with one TTL (RFC 2181 §5.2)."""
        if not rrset:
            return []
        ttl = min(r.ttl for r in rrset)
        return [Record(name, r.type, ttl, r.value) for r in rrset]

    @staticmethod
    def _ttl(node: dict) -> int:
        return min((r.ttl for rrset in node.values() for r in rrset), default=300)

    def stats(self) -> dict:
        return {"zones": len(self._zones), "local_names": len(self._exact) + len(self._wild),
                "ptr_names": len(self._ptr), "records": self.records}
