"""The audit and system event log: who did what, when and from where, kept in the settings DB.

Components never call this module: they publish on the event bus (topic ``"events"``, or
``"security"`` for threat hits) and ``EventLog`` subscribes, so nothing on a request or DNS
path waits for a disk write. A payload is a dict; the fields the log knows are

    {"type": "auth.login_failed", "ts": 1700000000.0, "severity": "warning",
     "actor": "bob", "client_ip": "192.168.1.5", "summary": "bad password",
     "data": {...}}

and anything else (``username``, ``reason``, ...) is folded into ``data``. ``actor`` falls back
to ``username``/``user``. Keys that look like secrets (password, secret, token, totp, code,
...) are removed at every depth before an event is stored or shown: events are read by viewers.

Writes are batched: at most one transaction per ``flush_interval`` (1 s), because the settings
DB is on flash with ``synchronous=FULL``. The table keeps at most ``max_rows`` rows; the oldest
are deleted in the same transaction.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import json
import logging
import re
import time
from typing import Any

from .sqlwhere import add_time_window
from .sqlwhere import where as sql_where

log = logging.getLogger(__name__)

# The lead appends this to storage.settings.MIGRATIONS as the next version.
EVENTS_MIGRATION_SQL = """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,              -- unix seconds
        type TEXT NOT NULL,            -- dotted: auth.login, config.changed, backup.restored
        severity TEXT NOT NULL,        -- debug, info, warning, error, critical
        actor TEXT,                    -- username, "system", or NULL
        client_ip TEXT,
        summary TEXT,
        data TEXT                      -- JSON object, secrets removed
    );
    CREATE INDEX events_ts ON events (ts);
"""

EVENT_TOPICS = ("events", "security")
DEFAULT_MAX_ROWS = 20_000  # ~300 bytes a row → ~6 MB of settings DB at most
FLUSH_INTERVAL = 1.0  # seconds: at most one settings-DB transaction per interval
QUEUE_SIZE = 1024  # bus messages buffered before the oldest are dropped (counted, logged)
MAX_PENDING = 5000  # normalised events waiting for a flush (a failing disk); oldest dropped
MAX_FETCH_LIMIT = 1000
MAX_TYPE_LEN = 64
MAX_FIELD_LEN = 256  # actor, client_ip
MAX_SUMMARY_LEN = 500
MAX_DATA_BYTES = 8192  # JSON of ``data``; larger data is replaced by a note
MAX_DEPTH = 6  # nesting kept in ``data``

SEVERITIES = ("debug", "info", "warning", "error", "critical")
# A key is dropped if any of these appear in it (case-insensitive): an event must never carry a
# credential, even one a component put there by mistake. Broad on purpose ("code" also drops
# "status_code"; a lost harmless field is cheaper than a leaked TOTP code).
SECRET_KEY_RE = re.compile(
    r"pass(word|wd|phrase)?|secret|token|totp|otp|code|credential|authorization|cookie|"
    r"hash|private[_-]?key|api[_-]?key|jwt|session[_-]?id", re.IGNORECASE)
_WARNING_WORDS = ("fail", "locked", "refused", "reuse", "denied", "invalid", "lost")


def is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and SECRET_KEY_RE.search(key) is not None


def scrub(value: Any, depth: int = 0) -> Any:
    """A JSON-able copy of ``value`` without secret-looking keys (at any depth)."""
    if depth > MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {str(k): scrub(v, depth + 1) for k, v in value.items() if not is_secret_key(k)}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub(v, depth + 1) for v in list(value)[:100]]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    return str(value)


def _text(value: Any, cap: int) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= cap else text[:cap - 1] + "…"


def default_severity(type_: str, topic: str = "events") -> str:
    if topic == "security":
        return "warning"
    low = type_.lower()
    return "warning" if any(w in low for w in _WARNING_WORDS) else "info"


def normalize(payload: Any, topic: str = "events", now: float | None = None) -> dict:
    """The stored shape of one bus payload: ``{ts, type, severity, actor, client_ip, summary,
    data}`` with secrets removed. Never raises for odd payloads (they become ``type`` unknown)."""
    if not isinstance(payload, dict):
        payload = {"type": f"{topic}.message", "summary": str(payload)}
    known = {"type", "ts", "time", "timestamp", "severity", "actor", "username", "user",
             "client_ip", "summary", "message", "data"}
    kind = payload.get("event")  # the list manager's payloads name their kind "event"
    type_ = _text(payload.get("type") or (f"{topic}.{kind}" if isinstance(kind, str) and kind
                                          else f"{topic}.unknown"), MAX_TYPE_LEN) or f"{topic}.unknown"
    ts = payload.get("ts", payload.get("time"))
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or ts != ts:
        ts = time.time() if now is None else now
    severity = payload.get("severity")
    if severity not in SEVERITIES:
        severity = default_severity(type_, topic)
    actor = payload.get("actor") or payload.get("username") or payload.get("user")
    if isinstance(actor, dict):  # {"username": ...}
        actor = actor.get("username")
    data: dict = {}
    if isinstance(payload.get("data"), dict):
        data.update(payload["data"])
    elif payload.get("data") is not None:
        data["value"] = payload["data"]
    for key, value in payload.items():
        if key not in known:
            data[key] = value
    if topic != "events":
        data.setdefault("topic", topic)
    data = scrub(data)
    summary = payload.get("summary") or payload.get("message")
    if not summary:
        summary = type_ + (f" by {actor}" if actor else "")
    return {"ts": float(ts), "type": type_, "severity": severity,
            "actor": _text(actor, MAX_FIELD_LEN), "client_ip": _text(payload.get("client_ip"), MAX_FIELD_LEN),
            "summary": _text(summary, MAX_SUMMARY_LEN), "data": data}


def _encode_data(data: dict) -> str | None:
    if not data:
        return None
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(text.encode()) > MAX_DATA_BYTES:
        return json.dumps({"truncated": True, "bytes": len(text.encode())})
    return text


def iso_utc(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and a Z (as the query log writes it). Local copy: this
    module imports nothing of ours at module level, so settings.py may import the SQL from it."""
    moment = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def row_to_event(row) -> dict:
    """The API shape of one stored row."""
    id_, ts, type_, severity, actor, client_ip, summary, data = row
    return {"id": id_, "timestamp": iso_utc(ts), "ts": ts, "type": type_, "severity": severity,
            "actor": actor, "client_ip": client_ip, "summary": summary,
            "data": json.loads(data) if data else {}}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def publish_event(bus, type_: str, *, actor: str | None = None, client_ip: str | None = None,
                  summary: str | None = None, severity: str | None = None, **data: Any) -> None:
    """Publish an audit event on ``bus`` (topic ``"events"``); the EventLog stores it.

    Never raises: auditing must not break the action it records."""
    if bus is None:
        return
    payload = {"type": type_, "ts": time.time(), "actor": actor, "client_ip": client_ip,
               "summary": summary, "data": data}
    if severity:
        payload["severity"] = severity
    try:
        bus.publish("events", payload)
    except Exception:
        log.warning("publishing event %s failed", type_, exc_info=True)


class EventLog:
    """Stores bus events in the settings DB's ``events`` table and answers queries on it.

    ``EventLog(settings_db, max_rows=20000)``; ``subscribe(bus)`` listens to ``EVENT_TOPICS``
    (the composition root does it before anything publishes); ``await start()`` starts the
    writer (``start(bus)`` subscribes first); ``await stop()`` writes what is pending and
    unsubscribes. ``record(payload)``
    queues an event directly (no bus); ``flush()`` writes pending events now. Use from the loop
    thread only (the settings connection is not thread-safe).
    """

    def __init__(self, settings_db, max_rows: int = DEFAULT_MAX_ROWS, *,
                 flush_interval: float = FLUSH_INTERVAL, max_pending: int = MAX_PENDING,
                 on_write=None):
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.db = settings_db
        self.max_rows = int(max_rows)
        self.flush_interval = float(flush_interval)
        self._pending: collections.deque = collections.deque(maxlen=max_pending)
        # The bus subscription (telemetry's; storage imports nothing from telemetry).
        self._sub: Any = None
        self._task: asyncio.Task | None = None
        self._last_flush = float("-inf")  # the first batch waits for nothing (monotonic time may be
        # smaller than the interval just after boot)
        self._rows: int | None = None  # row count, read lazily then tracked
        self.written = 0
        self.flushes = 0
        self.lost = 0  # bus messages dropped before we read them, plus pending overflow
        self.flush_errors = 0
        self.last_flush_error: str | None = None
        self.on_write = on_write  # (what, error or None) after each write (storage/health.py)

    # ---- lifecycle -----------------------------------------------------------------------------

    name = "eventlog"

    def subscribe(self, bus) -> None:
        """Listen to the bus from now on (events wait in the subscription until start())."""
        if self._sub is None:
            self._sub = bus.subscribe(EVENT_TOPICS, maxsize=QUEUE_SIZE)

    async def start(self, bus=None) -> None:
        """Start the writer task (subscribing to ``bus`` first, if given)."""
        if bus is not None:
            self.subscribe(bus)
        self._task = asyncio.create_task(self._run(), name="eventlog-writer")

    def background_tasks(self) -> list[asyncio.Task]:
        """The writer task (for the supervisor)."""
        return [self._task] if self._task is not None else []

    async def stop(self) -> None:
        """Write pending events and unsubscribe. Safe to call twice."""
        if self._sub is not None:
            await self._take_available()
            self._sub.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        self._sub = None
        self.flush()

    async def _run(self) -> None:
        # The subscription is iterated, which ends when it is closed: storage stays below
        # telemetry (no import of the bus's exception).
        async for event in self._sub:
            self._accept(event)
            # Batch: whatever else arrives before the interval since the last write is over.
            wait = self._last_flush + self.flush_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._take_available()
            try:
                self.flush()
            except Exception:  # flush() already logs; the task must survive
                pass

    def _accept(self, event) -> None:
        if event.lost:
            self.lost += event.lost
            log.warning("event log fell behind: %d events lost", event.lost)
        self.record(event.payload, event.topic)

    async def _take_available(self) -> None:
        """Move messages already queued on the subscription into pending. ``get`` returns at
        once while messages are queued, so this never waits."""
        sub = self._sub
        while sub is not None and sub.pending():
            try:
                event = await anext(sub)
            except StopAsyncIteration:  # closed
                return
            self._accept(event)

    # ---- writing -------------------------------------------------------------------------------

    def record(self, payload: Any, topic: str = "events") -> dict:
        """Queue one event (normalised, secrets removed) for the next flush; return it."""
        event = normalize(payload, topic)
        if len(self._pending) == self._pending.maxlen:
            self.lost += 1
        self._pending.append(event)
        return event

    def flush(self) -> int:
        """Write every pending event in ONE transaction, trimming to ``max_rows``; return how many.

        On a database error the events stay pending (within MAX_PENDING) and the error is logged.
        """
        self._last_flush = time.monotonic()
        if not self._pending:
            return 0
        batch = list(self._pending)
        rows = [(e["ts"], e["type"], e["severity"], e["actor"], e["client_ip"], e["summary"],
                 _encode_data(e["data"])) for e in batch]
        try:
            with self.db.transaction() as conn:
                if self._rows is None:
                    self._rows = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                conn.executemany(
                    "INSERT INTO events (ts, type, severity, actor, client_ip, summary, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                count = self._rows + len(rows)
                if count > self.max_rows:
                    conn.execute(
                        "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC "
                        "LIMIT 1 OFFSET ?)", (self.max_rows,))
                    count = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        except Exception as exc:
            self.flush_errors += 1
            self.last_flush_error = f"{type(exc).__name__}: {exc}"
            self._rows = None
            log.warning("event log write of %d events failed (kept): %s", len(rows),
                        self.last_flush_error)
            self._written(self.last_flush_error)
            raise
        for _ in range(len(batch)):
            self._pending.popleft()
        self._rows = count
        self.written += len(rows)
        self.flushes += 1
        self._written(None)
        return len(rows)

    def _written(self, error: str | None) -> None:
        if self.on_write is not None:
            try:
                self.on_write("the event log", error)
            except Exception:
                log.exception("write listener failed")

    async def sync(self) -> None:
        """Write what is queued right now (on the bus or pending), so a read sees it."""
        await self._take_available()
        if self._pending:
            try:
                self.flush()
            except Exception:
                pass

    # ---- reading -------------------------------------------------------------------------------

    def query(self, limit: int = 100, offset: int = 0, type: str | None = None,
              actor: str | None = None, since: float | None = None, until: float | None = None,
              severity: str | None = None) -> tuple[list[dict], int]:
        """One page of events, newest first, and how many match.

        ``type`` matches the exact type or a dotted prefix: ``"auth"`` and ``"auth."`` both match
        ``"auth.login"``. ``actor`` and ``severity`` match exactly; ``since`` (inclusive) and
        ``until`` (exclusive) are unix seconds. ``limit`` is clamped to 1..1000.
        """
        limit = max(1, min(int(limit), MAX_FETCH_LIMIT))
        offset = max(0, int(offset))
        clauses, params = [], []
        if type:
            base = type.rstrip(".*")
            if type.endswith((".", "*")) or base != type:
                clauses.append("type LIKE ? ESCAPE '\\'")
                params.append(_like_escape(base) + ".%")
            else:
                clauses.append("(type = ? OR type LIKE ? ESCAPE '\\')")
                params += [type, _like_escape(type) + ".%"]
        if actor:
            clauses.append("actor = ?")
            params.append(actor)
        if severity:
            clauses.append("severity = ?")
            params.append(severity)
        add_time_window(clauses, params, since, until)
        where = sql_where(clauses)
        conn = self.db.conn
        total = conn.execute(f"SELECT COUNT(*) FROM events {where}", params).fetchone()[0]
        rows = conn.execute(
            f"SELECT id, ts, type, severity, actor, client_ip, summary, data FROM events {where} "
            f"ORDER BY id DESC LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
        return [row_to_event(r) for r in rows], total

    def snapshot(self) -> dict:
        return {"written": self.written, "flushes": self.flushes, "pending": len(self._pending),
                "lost": self.lost, "flush_errors": self.flush_errors,
                "last_flush_error": self.last_flush_error}
