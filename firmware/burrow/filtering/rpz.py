"""RPZ zones as first-class objects (seed 000 ``/api/rpz``): made by hand, or from a file or
a URL; rules by trigger name and action; exported as a zone file BIND or Unbound loads.

An RPZ zone *is* a filter list of format ``rpz`` (one store, one index, one compile path):
the zone's id is its list id. A zone made by hand keeps its rules in the settings DB
(``rpz.rules.<id>``) and Burrow writes them, atomically, as an RPZ zone file in the data
dir's ``lists/`` folder (``rpz-<id>.zone``) which the list points at; every rule change
rewrites the file (serial bumped) and recompiles. A zone from a URL or a local file gets its
rules from that source (read-only here). Export reads whatever the live index was compiled
from and writes it out in one canonical form, so every zone exports the same way.

A rule: ``{"id", "trigger", "action", "data"}`` — ``trigger`` a name (``bad.example``: that
name only) or a wildcard (``*.bad.example``: names below it), ``action`` one of
``nxdomain`` (CNAME .), ``nodata`` (CNAME *.), ``passthru`` (CNAME rpz-passthru.: allow),
``drop`` (CNAME rpz-drop.), ``redirect`` (``data``: IPv4/IPv6 addresses and/or one CNAME
target name, comma separated).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .. import errors as domain
from ..atomicfile import write_atomic
from ..changes import Announce, Change, ignore
from ..dns import names
from .parsers import parse
from .rules import Rule

if TYPE_CHECKING:
    from ..storage.settings import SettingsDB

ACTIONS = ("nxdomain", "nodata", "passthru", "drop", "redirect")
MAX_RULES = 10_000  # per hand-made zone: larger sets belong in a file or URL
_POLICY_CNAME = {"nxdomain": ".", "nodata": "*.", "passthru": "rpz-passthru.", "drop": "rpz-drop."}


class RpzError(domain.Invalid, ValueError):
    """A bad zone or rule (400); ``field`` names the request field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def check_name(text: str, field: str) -> str:
    """A trigger or zone name, normalised as every name is (``dns.names``: lower case, IDNA,
    no trailing dot), or RpzError naming ``field``."""
    name = text.strip()
    if not name.rstrip("."):
        raise RpzError(field, "must be a domain name")
    if "*" in name:
        raise RpzError(field, "a wildcard is only allowed as a leading '*.'")
    try:
        return names.normalize(name)
    except ValueError as e:
        raise RpzError(field, f"{text!r} is not a valid domain name: {e}") from None


def check_rule(trigger: object, action: object, data: object = "") -> dict[str, str]:
    """The normalised ``{"trigger", "action", "data"}``, or RpzError naming the field."""
    if not isinstance(trigger, str) or not trigger.strip():
        raise RpzError("trigger", "must be a name such as bad.example or *.bad.example")
    t = trigger.strip().lower().rstrip(".")
    wildcard = t.startswith("*.")
    t = ("*." if wildcard else "") + check_name(t[2:] if wildcard else t, "trigger")
    if action not in ACTIONS:
        raise RpzError("action", f"must be one of {', '.join(ACTIONS)}")
    data = "" if data is None else data
    if not isinstance(data, str):
        raise RpzError("data", "must be text")
    if action != "redirect":
        if data.strip():
            raise RpzError("data", f"only a redirect takes data, not {action}")
        return {"trigger": t, "action": action, "data": ""}
    parts = [p.strip() for p in data.split(",") if p.strip()]
    if not parts:
        raise RpzError("data", "a redirect needs IP addresses or a CNAME target")
    out: list[str] = []
    cname: str | None = None
    for p in parts:
        try:
            out.append(str(ipaddress.ip_address(p)))
        except ValueError:
            if cname is not None:
                raise RpzError("data", "at most one CNAME target") from None
            cname = check_name(p, "data")
    if cname is not None and out:
        raise RpzError("data", "a CNAME target cannot be mixed with addresses")
    return {"trigger": t, "action": action, "data": cname if cname is not None else ",".join(out)}


def rules_from_list(rules: list[Rule]) -> list[dict[str, Any]]:
    """Parsed RPZ rules (parsers.Rule) → rule dicts (no ids)."""
    out: list[dict[str, Any]] = []
    for r in rules:
        trigger = ("*." if r.match == "below" else "") + r.name
        action = r.action if r.action in ACTIONS else "nxdomain"
        data = ",".join(v for _k, v in r.data) if r.action == "redirect" else ""
        out.append({"trigger": trigger, "action": action, "data": data})
    return out


def render_zone(origin: str, rules: list[dict[str, Any]], serial: int, ttl: int = 300) -> str:
    """An RPZ zone file: SOA and NS at the apex, then one policy record set per trigger,
    owners written relative to the origin (``bad.example.rpz.home.`` is trigger bad.example)."""
    lines = [f"; RPZ zone {origin}, written by Burrow", f"$ORIGIN {origin}.", f"$TTL {ttl}",
             f"@ IN SOA localhost. hostmaster.localhost. {serial} 3600 600 86400 {ttl}",
             "@ IN NS localhost."]
    for r in rules:
        owner = r["trigger"]
        if r["action"] in _POLICY_CNAME:
            lines.append(f"{owner} IN CNAME {_POLICY_CNAME[r['action']]}")
            continue
        for value in r["data"].split(","):
            if ":" in value:
                lines.append(f"{owner} IN AAAA {value}")
            elif value.replace(".", "").isdigit():
                lines.append(f"{owner} IN A {value}")
            else:
                lines.append(f"{owner} IN CNAME {value}.")
    return "\n".join(lines) + "\n"


def parse_zone_text(text: str) -> list[dict[str, Any]]:
    """Rules from RPZ zone text (what a person uploads), or RpzError when it has none usable."""
    res = parse(text.splitlines(), "rpz")
    if res.errors and not res.rules:
        line_no, line, reason = res.error_samples[0]
        raise RpzError("zone", f"line {line_no}: {reason}: {line[:80]!r}")
    return rules_from_list(res.rules)


class HandZones:
    """Rules of the zones made by hand, in the settings DB; files regenerated from them. A
    change of rules (saved, rewritten by ``sync``, forgotten) is announced to ``on_change``."""

    def __init__(self, settings_db: SettingsDB, lists_dir: str, clock: Callable[[], float] = time.time,
                 on_change: Announce = ignore) -> None:
        self.settings = settings_db
        self.lists_dir = lists_dir
        self.clock = clock
        self.on_change = on_change

    def path(self, zone_id: int) -> str:
        """The zone's file: the one it was created with, else ``rpz-<id>.zone``."""
        state = self.settings.get(self.key(zone_id)) or {}
        return str(state.get("file") or os.path.join(self.lists_dir, f"rpz-{zone_id}.zone"))

    def new_file(self) -> str:
        """A file name for a zone about to be created (its list id is not known yet)."""
        return os.path.join(self.lists_dir, f"rpz-{secrets.token_hex(6)}.zone")

    def key(self, zone_id: int) -> str:
        return f"rpz.rules.{zone_id}"

    def is_hand(self, zone_id: int) -> bool:
        return self.settings.get(self.key(zone_id)) is not None

    def rules(self, zone_id: int) -> list[dict[str, Any]]:
        return list((self.settings.get(self.key(zone_id)) or {}).get("rules", []))

    def state(self, zone_id: int) -> dict[str, Any]:
        return self.settings.get(self.key(zone_id)) or {"origin": "", "serial": 0, "rules": [], "next_id": 1}

    def save(self, zone_id: int, origin: str, rules: list[dict[str, Any]], next_id: int | None = None,
             file: str | None = None) -> dict[str, Any]:
        """Store the rules and write the zone file (``file``, or the zone's own); returns the
        new state."""
        if len(rules) > MAX_RULES:
            raise RpzError("rules", f"at most {MAX_RULES} rules in a zone made by hand")
        old = self.state(zone_id)
        serial = max(int(self.clock()), old["serial"] + 1)
        state = {"origin": origin, "serial": serial, "rules": rules,
                 "next_id": next_id or max([r["id"] for r in rules], default=0) + 1,
                 "file": file or self.path(zone_id)}
        self.settings.set(self.key(zone_id), state)  # durable first: the file is made from it
        write_atomic(self.path(zone_id), render_zone(origin, rules, serial))
        self.on_change(Change.RPZ)
        return state

    def sync(self, zone_ids: Iterable[int]) -> None:
        """At start and after a restore: rewrite any hand zone file that is missing or differs
        from its stored rules (a power cut between the settings write and the file write)."""
        rewritten = False
        for zone_id in zone_ids:
            state = self.settings.get(self.key(zone_id))
            if state is None:
                continue
            text = render_zone(state["origin"], state["rules"], state["serial"])
            try:
                with open(self.path(zone_id)) as f:
                    if f.read() == text:
                        continue
            except OSError:
                pass
            write_atomic(self.path(zone_id), text)
            rewritten = True
        if rewritten:
            self.on_change(Change.RPZ)

    def forget(self, zone_id: int) -> None:
        path = self.path(zone_id)
        self.settings.delete(self.key(zone_id))
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.on_change(Change.RPZ)
