"""StatsBuckets: per-minute counters, the seed /api/stats math, timeseries and realtime views."""

from __future__ import annotations

from burrow.dns.decision import Decision, QueryRecord
from burrow.storage.querylog import QueryLogDB, row_from_record
from burrow.telemetry.stats import MAX_BUCKETS, StatsBuckets

T0 = 1_763_800_020.0  # an exact minute: 2025-11-22T08:27:00Z


def rec(decision=Decision.RESOLVED, elapsed=0.010):
    return QueryRecord(0.0, "10.0.0.1", "example.com", 1, 0, decision, elapsed, "", ())


def test_empty_summary_is_all_zero():
    assert StatsBuckets().summary(86400, now=T0) == {
        "total_queries": 0, "blocked_queries": 0, "cached_queries": 0,
        "block_rate": 0.0, "cache_hit_rate": 0.0, "avg_response_ms": 0.0, "threats_blocked": 0,
        "dropped_queries": 0}


def test_summary_math():
    stats = StatsBuckets()
    for _ in range(4):
        stats.add(T0 + 1, rec(Decision.BLOCKED, elapsed=0.001))
    for _ in range(3):
        stats.add(T0 + 2, rec(Decision.CACHED, elapsed=0.002))
    stats.add(T0 + 3, rec(Decision.STALE, elapsed=0.003))  # stale counts as cached
    stats.add(T0 + 4, rec(Decision.RESOLVED, elapsed=0.050))
    stats.add(T0 + 5, rec(Decision.THREAT, elapsed=0.001))  # a threat block is a block, counted apart too
    stats.add(T0 + 6, rec(Decision.DROPPED, elapsed=0.001))  # so is a drop (no reply at all)
    stats.add(T0 + 7, rec(Decision.RATE_LIMITED, elapsed=0.001))  # the rate limiter's is no block
    summary = stats.summary(3600, now=T0 + 30)
    assert summary == {
        "total_queries": 12, "blocked_queries": 6, "cached_queries": 4,
        "block_rate": 50.0, "cache_hit_rate": round(100 * 4 / 12, 2),
        "avg_response_ms": round((4 * 1 + 3 * 2 + 3 + 50 + 1 + 1 + 1) / 12, 2), "threats_blocked": 1,
        "dropped_queries": 1}
    assert stats.decision_counts(3600, now=T0 + 30) == {
        "blocked": 4, "cached": 3, "stale": 1, "resolved": 1, "threat": 1, "dropped": 1, "rate_limited": 1}


def test_summary_window_is_whole_minutes_ending_now():
    stats = StatsBuckets()
    for minutes_ago in range(0, 120):
        stats.add(T0 - minutes_ago * 60 + 5, rec())
    now = T0 + 30
    assert stats.summary(60, now=now)["total_queries"] == 1  # the current minute only
    assert stats.summary(3600, now=now)["total_queries"] == 60
    assert stats.summary(90, now=now)["total_queries"] == 2  # rounds up to whole minutes
    assert stats.summary(86400, now=now)["total_queries"] == 120


def test_buckets_are_capped_at_seven_days():
    stats = StatsBuckets()
    start = T0 - (MAX_BUCKETS + 100) * 60
    for minute in range(MAX_BUCKETS + 101):
        stats.add(start + minute * 60, rec())
    assert len(stats) == MAX_BUCKETS
    assert stats.summary(30 * 86400, now=T0)["total_queries"] == MAX_BUCKETS  # clamped window


def test_clock_jumping_back_a_long_way_resets_instead_of_dropping_everything():
    stats = StatsBuckets()
    stats.add(T0, rec())
    earlier = T0 - 30 * 86400  # e.g. NTP corrected a clock that booted in the future
    stats.add(earlier, rec())
    stats.add(earlier + 1, rec())
    assert stats.summary(60, now=earlier + 2)["total_queries"] == 2
    assert len(stats) == 1
    assert stats.realtime(now=earlier + 3)["last_minute"]["total"] == 2


def test_timeseries_steps_are_aligned_and_include_empty_steps():
    stats = StatsBuckets()
    stats.add(T0 - 3600 + 1, rec(Decision.BLOCKED))  # oldest in window
    stats.add(T0 - 120, rec(Decision.CACHED))
    stats.add(T0 - 59, rec())
    stats.add(T0 + 10, rec(Decision.BLOCKED))
    points = stats.timeseries(3600, 600, now=T0 + 30)
    assert len(points) == 7  # the window's first step starts before it; aligned to 10 minutes
    assert all(p["timestamp"].endswith("0:00.000Z") for p in points)
    assert sum(p["total"] for p in points) == 4
    assert sum(p["blocked"] for p in points) == 2
    assert sum(p["cached"] for p in points) == 1
    assert points[-1]["total"] == 3  # T0 = 08:27 → step 08:20–08:29 holds the last three
    per_minute = stats.timeseries(300, 60, now=T0 + 30)
    assert [p["total"] for p in per_minute] == [0, 0, 1, 1, 1]
    assert per_minute[-1]["timestamp"] == "2025-11-22T08:27:00.000Z"


def test_realtime_qps_and_last_minute():
    stats = StatsBuckets()
    for second in range(0, 70):
        for _ in range(second % 3):
            stats.add(T0 + second + 0.5, rec(Decision.CACHED if second % 2 else Decision.BLOCKED))
    now = T0 + 70.2
    live = stats.realtime(now=now)
    last10 = sum(s % 3 for s in range(60, 70))
    assert live["qps"] == round(last10 / 10, 2)
    assert live["last_minute"]["total"] == sum(s % 3 for s in range(10, 70))
    assert live["last_minute"]["blocked"] == sum(s % 3 for s in range(10, 70) if s % 2 == 0)
    assert live["last_minute"]["cached"] == sum(s % 3 for s in range(10, 70) if s % 2)
    assert stats.realtime(now=now + 3600) == {
        "qps": 0.0, "last_minute": {"total": 0, "blocked": 0, "cached": 0}}


def test_seed_from_the_query_log_matches_live_counting(tmp_path):
    records = [(T0 - 3000 + i * 7.3, rec(d, elapsed=0.001 * (i % 5 + 1)))
               for i, d in enumerate([Decision.BLOCKED, Decision.CACHED, Decision.RESOLVED,
                                      Decision.STALE, Decision.LOCAL] * 80)]
    live = StatsBuckets()
    for ts, r in records:
        live.add(ts, r)
    db = QueryLogDB(tmp_path / "q.db")
    try:
        db.write([row_from_record(r, ts) for ts, r in records])
        seeded = StatsBuckets()
        seeded.seed(db.minute_counts(since=T0 - MAX_BUCKETS * 60))
    finally:
        db.close()
    for window in (600, 3600, 86400):
        assert seeded.summary(window, now=T0) == live.summary(window, now=T0)
        assert seeded.decision_counts(window, now=T0) == live.decision_counts(window, now=T0)
    assert seeded.timeseries(3600, 300, now=T0) == live.timeseries(3600, 300, now=T0)


def test_memory_at_the_cap_is_a_few_megabytes():
    import tracemalloc

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    stats = StatsBuckets()
    for minute in range(MAX_BUCKETS):
        for d in (Decision.BLOCKED, Decision.CACHED, Decision.RESOLVED):
            stats.add(T0 + minute * 60, rec(d))
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert used < 6 * 1024 * 1024
    assert stats.summary(7 * 86400, now=T0 + (MAX_BUCKETS - 1) * 60)["total_queries"] == (
        3 * MAX_BUCKETS)
