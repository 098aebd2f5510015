"""Upstream health follows the transport, with hysteresis; error answers are relayed, not blamed.

The verdict and the reported count are driven by an injected clock; the exchanges are real
(an in-process loopback responder, tests/support/responder.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

import pytest

from burrow.dns import upstream as upstream_mod
from burrow.dns import wire
from burrow.dns.upstream import (DOWN_AFTER_FAILURES, DOWN_AFTER_SECONDS, LOOP_SUSPECT_S, REPORT_MIN_DWELL,
                                 UP_AFTER_ANSWERS, Upstream, UpstreamError, UpstreamPool, UpstreamSettings)
from tests.support.timing import until

from tests.support.responder import Responder

Q = wire.text_to_name("www.example.com") + struct.pack("!HH", 1, 1)


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def dead_port() -> int:
    """A loopback UDP port with nothing listening (the kernel answers ICMP unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the verdict --------------------------------------------------------------------------

def test_a_burst_of_failures_is_not_down_until_it_lasts():
    clock = Clock()
    s = Upstream("192.0.2.1", 53, clock)
    for _ in range(10):  # many failures at once: one bad moment, not a dead server
        s.failed("timeout", clock())
    assert s.healthy
    clock.advance(DOWN_AFTER_SECONDS)
    s.failed("timeout", clock())
    assert not s.healthy and s.down


def test_enough_time_but_too_few_failures_is_not_down():
    clock = Clock()
    s = Upstream("192.0.2.1", 53, clock)
    for _ in range(DOWN_AFTER_FAILURES - 1):
        s.failed("timeout", clock())
        clock.advance(DOWN_AFTER_SECONDS)
    assert s.healthy


def test_an_answer_breaks_the_streak():
    clock = Clock()
    s = Upstream("192.0.2.1", 53, clock)
    for _ in range(DOWN_AFTER_FAILURES - 1):
        s.failed("timeout", clock())
    clock.advance(DOWN_AFTER_SECONDS)
    s.answered(0.01, clock())  # e.g. a SERVFAIL: the server is there
    s.failed("timeout", clock())
    assert s.healthy and s.failures == 1


def test_down_comes_back_after_sustained_answers():
    clock = Clock()
    s = Upstream("192.0.2.1", 53, clock)
    for _ in range(DOWN_AFTER_FAILURES):
        s.failed("timeout", clock())
        clock.advance(DOWN_AFTER_SECONDS)
    assert s.down
    for _ in range(UP_AFTER_ANSWERS - 1):
        s.answered(0.01, clock())
    assert s.down  # one lucky answer is not a recovery
    s.failed("timeout", clock())
    for _ in range(UP_AFTER_ANSWERS - 1):
        s.answered(0.01, clock())
    assert s.down  # the count starts again after a failure
    s.answered(0.01, clock())
    assert s.healthy


# ---- the reported count -------------------------------------------------------------------

def test_reported_count_changes_at_most_once_per_dwell():
    clock = Clock()
    pool = UpstreamPool([("192.0.2.1", 53), ("192.0.2.2", 53)], UpstreamSettings(), clock=clock)
    a, b = pool.servers
    assert pool.healthy_count == 2
    a.down = True
    assert pool.healthy_count == 1  # the first change after a quiet spell shows at once
    a.down = False
    b.down = True
    seen = set()
    for _ in range(int(REPORT_MIN_DWELL) - 1):
        clock.advance(1.0)
        b.down = not b.down  # flapping underneath
        seen.add(pool.healthy_count)
    assert seen == {1}
    b.down = False
    clock.advance(1.0)
    assert pool.healthy_count == 2
    a.down = b.down = True
    clock.advance(REPORT_MIN_DWELL - 0.5)
    assert pool.healthy_count == 2  # held
    clock.advance(0.5)
    assert pool.healthy_count == 0


# ---- through real exchanges ---------------------------------------------------------------

def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("rcode", [wire.SERVFAIL, wire.REFUSED, wire.NOTIMP, wire.FORMERR])
def test_error_answers_keep_a_server_healthy_and_are_asked_once(rcode):
    async def main():
        clock = Clock()
        async with Responder(rcode=rcode) as up:
            pool = UpstreamPool([up.address], UpstreamSettings(timeout=2.0, max_attempts=3), clock=clock)
            for _ in range(20):
                with pytest.raises(UpstreamError) as err:
                    await pool.query(Q, 0, False)
                assert err.value.ede == wire.EDE_OTHER  # not 22: the server was reached
                assert "answered" in err.value.text
                clock.advance(1.0)
            (server,) = pool.servers
            assert server.healthy and pool.healthy_count == 1
            assert server.failures == 0 and server.error_answers == 20
            assert len(up.seen) == 20  # one question, one attempt: the same server is not re-asked
    run(main())


def test_the_upstreams_own_ede_is_relayed():
    async def main():
        async with Responder(rcode=wire.SERVFAIL, ede=(6, "signature expired")) as up:
            pool = UpstreamPool([up.address], UpstreamSettings(timeout=2.0))
            with pytest.raises(UpstreamError) as err:
                await pool.query(Q, 0, False)
            assert (err.value.ede, err.value.text) == (6, "signature expired")
    run(main())


def test_servfail_fails_over_to_another_server():
    async def main():
        async with Responder(rcode=wire.SERVFAIL) as bad, Responder() as good:
            pool = UpstreamPool([bad.address, good.address], UpstreamSettings(timeout=2.0))
            for _ in range(10):
                reply, server = await pool.query(Q, 0, False)
                assert reply[3] & 0xF == wire.NOERROR and server.port == good.port
            assert all(s.healthy for s in pool.servers)
    run(main())


def test_every_server_answering_servfail_is_not_unreachable():
    async def main():
        async with Responder(rcode=wire.SERVFAIL) as a, Responder(rcode=wire.REFUSED, ede=(20, "")) as b:
            pool = UpstreamPool([a.address, b.address], UpstreamSettings(timeout=2.0, max_attempts=5))
            with pytest.raises(UpstreamError) as err:
                await pool.query(Q, 0, False)
            assert err.value.ede != wire.EDE_NO_REACHABLE_AUTHORITY
            assert len(a.seen) == 1 and len(b.seen) == 1
    run(main())


def test_timeouts_are_no_reachable_authority_and_count_against_health():
    async def main():
        clock = Clock()
        async with Responder(drop=True) as up:
            pool = UpstreamPool([up.address], UpstreamSettings(timeout=0.05, max_attempts=3), clock=clock)
            with pytest.raises(UpstreamError) as err:
                await pool.query(Q, 0, False)
            assert err.value.ede == wire.EDE_NO_REACHABLE_AUTHORITY
            (server,) = pool.servers
            assert server.failures == 3 and server.healthy  # not yet: the failures took no time
            clock.advance(DOWN_AFTER_SECONDS)
            with pytest.raises(UpstreamError):
                await pool.query(Q, 0, False)
            assert not server.healthy
    run(main())


def test_unreachable_port_is_a_failure_and_a_dead_server_recovers():
    async def main():
        clock = Clock()
        port = dead_port()
        pool = UpstreamPool([("127.0.0.1", port)], UpstreamSettings(timeout=1.0, max_attempts=1), clock=clock)
        (server,) = pool.servers
        while server.healthy:
            with pytest.raises(UpstreamError) as err:
                await pool.query(Q, 0, False)
            assert err.value.ede == wire.EDE_NETWORK_ERROR
            clock.advance(1.0)
        assert clock.t - 1000.0 <= DOWN_AFTER_SECONDS + 1
        clock.advance(REPORT_MIN_DWELL)
        assert pool.healthy_count == 0
        # Something starts answering on that port: the client's queries bring it back.
        async with Responder(port=port) as up:
            for _ in range(UP_AFTER_ANSWERS):
                reply, _ = await pool.query(Q, 0, False)
            assert server.healthy and len(up.seen) == UP_AFTER_ANSWERS
        clock.advance(REPORT_MIN_DWELL)
        assert pool.healthy_count == 1
    run(main())


def test_a_down_server_tried_last_is_probed_after_its_back_off():
    async def main():
        clock = Clock()
        async with Responder() as primary, Responder(drop=True) as second:
            # Every exchange below is answered: the timeout only bounds a failure.
            pool = UpstreamPool([primary.address, second.address],
                                UpstreamSettings(timeout=5.0, max_attempts=1), clock=clock)
            a, b = pool.servers
            a.srtt, b.srtt = 0.001, 10.0  # the primary always sorts first
            for _ in range(DOWN_AFTER_FAILURES):  # make the second server down
                b.failed("timeout", clock())
                clock.advance(DOWN_AFTER_SECONDS)
            assert b.down
            second.drop = False  # it recovers; only probes can tell
            for _ in range(20):
                clock.advance(DOWN_AFTER_SECONDS)  # past any back-off
                reply, server = await pool.query(Q, 0, False)
                assert server is a
                await asyncio.gather(*pool._probes)
                if b.healthy:
                    break
            assert b.healthy and len(second.seen) == UP_AFTER_ANSWERS
    run(main())


def test_a_malformed_reply_is_a_failure():
    async def main():
        async with Responder(garble=True) as up:
            pool = UpstreamPool([up.address], UpstreamSettings(timeout=1.0, max_attempts=1))
            with pytest.raises(UpstreamError) as err:
                await pool.query(Q, 0, False)
            assert "malformed" in str(err.value)
            assert pool.servers[0].failures == 1
    run(main())


# ---- suspected loops expire ---------------------------------------------------------------

def test_a_suspected_loop_expires_with_a_log_line(caplog):
    clock = Clock()
    pool = UpstreamPool([("192.0.2.1", 53)], UpstreamSettings(), clock=clock)
    (s,) = pool.servers
    with caplog.at_level(logging.WARNING, logger="burrow.dns.upstream"):
        s.suspect_loop()
        assert s.loop_detected and not s.healthy and s.snapshot()["loop_detected"]
        assert pool.healthy_count == 0
        clock.advance(LOOP_SUSPECT_S - 1)
        assert s.loop_detected
        clock.advance(1)
        assert not s.loop_detected and s.healthy
    messages = [r.getMessage() for r in caplog.records]
    assert any("forwarding loop" in m for m in messages)
    assert any("using it again" in m for m in messages)


def test_a_configured_loop_stays():
    clock = Clock()
    s = Upstream("127.0.0.1", 53, clock)
    s.loop_detected = True  # the start-up check: the configuration names our own listener
    clock.advance(LOOP_SUSPECT_S * 100)
    assert s.loop_detected


def test_the_status_cannot_flap_faster_than_the_dwell():
    """The status reducer reads healthy_count (as the appliance and /readyz do): however the
    servers' verdicts change underneath, the shown state changes at most once per dwell."""
    from burrow.board.status import AppState, reduce

    clock = Clock()
    pool = UpstreamPool([("192.0.2.1", 53)], UpstreamSettings(), clock=clock)
    (s,) = pool.servers
    states = []
    for step in range(600):  # a minute, ten readings a second, the verdict flipping each second
        if step % 10 == 0:
            s.down = not s.down
        states.append(reduce(AppState(upstreams_total=1, upstreams_healthy=pool.healthy_count)).state)
        clock.advance(0.1)
    changes = [i for i in range(1, len(states)) if states[i] != states[i - 1]]
    assert changes and all(b - a >= REPORT_MIN_DWELL * 10 for a, b in zip(changes, changes[1:]))
    assert set(states) == {"ready", "no_upstream"}


# ---- told, not asked: UpstreamPool.watch (the status LED and /readyz follow it) ----------------

def go_down(server, clock):
    """DOWN_AFTER_FAILURES failures spanning DOWN_AFTER_SECONDS: the verdict flips to down."""
    for _ in range(DOWN_AFTER_FAILURES - 1):
        server.failed("timeout", clock())
    clock.advance(DOWN_AFTER_SECONDS)
    server.failed("timeout", clock())
    assert server.down


def test_the_pool_tells_of_each_change_of_the_healthy_count_dwell_included():
    clock = Clock()
    pool = UpstreamPool([("192.0.2.1", 53), ("192.0.2.2", 53)], UpstreamSettings(), clock=clock)
    told = []
    a, b = pool.servers

    async def main():
        pool.watch(lambda: told.append(pool.healthy_count))
        go_down(a, clock)  # the first change after a quiet spell shows at once
        assert told == [1]
        clock.advance(REPORT_MIN_DWELL - DOWN_AFTER_SECONDS - 0.05)
        go_down(b, clock)  # 0.05 s before the dwell is over: held back, looked at again then
        assert told == [1] and pool.healthy_count == 1
        clock.advance(0.1)
        await until(lambda: told == [1, 0])
        clock.advance(REPORT_MIN_DWELL - 0.05)
        for _ in range(UP_AFTER_ANSWERS):
            a.answered(0.01, clock())
        assert told == [1, 0]  # up again, but the dwell holds it
        clock.advance(0.1)
        await until(lambda: told == [1, 0, 1])

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_reader_looking_first_does_not_swallow_the_change():
    """/readyz reading the count after the dwell ended but before the pool's timer fired made
    the change itself, and the timer then saw nothing to tell: the status stayed no_upstream
    while /readyz said 200 (an integration run under load caught it)."""
    clock = Clock()
    pool = UpstreamPool([("192.0.2.1", 53)], UpstreamSettings(), clock=clock)
    told = []
    (a,) = pool.servers

    async def main():
        pool.watch(lambda: told.append(pool.healthy_count))
        go_down(a, clock)
        assert told == [0]
        for _ in range(UP_AFTER_ANSWERS):
            a.answered(0.01, clock())
        assert told == [0]  # held by the dwell
        clock.advance(REPORT_MIN_DWELL)
        assert pool.healthy_count == 1  # a reader, before the timer fires
        assert told == [0, 1]
        await asyncio.sleep(0.05)  # the timer finds nothing new: told once, not twice
        assert told == [0, 1]

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_suspected_loop_is_told_when_it_starts_and_when_it_ends(monkeypatch):
    # On the loop's own clock (the timer waits in real time), with the hold and dwell shortened.
    monkeypatch.setattr(upstream_mod, "LOOP_SUSPECT_S", 0.2)
    monkeypatch.setattr(upstream_mod, "REPORT_MIN_DWELL", 0.1)
    pool = UpstreamPool([("192.0.2.1", 53)], UpstreamSettings())
    told = []

    async def main():
        pool.watch(lambda: told.append(pool.healthy_count))
        (s,) = pool.servers
        s.suspect_loop()
        assert told == [0]
        await until(lambda: told == [0, 1])  # nobody asked: the end of the hold was told

    asyncio.run(asyncio.wait_for(main(), 20))


def test_servers_set_at_runtime_are_watched_too():
    clock = Clock()
    pool = UpstreamPool([("192.0.2.1", 53)], UpstreamSettings(), clock=clock)
    told = []

    async def main():
        pool.watch(lambda: told.append(pool.healthy_count))
        pool.servers = [Upstream("192.0.2.9", 53, clock)]  # runtime_config swaps them like this
        go_down(pool.servers[0], clock)
        assert told == [0]

    asyncio.run(asyncio.wait_for(main(), 20))
