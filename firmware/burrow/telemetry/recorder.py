"""The Recorder: between the DNS hot path and the query-log database.

The hot path does one thing per answered query: ``recorder.ring.append(QueryRecord(...))``. It
never waits on storage, takes no lock and calls no Python function of ours. Everything else
happens here, on the loop, off the hot path:

- every ``DRAIN_INTERVAL`` (1 s) the ring is emptied: records get wall-clock times and their row
  ids, are counted in the live statistics, published on the event bus (topic ``"queries"``)
  and queued as rows;
- every ``flush_interval`` (60 s by default) the queued rows go to the query log's hot tier
  (SQLite in RAM on the appliance) in ONE transaction, on a single worker thread;
- every ``persist_interval`` (15 min by default), at start and at shutdown, the rows new in
  the hot tier are appended to the compressed archive on flash in ONE transaction
  (``QueryLogDB.persist``), so flash sees a few pages a quarter hour instead of a burst a
  minute;
- every ``PRUNE_INTERVAL`` (1 h) the log is pruned by age and size; by size only while
  ``clock_ready()`` says the wall clock is not known to be right (burrow/clock.py), so a
  clock that jumps, or starts far in the future, never wipes the log by age.

Losses are bounded and counted, never silent: a full ring overwrites its oldest records
(``dropped_ring``, estimated), a full pending buffer drops its oldest rows (``dropped_pending``),
a failed flush keeps the rows for the next try (``flush_errors``, ``last_flush_error``), a failed
persist leaves them in the hot tier for the next one (``persist_errors``, ``last_persist_error``).

Row ids. A row gets its id when the drain takes it from the ring — the first moment anything
(``search()``, the bus, so /api/queries and /ws/queries) can show it — and keeps it through
the flush and the archive: ids are unique, increasing in the order rows are taken in, and
the same everywhere. The counter starts at the log's ``next_id``. A kill -9 loses the pending
rows and a reboot the hot tier too, yet clients may have seen those ids; so that a later run
never gives them to other rows, ids are reserved ahead in blocks of ``ID_BLOCK``, durably
(``QueryLogDB.reserve_ids``, in the archive on flash), and a run starts after the reservation.
That costs one small flash transaction at start, one at a clean stop (which gives back the
unused part, so a clean restart leaves no gap) and one per ``ID_BLOCK / 2`` ids — none per
row or per flush. Starting past "max id + a margin" instead would need no write, but a margin
only bounds the loss if it is larger than every id a run can hand out without writing them,
which flush failures (rows dropped, ids already shown) and a reboot (a quarter hour of hot
rows) do not bound; and it would leave a gap at every restart.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import functools
import logging
import time
from typing import Any, Callable

from ..storage.queryfilter import QueryFilter
from ..storage.querylog import (DEFAULT_MAX_BYTES, DEFAULT_RETENTION_DAYS, MAX_FETCH_LIMIT,
                                QueryLogDB, row_from_record, row_to_dict)
from ..dns import qtypes
from ..dns.decision import Decision, QueryRecord
from .events import EventBus
from .stats import MAX_BUCKETS, StatsBuckets

log = logging.getLogger(__name__)

# Records the hot path can hand over between two drains. At 0.25 s drains this absorbs
# 260k qps, far above what a small board answers; ~150 bytes a record → ~10 MB when full.
DEFAULT_RING_SIZE = 65536
# Rows waiting for the next flush (or retried after a failed one). ~300 bytes a row, so 50k
# rows ≈ 15 MB worst case: a minute at 800 qps (a busy home network asks a few per second),
# or many hours of normal traffic with the disk failing; beyond that the oldest go, counted.
DEFAULT_MAX_PENDING = 50_000
# Seconds between drains; also the latency of live stats and the "queries" stream. Short, so
# a drain under heavy load handles a few thousand records and never stalls the loop for long.
DRAIN_INTERVAL = 0.25
OVERFLOW_LOG_INTERVAL = 60.0  # seconds between "buffer full" (and id reservation) warnings
# Row ids reserved ahead, durably (see the module docstring). A new block is asked for once
# half is used: 2^19 ids, so a flash write every ~10 days at 50k queries/day (every ~11 min
# at a sustained 800 qps); a crashed run leaves a gap of at most this many ids.
ID_BLOCK = 1 << 20
PRUNE_INTERVAL = 3600.0  # seconds between retention passes
PERSIST_INTERVAL = 900.0  # seconds between archive writes to flash (storage.query_log_persist_interval)
QUERIES_TOPIC = "queries"


def _row_parts(entry) -> tuple:
    """A fast-path entry's query-log row without its per-query fields, flat, then its tally
    slot: (domain, qtype, rcode, decision, blocked, cached, upstream, trace, slot).

    A row is (ts, client, domain … cached, response_ms, upstream, trace); see
    storage.querylog.row_from_record. Flat, so a hit's row is one tuple built from locals.
    The slot is a small int standing for (decision, count key) in ``_TALLY_KEYS``: the drain
    tallies hits by it, and an int hashes for free where a nested tuple would be hashed anew.
    """
    row = row_from_record(QueryRecord(0.0, "", entry.domain, entry.qtype, entry.rcode,
                                      entry.decision, 0.0, entry.upstream, entry.trace), 0.0)
    tally_key = (int(entry.decision), count_key(entry.decision, entry.qtype, entry.rcode))
    slot = _TALLY_SLOTS.get(tally_key)
    if slot is None:  # bounded: decisions × counted qtypes × rcodes
        slot = _TALLY_SLOTS[tally_key] = len(_TALLY_KEYS)
        _TALLY_KEYS.append(tally_key)
    return row[2:8] + row[9:] + (slot,)


_TALLY_SLOTS: dict[tuple, int] = {}  # (decision, count key) → slot
_TALLY_KEYS: list[tuple] = []  # slot → (decision, count key)


# Query types counted by name in the metrics; anything else is "other", so a client asking
# for thousands of odd types cannot blow up the label set.
METRIC_QTYPES = {qtypes.number(t): t for t in ("A", "AAAA", "CNAME", "MX", "TXT", "PTR", "SRV", "SOA", "NS",
                                               "SVCB", "HTTPS", "ANY", "HINFO", "DS", "DNSKEY")}


def count_key(decision, qtype: int, rcode: int) -> tuple:
    """The (decision, qtype, rcode) labels a query is counted under, low-cardinality."""
    return (Decision(decision).label, METRIC_QTYPES.get(qtype, "other"), rcode if 0 <= rcode < 24 else -1)


def merged_page(db: QueryLogDB, memory: list, floor: int, match: QueryFilter, limit: int,
                offset: int) -> tuple[list[dict], int]:
    """One page of ``memory`` (rows not written yet, oldest first, ids ``floor`` and up) in
    front of the log's rows below ``floor``, newest first, and the total matching ``match``
    (see ``Recorder.search``). Runs on the worker thread."""
    limit = max(1, min(int(limit), MAX_FETCH_LIMIT))
    offset = max(0, int(offset))
    fresh = [row for row in reversed(memory) if match.matches(row)]
    items = [row_to_dict(row[1:], row[0]) for row in fresh[offset:offset + limit]]
    below = floor if match.below_id is None else min(floor, match.below_id)
    logged, total = db.fetch_matching(dataclasses.replace(match, below_id=below),
                                      limit - len(items) or 1, max(0, offset - len(fresh)))
    items += logged[:limit - len(items)]
    return items, len(fresh) + total


class Recorder:
    """Collects query records from ``ring`` and writes them to ``querylog_db`` in batches.

    ``querylog_db`` is an open QueryLogDB; from ``start()`` on the Recorder owns it and only
    touches it from its single worker thread (use ``query()`` to read it from elsewhere).
    ``stats`` (a StatsBuckets) and ``bus`` (an EventBus) are optional; a StatsBuckets is made if
    none is given. Counters are plain attributes; ``snapshot()`` returns them all. ``on_write``
    hears whether each write to the log worked.
    """

    name = "querylog"

    def __init__(self, querylog_db: QueryLogDB, flush_interval: float = 60.0,
                 retention_days: float = DEFAULT_RETENTION_DAYS,
                 max_bytes: int = DEFAULT_MAX_BYTES, ring_size: int = DEFAULT_RING_SIZE,
                 max_pending: int = DEFAULT_MAX_PENDING, *, bus: EventBus | None = None,
                 stats: StatsBuckets | None = None, drain_interval: float = DRAIN_INTERVAL,
                 prune_interval: float = PRUNE_INTERVAL,
                 persist_interval: float = PERSIST_INTERVAL, id_block: int = ID_BLOCK,
                 on_write: Callable[[str, str | None], None] | None = None):
        self.db = querylog_db
        # Told of each flush and persist: (what, None) when it worked, (what, error) when it
        # failed (storage/health.py: storage that cannot be written is a fault).
        self.on_write = on_write
        self.on_blocked: Callable[[], None] | None = None  # once per drain that saw a blocked query
        # Whether the wall clock may be trusted for age pruning (the app's ClockGate.is_open).
        self.clock_ready: Callable[[], bool] = lambda: True
        self.age_prune_deferred = 0  # prune passes that skipped the age part for the clock
        self.blocked_total = 0  # queries counted with decision "blocked" since start
        self.flush_interval = flush_interval
        self.retention_days = retention_days
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        self.drain_interval = drain_interval
        self.prune_interval = prune_interval
        self.persist_interval = persist_interval
        self.bus = bus
        self.stats = stats if stats is not None else StatsBuckets()

        self.ring: collections.deque = collections.deque(maxlen=ring_size)
        # Rows, oldest first; at the cap, adding rows drops the oldest (in C, without a loop).
        self._pending: collections.deque = collections.deque(maxlen=max_pending)
        self._inflight: list = []  # rows handed to the worker by the flush in progress
        self._last_mono = None  # newest receipt time seen by the previous drain
        # Pending rows are (id, *ROW_FIELDS). The next id, and the first id not covered by the
        # durable reservation: nothing is reserved for this run until start() (or a drain on
        # the loop) reserves a block. Reading next_id touches no SQL: safe on this thread.
        self.id_block = max(2, int(id_block))
        self._next_id = querylog_db.next_id
        self._reserved = self._next_id
        self._reserve_task: asyncio.Task | None = None

        self.received = 0  # records drained from the ring
        # Monotonic totals by (decision, qtype, rcode) labels since start, for /metrics;
        # bounded by the label sets (14 decisions × 16 qtypes × 25 rcodes at the very most).
        self.query_counts: dict[tuple, int] = {}
        self.ring_overflows = 0  # drains that found the ring full (records were overwritten)
        self.dropped_ring = 0  # estimate of records overwritten in the ring, see _drain
        self.dropped_pending = 0  # rows dropped because the pending buffer was full
        self._last_overflow_log = -OVERFLOW_LOG_INTERVAL
        self._last_ring_log = -OVERFLOW_LOG_INTERVAL
        self.bad_records = 0  # records that could not be converted (a bug upstream)
        self.flushed = 0  # rows committed to the query log
        self.flush_errors = 0
        self.last_flush_error: str | None = None
        self.prune_errors = 0
        self.last_prune: dict | None = None
        self.persisted = 0  # rows appended to the archive on flash
        self.persist_errors = 0
        self.last_persist_error: str | None = None
        self.id_reserve_errors = 0
        self._last_reserve_log = -OVERFLOW_LOG_INTERVAL

        # One worker thread: SQLite connections must not be shared across threads, and one
        # writer means flush, prune and API reads are naturally serialised.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="burrow-querylog")
        self._flush_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closed = False

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Reserve the first block of row ids, seed live stats from the log, then start the
        drain, flush, persist and prune tasks. The first persist runs at once: it archives what
        a crashed run left in the hot tier."""
        await self._reserve_ids()
        try:
            rows = await self.query(self.db.minute_counts, time.time() - MAX_BUCKETS * 60)
            self.stats.seed(rows)
        except Exception:
            log.exception("could not seed statistics from the query log")
        every = self._every
        self._tasks = [
            asyncio.create_task(every(self.drain_interval, self.drain), name="recorder-drain"),
            asyncio.create_task(every(self.flush_interval, self.flush), name="recorder-flush"),
            asyncio.create_task(every(self.persist_interval, self.persist, first_now=True),
                                name="recorder-persist"),
            asyncio.create_task(every(self.prune_interval, self.prune, first_now=True),
                                name="recorder-prune"),
        ]

    def background_tasks(self) -> list[asyncio.Task]:
        """The drain, flush, persist and prune loops (for the supervisor: each catches its own
        errors, so one that ends before stop() is a bug)."""
        return list(self._tasks)

    async def stop(self) -> None:
        """Stop the tasks (letting a running flush finish), drain and flush once more, persist
        to the archive, and close the database on the worker thread. Does not prune. Safe to
        call twice."""
        if self._closed:
            return
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.drain()
        await self.flush()
        if self._pending:
            log.warning("query log: %d rows not written at shutdown", len(self._pending))
        await self.persist()
        if self._reserve_task is not None:
            await asyncio.gather(self._reserve_task, return_exceptions=True)
        # Every id handed out is below _next_id: give the rest of the block back, so the next
        # run goes on without a gap. (If this fails, the next run starts after the block.)
        try:
            await self.query(self.db.reserve_ids, self._next_id)
        except Exception:
            log.exception("could not release the unused query-log ids")
        try:
            await self.query(self.db.close)
        except Exception:
            log.exception("closing the query log failed")
        self._closed = True
        self._executor.shutdown(wait=True)

    async def _every(self, interval: float, action: Callable, first_now: bool = False) -> None:
        # Waits on the stop event rather than sleeping, so stop() ends the loop between actions
        # instead of cancelling one halfway through a database write.
        if not first_now and await self._wait_stop(interval):
            return
        while True:
            try:
                result = action()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("recorder task %s failed", getattr(action, "__name__", action))
            if await self._wait_stop(interval):
                return

    async def _wait_stop(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    # ---- the pipeline --------------------------------------------------------------------------

    def drain(self) -> int:
        """Move every record from the ring into stats, the bus and the pending rows; return how
        many. Runs on the loop thread (so the hot path cannot append meanwhile)."""
        ring = self.ring
        n = len(ring)
        if not n:
            return 0
        if ring.maxlen is not None and n >= ring.maxlen:
            self._count_ring_overflow(ring)
        records = list(ring)
        ring.clear()
        # One offset per drain: monotonic → wall. Records within a drain share the same clock
        # view, and the hot path only ever reads the monotonic clock.
        offset = time.time() - time.monotonic()
        add = self.stats.add
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        # Fast-path hits are tallied per second and (decision, count key) slot, then counted
        # once per tally: hits are most queries, so they cost a fraction of a full record.
        # They reach the ring in receipt order, so a second's tally is complete when a hit
        # from a later second arrives.
        tally: dict = {}  # slot → [count, elapsed sum], for the second ``second``
        second = 0
        second_end = -1.0
        counts = self.query_counts
        blocked_before = self.blocked_total
        nid = self._next_id  # rows get their ids here: see "Row ids" above
        for record in records:
            try:
                if len(record) == 4:
                    # A fast-path hit: (mono, client, FastEntry, elapsed). Its row is the
                    # entry's cached fields around the per-query ones.
                    mono, ip, entry, elapsed = record
                    parts = entry.row_parts
                    if parts is None:
                        parts = entry.row_parts = _row_parts(entry)
                    domain, qtype, rcode, decision, blocked, cached, upstream, trace, slot = parts
                    wall = mono + offset
                    append((nid, wall, ip, domain, qtype, rcode, decision, blocked, cached,
                            elapsed * 1000.0, upstream, trace))
                    nid += 1
                    if wall >= second_end:
                        if tally:
                            self._count_tally(second, tally)
                            tally = {}
                        second = int(wall)
                        second_end = second + 1.0
                    t = tally.get(slot)
                    if t is None:
                        tally[slot] = [1, elapsed]
                    else:
                        t[0] += 1
                        t[1] += elapsed
                    continue
                wall = record[0] + offset
                row = (nid,) + row_from_record(record, wall)
                add(wall, record)
                ckey = count_key(record[5], record[3], record[4])
                counts[ckey] = counts.get(ckey, 0) + 1
                if ckey[0] == "blocked":
                    self.blocked_total += 1
            except Exception:  # one malformed record must not cost the rest of the batch
                self.bad_records += 1
                if self.bad_records == 1 or self.bad_records % 1000 == 0:
                    log.exception("bad query record (%d so far): %r", self.bad_records, record)
                continue
            rows.append(row)
            nid += 1
        if tally:
            self._count_tally(second, tally)
        if rows:
            self._last_mono = rows[-1][1] - offset  # back to monotonic, for overflow estimates
        self._next_id = nid
        if nid + self.id_block // 2 > self._reserved:
            self._reserve_soon()
        self.received += n
        self._queue_rows(rows)
        if self.blocked_total != blocked_before and self.on_blocked is not None:
            try:
                self.on_blocked()  # the status LED flickers (rate-limited by its driver)
            except Exception:
                log.exception("blocked-query listener failed")
        bus = self.bus
        if bus is not None and bus.has_subscribers(QUERIES_TOPIC):
            for row in rows:
                bus.publish(QUERIES_TOPIC, row_to_dict(row[1:], row[0]))
        return n

    def _reserve_soon(self) -> None:
        # From the drain (loop thread, no awaiting): reserve the next block in the background,
        # half a block before this one runs out. Without a running loop (a drain called
        # directly) the next drain on the loop does it.
        if self._closed or (self._reserve_task is not None and not self._reserve_task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._reserve_task = loop.create_task(self._reserve_ids(), name="recorder-reserve-ids")

    async def _reserve_ids(self) -> None:
        """Reserve ids up to a block past the next one, durably; failures are logged and counted
        (ids keep being handed out: only a crash before a later success could reuse them)."""
        upto = self._next_id + self.id_block
        try:
            await self.query(self.db.reserve_ids, upto)
        except Exception as exc:
            self.id_reserve_errors += 1
            now = time.monotonic()
            if now - self._last_reserve_log >= OVERFLOW_LOG_INTERVAL:
                self._last_reserve_log = now
                log.warning("could not reserve query-log ids (%d failures): %s: %s",
                            self.id_reserve_errors, type(exc).__name__, exc)
            return
        self._reserved = max(self._reserved, upto)

    def _count_tally(self, second: int, tally: dict) -> None:
        add_many = self.stats.add_many
        counts = self.query_counts
        for slot, (count, elapsed_sum) in tally.items():
            decision, ckey = _TALLY_KEYS[slot]
            add_many(second, decision, count, elapsed_sum)
            counts[ckey] = counts.get(ckey, 0) + count
            if ckey[0] == "blocked":
                self.blocked_total += count

    def _count_ring_overflow(self, ring: collections.deque) -> None:
        # The hot path keeps no counter (that would cost it a Python-level call per query), so
        # the loss is inferred: a full ring has overwritten its oldest records. Assuming the
        # rate seen inside the ring held before it too, the records lost are those received
        # strictly between the previous drain's newest record and the oldest one still in the
        # ring. An estimate: at least 1 whenever the ring was full, exact at a steady rate.
        # (A full ring with nothing lost is possible but counted as 1: the cap was reached.)
        self.ring_overflows += 1
        estimate = 1
        try:
            oldest, newest = float(ring[0][0]), float(ring[-1][0])
            if self._last_mono is not None and newest > oldest:
                rate = (len(ring) - 1) / (newest - oldest)  # records per second
                estimate = max(1, round((oldest - self._last_mono) * rate) - 1)
        except (TypeError, ValueError, IndexError):
            pass  # malformed record: keep the lower bound
        self.dropped_ring += estimate
        now = time.monotonic()
        if now - self._last_ring_log >= OVERFLOW_LOG_INTERVAL:  # no log flood under load
            self._last_ring_log = now
            log.warning("query ring full (%d records): about %d records lost so far",
                        ring.maxlen, self.dropped_ring)

    def _queue_rows(self, rows: list) -> None:
        pending = self._pending
        overflow = len(pending) + len(rows) - (pending.maxlen or 0)
        pending.extend(rows)
        if overflow > 0:
            self.dropped_pending += overflow
            now = time.monotonic()
            if now - self._last_overflow_log >= OVERFLOW_LOG_INTERVAL:  # no log flood under load
                self._last_overflow_log = now
                log.warning("query log buffer full: %d oldest rows dropped so far", self.dropped_pending)

    async def flush(self) -> int:
        """Write all pending rows in one transaction on the worker thread; return how many.

        Never raises for a database error: it is logged and counted, and the rows stay pending
        (within ``max_pending``) for the next flush.
        """
        async with self._flush_lock:
            if not self._pending or self._closed:
                return 0
            batch = list(self._pending)
            self._pending.clear()
            self._inflight = batch
            try:
                written = await self.query(self.db.write, batch)
            except Exception as exc:
                self.flush_errors += 1
                self.last_flush_error = f"{type(exc).__name__}: {exc}"
                log.warning("query log flush of %d rows failed (kept for retry): %s",
                            len(batch), self.last_flush_error)
                self._written("the query log", self.last_flush_error)
                # Put the batch back in front of rows drained meanwhile, then re-apply the cap.
                newer = list(self._pending)
                self._pending.clear()
                self._queue_rows(batch + newer)
                return 0
            finally:
                self._inflight = []
            self.flushed += written
            self._written("the query log", None)
            return written

    async def persist(self) -> dict | None:
        """Append the rows new in the hot tier to the archive on flash now (also runs every
        ``persist_interval``, at start and at stop); errors are logged and counted, and the
        rows stay in the hot tier for the next try."""
        if self._closed:
            return None
        async with self._flush_lock:  # not while a flush is committing: one worker, one order
            try:
                result = await self.query(self.db.persist)
            except Exception as exc:
                self.persist_errors += 1
                self.last_persist_error = f"{type(exc).__name__}: {exc}"
                log.warning("query log persist failed (rows kept in the hot tier): %s",
                            self.last_persist_error)
                self._written("the query-log archive", self.last_persist_error)
                return None
        self.persisted += result["archived"]
        self._written("the query-log archive", None)
        return result

    def _written(self, what: str, error: str | None) -> None:
        if self.on_write is not None:
            try:
                self.on_write(what, error)
            except Exception:
                log.exception("write listener failed")

    async def prune(self) -> dict | None:
        """Apply retention now (also runs hourly); errors are logged and counted. Age retention
        waits for a clock known to be right (``clock_ready``); the size cap does not."""
        retention_days: float | None = self.retention_days
        if not self.clock_ready():
            retention_days = None
            self.age_prune_deferred += 1
            log.info("query log: age pruning waits for the clock to be set; size cap applied")
        try:
            self.last_prune = await self.query(self.db.prune, None, retention_days,
                                               self.max_bytes)
        except Exception:
            self.prune_errors += 1
            log.exception("query log prune failed")
            return None
        return self.last_prune

    # ---- reading -------------------------------------------------------------------------------

    async def query(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` — typically a QueryLogDB method — on the worker thread and
        return its result. The way for the API to read the log without blocking the loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def search(self, match: QueryFilter | None = None, limit: int = 100,
                     offset: int = 0) -> tuple[list[dict], int]:
        """One page of the whole query log — the rows waiting in memory and the rows written —
        newest first, and how many rows match: what /api/queries and /api/traces/stats read.

        The filter is applied by ONE definition (``QueryFilter``: its predicate to the rows in
        memory, its SQL to the log). Memory and the log are one consistent view without
        duplicates or gaps, even while a flush commits: the rows in memory (in flight and
        pending) always hold one contiguous range of ids, the newest, and the log is read below
        that range only, so a row is taken from exactly one place. Every row in memory is
        looked at (at most ``max_pending`` plus one flush batch), so none is missing before its
        flush; only the page is shaped as API dicts. Records still in the ring (drained within
        ``drain_interval``) have no id yet and are not included. Storage errors propagate.
        """
        match = match or QueryFilter()
        # A snapshot taken on the loop, so no drain or flush changes it halfway: oldest first.
        # The rows are immutable tuples: the worker thread filters them (up to max_pending of
        # them: not on the loop) and reads the log in the same call.
        memory = [*self._inflight, *self._pending]
        floor = memory[0][0] if memory else self._next_id  # lowest id in memory
        return await self.query(merged_page, self.db, memory, floor, match, limit, offset)

    def recent(self, limit: int = 100) -> list[dict]:
        """The newest rows not yet in the database, newest first, shaped like
        ``QueryLogDB.fetch`` items, with the ids they keep once written. Covers the seconds
        before the next flush; records still in the ring (under a second old) are not included.
        What memory holds, unfiltered (tests look at it); the API reads through ``search``."""
        out: list[dict[str, Any]] = []
        for source in (self._pending, self._inflight):
            for row in reversed(source):
                if len(out) >= limit:
                    return out
                out.append(row_to_dict(row[1:], row[0]))
        return out

    def snapshot(self) -> dict:
        """Counters for health and metrics endpoints."""
        return {
            "received": self.received,
            "ring": len(self.ring),
            "ring_size": self.ring.maxlen,
            "ring_overflows": self.ring_overflows,
            "dropped_ring": self.dropped_ring,
            "pending": len(self._pending) + len(self._inflight),
            "max_pending": self.max_pending,
            "dropped_pending": self.dropped_pending,
            "bad_records": self.bad_records,
            "flushed": self.flushed,
            "flush_errors": self.flush_errors,
            "last_flush_error": self.last_flush_error,
            "prune_errors": self.prune_errors,
            "age_prune_deferred": self.age_prune_deferred,
            "persisted": self.persisted,
            "persist_errors": self.persist_errors,
            "last_persist_error": self.last_persist_error,
            "next_id": self._next_id,
            "ids_reserved_to": self._reserved,
            "id_reserve_errors": self.id_reserve_errors,
        }
