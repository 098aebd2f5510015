"""Answer cache and the cache stage: hits age, LRU by bytes, negative, stale, prefetch, purge."""

import asyncio
import struct

from burrow.dns import wire
from burrow.dns.cache import ENTRY_OVERHEAD, AnswerCache
from burrow.dns.decision import Decision
from burrow.dns.message import Answer
from burrow.dns.stages.cache import STALE_TTL, STALE_WAIT, CacheStage
from tests.support.timing import run_virtual

from tests.support.dnsq import Next, make_query


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def answer(ttl=300, size=20):
    sections = struct.pack("!I", ttl) + b"x" * (size - 4)
    return Answer(wire.NOERROR, Decision.RESOLVED, sections, an=1, ttl_offsets=(0,), ttls=(ttl,), ttl=ttl)


def test_peek_finds_what_get_finds_and_changes_nothing():
    clock = Clock()
    c = AnswerCache(1 << 20, clock)
    c.put("a", answer(), 300)
    c.put("b", answer(), 300)
    assert c.peek("a")[1] and c.peek("nope") == (None, False)
    c.put("c", answer(), 300)
    assert list(c._entries) == ["a", "b", "c"]  # no LRU move
    clock.t += 301
    entry, fresh = c.peek("a")
    assert entry is not None and not fresh
    clock.t += 86400 + 10
    assert c.peek("a") == (None, False) and len(c) == 3  # past the stale window, yet not dropped
    assert c.stats()["hits"] == c.stats()["misses"] == 0


def test_get_fresh_then_expired_then_gone():
    clock = Clock()
    c = AnswerCache(1 << 20, clock)
    c.put("k", answer(), 300)
    entry, fresh = c.get("k")
    assert fresh and entry.answer.ttls == (300,)
    clock.t += 301
    entry, fresh = c.get("k")
    assert entry is not None and not fresh  # kept for serve-stale
    clock.t += 86400 + 10
    assert c.get("k") == (None, False)


def test_lru_eviction_by_bytes():
    c = AnswerCache(3 * (20 + ENTRY_OVERHEAD), Clock())
    for k in "abc":
        c.put(k, answer(), 300)
    c.get("a")  # a becomes most recent
    c.put("d", answer(), 300)
    assert c.get("b") == (None, False)
    assert c.get("a")[1] and c.get("d")[1]
    assert c.bytes <= c.max_bytes and c.evictions == 1


def test_purge_reports_count():
    c = AnswerCache(1 << 20, Clock())
    for k in range(5):
        c.put(k, answer(), 300)
    assert c.purge() == 5 and len(c) == 0 and c.bytes == 0


def run(coro):
    # A virtual clock: the stage's waits (serve-stale's timer, a background prefetch) end in
    # the order of their deadlines however loaded the machine is, and take no real time.
    return run_virtual(coro)


def test_stage_miss_passes_to_next_and_stores_then_hit_answers():
    stage = CacheStage(AnswerCache(1 << 20))
    nxt = Next(answer(300))
    first = run(stage.resolve(make_query(), nxt))
    assert first.decision is Decision.RESOLVED and len(nxt.calls) == 1
    second = run(stage.resolve(make_query(), nxt))
    assert len(nxt.calls) == 1
    assert second.decision is Decision.CACHED and second.ttls == (300,)


def test_stage_ttl_counts_down():
    t = [5000.0]
    stage = CacheStage(AnswerCache(1 << 20, lambda: t[0]), clock=lambda: t[0])
    nxt = Next(answer(300))
    run(stage.resolve(make_query(), nxt))
    t[0] += 42
    hit = run(stage.resolve(make_query(), nxt))
    assert struct.unpack_from("!I", hit.sections, 0)[0] == 258


def test_do_bit_and_route_separate_entries():
    stage = CacheStage(AnswerCache(1 << 20))
    nxt = Next(answer(300))
    run(stage.resolve(make_query(use_edns=0), nxt))
    run(stage.resolve(make_query(use_edns=0, want_dnssec=True), nxt))
    q = make_query()
    q.route = "rule:1"
    run(stage.resolve(q, nxt))
    assert len(nxt.calls) == 3


def test_servfail_is_not_cached_long_and_not_stored():
    stage = CacheStage(AnswerCache(1 << 20))
    fail = Answer(wire.SERVFAIL, Decision.SERVFAIL)
    nxt = Next(fail)
    run(stage.resolve(make_query(), nxt))
    ans = run(stage.resolve(make_query(), nxt))
    # the second one is answered from the brief failure memo, not upstream
    assert len(nxt.calls) == 1 and ans.rcode == wire.SERVFAIL
    assert len(stage.cache) == 0


def test_serve_stale_when_upstream_fails():
    t = [5000.0]
    stage = CacheStage(AnswerCache(1 << 20, lambda: t[0]), clock=lambda: t[0])
    run(stage.resolve(make_query(), Next(answer(60))))
    t[0] += 120
    ans = run(stage.resolve(make_query(), Next(Answer(wire.SERVFAIL, Decision.SERVFAIL))))
    assert ans.decision is Decision.STALE and ans.ede == (wire.EDE_STALE_ANSWER, "")
    assert ans.ttls == (STALE_TTL,) and ans.ttl is None


def test_serve_stale_when_upstream_is_slow():
    clock = Clock(10.0)
    stage = CacheStage(AnswerCache(1 << 20, clock), clock=clock)
    run(stage.resolve(make_query(), Next(answer(60))))
    clock.t += 120

    class Slow(Next):
        async def __call__(self, query):
            await asyncio.sleep(STALE_WAIT + 0.5)
            return answer(60)

    ans = run(stage.resolve(make_query(), Slow()))
    assert ans.decision is Decision.STALE


def test_prefetch_near_expiry_refreshes_in_background():
    t = [5000.0]
    stage = CacheStage(AnswerCache(1 << 20, lambda: t[0]), clock=lambda: t[0])
    nxt = Next(answer(100))

    async def scenario():
        await stage.resolve(make_query(), nxt)
        t[0] += 95  # inside the last 10% of the TTL
        hit = await stage.resolve(make_query(), nxt)
        await asyncio.sleep(0.01)
        return hit

    hit = run(scenario())
    assert hit.decision is Decision.CACHED
    assert len(nxt.calls) == 2 and stage.prefetches == 1
    entry, fresh = stage.cache.get(CacheStage.key(make_query()))
    assert fresh and entry.stored == 5095.0


def test_disabled_cache_always_passes():
    stage = CacheStage(AnswerCache(1 << 20), enabled=False)
    nxt = Next(answer())
    run(stage.resolve(make_query(), nxt))
    run(stage.resolve(make_query(), nxt))
    assert len(nxt.calls) == 2


def test_disabled_cache_answers_are_not_replayable_by_the_fast_path():
    stage = CacheStage(AnswerCache(1 << 20), enabled=False)
    ans = run(stage.resolve(make_query(), Next(answer())))
    assert ans.ttl is None and ans.decision is Decision.RESOLVED
