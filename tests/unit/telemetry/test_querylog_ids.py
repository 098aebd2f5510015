"""Query-log row ids: given when the Recorder takes a row in, kept through flush, archive and
restart, never handed out twice — not even after a crash that lost rows clients had seen."""

from __future__ import annotations

import asyncio
import time

import dns.message
import dns.rrset
import pytest

from burrow.dns.decision import Decision, QueryRecord, TraceEntry
from burrow.dns.fastpath import FastEntry
from burrow.storage.querylog import QueryLogDB, row_from_record
from burrow.telemetry.events import EventBus
from burrow.telemetry.recorder import Recorder
from tests.support.timing import until
from tests.unit.telemetry.test_recorder import run


def rec(domain, decision=Decision.RESOLVED):
    return QueryRecord(time.monotonic(), "192.168.1.10", domain, 1, 0, decision, 0.004,
                       "1.1.1.1:53", ())


def fast_entry():
    q = dns.message.make_query("www.example.com", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.1"))
    return FastEntry(r.to_wire(), 29, (39,), (300,), 0.0, 100.0, "www.example.com", 1,
                     Decision.RESOLVED, "127.0.0.1:53", (TraceEntry("forward", "resolved"),))


def ids_by_client(items):
    return {i["client_ip"]: i["id"] for i in items}


def feed(recorder, n, prefix="q"):
    """n records from distinct clients (fast-path hits and slow-path records mixed)."""
    entry = fast_entry()
    now = time.monotonic()
    for i in range(n):
        client = f"10.{prefix_num(prefix)}.0.{i}"
        if i % 2:
            recorder.ring.append((now, client, entry, 0.000002))
        else:
            recorder.ring.append(QueryRecord(now, client, f"{prefix}{i}.example", 1, 0,
                                             Decision.RESOLVED, 0.004, "1.1.1.1:53", ()))


def prefix_num(prefix):
    return sum(map(ord, prefix)) % 250


def test_rows_have_ids_as_soon_as_drained_and_keep_them_through_flush_and_archive(tmp_path):
    async def main():
        db = QueryLogDB(tmp_path / "querylog.db", ram_dir=tmp_path / "ram", hot_seconds=0)
        bus = EventBus()
        sub = bus.subscribe("queries")
        recorder = Recorder(db, flush_interval=3600, drain_interval=3600, persist_interval=3600,
                            bus=bus)
        await recorder.start()
        feed(recorder, 20)
        recorder.drain()
        pending = recorder.recent(100)
        assert len(pending) == 20
        ids = [i["id"] for i in pending]
        assert all(type(i) is int for i in ids)
        assert len(set(ids)) == 20
        assert ids == sorted(ids, reverse=True)  # newest first, monotonic in receipt order
        # The live stream carries the same ids.
        streamed = {}
        while len(streamed) < 20:
            event = await asyncio.wait_for(sub.get(), 1)
            streamed[event.payload["client_ip"]] = event.payload["id"]
        assert streamed == ids_by_client(pending)

        assert await recorder.flush() == 20
        items, total = await recorder.query(db.fetch, limit=100)
        assert total == 20 and ids_by_client(items) == ids_by_client(pending)
        # Archived (and trimmed from the hot tier): still the same ids.
        await recorder.persist()
        assert await recorder.query(lambda: db.conn.execute(
            "SELECT COUNT(*) FROM queries").fetchone()[0]) == 0
        items, _ = await recorder.query(db.fetch, limit=100)
        assert ids_by_client(items) == ids_by_client(pending)
        await recorder.stop()

    run(main())


def test_a_clean_restart_continues_the_sequence(tmp_path):
    seen = []

    async def first():
        recorder = Recorder(QueryLogDB(tmp_path / "querylog.db"), flush_interval=3600)
        await recorder.start()
        feed(recorder, 5, "a")
        recorder.drain()
        seen.extend(i["id"] for i in recorder.recent())
        await recorder.stop()  # flushes them

    async def second():
        recorder = Recorder(QueryLogDB(tmp_path / "querylog.db"), flush_interval=3600)
        await recorder.start()
        feed(recorder, 3, "b")
        recorder.drain()
        new = [i["id"] for i in recorder.recent()]
        items, _ = await recorder.query(recorder.db.fetch, limit=100)
        await recorder.stop()
        return new, items

    run(first())
    assert sorted(seen) == list(range(1, 6))
    new, items = run(second())
    assert sorted(new) == [6, 7, 8]  # no gap after a clean stop
    assert sorted(i["id"] for i in items) == list(range(1, 6))  # the old rows kept theirs


@pytest.mark.parametrize("reboot", [False, True], ids=["kill-9", "reboot"])
def test_ids_shown_before_a_crash_are_never_reused(tmp_path, reboot):
    """kill -9 loses the pending rows (a reboot also the hot tier); the ids clients saw for
    them must not come back for other rows."""
    ram = tmp_path / "ram"
    seen = {}

    async def crashed_run():
        db = QueryLogDB(tmp_path / "querylog.db", ram_dir=ram)
        recorder = Recorder(db, flush_interval=3600, drain_interval=3600, persist_interval=3600)
        await recorder.start()
        feed(recorder, 10, "a")
        recorder.drain()
        assert await recorder.flush() == 10  # in the hot tier, not archived
        feed(recorder, 10, "b")
        recorder.drain()  # pending only
        seen.update(ids_by_client(recorder.recent(100)))
        items, _ = await recorder.query(db.fetch, limit=100)
        seen.update(ids_by_client(items))
        # The process dies here: no stop(), nothing more is written. (The connections are
        # closed only so the files can be reopened by the "next run" below.)
        for task in recorder._tasks:
            task.cancel()
        await asyncio.gather(*recorder._tasks, return_exceptions=True)
        await recorder.query(db.close)
        recorder._executor.shutdown(wait=True)

    run(crashed_run())
    assert len(seen) == 20 and all(type(i) is int for i in seen.values())
    if reboot:
        for f in ram.iterdir():
            f.unlink()

    async def next_run():
        recorder = Recorder(QueryLogDB(tmp_path / "querylog.db", ram_dir=ram), flush_interval=3600)
        await recorder.start()
        feed(recorder, 10, "c")
        recorder.drain()
        new = [i["id"] for i in recorder.recent(100)]
        await recorder.stop()
        return new

    new = run(next_run())
    assert len(new) == 10
    assert min(new) > max(seen.values())


def test_the_reservation_is_renewed_before_it_runs_out(tmp_path):
    async def main():
        db = QueryLogDB(tmp_path / "querylog.db")
        recorder = Recorder(db, flush_interval=3600, drain_interval=3600, id_block=16)
        await recorder.start()
        reserved = await recorder.query(db.reserved_ids)
        assert reserved == 1 + 16
        for round_ in range(5):
            feed(recorder, 12, f"r{round_}")
            recorder.drain()
            assert await recorder.flush() == 12
            last = max(i["id"] for i in (await recorder.query(db.fetch, limit=1))[0])
            # Every id handed out is below what a crash-restart would start from.
            await until(lambda: recorder.snapshot()["ids_reserved_to"] > last + 1)  # noqa: B023 - called within this iteration
            assert await recorder.query(db.reserved_ids) > last
        await recorder.stop()
        assert recorder.snapshot()["id_reserve_errors"] == 0

    run(main())
    db = QueryLogDB(tmp_path / "querylog.db")
    try:
        assert db.next_id == 61  # the clean stop gave back the unused part of the block
    finally:
        db.close()


def test_write_keeps_given_ids_and_refuses_ones_below_the_log(tmp_path):
    db = QueryLogDB(tmp_path / "querylog.db")
    try:
        row = row_from_record(rec("x.example"), time.time())
        assert db.write([(7, *row), (9, *row)]) == 2
        assert [i["id"] for i in db.fetch()[0]] == [9, 7]
        assert db.next_id == 10
        with pytest.raises(ValueError):
            db.write([(9, *row)])
        assert db.write([row]) == 1  # rows without ids continue the sequence
        assert db.fetch()[0][0]["id"] == 10
    finally:
        db.close()


def test_reserved_ids_survive_reopening(tmp_path):
    db = QueryLogDB(tmp_path / "querylog.db")
    assert db.next_id == 1 and db.reserved_ids() == 0
    db.reserve_ids(5000)
    db.close()
    db = QueryLogDB(tmp_path / "querylog.db")
    try:
        assert db.next_id == 5000 and db.reserved_ids() == 5000
    finally:
        db.close()
