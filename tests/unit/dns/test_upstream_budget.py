"""The upstream in-flight budget is shared per client, and questions that keep timing out cost
less each time (issue 20, item 5). Exchanges are real (tests/support/responder.py); the memo's
time is an injected clock.
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from burrow.dns import upstream as upstream_mod
from burrow.dns import wire
from burrow.dns.cache import AnswerCache
from burrow.dns.decision import Decision
from burrow.dns.stages.cache import CacheStage
from burrow.dns.shared import Routes
from burrow.dns.stages.forward import CacheLimits, ForwardStage
from burrow.dns.upstream import (SHORT_TIMEOUT_MIN, TIMEOUT_HOLD_BASE, TIMEOUT_MEMO_TTL, UpstreamError,
                                 UpstreamPool, UpstreamSettings)

from tests.support.timing import until

from tests.support.dnsq import make_query
from tests.support.responder import Responder
from .test_upstream_health import Clock


def q(name: str) -> bytes:
    return wire.text_to_name(name) + struct.pack("!HH", 1, 1)


# ---- the per-client share -------------------------------------------------------------------

def test_a_client_over_its_share_is_turned_away_and_others_are_not():
    async def main():
        async with Responder(drop=True) as up:
            pool = UpstreamPool([up.address], UpstreamSettings(timeout=30.0, max_attempts=1, max_inflight=8,
                                                               max_inflight_share=0.25))
            held = [asyncio.ensure_future(pool.query(q(f"a{i}.test"), 0, False, client="10.0.0.1"))
                    for i in range(2)]  # 8 * 0.25
            await until(lambda: len(up.seen) == 2)
            with pytest.raises(UpstreamError) as e:
                await pool.query(q("a2.test"), 0, False, client="10.0.0.1")
            assert e.value.busy and "this client" in str(e.value)
            assert len(up.seen) == 2  # not asked
            other = asyncio.ensure_future(pool.query(q("b.test"), 0, False, client="10.0.0.2"))
            await until(lambda: len(up.seen) == 3)
            assert pool.inflight == 3 and pool.slots.refused == 1
            for t in [*held, other]:
                t.cancel()
            await asyncio.gather(*held, other, return_exceptions=True)
            assert pool.inflight == 0 and pool.slots.held == {}  # every slot given back

    asyncio.run(main())


def test_burrows_own_questions_are_held_to_the_pool_cap_only():
    async def main():
        async with Responder(drop=True) as up:
            pool = UpstreamPool([up.address], UpstreamSettings(timeout=30.0, max_attempts=1, max_inflight=4,
                                                               max_inflight_share=0.25))
            held = [asyncio.ensure_future(pool.query(q(f"own{i}.test"), 0, False)) for i in range(4)]
            await until(lambda: len(up.seen) == 4)
            with pytest.raises(UpstreamError) as e:
                await pool.query(q("own5.test"), 0, False)
            assert e.value.busy and "this client" not in str(e.value)
            for t in held:
                t.cancel()
            await asyncio.gather(*held, return_exceptions=True)
            assert pool.inflight == 0

    asyncio.run(main())


class BusyPool:
    def __init__(self):
        self.clients = []

    async def query(self, question, qflags, do, client=None):
        self.clients.append(client)
        raise UpstreamError("too many upstream queries in flight from this client", wire.EDE_OTHER, busy=True)


def test_a_turned_away_query_does_not_fail_the_question_for_other_clients():
    """The SERVFAIL memo is per question: a client over its share must not put a question in
    it, or it would fail that question for everyone (e.g. asking a popular name while over)."""
    pool = BusyPool()
    forward = ForwardStage(Routes(pool), CacheLimits())
    cache = CacheStage(AnswerCache(1 << 20))
    answer = asyncio.run(cache.resolve(make_query("popular.example", client="192.168.1.66"),
                                       lambda query: forward.resolve(query, None)))
    assert answer.rcode == wire.SERVFAIL and answer.decision is Decision.RATE_LIMITED
    assert pool.clients == ["192.168.1.66"]  # charged to the client that asked
    assert not cache._failures


# ---- questions that keep timing out -----------------------------------------------------------

def spy_timeouts(pool: UpstreamPool) -> list:
    seen = []
    real = pool._attempt

    async def attempt(server, question, qflags, do, timeout=None):
        seen.append(timeout)
        return await real(server, question, qflags, do, timeout)

    pool._attempt = attempt
    return seen


def test_a_question_that_keeps_timing_out_is_asked_shorter_then_held_back():
    async def main():
        async with Responder(drop=True) as up:
            clock = Clock()
            timeout = 0.4
            pool = UpstreamPool([up.address], UpstreamSettings(timeout=timeout, max_attempts=3), clock=clock)
            attempts = spy_timeouts(pool)
            dead = q("dead.test")

            with pytest.raises(UpstreamError) as e:  # first time: every attempt, full timeout
                await pool.query(dead, 0, False, client="10.0.0.1")
            assert e.value.ede == wire.EDE_NO_REACHABLE_AUTHORITY
            assert attempts == [timeout] * 3

            attempts.clear()
            with pytest.raises(UpstreamError):  # second: once per server, shorter
                await pool.query(dead, 0, False, client="10.0.0.1")
            assert attempts == [max(SHORT_TIMEOUT_MIN, timeout / 2)]

            attempts.clear()
            asked = len(up.seen)
            with pytest.raises(UpstreamError) as e:  # then: SERVFAIL at once, nobody asked
                await pool.query(dead, 0, False, client="10.0.0.2")
            assert e.value.ede == wire.EDE_NO_REACHABLE_AUTHORITY and not e.value.busy
            assert attempts == [] and len(up.seen) == asked and pool.timeout_held == 1
            assert pool.inflight == 0

            clock.advance(TIMEOUT_HOLD_BASE)  # the hold is over: asked again, once
            with pytest.raises(UpstreamError):
                await pool.query(dead, 0, False)
            assert len(attempts) == 1
            clock.advance(TIMEOUT_HOLD_BASE)  # a third strike holds it twice as long
            with pytest.raises(UpstreamError):
                await pool.query(dead, 0, False)
            assert len(attempts) == 1

            # Other questions are not affected.
            attempts.clear()
            with pytest.raises(UpstreamError):
                await pool.query(q("other.test"), 0, False)
            assert attempts == [timeout] * 3

            # An answer clears the memo: the next failure starts from the full timeout again.
            up.drop = False
            clock.advance(2 * TIMEOUT_HOLD_BASE)
            reply, _ = await pool.query(dead, 0, False)
            assert reply[3] & 0xF == wire.NOERROR
            assert dead not in pool._timeouts

    asyncio.run(main())


def test_timeouts_are_forgotten_after_a_quiet_while():
    async def main():
        async with Responder(drop=True) as up:
            clock = Clock()
            pool = UpstreamPool([up.address], UpstreamSettings(timeout=0.3, max_attempts=2), clock=clock)
            attempts = spy_timeouts(pool)
            with pytest.raises(UpstreamError):
                await pool.query(q("dead.test"), 0, False)
            clock.advance(TIMEOUT_MEMO_TTL)
            attempts.clear()
            with pytest.raises(UpstreamError):
                await pool.query(q("dead.test"), 0, False)
            assert attempts == [0.3, 0.3]

    asyncio.run(main())


def test_the_timeout_memo_is_capped(monkeypatch):
    monkeypatch.setattr(upstream_mod, "TIMEOUT_MEMO_MAX", 4)
    pool = UpstreamPool([("127.0.0.1", 9)], UpstreamSettings())
    for i in range(10):
        pool._timed_out(q(f"n{i}.test"), 1000.0 + i)
    assert len(pool._timeouts) == 4
    assert set(pool._timeouts) == {q(f"n{i}.test") for i in range(6, 10)}  # the oldest went first
