"""The query log: one row per answered query, in two tiers so that flash sees little of it.

Flash wear is the budget that shapes this module (≤ 5 MB/day at 50k queries/day, see
docs/benchmarks.md "Flash writes"). A SQLite page is 4 KiB, so even one page per minute is
5.9 MB/day: the per-minute flush cannot go to flash at all, and what does go must be
compressed. Hence two files:

- **hot** — ``querylog.db`` in ``ram_dir`` (a tmpfs such as /run/burrow on the appliance; the
  data dir itself when no RAM dir is configured). The Recorder's ``write`` lands here in one
  transaction per flush interval, exactly as a single-file log would. It has the row table
  with its ts and domain indexes, so reads of the recent past are plain indexed SQL. A tmpfs
  outlives the process: kill -9 keeps everything up to the last flush. It does not outlive a
  reboot.
- **archive** — ``querylog-archive.db`` next to ``path`` in the data dir (flash). ``persist``
  (every ``storage.query_log_persist_interval``, default 15 min, and at clean shutdown)
  appends the rows not yet archived as compressed blocks in ONE transaction: one row per
  block (first/last ts, row count, min/max id, a zlib blob), no per-row index, so a persist
  of a quarter hour of traffic dirties a handful of pages. Rows stay in the hot tier for
  ``hot_seconds`` (1 h) after being archived, then ``persist`` trims them from it.

Row ids are one sequence across both tiers: the Recorder gives a row its id when it takes the
row in (``next_id`` seeds it), so a row has the same id in memory, in the hot tier and in the
archive; ``write`` also numbers rows handed to it without ids. Ids a run may have shown but not
written are reserved in the archive (``reserve_ids``), so no later run hands them out again.
The hot tier always holds a contiguous newest range of them: rows with ``id >= MIN(hot id)`` are
read from the hot tier, older ones from the
archive. So a crash between the archive commit and the hot trim (both tiers hold a row) never
shows a row twice, and a crash before the archive commit loses nothing (the next persist
archives the same rows again). Power cut or reboot: the hot tier is gone, the archive keeps
everything up to the last persist — at most one persist interval (plus the pending flush) is
lost. The hot file is WAL with ``synchronous=NORMAL`` (as the single-file log was); the archive
uses a rollback journal with ``synchronous=FULL`` (see ``ARCHIVE_PRAGMAS``), so a persist is
durable when it returns.

Every method is meant to be called from ONE worker thread (the Recorder's single-thread
executor); the connections are opened with ``check_same_thread=False`` for that reason and must
never be used by two threads at once.

Rows handed to ``write`` are plain tuples in ``ROW_FIELDS`` order, or ``(id, *ROW_FIELDS)``;
``row_from_record`` builds one from a ``QueryRecord`` and ``row_to_dict`` turns one into the API
shape.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import math
import os
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import ujson

from ..dns.decision import Decision, QueryRecord, TraceEntry
from ..dns.qtypes import name as qtype_name
from .settings import BUSY_TIMEOUT_MS, apply_migrations, integrity_check
from .queryfilter import QueryFilter

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 7.0
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # both tiers together; compressed, the archive holds millions of rows
MAX_FETCH_LIMIT = 1000  # the API's documented ceiling for one page of queries
# Deletes run in chunks of this many rows, each its own transaction, so a large prune keeps the
# WAL (and the page cache it pins) small instead of rewriting half the file in one go.
PRUNE_CHUNK_ROWS = 20_000
# Size pruning deletes down to this fraction of max_bytes, so the next hourly prune does not
# immediately find the file over the limit again and churn a handful of rows each time.
SIZE_PRUNE_TARGET = 0.9
# After a checkpoint SQLite truncates the WAL file to at most this, so one big flush does not
# leave a large WAL sitting on flash.
WAL_SIZE_LIMIT = 4 * 1024 * 1024
# Seconds a row stays in the hot tier after it has been archived: the admin page's usual views
# (the last minutes, the last hour) then never decompress anything. At 50k queries/day that is
# ~2,000 rows, well under 1 MB of tmpfs.
HOT_SECONDS = 3600.0
# Rows per archive block, at most. A persist at the default 15 min and 50k queries/day makes one
# block of ~520 rows (~10 KB compressed); a backlog after a long outage is cut into blocks this
# big so one read never decompresses more than a few MB.
BLOCK_MAX_ROWS = 8192
# Reads that must decompress archive blocks to answer (a filtered ``fetch`` total, ``top_*``,
# ``minute_counts``) stop after this many archived rows: about 8 days at 50k queries/day, so at
# the design load and default retention they see everything. Past it they answer for the newest
# rows scanned and set ``last_scan_capped``.
ARCHIVE_SCAN_MAX_ROWS = 400_000
# The archive's file layout, chosen by measuring a steady-state day (a week of blocks, 96
# persists, 24 prunes; docs/benchmarks.md): a rollback journal writes appended pages once where
# WAL writes every page twice and keeps a -shm file dirty on flash; synchronous=FULL because a
# rollback journal needs it to survive a power cut; no auto_vacuum (no pointer-map pages to
# update: freed pages are simply reused by the next blocks); 1 KiB pages, because a persist
# rewrites a few b-tree pages (header, leaf, freelist) besides the blob.
ARCHIVE_PRAGMAS: dict[str, Any] = {"journal_mode": "TRUNCATE", "synchronous": "FULL", "auto_vacuum": "NONE",
                   "page_size": 1024}
# Age retention drops archive blocks in batches: only once the oldest block has been expired
# for this long, so a day costs 4 small delete transactions, not 24. Archived rows may outlive
# retention_days by up to this (plus one persist interval).
ARCHIVE_AGE_BATCH = 6 * 3600.0
ARCHIVE_SUFFIX = "-archive"  # querylog.db → querylog-archive.db
BLOCK_FORMAT = 1
ZLIB_LEVEL = 6

ROW_FIELDS = ("ts", "client_ip", "domain", "qtype", "rcode", "decision", "blocked", "cached",
              "response_ms", "upstream", "trace")

_QUERIES_TABLE = """
        CREATE TABLE queries (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,            -- unix seconds (wall clock)
            client_ip TEXT NOT NULL,
            domain TEXT NOT NULL,        -- lower case, no trailing dot
            qtype INTEGER NOT NULL,
            rcode INTEGER NOT NULL,
            decision INTEGER NOT NULL,   -- burrow.dns.decision.Decision value
            blocked INTEGER NOT NULL,    -- 0/1, denormalised from decision for cheap filters
            cached INTEGER NOT NULL,     -- 0/1
            response_ms REAL NOT NULL,
            upstream TEXT NOT NULL,      -- "ip:port" or ""
            trace TEXT                   -- JSON list of trace dicts, or NULL
        );"""

# The hot tier (and, before the archive existed, the whole log).
MIGRATIONS: list[tuple[int, str]] = [
    (1, _QUERIES_TABLE + """
        CREATE INDEX queries_ts ON queries (ts);
        CREATE INDEX queries_domain ON queries (domain);
    """),
    # 2: no index on domain. Nothing used it well (the /api/queries domain filter matches the
    # name or any name below it, `domain LIKE '%.x'`, which no index serves; top domains group
    # the rows of a time range, which the ts index finds), and keeping it up to date was a third
    # of what a logged query costs: 2.8 → 1.7 µs of CPU per row (scripts: docs/benchmarks.md).
    (2, "DROP INDEX IF EXISTS queries_domain;"),
]

# The archive on flash: one row per compressed block, no per-row index. Blocks are appended in
# id order, so the rowid order is the row-id order and the time order (clock jumps aside: reads
# use first_ts/last_ts, the true min/max of the block's rows).
ARCHIVE_MIGRATIONS: list[tuple[int, str]] = [
    (1, """
        CREATE TABLE blocks (
            id INTEGER PRIMARY KEY,
            first_ts REAL NOT NULL,      -- MIN(ts) of the rows in the block
            last_ts REAL NOT NULL,       -- MAX(ts)
            row_count INTEGER NOT NULL,
            min_id INTEGER NOT NULL,     -- query-row ids covered, inclusive
            max_id INTEGER NOT NULL,
            format INTEGER NOT NULL,     -- encoding of data, see encode_block
            data BLOB NOT NULL           -- zlib-compressed columns
        );
    """),
    # 2: the first row id a later run may use (QueryLogDB.reserve_ids). One row, rewritten
    # rarely (start, clean stop, every ID_BLOCK/2 ids): on flash so it outlives a reboot.
    (2, """
        CREATE TABLE id_reservation (
            one INTEGER PRIMARY KEY CHECK (one = 1),
            next_id INTEGER NOT NULL
        );
    """),
]

_INSERT = (f"INSERT INTO queries (id, {', '.join(ROW_FIELDS)}) "
           f"VALUES ({', '.join('?' * (len(ROW_FIELDS) + 1))})")
_SELECT_ROWS = f"SELECT id, {', '.join(ROW_FIELDS)} FROM queries"
_TRACE_FIELDS = ("stage", "action", "rule", "source", "detail")


# ---- row helpers (shared with the Recorder) ---------------------------------------------------

def _trace_dict(entry: Any) -> dict:
    if hasattr(entry, "as_dict"):
        return entry.as_dict()
    if isinstance(entry, dict):
        return entry
    return {k: v for k, v in zip(_TRACE_FIELDS, entry) if v or k in ("stage", "action")}


def _entry_dict(e: tuple) -> dict:
    # A TraceEntry's fields in order, empty ones left out except stage and action (as_dict).
    stage, action, rule, source, detail = e
    d = {"stage": stage, "action": action}
    if rule:
        d["rule"] = rule
    if source:
        d["source"] = source
    if detail:
        d["detail"] = detail
    return d


@functools.lru_cache(maxsize=4096)  # bounded: most traces repeat (cache hits, the same list)
def _trace_json(trace: tuple) -> str:
    if all(type(e) is TraceEntry for e in trace):
        # ujson: the same JSON as json.dumps(separators=(",", ":")) at a third of the cost; a
        # fresh block's trace names the matched entry, so it is encoded once per query.
        return ujson.dumps([_entry_dict(e) for e in trace], escape_forward_slashes=False)
    return json.dumps([_trace_dict(e) for e in trace], separators=(",", ":"))


# Decision (or its int value: IntEnum hashes alike) → (decision, blocked, cached) columns.
_DECISION_COLUMNS = {d: (int(d), int(d.blocked), int(d.cached)) for d in Decision}


def row_from_record(record: QueryRecord | tuple, wall_ts: float) -> tuple:
    """The ``write`` row for one QueryRecord (or an equal plain tuple) received at ``wall_ts``."""
    _mono, client_ip, domain, qtype, rcode, decision, elapsed, upstream, trace = record
    columns = _DECISION_COLUMNS.get(decision)
    if columns is None:
        columns = _DECISION_COLUMNS[Decision(decision)]  # raises ValueError for an unknown one
    trace_json = None
    if trace:
        try:
            trace_json = _trace_json(trace)
        except TypeError:  # an unhashable trace (lists or dicts inside): encode it directly
            trace_json = json.dumps([_trace_dict(e) for e in trace], separators=(",", ":"))
    return (wall_ts, client_ip, domain, int(qtype), int(rcode)) + columns + (
        elapsed * 1000.0, upstream or "", trace_json)


def iso_utc(ts: float) -> str:
    """ISO 8601 UTC with millisecond precision and a ``Z``: 2025-11-22T10:30:00.123Z."""
    moment = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def row_to_dict(row: Sequence, row_id: int | None = None) -> dict:
    """The API shape (seed ``/api/queries``) of a row in ``ROW_FIELDS`` order.

    ``block_trace`` is present only when the row has a trace; ``decision`` is the label
    ("blocked", "cached", …). ``row_id`` is the row's id (rows get theirs when the Recorder
    takes them in, see ``write``).
    """
    ts, client_ip, domain, qtype, rcode, decision, blocked, cached, ms, upstream, trace = row
    out = {
        "id": row_id,
        "timestamp": iso_utc(ts),
        "client_ip": client_ip,
        "domain": domain,
        "query_type": qtype_name(qtype),
        "response_code": rcode,
        "blocked": bool(blocked),
        "cached": bool(cached),
        "response_time_ms": round(ms, 3),
        "upstream": upstream,
        "decision": _decision_label(decision),
    }
    if trace:
        out["block_trace"] = json.loads(trace)
    return out


def _decision_label(value: int) -> str:
    try:
        return Decision(value).label
    except ValueError:  # written by a newer release with more decisions
        return f"decision_{value}"


# ---- archive blocks ---------------------------------------------------------------------------

def _deltas(values: Sequence[int]) -> list[int]:
    out, prev = [], 0
    for v in values:
        out.append(v - prev)
        prev = v
    return out


def _undeltas(deltas: Sequence[int]) -> list[int]:
    out, acc = [], 0
    for d in deltas:
        acc += d
        out.append(acc)
    return out


def encode_block(rows: Sequence[Sequence]) -> bytes:
    """Compress ``rows`` — ``(id, *ROW_FIELDS)`` tuples in ascending id order — into one block.

    Format 1 is zlib (level 6) of a JSON object of columns: ids and timestamps (integer
    milliseconds, what the API shows) as deltas, response times as integer microseconds, the
    text columns (client, domain, upstream, trace JSON) as indexes into one string table. Rows
    of a quarter hour compress 10-20× this way (repeated names, traces and clients).
    """
    strings: dict = {}

    def codes(column: Iterable) -> list[int]:
        out = []
        for value in column:
            code = strings.get(value)
            if code is None:
                code = strings[value] = len(strings)
            out.append(code)
        return out

    (ids, ts, client, domain, qtype, rcode, decision, blocked, cached, ms, upstream,
     trace) = zip(*rows)
    doc = {
        "v": BLOCK_FORMAT,
        "id": _deltas([int(i) for i in ids]),
        "ts": _deltas([math.floor(t * 1000.0) for t in ts]),
        "client": codes(client), "domain": codes(domain),
        "qtype": [int(v) for v in qtype], "rcode": [int(v) for v in rcode],
        "decision": [int(v) for v in decision], "blocked": [int(v) for v in blocked],
        "cached": [int(v) for v in cached], "us": [round(v * 1000.0) for v in ms],
        "upstream": codes(upstream), "trace": codes(trace),
        "s": list(strings),
    }
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), ZLIB_LEVEL)


def decode_block(data: bytes, fmt: int = BLOCK_FORMAT) -> list[tuple]:
    """The ``(id, *ROW_FIELDS)`` tuples of a block, ascending id. Timestamps come back at
    millisecond precision, response times at microsecond precision."""
    if fmt != BLOCK_FORMAT:
        raise ValueError(f"query-log block format {fmt} is not known to this release")
    doc = json.loads(zlib.decompress(data))
    s = doc["s"]
    return list(zip(
        _undeltas(doc["id"]), [t / 1000.0 for t in _undeltas(doc["ts"])],
        [s[i] for i in doc["client"]], [s[i] for i in doc["domain"]],
        doc["qtype"], doc["rcode"], doc["decision"], doc["blocked"], doc["cached"],
        [u / 1000.0 for u in doc["us"]],
        [s[i] for i in doc["upstream"]], [s[i] for i in doc["trace"]]))


# ---- the database -----------------------------------------------------------------------------

def _open(path: str, migrations: Sequence[tuple[int, str]], journal_mode: str = "WAL",
          synchronous: str = "NORMAL", auto_vacuum: str = "INCREMENTAL",
          page_size: int | None = None) -> tuple[sqlite3.Connection, int]:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # auto_vacuum can only be chosen before the first table exists (or by a full VACUUM),
        # so it must come before the migrations create the schema.
        conn.execute(f"PRAGMA auto_vacuum = {auto_vacuum}")
        if page_size:  # like auto_vacuum: only for a new file
            conn.execute(f"PRAGMA page_size = {int(page_size)}")
        mode = conn.execute(f"PRAGMA journal_mode = {journal_mode}").fetchone()[0]
        if mode.lower() != journal_mode.lower():
            log.warning("%s: journal_mode is %s, not %s", path, mode, journal_mode)
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        # Debian builds SQLite with SECURE_DELETE on: every freed page would be zeroed, i.e.
        # rewritten (and journaled) — on flash, pruning would cost as much as writing. Freed
        # pages are reused by the next blocks or vacuumed away.
        conn.execute("PRAGMA secure_delete = OFF")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        version = apply_migrations(conn, migrations, name=path)
        if auto_vacuum == "INCREMENTAL" and conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            log.warning("%s: auto_vacuum is not INCREMENTAL (file predates it); size pruning "
                        "frees pages for reuse but cannot shrink the file", path)
        return conn, version
    except BaseException:
        conn.close()
        raise


def _used_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return (pages - free) * conn.execute("PRAGMA page_size").fetchone()[0]


def _file_bytes(conn: sqlite3.Connection) -> int:
    return (conn.execute("PRAGMA page_count").fetchone()[0]
            * conn.execute("PRAGMA page_size").fetchone()[0])


class QueryLogDB:
    """The query log: a hot SQLite tier (RAM) and a compressed archive (flash), read as one.

    ``QueryLogDB(path, ram_dir=...)``: ``path`` names the log in the data dir
    (``…/querylog.db``); the archive is ``querylog-archive.db`` beside it and the hot tier is
    ``querylog.db`` in ``ram_dir`` — or ``path`` itself when ``ram_dir`` is empty (development:
    then both tiers live in the data dir and the code path is the same). Both files are created
    and migrated. A hot file left at ``path`` by an earlier run without a RAM dir is folded
    into the archive and removed.

    ``write`` appends a batch to the hot tier atomically, ``persist`` moves what is new to the
    archive, ``prune`` applies retention to both, ``fetch``/``top_*``/``minute_counts``/``count``
    read both tiers as one log. ``conn`` is the hot tier's connection (a ``queries`` table).
    All methods run on the Recorder's single worker thread.
    """

    def __init__(self, path: str | os.PathLike, migrations: Sequence[tuple[int, str]] = MIGRATIONS,
                 *, ram_dir: str | os.PathLike | None = None, hot_seconds: float = HOT_SECONDS):
        self.path = os.fspath(path)
        data_dir, name = os.path.split(os.path.abspath(self.path))
        stem, ext = os.path.splitext(name)
        self.archive_path = os.path.join(data_dir, stem + ARCHIVE_SUFFIX + (ext or ".db"))
        self.hot_path = self.path
        if ram_dir:
            ram_dir = os.fspath(ram_dir)
            os.makedirs(ram_dir, exist_ok=True)
            if not os.path.samefile(ram_dir, data_dir):
                self.hot_path = os.path.join(ram_dir, name)
        self.hot_seconds = float(hot_seconds)
        # True when the last archive-scanning read stopped at ARCHIVE_SCAN_MAX_ROWS.
        self.last_scan_capped = False
        self._scratch: sqlite3.Connection | None = None
        self._decoded: dict[int, list[tuple]] = {}  # a few decoded blocks, for paging
        self.conn, self.version = _open(self.hot_path, migrations)
        try:
            self.archive: sqlite3.Connection
            self.archive, self.archive_version = _open(self.archive_path, ARCHIVE_MIGRATIONS,
                                                       **ARCHIVE_PRAGMAS)
            self._archived_max = self.archive.execute(
                "SELECT COALESCE(MAX(max_id), 0) FROM blocks").fetchone()[0]
            if self.hot_path != self.path and os.path.exists(self.path):
                self._fold_stray(self.path)
            hot_max = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM queries").fetchone()[0]
            # One id sequence across tiers: after a reboot the hot tier is empty and ids go on
            # after the archive's — or after the ids a previous run reserved, if it got further
            # (it showed rows it never wrote, or whose hot tier a reboot took).
            self._next_id = max(hot_max + 1, self._archived_max + 1, self.reserved_ids())
        except BaseException:
            self.close()
            raise

    # ---- writing -------------------------------------------------------------------------------

    @property
    def next_id(self) -> int:
        """The lowest id not used yet: above every row in either tier and every id reserved."""
        return self._next_id

    def reserved_ids(self) -> int:
        """The first id a run opening this log may use (0: none reserved)."""
        row = self.archive.execute("SELECT next_id FROM id_reservation").fetchone()
        return row[0] if row else 0

    def reserve_ids(self, upto: int) -> None:
        """Record durably (one small archive transaction, on flash) that ids below ``upto`` may
        have been handed out: a later open starts at ``upto`` or above. The caller may also
        lower it, to the first id it really did not use, when it stops cleanly."""
        archive = self.archive
        archive.execute("BEGIN IMMEDIATE")
        try:
            archive.execute("INSERT OR REPLACE INTO id_reservation (one, next_id) VALUES (1, ?)",
                            (int(upto),))
            archive.execute("COMMIT")
        except BaseException:
            if archive.in_transaction:
                archive.execute("ROLLBACK")
            raise

    def write(self, rows: Iterable[Sequence]) -> int:
        """Insert ``rows`` in one transaction into the hot tier; return the count.

        Rows are ``(id, *ROW_FIELDS)`` tuples with ascending ids from ``next_id`` on (the
        Recorder's), or ``ROW_FIELDS`` tuples, which get the next ids here. A batch is all of one
        kind. All or nothing: on error the batch is rolled back and the exception propagates.
        """
        rows = list(rows)
        if not rows:
            return 0
        first = self._next_id
        params: list[Sequence[Any]]
        if len(rows[0]) == len(ROW_FIELDS):
            params = [(first + i, *row) for i, row in enumerate(rows)]
        else:
            # An id below the log's newest would break the hot tier's contiguous newest range
            # (reads would take it for an archived row).
            if rows[0][0] < first:
                raise ValueError(f"query-log id {rows[0][0]} is not above the log's ({first - 1})")
            params = rows
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, params)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._next_id = params[-1][0] + 1
        return len(rows)

    def persist(self, now: float | None = None) -> dict:
        """Archive every hot row not yet archived, in ONE archive transaction, then trim from the
        hot tier the archived rows older than ``hot_seconds``. Returns ``{"archived", "blocks",
        "trimmed"}``. Writes nothing to flash when there is nothing new.

        Crash-safe in any instant: before the archive commit nothing changed (the next persist
        redoes it); after it, rows still in the hot tier are hidden from archive reads.
        """
        now = time.time() if now is None else now
        archived, blocks = self._archive_rows(self.conn)
        return {"archived": archived, "blocks": blocks,
                "trimmed": self._trim_hot(now - self.hot_seconds)}

    def _archive_rows(self, source: sqlite3.Connection) -> tuple[int, int]:
        cursor = source.execute(f"{_SELECT_ROWS} WHERE id > ? ORDER BY id", (self._archived_max,))
        archive = self.archive
        archived = blocks = 0
        max_id = self._archived_max
        archive.execute("BEGIN IMMEDIATE")
        try:
            while chunk := cursor.fetchmany(BLOCK_MAX_ROWS):
                stamps = [row[1] for row in chunk]
                archive.execute(
                    "INSERT INTO blocks (first_ts, last_ts, row_count, min_id, max_id, format, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (min(stamps), max(stamps), len(chunk), chunk[0][0], chunk[-1][0],
                     BLOCK_FORMAT, encode_block(chunk)))
                archived += len(chunk)
                blocks += 1
                max_id = chunk[-1][0]
            archive.execute("COMMIT" if blocks else "ROLLBACK")
        except BaseException:
            if archive.in_transaction:
                archive.execute("ROLLBACK")
            raise
        finally:
            cursor.close()
        if blocks:
            self._archived_max = max_id
        return archived, blocks

    def _trim_hot(self, cutoff: float) -> int:
        # Only archived rows, and only a prefix of ids: the hot tier must stay a contiguous
        # newest range (reads take ids >= its lowest id from it, the rest from the archive).
        bound = self._archived_max
        first_recent = self.conn.execute("SELECT MIN(id) FROM queries WHERE ts >= ?",
                                         (cutoff,)).fetchone()[0]
        if first_recent is not None:
            bound = min(bound, first_recent - 1)
        return self._delete_chunked("id <= ?", (bound,))

    def _fold_stray(self, stray: str) -> None:
        # A hot file at the data-dir path, from a run without a RAM dir (or an older release):
        # archive what it has that the archive lacks, then remove it so it neither hides rows
        # nor sits on flash forever. Rows it shares ids with in a live RAM tier (the RAM dir
        # turned on and off without a reboot) are not reconciled.
        try:
            conn, _ = _open(stray, MIGRATIONS)
            try:
                archived, _ = self._archive_rows(conn)
            finally:
                conn.close()
        except Exception:
            log.exception("could not fold %s into the query-log archive; left in place", stray)
            return
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(stray + suffix)
            except FileNotFoundError:
                pass
        log.info("folded %d query-log rows from %s into %s", archived, stray, self.archive_path)

    # ---- retention -----------------------------------------------------------------------------

    def prune(self, now: float | None = None, retention_days: float | None = DEFAULT_RETENTION_DAYS,
              max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
        """Apply retention to both tiers; return ``{"deleted_age", "deleted_size", "bytes"}``.
        ``retention_days`` None skips the age part (the clock is not known to be right yet:
        burrow/clock.py); the size cap holds whatever the clock says.

        Age: hot rows older than ``retention_days`` go, and archive blocks whose NEWEST row is
        older — whole blocks, and in batches once the oldest has been expired for
        ``ARCHIVE_AGE_BATCH`` (6 h), so archived rows may outlive the cutoff by that plus one
        persist interval. Size: while the two tiers together use more than ``max_bytes``
        (in-use pages × page size; WAL and journal not counted), the oldest archive blocks go,
        then the oldest hot rows, down to ``SIZE_PRUNE_TARGET`` × ``max_bytes``. Counts are of
        rows as reads see them. The hot file gives freed pages back to the filesystem; the
        archive keeps them for the next blocks (its file stays at its high-water mark, at most
        ``max_bytes`` and a block) unless more than half of it is free, then it is VACUUMed.
        """
        now = time.time() if now is None else now
        deleted_age = hot_age = archive_age = 0
        if retention_days is not None:
            cutoff = now - retention_days * 86400.0
            deleted_age = hot_age = self._delete_chunked("ts < ?", (cutoff,))
            oldest = self.archive.execute("SELECT MIN(last_ts) FROM blocks").fetchone()[0]
            if oldest is not None and oldest < cutoff - ARCHIVE_AGE_BATCH:
                archive_age = self._drop_blocks("last_ts < ?", (cutoff,))
            deleted_age += archive_age

        deleted_size = hot_size = archive_size = 0
        for _ in range(8):  # each pass re-measures; a few passes converge, the cap stops a spin
            used = self.used_bytes()
            if used <= max_bytes:
                break
            excess = used - max_bytes * SIZE_PRUNE_TARGET
            floor = self._hot_floor()
            upto, freed = None, 0
            for bid, size in self.archive.execute(
                    "SELECT id, length(data) FROM blocks WHERE max_id < ? ORDER BY id", (floor,)):
                upto, freed = bid, freed + size
                if freed >= excess:
                    break
            if upto is not None:
                n = self._drop_blocks("id <= ?", (upto,))
                archive_size += n
                deleted_size += n
                continue
            count = self.conn.execute("SELECT COUNT(*) FROM queries").fetchone()[0]
            if count == 0:
                break
            to_delete = max(1, math.ceil(count * excess / used))
            n = self._delete_oldest(to_delete)
            hot_size += n
            deleted_size += n

        if hot_age or hot_size:
            # executescript steps the pragma to completion; execute() would stop after the
            # first step (the pragma has no result columns) and free a single page.
            self.conn.executescript("PRAGMA incremental_vacuum;")
            self._checkpoint(self.conn)
        if archive_age or archive_size:
            archive = self.archive
            free = archive.execute("PRAGMA freelist_count").fetchone()[0]
            pages = archive.execute("PRAGMA page_count").fetchone()[0]
            page_size = archive.execute("PRAGMA page_size").fetchone()[0]
            # Rare (retention shortened, max_bytes lowered): rewrite the file to its data.
            if free > pages // 2 and free * page_size > 1024 * 1024:
                archive.execute("VACUUM")
        if deleted_age or deleted_size:
            log.info("query log pruned: %d rows by age, %d by size", deleted_age, deleted_size)
        return {"deleted_age": deleted_age, "deleted_size": deleted_size,
                "bytes": self.used_bytes()}

    def _drop_blocks(self, where: str, params: tuple) -> int:
        """Delete the archive blocks matching ``where`` in one transaction; return how many rows
        they held that reads could see (rows also in the hot tier are not counted)."""
        archive = self.archive
        floor = self._hot_floor()
        blocks = archive.execute(f"SELECT id, row_count, max_id FROM blocks WHERE {where}",
                                 params).fetchall()
        if not blocks:
            return 0
        visible = 0
        for bid, count, max_id in blocks:
            visible += count if max_id < floor else len(self._block_rows(bid, floor))
        archive.execute(f"DELETE FROM blocks WHERE {where}", params)
        self._decoded.clear()
        return visible

    def _delete_chunked(self, where: str, params: tuple) -> int:
        total = 0
        while True:
            n = self.conn.execute(
                f"DELETE FROM queries WHERE id IN "
                f"(SELECT id FROM queries WHERE {where} ORDER BY id LIMIT {PRUNE_CHUNK_ROWS})",
                params).rowcount
            total += n
            if n < PRUNE_CHUNK_ROWS:
                return total

    def _delete_oldest(self, n: int) -> int:
        total = 0
        while total < n:
            chunk = min(PRUNE_CHUNK_ROWS, n - total)
            deleted = self.conn.execute(
                f"DELETE FROM queries WHERE id IN "
                f"(SELECT id FROM queries ORDER BY id LIMIT {int(chunk)})").rowcount
            total += deleted
            if deleted < chunk:
                break
        return total

    def checkpoint(self) -> None:
        """Copy the hot tier's WAL into its file and truncate it (best effort if readers are
        active). The archive has no WAL."""
        self._checkpoint(self.conn)

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    # ---- reading -------------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes holding data in both files (pages in use × page size)."""
        return _used_bytes(self.conn) + _used_bytes(self.archive)

    def file_bytes(self) -> int:
        """Bytes of both main files, including free pages not yet vacuumed."""
        return _file_bytes(self.conn) + _file_bytes(self.archive)

    def _hot_floor(self) -> int:
        """The lowest id read from the hot tier; lower ids are read from the archive."""
        low = self.conn.execute("SELECT MIN(id) FROM queries").fetchone()[0]
        return self._next_id if low is None else low

    def _blocks(self, floor: int, since: float | None = None,
                until: float | None = None) -> list[tuple]:
        """Metadata ``(id, first_ts, last_ts, row_count, min_id, max_id)`` of the archive blocks
        holding rows below ``floor`` that may fall in [since, until), newest first."""
        sql = ("SELECT id, first_ts, last_ts, row_count, min_id, max_id FROM blocks "
               "WHERE min_id < ?")
        params: list = [floor]
        if since is not None:
            sql += " AND last_ts >= ?"
            params.append(float(since))
        if until is not None:
            sql += " AND first_ts < ?"
            params.append(float(until))
        return self.archive.execute(sql + " ORDER BY id DESC", params).fetchall()

    def _block_rows(self, block_id: int, floor: int) -> list[tuple]:
        """The rows of one block with ids below ``floor`` (decoded blocks are kept for a few
        reads: paging through the log decodes each block once)."""
        rows = self._decoded.get(block_id)
        if rows is None:
            fmt, data = self.archive.execute("SELECT format, data FROM blocks WHERE id = ?",
                                             (block_id,)).fetchone()
            rows = decode_block(data, fmt)
            if len(self._decoded) >= 8:
                self._decoded.pop(next(iter(self._decoded)))
            self._decoded[block_id] = rows
        if rows and rows[-1][0] >= floor:
            rows = [r for r in rows if r[0] < floor]
        return rows

    def _scratch_run(self, rows: list[tuple], sql: str, params: Sequence) -> list:
        """Run ``sql`` (over a table named ``queries``) against ``rows`` only: archive blocks are
        filtered and aggregated by the very SQL that reads the hot tier."""
        scratch = self._scratch
        if scratch is None:
            scratch = self._scratch = sqlite3.connect(":memory:", isolation_level=None,
                                                      check_same_thread=False)
            scratch.execute(_QUERIES_TABLE)
        scratch.execute("BEGIN")
        scratch.execute("DELETE FROM queries")
        scratch.executemany(_INSERT, rows)
        scratch.execute("COMMIT")
        return scratch.execute(sql, params).fetchall()

    def _archive_results(self, sql: str, params: Sequence, since: float | None = None,
                         floor: int | None = None) -> Iterator[list]:
        """``sql`` run over each archive block since ``since``, newest first, within
        ``ARCHIVE_SCAN_MAX_ROWS`` (``last_scan_capped`` says whether the cap stopped it)."""
        floor = self._hot_floor() if floor is None else floor
        scanned = 0
        for block in self._blocks(floor, since):
            if scanned >= ARCHIVE_SCAN_MAX_ROWS:
                self.last_scan_capped = True
                return
            rows = self._block_rows(block[0], floor)
            scanned += len(rows)
            yield self._scratch_run(rows, sql, params)

    def count(self) -> int:
        """Number of rows in the log (both tiers; reads block metadata, decodes at most one)."""
        floor = self._hot_floor()
        n = self.conn.execute("SELECT COUNT(*) FROM queries").fetchone()[0]
        n += self.archive.execute("SELECT COALESCE(SUM(row_count), 0) FROM blocks WHERE max_id < ?",
                                  (floor,)).fetchone()[0]
        for (bid,) in self.archive.execute(
                "SELECT id FROM blocks WHERE min_id < ? AND max_id >= ?", (floor, floor)).fetchall():
            n += len(self._block_rows(bid, floor))
        return n

    def fetch(self, limit: int = 100, offset: int = 0, domain: str | None = None,
              client: str | None = None, since: float | None = None, until: float | None = None,
              stage: str | None = None, action: str | None = None, rule: str | None = None,
              source: str | None = None, blocked: bool | None = None,
              below_id: int | None = None) -> tuple[list[dict], int]:
        """One page of queries, newest first, and the total number matching the filters.

        The filters are those of ``QueryFilter`` (storage/queryfilter.py), which says what each
        one matches; ``below_id`` keeps the rows with smaller ids only. ``limit`` is clamped to
        1..``MAX_FETCH_LIMIT``.

        Both tiers are read as one log. With no filter but ``since``/``until`` the total comes
        from per-block counts and only the blocks that supply the page (and at most two blocks
        straddling the window's edges) are decompressed. Any other filter needs the matching
        rows counted, so the archive is scanned newest first, block by block, and the scan
        stops after ``ARCHIVE_SCAN_MAX_ROWS`` archived rows (about 8 days at 50k queries/day):
        past that, ``total`` (and a far page) only cover the rows scanned, and
        ``last_scan_capped`` is set. Archived timestamps are kept to the millisecond.
        """
        return self.fetch_matching(QueryFilter(domain, client, since, until, blocked, stage, action,
                                               rule, source, below_id), limit, offset)

    def fetch_matching(self, match: QueryFilter, limit: int = 100,
                       offset: int = 0) -> tuple[list[dict], int]:
        """``fetch`` with its filters as one QueryFilter."""
        limit = max(1, min(int(limit), MAX_FETCH_LIMIT))
        offset = max(0, int(offset))
        self.last_scan_capped = False
        where, params = match.sql()
        filtered = match.selective
        since, until = match.since, match.until
        conn = self.conn
        # Rows at or above the floor are read from the hot tier, the others from the archive;
        # ids from below_id on are not read at all.
        floor = self._hot_floor()
        if match.below_id is not None:
            floor = min(floor, int(match.below_id))
        total = conn.execute(f"SELECT COUNT(*) FROM queries {where}", params).fetchone()[0]
        items = [row_to_dict(row[1:], row[0]) for row in conn.execute(
            f"{_SELECT_ROWS} {where} ORDER BY id DESC LIMIT ? OFFSET ?", [*params, limit, offset])]
        skip = max(0, offset - total)
        need = limit - len(items)
        scanned = 0
        select = f"{_SELECT_ROWS} {where} ORDER BY id DESC"
        for bid, first_ts, last_ts, count, _min_id, max_id in self._blocks(floor, since, until):
            whole = (max_id < floor and (since is None or first_ts >= since)
                     and (until is None or last_ts < until))
            if not filtered and whole and (need == 0 or skip >= count):
                total += count  # every row matches: no need to look inside
                skip -= min(skip, count)
                continue
            if filtered and scanned >= ARCHIVE_SCAN_MAX_ROWS:
                self.last_scan_capped = True
                break
            rows = self._block_rows(bid, floor)
            scanned += len(rows)
            matches = self._scratch_run(rows, select, params) if where else rows[::-1]
            total += len(matches)
            if need and skip < len(matches):
                page = matches[skip:skip + need]
                items += [row_to_dict(row[1:], row[0]) for row in page]
                need -= len(page)
            skip -= min(skip, len(matches))
        return items, total

    def top_domains(self, limit: int = 10, blocked: bool | None = False,
                    since: float | None = None) -> list[dict]:
        """Most queried domains: ``[{"domain", "queries", "blocked"}]``, most first.

        ``blocked`` False counts only allowed queries, True only blocked ones, None all (then
        ``"blocked"`` says whether any of that domain's queries were blocked). Archived rows are
        counted block by block, within ``ARCHIVE_SCAN_MAX_ROWS`` (see ``fetch``).
        """
        limit = max(1, min(int(limit), MAX_FETCH_LIMIT))
        self.last_scan_capped = False
        clauses: list[str] = []
        params: list[float] = []
        if blocked is not None:
            clauses.append("blocked = ?")
            params.append(int(bool(blocked)))
        if since is not None:
            clauses.append("ts >= ?")
            params.append(float(since))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = f"SELECT domain, COUNT(*), MAX(blocked) FROM queries {where} GROUP BY domain"
        totals: dict[str, list[int]] = {}
        for result in self._union(sql, params, since):
            for d, n, b in result:
                t = totals.get(d)
                if t is None:
                    totals[d] = [n, b]
                else:
                    t[0] += n
                    t[1] = max(t[1], b)
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
        return [{"domain": d, "queries": n, "blocked": bool(b)} for d, (n, b) in ranked]

    def top_clients(self, limit: int = 10, since: float | None = None) -> list[dict]:
        """Busiest clients: ``[{"client_ip", "queries", "blocked"}]`` (blocked is a count).
        Archived rows within ``ARCHIVE_SCAN_MAX_ROWS`` (see ``fetch``)."""
        limit = max(1, min(int(limit), MAX_FETCH_LIMIT))
        self.last_scan_capped = False
        where, params = ("WHERE ts >= ?", [float(since)]) if since is not None else ("", [])
        sql = f"SELECT client_ip, COUNT(*), SUM(blocked) FROM queries {where} GROUP BY client_ip"
        totals: dict[str, list[int]] = {}
        for result in self._union(sql, params, since):
            for c, n, b in result:
                t = totals.setdefault(c, [0, 0])
                t[0] += n
                t[1] += b or 0
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
        return [{"client_ip": c, "queries": n, "blocked": b} for c, (n, b) in ranked]

    def query_types(self, since: float | None = None) -> list[dict]:
        """Queries by record type: ``[{"type": "A", "queries": 120}]``, most first (a type
        without a name is ``TYPEn``). Archived rows within ``ARCHIVE_SCAN_MAX_ROWS``."""
        self.last_scan_capped = False
        where, params = ("WHERE ts >= ?", [float(since)]) if since is not None else ("", [])
        sql = f"SELECT qtype, COUNT(*) FROM queries {where} GROUP BY qtype"
        totals: dict[int, int] = {}
        for result in self._union(sql, params, since):
            for qtype, n in result:
                totals[int(qtype)] = totals.get(int(qtype), 0) + n
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1], qtype_name(kv[0])))
        return [{"type": qtype_name(t), "queries": n} for t, n in ranked]

    def distinct_counts(self, since: float | None = None) -> dict[str, int]:
        """``{"domains", "clients"}``: how many different names were asked and by how many
        different clients since ``since`` (the whole log when None; archived rows within
        ``ARCHIVE_SCAN_MAX_ROWS``). For the Pi-hole face's summary."""
        self.last_scan_capped = False
        where, params = ("WHERE ts >= ?", [float(since)]) if since is not None else ("", [])
        domains: set[str] = set()
        clients: set[str] = set()
        for result in self._union(f"SELECT DISTINCT domain, client_ip FROM queries {where}", params, since):
            for domain, client in result:
                domains.add(domain)
                clients.add(client)
        return {"domains": len(domains), "clients": len(clients)}

    def upstream_counts(self, since: float | None = None) -> dict[str, int]:
        """Queries answered by each upstream ("ip:port") since ``since``, as logged."""
        self.last_scan_capped = False
        clauses = ["upstream != ''"] + (["ts >= ?"] if since is not None else [])
        params = [float(since)] if since is not None else []
        totals: dict[str, int] = {}
        sql = f"SELECT upstream, COUNT(*) FROM queries WHERE {' AND '.join(clauses)} GROUP BY upstream"
        for result in self._union(sql, params, since):
            for upstream, n in result:
                totals[upstream] = totals.get(upstream, 0) + n
        return totals

    def minute_counts(self, since: float) -> list[tuple[int, int, int, int, int, float]]:
        """Per-minute, per-decision aggregates since ``since`` (unix seconds), for seeding
        StatsBuckets: ``[(minute, decision, count, blocked, cached, sum_response_ms)]`` where
        ``minute`` is ``int(ts // 60)``, ordered by minute then decision. Reads the hot tier's
        ts index range and decodes the archive blocks since ``since`` (start-up only), within
        ``ARCHIVE_SCAN_MAX_ROWS``.
        """
        self.last_scan_capped = False
        sql = ("SELECT CAST(ts / 60 AS INTEGER) AS minute, decision, COUNT(*), SUM(blocked), "
               "SUM(cached), SUM(response_ms) FROM queries WHERE ts >= ? "
               "GROUP BY minute, decision")
        totals: dict[tuple[int, int], list] = {}
        for result in self._union(sql, (float(since),), since):
            for minute, decision, n, b, c, ms in result:
                t = totals.get((minute, decision))
                if t is None:
                    totals[(minute, decision)] = [n, b, c, ms]
                else:
                    t[0] += n
                    t[1] += b
                    t[2] += c
                    t[3] += ms
        return [(m, d, *t) for (m, d), t in sorted(totals.items())]

    def _union(self, sql: str, params: Sequence, since: float | None) -> Iterator[list]:
        floor = self._hot_floor()
        yield self.conn.execute(sql, params).fetchall()
        yield from self._archive_results(sql, params, since, floor)

    def integrity_check(self) -> str:
        """``"ok"`` or SQLite's description of the damage (naming the file) for both tiers."""
        problems = []
        for conn, path in ((self.conn, self.hot_path), (self.archive, self.archive_path)):
            result = integrity_check(conn)
            if result != "ok":
                problems.append(f"{path}: {result}")
        return "\n".join(problems) if problems else "ok"

    def close(self) -> None:
        """Close the connections (on the worker thread). Safe to call twice. Does not persist:
        the Recorder persists before closing at shutdown."""
        # (archive is absent when opening it failed)
        for conn in (self._scratch, getattr(self, "archive", None), self.conn):
            if conn is not None:
                conn.close()
