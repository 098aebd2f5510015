"""Plan and apply an import: a :class:`~.model.ForeignSetup` against Burrow's current state.

    prepared = prepare(setup, settings_path, ctx)   # worker thread: plan on a scratch copy
    prepared.plan.as_dict()                          # create / change / unchanged / skipped, why
    commit(prepared, settings_db)                    # loop thread: one transaction, or nothing

How it works, and why it is all or nothing:

1. :func:`prepare` copies the live settings database to a scratch file (SQLite's backup API: a
   consistent copy while the service writes) and opens Burrow's own stores over the copy:
   groups and clients, the allow and deny lists, the filter lists, the forwarding rules, the
   local records and the runtime options. Each item of the setup is compared with what the
   store holds (``unchanged`` when equal) and otherwise written through the store's own
   methods, which validate exactly as the API does: an item a store refuses becomes a
   ``skipped`` step with the store's own message, never a half-applied one. What the model
   marks :class:`~.model.Unmapped` is listed as skipped too. Nothing is deleted: an import
   adds and changes, it never removes what a person made in Burrow.
2. The copy is then checked as a start or a restore would check it (burrow.state_check), and
   the rows that differ from the copy's starting point are the import's *delta*.
3. :func:`commit` writes the delta to the live database in ONE transaction, after checking
   that every row it touches still holds what the copy started from (a row the running
   service changed meanwhile, e.g. a list's download status, makes it refuse with 409 and
   change nothing; the caller may prepare again). A dry run stops after step 2.

Importing the same input twice changes nothing the second time: every step is then
``unchanged`` and the delta is empty. The backup restore (burrow/backup.py) is all or nothing
over the same tables, but it replaces whole tables; an import must leave every row it does not
touch as the running service last wrote it, so it applies row by row under the check above.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import backup
from .. import errors as domain
from .model import DEFAULT_GROUP, DomainEntry, ForeignSetup, MigrationError

if TYPE_CHECKING:
    from ..state_check import Context
    from ..storage.settings import SettingsDB

ACTIONS = ("create", "change", "unchanged", "skipped")
AREAS = ("group", "client", "list", "allow", "deny", "record", "forward", "setting", "other")
# The tables an import may write (every store it uses keeps its rows in one of these).
TABLES = ("settings", "lists", "zones", "zone_records")
MAX_STEPS_SHOWN = 2000  # steps answered in full; the counts are always complete


@dataclass
class Step:
    """One line of a plan. ``area``: what kind of thing (group, client, list, allow, deny,
    record, forward, setting, other); ``key``: Burrow's name for it; ``action``: create,
    change, unchanged or skipped; ``why``: the reason, in words; ``origin``: where in the input
    it came from."""

    area: str
    key: str
    action: str
    why: str = ""
    origin: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"area": self.area, "key": self.key, "action": self.action, "why": self.why,
                "origin": self.origin}


@dataclass
class Plan:
    """What an import does (or did): its steps in input order, and whether it was applied."""

    source: str
    steps: list[Step] = field(default_factory=list)
    dry_run: bool = True
    applied: bool = False

    def add(self, area: str, key: str, action: str, why: str = "", origin: str = "") -> Step:
        step = Step(area, key, action, why, origin)
        self.steps.append(step)
        return step

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(ACTIONS, 0)
        for s in self.steps:
            out[s.action] += 1
        return out

    @property
    def changes(self) -> bool:
        return any(s.action in ("create", "change") for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "dry_run": self.dry_run, "applied": self.applied,
                "counts": self.counts(), "truncated": len(self.steps) > MAX_STEPS_SHOWN,
                "steps": [s.as_dict() for s in self.steps[:MAX_STEPS_SHOWN]]}


RowKey = tuple
Rows = dict[RowKey, tuple]


@dataclass
class Prepared:
    """A plan and the rows it changes: ``delta[table] = (key columns, columns, before, after)``
    where ``before`` and ``after`` map a row's key to the whole row (absent: no such row)."""

    plan: Plan
    delta: dict[str, tuple[list[str], list[str], Rows, Rows]] = field(default_factory=dict)


# ---- the scratch copy ----------------------------------------------------------------------------

@contextmanager
def scratch_copy(settings_path) -> Iterator[SettingsDB]:
    """A SettingsDB on a private copy of the live settings database (deleted afterwards)."""
    from ..storage.settings import SettingsDB
    with tempfile.TemporaryDirectory(prefix="burrow-import-") as tmp:
        path = os.path.join(tmp, "settings.db")
        backup.copy_settings(settings_path, path)
        db = SettingsDB(path)
        db.conn.execute("PRAGMA synchronous = OFF")  # a throw-away copy: no fsync per write
        try:
            yield db
        finally:
            db.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _dump(conn: sqlite3.Connection) -> dict[str, tuple[list[str], list[str], Rows]]:
    out = {}
    for table in TABLES:
        columns = backup.columns(conn, table)
        cols = [c.name for c in columns]
        keys = [c.name for c in sorted(columns, key=lambda c: c.pk) if c.pk]  # every TABLES has one
        kidx = [cols.index(k) for k in keys]
        rows = conn.execute(f"SELECT {', '.join(map(_quote, cols))} FROM {_quote(table)}")
        out[table] = (keys, cols, {tuple(r[i] for i in kidx): tuple(r) for r in rows})
    return out


def _delta(before: dict, after: dict) -> dict:
    out = {}
    for table, (keys, cols, old) in before.items():
        new = after[table][2]
        touched = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        if touched:
            out[table] = (keys, cols, {k: old[k] for k in touched if k in old},
                          {k: new[k] for k in touched if k in new})
    return out


# ---- prepare and commit ----------------------------------------------------------------------

def prepare(setup: ForeignSetup, settings_path, ctx: Context) -> Prepared:
    """Plan ``setup`` against the settings at ``settings_path`` (read only; blocking: call it
    on a worker thread). Raises MigrationError when the imported state would not pass the
    checks a start makes (nothing is changed either way)."""
    from .. import state_check
    with scratch_copy(settings_path) as db:
        before = _dump(db.conn)
        plan = Plan(setup.source)
        _Planner(db, ctx, plan).run(setup)
        after = _dump(db.conn)
        problems = [p for p in state_check.check(db, ctx) if p.table in TABLES]
        if not problems:
            problems = state_check.load(db, ctx)
    if problems:
        raise MigrationError(f"the imported settings would not pass Burrow's checks; nothing was "
                             f"imported. First: {problems[0]}")
    return Prepared(plan, _delta(before, after))


def commit(prepared: Prepared, settings_db: SettingsDB) -> None:
    """Write the prepared delta in one transaction (loop thread: the connection's home).
    MigrationError 409 when a row the import touches changed since :func:`prepare` copied it;
    then nothing is written."""
    q = _quote
    with settings_db.transaction() as conn:
        conn.execute("PRAGMA defer_foreign_keys = ON")
        for table, (keys, cols, old, new) in prepared.delta.items():
            where = " AND ".join(f"{q(k)} IS ?" for k in keys)
            for key in old.keys() | new.keys():
                live = conn.execute(f"SELECT {', '.join(map(q, cols))} FROM {q(table)} WHERE {where}",
                                    key).fetchone()
                if (tuple(live) if live is not None else None) != old.get(key):
                    raise MigrationError(f"{table} changed while the import was prepared; nothing "
                                         "was imported (try again)", 409)
            for key in old:
                conn.execute(f"DELETE FROM {q(table)} WHERE {where}", key)
            for row in new.values():
                conn.execute(f"INSERT INTO {q(table)} ({', '.join(map(q, cols))}) "
                             f"VALUES ({', '.join('?' * len(cols))})", row)
        bad = conn.execute("PRAGMA foreign_key_check").fetchall()
        if bad:
            raise MigrationError(f"the import breaks a reference in table {bad[0][0]}; nothing "
                                 "was imported")
    prepared.plan.applied = True
    prepared.plan.dry_run = False


def run_import(setup: ForeignSetup, settings_db: SettingsDB, ctx: Context, *, dry_run: bool) -> Plan:
    """Prepare and (unless ``dry_run``) commit in one call: the command line's way (it owns
    its connection, so it needs no worker thread)."""
    prepared = prepare(setup, settings_db.path, ctx)
    prepared.plan.dry_run = dry_run
    if not dry_run:
        if prepared.delta:
            commit(prepared, settings_db)
        prepared.plan.applied = True  # carried out (when every step was unchanged, it wrote nothing)
    return prepared.plan


# ---- the planner -----------------------------------------------------------------------------

_GROUP_CHARS = re.compile(r"[^a-z0-9_-]+")


def group_slug(name: str) -> str:
    """A Burrow group name for a foreign one: lower case, runs of other characters as '-'."""
    slug = _GROUP_CHARS.sub("-", name.strip().lower()).strip("-_")[:64].rstrip("-_")
    return slug or "group"


def _problem(exc: Exception) -> str:
    if isinstance(exc, domain.DomainError):
        field_ = getattr(exc, "field", None)
        text = exc.summary()
        return f"{field_}: {text}" if field_ and field_ not in text else text
    return str(exc)


_REFUSED = (domain.DomainError, ValueError, KeyError)


class _Planner:
    """Walks a setup item by item against the stores on the scratch copy (see the module doc)."""

    def __init__(self, db: SettingsDB, ctx: Context, plan: Plan):
        from ..filtering.groups import Groups
        from ..filtering.sources import ListStore
        from ..filtering.userlists import UserList
        from ..forwarding import ForwardRules
        from ..zones.store import ZoneStore
        self.db = db
        self.ctx = ctx
        self.plan = plan
        self.groups = Groups(db)
        self.userlists = {"allow": UserList(db, "filtering.whitelist"),
                          "deny": UserList(db, "filtering.denylist")}
        self.lists = ListStore(db, ctx.local_dirs)
        self.forwarding = ForwardRules(db)
        self.zones = ZoneStore(db)
        self.group_map: dict[str, str | None] = {}  # foreign name → Burrow name (None: skipped)
        self.known: dict[str, dict[str, list[str]]] = {}  # see _known
        self.pending: dict[str, list[tuple[str, list[str] | None]]] = {"allow": [], "deny": []}
        self.adding: set[tuple[str, str]] = set()  # (list, entry) the import adds: a repeat is noted

    def run(self, setup: ForeignSetup) -> None:
        self._groups(setup)
        self._clients(setup)
        self._lists(setup)
        for entry in setup.entries:
            self._entry(entry)
        self._write_entries()
        self._records(setup)
        self._forwards(setup)
        self._settings(setup)
        for item in setup.unmapped:
            self.plan.add("other", item.what, "skipped", item.why, item.origin)

    # ---- groups and clients ------------------------------------------------------------------

    def _groups(self, setup: ForeignSetup) -> None:
        taken: set[str] = set()
        for g in setup.groups:
            if g.is_default:
                self.group_map[g.name] = DEFAULT_GROUP
                self.plan.add("group", DEFAULT_GROUP, "unchanged",
                              f"{g.name!r} is the catch-all group: Burrow's built-in default group",
                              g.origin)
                continue
            if not g.enabled:
                self.group_map[g.name] = None
                self.plan.add("group", g.name, "skipped", "disabled there: Burrow groups cannot be "
                              "switched off, so it and its links are left out", g.origin)
                continue
            name = base = group_slug(g.name)
            n = 2
            while name in taken or name == DEFAULT_GROUP:
                name = f"{base[:60]}-{n}"
                n += 1
            taken.add(name)
            renamed = f" (named {name!r}: Burrow group names are lower-case letters, digits, "\
                      "'-' and '_')" if name != g.name else ""
            try:
                if self.groups.exists(name):
                    current = self.groups.group(name)
                    if (current.get("description") or "") == (g.description or "").strip():
                        self.plan.add("group", name, "unchanged", "exists already" + renamed, g.origin)
                    else:
                        self.groups.update_group(name, g.description or "")
                        self.plan.add("group", name, "change", "description updated" + renamed, g.origin)
                else:
                    self.groups.add_group(name, g.description or "")
                    self.plan.add("group", name, "create", "new group" + renamed, g.origin)
                self.group_map[g.name] = name
            except _REFUSED as e:
                self.group_map[g.name] = None
                self.plan.add("group", g.name, "skipped", _problem(e), g.origin)

    def _map_groups(self, names: list[str] | None) -> tuple[list[str] | None, list[str]]:
        """(Burrow group names or None for every group, foreign names left out)."""
        if names is None:
            return None, []
        out, dropped = [], []
        for n in names:
            mapped = self.group_map.get(n)
            if mapped is None:
                dropped.append(n)
            elif mapped not in out:
                out.append(mapped)
        return out, dropped

    def _clients(self, setup: ForeignSetup) -> None:
        from ..filtering.groups import parse_client
        for c in setup.clients:
            groups, dropped = self._map_groups(c.groups)
            for ident in c.ids:
                try:
                    net = parse_client(ident)
                except _REFUSED:
                    self.plan.add("client", ident, "skipped",
                                  "Burrow recognises clients by IP address or CIDR only (not by "
                                  "MAC address, host name, interface or client ID)", c.origin)
                    continue
                key = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
                if not groups:
                    self.plan.add("client", key, "skipped", "in no group Burrow has"
                                  + (f" ({', '.join(dropped)} left out)" if dropped else ""), c.origin)
                    continue
                note = f"; left out: {', '.join(dropped)}" if dropped else ""
                existing = next((e for e in self.groups.clients if parse_client(e["client"]) == net), None)
                try:
                    if existing is None:
                        self.groups.add_client(key, groups, c.name)
                        self.plan.add("client", key, "create", f"in {', '.join(groups)}{note}", c.origin)
                    elif sorted(existing["groups"]) == sorted(groups) and existing["name"] == c.name.strip():
                        self.plan.add("client", key, "unchanged", "exists with the same groups", c.origin)
                    else:
                        self.groups.update_client(existing["id"], {"groups": groups, "name": c.name})
                        self.plan.add("client", key, "change", f"now in {', '.join(groups)}{note}", c.origin)
                except _REFUSED as e:
                    self.plan.add("client", key, "skipped", _problem(e), c.origin)

    # ---- lists and entries -------------------------------------------------------------------

    def _lists(self, setup: ForeignSetup) -> None:
        from ..filtering.sources import MAX_NAME
        for fl in setup.lists:
            url = fl.url.strip()
            groups, dropped = self._map_groups(fl.groups)
            if groups == [] and fl.groups is not None:
                self.plan.add("list", url, "skipped", "assigned to no group Burrow has (it applies to no "
                              "client there)" + (f"; left out: {', '.join(dropped)}" if dropped else ""),
                              fl.origin)
                continue
            wanted = {"kind": fl.kind, "enabled": fl.enabled, "groups": groups or []}
            existing = next((row for row in self.lists.list() if row["source"] == url), None)
            try:
                if existing is not None:
                    changes = {k: v for k, v in wanted.items() if existing.get(k) != v}
                    if not changes:
                        self.plan.add("list", existing["name"], "unchanged", f"{url} is subscribed already",
                                      fl.origin)
                    else:
                        self.lists.update(existing["id"], changes)
                        self.plan.add("list", existing["name"], "change",
                                      "updated: " + ", ".join(sorted(changes)), fl.origin)
                    continue
                name = _list_name(fl.name, url, MAX_NAME)
                base, n = name, 2
                while self.lists.get_by_name(name) is not None:
                    name = f"{base[:MAX_NAME - 6]} ({n})"
                    n += 1
                self.lists.create(name, url, kind=fl.kind, groups=groups or [], enabled=fl.enabled)
                why = f"{fl.kind} list" + ("" if fl.enabled else ", switched off as it was")
                if dropped:
                    why += f"; left out: {', '.join(dropped)}"
                self.plan.add("list", name, "create", why, fl.origin)
            except _REFUSED as e:
                self.plan.add("list", url, "skipped", _problem(e), fl.origin)

    def _entry(self, entry: DomainEntry) -> None:
        area = entry.action
        if not entry.enabled:
            self.plan.add(area, entry.value, "skipped", "disabled there: Burrow's allow and deny "
                          "entries have no off switch", entry.origin)
            return
        groups, dropped = self._map_groups(entry.groups)
        if groups == [] and entry.groups is not None:
            self.plan.add(area, entry.value, "skipped", "assigned to no group Burrow has",
                          entry.origin)
            return
        texts, why = entry_texts(entry)
        if not texts:
            self.plan.add(area, entry.value, "skipped", why, entry.origin)
            return
        from ..filtering.userlists import MAX_ENTRIES, classify
        known = self._known(area)
        pending = self.pending[area]
        for text in texts:
            try:
                _, norm = classify(text)
                wanted = sorted(groups) if groups else []
                if (area, norm) in self.adding:
                    self.plan.add(area, norm, "unchanged", "in the file a second time", entry.origin)
                    continue
                if norm in known:
                    if known[norm] == wanted:
                        self.plan.add(area, norm, "unchanged", "in the list already" + why, entry.origin)
                        continue
                    userlist = self.userlists[area]
                    userlist.remove(norm)
                    userlist.add(norm, wanted or None)
                    known[norm] = wanted
                    self.plan.add(area, norm, "change", "groups now " + (", ".join(wanted) or "every group")
                                  + why, entry.origin)
                    continue
                if len(known) >= MAX_ENTRIES:
                    self.plan.add(area, norm, "skipped", f"the list is full (at most {MAX_ENTRIES} entries)",
                                  entry.origin)
                    continue
                known[norm] = wanted
                pending.append((norm, wanted or None))
                self.adding.add((area, norm))
                self.plan.add(area, norm, "create", (f"for {', '.join(wanted)}" if wanted else "for every group")
                              + why + (f"; left out: {', '.join(dropped)}" if dropped else ""), entry.origin)
            except _REFUSED as e:
                self.plan.add(area, text, "skipped", _problem(e), entry.origin)

    def _known(self, area: str) -> dict[str, list[str]]:
        """Normalised entry → its groups (sorted; [] = every group), of the list and what the
        import adds to it (written at once by :meth:`_write_entries`: one write, not one each)."""
        if area not in self.known:
            summary = self.userlists[area].summary()
            limited = summary.get("groups", {})
            self.known[area] = {e: sorted(limited.get(e, [])) for kind in ("exact", "wildcard", "regex")
                                for e in summary[kind]}
        return self.known[area]

    def _write_entries(self) -> None:
        for area, pending in self.pending.items():
            if pending:
                self.userlists[area].add_many(pending)

    # ---- local records and forwarding --------------------------------------------------------

    def _records(self, setup: ForeignSetup) -> None:
        from ..zones.store import LOCAL_DEFAULT_TTL
        merged: dict[tuple[str, str], list] = {}
        for r in setup.records:
            name = r.name.strip().lower().rstrip(".")
            merged.setdefault((name, r.type), []).append(r)
        for (name, rtype), recs in merged.items():
            origin = recs[0].origin
            wildcard = name.startswith("*.")
            owner = name[2:] if wildcard else name
            ttl = next((r.ttl for r in recs if r.ttl), None)
            try:
                current = self.zones.local_entry(name, rtype)
                if rtype == "CNAME":
                    targets = {r.value.strip().lower().rstrip(".") for r in recs}
                    if len(targets) > 1:
                        self.plan.add("record", f"{name} CNAME", "skipped",
                                      f"more than one target ({', '.join(sorted(targets))})", origin)
                        continue
                    target = targets.pop()
                    if current is not None:
                        if current["target"].rstrip(".").lower() == target and (ttl is None or current["ttl"] == ttl):
                            self.plan.add("record", f"{name} CNAME", "unchanged", f"points to {target} already", origin)
                        else:
                            self.plan.add("record", f"{name} CNAME", "skipped",
                                          f"Burrow has it pointing to {current['target']}; left as it is", origin)
                        continue
                    self.zones.add_local(owner, "CNAME", target=target, ttl=ttl, wildcard=wildcard)
                    self.plan.add("record", f"{name} CNAME", "create", f"to {target}", origin)
                    continue
                ips = [str(ipaddress.ip_address(r.value.strip())) for r in recs]
                have = set(current["ips"]) if current else set()
                new = [ip for ip in dict.fromkeys(ips) if ip not in have]
                keep_ttl = current["ttl"] if current else LOCAL_DEFAULT_TTL
                if not new and (ttl is None or ttl == keep_ttl):
                    self.plan.add("record", f"{name} {rtype}", "unchanged", "has these addresses already", origin)
                    continue
                self.zones.add_local(owner, rtype, ips=ips, ttl=ttl or keep_ttl, wildcard=wildcard)
                self.plan.add("record", f"{name} {rtype}", "change" if current else "create",
                              ("adds " if current else "") + ", ".join(new or ips), origin)
            except _REFUSED as e:
                self.plan.add("record", f"{name} {rtype}", "skipped", _problem(e), origin)

    def _forwards(self, setup: ForeignSetup) -> None:
        from ..forwarding.rules import ForwardRule, reverse_zones
        names: set[str] = set()
        for f in setup.forwards:
            name, n = f.name.strip()[:60] or "Imported", 2
            while name in names:
                name = f"{f.name.strip()[:56]} ({n})"
                n += 1
            names.add(name)
            try:
                domains = [d.strip().lower().rstrip(".") for d in f.domains if d.strip()]
                if f.network:
                    domains += [z for z in reverse_zones(f.network) if z not in domains]
                data = {"name": name, "domains": domains, "upstreams": list(f.servers),
                        "enabled": f.enabled}
                rule = ForwardRule(data, self.forwarding.defaults)
                current = self.forwarding.by_name(name)
                if current is None:
                    self.forwarding.add(data)
                    self.plan.add("forward", name, "create", f"{', '.join(rule.domains)} → "
                                  f"{', '.join(rule.upstreams)}", f.origin)
                elif current.stored() == ForwardRule({**current.stored(), **data},
                                                     self.forwarding.defaults).stored():
                    self.plan.add("forward", name, "unchanged", "the same rule exists", f.origin)
                else:
                    self.forwarding.update(name, data)
                    self.plan.add("forward", name, "change", f"now {', '.join(rule.domains)} → "
                                  f"{', '.join(rule.upstreams)}", f.origin)
            except _REFUSED as e:
                self.plan.add("forward", name, "skipped", _problem(e), f.origin)

    # ---- runtime options ---------------------------------------------------------------------

    def _settings(self, setup: ForeignSetup) -> None:
        from .. import runtime_config
        from ..config import ConfigError
        stored = runtime_config.stored_overrides(self.db)
        for s in setup.settings:
            note = f" ({s.note})" if s.note else ""
            if s.key not in runtime_config.RUNTIME_KEYS:
                self.plan.add("setting", s.key, "skipped", "not an option Burrow changes at runtime", s.origin)
                continue
            current = runtime_config.load_overrides(self.ctx.config, self.db)
            try:
                new = current.with_overrides({s.key: s.value})
            except ConfigError as e:
                self.plan.add("setting", s.key, "skipped", "; ".join(m for _, m in e.errors) + note, s.origin)
                continue
            if new[s.key] == current[s.key]:
                self.plan.add("setting", s.key, "unchanged", f"is {_shown(current[s.key])} already{note}",
                              s.origin)
                continue
            stored[s.key] = new[s.key]
            self.db.set(runtime_config.SETTINGS_KEY, stored)
            self.plan.add("setting", s.key, "change",
                          f"{_shown(current[s.key])} → {_shown(new[s.key])}{note}", s.origin)


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _list_name(name: str, url: str, max_len: int) -> str:
    text = " ".join(name.split())  # comments may hold line breaks
    if not text:
        from urllib.parse import urlsplit
        parts = urlsplit(url)
        text = (parts.hostname or "") + parts.path if parts.hostname else url
    return text[:max_len].strip() or "Imported list"


# ---- entry syntax ------------------------------------------------------------------------------

_ADBLOCK_DOMAIN = re.compile(r"^\|\|([a-z0-9*._-]+)\^(\|)?$", re.IGNORECASE)
_HOSTS_LINE = re.compile(r"^(?:0\.0\.0\.0|127\.0\.0\.1|::|::1)\s+(\S+)$")


def entry_texts(entry: DomainEntry) -> tuple[list[str], str]:
    """The user-list entries that express ``entry`` and a note saying how ("" when one to one);
    ([], why) when Burrow's lists cannot express it."""
    value = entry.value.strip()
    if entry.syntax == "exact":
        return [value], ""
    if entry.syntax == "wildcard":
        return [value if value.startswith("*.") else "*." + value.lstrip("*.")], ""
    if entry.syntax == "regex":
        return [as_regex(value)], ""
    # adblock syntax (AdGuard user_rules)
    rule = value[2:] if value.startswith("@@") else value
    if "$" in rule:
        return [], "adblock rule with modifiers ($...): Burrow's lists match names only"
    m = _ADBLOCK_DOMAIN.match(rule)
    if m:
        name = m.group(1).lower().rstrip(".")
        if "*" in name:
            return [], "adblock wildcard inside a name: Burrow's lists cannot express it"
        return [name, "*." + name], f" (as {name} and *.{name}: the name and every name below)"
    if len(rule) > 2 and rule.startswith("/") and rule.endswith("/"):
        return [as_regex(rule[1:-1])], ""
    m = _HOSTS_LINE.match(rule)
    if m:
        return [m.group(1)], ""
    if re.fullmatch(r"[a-z0-9._-]+", rule, re.IGNORECASE):
        return [rule], ""
    return [], "adblock syntax Burrow's lists cannot express (cosmetic, path or partial-name rule)"


def as_regex(pattern: str) -> str:
    """A regex entry Burrow's user lists will read as a regex: one with none of the characters
    their auto-detection looks for (``ad.*tracker``) is wrapped in ``(?:...)``, which matches the
    same names."""
    from ..filtering.userlists import classify
    try:
        kind, _ = classify(pattern)
    except ValueError:
        kind = ""
    return pattern if kind == "regex" else f"(?:{pattern})"
