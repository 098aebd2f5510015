"""Durable local DNS data: zones and their records in the settings database (migration 5).

One store, several faces. Three kinds of zone live in the ``zones`` table:

* ``master`` — an authoritative zone edited here (``/api/zones``, ``/api/dns-records``, zone-file
  import). Every change is validated as a whole zone (one SOA, apex NS, CNAME exclusivity, glue
  for in-zone NS targets, so the export always passes ``named-checkzone``) and bumps the SOA
  serial (:func:`burrow.dns.serial.next_serial`).
* ``slave`` — a copy of a zone on another server (AXFR, :mod:`burrow.zones.axfr`). Its records
  are written only by :meth:`ZoneStore.store_transfer`; the API cannot edit them.
* ``local`` — exactly one, implicit, named ``""`` in the table and ``"local"`` in the API: the
  local records of seed 003 (``/api/localrecords``). Not authoritative (no SOA, no NS), records
  for any name, types A, AAAA and CNAME only. The same rows appear in ``/api/dns-records``.

A new master zone gets ``@ SOA localhost. hostmaster.<zone>. <YYYYMMDD00> 3600 900 604800 300``
and ``@ NS localhost.``: the appliance answers for the zone itself, nothing delegates to it, and
an NS inside the zone would need a glue address Burrow cannot know for certain (its address
changes with DHCP). ``localhost.`` is outside every zone, so the export loads in named as is;
the owner can replace both at any time.

Every write is one transaction (``SettingsDB.transaction``): a zone-file import replaces all of a
zone's records or none. Methods raise :class:`RecordError` (a bad field, ``.field`` names it),
:class:`StoreError` (``.status`` 400/404/409, ``.field``) or :class:`ZoneFileError` (``.line``).
The store never touches the DNS path: the caller rebuilds the snapshot
(:meth:`burrow.zones.localdata.LocalData.from_store`) after a change.

**An edit costs what it touches.** A local-records edit reads and checks only the rows of the
owner names it touches (every rule on local records is per name: duplicates, CNAME
exclusivity), and the store notes those names (:meth:`ZoneStore.take_changes`), so the caller
can update the DNS snapshot for them alone (:meth:`LocalData.with_local`) instead of rebuilding
it from every record: adding one record to 1,339 took 67 ms that way (issue 20, item 12). A
master zone's edit still validates the whole zone (glue, one SOA, apex NS) and any change to a
zone other than the local one asks for a full rebuild.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import time
from typing import Iterable, NamedTuple, TypeVar

from .. import errors as domain
from ..dns.serial import next_serial, serial_add, serial_lt
from .authority import Zone
from .axfr import parse_primary
from .records import Record
from .validate import MAX_TTL, RecordError, absolute, make_record, normalize_origin, resolve_name, \
    validate_ttl, validate_type, validate_value
from .zonefile import ZoneFileError, export_zone, parse_zone

LOCAL_ORIGIN = ""  # the local zone's name in the table
LOCAL_NAME = "local"  # ... and in the API (a master zone cannot take this name)
LOCAL_TYPES = ("A", "AAAA", "CNAME")  # what seed 003 local records hold
LOCAL_DEFAULT_TTL = 300  # seed 003
ZONE_DEFAULT_TTL = 3600  # records added to a master zone without a TTL
DEFAULT_NS = "localhost."
DEFAULT_SOA_TIMERS = "3600 900 604800 300"  # refresh retry expire minimum (negative TTL)
MAX_ZONES = 256  # a home appliance serves a handful; the cap keeps a script from filling flash
MAX_ZONE_RECORDS = 50_000  # one zone (~15 MB of Python objects in the snapshot at most)
MAX_LOCAL_IPS = 64  # addresses in one local record (round-robin set)
SQL_IN_CHUNK = 500  # names per "name IN (...)" query (SQLite allows 999 parameters before 3.32)

ZONE_TYPES = ("master", "slave")


class StoreError(domain.DomainError, ValueError):
    """A request the store refuses: ``status`` 400 (bad), 404 (absent) or 409 (conflict);
    ``field`` names the request field when there is one."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field

    def problems(self) -> list[dict] | None:
        return super().problems() if self.status == 400 else None


class StoredZone(NamedTuple):
    """One zone as the snapshot builder needs it."""

    id: int
    origin: str  # "" for the local zone
    type: str  # master | slave | local
    records: list
    serial: int
    last_transfer: float | None


_ZONE_COLUMNS = ("id", "name", "type", "primaries", "serial", "created_at", "updated_at", "last_transfer",
                 "last_error")


def _primary_text(text: str) -> str:
    host, port = parse_primary(text)
    shown = f"[{host}]" if ":" in host else host
    return shown if port == 53 else f"{shown}:{port}"


def check_primaries(primaries, field: str = "primaries") -> list[str]:
    """Normalised ``ip[:port]`` texts of a slave zone's primaries (at least one, at most 8)."""
    if not isinstance(primaries, (list, tuple)) or not primaries:
        raise StoreError("a slave zone needs at least one primary (ip or ip:port)", field=field)
    if len(primaries) > 8:
        raise StoreError("at most 8 primaries", field=field)
    out = []
    for i, text in enumerate(primaries):
        if not isinstance(text, str):
            raise StoreError("a primary must be text: ip or ip:port", field=f"{field}[{i}]")
        try:
            label = _primary_text(text)
        except ValueError as exc:
            raise StoreError(str(exc), field=f"{field}[{i}]") from None
        if label not in out:
            out.append(label)
    return out


T = TypeVar("T")


def _present(value: T | None) -> T:
    """``value``, which the caller has just written or checked: None here would be a bug."""
    assert value is not None
    return value


def _soa_serial(value: str) -> int:
    return int(value.split()[2])


def _with_serial(value: str, serial: int) -> str:
    fields = value.split()
    fields[2] = str(serial)
    return " ".join(fields)


def _check_local(records: Iterable[Record]) -> None:
    """Local records: one CNAME per owner and nothing else beside it (RFC 1034 §3.6.2)."""
    types_at: dict[str, list[str]] = {}
    for r in records:
        types_at.setdefault(r.name, []).append(r.type)
    for name, types in types_at.items():
        if "CNAME" in types:
            if types.count("CNAME") > 1:
                raise RecordError(f"{name} already has a CNAME; a name holds at most one", "type")
            if len(types) > 1:
                others = ", ".join(sorted(set(types) - {"CNAME"}))
                raise RecordError(f"{name} has a CNAME, so it can hold no other data (found {others})", "type")


def local_owner(text, field: str = "name", wildcard: bool = False) -> str:
    """An absolute owner for the local zone: every name is taken as absolute (there is no
    origin), ``*.home.lan`` is a wildcard; ``wildcard=True`` makes ``home.lan`` into one."""
    if not isinstance(text, str) or not text.strip().rstrip("."):
        raise RecordError("a domain name is required", field)
    name = text.strip().rstrip(".")
    if wildcard and not name.startswith("*."):
        name = "*." + name
    if name == "*":  # would make every name on the internet local
        raise RecordError("a wildcard needs a domain to match below (*.home.lan)", field)
    return resolve_name(name + ".", None, field=field, wildcard=True)


def local_record(name, rtype, value, ttl=None, field_names: dict | None = None) -> Record:
    """A validated Record for the local zone (A, AAAA or CNAME; names absolute)."""
    f = field_names or {}
    rtype = validate_type(rtype)
    if rtype not in LOCAL_TYPES:
        raise RecordError(f"local records are A, AAAA or CNAME, not {rtype}", f.get("type", "type"))
    owner = local_owner(name, f.get("name", "name"))
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{rtype} record needs a value", f.get("value", "value"))
    text = value.strip()
    if rtype == "CNAME" and not text.endswith("."):
        text += "."  # no origin to be relative to: the target is absolute
    try:
        value = validate_value(rtype, text, None)
    except RecordError as exc:
        raise RecordError(exc.message, f.get("value", exc.field)) from None
    try:
        seconds = validate_ttl(LOCAL_DEFAULT_TTL if ttl is None else ttl)
    except RecordError as exc:
        raise RecordError(exc.message, f.get("ttl", "ttl")) from None
    return Record(owner, rtype, seconds, value)


class ZoneStore:
    """Zones and records in the settings DB (a :class:`burrow.storage.settings.SettingsDB`).

    Zones are referred to by id (int or digit string) or by name (``lab.test``, ``lab.test.``,
    ``local`` for the local records). Public dicts are JSON-ready; :meth:`snapshot` gives the
    data the DNS snapshot is built from. Use from the loop thread only (as SettingsDB).
    """

    def __init__(self, settings_db, *, clock=time.time, today=None):
        self.db = settings_db
        self.clock = clock
        self.today = today  # () -> datetime.date, for tests of date serials
        with self.db.transaction() as conn:
            now = self.clock()
            conn.execute("INSERT OR IGNORE INTO zones (name, type, created_at, updated_at) VALUES (?, 'local', ?, ?)",
                         (LOCAL_ORIGIN, now, now))
        self.local_id = self._conn.execute("SELECT id FROM zones WHERE name = ?", (LOCAL_ORIGIN,)).fetchone()[0]
        # What this store's own writes changed since take_changes(): local owner names, and
        # whether anything else (zones, their records) changed.
        self._changed_owners: set[str] = set()
        self._changed_other = False

    def take_changes(self) -> frozenset[str] | None:
        """The local records' owner names this store's writes changed since the last call, or
        None when something else changed too (a zone, a zone's records): then only a full
        rebuild is right. Forgets them. Writes made around the store (a restore, the CLI in
        another process) are not seen here: whoever makes them rebuilds in full."""
        other, owners = self._changed_other, frozenset(self._changed_owners)
        self._changed_other = False
        self._changed_owners.clear()
        return None if other else owners

    def _zones_changed(self) -> None:
        self._changed_other = True

    @property
    def _conn(self):
        return self.db.conn

    def _today(self) -> datetime.date:
        return self.today() if self.today is not None else datetime.date.today()

    # ---- zones: reading ----------------------------------------------------------------------

    def _zone_row(self, ref) -> dict | None:
        conn = self._conn
        cols = ", ".join(_ZONE_COLUMNS)
        if isinstance(ref, bool):
            return None
        if isinstance(ref, int):
            if not -(2 ** 63) <= ref < 2 ** 63:
                return None  # no row has an id SQLite cannot hold (passing it would raise OverflowError)
            row = conn.execute(f"SELECT {cols} FROM zones WHERE id = ?", (ref,)).fetchone()
        elif isinstance(ref, str) and ref.strip().isascii() and ref.strip().isdigit() and len(ref.strip()) < 19:
            row = conn.execute(f"SELECT {cols} FROM zones WHERE id = ?", (int(ref),)).fetchone()
        elif isinstance(ref, str):
            text = ref.strip()
            if text.lower().rstrip(".") == LOCAL_NAME:
                origin = LOCAL_ORIGIN
            else:
                try:
                    origin = normalize_origin(text)
                except RecordError:
                    return None
            row = conn.execute(f"SELECT {cols} FROM zones WHERE name = ?", (origin,)).fetchone()
        else:
            return None
        return None if row is None else dict(zip(_ZONE_COLUMNS, row))

    def _need_zone(self, ref, field: str = "zone") -> dict:
        row = self._zone_row(ref)
        if row is None:
            raise StoreError(f"no zone {ref!r}", 404, field)
        return row

    def _public_zone(self, row: dict) -> dict:
        count = self._conn.execute("SELECT COUNT(*) FROM zone_records WHERE zone_id = ?", (row["id"],)).fetchone()[0]
        return {"id": row["id"], "name": row["name"] if row["type"] != "local" else LOCAL_NAME,
                "type": row["type"], "primaries": json.loads(row["primaries"] or "[]"),
                "serial": row["serial"], "record_count": count, "created_at": row["created_at"],
                "updated_at": row["updated_at"], "last_transfer": row["last_transfer"],
                "last_error": row["last_error"]}

    def zones(self) -> list[dict]:
        """Every zone (the local zone first), as public dicts."""
        cols = ", ".join(_ZONE_COLUMNS)
        rows = self._conn.execute(f"SELECT {cols} FROM zones ORDER BY type = 'local' DESC, name").fetchall()
        return [self._public_zone(dict(zip(_ZONE_COLUMNS, r))) for r in rows]

    def zone(self, ref) -> dict | None:
        """One zone as a public dict, or None."""
        row = self._zone_row(ref)
        return None if row is None else self._public_zone(row)

    def zone_records(self, ref) -> list[Record]:
        """The records of a zone (in storage order), or [] for an unknown zone."""
        row = self._zone_row(ref)
        return [] if row is None else [r for _, r in self._rows(row["id"])]

    def snapshot(self) -> list[StoredZone]:
        """Every zone with its records: what :class:`LocalData` is built from."""
        out = []
        by_zone: dict[int, list] = {}
        for zid, name, rtype, ttl, value in self._conn.execute(
                "SELECT zone_id, name, type, ttl, value FROM zone_records ORDER BY id"):
            by_zone.setdefault(zid, []).append(Record(name, rtype, ttl, value))
        for zid, name, ztype, serial, last_transfer in self._conn.execute(
                "SELECT id, name, type, serial, last_transfer FROM zones ORDER BY id"):
            out.append(StoredZone(zid, name, ztype, by_zone.get(zid, []), serial, last_transfer))
        return out

    # ---- zones: writing ----------------------------------------------------------------------

    def _default_master_records(self, origin: str) -> list[Record]:
        serial = int(self._today().strftime("%Y%m%d")) * 100
        soa = validate_value("SOA", f"{DEFAULT_NS} hostmaster.{origin}. {serial} {DEFAULT_SOA_TIMERS}", origin)
        return [Record(origin, "SOA", ZONE_DEFAULT_TTL, soa), Record(origin, "NS", ZONE_DEFAULT_TTL, DEFAULT_NS)]

    def create_zone(self, name, type: str = "master", primaries=None) -> dict:
        """Create a master zone (with the default SOA and NS) or a slave zone (empty until its
        first transfer). Raises StoreError (409 when the name exists) or RecordError."""
        if type not in ZONE_TYPES:
            raise StoreError("type must be master or slave (local records live in the one local zone)",
                             field="type")
        origin = normalize_origin(name)
        if origin == LOCAL_NAME:
            raise StoreError(f"{LOCAL_NAME!r} names the zone of local records (and .local belongs to mDNS,"
                             " RFC 6762): choose another name, or add .local names as local records",
                             field="name")
        if type == "slave":
            prims = check_primaries(primaries)
        else:
            if primaries:
                raise StoreError("only slave zones have primaries", field="primaries")
            prims = []
        if self._conn.execute("SELECT 1 FROM zones WHERE name = ?", (origin,)).fetchone():
            raise StoreError(f"zone {origin} already exists", 409, "name")
        if self._conn.execute("SELECT COUNT(*) FROM zones").fetchone()[0] > MAX_ZONES:
            raise StoreError(f"at most {MAX_ZONES} zones", field="name")
        records = self._default_master_records(origin) if type == "master" else []
        now = self.clock()
        serial = _soa_serial(records[0].value) if records else 0
        with self.db.transaction() as conn:
            cur = conn.execute("INSERT INTO zones (name, type, primaries, serial, created_at, updated_at) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (origin, type, json.dumps(prims), serial, now, now))
            zid = cur.lastrowid
            for r in records:
                self._insert(conn, zid, r)
        self._zones_changed()
        return _present(self.zone(zid))

    def update_zone(self, ref, changes: dict) -> dict:
        """Change a zone's type (master ↔ slave) or primaries. A zone keeps its name: renaming
        would rewrite every record (export, create, import instead)."""
        row = self._need_zone(ref)
        if row["type"] == "local":
            raise StoreError("the local zone is edited through its records (/api/localrecords)", field="zone")
        if "name" in changes and changes["name"] is not None:
            if normalize_origin(changes["name"]) != row["name"]:
                raise StoreError("a zone cannot be renamed: create the new zone and import this one's export",
                                 field="name")
        new_type = changes.get("type") or row["type"]
        if new_type not in ZONE_TYPES:
            raise StoreError("type must be master or slave", field="type")
        prims = json.loads(row["primaries"] or "[]")
        if changes.get("primaries") is not None:
            prims = changes["primaries"]
        if new_type == "slave":
            prims = check_primaries(prims)
        elif changes.get("primaries"):
            raise StoreError("only slave zones have primaries", field="primaries")
        else:
            prims = []
        now = self.clock()
        if new_type == "master" and row["type"] == "slave":
            # Promotion: the transferred copy becomes editable; a never-transferred zone starts
            # with the defaults. Validated as any master zone.
            records = [r for _, r in self._rows(row["id"])]
            if not records:
                records = self._default_master_records(row["name"])
            zone = Zone(row["name"], records)
            zone.validate(require_glue=True)
            with self.db.transaction() as conn:
                conn.execute("DELETE FROM zone_records WHERE zone_id = ?", (row["id"],))
                for r in zone.records():
                    self._insert(conn, row["id"], r)
                conn.execute("UPDATE zones SET type = 'master', primaries = '[]', serial = ?, updated_at = ? "
                             "WHERE id = ?", (_soa_serial(_present(zone.soa).value), now, row["id"]))
            self._bump(row["id"])
        else:
            with self.db.transaction() as conn:
                conn.execute("UPDATE zones SET type = ?, primaries = ?, updated_at = ? WHERE id = ?",
                             (new_type, json.dumps(prims), now, row["id"]))
        self._zones_changed()
        return _present(self.zone(row["id"]))

    def delete_zone(self, ref) -> dict:
        """Delete a zone and its records; returns what it was."""
        row = self._need_zone(ref)
        if row["type"] == "local":
            raise StoreError("the local zone cannot be deleted (remove its records instead)", field="zone")
        public = self._public_zone(row)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM zones WHERE id = ?", (row["id"],))
        self._zones_changed()
        return public

    # ---- records: reading --------------------------------------------------------------------

    def _rows(self, zone_id: int) -> list[tuple[int, Record]]:
        return [(rid, Record(n, t, ttl, v)) for rid, n, t, ttl, v in self._conn.execute(
            "SELECT id, name, type, ttl, value FROM zone_records WHERE zone_id = ? ORDER BY id", (zone_id,))]

    def _owner_rows(self, zone_id: int, names: Iterable[str]) -> list[tuple[int, Record]]:
        """The rows of a zone owned by ``names`` (by id): the index on (zone_id, name) finds
        them without reading the rest of the zone."""
        names = sorted(set(names))
        out = []
        for k in range(0, len(names), SQL_IN_CHUNK):
            chunk = names[k:k + SQL_IN_CHUNK]
            out += [(rid, Record(n, t, ttl, v)) for rid, n, t, ttl, v in self._conn.execute(
                "SELECT id, name, type, ttl, value FROM zone_records WHERE zone_id = ? AND name IN "
                f"({', '.join('?' * len(chunk))})", (zone_id, *chunk))]
        out.sort(key=lambda row: row[0])
        return out

    def local_records(self, names: Iterable[str]) -> dict[str, list[Record]]:
        """The local records of each owner name in ``names`` (in storage order; [] for none)."""
        out: dict[str, list[Record]] = {name: [] for name in names}
        for _, r in self._owner_rows(self.local_id, out):
            out[r.name].append(r)
        return out

    @staticmethod
    def _public_record(rid: int, zone_id: int, zone_name: str, r: Record) -> dict:
        priority = None
        if r.type in ("MX", "SRV"):
            priority = int(r.value.split()[0])
        return {"id": rid, "zone": zone_name or LOCAL_NAME, "zone_id": zone_id, "name": r.name,
                "type": r.type, "ttl": r.ttl, "value": r.value, "priority": priority}

    def records(self, zone=None) -> list[dict]:
        """Every record (or one zone's), as public dicts ordered by zone, owner, type."""
        sql = ("SELECT r.id, r.zone_id, z.name, r.name, r.type, r.ttl, r.value FROM zone_records r "
               "JOIN zones z ON z.id = r.zone_id")
        args: tuple = ()
        if zone is not None:
            row = self._need_zone(zone)
            sql += " WHERE r.zone_id = ?"
            args = (row["id"],)
        sql += " ORDER BY r.zone_id, r.name, r.type, r.id"
        return [self._public_record(rid, zid, zname, Record(n, t, ttl, v))
                for rid, zid, zname, n, t, ttl, v in self._conn.execute(sql, args)]

    def _record_row(self, rid) -> tuple[int, dict, Record] | None:
        try:
            rid = int(rid)
        except (TypeError, ValueError):
            return None
        if not -(2 ** 63) <= rid < 2 ** 63:
            return None  # as in _zone_row: no such row, and SQLite would raise OverflowError
        got = self._conn.execute("SELECT id, zone_id, name, type, ttl, value FROM zone_records WHERE id = ?",
                                 (rid,)).fetchone()
        if got is None:
            return None
        zone = _present(self._zone_row(got[1]))  # (a record's zone exists: foreign key)
        return got[0], zone, Record(got[2], got[3], got[4], got[5])

    def record(self, rid) -> dict | None:
        found = self._record_row(rid)
        if found is None:
            return None
        rid, zone, r = found
        return self._public_record(rid, zone["id"], zone["name"], r)

    # ---- records: writing --------------------------------------------------------------------

    @staticmethod
    def _insert(conn, zone_id: int, r: Record) -> int:
        return conn.execute("INSERT INTO zone_records (zone_id, name, type, ttl, value) VALUES (?, ?, ?, ?, ?)",
                            (zone_id, r.name, r.type, r.ttl, r.value)).lastrowid

    def _apply(self, zone: dict, adds=(), deletes=(), sets=()) -> list[int]:
        """Validate the zone as it would be after the change, then write the change and the
        serial bump in one transaction. ``sets`` are (row id, new Record). Returns new row ids.

        The local zone's rules are per owner name, so only the touched owners' rows are read and
        checked there; a master zone is validated whole."""
        deletes = set(deletes)
        sets = dict(sets)
        owners: set[str] = set()
        if zone["type"] == "local":
            owners = {r.name for r in adds} | {r.name for r in sets.values()}
            ids = sorted(deletes | set(sets))
            for k in range(0, len(ids), SQL_IN_CHUNK):
                chunk = ids[k:k + SQL_IN_CHUNK]
                owners.update(n for (n,) in self._conn.execute(
                    f"SELECT name FROM zone_records WHERE zone_id = ? AND id IN ({', '.join('?' * len(chunk))})",
                    (zone["id"], *chunk)))
            rows = dict(self._owner_rows(zone["id"], owners))
            stored = self._conn.execute("SELECT COUNT(*) FROM zone_records WHERE zone_id = ?",
                                        (zone["id"],)).fetchone()[0]
        else:
            rows = dict(self._rows(zone["id"]))
            stored = len(rows)
        after = {rid: sets.get(rid, r) for rid, r in rows.items() if rid not in deletes}
        keys = {(r.name, r.type, r.value) for r in after.values()}
        if len(keys) != len(after):
            raise StoreError("that record already exists", 409, "value")
        for r in adds:
            key = (r.name, r.type, r.value)
            if key in keys:
                raise StoreError(f"{r.name} already has {r.type} {r.value}", 409, "value")
            keys.add(key)
        records = list(after.values()) + list(adds)
        if stored - len(rows) + len(records) > MAX_ZONE_RECORDS:
            raise StoreError(f"a zone holds at most {MAX_ZONE_RECORDS} records", field="zone")
        ztype = zone["type"]
        serial = zone["serial"]
        if ztype == "master":
            z = Zone(zone["name"], records)
            z.validate(require_glue=True)
            serial = self._next_serial(zone, _present(z.soa).value)
            # (validate() found the SOA, and no change adds one: it is among the kept records)
            soa_id = _present(next((rid for rid, r in after.items() if r.type == "SOA"), None))
            soa = after[soa_id]
            sets[soa_id] = soa._replace(value=_with_serial(soa.value, serial))
        elif ztype == "local":
            _check_local(records)
            serial = serial_add(serial, 1)
        else:
            raise StoreError("a slave zone's records come from its primaries; edit them there",
                             field="zone")
        new_ids = []
        with self.db.transaction() as conn:
            for rid in deletes:
                conn.execute("DELETE FROM zone_records WHERE id = ?", (rid,))
            for rid, r in sets.items():
                conn.execute("UPDATE zone_records SET name = ?, type = ?, ttl = ?, value = ? WHERE id = ?",
                             (r.name, r.type, r.ttl, r.value, rid))
            for r in adds:
                new_ids.append(self._insert(conn, zone["id"], r))
            conn.execute("UPDATE zones SET serial = ?, updated_at = ? WHERE id = ?",
                         (serial, self.clock(), zone["id"]))
        if ztype == "local":
            self._changed_owners.update(owners)
        else:
            self._zones_changed()
        return new_ids

    def _next_serial(self, zone: dict, soa_value: str) -> int:
        """The serial after a change: the owner's own serial if they raised it, else the next."""
        old = zone["serial"]
        given = _soa_serial(soa_value)
        if serial_lt(old, given):
            return given
        return next_serial(old, self._today())

    def _bump(self, zone_id: int) -> None:
        zone = _present(self._zone_row(zone_id))
        self._apply(zone)

    def _make(self, zone: dict, name, rtype, value, ttl=None, priority=None) -> Record:
        if zone["type"] == "local":
            if priority is not None:
                raise RecordError("priority applies to MX and SRV records", "priority")
            return local_record(name, rtype, value, ttl)
        if zone["type"] == "slave":
            raise StoreError("a slave zone's records come from its primaries; edit them there", field="zone")
        return make_record(zone["name"], name, rtype, value, ttl, priority, default_ttl=ZONE_DEFAULT_TTL)

    def add_record(self, zone_ref, name, type, value, ttl=None, priority=None) -> dict:
        """Add one record to a zone (names relative to the zone or absolute); returns it."""
        zone = self._need_zone(zone_ref)
        record = self._make(zone, name, type, value, ttl, priority)
        if record.type == "SOA":
            raise StoreError("a zone has exactly one SOA: change it (PUT) instead of adding one", field="type")
        rid = self._apply(zone, adds=[record])[0]
        return _present(self.record(rid))

    def update_record(self, rid, changes: dict) -> dict:
        """Replace fields of a record (name, type, value, ttl, priority); the rest stay."""
        found = self._record_row(rid)
        if found is None:
            raise StoreError(f"no record {rid}", 404, "id")
        rid, zone, old = found
        if changes.get("zone") is not None:
            other = self._zone_row(changes["zone"])
            if other is None or other["id"] != zone["id"]:
                raise StoreError("a record cannot move to another zone: add it there and delete this one",
                                 field="zone")
        rtype = changes.get("type") or old.type
        name = changes.get("name")
        if name is None:
            name = old.name if zone["type"] == "local" else absolute(old.name)
        value = changes.get("value")
        priority = changes.get("priority")
        if value is None:
            value = old.value
            if priority is not None and old.type in ("MX", "SRV") and rtype == old.type:
                value = old.value.split(None, 1)[1]  # the new priority replaces the old one
        elif priority is None and rtype == old.type and old.type in ("MX", "SRV"):
            want = {"MX": 1, "SRV": 3}[old.type]
            if len(value.split()) == want:
                priority = int(old.value.split()[0])  # the value without one keeps the old priority
        ttl = changes.get("ttl")
        if ttl is None:
            ttl = old.ttl
        record = self._make(zone, name, rtype, value, ttl, priority)
        if (old.type == "SOA") != (record.type == "SOA"):
            raise StoreError("the SOA record stays an SOA record (and no other record can become one)",
                             field="type")
        self._apply(zone, sets=[(rid, record)])
        return _present(self.record(rid))

    def delete_record(self, rid) -> dict:
        """Delete one record; returns what it was."""
        found = self._record_row(rid)
        if found is None:
            raise StoreError(f"no record {rid}", 404, "id")
        rid, zone, old = found
        public = self._public_record(rid, zone["id"], zone["name"], old)
        self._apply(zone, deletes=[rid])
        return public

    # ---- zone files --------------------------------------------------------------------------

    def import_zone(self, ref, text: str) -> dict:
        """Replace every record of a master zone with a zone file's (all or nothing).

        A file without an SOA or apex NS keeps the zone's current ones, so a list of hosts can be
        pasted as is. The serial is the file's when it is newer, else the next after ours.
        Raises ZoneFileError (``.line``), RecordError or StoreError.
        Returns {"zone": public zone, "records": count, "warnings": [...]}.
        """
        zone = self._need_zone(ref)
        if zone["type"] != "master":
            raise StoreError("only master zones take a zone file (local records have no origin; a slave"
                             " zone's data comes from its primaries)", field="zone")
        if not isinstance(text, str):
            raise StoreError("the zone file must be text", field="zone")
        parsed = parse_zone(text, zone["name"], default_ttl=ZONE_DEFAULT_TTL, strict=True)
        records = list(parsed.records)
        if len(records) > MAX_ZONE_RECORDS:
            raise StoreError(f"a zone holds at most {MAX_ZONE_RECORDS} records", field="zone")
        current = [r for _, r in self._rows(zone["id"])]
        origin = zone["name"]
        if not any(r.type == "SOA" for r in records):
            records += [r for r in current if r.type == "SOA"]
        if not any(r.type == "NS" and r.name == origin for r in records):
            records += [r for r in current if r.type == "NS" and r.name == origin]
        z = Zone(origin, records)
        z.validate(require_glue=True)
        soa = _present(z.soa)  # validate() made sure
        serial = self._next_serial(zone, soa.value)
        z.rrsets[(origin, "SOA")] = [soa._replace(value=_with_serial(soa.value, serial))]
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM zone_records WHERE zone_id = ?", (zone["id"],))
            for r in sorted(z.records(), key=lambda r: r.type != "SOA"):
                self._insert(conn, zone["id"], r)
            conn.execute("UPDATE zones SET serial = ?, updated_at = ? WHERE id = ?",
                         (serial, self.clock(), zone["id"]))
        self._zones_changed()
        return {"zone": self.zone(zone["id"]), "records": len(z), "warnings": parsed.warnings}

    def export_zone(self, ref) -> str:
        """The zone as an RFC 1035 master file (``named-checkzone`` accepts it)."""
        zone = self._need_zone(ref)
        if zone["type"] == "local":
            raise StoreError("local records are not a zone (no origin, no SOA): export a master zone",
                             field="zone")
        records = [r for _, r in self._rows(zone["id"])]
        if not records:
            raise StoreError(f"zone {zone['name']} has no data yet (not transferred)", 409, "zone")
        return export_zone(zone["name"], records, comment=f"{zone['type']} zone, serial {zone['serial']}")

    # ---- secondary zones ---------------------------------------------------------------------

    def store_transfer(self, ref, records: list[Record], at: float | None = None) -> None:
        """Keep a slave zone's freshly transferred records (SOA first, as axfr() returns them)."""
        zone = self._need_zone(ref)
        if zone["type"] != "slave":
            raise StoreError(f"zone {zone['name']} is not a slave zone", field="zone")
        if not records or records[0].type != "SOA":
            raise StoreError("a transfer starts with the zone's SOA", field="zone")
        if len(records) > MAX_ZONE_RECORDS:
            raise StoreError(f"a zone holds at most {MAX_ZONE_RECORDS} records", field="zone")
        at = self.clock() if at is None else at
        seen = set()
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM zone_records WHERE zone_id = ?", (zone["id"],))
            for r in records:
                key = (r.name, r.type, r.value)
                if key not in seen:
                    seen.add(key)
                    self._insert(conn, zone["id"], r)
            conn.execute("UPDATE zones SET serial = ?, last_transfer = ?, last_error = NULL, updated_at = ? "
                         "WHERE id = ?", (_soa_serial(records[0].value), at, at, zone["id"]))
        self._zones_changed()

    def transfer_checked(self, ref, at: float | None = None) -> None:
        """A refresh found the copy current."""
        zone = self._need_zone(ref)
        self._conn.execute("UPDATE zones SET last_transfer = ?, last_error = NULL WHERE id = ?",
                           (self.clock() if at is None else at, zone["id"]))

    def transfer_failed(self, ref, error: str) -> None:
        """A refresh failed: keep the reason for the API."""
        zone = self._need_zone(ref)
        self._conn.execute("UPDATE zones SET last_error = ? WHERE id = ?", (str(error)[:500], zone["id"]))

    # ---- the local records face (seed 003 /api/localrecords) ---------------------------------

    def local_entries(self) -> list[dict]:
        """Local records grouped per domain and type, sorted, in the seed's shape: id
        ``domain:type:index`` (the domain with its trailing dot; one entry per domain and type,
        so the index is 0), ips for A/AAAA in the order added, target for CNAME."""
        groups: dict[tuple[str, str], list[Record]] = {}
        for _, r in self._rows(self.local_id):
            groups.setdefault((r.name, r.type), []).append(r)
        out = []
        for (name, rtype), recs in sorted(groups.items()):
            out.append(self._local_entry(name, rtype, recs))
        return out

    @staticmethod
    def _local_entry(name: str, rtype: str, recs: list[Record]) -> dict:
        domain = absolute(name)
        return {"id": f"{domain}:{rtype}:0", "domain": domain, "type": rtype,
                "ips": [r.value for r in recs] if rtype != "CNAME" else [],
                "target": recs[0].value if rtype == "CNAME" else "",
                "ttl": min(r.ttl for r in recs), "wildcard": name.startswith("*.") or name == "*"}

    def local_entry(self, domain: str, rtype: str) -> dict | None:
        name = domain.strip().lower().rstrip(".")
        recs = [r for _, r in self._owner_rows(self.local_id, [name]) if r.type == rtype]
        return self._local_entry(name, rtype, recs) if recs else None

    def local_entry_count(self) -> int:
        """How many entries :meth:`local_entries` would list (one per domain and type)."""
        return self._conn.execute("SELECT COUNT(*) FROM (SELECT DISTINCT name, type FROM zone_records "
                                  "WHERE zone_id = ?)", (self.local_id,)).fetchone()[0]

    def add_local(self, domain, type, ips=None, target=None, ttl=None, wildcard: bool = False) -> dict:
        """Add a seed 003 local record; returns its entry.

        Addresses for a domain and type that already has some join the set (round-robin) and
        the whole set takes the new TTL. A CNAME beside other data, or a second CNAME with a
        different target, is refused. Errors name the seed's fields (domain, type, ips, target,
        ttl).
        """
        if not isinstance(type, str) or type.strip().upper() not in LOCAL_TYPES:
            raise RecordError("type must be A, AAAA or CNAME", "type")
        rtype = type.strip().upper()
        owner = local_owner(domain, "domain", wildcard=bool(wildcard))
        if ttl is None:
            seconds = LOCAL_DEFAULT_TTL
        elif isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise RecordError("ttl must be a positive number of seconds", "ttl")
        elif ttl > MAX_TTL:
            raise RecordError(f"ttl must be at most {MAX_TTL}", "ttl")
        else:
            seconds = ttl
        if rtype == "CNAME":
            if ips:
                raise RecordError("a CNAME record takes a target, not ips", "ips")
            if not isinstance(target, str) or not target.strip().rstrip("."):
                raise RecordError("CNAME records require a target domain", "target")
            new = [local_record(owner, "CNAME", target, seconds, {"value": "target"})]
        else:
            if target:
                raise RecordError(f"an {rtype} record takes ips, not a target", "target")
            if not isinstance(ips, list) or not ips:
                raise RecordError(f"{rtype} records require at least one IP address", "ips")
            if len(ips) > MAX_LOCAL_IPS:
                raise RecordError(f"at most {MAX_LOCAL_IPS} addresses in one record", "ips")
            new = []
            for i, ip in enumerate(ips):
                field = f"ips[{i}]"
                if not isinstance(ip, str):
                    raise RecordError("an IP address must be text", field)
                try:
                    address = ipaddress.ip_address(ip.strip())
                except ValueError:
                    raise RecordError(f"invalid IP address: {ip}", field) from None
                if (address.version == 4) != (rtype == "A"):
                    raise RecordError(f"{ip} is not an IPv{4 if rtype == 'A' else 6} address"
                                      f" (use type {'AAAA' if rtype == 'A' else 'A'})", field)
                record = local_record(owner, rtype, str(address), seconds, {"value": field})
                if record not in new:
                    new.append(record)
        zone = _present(self._zone_row(self.local_id))
        existing = [(rid, r) for rid, r in self._owner_rows(self.local_id, [owner]) if r.type == rtype]
        if rtype == "CNAME" and existing and existing[0][1].value != new[0].value:
            raise RecordError(f"{absolute(owner)} already has a CNAME (to {existing[0][1].value});"
                              " delete it first", "domain")
        have = {r.value for _, r in existing}
        sets = [(rid, r._replace(ttl=seconds)) for rid, r in existing if r.ttl != seconds]
        adds = [r for r in new if r.value not in have]
        if not adds and not sets:
            return _present(self.local_entry(owner, rtype))
        try:
            self._apply(zone, adds=adds, sets=sets)
        except RecordError as exc:
            raise RecordError(exc.message, "type" if exc.field == "type" else "domain") from None
        return _present(self.local_entry(owner, rtype))

    def replace_local(self, types: Iterable[str], records: Iterable[tuple[str, str, str, int | None]]) -> bool:
        """Make the local records of ``types`` exactly ``records`` ((name, type, value, ttl or
        None for the default)), in one transaction (another product's face, which states all its
        records at once: burrow/faces/pihole). Validated whole first; RecordError/StoreError
        change nothing. Returns whether anything changed."""
        types = {validate_type(t) for t in types}
        new: list[Record] = []
        for i, (name, rtype, value, ttl) in enumerate(records):
            record = local_record(name, rtype, value, LOCAL_DEFAULT_TTL if ttl is None else ttl,
                                  {"name": f"[{i}]", "type": f"[{i}]", "value": f"[{i}]"})
            if record.type not in types:
                raise RecordError(f"{record.type} is not among the types replaced", f"[{i}]")
            if record not in new:
                new.append(record)
        zone = _present(self._zone_row(self.local_id))
        old = {rid: r for rid, r in self._rows(self.local_id) if r.type in types}
        keep = {(r.name, r.type, r.value, r.ttl) for r in old.values()}
        if keep == {(r.name, r.type, r.value, r.ttl) for r in new}:
            return False
        self._apply(zone, adds=new, deletes=old)
        return True

    def delete_local(self, entry_id: str) -> dict:
        """Remove the local record ``domain:type:index`` (all its addresses); returns the removed
        entry. StoreError 400 for a malformed id, 404 when there is no such record."""
        parts = entry_id.rsplit(":", 2) if isinstance(entry_id, str) else []
        if len(parts) != 3 or not parts[0].strip(". ") or not parts[2].isdigit() \
                or parts[1].upper() not in LOCAL_TYPES:
            raise StoreError("Invalid record ID format (expected domain:type:index)", 400, "id")
        domain, rtype, index = parts[0], parts[1].upper(), int(parts[2])
        name = domain.strip().lower().rstrip(".")
        rows = [(rid, r) for rid, r in self._owner_rows(self.local_id, [name]) if r.type == rtype]
        if not rows or index != 0:
            raise StoreError("Record not found", 404, "id")
        entry = self._local_entry(name, rtype, [r for _, r in rows])
        self._apply(_present(self._zone_row(self.local_id)), deletes=[rid for rid, _ in rows])
        return entry


__all__ = ["LOCAL_NAME", "LOCAL_ORIGIN", "LOCAL_TYPES", "RecordError", "StoreError", "StoredZone",
           "ZoneFileError", "ZoneStore", "check_primaries", "local_owner", "local_record"]
