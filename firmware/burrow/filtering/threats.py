"""Security events for threat-feed hits: a device asking for a known malware, phishing or
command-and-control name is worth telling the owner about, once — not ten thousand times.

:class:`ThreatReporter` is called by the filter stage for every query a ``threat`` list
blocks. It publishes a ``security.threat`` event (severity ``warning``; stored in the event
log, so visible in ``/api/events`` and ``/ws/events``) the first time a client asks for a
name, and again only after ``repeat_after`` seconds; an infected device that hammers its
C2 server every second makes one event per ten minutes, each saying how many hits it
summarises. A global cap per minute keeps a storm from many devices from flooding the
event log (and the SD card); what the cap suppressed is counted in the next event.
Totals since start are kept for /api/threat-feeds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable

from ..dns.message import Query

REPEAT_AFTER = 600.0  # seconds before the same client + name makes another event
MAX_TRACKED = 4096  # (client, name) pairs remembered; the oldest are forgotten first
MAX_PER_MINUTE = 30  # events a minute, all clients together


class ThreatReporter:
    def __init__(self, publish: Callable[[dict[str, Any]], None], clock: Callable[[], float] = time.monotonic,
                 repeat_after: float = REPEAT_AFTER, max_per_minute: int = MAX_PER_MINUTE):
        self.publish = publish
        self.clock = clock
        self.repeat_after = repeat_after
        self.max_per_minute = max_per_minute
        self.hits = 0  # threat-feed blocks since start
        self.events = 0
        self.suppressed = 0  # hits the per-minute cap kept out of the event log
        self.by_list: dict[str, int] = {}
        self._seen: OrderedDict[tuple[str, str], list[float]] = OrderedDict()  # → [last event time, hits since]
        self._minute = -1
        self._minute_events = 0

    def __call__(self, query: Query, list_name: str, entry: str) -> None:
        self.hits += 1
        self.by_list[list_name] = self.by_list.get(list_name, 0) + 1
        now = self.clock()
        key = (query.client_ip, query.name)
        seen = self._seen.get(key)
        if seen is not None:
            seen[1] += 1
            if now - seen[0] < self.repeat_after:
                return
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._minute_events = minute, 0
        if self._minute_events >= self.max_per_minute:
            self.suppressed += 1
            return
        self._minute_events += 1
        repeats = seen[1] if seen is not None else 1
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_TRACKED:
            self._seen.popitem(last=False)
        self.events += 1
        suppressed, self.suppressed = self.suppressed, 0
        summary = f"{query.client_ip} asked for {query.name}, listed by threat feed {list_name}"
        if repeats > 1:
            summary += f" ({repeats} queries since the last report)"
        self.publish({"type": "security.threat", "severity": "warning", "actor": "dns",
                      "client_ip": query.client_ip, "summary": summary,
                      "data": {"domain": query.name, "feed": list_name, "entry": entry,
                               "qtype": query.qtype, "queries": repeats,
                               "suppressed_events": suppressed}})

    def status(self) -> dict[str, object]:
        return {"hits": self.hits, "events": self.events, "by_feed": dict(self.by_list)}
