"""EventBus: topics, bounded queues that drop the oldest, loss reporting, subscriber cap."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.timing import until

from burrow.telemetry.events import (ALL_TOPICS, Event, EventBus, SubscriptionClosed,
                                     TooManySubscribersError)


def run(coro):
    return asyncio.run(coro)


def test_delivers_by_topic():
    async def main():
        bus = EventBus()
        queries = bus.subscribe("queries")
        both = bus.subscribe(["queries", "status"])
        everything = bus.subscribe(ALL_TOPICS)
        assert bus.publish("queries", {"domain": "a.com"}) == 3
        assert bus.publish("status", "ready") == 2
        assert bus.publish("nobody", 1) == 1
        assert await queries.get() == Event("queries", {"domain": "a.com"}, 0)
        assert queries.pending() == 0
        assert [await both.get() for _ in range(2)] == [
            Event("queries", {"domain": "a.com"}, 0), Event("status", "ready", 0)]
        assert [(await everything.get()).topic for _ in range(3)] == [
            "queries", "status", "nobody"]
        assert bus.has_subscribers("anything")  # the "*" subscriber
        bus.unsubscribe(everything)
        assert not bus.has_subscribers("anything")
        assert bus.has_subscribers("queries")

    run(main())


def test_slow_subscriber_loses_oldest_and_is_told():
    async def main():
        bus = EventBus()
        slow = bus.subscribe("queries", maxsize=3)
        fast = bus.subscribe("queries", maxsize=100)
        for i in range(10):
            bus.publish("queries", i)  # never blocks, even with slow's queue full
        assert slow.lost == 7
        first = await slow.get()
        assert first == Event("queries", 7, 7)  # newest kept; 7 dropped before it, reported once
        assert [await slow.get() for _ in range(2)] == [Event("queries", 8, 0),
                                                        Event("queries", 9, 0)]
        assert [(await fast.get()).payload for _ in range(10)] == list(range(10))
        assert fast.lost == 0
        bus.publish("queries", 10)
        assert await slow.get() == Event("queries", 10, 0)
        assert slow.lost == 7  # running total stays

    run(main())


def test_publish_is_synchronous_and_needs_no_consumer_task():
    async def main():
        bus = EventBus()
        sub = bus.subscribe("x", maxsize=1)
        for i in range(1000):
            bus.publish("x", i)
        assert sub.pending() == 1 and sub.lost == 999
        assert (await sub.get()).payload == 999

    run(main())


def test_subscriber_cap():
    async def main():
        bus = EventBus(max_subscribers=2)
        a = bus.subscribe("x")
        bus.subscribe("x")
        with pytest.raises(TooManySubscribersError, match="2 subscribers"):
            bus.subscribe("y")
        a.close()
        bus.subscribe("y")  # room again
        assert len(bus) == 2
        with pytest.raises(ValueError):
            bus.subscribe("x", maxsize=0)

    run(main())


def test_unsubscribe_wakes_waiting_consumer_and_ends_iteration():
    async def main():
        bus = EventBus()
        sub = bus.subscribe("x")
        got = []

        async def consume():
            async for event in sub:
                got.append(event.payload)

        task = asyncio.create_task(consume())
        bus.publish("x", 1)
        await until(lambda: got == [1], what="the subscriber to take the first event")
        bus.publish("x", 2)
        bus.unsubscribe(sub)
        bus.unsubscribe(sub)  # twice is fine
        await asyncio.wait_for(task, 1)
        assert got == [1, 2]
        assert bus.publish("x", 3) == 0
        with pytest.raises(SubscriptionClosed):
            await sub.get()

    run(main())


def test_a_payload_naming_its_kind_event_gets_topic_dot_event_as_type():
    from burrow.storage.events import normalize

    e = normalize({"topic": "lists", "event": "compile_progress", "phase": "progress", "rules": 5}, "lists")
    assert e["type"] == "lists.compile_progress"
    assert e["data"]["phase"] == "progress" and e["data"]["rules"] == 5
    assert normalize({"type": "blocking.paused", "event": "x"}, "events")["type"] == "blocking.paused"
    assert normalize({"event": 7}, "lists")["type"] == "lists.unknown"
