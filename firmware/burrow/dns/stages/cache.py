"""Cache: answer from the cache, refresh what is about to expire, serve stale when upstream fails.

Keys separate what must not mix: the question, the DO bit (DNSSEC records or not), the CD bit
(an answer fetched with checking disabled may be data a validator refused: it must never reach
a CD=0 client, RFC 4035 §3.2.2, RFC 6840 §5.9) and the route (which upstream set answered), so
a conditional or FORWARD-rule answer never leaks to clients of another route. The brief
SERVFAIL memo uses the same keys: a failure under CD=0 (bogus data) says nothing about CD=1.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .. import wire
from ..cache import SERVFAIL_TTL, AnswerCache, CacheEntry, CacheKey
from ..decision import Decision
from ..message import Answer, Next, Query
from ..shared import Options, Shared

T = TypeVar("T")

log = logging.getLogger(__name__)

STALE_TTL = 30  # RFC 8767 recommends 30 s for stale answers
STALE_WAIT = 1.8  # seconds to wait for upstream before answering stale (RFC 8767 client timer)
FAILURE_MEMO_MAX = 4096  # remembered recent failures (keys), for the brief SERVFAIL cache
_CACHEABLE = frozenset({Decision.RESOLVED, Decision.FORWARDED_CONDITIONAL, Decision.ALLOWED})


class CacheStage:
    name = "cache"

    def __init__(self, cache: AnswerCache, serve_stale: bool = True, prefetch: bool = True,
                 enabled: bool = True, clock: Callable[[], float] = time.monotonic):
        self.cache = cache
        self.clock = clock
        self.serve_stale = serve_stale
        self.prefetch = prefetch
        self.enabled = enabled
        # key → (until, the failure's EDE)
        self._failures: dict[CacheKey, tuple[float, tuple[int, str] | None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.prefetches = 0

    @classmethod
    def from_config(cls, cfg: Options, shared: Shared) -> CacheStage:
        stage = cls(AnswerCache(cfg["cache.max_bytes"]))
        stage.configure(cfg)
        return stage

    def configure(self, cfg: Options) -> None:
        """Apply ``[cache]`` live: on or off, serve-stale, prefetch, the cache's size (a smaller
        one drops the least recently used entries). Emptying it is the caller's choice."""
        self.enabled = cfg["cache.enabled"]
        self.serve_stale = cfg["cache.serve_stale"]
        self.prefetch = cfg["cache.prefetch"]
        self.cache.resize(cfg["cache.max_bytes"])

    @staticmethod
    def key(query: Query) -> CacheKey:
        return (query.qkey, query.do, query.cd, query.route)

    async def resolve(self, query: Query, next: Next) -> Answer:
        if not self.enabled:
            answer = await next(query)
            if answer.ttl is not None and answer.decision in _CACHEABLE:
                answer = answer.replace(ttl=None)  # cache off: the fast path must not replay it either
            return answer
        key = self.key(query)
        now = self.clock()
        explain = query.explain  # a dry run (dns/explain.py): read the cache, change nothing
        entry, fresh = self.cache.get(key, now) if explain is None else self.cache.peek(key, now)
        if fresh and entry is not None:  # (fresh: never None)
            age = int(now - entry.stored)
            query.note("cache", "hit", source="response_cache")
            if self.prefetch and explain is None and entry.needs_prefetch(now):
                entry.prefetching = True
                self._spawn(self._refresh(query, next, key))
            return entry.answer.aged(age).replace(decision=Decision.CACHED,
                                                  ttl=entry.expires - now)
        failed = self._failures.get(key)  # (until, the failure's EDE)
        if failed is not None and failed[0] > now:
            if entry is not None and self.serve_stale:
                return self._stale(query, entry)
            query.note("cache", "servfail_hit", source="response_cache", detail="recent upstream failure")
            return Answer(wire.SERVFAIL, Decision.SERVFAIL,
                          ede=failed[1] or (wire.EDE_NO_REACHABLE_AUTHORITY, "upstream failed recently"))
        if entry is not None and self.serve_stale and explain is None:
            # Expired: ask upstream, but do not keep the client waiting past STALE_WAIT.
            task = self._spawn(self._fetch(query, next, key))
            try:
                answer = await asyncio.wait_for(asyncio.shield(task), STALE_WAIT)
            except asyncio.TimeoutError:
                return self._stale(query, entry)
            if answer.decision is Decision.SERVFAIL:
                return self._stale(query, entry)
            return answer
        return await self._fetch(query, next, key)

    def _stale(self, query: Query, entry: CacheEntry) -> Answer:
        if query.explain is None:
            self.cache.stale_hits += 1
        query.note("cache", "stale", source="response_cache", detail="upstream unavailable")
        answer = entry.answer
        stale = answer.replace(
            sections=wire.patch_ttls(answer.sections, answer.ttl_offsets,
                                     tuple(STALE_TTL for _ in answer.ttls), 0),
            ttls=tuple(STALE_TTL for _ in answer.ttls), decision=Decision.STALE,
            ede=(wire.EDE_STALE_ANSWER, ""), ttl=None, ad=False)  # nobody vouches for old data
        return stale

    async def _fetch(self, query: Query, next: Next, key: CacheKey) -> Answer:
        answer = await next(query)
        if query.explain is not None:
            return answer  # a dry run's placeholder: nothing to remember
        now = self.clock()
        if answer.decision is Decision.SERVFAIL:
            if len(self._failures) >= FAILURE_MEMO_MAX:
                self._failures.clear()
            self._failures[key] = (now + SERVFAIL_TTL, answer.ede)  # replayed as it was (an
            # upstream's own SERVFAIL is no "No Reachable Authority")
        elif answer.ttl is not None and answer.decision in _CACHEABLE:
            self._failures.pop(key, None)
            self.cache.put(key, answer, answer.ttl, now)
        return answer

    async def _refresh(self, query: Query, next: Next, key: CacheKey) -> None:
        self.prefetches += 1
        query.note("cache", "prefetch", source="response_cache")
        clone = Query.__new__(Query)
        for slot in Query.__slots__:
            setattr(clone, slot, getattr(query, slot))
        clone.trace = []
        try:
            await self._fetch(clone, next, key)
        finally:
            entry, _ = self.cache.get(key, self.clock())
            if entry is not None:
                entry.prefetching = False

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def purge(self) -> int:
        self._failures.clear()
        return self.cache.purge()
