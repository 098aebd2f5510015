"""Recorder: ring → stats/bus/pending → SQLite, with a real event loop and a real database."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

from burrow.dns.decision import Decision, QueryRecord, TraceEntry
from burrow.storage.querylog import QueryLogDB, iso_utc, row_from_record
from burrow.telemetry.events import EventBus
from burrow.telemetry.recorder import Recorder
from tests.support.timing import until


def rec(domain="example.com", decision=Decision.RESOLVED, mono=None, trace=()):
    return QueryRecord(time.monotonic() if mono is None else mono, "192.168.1.10", domain, 1, 0,
                       decision, 0.004, "1.1.1.1:53", trace)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "querylog.db"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))



def test_end_to_end_drain_flush_and_read_back(db_path):
    async def main():
        recorder = Recorder(QueryLogDB(db_path), flush_interval=0.2, drain_interval=0.05)
        await recorder.start()
        before = time.time()
        block = (TraceEntry("blocklist", "block", source="manager"),)
        for i in range(50):
            recorder.ring.append(rec(f"d{i}.example", Decision.BLOCKED if i % 5 == 0
                                     else Decision.RESOLVED, trace=block if i % 5 == 0 else ()))
        await until(lambda: recorder.flushed == 50)
        assert recorder.received == 50 and len(recorder.ring) == 0
        items, total = await recorder.query(recorder.db.fetch, limit=5)
        assert total == 50
        assert items[0]["domain"] == "d49.example" and items[0]["id"] == 50
        assert items[0]["query_type"] == "A" and items[0]["response_time_ms"] == 4.0
        stamp = items[0]["timestamp"]
        assert stamp.endswith("Z") and stamp[:16] <= time.strftime(
            "%Y-%m-%dT%H:%M", time.gmtime(time.time() + 60))
        blocked, n_blocked = await recorder.query(recorder.db.fetch, stage="blocklist")
        assert n_blocked == 10 and all(i["blocked"] for i in blocked)
        summary = recorder.stats.summary(3600)
        assert summary["total_queries"] == 50 and summary["blocked_queries"] == 10
        assert summary["block_rate"] == 20.0
        await recorder.stop()
        await recorder.stop()  # idempotent
        return before

    before = run(main())
    # Wall times came from the monotonic receipt times via the drain's clock offset.
    db = QueryLogDB(db_path)
    try:
        items, n = db.fetch(limit=1000)
    finally:
        db.close()
    assert n == 50
    stamps = sorted(i["timestamp"] for i in items)
    assert iso_utc(before - 1) <= stamps[0] <= stamps[-1] <= iso_utc(time.time())


def test_stop_drains_and_flushes_what_is_left(db_path):
    async def main():
        recorder = Recorder(QueryLogDB(db_path), flush_interval=3600, drain_interval=3600)
        await recorder.start()
        for i in range(7):
            recorder.ring.append(rec(f"late{i}.example"))
        await recorder.stop()
        assert recorder.flushed == 7

    run(main())
    db = QueryLogDB(db_path)
    try:
        assert db.count() == 7
    finally:
        db.close()


def test_search_shows_unflushed_rows_newest_first(db_path):
    async def main():
        recorder = Recorder(QueryLogDB(db_path), flush_interval=3600)
        for i in range(5):
            recorder.ring.append(rec(f"r{i}.example"))
        assert await recorder.search() == ([], 0)  # still in the ring
        assert recorder.drain() == 5
        recent, total = await recorder.search(limit=3)
        assert [r["domain"] for r in recent] == ["r4.example", "r3.example", "r2.example"]
        assert [r["id"] for r in recent] == [5, 4, 3] and recent[0]["decision"] == "resolved"
        assert total == 5
        assert await recorder.flush() == 5
        assert recorder.snapshot()["pending"] == 0
        assert (await recorder.search(limit=3))[0] == recent  # the same rows, ids kept
        await recorder.stop()

    run(main())


def test_pending_overflow_drops_oldest_and_counts(db_path):
    async def main():
        recorder = Recorder(QueryLogDB(db_path), max_pending=5)
        for i in range(8):
            recorder.ring.append(rec(f"p{i}.example"))
        recorder.drain()
        assert recorder.dropped_pending == 3
        assert recorder.snapshot()["pending"] == 5
        newest_five = [f"p{i}.example" for i in range(7, 2, -1)]
        assert [r["domain"] for r in recorder.recent()] == newest_five
        await recorder.stop()

    run(main())
    db = QueryLogDB(db_path)
    try:
        assert [i["domain"] for i in db.fetch()[0]] == [f"p{i}.example" for i in range(7, 2, -1)]
    finally:
        db.close()


def test_flush_error_keeps_rows_for_the_next_flush(db_path):
    async def main():
        db = QueryLogDB(db_path)
        db.conn.execute("PRAGMA busy_timeout = 50")  # fail fast instead of waiting 5 s
        recorder = Recorder(db, max_pending=8)
        for i in range(6):
            recorder.ring.append(rec(f"e{i}.example"))
        recorder.drain()

        # Another process (say, a backup) holds the write lock: a real SQLITE_BUSY.
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        assert await recorder.flush() == 0
        assert recorder.flush_errors == 1
        assert "locked" in recorder.last_flush_error
        assert recorder.snapshot()["pending"] == 6 and recorder.flushed == 0

        # Rows drained meanwhile join them; the cap still holds and drops the OLDEST.
        for i in range(6, 10):
            recorder.ring.append(rec(f"e{i}.example"))
        recorder.drain()
        assert await recorder.flush() == 0
        assert recorder.flush_errors == 2
        assert recorder.dropped_pending == 2

        blocker.execute("ROLLBACK")
        blocker.close()
        assert await recorder.flush() == 8
        items, total = await recorder.query(db.fetch)
        assert total == 8
        assert [i["domain"] for i in items] == [f"e{i}.example" for i in range(9, 1, -1)]
        await recorder.stop()

    run(main())


def test_flush_errors_in_the_periodic_task_do_not_kill_it(db_path):
    async def main():
        db = QueryLogDB(db_path)
        db.conn.execute("PRAGMA busy_timeout = 20")
        recorder = Recorder(db, flush_interval=0.05, drain_interval=0.02)
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        await recorder.start()
        recorder.ring.append(rec())
        await until(lambda: recorder.flush_errors >= 2)
        blocker.execute("ROLLBACK")
        blocker.close()
        await until(lambda: recorder.flushed == 1)
        assert recorder.last_flush_error  # kept for the health endpoint
        await recorder.stop()

    run(main())


def test_ring_overflow_is_detected_and_estimated(db_path):
    async def main():
        recorder = Recorder(QueryLogDB(db_path), ring_size=10)
        for t in range(5):
            recorder.ring.append(rec(f"a{t}", mono=1000.0 + t))
        recorder.drain()
        assert recorder.ring_overflows == 0 and recorder.dropped_ring == 0
        for t in range(5, 35):  # 30 records at a steady 1/s into a ring of 10: 20 are lost
            recorder.ring.append(rec(f"a{t}", mono=1000.0 + t))
        assert recorder.drain() == 10
        assert recorder.ring_overflows == 1
        assert recorder.dropped_ring == 20
        assert recorder.received == 15
        await recorder.stop()

    run(main())


def test_drained_records_are_published_on_the_bus(db_path):
    async def main():
        bus = EventBus()
        sub = bus.subscribe("queries")
        recorder = Recorder(QueryLogDB(db_path), bus=bus)
        recorder.ring.append(rec("live.example", Decision.CACHED))
        recorder.drain()
        event = await asyncio.wait_for(sub.get(), 1)
        assert event.topic == "queries" and event.lost == 0
        assert event.payload["domain"] == "live.example" and event.payload["cached"] is True
        await recorder.stop()

    run(main())


def test_bad_record_is_counted_and_does_not_lose_the_batch(db_path):
    async def main():
        recorder = Recorder(QueryLogDB(db_path))
        recorder.ring.append(rec("ok1.example"))
        recorder.ring.append(("garbage",))
        recorder.ring.append(rec("ok2.example"))
        assert recorder.drain() == 3
        assert recorder.bad_records == 1
        assert [r["domain"] for r in recorder.recent()] == ["ok2.example", "ok1.example"]
        await recorder.stop()

    run(main())


def test_start_seeds_stats_from_the_log_and_query_runs_on_the_worker(db_path):
    db = QueryLogDB(db_path)
    now = time.time()
    db.write([row_from_record(rec(decision=Decision.BLOCKED), now - 120 - i) for i in range(4)])

    async def main():
        recorder = Recorder(db, flush_interval=3600, drain_interval=3600, prune_interval=3600)
        await recorder.start()
        summary = recorder.stats.summary(3600)
        assert summary["total_queries"] == 4 and summary["blocked_queries"] == 4
        names = await recorder.query(lambda: threading.current_thread().name)
        assert names.startswith("burrow-querylog")
        await until(lambda: recorder.last_prune is not None)  # first prune runs at start
        assert recorder.last_prune["deleted_age"] == 0
        await recorder.stop()

    run(main())


def test_prune_uses_configured_retention(db_path):
    db = QueryLogDB(db_path)
    now = time.time()
    db.write([row_from_record(rec(), now - 3 * 86400), row_from_record(rec(), now - 60)])

    async def main():
        recorder = Recorder(db, retention_days=1, max_bytes=10**9)
        result = await recorder.prune()
        assert result["deleted_age"] == 1
        assert await recorder.query(db.count) == 1
        await recorder.stop()

    run(main())


def test_fast_path_hits_are_expanded_into_rows_and_tallied(tmp_path):
    """Fast-path hits arrive as (mono, client, FastEntry, elapsed) and must log like any record."""
    import time as _time

    import dns.message
    import dns.rrset

    from burrow.dns.decision import Decision, QueryRecord, TraceEntry
    from burrow.dns.fastpath import FastEntry
    from burrow.storage.querylog import QueryLogDB, row_from_record
    from burrow.telemetry.recorder import Recorder

    q = dns.message.make_query("www.example.com", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.1"))
    entry = FastEntry(r.to_wire(), 29, (39,), (300,), 0.0, 100.0, "www.example.com", 1,
                      Decision.RESOLVED, "127.0.0.1:53", (TraceEntry("forward", "resolved"),))
    rec = Recorder(QueryLogDB(tmp_path / "q.db"))
    now = _time.monotonic()
    rec.ring.append((now, "10.0.0.1", entry, 0.000002))
    rec.ring.append((now, "10.0.0.2", entry, 0.000004))
    rec.ring.append(QueryRecord(now, "10.0.0.3", "other.example", 28, 0, Decision.RESOLVED, 0.01,
                                "127.0.0.1:53", ()))
    assert rec.drain() == 3
    rows = list(rec._pending)  # (id, *ROW_FIELDS)
    assert len(rows) == 3 and [r[0] for r in rows] == [1, 2, 3]
    expected = row_from_record(QueryRecord(now, "10.0.0.1", "www.example.com", 1, 0, Decision.CACHED,
                                           0.000002, "127.0.0.1:53", entry.trace), rows[0][1])
    assert rows[0][1:] == expected  # a hit is logged as a cache hit with the fast-path trace
    assert rows[1][2] == "10.0.0.2" and abs(rows[1][9] - 0.004) < 1e-9
    s = rec.stats.summary(3600)
    assert s["total_queries"] == 3 and s["cached_queries"] == 2


def archived_rows(db):
    return db.archive.execute("SELECT COALESCE(SUM(row_count), 0) FROM blocks").fetchone()[0]


def test_persist_runs_periodically(tmp_path):
    async def main():
        db = QueryLogDB(tmp_path / "querylog.db", ram_dir=tmp_path / "ram")
        recorder = Recorder(db, flush_interval=0.05, drain_interval=0.02, persist_interval=0.2)
        await recorder.start()
        for i in range(20):
            recorder.ring.append(rec(f"p{i}.example"))
        await until(lambda: recorder.persisted == 20)
        assert await recorder.query(archived_rows, db) == 20
        await recorder.stop()

    run(main())


def test_stop_persists_and_the_archive_survives_a_reboot(tmp_path):
    ram = tmp_path / "ram"

    async def main():
        db = QueryLogDB(tmp_path / "querylog.db", ram_dir=ram)
        recorder = Recorder(db, flush_interval=3600, drain_interval=3600, persist_interval=3600)
        await recorder.start()
        for i in range(25):
            recorder.ring.append(rec(f"p{i}.example"))
        assert recorder.persisted == 0
        await recorder.stop()  # drain, flush, persist, close
        assert recorder.persisted == 25
        assert recorder.snapshot()["persist_errors"] == 0

    run(main())
    # A reboot empties the RAM folder; the archive on flash has every row.
    for f in ram.iterdir():
        f.unlink()
    db = QueryLogDB(tmp_path / "querylog.db", ram_dir=ram)
    try:
        items, total = db.fetch(limit=100)
        assert total == 25
        assert items[0]["domain"] == "p24.example" and items[-1]["domain"] == "p0.example"
    finally:
        db.close()


def test_start_archives_what_a_crashed_run_left_in_the_hot_tier(tmp_path):
    ram = tmp_path / "ram"
    db = QueryLogDB(tmp_path / "querylog.db", ram_dir=ram)
    db.write([row_from_record(rec(), time.time() - 30) for _ in range(3)])  # flushed, never persisted
    assert archived_rows(db) == 0

    async def main():
        recorder = Recorder(db, flush_interval=3600, drain_interval=3600)
        await recorder.start()
        await until(lambda: recorder.persisted == 3)  # the first persist runs at start
        await recorder.stop()

    run(main())


def test_persist_errors_are_counted_and_rows_stay_hot(tmp_path):
    async def main():
        db = QueryLogDB(tmp_path / "querylog.db", ram_dir=tmp_path / "ram")
        db.archive.execute("PRAGMA busy_timeout = 50")
        recorder = Recorder(db)
        recorder.ring.append(rec("kept.example"))
        recorder.drain()
        assert await recorder.flush() == 1
        blocker = sqlite3.connect(tmp_path / "querylog-archive.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the archive
        assert await recorder.persist() is None
        assert recorder.persist_errors == 1 and "locked" in recorder.last_persist_error
        assert (await recorder.query(db.fetch))[1] == 1  # still readable from the hot tier
        blocker.execute("ROLLBACK")
        blocker.close()
        assert (await recorder.persist())["archived"] == 1
        await recorder.stop()

    run(main())


def test_fast_path_hits_are_tallied_into_their_own_seconds(tmp_path, monkeypatch):
    """Hits are counted per wall second and decision: a tally closes when a hit from a later
    second arrives, and a blocked hit is counted apart from a cached one in the same second."""
    import types

    import dns.message
    import dns.rrset

    from burrow.dns.fastpath import FastEntry
    from burrow.telemetry import recorder as recorder_module
    from burrow.telemetry.stats import StatsBuckets

    def entry(decision):
        q = dns.message.make_query("www.example.com", "A")
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.1"))
        return FastEntry(r.to_wire(), 29, (39,), (300,), 0.0, 100.0, "www.example.com", 1,
                         decision, "127.0.0.1:53", ())

    class Spy(StatsBuckets):
        def __init__(self):
            super().__init__()
            self.calls = []

        def add_many(self, wall_ts, decision, count, sum_elapsed):
            self.calls.append((wall_ts, Decision(decision), count, round(sum_elapsed, 9)))
            super().add_many(wall_ts, decision, count, sum_elapsed)

    # The drain maps monotonic to wall time with one offset: make it exactly 1,000,000 s.
    clock = types.SimpleNamespace(time=lambda: 1_000_000.0, monotonic=lambda: 0.0)
    monkeypatch.setattr(recorder_module, "time", clock)
    spy = Spy()
    rec_ = Recorder(QueryLogDB(tmp_path / "q.db"), stats=spy)
    cached, blocked = entry(Decision.RESOLVED), entry(Decision.BLOCKED)
    for mono, e in [(0.2, cached), (0.5, blocked), (0.7, cached), (1.1, cached), (1.9, cached),
                    (3.5, blocked)]:
        rec_.ring.append((mono, "10.0.0.1", e, 0.001))
    rec_.ring.append(QueryRecord(0.3, "10.0.0.2", "slow.example", 1, 0, Decision.RESOLVED, 0.01,
                                 "127.0.0.1:53", ()))
    assert rec_.drain() == 7
    assert sorted(spy.calls, key=lambda c: (c[0], c[1])) == [
        (1_000_000, Decision.CACHED, 2, 0.002), (1_000_000, Decision.BLOCKED, 1, 0.001),
        (1_000_000.3, Decision.RESOLVED, 1, 0.01),  # the slow record, counted on its own
        (1_000_001, Decision.CACHED, 2, 0.002), (1_000_003, Decision.BLOCKED, 1, 0.001)]
    assert rec_.query_counts[("cached", "A", 0)] == 4
    assert rec_.query_counts[("blocked", "A", 0)] == 2
    assert rec_.query_counts[("resolved", "A", 0)] == 1
    assert spy.summary(60, now=1_000_004.0)["total_queries"] == 7


def test_age_pruning_waits_for_the_clock_but_the_size_cap_does_not(db_path):
    """Before the clock is known to be right (burrow/clock.py), a prune deletes nothing by age
    (a clock far ahead would make every row look old), yet still holds the size cap."""
    db = QueryLogDB(db_path)
    now = time.time()
    db.write([row_from_record(rec(), now - 3 * 86400), row_from_record(rec(), now - 60)])
    ready = [False]

    async def main():
        recorder = Recorder(db, retention_days=1, max_bytes=10**9)
        recorder.clock_ready = lambda: ready[0]
        result = await recorder.prune()
        assert result["deleted_age"] == 0 and await recorder.query(db.count) == 2
        assert recorder.snapshot()["age_prune_deferred"] == 1
        recorder.max_bytes = 1  # the cap: the oldest rows go whatever the clock says
        result = await recorder.prune()
        assert result["deleted_age"] == 0 and result["deleted_size"] >= 1
        recorder.max_bytes = 10**9
        await recorder.query(db.write, [row_from_record(rec(), now - 3 * 86400)])
        ready[0] = True
        result = await recorder.prune()
        assert result["deleted_age"] == 1
        await recorder.stop()

    run(main())
