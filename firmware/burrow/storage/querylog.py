"""The query-log database: one row per answered query, written in batches, pruned by age and size.

Its own SQLite file, so the log's churn never touches the durable settings file. WAL with
``synchronous=NORMAL``: a power cut may lose the last committed batch, never corrupt the file,
and each batch costs one WAL append instead of an fsync per row (flash wear). ``auto_vacuum =
INCREMENTAL`` lets ``prune`` hand freed pages back to the filesystem.

Every method is meant to be called from ONE worker thread (the Recorder's single-thread
executor); the connection is opened with ``check_same_thread=False`` for that reason and must
never be used by two threads at once.

Rows handed to ``write`` are plain tuples in ``ROW_FIELDS`` order; ``row_from_record`` builds
one from a ``QueryRecord`` and ``row_to_dict`` turns one into the API shape.
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
from collections.abc import Iterable, Sequence
from typing import Any

import dnslib

from ..dns.decision import Decision, QueryRecord
from .settings import BUSY_TIMEOUT_MS, apply_migrations, integrity_check

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 7.0
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # a few hundred thousand rows; small next to any SD card
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

ROW_FIELDS = ("ts", "client_ip", "domain", "qtype", "rcode", "decision", "blocked", "cached",
              "response_ms", "upstream", "trace")

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
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
        );
        CREATE INDEX queries_ts ON queries (ts);
        CREATE INDEX queries_domain ON queries (domain);
    """),
]

_INSERT = (f"INSERT INTO queries ({', '.join(ROW_FIELDS)}) "
           f"VALUES ({', '.join('?' * len(ROW_FIELDS))})")
_TRACE_FIELDS = ("stage", "action", "rule", "source", "detail")


# ---- row helpers (shared with the Recorder) ---------------------------------------------------

def _trace_dict(entry: Any) -> dict:
    if hasattr(entry, "as_dict"):
        return entry.as_dict()
    if isinstance(entry, dict):
        return entry
    return {k: v for k, v in zip(_TRACE_FIELDS, entry) if v or k in ("stage", "action")}


@functools.lru_cache(maxsize=4096)  # bounded: most traces repeat (cache hits, the same list)
def _trace_json(trace: tuple) -> str:
    return json.dumps([_trace_dict(e) for e in trace], separators=(",", ":"))


def row_from_record(record: QueryRecord | tuple, wall_ts: float) -> tuple:
    """The ``write`` row for one QueryRecord (or an equal plain tuple) received at ``wall_ts``."""
    _mono, client_ip, domain, qtype, rcode, decision, elapsed, upstream, trace = record
    decision = Decision(decision)
    trace_json = None
    if trace:
        try:
            trace_json = _trace_json(trace)
        except TypeError:  # an unhashable trace (lists or dicts inside): encode it directly
            trace_json = json.dumps([_trace_dict(e) for e in trace], separators=(",", ":"))
    return (wall_ts, client_ip, domain, int(qtype), int(rcode), int(decision),
            int(decision.blocked), int(decision.cached), elapsed * 1000.0, upstream or "",
            trace_json)


@functools.lru_cache(maxsize=512)  # bounded: qtypes seen in practice are a few dozen
def qtype_name(qtype: int) -> str:
    """"A", "AAAA", … or the RFC 3597 form "TYPE65280" for types dnslib does not know."""
    name = dnslib.QTYPE.forward.get(qtype)  # .get() would invent a name like "65280"
    return name if name else f"TYPE{qtype}"


def iso_utc(ts: float) -> str:
    """ISO 8601 UTC with millisecond precision and a ``Z``: 2025-11-22T10:30:00.123Z."""
    moment = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def row_to_dict(row: Sequence, row_id: int | None = None) -> dict:
    """The API shape (seed ``/api/queries``) of a row in ``ROW_FIELDS`` order.

    ``block_trace`` is present only when the row has a trace; ``decision`` is the label
    ("blocked", "cached", …). ``id`` is None for rows not yet written.
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


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---- the database -----------------------------------------------------------------------------

class QueryLogDB:
    """The query log on disk. All methods run on the Recorder's single worker thread.

    ``QueryLogDB(path)`` creates and migrates the file. ``write`` appends a batch atomically,
    ``prune`` applies retention, ``fetch``/``top_*``/``minute_counts`` read for the API and for
    seeding live statistics.
    """

    def __init__(self, path: str | os.PathLike, migrations: Sequence[tuple[int, str]] = MIGRATIONS):
        self.path = os.fspath(path)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                    timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            conn = self.conn
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # auto_vacuum can only be chosen before the first table exists (or by a full VACUUM),
            # so it must come before the migrations create the schema.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                log.warning("%s: journal_mode is %s, not WAL", self.path, mode)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            conn.execute("PRAGMA foreign_keys = ON")
            self.version = apply_migrations(conn, migrations, name=self.path)
            if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                log.warning("%s: auto_vacuum is not INCREMENTAL (file predates it); size pruning "
                            "frees pages for reuse but cannot shrink the file", self.path)
        except BaseException:
            self.conn.close()
            raise

    # ---- writing -------------------------------------------------------------------------------

    def write(self, rows: Iterable[Sequence]) -> int:
        """Insert ``rows`` (tuples in ``ROW_FIELDS`` order) in one transaction; return the count.

        All or nothing: on error the batch is rolled back and the exception propagates.
        """
        rows = list(rows)
        if not rows:
            return 0
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return len(rows)

    def prune(self, now: float | None = None, retention_days: float = DEFAULT_RETENTION_DAYS,
              max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
        """Delete rows older than ``retention_days``, then the oldest rows until the data fits in
        ``max_bytes``; return ``{"deleted_age", "deleted_size", "bytes"}``.

        Size is estimated as in-use pages × page size (the WAL is not counted; it is truncated
        to ``WAL_SIZE_LIMIT`` after checkpoints). Freed pages are returned to the filesystem
        with ``incremental_vacuum`` and a checkpoint, so the file itself shrinks.
        """
        now = time.time() if now is None else now
        deleted_age = self._delete_chunked("ts < ?", (now - retention_days * 86400.0,))

        deleted_size = 0
        for _ in range(8):  # each pass re-measures; a few passes converge, the cap stops a spin
            used = self.used_bytes()
            if used <= max_bytes:
                break
            count = self.count()
            if count == 0:
                break
            excess_fraction = 1.0 - (max_bytes * SIZE_PRUNE_TARGET) / used
            to_delete = max(1, math.ceil(count * excess_fraction))
            deleted_size += self._delete_oldest(to_delete)

        if deleted_age or deleted_size:
            # executescript steps the pragma to completion; execute() would stop after the
            # first step (the pragma has no result columns) and free a single page.
            self.conn.executescript("PRAGMA incremental_vacuum;")
            self.checkpoint()
            log.info("query log pruned: %d rows by age, %d by size", deleted_age, deleted_size)
        return {"deleted_age": deleted_age, "deleted_size": deleted_size,
                "bytes": self.used_bytes()}

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
        """Copy the WAL into the main file and truncate it (best effort if readers are active)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    # ---- reading -------------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of the main file holding data (pages in use × page size)."""
        conn = self.conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * conn.execute("PRAGMA page_size").fetchone()[0]

    def file_bytes(self) -> int:
        """Bytes of the main file, including free pages not yet vacuumed."""
        conn = self.conn
        return (conn.execute("PRAGMA page_count").fetchone()[0]
                * conn.execute("PRAGMA page_size").fetchone()[0])

    def count(self) -> int:
        """Number of rows in the log."""
        return self.conn.execute("SELECT COUNT(*) FROM queries").fetchone()[0]

    def fetch(self, limit: int = 100, offset: int = 0, domain: str | None = None,
              client: str | None = None, since: float | None = None, until: float | None = None,
              stage: str | None = None, action: str | None = None, rule: str | None = None,
              source: str | None = None, blocked: bool | None = None) -> tuple[list[dict], int]:
        """One page of queries, newest first, and the total number matching the filters.

        ``domain`` matches the name and its subdomains; ``client`` the exact client IP;
        ``since``/``until`` are unix seconds (since inclusive, until exclusive); ``blocked``
        True/False filters on the outcome. ``stage``/``action``/``rule``/``source`` match fields
        of ONE trace entry (all given ones on the same entry). ``limit`` is clamped to
        1..``MAX_FETCH_LIMIT``.
        """
        limit = max(1, min(int(limit), MAX_FETCH_LIMIT))
        offset = max(0, int(offset))
        clauses, params = [], []
        if domain:
            domain = domain.lower().rstrip(".")
            clauses.append("(domain = ? OR domain LIKE ? ESCAPE '\\')")
            params += [domain, "%." + _like_escape(domain)]
        if client:
            clauses.append("client_ip = ?")
            params.append(client)
        if since is not None:
            clauses.append("ts >= ?")
            params.append(float(since))
        if until is not None:
            clauses.append("ts < ?")
            params.append(float(until))
        if blocked is not None:
            clauses.append("blocked = ?")
            params.append(int(bool(blocked)))
        trace_terms = [(k, v) for k, v in (("stage", stage), ("action", action), ("rule", rule),
                                           ("source", source)) if v]
        if trace_terms:
            inner = " AND ".join(f"json_extract(t.value, '$.{k}') = ?" for k, _ in trace_terms)
            clauses.append(f"(trace IS NOT NULL AND EXISTS "
                           f"(SELECT 1 FROM json_each(queries.trace) AS t WHERE {inner}))")
            params += [v for _, v in trace_terms]
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        conn = self.conn
        total = conn.execute(f"SELECT COUNT(*) FROM queries {where}", params).fetchone()[0]
        cursor = conn.execute(
            f"SELECT id, {', '.join(ROW_FIELDS)} FROM queries {where} "
            f"ORDER BY id DESC LIMIT ? OFFSET ?", [*params, limit, offset])
        return [row_to_dict(row[1:], row[0]) for row in cursor], total

    def top_domains(self, limit: int = 10, blocked: bool | None = False,
                    since: float | None = None) -> list[dict]:
        """Most queried domains: ``[{"domain", "queries", "blocked"}]``, most first.

        ``blocked`` False counts only allowed queries, True only blocked ones, None all (then
        ``"blocked"`` says whether any of that domain's queries were blocked).
        """
        limit = max(1, min(int(limit), MAX_FETCH_LIMIT))
        clauses, params = [], []
        if blocked is not None:
            clauses.append("blocked = ?")
            params.append(int(bool(blocked)))
        if since is not None:
            clauses.append("ts >= ?")
            params.append(float(since))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.conn.execute(
            f"SELECT domain, COUNT(*) AS n, MAX(blocked) FROM queries {where} "
            f"GROUP BY domain ORDER BY n DESC, domain LIMIT ?", [*params, limit])
        return [{"domain": d, "queries": n, "blocked": bool(b)} for d, n, b in rows]

    def top_clients(self, limit: int = 10, since: float | None = None) -> list[dict]:
        """Busiest clients: ``[{"client_ip", "queries", "blocked"}]`` (blocked is a count)."""
        limit = max(1, min(int(limit), MAX_FETCH_LIMIT))
        where, params = ("WHERE ts >= ?", [float(since)]) if since is not None else ("", [])
        rows = self.conn.execute(
            f"SELECT client_ip, COUNT(*) AS n, SUM(blocked) FROM queries {where} "
            f"GROUP BY client_ip ORDER BY n DESC, client_ip LIMIT ?", [*params, limit])
        return [{"client_ip": c, "queries": n, "blocked": b or 0} for c, n, b in rows]

    def minute_counts(self, since: float) -> list[tuple[int, int, int, int, int, float]]:
        """Per-minute, per-decision aggregates since ``since`` (unix seconds), for seeding
        StatsBuckets: ``[(minute, decision, count, blocked, cached, sum_response_ms)]`` where
        ``minute`` is ``int(ts // 60)``. Reads the ts index range once (start-up only).
        """
        return self.conn.execute(
            "SELECT CAST(ts / 60 AS INTEGER) AS minute, decision, COUNT(*), SUM(blocked), "
            "SUM(cached), SUM(response_ms) FROM queries WHERE ts >= ? "
            "GROUP BY minute, decision ORDER BY minute", (float(since),)).fetchall()

    def integrity_check(self) -> str:
        """``"ok"`` or SQLite's description of the damage."""
        return integrity_check(self.conn)

    def close(self) -> None:
        """Close the connection (on the worker thread). Safe to call twice."""
        self.conn.close()
