"""The filter lists a person configured: name, source, kind, format, groups, schedule, status.

Stored in the settings database, table ``lists`` (migration 4 in burrow.storage.settings).
``ListStore(settings_db, local_dirs)`` is the only code that reads or writes that table.

Sources
-------
A list's ``source`` is either an ``http://`` / ``https://`` URL (no user:password part, no
other scheme), or a path to a file inside one of the allowed local list directories
(``[filtering] local_list_dirs``, default the data dir's ``lists/``). A relative path is taken
relative to the first allowed directory. The path is resolved with ``os.path.realpath`` — so
``..`` and symlinks are followed — and the result must lie inside one of the (equally
resolved) allowed directories: a symlink in ``lists/`` pointing at ``/etc/shadow`` is refused.
The manager checks again each time it reads the file (the link could change after saving),
so a stolen admin token cannot read arbitrary files through a list. The stored source is the
path as given (shown back to the user), never a path of the download cache.

Ids
---
``id`` is 1..64 and never changes; ``list_id = id - 1`` is the list's bit in the compiled
index's masks (``burrow.filtering.index``: at most 64 lists). ``create`` takes the smallest
free id, so a deleted list's id is reused by the next list created — after the next compile
the bit belongs to the new list. Creating a 65th list raises ``ListLimitError``.

Errors
------
Invalid input raises ``ListValidationError`` (a ``ValueError``) whose ``field`` names the
offending field and whose message starts with it (``"source: ..."``); a duplicate name raises
``ListConflictError`` (field ``"name"``); the cap raises ``ListLimitError`` (field ``None``).

Groups: a JSON list of group names; ``[]`` (the default) means the list applies to every group.
"""

from __future__ import annotations

import builtins
import json
import math
import os
import sqlite3
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import urlsplit

from burrow import errors as domain
from burrow.changes import Announce, Change, ignore
from burrow.filtering.index import MAX_LISTS

if TYPE_CHECKING:
    from burrow.storage.settings import SettingsDB

KINDS = ("block", "allow", "threat")
# The parser's formats (burrow.filtering.parsers.FORMATS); None / "auto" = detect.
FORMATS = ("hosts", "domains", "wildcard", "onlydomains", "adblock", "dnsmasq", "rpz", "regex")
# Blocking modes a list may override (burrow.dns.blocking.MODES).
MODES = ("null", "nxdomain", "nodata", "custom")
DEFAULT_UPDATE_INTERVAL = 86400
MIN_UPDATE_INTERVAL = 300  # five minutes: list hosts rate-limit harder than that
MAX_UPDATE_INTERVAL = 90 * 86400
MAX_NAME = 100
MAX_SOURCE = 2048
MAX_GROUPS = 64
MAX_ERROR_TEXT = 500

_COLUMNS = ("id", "name", "source", "kind", "format", "groups", "enabled", "update_interval",
            "mode", "last_success", "last_attempt", "last_error", "entries", "errors", "skipped",
            "bytes", "etag", "last_modified", "created_at")
_EDITABLE = ("name", "source", "kind", "format", "groups", "enabled", "update_interval", "mode")
_UNSET: Any = object()


class ListValidationError(domain.Invalid, ValueError):
    """Bad input for a list (400); ``field`` names the field (None when no single field is at fault)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class ListConflictError(domain.Conflict, ListValidationError):
    """Another list already has this name (409)."""


class ListLimitError(ListValidationError):
    """All 64 list slots are taken (the index holds at most 64 lists)."""


def list_id_of(id: int) -> int:
    """The index bit (0..63) of the list with database id ``id`` (1..64)."""
    return int(id) - 1


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


def resolve_local_source(source: str, local_dirs: Iterable[str | os.PathLike[str]]) -> str:
    """The resolved real path of local list ``source``, or ListValidationError("source").

    ``source`` may be absolute or relative to the first allowed directory. Symlinks and ``..``
    are resolved before the containment check, so neither can escape the allowed directories.
    """
    dirs = [_real(os.fspath(d)) for d in local_dirs if os.fspath(d)]
    if not dirs:
        raise ListValidationError("source", "local lists are disabled (no local list directory "
                                  "is configured); use an http:// or https:// URL")
    if "\x00" in source:
        raise ListValidationError("source", "contains a NUL byte")
    path = source if os.path.isabs(source) else os.path.join(dirs[0], source)
    real = _real(path)
    for d in dirs:
        if real != d and os.path.commonpath([real, d]) == d:
            break
    else:
        raise ListValidationError(
            "source", "must be an http(s) URL or a file inside an allowed local list "
            f"directory ({', '.join(dirs)}); symlinks may not point outside them")
    if os.path.isdir(real):
        raise ListValidationError("source", "is a directory, not a list file")
    return real


def is_url(source: str) -> bool:
    return source[:8].lower().startswith(("http://", "https://"))


def validate_source(source: object, local_dirs: Iterable[str | os.PathLike[str]]) -> str:
    """The source, checked (see the module doc); raises ListValidationError("source")."""
    if not isinstance(source, str) or not source.strip():
        raise ListValidationError("source", "is required (an http(s) URL or a local file path)")
    source = source.strip()
    if len(source) > MAX_SOURCE:
        raise ListValidationError("source", f"longer than {MAX_SOURCE} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in source):
        raise ListValidationError("source", "contains control characters")
    if is_url(source):
        if any(c.isspace() for c in source):
            raise ListValidationError("source", "a URL may not contain spaces")
        try:
            parts = urlsplit(source)
            port = parts.port  # raises ValueError for a bad port
        except ValueError as exc:
            raise ListValidationError("source", f"is not a valid URL ({exc})") from None
        if not parts.hostname:
            raise ListValidationError("source", "the URL has no host")
        if parts.username is not None or parts.password is not None:
            raise ListValidationError("source", "credentials in the URL are not supported")
        if port == 0:
            raise ListValidationError("source", "the URL's port must be 1..65535")
        return source
    if "://" in source[:16] or source.lower().startswith("file:"):
        raise ListValidationError("source", "only http:// and https:// URLs or local file paths "
                                  "are accepted")
    resolve_local_source(source, local_dirs)
    return source


def _validate_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ListValidationError("name", "is required")
    value = value.strip()
    if len(value) > MAX_NAME:
        raise ListValidationError("name", f"longer than {MAX_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ListValidationError("name", "contains control characters")
    return value


def _validate_kind(value: object) -> str:
    if value not in KINDS:
        raise ListValidationError("kind", f"must be one of {', '.join(KINDS)}")
    return value


def _validate_format(value: object) -> str | None:
    if value is None or value == "" or value == "auto":
        return None
    if value not in FORMATS:
        raise ListValidationError("format", f"must be auto or one of {', '.join(FORMATS)}")
    return value


def _validate_groups(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ListValidationError("groups", "must be a list of group names")
    out: list[str] = []
    for g in value:
        if not isinstance(g, str) or not g.strip() or len(g.strip()) > MAX_NAME:
            raise ListValidationError("groups", "each group must be a non-empty name")
        g = g.strip()
        if g not in out:
            out.append(g)
    if len(out) > MAX_GROUPS:
        raise ListValidationError("groups", f"at most {MAX_GROUPS} groups")
    return out


def _validate_enabled(value: object) -> bool:
    if not isinstance(value, bool):
        raise ListValidationError("enabled", "must be true or false")
    return value


def _validate_interval(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ListValidationError("update_interval", "must be a number of seconds")
    value = int(value)
    if not MIN_UPDATE_INTERVAL <= value <= MAX_UPDATE_INTERVAL:
        raise ListValidationError(
            "update_interval", f"must be {MIN_UPDATE_INTERVAL}..{MAX_UPDATE_INTERVAL} seconds")
    return value


def _validate_mode(value: object) -> str | None:
    if value is None or value == "":
        return None
    if value not in MODES:
        raise ListValidationError("mode", f"must be null (no override) or one of {', '.join(MODES)}")
    return value


class ListStore:
    """CRUD and status of the filter lists, in the settings database (see the module doc).

    ``settings_db`` is a ``burrow.storage.settings.SettingsDB`` (migrated to version 4 or
    later); ``local_dirs`` the directories local list files may live in. Use from the loop
    thread, like the SettingsDB itself. Adding, changing (its groups, enabling) or removing a
    list is announced to ``on_change`` (burrow/changes.py) once written; a download's status
    (``record_result``) is not: what it downloads reaches answers with the next index.
    """

    def __init__(self, settings_db: SettingsDB, local_dirs: Iterable[str | os.PathLike[str]] = (), *,
                 clock: Callable[[], float] = time.time, on_change: Announce = ignore) -> None:
        self.db = settings_db
        self.local_dirs = [os.fspath(d) for d in local_dirs]
        self.clock = clock
        self.on_change = on_change

    def reload(self) -> None:
        """The rows were replaced behind the store's back (a restore). Nothing is kept in
        memory here, but what is derived from the lists is: announce it."""
        self.on_change(Change.LISTS)

    # ---- reading -------------------------------------------------------------------------

    def _row(self, id: int) -> dict[str, Any] | None:
        cur = self.db.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM lists WHERE id = ?",
                                   (int(id),))
        row = cur.fetchone()
        return None if row is None else _public(row)

    def get(self, id: int) -> dict[str, Any] | None:
        """The list with id ``id`` as a public dict, or None."""
        try:
            return self._row(int(id))
        except (TypeError, ValueError):
            return None

    def get_by_name(self, name: str) -> dict[str, Any] | None:
        row = self.db.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM lists WHERE name = ?",
                                   (name,)).fetchone()
        return None if row is None else _public(row)

    def list(self, *, enabled: bool | None = None, kind: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every list (optionally only enabled/disabled ones, or one kind), by id."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM lists"
        where: builtins.list[str] = []
        args: builtins.list[object] = []
        if enabled is not None:
            where.append("enabled = ?")
            args.append(1 if enabled else 0)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_public(r) for r in self.db.conn.execute(sql + " ORDER BY id", args)]

    def count(self) -> int:
        return int(self.db.conn.execute("SELECT COUNT(*) FROM lists").fetchone()[0])

    def local_path(self, source: str) -> str:
        """Re-check a local source now and return its real path (ListValidationError if not)."""
        return resolve_local_source(source, self.local_dirs)

    # ---- writing -------------------------------------------------------------------------

    def create(self, name: str, source: str, kind: str = "block", format: str | None = None,
               groups: builtins.list[str] | None = None, enabled: bool = True,
               update_interval: int = DEFAULT_UPDATE_INTERVAL, mode: str | None = None) -> dict[str, Any]:
        """Add a list; returns it. Raises ListValidationError / ListConflictError /
        ListLimitError (all ValueErrors) without writing anything."""
        values = {
            "name": _validate_name(name),
            "source": validate_source(source, self.local_dirs),
            "kind": _validate_kind(kind),
            "format": _validate_format(format),
            "groups": json.dumps(_validate_groups(groups)),
            "enabled": 1 if _validate_enabled(enabled) else 0,
            "update_interval": _validate_interval(update_interval),
            "mode": _validate_mode(mode),
        }
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM lists WHERE name = ?", (values["name"],)).fetchone():
                raise ListConflictError("name", f"a list named {values['name']!r} already exists")
            used = {r[0] for r in conn.execute("SELECT id FROM lists")}
            free = next((i for i in range(1, MAX_LISTS + 1) if i not in used), None)
            if free is None:
                raise ListLimitError(None, f"at most {MAX_LISTS} lists can be configured (the "
                                     "index has one bit per list); delete one first")
            try:
                conn.execute(
                    "INSERT INTO lists (id, name, source, kind, format, groups, enabled, "
                    "update_interval, mode, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (free, values["name"], values["source"], values["kind"], values["format"],
                     values["groups"], values["enabled"], values["update_interval"],
                     values["mode"], self.clock()))
            except sqlite3.IntegrityError as exc:  # a racing writer took the name
                raise ListConflictError("name", f"a list named {values['name']!r} already "
                                        "exists") from exc
        self.on_change(Change.LISTS)
        return self._row(free)  # type: ignore[return-value]

    def update(self, id: int, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply a partial update (only the keys given; unknown keys are a
        ListValidationError). Returns the list, or None if there is no such list.

        Changing the source forgets the ETag/Last-Modified, the last attempt, success and
        error, so the new source is due at once and downloaded in full.
        """
        if not isinstance(changes, dict):
            raise ListValidationError(None, "the update must be an object")
        unknown = sorted(set(changes) - set(_EDITABLE))
        if unknown:
            raise ListValidationError(unknown[0], f"cannot be changed (editable: "
                                      f"{', '.join(_EDITABLE)})")
        current = self.get(id)
        if current is None:
            return None
        sets: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "name":
                sets["name"] = _validate_name(value)
            elif key == "source":
                sets["source"] = validate_source(value, self.local_dirs)
            elif key == "kind":
                sets["kind"] = _validate_kind(value)
            elif key == "format":
                sets["format"] = _validate_format(value)
            elif key == "groups":
                sets["groups"] = json.dumps(_validate_groups(value))
            elif key == "enabled":
                sets["enabled"] = 1 if _validate_enabled(value) else 0
            elif key == "update_interval":
                sets["update_interval"] = _validate_interval(value)
            elif key == "mode":
                sets["mode"] = _validate_mode(value)
        if "source" in sets and sets["source"] != current["source"]:
            sets.update(etag=None, last_modified=None, last_success=None, bytes=None,
                        last_attempt=None, last_error=None)
        if not sets:
            return current
        with self.db.transaction() as conn:
            if "name" in sets and conn.execute(
                    "SELECT 1 FROM lists WHERE name = ? AND id != ?",
                    (sets["name"], int(id))).fetchone():
                raise ListConflictError("name", f"a list named {sets['name']!r} already exists")
            try:
                conn.execute(
                    f"UPDATE lists SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                    (*sets.values(), int(id)))
            except sqlite3.IntegrityError as exc:
                raise ListConflictError("name", "a list with that name already exists") from exc
        self.on_change(Change.LISTS)
        return self._row(id)

    def delete(self, id: int) -> bool:
        """Remove a list; True if it existed. Its bit leaves the index at the next compile."""
        with self.db.transaction() as conn:
            removed = bool(conn.execute("DELETE FROM lists WHERE id = ?", (int(id),)).rowcount > 0)
        if removed:
            self.on_change(Change.LISTS)
        return removed

    def record_result(self, id: int, *, ok: bool | None, at: float | None = None,
                      error: str | None = None, attempted: bool = True,
                      entries: int | None = _UNSET, errors: int | None = _UNSET,
                      skipped: Any = _UNSET, bytes: int | None = _UNSET,
                      etag: str | None = _UNSET, last_modified: str | None = _UNSET) -> dict[str, Any] | None:
        """Record the outcome of an update of list ``id``.

        ok=True: ``last_success`` = at and ``last_error`` cleared; ok=False: ``last_error`` =
        error; ok=None: neither (only the counters given). ``last_attempt`` = at when
        ``attempted``. Counters and validators are changed only when passed (None stores
        NULL). ``skipped`` is stored as JSON. Returns the list, or None if it is gone.
        """
        at = self.clock() if at is None else at
        sets: dict[str, Any] = {}
        if attempted:
            sets["last_attempt"] = at
        if ok is True:
            sets["last_success"] = at
            sets["last_error"] = None
        elif ok is False:
            text = str(error or "failed")
            sets["last_error"] = text if len(text) <= MAX_ERROR_TEXT else \
                text[:MAX_ERROR_TEXT - 1] + "…"
        for key, value in (("entries", entries), ("errors", errors), ("bytes", bytes),
                           ("etag", etag), ("last_modified", last_modified)):
            if value is not _UNSET:
                sets[key] = value
        if skipped is not _UNSET:
            sets["skipped"] = None if skipped is None else json.dumps(skipped)
        if not sets:
            return self.get(id)
        with self.db.transaction() as conn:
            n = conn.execute(f"UPDATE lists SET {', '.join(f'{k} = ?' for k in sets)} "
                             "WHERE id = ?", (*sets.values(), int(id))).rowcount
        return self._row(id) if n else None


def _public(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(_COLUMNS, row))
    d["list_id"] = list_id_of(d["id"])
    d["groups"] = json.loads(d["groups"]) if d["groups"] else []
    d["enabled"] = bool(d["enabled"])
    if d["skipped"] is not None:
        try:
            d["skipped"] = json.loads(d["skipped"])
        except ValueError:
            d["skipped"] = None
    return d
