"""Local: the owner's own names — local records, authoritative zones, auto-PTR — answered here.

Why it sits right after the guard, before policy and filter: local data is the owner's
statement of what a name is. A home name must never be blocked by a list that happens to
contain it, rewritten by a policy meant for internet names, or forwarded upstream (that would
leak it and return the wrong answer). The guard still runs first, so refused and rate-limited
clients cost nothing and ANY/CHAOS never reach local data.

The data is an immutable :class:`burrow.zones.localdata.LocalData` snapshot in ``self.data``,
handed in (the DNS core imports nothing from zones/); the app builds a new one after every
change and assigns it (then bumps the fast-path generation). Answers carry ``Decision.LOCAL``
and go through the fast path like any final answer, with these lifetimes:

* the smallest TTL in the answer (``zones.authority.to_answer``); a NODATA from local records
  (no SOA) the smallest TTL at that name;
* none for round-robin answers (several local addresses, rotated per answer): a replayed
  reply would freeze the order;
* for a CNAME leading out of local data, the smaller of the CNAME's TTL and the target's.

Probe names (dns/probes.py, ``<random>.check.burrow.test``): the admin page's "is this device
using Burrow?" check. A question under that suffix is recorded (name, client) and answered
NXDOMAIN here, never forwarded; every other query pays one ``endswith`` on its name.

CNAME to an outside name: the target is asked through ``next`` (policy, filter, cache, forward)
as a question of its own, so filtering applies to it; the reply is the CNAME record(s) followed
by the target's records, with the target's rcode. A blocked target gives a blocked answer.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

from .. import wire
from ..decision import Decision
from ..message import Answer, Next, Query, silent
from ..probes import DOTTED_SUFFIX, Probes
from ..shared import Options, Shared

# The target's outcome decides the reply's Decision when it is one of these (a blocked target
# must be logged as blocked); otherwise the reply is LOCAL.
_TARGET_DECISIONS = frozenset({Decision.BLOCKED, Decision.THREAT, Decision.REDIRECTED, Decision.REFUSED,
                               Decision.RATE_LIMITED, Decision.SERVFAIL})


class LocalResult(Protocol):
    """What a snapshot's lookup() gives (zones.localdata.LocalAnswer)."""

    rcode: int
    source: str
    chase: str | None
    lifetime: int | None
    rotated: bool

    def to_answer(self, question_name: bytes, decision: Decision = ...) -> Answer: ...


class LocalSnapshot(Protocol):
    """The local data the stage reads (zones.localdata.LocalData)."""

    empty: bool

    def lookup(self, qname: bytes, qtype: int, client_ip: str | None = ..., *,
               rotate: bool = ...) -> LocalResult | None: ...


class _NoData:
    """What the stage holds until the first snapshot arrives: nothing is local."""

    empty = True

    def lookup(self, qname: bytes, qtype: int, client_ip: str | None = None, *,
               rotate: bool = True) -> LocalResult | None:
        return None


class LocalStage:
    name = "local"

    def __init__(self, data: LocalSnapshot | None = None) -> None:
        # A zones.localdata.LocalData snapshot, handed in (the DNS core imports nothing from
        # zones/): lookup() gives a result whose to_answer() builds the Answer.
        self.data: LocalSnapshot = data if data is not None else _NoData()
        self.answered = 0
        self.chased = 0
        self.probes = Probes()  # the names the API hands out for the setup check

    @classmethod
    def from_config(cls, cfg: Options, shared: Shared) -> LocalStage:
        """No options of its own: the data arrives with storage (``set_data``)."""
        return cls()

    def set_data(self, data: LocalSnapshot) -> None:
        """Swap in a new snapshot (the zone service then announces it: Change.ZONES)."""
        self.data = data

    async def resolve(self, query: Query, next: Next) -> Answer:
        if query.name.endswith(DOTTED_SUFFIX):
            return self._probe(query)
        data = self.data
        if data.empty or query.qclass != wire.CLASS_IN:
            return await next(query)
        result = data.lookup(query.qname, query.qtype, query.client_ip, rotate=query.explain is None)
        if result is None:
            return await next(query)
        if query.explain is None:  # a dry run (dns/explain.py) counts nothing
            self.answered += 1
        if result.rcode == wire.SERVFAIL:
            query.note("local", "servfail", rule=result.source, source="zones",
                       detail=f"zone {result.source} has expired or was never transferred")
            return Answer(wire.SERVFAIL, Decision.SERVFAIL,
                          ede=(wire.EDE_NO_REACHABLE_AUTHORITY, f"zone {result.source}: no current copy"))
        source = "local_records" if result.source in ("local", "auto-ptr") else "zone"
        query.note("local", "answer", rule=result.source, source=source,
                   detail="chase " + result.chase if result.chase else "")
        answer = result.to_answer(query.qname, Decision.LOCAL)
        if answer.ttl is None and result.lifetime is not None and not answer.an and not answer.ns:
            answer = answer.replace(ttl=result.lifetime)
        if result.rotated:
            answer = answer.replace(ttl=None)
        if result.chase and query.qtype != wire.TYPE_CNAME:
            return await self._chase(query, answer, result.chase, next)
        return answer

    def _probe(self, query: Query) -> Answer:
        """A setup-check name: recorded (unless a dry run) and answered NXDOMAIN, never replayed
        by the fast path (ttl None) and without an SOA (nothing caches it), so each lookup arrives."""
        known = self.probes.saw(query.name, query.client_ip) if query.explain is None else False
        query.note("local", "probe", source="setup_check",
                   detail="setup check name seen" if known else "unknown or expired setup check name")
        return Answer(wire.NXDOMAIN, Decision.LOCAL, ttl=None)

    def matching(self, query: Query) -> list[dict[str, Any]]:
        """The local record or zone that holds the question (dns/explain.py)."""
        data = self.data
        if data.empty or query.qclass != wire.CLASS_IN:
            return []
        result = data.lookup(query.qname, query.qtype, query.client_ip, rotate=False)
        if result is None:
            return []
        if result.source in ("local", "auto-ptr"):
            return [{"list": "local_records" if result.source == "local" else "auto_ptr", "kind": "local",
                     "entry": query.name}]
        return [{"list": "zone", "kind": "local", "entry": result.source}]

    async def _chase(self, query: Query, answer: Answer, target: str, next: Next) -> Answer:
        try:
            sub = subquery(query, target)
        except wire.WireError:
            return answer  # a target that is no valid name: the CNAME alone, as a resolver would
        if query.explain is None:
            self.chased += 1
        found = await next(sub)
        query.trace.extend(sub.trace)
        if silent(found):
            return found
        return merge(answer, sub, found)


def subquery(query: Query, target: str) -> Query:
    """A question for ``target`` with the client's type, class, flags, EDNS and view."""
    qname = wire.text_to_name(target)
    opt = b""
    if query.edns is not None:
        opt = wire.opt_record(query.edns.do, udp_size=max(query.edns.udp_size, wire.PLAIN_UDP_MAX))
    flags = query.flags & (wire.RD | wire.CD)
    packet = (wire.header(query.id, flags, 1, 0, 0, 1 if opt else 0) + qname
              + struct.pack("!HH", query.qtype, query.qclass) + opt)
    sub = Query(wire.parse_query(packet), packet, query.client_ip, query.client_port, query.transport,
                query.mono, query.view, admitted=True)
    sub.explain = query.explain  # a dry run's sub-question is one too
    return sub


def merge(local: Answer, sub: Query, found: Answer) -> Answer:
    """The local CNAME answer followed by the target's records (re-encoded without compression,
    since they were written after the target's question, not the client's)."""
    packet = bytes(12) + sub.question + found.sections
    count = found.an + found.ns + found.ar
    try:
        rrs, _ = wire.read_rrs(packet, 12 + len(sub.question), count)
        parts = [local.sections]
        offsets = list(local.ttl_offsets)
        ttls = list(local.ttls)
        pos = len(local.sections)
        for rr in rrs:
            rec = wire.build_rr(rr.owner, rr.rtype, rr.rclass, rr.ttl, wire.rdata_uncompressed(packet, rr))
            offsets.append(pos + len(rr.owner) + 4)
            ttls.append(rr.ttl)
            parts.append(rec)
            pos += len(rec)
    except wire.WireError:
        return local.replace(rcode=wire.SERVFAIL, decision=Decision.SERVFAIL, ttl=None)
    decision = found.decision if found.decision in _TARGET_DECISIONS else Decision.LOCAL
    ttl = None if local.ttl is None or found.ttl is None else min(local.ttl, found.ttl)
    return Answer(found.rcode, decision, b"".join(parts), an=local.an + found.an, ns=local.ns + found.ns,
                  ar=local.ar + found.ar, ttl_offsets=tuple(offsets), ttls=tuple(ttls), ttl=ttl,
                  aa=local.aa, ede=found.ede, upstream=found.upstream)
