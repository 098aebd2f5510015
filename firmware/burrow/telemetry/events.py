"""In-process publish/subscribe for live updates (queries, status changes) to the web layer.

Components publish and never wait: each subscriber has its own bounded queue, and a subscriber
that falls behind loses its OLDEST messages (the newest are what a live view wants). The loss is
counted and handed to the consumer with the next message it reads, so a websocket can tell the
browser "n events skipped".

Everything runs on the asyncio loop thread. From another thread (gpiozero callbacks, executor
work) hop over with ``loop.call_soon_threadsafe(bus.publish, topic, payload)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

# Each subscriber is a websocket or an internal consumer; a phone admin page opens one or two.
# The cap bounds memory (queues × maxsize) if clients leak connections.
MAX_SUBSCRIBERS = 64
DEFAULT_QUEUE_SIZE = 256  # messages buffered per subscriber before the oldest are dropped
MAX_QUEUE_SIZE = 10_000  # the most a subscriber may ask for
ALL_TOPICS = "*"  # subscribe to this topic to receive every topic

_CLOSED = object()  # queued to wake a consumer blocked in get() when it is unsubscribed


class TooManySubscribersError(RuntimeError):
    """``subscribe`` was called with ``MAX_SUBSCRIBERS`` subscriptions already open."""


class SubscriptionClosed(Exception):
    """``get`` on a subscription that has been unsubscribed."""


class Event(NamedTuple):
    """One delivered message. ``lost`` is how many messages this subscriber missed (dropped
    because its queue was full) just before this one."""

    topic: str
    payload: Any
    lost: int


class Subscription:
    """A consumer's view of the bus: ``await sub.get()`` or ``async for event in sub``.

    ``lost`` is the running total of dropped messages. Iteration ends, and ``get`` raises
    SubscriptionClosed, once the subscription is unsubscribed.
    """

    def __init__(self, bus: EventBus, topics: frozenset[str], maxsize: int):
        self.topics = topics
        self.lost = 0
        self.closed = False
        self._bus = bus
        self._queue: asyncio.Queue = asyncio.Queue(maxsize)
        self._lost_since_get = 0  # drops not yet reported to the consumer

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    async def get(self) -> Event:
        """The next message, waiting if there is none."""
        if self.closed and self._queue.empty():
            raise SubscriptionClosed
        item = await self._queue.get()
        if item is _CLOSED:
            raise SubscriptionClosed
        lost, self._lost_since_get = self._lost_since_get, 0
        return Event(item[0], item[1], lost)

    def pending(self) -> int:
        """Messages waiting to be read."""
        return self._queue.qsize()

    def close(self) -> None:
        """Same as ``bus.unsubscribe(self)``."""
        self._bus.unsubscribe(self)

    def _offer(self, item: Any) -> None:
        queue = self._queue
        if queue.full():
            queue.get_nowait()  # drop the oldest: a live view wants the newest
            if item is not _CLOSED:
                self.lost += 1
                self._lost_since_get += 1
        queue.put_nowait(item)


class EventBus:
    """Topics to bounded per-subscriber queues. ``publish`` never blocks or awaits."""

    def __init__(self, max_subscribers: int = MAX_SUBSCRIBERS):
        self.max_subscribers = max_subscribers
        self._by_topic: dict[str, list[Subscription]] = {}
        self._subscriptions: set[Subscription] = set()
        self.published = 0

    def subscribe(self, topics: str | Iterable[str],
                  maxsize: int = DEFAULT_QUEUE_SIZE) -> Subscription:
        """Open a subscription to ``topics`` (one name, several, or ``"*"`` for all).

        Raises TooManySubscribersError past ``max_subscribers`` and ValueError for a
        ``maxsize`` outside 1..MAX_QUEUE_SIZE. Must be called on the loop thread.
        """
        if not 1 <= maxsize <= MAX_QUEUE_SIZE:
            raise ValueError(f"maxsize must be 1..{MAX_QUEUE_SIZE}, got {maxsize}")
        topic_set = frozenset([topics] if isinstance(topics, str) else topics)
        if not topic_set:
            raise ValueError("subscribe to at least one topic")
        if len(self._subscriptions) >= self.max_subscribers:
            raise TooManySubscribersError(
                f"event bus already has {self.max_subscribers} subscribers; close one first")
        sub = Subscription(self, topic_set, maxsize)
        self._subscriptions.add(sub)
        for topic in topic_set:
            self._by_topic.setdefault(topic, []).append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub`` and wake its consumer. Safe to call twice."""
        if sub not in self._subscriptions:
            return
        self._subscriptions.discard(sub)
        for topic in sub.topics:
            subs = self._by_topic.get(topic)
            if subs is not None:
                subs.remove(sub)
                if not subs:
                    del self._by_topic[topic]
        sub.closed = True
        sub._offer(_CLOSED)

    def has_subscribers(self, topic: str) -> bool:
        """True if a ``publish(topic, …)`` would reach anyone (lets publishers skip building
        payloads nobody reads)."""
        return topic in self._by_topic or ALL_TOPICS in self._by_topic

    def publish(self, topic: str, payload: Any) -> int:
        """Queue ``payload`` for every subscriber of ``topic``; return how many it reached."""
        self.published += 1
        item = (topic, payload)
        delivered = 0
        for key in (topic, ALL_TOPICS):
            for sub in self._by_topic.get(key, ()):
                if key == ALL_TOPICS and topic in sub.topics:
                    continue  # subscribed to both: deliver once
                sub._offer(item)
                delivered += 1
        return delivered

    def __len__(self) -> int:
        return len(self._subscriptions)
