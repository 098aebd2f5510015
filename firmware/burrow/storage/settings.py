"""The settings database: everything a person changes at runtime, stored durably in SQLite.

One SQLite file in WAL mode with ``synchronous=FULL``: a ``set()`` that has returned survives a
power cut. Settings change rarely, so the connection is used directly from the asyncio loop
thread; each write is one short transaction.

The schema evolves through numbered migrations (``MIGRATIONS``), applied in order inside one
transaction and recorded in ``PRAGMA user_version``. Later features append entries; an entry is
never edited once released. A database written by a newer Burrow (a higher version than this code
knows) is refused with ``SchemaTooNewError`` instead of being silently misread.

``apply_migrations`` is shared with the query-log database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from base64 import b64encode
from collections.abc import Iterator, Sequence
from typing import Any

from .events import EVENTS_MIGRATION_SQL

log = logging.getLogger(__name__)

# How long a statement waits for another connection's lock before failing. Backups and the CLI
# may open the same file; five seconds covers their short transactions without hanging a request.
BUSY_TIMEOUT_MS = 5000

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,       -- JSON
            updated_at REAL NOT NULL   -- unix seconds
        );
    """),
    # 2: users, sessions, refresh tokens, 2FA recovery codes, API tokens (burrow/auth).
    # Secrets are stored only as hashes, except the TOTP secret, which the check needs.
    (2, """
        CREATE TABLE auth_users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            password_hash TEXT NOT NULL,          -- $scrypt$ln=..,r=..,p=..$salt$key
            role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
            disabled INTEGER NOT NULL DEFAULT 0,
            totp_secret TEXT,                     -- base32; pending until totp_enabled = 1
            totp_enabled INTEGER NOT NULL DEFAULT 0,
            totp_last_step INTEGER,               -- last accepted 30 s step (replay guard)
            created_at REAL NOT NULL,
            last_login_at REAL,
            password_changed_at REAL NOT NULL
        );
        CREATE TABLE auth_recovery_codes (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES auth_users(id) ON DELETE CASCADE,
            code_hash TEXT NOT NULL,              -- sha256 hex of the normalised code
            used_at REAL
        );
        CREATE INDEX auth_recovery_codes_user ON auth_recovery_codes(user_id);
        CREATE TABLE auth_sessions (
            id TEXT PRIMARY KEY,                  -- random; the JWT "sid" claim
            user_id INTEGER NOT NULL REFERENCES auth_users(id) ON DELETE CASCADE,
            family_id TEXT NOT NULL,              -- the refresh-token family of this session
            client_ip TEXT,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,             -- moves with each refresh
            revoked_at REAL
        );
        CREATE INDEX auth_sessions_user ON auth_sessions(user_id);
        CREATE TABLE auth_refresh_tokens (
            token_hash TEXT PRIMARY KEY,          -- sha256 hex of the opaque token
            family_id TEXT NOT NULL,
            session_id TEXT NOT NULL REFERENCES auth_sessions(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES auth_users(id) ON DELETE CASCADE,
            issued_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL                          -- set when rotated; reuse revokes the family
        );
        CREATE INDEX auth_refresh_tokens_family ON auth_refresh_tokens(family_id);
        CREATE INDEX auth_refresh_tokens_session ON auth_refresh_tokens(session_id);
        CREATE TABLE auth_api_tokens (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES auth_users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            scope TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
            token_hash TEXT NOT NULL UNIQUE,      -- sha256 hex of the plaintext
            prefix TEXT NOT NULL,                 -- first 8 characters, to recognise it
            created_at REAL NOT NULL,
            last_used_at REAL
        );
        CREATE INDEX auth_api_tokens_user ON auth_api_tokens(user_id);
    """),
    (3, EVENTS_MIGRATION_SQL),  # the audit/event log (storage/events.py)
    # 4: filter lists (burrow/filtering/sources.py). id 1..64; the list's bit in the index
    # masks is id - 1 (the index holds at most 64 lists).
    (4, """
        CREATE TABLE lists (
            id INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 64),
            name TEXT UNIQUE NOT NULL,
            source TEXT NOT NULL,                 -- http(s) URL or a path in a local list dir
            kind TEXT NOT NULL DEFAULT 'block' CHECK (kind IN ('block', 'allow', 'threat')),
            format TEXT,                          -- NULL = auto-detect
            groups TEXT NOT NULL DEFAULT '[]',    -- JSON list of group names; [] = every group
            enabled INTEGER NOT NULL DEFAULT 1,
            update_interval INTEGER NOT NULL DEFAULT 86400,  -- seconds (jittered +-10 %)
            mode TEXT,                            -- blocking-mode override, NULL = global
            last_success REAL,
            last_attempt REAL,
            last_error TEXT,
            entries INTEGER,
            errors INTEGER,
            skipped TEXT,                         -- JSON
            bytes INTEGER,
            etag TEXT,
            last_modified TEXT,
            created_at REAL
        );
    """),
    # 5: local DNS data (burrow/zones/store.py): authoritative zones (master, slave) and the one
    # implicit zone of local records (type 'local', name ''). Records keep zone-file text
    # (burrow/zones/records.py); a master zone's SOA row holds the live serial.
    (5, """
        CREATE TABLE zones (
            id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: an API id names one zone forever
            name TEXT NOT NULL UNIQUE,            -- origin without trailing dot; '' = local records
            type TEXT NOT NULL CHECK (type IN ('master', 'slave', 'local')),
            primaries TEXT NOT NULL DEFAULT '[]', -- JSON list of "ip[:port]" (slave only)
            serial INTEGER NOT NULL DEFAULT 0,    -- SOA serial (local: a change counter)
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            last_transfer REAL,                   -- slave: last successful AXFR or check
            last_error TEXT                       -- slave: why the last refresh failed
        );
        CREATE TABLE zone_records (
            id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused (a stale id must not hit another record)
            zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
            name TEXT NOT NULL,                   -- absolute owner, lower case, no trailing dot
            type TEXT NOT NULL,                   -- A, AAAA, CNAME, MX, ...
            ttl INTEGER NOT NULL,
            value TEXT NOT NULL,                  -- RDATA in canonical zone-file text
            UNIQUE (zone_id, name, type, value)
        );
        CREATE INDEX zone_records_owner ON zone_records(zone_id, name);
    """),
]


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer release than this code; opening it would risk data."""


def split_sql(script: str) -> list[str]:
    """Split a migration script into complete statements (semicolons inside strings or trigger
    bodies do not split, thanks to sqlite3.complete_statement)."""
    statements, current = [], ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \t\r\n;"):
                statements.append(current.strip())
            current = ""
    if current.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement in migration: {current.strip()[:80]!r}")
    return statements


def apply_migrations(conn: sqlite3.Connection, migrations: Sequence[tuple[int, str]],
                     name: str = "database") -> int:
    """Bring ``conn``'s schema up to the last entry of ``migrations``; return the final version.

    ``conn`` must be in autocommit mode (isolation_level=None). All pending migrations run in
    one ``BEGIN IMMEDIATE`` transaction, so a crash leaves the old version intact and a second
    process opening the file at the same time waits instead of migrating twice. Raises
    ``SchemaTooNewError`` if the file's version is higher than the last migration.
    """
    versions = [v for v, _ in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"{name}: migrations must be numbered 1..N in order, got {versions}")
    latest = len(versions)
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > latest:
            raise SchemaTooNewError(
                f"{name}: schema version {current} is newer than this Burrow knows ({latest}); "
                "it was written by a newer release. Upgrade Burrow or restore a backup.")
        for version, script in migrations[current:]:
            for statement in split_sql(script):
                conn.execute(statement)
            # PRAGMA does not take parameters; version is an int from our own list.
            conn.execute(f"PRAGMA user_version = {int(version)}")
            log.info("%s: applied migration %d", name, version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return latest


# ---- stored JSON values, read bounded (state_check, runtime_config) ----------------------------

MAX_DEPTH = 32  # nesting of a stored JSON value: the API never writes more than a few levels


def encode_value(value: Any) -> Any:
    """A column value as JSON can hold it: a blob as ``{"$b64": …}`` (a backup's rows, a
    quarantined row's content), anything else as it is."""
    if isinstance(value, bytes):
        return {"$b64": b64encode(value).decode()}
    return value


def decode(raw: Any) -> Any:
    """A stored JSON text decoded, or ValueError saying why not (not text, not JSON, nested
    deeper than MAX_DEPTH — deep nesting is refused, never a RecursionError)."""
    if not isinstance(raw, str):
        raise ValueError(f"must be JSON text, not {type(raw).__name__}")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise ValueError(f"not valid JSON ({e})") from None
    if depth(value) > MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            d += 1
            deepest = max(deepest, d)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((x, d) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


class SettingsDB:
    """Runtime settings, JSON values by key, durable on every write.

    ``SettingsDB(path)`` creates the file if needed and migrates it. Values are anything
    ``json.dumps`` accepts; ``get`` returns them decoded. Use ``transaction()`` to group several
    writes (also from later features' own tables) so they land together or not at all.
    Not thread-safe: use it from one thread (the asyncio loop thread).
    """

    def __init__(self, path: str | os.PathLike, migrations: Sequence[tuple[int, str]] = MIGRATIONS):
        self.path = os.fspath(path)
        self._savepoints = 0  # nesting depth of transaction(), names the SAVEPOINTs
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, the module never does implicitly.
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                log.warning("%s: journal_mode is %s, not WAL", self.path, mode)
            # FULL: in WAL mode this fsyncs the WAL on every commit, so a returned set() is durable.
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.version = apply_migrations(self.conn, migrations, name=self.path)
        except BaseException:
            self.conn.close()
            raise

    # ---- values --------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The decoded value stored under ``key``, or ``default`` if there is none."""
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-encodable) under ``key``; durable when this returns.

        Inside ``transaction()`` it joins that transaction instead of committing alone.
        Raises TypeError/ValueError for values JSON cannot encode, before touching the file.
        """
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        self.conn.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (key, encoded, time.time()))

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""
        return self.conn.execute("DELETE FROM settings WHERE key = ?", (key,)).rowcount > 0

    def all(self) -> dict[str, Any]:
        """Every setting, decoded, as a new dict."""
        return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM settings")}

    # ---- transactions and health ---------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``with db.transaction() as conn:`` — BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error.

        Yields the connection for statements on other tables. Nesting is allowed: an inner
        block becomes a SAVEPOINT, so its failure undoes only its own writes.
        """
        conn = self.conn
        if conn.in_transaction:
            self._savepoints += 1
            name = f"sp{self._savepoints}"
            try:
                conn.execute(f"SAVEPOINT {name}")
                try:
                    yield conn
                except BaseException:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                    raise
                conn.execute(f"RELEASE {name}")
            finally:
                self._savepoints -= 1
            return
        # IMMEDIATE takes the write lock up front, so a later write in the block cannot fail
        # with SQLITE_BUSY halfway through (a deferred transaction can't be retried safely).
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def integrity_check(self) -> str:
        """``"ok"``, or SQLite's description of what is damaged (lines joined by newlines)."""
        return integrity_check(self.conn)

    def close(self) -> None:
        """Close the connection. Safe to call twice."""
        self.conn.close()


def integrity_check(conn: sqlite3.Connection) -> str:
    """Run ``PRAGMA integrity_check`` and return ``"ok"`` or the problems found."""
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    return "ok" if rows == ["ok"] else "\n".join(rows)
