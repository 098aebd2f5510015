"""Recorder.search: the query log as one list — rows waiting in memory in front of the rows
written — newest first, filtered by one definition, with no duplicate and no gap around a flush.

The reference for every read is the same rows written to a second, ordinary log: the merged
read must answer exactly what that log answers.
"""

from __future__ import annotations

import asyncio
import time

from burrow.dns.decision import Decision, QueryRecord, TraceEntry
from burrow.storage.queryfilter import QueryFilter
from burrow.storage.querylog import QueryLogDB
from burrow.telemetry.recorder import Recorder

BLOCKLIST = (TraceEntry("blocklist", "block", source="manager", detail="rule matched"),)
POLICY = (TraceEntry("policy", "BLOCK", rule="Block social media", source="policy_engine"),)


def rec(i: int) -> QueryRecord:
    """The i-th query: names, clients, outcomes and traces vary with i."""
    decision, trace = [(Decision.RESOLVED, ()), (Decision.BLOCKED, BLOCKLIST),
                       (Decision.BLOCKED, POLICY), (Decision.CACHED, ())][i % 4]
    domain = f"q{i}.example.com" if i % 3 else f"q{i}.example.org"
    return QueryRecord(time.monotonic() - 100 + i, f"10.0.0.{i % 5}", domain, 1, 0, decision,
                       0.002, "", trace)


class Log:
    """A Recorder over a real log, and a reference log that gets every row it takes in."""

    def __init__(self, tmp_path):
        (tmp_path / "ref").mkdir()
        self.recorder = Recorder(QueryLogDB(tmp_path / "querylog.db"), flush_interval=3600)
        self.reference = QueryLogDB(tmp_path / "ref" / "querylog.db")
        self.n = 0

    def take(self, count: int) -> None:
        """``count`` new queries drained into memory (not flushed)."""
        for _ in range(count):
            self.recorder.ring.append(rec(self.n))
            self.n += 1
        before = len(self.recorder._pending)
        self.recorder.drain()
        self.reference.write(list(self.recorder._pending)[before:])

    async def expect_same(self, match: QueryFilter, limit: int, offset: int) -> tuple[list, int]:
        got = await self.recorder.search(match, limit, offset)
        want = self.reference.fetch_matching(match, limit, offset)
        assert got == want, (match, limit, offset)
        return got

    async def close(self):
        await self.recorder.stop()
        self.reference.close()


async def written_then_waiting(tmp_path, written: int, waiting: int) -> Log:
    """A log with ``written`` queries flushed, then ``waiting`` more in memory."""
    log = Log(tmp_path)
    log.take(written)
    await log.recorder.flush()
    log.take(waiting)
    return log


async def expect_every_read_the_same(log: Log) -> None:
    for match in FILTERS:
        for limit, offset in PAGES:
            await log.expect_same(match, limit, offset)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


FILTERS = [QueryFilter(), QueryFilter(domain="example.org"), QueryFilter(domain="q7.example.com"),
           QueryFilter(client="10.0.0.3"), QueryFilter(blocked=True), QueryFilter(blocked=False),
           QueryFilter(stage="policy"), QueryFilter(action="block"), QueryFilter(rule="Block social media"),
           QueryFilter(source="manager"), QueryFilter(stage="blocklist", client="10.0.0.1"),
           QueryFilter(below_id=12), QueryFilter(below_id=25, blocked=True)]
PAGES = [(100, 0), (3, 0), (3, 3), (4, 5), (5, 8), (7, 14), (10, 30)]


def test_rows_only_in_memory_only_in_the_log_and_in_both(tmp_path):
    async def main():
        log = Log(tmp_path)
        log.take(10)  # only in memory
        (items, total) = await log.expect_same(QueryFilter(), 100, 0)
        assert total == 10 and [i["id"] for i in items] == list(range(10, 0, -1))
        await log.recorder.flush()  # only in the log
        assert log.recorder.snapshot()["pending"] == 0
        assert (await log.expect_same(QueryFilter(), 100, 0))[1] == 10
        log.take(12)  # both: 10 written, 12 waiting
        await expect_every_read_the_same(log)
        await log.close()

    run(main())


def test_paging_across_the_boundary_lists_every_row_once(tmp_path):
    async def main():
        log = await written_then_waiting(tmp_path, 7, 6)
        seen = []
        for offset in range(0, 13, 4):
            items, total = await log.expect_same(QueryFilter(), 4, offset)
            assert total == 13
            seen += [i["id"] for i in items]
        assert seen == list(range(13, 0, -1))
        await log.close()

    run(main())


def test_a_flush_committing_during_the_read_shows_each_row_once(tmp_path):
    async def main():
        log = await written_then_waiting(tmp_path, 5, 4)
        recorder = log.recorder
        # The flush's transaction has committed; the loop has not heard back yet, so the
        # batch is both in flight in memory and in the log.
        batch = list(recorder._pending)
        recorder._pending.clear()
        recorder._inflight = batch
        await recorder.query(recorder.db.write, batch)
        log.take(3)
        await expect_every_read_the_same(log)
        recorder._inflight = []
        await log.close()

    run(main())


def test_rows_flushed_between_the_snapshot_and_the_read_are_not_counted_twice(tmp_path):
    async def main():
        log = Log(tmp_path)
        log.take(6)
        recorder = log.recorder
        real_query = recorder.query

        async def flush_first(fn, *args, **kwargs):
            # The log is read after a whole flush has gone by: its rows are in the log now,
            # and the snapshot of memory still holds them.
            recorder.query = real_query
            await recorder.flush()
            return await real_query(fn, *args, **kwargs)

        recorder.query = flush_first
        items, total = await recorder.search(QueryFilter(), 100, 0)
        assert total == 6 and [i["id"] for i in items] == list(range(6, 0, -1))
        assert recorder.snapshot()["pending"] == 0
        await log.close()

    run(main())


def test_a_scan_below_a_cursor_does_not_shift_when_rows_arrive(tmp_path):
    async def main():
        log = await written_then_waiting(tmp_path, 8, 4)
        first, _ = await log.recorder.search(QueryFilter(), 5)
        log.take(3)  # newer rows arrive between two pages
        await log.recorder.flush()
        cursor = QueryFilter(below_id=first[-1]["id"])
        rest, total = await log.expect_same(cursor, 100, 0)
        assert [i["id"] for i in first + rest] == list(range(12, 0, -1)) and total == 7
        await log.close()

    run(main())


def test_limit_is_clamped_to_the_log_s_page(tmp_path):
    async def main():
        log = Log(tmp_path)
        log.take(3)
        items, total = await log.recorder.search(QueryFilter(), 0)
        assert len(items) == 1 and total == 3
        await log.close()

    run(main())
