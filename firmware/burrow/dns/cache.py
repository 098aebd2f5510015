"""Answer cache: bounded by bytes, O(1) LRU eviction, TTLs that count down, stale retention.

Entries are Answers from upstream (already sanitized and TTL-clamped). An expired entry is
kept for ``STALE_WINDOW`` seconds so it can be served when upstreams fail (RFC 8767), unless
LRU pressure evicts it first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable

from .message import Answer

STALE_WINDOW = 86400.0  # RFC 8767 suggests 1–3 days; one day bounds how wrong stale data gets
# Bytes of Python objects per entry besides the record bytes: key tuple, CacheEntry, Answer,
# TTL tuples, dict slot. Measured with tracemalloc on CPython 3.11 x86-64: ~620 bytes for a
# one-record answer whose record bytes are 16.
ENTRY_OVERHEAD = 600
SERVFAIL_TTL = 5.0  # RFC 9520: cache resolution failures for seconds, not minutes
PREFETCH_FRACTION = 0.1  # a hit in the last 10% of an entry's life triggers a refresh
PREFETCH_MIN_TTL = 10  # below this, prefetching costs more than it saves


class CacheEntry:
    __slots__ = ("answer", "stored", "expires", "size", "prefetching")

    def __init__(self, answer: Answer, stored: float, expires: float, size: int):
        self.answer = answer
        self.stored = stored
        self.expires = expires
        self.size = size
        self.prefetching = False

    def remaining(self, now: float) -> float:
        return self.expires - now

    def needs_prefetch(self, now: float) -> bool:
        ttl = self.expires - self.stored
        return (not self.prefetching and ttl >= PREFETCH_MIN_TTL
                and self.expires - now <= ttl * PREFETCH_FRACTION)


# (question, DO, CD, route): what an answer depends on besides the question (stages/cache.py).
CacheKey = tuple[bytes, bool, bool, str]


class AnswerCache:
    """``get`` returns (entry, fresh) or (None, False); ``put`` stores with the answer's TTL."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic):
        self.max_bytes = max_bytes
        self.clock = clock
        self._entries: OrderedDict[CacheKey, CacheEntry] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.stale_hits = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, now: float | None = None) -> tuple[CacheEntry | None, bool]:
        entry, fresh = self.peek(key, now)
        if fresh:
            self._entries.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
            if entry is None:
                self._drop(key)  # absent, or expired past the stale window
        return entry, fresh

    def peek(self, key: CacheKey, now: float | None = None) -> tuple[CacheEntry | None, bool]:
        """What ``get`` finds, changing nothing: no hit or miss counted, no LRU move, nothing
        dropped (explaining a decision must leave the cache as it was)."""
        entry = self._entries.get(key)
        if entry is None:
            return None, False
        now = self.clock() if now is None else now
        if now < entry.expires:
            return entry, True
        if now - entry.expires > STALE_WINDOW:
            return None, False
        return entry, False

    def put(self, key: CacheKey, answer: Answer, ttl: float, now: float | None = None) -> None:
        if self.max_bytes <= 0 or ttl <= 0:
            return
        now = self.clock() if now is None else now
        size = len(answer.sections) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        self._entries[key] = CacheEntry(answer, now, now + ttl, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, victim = self._entries.popitem(last=False)
            self.bytes -= victim.size
            self.evictions += 1

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size

    def purge(self) -> int:
        """Empty the cache; returns how many entries were cleared."""
        n = len(self._entries)
        self._entries.clear()
        self.bytes = 0
        return n

    def resize(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        while self.bytes > self.max_bytes and self._entries:
            _, victim = self._entries.popitem(last=False)
            self.bytes -= victim.size
            self.evictions += 1

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "bytes": self.bytes, "max_bytes": self.max_bytes,
                "hits": self.hits, "misses": self.misses, "stale_hits": self.stale_hits,
                "evictions": self.evictions}
