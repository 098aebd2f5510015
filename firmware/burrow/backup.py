"""Settings backup and restore: one .tar.gz with a manifest and one JSON file per table; and the
factory reset that wipes them (:class:`FactoryReset`).

    archive = create_backup(settings_db, version="0.1.0", include_users=False)
    plan = validate_backup(archive, settings_db, include_users=False)   # raises BackupError
    verify(plan, settings_db.path, ctx)        # every row's content, on a scratch copy (BackupError)
    changes = diff(plan, settings_db)          # what a restore would change, per table
    apply(plan, settings_db)                   # one transaction: all tables or none

Layout of an archive::

    manifest.json        {"format": "burrow-backup", "format_version": 1, "burrow_version",
                          "schema_version" (PRAGMA user_version), "created_at", "include_users",
                          "tables": [{"name", "file", "rows", "sha256"}]}
    tables/<name>.json   {"table": name, "columns": [...], "rows": [[...], ...]}

Every settings-DB table is included except SQLite's own, the audit log (``events``: a restore
must not rewrite the record of what happened, including the restore itself) and — unless asked
— the user and authentication tables (users, sessions, refresh and API tokens, recovery codes).
The JWT signing key is a file, never a table, so it is never in a backup.

Restoring validates EVERYTHING before the database is touched: the archive type, every member
(regular files with expected names only — no absolute paths, no "..", no links or devices),
the total expanded size (a zip bomb is refused while decompressing, not after), the manifest,
each member's sha256, the schema version (must equal the running one) and every row against
the table's current columns and types. Then :func:`verify` applies the archive to a scratch
copy of the database, opens it as Burrow opens its settings and checks every row's content
with the validators the API uses (burrow.state_check: settings values, client addresses,
lists, rules, records, zones, accounts — and that an enabled admin remains). Only then one
transaction deletes and re-inserts each included table, so the restore lands completely or
not at all. A dry run runs the same checks and stops before that transaction.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import os
import re
import sqlite3
import tarfile
import tempfile
import time
import zlib
from base64 import b64decode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import errors as domain
from . import runtime_config
from .storage.settings import encode_value

log = logging.getLogger(__name__)

FORMAT = "burrow-backup"
FORMAT_VERSION = 1
MAX_ARCHIVE_BYTES = 8 * 1024 * 1024  # upload cap (compressed)
MAX_EXPANDED_BYTES = 64 * 1024 * 1024  # the tar stream after gunzip: bigger is a bomb
MAX_MEMBERS = 256
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_ROWS_PER_TABLE = 500_000
MANIFEST = "manifest.json"
_TABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MEMBER_RE = re.compile(r"^tables/([A-Za-z_][A-Za-z0-9_]{0,63})\.json$")
# Tables that hold accounts or credentials (hashes included): only with include_users.
_USER_TABLE_RE = re.compile(r"^auth_|user|session|token|recovery|totp|password|credential",
                            re.IGNORECASE)
NEVER_BACKED_UP = frozenset({"events", "quarantine"})  # the audit log and what a start moved
# aside (burrow/state_check.py): records of what happened, see the module docstring


class BackupError(domain.DomainError):
    """The archive cannot be restored; ``status`` is the HTTP status (400, 413, or 507 for settings
    too large to back up); ``details`` lists what is wrong where ([{"table", "row", "field",
    "message"}]) when the rows are at fault."""

    def __init__(self, message: str, status: int = 400, details: list | None = None):
        super().__init__(message)
        self.status = status
        self.error = "invalid_backup" if status == 400 else None
        self.details = details

    def problems(self) -> list | None:
        return self.details


def is_user_table(name: str) -> bool:
    return _USER_TABLE_RE.search(name) is not None


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def table_names(conn: sqlite3.Connection) -> list[str]:
    """Every user-visible table (SQLite's internal tables left out), sorted."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
    return [r[0] for r in rows]


def backed_up_tables(conn: sqlite3.Connection, include_users: bool) -> list[str]:
    return [t for t in table_names(conn)
            if t not in NEVER_BACKED_UP and (include_users or not is_user_table(t))]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # declared type, upper case
    notnull: bool
    has_default: bool
    pk: int


def columns(conn: sqlite3.Connection, table: str) -> list[Column]:
    if not _TABLE_NAME_RE.match(table):
        raise ValueError(f"bad table name {table!r}")
    return [Column(r[1], (r[2] or "").upper(), bool(r[3]), r[4] is not None, r[5])
            for r in conn.execute(f'PRAGMA table_info("{table}")')]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---- values -----------------------------------------------------------------------------------

def _decode_value(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$b64"} and isinstance(value["$b64"], str):
            try:
                return b64decode(value["$b64"], validate=True)
            except ValueError:
                raise BackupError(f"{where}: bad base64 value") from None
        raise BackupError(f"{where}: values must be scalars")
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise BackupError(f"{where}: not a finite number")
        return value
    raise BackupError(f"{where}: values must be scalars")


def _check_type(col: Column, value: Any, where: str) -> None:
    if value is None:
        if col.notnull:
            raise BackupError(f"{where}: column {col.name} must not be null")
        return
    t = col.type
    ok = True
    if "INT" in t:
        ok = isinstance(value, int)
    elif any(k in t for k in ("CHAR", "CLOB", "TEXT")):
        ok = isinstance(value, str)
    elif "BLOB" in t:
        ok = isinstance(value, bytes)
    elif any(k in t for k in ("REAL", "FLOA", "DOUB")):
        ok = isinstance(value, (int, float))
    if not ok:
        raise BackupError(f"{where}: column {col.name} ({t or 'any'}) got {type(value).__name__}")


# ---- creating ---------------------------------------------------------------------------------

def dump_tables(conn: sqlite3.Connection, include_users: bool) -> dict[str, dict]:
    """{table: {"table", "columns", "rows"}} read in one read transaction (a consistent copy)."""
    out = {}
    own_txn = not conn.in_transaction
    if own_txn:
        conn.execute("BEGIN")
    try:
        for table in backed_up_tables(conn, include_users):
            cols = [c.name for c in columns(conn, table)]
            order = " ORDER BY rowid" if _has_rowid(conn, table) else ""
            rows = conn.execute(f"SELECT {', '.join(map(_quote, cols))} FROM {_quote(table)}"
                                + order).fetchall()
            out[table] = {"table": table, "columns": cols,
                          "rows": [[encode_value(v) for v in row] for row in rows]}
            if table == "settings":
                _secrets_out(out[table])
    finally:
        if own_txn:
            conn.execute("COMMIT")
    return out


# Secret options stored by the API (the DNS provider's token, tls.acme.cloudflare.api_token) are
# never in a backup: the archive is an API answer and a file an owner passes around. A restore
# keeps the secrets in force on this box.
def _overrides_rows(content: dict) -> list[tuple[list, int]]:
    """(row, index of its value) of the ``config.overrides`` row(s) of a settings table."""
    cols = content["columns"]
    if "key" not in cols or "value" not in cols:
        return []
    k, v = cols.index("key"), cols.index("value")
    return [(row, v) for row in content["rows"] if row[k] == runtime_config.SETTINGS_KEY]


def _secrets_out(content: dict) -> None:
    for row, v in _overrides_rows(content):
        try:
            overrides = json.loads(row[v])
        except (TypeError, ValueError):
            continue
        if isinstance(overrides, dict) and any(runtime_config.is_secret(k) for k in overrides):
            row[v] = json.dumps({k: x for k, x in overrides.items() if not runtime_config.is_secret(k)})


def _secrets_kept(content: dict, conn) -> dict:
    """``content`` (a settings table about to be restored) with the secrets in force now."""
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (runtime_config.SETTINGS_KEY,)).fetchone()
    try:
        current = json.loads(row[0]) if row else {}
    except (TypeError, ValueError):
        current = {}
    secrets = {k: x for k, x in current.items() if runtime_config.is_secret(k)} if isinstance(current, dict) else {}
    if not secrets:
        return content
    rows = [list(r) for r in content["rows"]]
    out = {**content, "rows": rows}
    for row, v in _overrides_rows(out):
        try:
            restored = json.loads(row[v])
        except (TypeError, ValueError):
            continue
        if isinstance(restored, dict):
            row[v] = json.dumps({**{k: x for k, x in restored.items() if not runtime_config.is_secret(k)},
                                 **secrets})
    return out


def _has_rowid(conn, table: str) -> bool:
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
    return not (sql and sql[0] and "WITHOUT ROWID" in sql[0].upper())


def build_archive(tables: dict[str, dict], *, version: str, schema: int, include_users: bool,
                  now: float | None = None) -> bytes:
    """The .tar.gz bytes for ``tables`` (pure; safe to run on a worker thread)."""
    now = time.time() if now is None else now
    files: dict[str, bytes] = {}
    entries = []
    for name, content in sorted(tables.items()):
        data = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
        path = f"tables/{name}.json"
        files[path] = data
        entries.append({"name": name, "file": path, "rows": len(content["rows"]),
                        "sha256": hashlib.sha256(data).hexdigest()})
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "burrow_version": version,
        "schema_version": schema,
        "created_at": datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        .isoformat(timespec="seconds").replace("+00:00", "Z"),
        "include_users": include_users, "tables": entries,
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in [(MANIFEST, json.dumps(manifest, indent=1).encode()), *files.items()]:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = int(now)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    expanded = raw.getvalue()
    if len(expanded) > MAX_EXPANDED_BYTES:
        raise BackupError(f"the settings are larger than a backup may be ({MAX_EXPANDED_BYTES} bytes)", 507)
    import gzip
    return gzip.compress(expanded, compresslevel=6, mtime=int(now))


def create_backup(settings_db, *, version: str, include_users: bool = False) -> bytes:
    """Read and pack in one call (on the loop thread; the tables are small)."""
    conn = settings_db.conn
    return build_archive(dump_tables(conn, include_users), version=version,
                         schema=schema_version(conn), include_users=include_users)


# ---- reading and validating -------------------------------------------------------------------

@dataclass
class Plan:
    """A validated archive: what a restore would write."""

    manifest: dict
    tables: dict[str, dict] = field(default_factory=dict)  # name → {"columns", "rows"} (decoded)
    skipped: list[str] = field(default_factory=list)  # user tables left out (include_users off)


def gunzip_bounded(data: bytes, limit: int = MAX_EXPANDED_BYTES) -> bytes:
    """The decompressed bytes of a gzip file, refusing more than ``limit`` bytes of output as it
    goes (a bomb never expands in memory), a truncated stream and trailing garbage."""
    if data[:2] != b"\x1f\x8b":
        raise BackupError("not a Burrow backup: expected a .tar.gz archive")
    d = zlib.decompressobj(wbits=31)
    out = bytearray()
    chunk_in = 64 * 1024
    try:
        for start in range(0, len(data), chunk_in):
            piece = data[start:start + chunk_in]
            while piece:
                out += d.decompress(piece, limit + 1 - len(out))
                if len(out) > limit:
                    raise BackupError(f"the archive expands beyond {limit} bytes; refused")
                piece = d.unconsumed_tail
            if d.eof:
                break
    except zlib.error as exc:
        raise BackupError(f"the archive is damaged: {exc}") from None
    if not d.eof:
        raise BackupError("the archive is truncated (incomplete gzip stream)")
    if d.unused_data.strip(b"\0"):
        raise BackupError("unexpected data after the gzip stream")
    return bytes(out)


def read_members(data: bytes) -> dict[str, bytes]:
    """{name: bytes} of a backup archive, after checking every member's name and kind."""
    raw = gunzip_bounded(data)
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            count = 0
            while True:
                info = tar.next()
                if info is None:
                    break
                count += 1
                if count > MAX_MEMBERS:
                    raise BackupError(f"more than {MAX_MEMBERS} files in the archive")
                name = info.name
                if (name.startswith(("/", "\\")) or "\\" in name or "\0" in name
                        or ".." in name.split("/") or re.match(r"^[A-Za-z]:", name)):
                    raise BackupError(f"unsafe path in the archive: {name!r}")
                if not info.isreg():
                    raise BackupError(f"{name!r} is not a regular file (links and devices are refused)")
                if name != MANIFEST and not _MEMBER_RE.match(name):
                    raise BackupError(f"unexpected file in the archive: {name!r}")
                if name in members:
                    raise BackupError(f"{name!r} appears twice")
                f = tar.extractfile(info)
                content = f.read() if f is not None else b""
                if len(content) != info.size:
                    raise BackupError(f"the archive is truncated ({name!r} is incomplete)")
                members[name] = content
    except BackupError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeError) as exc:
        raise BackupError(f"the archive is damaged or truncated: {exc}") from None
    return members


def _json(content: bytes, what: str) -> Any:
    try:
        return json.loads(content.decode("utf-8"))
    except RecursionError:  # the parser's own guard against deep nesting: a bad archive, not a 500
        raise BackupError(f"{what} is nested too deeply to be a Burrow backup") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BackupError(f"{what} is not valid JSON: {exc}") from None


def validate_backup(data: bytes, settings_db, *, include_users: bool = False) -> Plan:
    """Check everything about ``data`` against the running database; return the Plan.

    Raises BackupError (status 400, or 413 over the size cap) naming the first problem.
    Reads the database schema only; writes nothing.
    """
    if len(data) > MAX_ARCHIVE_BYTES:
        raise BackupError(f"the archive is larger than {MAX_ARCHIVE_BYTES} bytes", 413)
    members = read_members(data)
    return check_members(members, settings_db.conn, include_users=include_users)


def check_members(members: dict[str, bytes], conn: sqlite3.Connection, *,
                  include_users: bool = False) -> Plan:
    if MANIFEST not in members:
        raise BackupError("manifest.json is missing: not a Burrow backup")
    if len(members[MANIFEST]) > MAX_MANIFEST_BYTES:
        raise BackupError("manifest.json is too large")
    manifest = _json(members[MANIFEST], "manifest.json")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("manifest.json does not describe a Burrow backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"backup format version {manifest.get('format_version')!r} is not "
                          f"supported (this Burrow reads version {FORMAT_VERSION})")
    running = schema_version(conn)
    theirs = manifest.get("schema_version")
    if not isinstance(theirs, int) or isinstance(theirs, bool):
        raise BackupError("manifest.json: schema_version must be an integer")
    if theirs != running:
        raise BackupError(
            f"the backup was made with settings schema version {theirs}, but this Burrow runs "
            f"schema version {running}; restore it with the Burrow release that made it, or make "
            "a new backup after upgrading")
    entries = manifest.get("tables")
    if not isinstance(entries, list) or len(entries) > MAX_MEMBERS:
        raise BackupError("manifest.json: tables must be a list")
    listed: dict[str, dict] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not isinstance(entry.get("sha256"), str):
            raise BackupError(f"manifest.json: tables[{i}] needs name and sha256")
        name = entry["name"]
        if not _TABLE_NAME_RE.match(name) or entry.get("file", f"tables/{name}.json") != f"tables/{name}.json":
            raise BackupError(f"manifest.json: tables[{i}] has a bad name or file")
        if name in listed:
            raise BackupError(f"manifest.json: table {name} listed twice")
        listed[name] = entry
    files = {n for n in members if n != MANIFEST}
    expected = {f"tables/{n}.json" for n in listed}
    if files - expected:
        raise BackupError(f"files not listed in the manifest: {sorted(files - expected)}")
    if expected - files:
        raise BackupError(f"files missing from the archive: {sorted(expected - files)}")

    existing = set(table_names(conn))
    plan = Plan(manifest=manifest)
    for name, entry in sorted(listed.items()):
        content = members[f"tables/{name}.json"]
        if hashlib.sha256(content).hexdigest() != entry["sha256"].lower():
            raise BackupError(f"checksum mismatch for tables/{name}.json: the archive was altered "
                              "or damaged")
        if name in NEVER_BACKED_UP or name not in existing:
            raise BackupError(f"table {name} does not exist in this Burrow's settings (or is "
                              "never restored)")
        if is_user_table(name) and not include_users:
            plan.skipped.append(name)
            continue
        plan.tables[name] = _check_table(name, _json(content, f"tables/{name}.json"), conn)
    return plan


def _check_table(name: str, doc: Any, conn: sqlite3.Connection) -> dict:
    where = f"tables/{name}.json"
    if not isinstance(doc, dict) or doc.get("table") != name:
        raise BackupError(f"{where}: must be an object for table {name}")
    cols = doc.get("columns")
    rows = doc.get("rows")
    if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols) \
            or len(set(cols)) != len(cols):
        raise BackupError(f"{where}: columns must be a list of distinct names")
    if not isinstance(rows, list):
        raise BackupError(f"{where}: rows must be a list")
    if len(rows) > MAX_ROWS_PER_TABLE:
        raise BackupError(f"{where}: more than {MAX_ROWS_PER_TABLE} rows")
    current = {c.name: c for c in columns(conn, name)}
    unknown = [c for c in cols if c not in current]
    if unknown:
        raise BackupError(f"{where}: unknown column(s) {unknown} for table {name}")
    missing = [c.name for c in current.values()
               if c.name not in cols and c.notnull and not c.has_default and not c.pk]
    if missing:
        raise BackupError(f"{where}: required column(s) {missing} missing")
    order = [current[c] for c in cols]
    decoded = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(cols):
            raise BackupError(f"{where}: rows[{i}] must have {len(cols)} values")
        values = []
        for col, value in zip(order, row):
            value = _decode_value(value, f"{where}: rows[{i}]")
            _check_type(col, value, f"{where}: rows[{i}]")
            values.append(value)
        decoded.append(tuple(values))
    return {"columns": cols, "rows": decoded}


# ---- the restored state, checked as Burrow would open it -----------------------------------------

def copy_settings(settings_path, scratch_path) -> None:
    """Copy the live settings database to ``scratch_path`` (SQLite's backup API: a consistent
    snapshot, even while the loop writes). The live file is opened read-only."""
    live = sqlite3.connect(f"file:{os.fspath(settings_path)}?mode=ro", uri=True)
    try:
        scratch = sqlite3.connect(scratch_path)
        try:
            live.backup(scratch)
        finally:
            scratch.close()
    finally:
        live.close()


def verify(plan: Plan, settings_path, ctx, *, include_users: bool = False) -> None:
    """Apply ``plan`` to a scratch copy of the settings DB (``settings_path``), open that copy as
    Burrow opens its settings and check every row with the API's validators
    (burrow.state_check); raise BackupError (400) naming the table, row and field of each
    problem. The live database is only read. Blocking: run it on a worker thread (it opens its
    own connections there). A dry run calls exactly this too.
    """
    from . import state_check
    from .storage.settings import SettingsDB
    with tempfile.TemporaryDirectory(prefix="burrow-restore-") as tmp:
        scratch_path = os.path.join(tmp, "settings.db")
        copy_settings(settings_path, scratch_path)
        db = SettingsDB(scratch_path)  # pragmas and migrations as at start
        try:
            apply(plan, db)
            # Rows of tables the archive does not hold are the running ones: not its fault.
            problems = [p for p in state_check.check(db, ctx, users=include_users)
                        if p.table in plan.tables]
            if not problems:
                problems = state_check.load(db, ctx)
        finally:
            db.close()
    if problems:
        shown = problems[:state_check.MAX_REPORTED]
        more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
        raise BackupError(f"the backup holds {len(problems)} invalid row(s) or entries; nothing was "
                          f"restored. First: {problems[0]}{more}", 400, [p.as_dict() for p in shown])


# ---- diff and apply ---------------------------------------------------------------------------

def _key_columns(conn, table: str, cols: list[str]) -> list[str]:
    pk = sorted((c for c in columns(conn, table) if c.pk), key=lambda c: c.pk)
    names = [c.name for c in pk]
    return names if names and all(n in cols for n in names) else list(cols)


MAX_DIFF_ITEMS = 20  # row labels listed per table and kind of change (the counts are complete)
_LABEL_COLUMNS = ("name", "username", "domain", "pattern")  # a row's readable name besides its key


def _row_label(key: tuple, row, cols: list[str], keys: list[str]) -> str:
    """``config.overrides``, ``3 (kids)``: the row's key, and its name when the key is a number."""
    label = "/".join(str(k) for k in key)
    if keys == cols and len(label) > 80:  # no primary key: the whole row is the key
        label = label[:77] + "..."
    for name in _LABEL_COLUMNS:
        if name in cols and name not in keys:
            value = row[cols.index(name)]
            if isinstance(value, str) and value:
                return f"{label} ({value[:80]})"
    return label


def diff(plan: Plan, settings_db) -> dict:
    """Per table ``{"rows", "added", "removed", "changed", "unchanged"}`` (rows matched by
    primary key; by whole row when the table has none), plus ``skipped`` tables, and ``items``:
    per table with a change, the labels of the rows added, removed and changed (at most
    MAX_DIFF_ITEMS of each, in key order), so a dry run can say WHAT would change."""
    conn = settings_db.conn
    out: dict = {}
    items: dict = {}
    for name, content in plan.tables.items():
        cols = content["columns"]
        keys = _key_columns(conn, name, cols)
        kidx = [cols.index(k) for k in keys]
        current = {}
        for row in conn.execute(f"SELECT {', '.join(map(_quote, cols))} FROM {_quote(name)}"):
            current[tuple(row[i] for i in kidx)] = tuple(row)
        incoming = {tuple(row[i] for i in kidx): row for row in content["rows"]}
        added = [k for k in incoming if k not in current]
        removed = [k for k in current if k not in incoming]
        changed = [k for k, row in incoming.items() if k in current and current[k] != tuple(row)]
        out[name] = {"rows": len(content["rows"]), "added": len(added), "removed": len(removed),
                     "changed": len(changed), "unchanged": len(incoming) - len(added) - len(changed)}
        if added or removed or changed:
            items[name] = {kind: [_row_label(k, source[k], cols, keys)
                                  for k in sorted(which, key=repr)[:MAX_DIFF_ITEMS]]
                           for kind, which, source in (("added", added, incoming), ("removed", removed, current),
                                                       ("changed", changed, incoming))}
    return {"tables": out, "skipped": list(plan.skipped), "items": items}


class _DryRunRollback(Exception):
    pass


def apply(plan: Plan, settings_db, *, dry_run: bool = False) -> None:
    """Replace every planned table in ONE transaction: all deletes, then all inserts, foreign
    keys checked before commit. On any error nothing changes (BackupError 400 for rows the
    database's constraints refuse). ``dry_run`` does the same and rolls back, which proves the
    rows fit every UNIQUE/CHECK/foreign-key constraint without keeping anything."""
    try:
        with settings_db.transaction() as conn:
            # Checked once everything is in place (a child row may come before its parent).
            conn.execute("PRAGMA defer_foreign_keys = ON")
            tables = dict(plan.tables)
            if "settings" in tables:
                tables["settings"] = _secrets_kept(tables["settings"], conn)
            for name in tables:
                conn.execute(f"DELETE FROM {_quote(name)}")
            for name, content in tables.items():
                cols = content["columns"]
                conn.executemany(
                    f"INSERT INTO {_quote(name)} ({', '.join(map(_quote, cols))}) "
                    f"VALUES ({', '.join('?' * len(cols))})", content["rows"])
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise BackupError(f"the backup's rows break {len(problems)} reference(s), e.g. "
                                  f"table {problems[0][0]} → {problems[0][2]}; nothing was restored")
            if dry_run:
                raise _DryRunRollback
    except _DryRunRollback:
        return
    except sqlite3.IntegrityError as exc:
        raise BackupError(f"the backup's rows break a constraint ({exc}); nothing was restored") from None


# ---- factory reset -------------------------------------------------------------------------------

# Files a factory reset removes: everything Burrow writes, nothing else in the folder.
WIPE_PATTERNS = ("settings.db", "settings.db-wal", "settings.db-shm", "settings.db-journal",
                 "querylog*.db", "querylog*.db-*", "jwt.key", "lists/rpz-*.zone", ".write-check")


class FactoryReset:
    """Wipe settings, users, keys and the query log, then restart (the first-run setup appears
    again). Called by the button's confirmed 15-second hold.

    ``reset()`` asks for a clean stop with exit code 75 (systemd starts Burrow again) and marks
    the wipe; the composition root calls :meth:`wipe_if_requested` once every service has
    stopped, so nothing writes the files while they are removed.

    :param folders: the data dir, and the query log's RAM dir when there is one.
    :param publish: publishes an event on the bus (``publish(topic, payload)``).
    :param request_stop: stops Burrow as on SIGTERM with the exit code it is given.
    """

    def __init__(self, folders, publish, request_stop):
        self.folders = list(dict.fromkeys(folders))
        self._publish = publish
        self._request_stop = request_stop
        self.requested = False

    def reset(self) -> None:
        from .systemd import RESTART_EXIT_CODE
        log.warning("factory reset: wiping %s and restarting", ", ".join(map(str, self.folders)))
        self._publish("events", {"type": "system.factory_reset", "severity": "warning",
                                 "summary": "factory reset requested"})
        self.requested = True
        self._request_stop(RESTART_EXIT_CODE)

    def wipe_if_requested(self) -> None:
        if not self.requested:
            return
        for folder in self.folders:
            for pattern in WIPE_PATTERNS:
                for path in Path(folder).glob(pattern):
                    try:
                        path.unlink()
                    except OSError as e:
                        log.error("factory reset: cannot remove %s: %s", path, e)
        log.warning("factory reset done")
