"""Stored state checked with the validators the API uses, and bad rows moved aside.

The settings DB holds what people saved through the API: settings rows (JSON values by key),
filter lists, zones and their records, accounts. A backup restore, a hand edit with ``sqlite3``
or a bug could put something there the API would never accept — and loading it could keep
Burrow from starting (the whole house without DNS). Two callers use this module:

* a restore (``burrow.backup.verify``) runs :func:`check` and :func:`load` on a scratch copy of
  the database with the archive applied, and refuses the archive (400) if either finds anything;
  a dry run runs the very same calls;
* the start (``App.build``) runs :func:`repair` on the live database before anything reads it:
  every bad row, or bad entry inside a row's JSON value, is moved to the ``quarantine`` table
  (nothing a person saved is deleted), and Burrow starts with the rest.

    ctx = Context(config, data_dir, local_dirs)
    problems = check(db, ctx, users=True)   # [] when every row passes the API's validators
    problems += load(db, ctx)               # [] when Burrow's own loaders open the state
    moved, reported = repair(db, ctx)       # start-up: quarantine what would break loading

Every check reuses the validator the API applies to the same data (``Groups.check_groups``,
``parse_client``, ``userlists.classify``, ``PolicyRule``, ``ForwardRule``, the config options,
``check_rule``, the list store's field validators, ``validate_record``, ``Zone.validate``, the
auth service's user checks); nothing here restates their rules. A :class:`Problem` names the
table, the row (settings key or id), the field (a column, or a path inside a JSON value) and
the reason, so an error message points at the exact thing to fix.

What a start moves aside: whatever is *movable* — a bad row, or only the bad entry of a row
whose JSON value is a list or object (one mistyped client does not take the other clients with
it). Problems that do not keep anything from loading and that a person may have caused on
purpose elsewhere (a list source outside ``local_list_dirs`` after the config changed, a zone
whose records no longer form a complete zone, a runtime override clashing with burrow.toml)
are only reported. Accounts are never moved at start: removing the last admin would reopen the
first-run setup to anyone on the LAN.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from .storage.settings import MAX_DEPTH, decode, depth  # noqa: F401 (stored JSON, read bounded)

log = logging.getLogger(__name__)

MAX_REPORTED = 50  # problems listed in an error or logged one by one; the rest are counted
REPAIR_PASSES = 4  # check → move aside, again while something moved (bounded)


@dataclass(frozen=True)
class Problem:
    """One thing in the stored state the API would refuse (or Burrow cannot load)."""

    table: str
    row: str | None  # settings key, "id=5", or None for the table as a whole
    field: str | None  # column, or a path inside a JSON value ("[2].client")
    message: str
    rowid: int | None = None  # SQLite rowid, to move the row aside
    entry: tuple = ()  # path of the bad entry inside the row's JSON value; () = the whole row
    movable: bool = True  # quarantined at start (False: reported only)

    def where(self) -> str:
        parts = [f"table {self.table}"]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.field:
            parts.append(f"field {self.field}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}"

    def as_dict(self) -> dict:
        return {"table": self.table, "row": self.row, "field": self.field, "message": self.message}


@dataclass
class Context:
    """What validation needs besides the database: the configuration runtime overrides are
    applied over (file + environment), the data dir and the allowed local list folders."""

    config: Any
    data_dir: Path | None = None
    local_dirs: list = field(default_factory=list)

    @property
    def lists_dir(self) -> Path | None:
        return None if self.data_dir is None else Path(self.data_dir) / "lists"


def context(config, data_dir: Path | None) -> Context:
    """The Context of a Burrow run from ``config`` (file + environment, before runtime
    overrides) on ``data_dir``."""
    local_dirs = [str(Path(data_dir) / "lists")] if data_dir is not None else []
    local_dirs += list(config["filtering.local_list_dirs"])
    return Context(config, None if data_dir is None else Path(data_dir), local_dirs)


# ---- settings rows ----------------------------------------------------------------------------

class Bad(NamedTuple):
    """A problem inside one settings value: ``entry`` is the path to move aside (() = all)."""

    entry: tuple
    field: str | None
    message: str
    movable: bool = True


def _path(entry: tuple) -> str | None:
    out = ""
    for part in entry:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _field(entry: tuple, name: str | None) -> str | None:
    base = _path(entry)
    if name is None:
        return base
    return f"{base}.{name}" if base else name


class _Groups:
    """The client groups named in the settings being checked: group references elsewhere are
    checked with ``Groups.check_groups``, as the API checks them. ``None`` when the groups row
    itself is unreadable: references are then not judged (they would all fail at once)."""

    def __init__(self, stored):
        from .filtering.groups import Groups
        self.groups = None if stored is None else Groups(_Values({"groups": stored, "clients": []}))

    def check(self, names, field: str, allow_empty: bool = False) -> str | None:
        """None if fine, else the API's message."""
        from .filtering.groups import GroupError
        if self.groups is None:
            return None
        try:
            self.groups.check_groups(names, field, allow_empty=allow_empty)
        except GroupError as e:
            return e.message
        return None


class _Values:
    """A stand-in settings store holding given values (components read them with ``get``)."""

    def __init__(self, values: dict):
        self.values = values

    def get(self, key, default=None):
        return self.values.get(key, default)


def _whole(value, low: int = 0) -> bool:
    """A whole number ≥ ``low`` (JSON true/false are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _each(value, what: str, check, cap: int | None = None, *, id_low: int | None = None,
          base: tuple = ()) -> Iterator[Bad]:
    """Check a stored list of objects (at ``base`` inside the row's value): a Bad for the list
    (the whole row) if it is not one, for each entry that is not an object (or, with ``id_low``,
    whose ``id`` is not a whole number ≥ id_low used once) and past ``cap``; every other entry
    goes to ``check(path, entry)``, which yields its own Bads."""
    if not isinstance(value, list):
        yield Bad((), _path(base), f"must be a list of {what}")
        return
    ids = set()
    for i, entry in enumerate(value):
        here = base + (i,)
        if not isinstance(entry, dict):
            yield Bad(here, _path(here), "each entry must be an object")
        elif id_low is not None and (not _whole(entry.get("id"), id_low) or entry["id"] in ids):
            yield Bad(here, _field(here, "id"), f"must be a whole number ≥ {id_low}, used once")
        else:
            if id_low is not None:
                ids.add(entry["id"])
            yield from check(here, entry)
    for i in range(cap if cap is not None else len(value), len(value)):
        yield Bad(base + (i,), None, f"more than {cap} {what}")  # the ones the API would have refused


def _check_groups(value, env) -> Iterator[Bad]:
    from .filtering.groups import DEFAULT, MAX_GROUPS, GroupError, _description, check_group_name
    seen = set()

    def one(here, g):
        try:
            name = check_group_name(g.get("name"))
            if name != g.get("name") or name == DEFAULT:
                raise GroupError("name", f"{g.get('name')!r} is not a group name the API stores")
            _description(g.get("description"))
        except GroupError as e:
            yield Bad(here, _field(here, e.field), e.message)
            return
        if name in seen:
            yield Bad(here, _field(here, "name"), f"group {name!r} appears twice")
        seen.add(name)
    return _each(value, "groups", one, MAX_GROUPS)


def _check_clients(value, env) -> Iterator[Bad]:
    from .filtering.groups import MAX_CLIENTS, GroupError, _description, parse_client
    nets = set()

    def one(here, c):
        try:
            net = parse_client(c.get("client"))
            _description(c.get("name"), "name")
        except GroupError as e:
            yield Bad(here, _field(here, e.field), e.message)
            return
        problem = env.groups.check(c.get("groups"), "groups")
        if problem:
            yield Bad(here, _field(here, "groups"), problem)
        elif net in nets:
            yield Bad(here, _field(here, "client"), f"{net} has two client entries")
        else:
            nets.add(net)
    return _each(value, "client entries", one, MAX_CLIENTS, id_low=1)


def _check_userlist(value, env) -> Iterator[Bad]:
    from .filtering.userlists import MAX_ENTRIES, classify
    if not isinstance(value, list):
        yield Bad((), None, "must be a list of entries")
        return
    seen = set()
    for i, e in enumerate(value):
        here = (i,)
        text = e.get("domain") if isinstance(e, dict) else e
        if not isinstance(text, str) or (isinstance(e, dict) and set(e) - {"domain", "groups"}):
            yield Bad(here, None, "an entry is a domain, wildcard or regex, or {domain, groups}")
            continue
        try:
            _kind, norm = classify(text)
        except ValueError as err:
            yield Bad(here, _field(here, "domain"), str(err))
            continue
        if isinstance(e, dict):
            problem = env.groups.check(e.get("groups"), "groups")
            if problem:
                yield Bad(here, _field(here, "groups"), problem)
                continue
        if norm in seen:
            yield Bad(here, None, f"{norm} appears twice")
            continue
        seen.add(norm)
    for i in range(MAX_ENTRIES, len(value)):
        yield Bad((i,), None, f"more than {MAX_ENTRIES} entries")


def _check_pause(value, env) -> Iterator[Bad]:
    import math

    def one(p, fields=("until", "indefinite")) -> str | None:
        if not isinstance(p, dict) or set(p) - set(fields):
            return "a pause is an object {until, indefinite}"
        until = p.get("until")
        if until is not None and (isinstance(until, bool) or not isinstance(until, (int, float))
                                  or not math.isfinite(until)):
            return "until must be a time in unix seconds or null"
        if not isinstance(p.get("indefinite", False), bool):
            return "indefinite must be true or false"
        return None

    problem = one(value, ("until", "indefinite", "groups"))
    if problem:
        yield Bad((), None, problem)
        return
    groups = value.get("groups") or {}
    if not isinstance(groups, dict):
        yield Bad(("groups",), "groups", "must be an object: group name → pause")
        return
    for name, p in groups.items():
        here = ("groups", name)
        problem = one(p) or env.groups.check([name], "groups")
        if problem:
            yield Bad(here, _path(here), problem)


def _check_policies(value, env) -> Iterator[Bad]:
    # The policy package's own rule validation (the API's body schema has the same limits).
    from .policy import PolicyError, PolicyRule
    from .policy.store import MAX_RULES

    def one(here, data):
        try:
            PolicyRule.from_dict({k: v for k, v in data.items() if k != "id"}, id=data["id"])
        except PolicyError as e:
            yield Bad(here, _field(here, getattr(e, "field", None)), str(e))
    return _each(value, "policy rules", one, MAX_RULES, id_low=0)


def _check_whole_number(value, env) -> Iterator[Bad]:
    if not _whole(value):
        yield Bad((), None, "must be a whole number ≥ 0")


def _check_bool(value, env) -> Iterator[Bad]:
    if not isinstance(value, bool):
        yield Bad((), None, "must be true or false")


def _check_forward_rules(value, env) -> Iterator[Bad]:
    from .forwarding.rules import FIELDS, MAX_RULES, ForwardRule, ForwardRuleError
    names = set()

    def one(here, data):
        extra = sorted(set(data) - set(FIELDS))
        if extra:
            yield Bad(here, _field(here, str(extra[0])), "unknown field")
            return
        try:
            rule = ForwardRule(data)
        except ForwardRuleError as e:
            yield Bad(here, _field(here, e.field or None), str(e))
            return
        if rule.name in names:
            yield Bad(here, _field(here, "name"), f"a second rule named {rule.name!r}")
        names.add(rule.name)
    return _each(value, "forwarding rules", one, MAX_RULES)


def _check_router_preset(value, env) -> Iterator[Bad]:
    from .forwarding.rules import ForwardRuleError, router_preset_rule
    if not isinstance(value, dict) or set(value) - {"router", "domain", "network"} \
            or not all(isinstance(v, str) for v in value.values()):
        yield Bad((), None, "must be an object {router, domain, network} of texts")
        return
    if value.get("router"):
        try:
            router_preset_rule(value["router"], value.get("domain"), value.get("network") or None)
        except (ForwardRuleError, ValueError) as e:
            yield Bad((), getattr(e, "field", None), str(e))


def _check_overrides(value, env) -> Iterator[Bad]:
    from .config import ConfigError
    from .config.schema import BY_KEY
    from .runtime_config import RUNTIME_KEYS
    if not isinstance(value, dict):
        yield Bad((), None, "must be an object of dotted option names")
        return
    good = {}
    for key, v in value.items():
        if key not in RUNTIME_KEYS:
            yield Bad((key,), key, "is not an option that can be changed at runtime")
            continue
        try:
            BY_KEY[key].validate(v)  # the config file's own validator for the option
        except ValueError as e:
            yield Bad((key,), key, str(e))
            continue
        good[key] = v
    try:
        env.ctx.config.with_overrides(good)
    except ConfigError as e:
        # Only a clash with burrow.toml's values (e.g. min_ttl above the file's max_ttl): the
        # start skips it with a warning, a restore refuses it.
        for key, message in e.errors:
            yield Bad((key,) if key in good else (), key, message, movable=False)


def _check_rpz(key: str, value, env) -> Iterator[Bad]:
    from .filtering.rpz import MAX_RULES, RpzError, check_name, check_rule
    zone_id = key.rsplit(".", 1)[-1]
    if not zone_id.isdigit() or not 1 <= int(zone_id) <= 64:
        yield Bad((), None, "names no filter list (1..64)")
        return
    if int(zone_id) not in env.rpz_lists:
        yield Bad((), None, f"filter list {zone_id} is not an RPZ zone made by hand")
        return
    if not isinstance(value, dict) or set(value) - {"origin", "serial", "rules", "next_id", "file"}:
        yield Bad((), None, "must be an object {origin, serial, rules, next_id, file}")
        return
    try:
        origin = value.get("origin")
        check_name(origin if isinstance(origin, str) else "", "origin")
    except RpzError as e:
        yield Bad((), e.field, e.message)
        return
    for name in ("serial", "next_id"):
        if not _whole(value.get(name)):
            yield Bad((), name, "must be a whole number ≥ 0")
            return

    def one(here, r):
        if set(r) - {"id", "trigger", "action", "data"} or r["id"] >= value["next_id"]:
            yield Bad(here, _path(here), "a rule is {id (below next_id), trigger, action, data}")
            return
        try:
            check_rule(r.get("trigger"), r.get("action"), r.get("data", ""))
        except RpzError as e:
            yield Bad(here, _field(here, e.field), e.message)
    yield from _each(value.get("rules"), "rules", one, MAX_RULES, id_low=1, base=("rules",))
    file = value.get("file")
    if file is not None and not _own_zone_file(file, env.ctx):
        # Burrow writes this file: only its own rpz-*.zone in the lists folder (moving the
        # entry aside makes it fall back to lists/rpz-<id>.zone).
        yield Bad(("file",), "file", "must be an rpz-*.zone file in Burrow's lists folder")


_ZONE_FILE_RE = re.compile(r"^rpz-[0-9A-Za-z]{1,32}\.zone$")


def _own_zone_file(path, ctx: Context) -> bool:
    if not isinstance(path, str) or "\0" in path or ctx.lists_dir is None:
        return False
    folder = os.path.realpath(ctx.lists_dir)
    return (os.path.dirname(os.path.realpath(path)) == folder
            and _ZONE_FILE_RE.match(os.path.basename(path)) is not None)


# key → checker(value, env); rpz.rules.<id> is matched by prefix.
_KEY_CHECKS: dict[str, Callable] = {
    "config.overrides": _check_overrides,
    "groups": _check_groups,
    "clients": _check_clients,
    "filtering.whitelist": _check_userlist,
    "filtering.denylist": _check_userlist,
    "blocking.pause": _check_pause,
    "policies": _check_policies,
    "policies.next_id": _check_whole_number,
    "forwarding.rules": _check_forward_rules,
    "forwarding.enabled": _check_bool,
    "forwarding.preset.router": _check_router_preset,
}
RPZ_PREFIX = "rpz.rules."


class _Env:
    def __init__(self, ctx: Context, groups: _Groups, rpz_lists: set):
        self.ctx = ctx
        self.groups = groups
        self.rpz_lists = rpz_lists


def _settings_problems(conn, ctx: Context) -> tuple[list[Problem], _Groups]:
    """(problems of the settings rows, the client groups they define)."""
    problems, values = [], {}
    for rowid, key, raw in conn.execute("SELECT rowid, key, value FROM settings ORDER BY rowid"):
        try:
            values[key] = (rowid, decode(raw))
        except ValueError as e:
            problems.append(Problem("settings", key, "value", str(e), rowid))
    try:
        rpz_lists = {r[0] for r in conn.execute("SELECT id FROM lists WHERE format = 'rpz'")}
    except sqlite3.Error:
        rpz_lists = set()
    env = _Env(ctx, _Groups(_known_groups(values, problems)), rpz_lists)
    for key, (rowid, value) in values.items():
        if key.startswith(RPZ_PREFIX):
            found = _check_rpz(key, value, env)
        elif key in _KEY_CHECKS:
            found = _KEY_CHECKS[key](value, env)
        else:
            continue  # a key no loader reads: valid JSON is all it needs
        for bad in found:
            problems.append(Problem("settings", key, bad.field or (None if bad.entry else "value"),
                                    bad.message, rowid, bad.entry, bad.movable))
    return problems, env.groups


def _known_groups(values: dict, problems: list) -> list | None:
    """The valid entries of the ``groups`` row; None when the row is unreadable."""
    if "groups" not in values:
        return None if any(p.row == "groups" for p in problems) else []
    stored = values["groups"][1]
    if not isinstance(stored, list):
        return None
    bad = {b.entry[0] for b in _check_groups(stored, None) if b.entry}
    return [g for i, g in enumerate(stored) if i not in bad]


# ---- tables -----------------------------------------------------------------------------------

def _rows(conn, table: str) -> list[dict]:
    cur = conn.execute(f'SELECT rowid AS _rowid, * FROM "{table}" ORDER BY rowid')
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _lists_problems(conn, ctx: Context, groups: _Groups) -> list[Problem]:
    from .filtering import sources as s
    problems = []
    for row in _rows(conn, "lists"):
        def bad(field, message, movable=True):
            problems.append(Problem("lists", f"id={row['id']}", field, message, row["_rowid"], (), movable))  # noqa: B023 - called within this iteration
        try:
            s._validate_name(row["name"])
            s._validate_kind(row["kind"])
            s._validate_format(row["format"])
            s._validate_mode(row["mode"])
            s._validate_interval(row["update_interval"])
            if row["enabled"] not in (0, 1):
                raise s.ListValidationError("enabled", "must be 0 or 1")
        except s.ListValidationError as e:
            bad(e.field, e.reason)
            continue
        try:
            names = s._validate_groups(decode(row["groups"]))
        except ValueError as e:
            bad("groups", getattr(e, "reason", str(e)))
            continue
        problem = groups.check(names, "groups", allow_empty=True)
        if problem:
            bad("groups", problem)
            continue
        if row["skipped"] is not None:
            try:
                decode(row["skipped"])
            except ValueError as e:
                bad("skipped", str(e))
                continue
        try:
            s.validate_source(row["source"], ctx.local_dirs)
        except s.ListValidationError as e:
            # The list manager re-checks a local source at every read, and the allowed folders
            # are burrow.toml's: a start only reports it.
            bad("source", e.reason, movable=False)
    return problems


def _zones_problems(conn) -> list[Problem]:
    from .zones.authority import Zone
    from .zones.records import Record
    from .zones.store import LOCAL_NAME, LOCAL_ORIGIN, LOCAL_TYPES, MAX_ZONE_RECORDS, MAX_ZONES, \
        StoreError, _check_local, check_primaries
    from .zones.validate import RecordError, absolute, in_zone, normalize_origin, resolve_name, \
        validate_record, validate_ttl
    problems = []
    zones: dict[int, tuple[str, str, list[Any]]] = {}
    for row in _rows(conn, "zones"):
        def bad(field, message):
            problems.append(Problem("zones", f"id={row['id']}", field, message, row["_rowid"]))  # noqa: B023 - called within this iteration
        name, ztype = row["name"], row["type"]
        try:
            prims = decode(row["primaries"])
        except ValueError as e:
            bad("primaries", str(e))
            continue
        if ztype == "local":
            if name != LOCAL_ORIGIN or prims:
                bad("name", "the local zone is the one named '' without primaries")
                continue
        else:
            try:
                if not isinstance(name, str) or normalize_origin(name) != name or name == LOCAL_NAME:
                    raise RecordError(f"{name!r} is not a zone name the API stores", "name")
                if ztype == "slave":
                    check_primaries(prims)
                elif prims:
                    raise StoreError("only slave zones have primaries", field="primaries")
            except (RecordError, StoreError) as e:
                bad(e.field, e.message)
                continue
        if len(zones) >= MAX_ZONES + 1:  # the local zone does not count
            bad(None, f"more than {MAX_ZONES} zones")
            continue
        zones[row["id"]] = (name, ztype, [])
    for row in _rows(conn, "zone_records"):
        def bad(field, message):
            problems.append(Problem("zone_records", f"id={row['id']}", field, message, row["_rowid"]))  # noqa: B023 - called within this iteration
        zone = zones.get(row["zone_id"])
        if zone is None:
            bad("zone_id", "belongs to no valid zone")
            continue
        origin, ztype, kept = zone
        record = Record(row["name"], row["type"], row["ttl"], row["value"])
        try:
            if ztype == "slave":
                # A transfer keeps every type the primary serves (DNSKEY, RRSIG, RFC 3597 \#):
                # no API writes these, so only what the snapshot relies on is checked.
                if not (isinstance(record.type, str) and isinstance(record.value, str)
                        and in_zone(resolve_name(absolute(str(record.name)), None, wildcard=True), origin)):
                    raise RecordError(f"{record.name!r} is not a record of zone {origin}", "name")
                validate_ttl(record.ttl)
            else:
                record = validate_record(record, None if ztype == "local" else origin)
            if ztype == "local" and record.type not in LOCAL_TYPES:
                raise RecordError(f"local records are A, AAAA or CNAME, not {record.type}", "type")
        except RecordError as e:
            bad(e.field, e.message)
            continue
        if len(kept) >= MAX_ZONE_RECORDS:
            bad(None, f"more than {MAX_ZONE_RECORDS} records in one zone")
            continue
        kept.append(record)
    for zid, (origin, ztype, records) in zones.items():
        # The zone as a whole (one SOA, apex NS, CNAME alone, ...): answered as stored if broken,
        # so a start only reports it; a restore refuses it.
        try:
            if ztype == "master":
                Zone(origin, records).validate(require_glue=True)
            elif ztype == "local":
                _check_local(records)
        except RecordError as e:
            problems.append(Problem("zones", f"id={zid}", e.field, f"zone {origin or LOCAL_NAME}: "
                                    f"{e.message}", None, (), False))
    return problems


def _users_problems(conn) -> list[Problem]:
    from .auth.errors import InvalidInputError
    from .auth.passwords import _parse as parse_hash
    from .auth.service import validate_role, validate_username
    problems = []
    enabled_admins = 0
    for row in _rows(conn, "auth_users"):
        def bad(field, message):
            problems.append(Problem("auth_users", f"id={row['id']}", field, message, row["_rowid"], (),  # noqa: B023 - called within this iteration
                                    False))
        try:
            validate_username(row["username"])
            validate_role(row["role"])
        except InvalidInputError as e:
            bad(getattr(e, "field", None), str(e))
            continue
        try:
            parse_hash(row["password_hash"])
        except (ValueError, KeyError, TypeError, AttributeError):
            bad("password_hash", "is not a password hash Burrow can check")
            continue
        if row["disabled"] not in (0, 1) or row["totp_enabled"] not in (0, 1):
            bad("disabled", "disabled and totp_enabled must be 0 or 1")
            continue
        if row["totp_enabled"] and not _base32(row["totp_secret"]):
            bad("totp_secret", "2FA is on but the secret is not base32")
            continue
        if row["role"] == "admin" and not row["disabled"]:
            enabled_admins += 1
    if not problems and enabled_admins == 0:
        users = conn.execute("SELECT count(*) FROM auth_users").fetchone()[0]
        problems.append(Problem(
            "auth_users", None, None,
            "the restore would leave no account at all: the first-run setup would open to anyone "
            "on the network" if users == 0 else
            "the restore would leave no enabled admin account: nobody could change anything",
            None, (), False))
    return problems


def _base32(text) -> bool:
    import base64
    import binascii
    if not isinstance(text, str) or not text:
        return False
    try:
        base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return False
    return True


def _table_exists(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (name,)).fetchone() is not None


def check(db, ctx: Context, *, users: bool = False) -> list[Problem]:
    """Every problem in ``db``'s stored state, by the API's own validators (reads only).

    ``users``: also the accounts (a restore with include_users), including that at least one
    enabled admin remains."""
    conn = db.conn
    problems, groups = _settings_problems(conn, ctx)
    if _table_exists(conn, "lists"):
        problems += _lists_problems(conn, ctx, groups)
    if _table_exists(conn, "zones"):
        problems += _zones_problems(conn)
    if users and _table_exists(conn, "auth_users"):
        problems += _users_problems(conn)
    return problems


# ---- opening it as Burrow does ----------------------------------------------------------------

def _loaders(ctx: Context) -> list[tuple[str, list[tuple[str, str | None]], Callable]]:
    """(what, the rows it reads as (table, settings key or None for every row), load(db)):
    the same constructors App.build calls (and whose reload() App.reload_settings calls)."""
    from . import runtime_config
    from .dns.stages.policy import PolicyStage
    from .filtering.groups import Groups
    from .filtering.pause import BlockingPause
    from .filtering.rpz import HandZones, render_zone
    from .filtering.sources import ListStore
    from .filtering.userlists import UserList
    from .forwarding import ForwardRules
    from .zones.localdata import LocalData
    from .zones.store import ZoneStore

    def hand_zones(db):
        hand = HandZones(db, str(ctx.lists_dir or "."))
        for row in ListStore(db, ctx.local_dirs).list():
            if row["format"] == "rpz" and hand.is_hand(row["id"]):
                state = hand.state(row["id"])
                render_zone(state["origin"], state["rules"], state["serial"])
                hand.path(row["id"])

    def zones(db):
        store = ZoneStore(db)
        store.zones()
        LocalData.from_store(store)

    return [
        ("runtime settings", [("settings", "config.overrides")],
         lambda db: runtime_config.load_overrides(ctx.config, db)),
        ("allow list", [("settings", "filtering.whitelist")], lambda db: UserList(db, "filtering.whitelist")),
        ("deny list", [("settings", "filtering.denylist")], lambda db: UserList(db, "filtering.denylist")),
        ("blocking pause", [("settings", "blocking.pause")], BlockingPause),
        ("policies", [("settings", "policies")], lambda db: PolicyStage().load(db.get("policies", []))),
        ("client groups", [("settings", "groups"), ("settings", "clients")], Groups),
        ("conditional forwarding", [("settings", "forwarding.rules"), ("settings", "forwarding.enabled")],
         ForwardRules),
        ("filter lists", [("lists", None)], lambda db: ListStore(db, ctx.local_dirs).list()),
        ("RPZ zones made by hand", [("settings", RPZ_PREFIX)], hand_zones),
        ("local records and zones", [("zones", None), ("zone_records", None)], zones),
    ]


def load(db, ctx: Context) -> list[Problem]:
    """Open ``db``'s state with Burrow's own loaders; a Problem per loader that fails (the rows
    it reads are named, and at start moved aside as a whole: the last resort when :func:`check`
    missed something). May write what a start writes (the implicit local zone)."""
    problems = []
    for what, sources, fn in _loaders(ctx):
        try:
            fn(db)
        except Exception as e:  # whatever it is, Burrow must not fail on it at start
            log.debug("loading %s failed", what, exc_info=True)
            for table, key in sources:
                problems.append(Problem(table, key, None, f"Burrow cannot load the {what}: "
                                        f"{type(e).__name__}: {e}"))
    return problems


# ---- moving aside -----------------------------------------------------------------------------

# Created when something is first moved aside, not by a migration: the schema version (which a
# backup must match) stays the same, so backups made before keep restoring. Never backed up.
QUARANTINE_SQL = """
    CREATE TABLE IF NOT EXISTS quarantine (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,              -- unix seconds
        source TEXT NOT NULL,          -- the table the row came from
        row_key TEXT,                  -- settings key, or id=...
        entry TEXT,                    -- JSON path of an entry taken out of the value; NULL: the row
        content TEXT NOT NULL,         -- JSON: the row {column: value}, or the entry's value
        reason TEXT NOT NULL
    )
"""

def _sort_key(path: tuple) -> tuple:
    return tuple((0, p) if isinstance(p, int) else (1, str(p)) for p in path)


def _take(value: Any, path: tuple) -> Any:
    """Remove and return the entry at ``path`` inside ``value`` (lists shift: callers take the
    highest indexes first)."""
    node = value
    for part in path[:-1]:
        node = node[part]
    return node.pop(path[-1])


def _row_content(conn, table: str, rowid: int) -> dict | None:
    from .storage.settings import encode_value  # blobs as {"$b64": ...}
    cur = conn.execute(f'SELECT * FROM "{table}" WHERE rowid = ?', (rowid,))
    row = cur.fetchone()
    if row is None:
        return None
    content = {d[0]: encode_value(v) for d, v in zip(cur.description, row)}
    if table == "zones":  # deleting a zone cascades to its records: keep them with it
        cur = conn.execute("SELECT * FROM zone_records WHERE zone_id = ? ORDER BY id", (content["id"],))
        content["records"] = [dict(zip([d[0] for d in cur.description], r)) for r in cur.fetchall()]
    return content


def quarantine(db, problems: list[Problem], now: float | None = None) -> list[tuple[Problem, int]]:
    """Move every movable problem's row (or entry) into the ``quarantine`` table, in one
    transaction. Returns (problem, quarantine id) for each thing moved."""
    now = time.time() if now is None else now
    by_row: dict[tuple[str, int], list[Problem]] = {}
    for p in problems:
        if p.movable and p.rowid is not None:
            by_row.setdefault((p.table, p.rowid), []).append(p)
    moved: list[tuple[Problem, int]] = []
    if not by_row:
        return moved
    with db.transaction() as conn:
        conn.execute(QUARANTINE_SQL)
        for (table, rowid), found in by_row.items():
            whole = [p for p in found if not p.entry]
            if whole or table != "settings":
                content = _row_content(conn, table, rowid)
                if content is None:
                    continue
                reason = "; ".join(str(p) for p in (whole or found))
                qid = conn.execute(
                    "INSERT INTO quarantine (at, source, row_key, entry, content, reason) VALUES (?, ?, ?, NULL, ?, ?)",
                    (now, table, found[0].row, json.dumps(content, ensure_ascii=False), reason[:2000])).lastrowid
                conn.execute(f'DELETE FROM "{table}" WHERE rowid = ?', (rowid,))
                moved += [(p, qid) for p in found]
                continue
            key, raw = conn.execute("SELECT key, value FROM settings WHERE rowid = ?", (rowid,)).fetchone()
            value = json.loads(raw)
            paths = sorted({p.entry for p in found}, key=_sort_key, reverse=True)
            # An entry inside another that goes too is moved with it.
            paths = [q for q in paths if not any(q != o and q[:len(o)] == o for o in paths)]
            for path in paths:
                taken = _take(value, path)
                reason = "; ".join(str(p) for p in found if p.entry == path or p.entry[:len(path)] == path)
                qid = conn.execute(
                    "INSERT INTO quarantine (at, source, row_key, entry, content, reason) VALUES (?, ?, ?, ?, ?, ?)",
                    (now, table, key, json.dumps(list(path)), json.dumps(taken, ensure_ascii=False),
                     reason[:2000])).lastrowid
                moved += [(p, qid) for p in found if p.entry[:len(path)] == path]
            db.set(key, value)
    return moved


def repair(db, ctx: Context) -> tuple[list[tuple[Problem, int]], list[Problem]]:
    """At start: check, move aside what is movable, then open the state as Burrow does and move
    aside whatever a loader still cannot read. Returns (moved as (problem, quarantine id),
    problems only reported). Never raises for what it finds."""
    moved: list[tuple[Problem, int]] = []
    for _ in range(REPAIR_PASSES):  # moving a row aside can orphan another (an RPZ zone's rules)
        problems = check(db, ctx)
        reported = [p for p in problems if not p.movable or p.rowid is None]
        now_moved = quarantine(db, problems)
        moved += now_moved
        if not now_moved:
            break
    failed = load(db, ctx)
    if failed:
        rows = []
        for p in failed:
            rows += [Problem(p.table, key, None, p.message, rowid)
                     for rowid, key in _source_rows(db.conn, p.table, p.row)]
        moved += quarantine(db, rows)
        still = load(db, ctx)
        reported += still  # nothing more to move: logged, and the loader's own guard applies
    return moved, reported


def _source_rows(conn, table: str, key: str | None) -> list[tuple[int, str]]:
    if table == "settings":
        if key == RPZ_PREFIX:
            return list(conn.execute("SELECT rowid, key FROM settings WHERE key LIKE 'rpz.rules.%'"))
        return list(conn.execute("SELECT rowid, key FROM settings WHERE key = ?", (key,)))
    return [(r[0], f"id={r[1]}") for r in conn.execute(f'SELECT rowid, rowid FROM "{table}"')]
