"""The fast path: final answer bytes for repeated questions, replayed without building objects.

Entries are keyed by view (the client's group), EDNS shape (none / EDNS / EDNS+DO) and the
lower-case question. A hit puts the client's ID in front of the stored reply, whose question is
stored lower-case; a mixed-case (0x20) question is spliced in instead, so the reply keeps the
client's case. TTLs are aged once per second of age. Anything that could change an answer
(lists, rules, groups, pause, local data, config) bumps the generation, which drops every
entry at once: correctness never depends on finding the entries a change affects.
"""

from __future__ import annotations

from collections import OrderedDict

from . import wire
from .decision import Decision, TraceEntry

FAST_MAX_ENTRIES = 20000  # per process; ~20k distinct questions covers a home's working set
FAST_MAX_BYTES = 8 * 1024 * 1024  # memory held (estimated as below); oldest evicted past it
# Python objects per entry besides its three byte strings (FastEntry, key, dict slot).
# Measured with tracemalloc on CPython 3.11 x86-64: ~580 bytes for a 69-byte reply.
ENTRY_OVERHEAD = 370
PREFETCH_HEADROOM = 0.9  # entries end at 90% of their TTL so the cache stage can prefetch

# How a stored decision is reported when replayed: a forwarded answer replayed is a cache hit.
_HIT_DECISION = {Decision.RESOLVED: Decision.CACHED, Decision.FORWARDED_CONDITIONAL: Decision.CACHED,
                 Decision.ALLOWED: Decision.CACHED}
_HIT_TRACE = (TraceEntry("cache", "hit", "", "response_cache", "fast path"),)
STORABLE = frozenset({Decision.RESOLVED, Decision.CACHED, Decision.BLOCKED, Decision.ALLOWED,
                      Decision.LOCAL, Decision.REDIRECTED, Decision.FORWARDED_CONDITIONAL})


class FastEntry:
    __slots__ = ("expires", "stored", "deadline", "base", "body", "question", "length", "size", "qname_end",
                 "offsets", "ttls", "flags", "mask", "qtail", "domain", "qtype", "rcode", "decision",
                 "upstream", "trace", "row_parts")

    def __init__(self, packet: bytes, qname_end: int, offsets: tuple[int, ...], ttls: tuple[int, ...],
                 stored: float, expires: float, domain: str, qtype: int, decision: Decision, upstream: str,
                 trace: tuple[TraceEntry, ...], ad_sensitive: bool = False) -> None:
        # The question name is stored lower-case, so a hit whose name is lower-case (most stub
        # resolvers) matches ``question`` byte for byte and the reply is the client's ID plus
        # ``body``; only a mixed-case (0x20) name is spliced in.
        name = packet[12:qname_end]
        lower = name.lower()
        if lower != name:
            packet = packet[:12] + lower + packet[qname_end:]
        self.stored = stored
        self.expires = expires
        self.qname_end = qname_end
        self.offsets = offsets
        self.ttls = ttls
        self.base = packet  # as stored (age 0); body is the current rendering, from byte 2 on
        self.body = packet[2:]
        self.question = packet[12:qname_end + 4]  # lower-case name, exact type+class
        self.qtail = packet[qname_end:qname_end + 4]  # exact type+class (lower() must not blur them)
        self.length = len(packet)
        self.size = 3 * len(packet) + ENTRY_OVERHEAD  # base, body, key+question, objects
        # RD as the query had it and CD: flags are baked into the reply, so a query must match
        # them (bit 0 of byte 2 and bits of byte 3 cannot collide, so one number holds them).
        # The AD bit too when the reply's AD echoes the query's (a validated answer to a client
        # without DO shows AD only if it sent AD=1, message.render); otherwise it is not compared.
        self.mask = 0x30 if ad_sensitive else 0x10
        self.flags = packet[2] & 0x01 | packet[3] & self.mask
        self.domain = domain
        self.qtype = qtype
        self.rcode = packet[3] & 0xF
        self.decision = _HIT_DECISION.get(decision, decision)
        self.upstream = upstream
        self.trace = _HIT_TRACE if self.decision is Decision.CACHED else trace
        # The next moment anything changes: the TTLs tick down a second, or the entry ends.
        # A hit before it does no clock arithmetic beyond one comparison.
        self.deadline = min(expires, stored + 1)
        self.row_parts: tuple[object, ...] | None = None  # telemetry caches the query-log row pieces here

    def age_to(self, age: int) -> None:
        """Re-render with TTLs lowered by ``age`` seconds (done once per second of age)."""
        self.body = wire.patch_ttls(self.base, self.offsets, self.ttls, age)[2:]
        self.deadline = min(self.expires, self.stored + age + 1)


class FastPath:
    """Stores and replays final answers; ``generation`` moves whenever answers may change."""

    def __init__(self, max_entries: int = FAST_MAX_ENTRIES, max_bytes: int = FAST_MAX_BYTES):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.generation = 0
        self.views: dict[str, list[OrderedDict[bytes, FastEntry]]] = {}
        self.bytes = 0
        self.entries = 0

    def stores(self, view: str) -> list[OrderedDict[bytes, FastEntry]]:
        """The three stores (no EDNS, EDNS, EDNS+DO) of a view, created on first use."""
        s = self.views.get(view)
        if s is None:
            s = self.views[view] = [OrderedDict(), OrderedDict(), OrderedDict()]
        return s

    def invalidate(self) -> None:
        """Drop everything: called whenever lists, rules, groups, pause or local data change."""
        self.generation += 1
        for stores in self.views.values():  # emptied in place: memos may hold these lists
            for store in stores:
                store.clear()
        self.bytes = 0
        self.entries = 0

    def store(self, view: str, shape: int, key: bytes, packet: bytes, qname_end: int, offsets: tuple[int, ...],
              ttls: tuple[int, ...], ttl: float | None, now: float, domain: str, qtype: int, decision: Decision,
              upstream: str, trace: tuple[TraceEntry, ...], ad_sensitive: bool = False) -> None:
        if ttl is None or ttl < 1 or decision not in STORABLE:
            return
        life = ttl * PREFETCH_HEADROOM if ttl >= 10 else ttl
        entry = FastEntry(packet, qname_end, offsets, ttls, now, now + life, domain, qtype, decision,
                          upstream, trace, ad_sensitive)
        store = self.stores(view)[shape]
        old = store.pop(key, None)
        if old is not None:
            self._forget(old)
        store[key] = entry
        self.bytes += entry.size
        self.entries += 1
        while self.entries > self.max_entries or self.bytes > self.max_bytes:
            if not self._evict_one():
                break

    def _forget(self, entry: FastEntry) -> None:
        self.bytes -= entry.size
        self.entries -= 1

    def _evict_one(self) -> bool:
        for stores in self.views.values():
            for store in stores:
                if store:
                    _, victim = store.popitem(last=False)
                    self._forget(victim)
                    return True
        return False

    def stats(self) -> dict[str, int]:
        return {"entries": self.entries, "bytes": self.bytes, "generation": self.generation}
