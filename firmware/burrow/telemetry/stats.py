"""Live query statistics in per-minute buckets, so the API never scans the query log.

The Recorder calls ``add`` for every drained query (on the loop thread); the API reads
``summary`` / ``timeseries`` / ``realtime``. At start the buckets are seeded from the query log's
per-minute aggregates (``QueryLogDB.minute_counts``), so restarts keep the history.

Granularity is one wall-clock minute: a window of ``since_seconds`` covers the
``ceil(since_seconds / 60)`` whole minutes ending with the current (partial) one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable

from ..dns.decision import BLOCKED_DECISIONS, Decision, QueryRecord
from ..storage.querylog import iso_utc

log = logging.getLogger(__name__)

# 7 days of minutes: the longest window the stats API offers ("since=7d"). At ~300 bytes a
# bucket (measured) that is ~3 MB when full; longer periods are the query log's job.
MAX_BUCKETS = 7 * 24 * 60
# Per-second counters for the realtime view; more than the 60 s it reports, so the current
# (still filling) second never overwrites the oldest one still being read.
SECOND_SLOTS = 64
QPS_WINDOW = 10  # seconds averaged for "queries per second"

# Bucket layout: a plain list (cheap to bump in place).
_TOTAL, _BLOCKED, _CACHED, _SUM_MS = 0, 1, 2, 3
_DECISION_BASE = 4  # _DECISION_BASE + Decision value → count of that decision
_DECISION_SLOTS = max(Decision) + 1
_BUCKET_LEN = _DECISION_BASE + _DECISION_SLOTS


def _new_bucket() -> list[float]:
    bucket: list[float] = [0] * _BUCKET_LEN
    bucket[_SUM_MS] = 0.0
    return bucket


class StatsBuckets:
    """Query counters by wall-clock minute, capped at ``MAX_BUCKETS`` (7 days).

    Single-threaded: call everything from the loop thread.
    """

    def __init__(self) -> None:
        self._buckets: dict[int, list] = {}  # minute (unix seconds // 60) → bucket
        self._newest = -1  # highest minute seen
        self._cur_minute = -1  # memo of the last bucket touched: most adds hit the same minute
        self._cur: list[float] | None = None
        self._reset_seconds(-1)

    def _reset_seconds(self, newest: int) -> None:
        self._seconds = [[-1, 0, 0, 0] for _ in range(SECOND_SLOTS)]  # [second, total, blk, cch]
        self._newest_second = newest

    def __len__(self) -> int:
        return len(self._buckets)

    # ---- writing -------------------------------------------------------------------------------

    def add(self, wall_ts: float, record: QueryRecord) -> None:
        """Count one query answered at ``wall_ts`` (unix seconds)."""
        self.add_many(wall_ts, record[5], 1, record[6])

    def add_many(self, wall_ts: float, decision: int, count: int, sum_elapsed: float) -> None:
        """Count ``count`` queries with one ``decision`` answered within the second of
        ``wall_ts``, taking ``sum_elapsed`` seconds in all (the drain tallies fast-path hits
        per second and decision, then calls this once per tally)."""
        blocked = count if decision in BLOCKED_DECISIONS else 0
        cached = count if (decision == Decision.CACHED or decision == Decision.STALE) else 0
        minute = int(wall_ts // 60)
        bucket = self._cur if minute == self._cur_minute else None  # (None: no current minute)
        if bucket is None:
            bucket = self._bucket(minute)
            if bucket is None:
                return
        bucket[_TOTAL] += count
        bucket[_BLOCKED] += blocked
        bucket[_CACHED] += cached
        bucket[_SUM_MS] += sum_elapsed * 1000.0
        if 0 < decision < _DECISION_SLOTS:
            bucket[_DECISION_BASE + decision] += count

        second = int(wall_ts)
        if second > self._newest_second:
            self._newest_second = second
        elif second < self._newest_second - 2 * SECOND_SLOTS:
            # Far older than any late record can be (queries finish within seconds): the clock
            # went back. Forget the per-second counters, which hold "future" seconds now.
            self._reset_seconds(second)
        slot = self._seconds[second % SECOND_SLOTS]
        if slot[0] != second:
            if slot[0] > second:  # a late record whose slot already moved on: outside the window
                return
            slot[0], slot[1], slot[2], slot[3] = second, 0, 0, 0
        slot[1] += count
        slot[2] += blocked
        slot[3] += cached

    def seed(self, minute_rows: Iterable[tuple]) -> None:
        """Pre-fill from ``QueryLogDB.minute_counts`` rows
        ``(minute, decision, count, blocked, cached, sum_ms)``. Call once, before any ``add``,
        or queries already counted are counted twice."""
        for minute, decision, count, blocked, cached, sum_ms in minute_rows:
            bucket = self._bucket(int(minute))
            if bucket is None:
                continue
            bucket[_TOTAL] += count
            bucket[_BLOCKED] += blocked or 0
            bucket[_CACHED] += cached or 0
            bucket[_SUM_MS] += sum_ms or 0.0
            if 0 < decision < _DECISION_SLOTS:
                bucket[_DECISION_BASE + decision] += count

    def _bucket(self, minute: int) -> list | None:
        bucket = self._buckets.get(minute)
        if bucket is None:
            if minute <= self._newest - MAX_BUCKETS:
                # A minute a week older than the newest can only mean the wall clock jumped back
                # (boards without an RTC boot with a wrong clock until NTP syncs). The old
                # buckets are from a bogus time line: start over rather than drop every query.
                log.warning("wall clock went back %d minutes; live statistics reset",
                            self._newest - minute)
                self._buckets.clear()
                self._newest = -1
                self._cur_minute, self._cur = -1, None
            bucket = self._buckets[minute] = _new_bucket()
            if minute > self._newest:
                self._newest = minute
                self._evict()
        if minute >= self._cur_minute:
            self._cur_minute, self._cur = minute, bucket
        return bucket

    def _evict(self) -> None:
        cutoff = self._newest - MAX_BUCKETS  # minutes <= cutoff are out of the window
        buckets = self._buckets
        # Keys are inserted in rising order in practice, so the oldest are at the front.
        while buckets:
            first = next(iter(buckets))
            if first > cutoff:
                break
            del buckets[first]
        if len(buckets) > MAX_BUCKETS:  # out-of-order inserts left old keys behind the front
            self._buckets = {m: b for m, b in sorted(buckets.items()) if m > cutoff}
        if self._cur_minute <= cutoff:
            self._cur_minute, self._cur = -1, None

    # ---- reading -------------------------------------------------------------------------------

    def _window(self, since_seconds: float, now: float | None) -> tuple[int, int]:
        now = time.time() if now is None else now
        end = int(now // 60)
        minutes = min(MAX_BUCKETS, max(1, math.ceil(since_seconds / 60)))
        return end - minutes + 1, end

    def _sum(self, first: int, last: int) -> list:
        total = _new_bucket()
        get = self._buckets.get
        for minute in range(first, last + 1):
            bucket = get(minute)
            if bucket is not None:
                for i, value in enumerate(bucket):
                    total[i] += value
        return total

    def summary(self, since_seconds: float, now: float | None = None) -> dict:
        """The seed ``/api/stats`` numbers for the last ``since_seconds`` (capped at 7 days):
        ``total_queries, blocked_queries, cached_queries, block_rate, cache_hit_rate,
        avg_response_ms``. Rates are percentages; everything is 0 when there were no queries."""
        b = self._sum(*self._window(since_seconds, now))
        total = b[_TOTAL]
        return {
            "total_queries": total,
            "blocked_queries": b[_BLOCKED],
            "cached_queries": b[_CACHED],
            "block_rate": round(100.0 * b[_BLOCKED] / total, 2) if total else 0.0,
            "cache_hit_rate": round(100.0 * b[_CACHED] / total, 2) if total else 0.0,
            "avg_response_ms": round(b[_SUM_MS] / total, 2) if total else 0.0,
            # threat-feed blocks, also counted in blocked_queries (a security event each)
            "threats_blocked": b[_DECISION_BASE + Decision.THREAT],
            # blocked by sending no answer at all (RPZ rpz-drop.), also in blocked_queries
            "dropped_queries": b[_DECISION_BASE + Decision.DROPPED],
        }

    def decision_counts(self, since_seconds: float, now: float | None = None) -> dict[str, int]:
        """Queries per decision label over the window, e.g. ``{"blocked": 12, "cached": 40}``
        (only decisions that occurred)."""
        b = self._sum(*self._window(since_seconds, now))
        return {d.label: b[_DECISION_BASE + d] for d in Decision if b[_DECISION_BASE + d]}

    def timeseries(self, since_seconds: float, step_seconds: float = 60,
                   now: float | None = None) -> list[dict]:
        """Points ``{"timestamp", "total", "blocked", "cached"}``, oldest first, one per step.

        ``step_seconds`` is rounded to whole minutes (at least one). Points are aligned to
        multiples of the step since the epoch, so they stay put between calls; ``timestamp`` is
        the ISO 8601 start of each step. Empty steps are included with zeros.
        """
        points = []
        for start, step_sum in self._steps(since_seconds, step_seconds, now):
            points.append({"timestamp": iso_utc(start * 60), "total": step_sum[_TOTAL],
                           "blocked": step_sum[_BLOCKED], "cached": step_sum[_CACHED]})
        return points

    def decision_series(self, since_seconds: float, step_seconds: float = 600,
                        now: float | None = None) -> list[tuple[int, dict[Decision, int]]]:
        """``[(step start in unix seconds, {decision: queries})]``, oldest first, aligned as in
        :meth:`timeseries` (the Pi-hole face's history splits answers by how they were had)."""
        return [(start * 60, {d: step_sum[_DECISION_BASE + d] for d in Decision})
                for start, step_sum in self._steps(since_seconds, step_seconds, now)]

    def _steps(self, since_seconds: float, step_seconds: float, now: float | None) -> list[tuple[int, list]]:
        """(first minute of each step, the step's summed bucket): ``step_seconds`` rounded to
        whole minutes (at least one), steps aligned to multiples of the step since the epoch."""
        first, last = self._window(since_seconds, now)
        step = max(1, round(step_seconds / 60))
        first -= first % step
        return [(start, self._sum(start, start + step - 1)) for start in range(first, last + 1, step)]

    def realtime(self, now: float | None = None) -> dict:
        """``{"qps", "last_minute": {"total", "blocked", "cached"}}``.

        ``qps`` averages the ``QPS_WINDOW`` whole seconds before ``now``; ``last_minute`` counts
        the 60 whole seconds before ``now``. The current second is left out because it is
        still filling (records reach telemetry up to a second late).
        """
        now_s = int(time.time() if now is None else now)
        total = blocked = cached = 0
        recent = 0
        for second in range(now_s - 60, now_s):
            slot = self._seconds[second % SECOND_SLOTS]
            if slot[0] == second:
                total += slot[1]
                blocked += slot[2]
                cached += slot[3]
                if second >= now_s - QPS_WINDOW:
                    recent += slot[1]
        return {"qps": round(recent / QPS_WINDOW, 2),
                "last_minute": {"total": total, "blocked": blocked, "cached": cached}}
