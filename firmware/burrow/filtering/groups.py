"""Client groups: which clients get which lists, allow/deny entries, rules and pauses.

A *group* is a name (``kids``, ``guests``, ``iot``). A *client* entry names one device or
network (an IP address or a CIDR) and the groups it belongs to. A client address belongs to
every group of every client entry that covers it; an address no entry covers belongs to
the built-in ``default`` group alone, which always exists and cannot be deleted or renamed
(as in Pi-hole, where "Default" catches every client not assigned elsewhere). A list, an
allow/deny entry or a pause names the groups it applies to; an empty group list means
every group.

The set of groups a client is in is its *view*: the fast path keeps answers per view
(``dns.names.view_key``), so two clients in the same groups share cached final
answers and a client in other groups never sees them. Every change to groups or clients is
announced (``on_change``, burrow/changes.py): the subscriber moves the DNS server's
generation, which also forgets each client's memoised view, and recomputes each view's lists.

Both live in the settings DB as JSON (``groups``, ``clients``): a person types a few dozen
at most, and a save is one durable write.
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import TYPE_CHECKING, Any, Callable

from .. import errors as domain
from ..changes import Announce, Change, ignore
from ..dns.names import DEFAULT_VIEW, view_key

if TYPE_CHECKING:
    from ..storage.settings import SettingsDB

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT = DEFAULT_VIEW  # the group of a client in no group (dns/names.py: the view key)
MAX_GROUPS = 64  # groups a person can create: views are keyed by group sets, keep them few
MAX_CLIENTS = 1024  # client entries: a home network has tens of devices
MAX_NAME = 64
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)


class Duplicate(domain.Conflict):
    """The group name or client address exists already (a 409); ``args[0]`` is the name."""

    error = "Conflict"

    def summary(self) -> str:
        return f"{self.args[0]} exists already"


class UnknownGroup(domain.NotFound, KeyError):
    """No client group by that name (a 404); a KeyError, as a lookup by name is."""

    def __init__(self, name: str):
        super().__init__(f"no client group named {name!r}")
        self.name = name


class UnknownClient(domain.NotFound, KeyError):
    """No client entry with that id (a 404)."""

    def __init__(self, client_id: int):
        super().__init__(f"no client entry {client_id}")
        self.client_id = client_id


class GroupError(domain.Invalid, ValueError):
    """A bad group or client entry: ``field`` names what was wrong (for a 400)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def check_group_name(value: object) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value.strip().lower()):
        raise GroupError("name", "a group name is 1-64 characters: lower-case letters, digits, '-' "
                                 "and '_', starting with a letter or digit")
    return value.strip().lower()


def parse_client(value: object) -> Network:
    """An IP address (a /32 or /128) or a CIDR; host bits in a CIDR are an error."""
    if not isinstance(value, str) or not value.strip():
        raise GroupError("client", "must be an IP address or a CIDR such as 192.168.1.0/24")
    text = value.strip()
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise GroupError("client", f"{text!r} is not an IP address or CIDR ({e})") from None


class Groups:
    """Groups and client entries, persisted in the settings DB; ``view_of(ip)`` is the hot call
    (the DNS server memoises it per address until the next change)."""

    def __init__(self, settings_db: SettingsDB, clock: Callable[[], float] = time.time,
                 on_change: Announce = ignore) -> None:
        self.settings = settings_db
        self.clock = clock
        self.on_change = on_change  # told after every change (burrow/changes.py)
        self.groups: list[dict[str, Any]] = []
        self.clients: list[dict[str, Any]] = []
        self._load()

    def reload(self) -> None:
        """Read the groups and clients from the settings DB again (a restore replaced them)
        and announce it."""
        self._load()
        self.on_change(Change.GROUPS)

    def _load(self) -> None:
        self.groups = list(self.settings.get("groups") or [])
        self.clients = list(self.settings.get("clients") or [])
        self._build()

    def _build(self) -> None:
        # Most specific networks first only matters for display; membership is the union.
        self._nets = [(parse_client(c["client"]), tuple(c["groups"])) for c in self.clients]

    # ---- lookups ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return [DEFAULT] + [g["name"] for g in self.groups]

    def exists(self, name: str) -> bool:
        return name == DEFAULT or any(g["name"] == name for g in self.groups)

    def groups_of(self, ip: str) -> frozenset[str]:
        """Every group whose client entries cover ``ip``; ``{"default"}`` when none does."""
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return frozenset((DEFAULT,))
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        found: set[str] = set()
        for net, groups in self._nets:
            if addr.version == net.version and addr in net:
                found.update(groups)
        return frozenset(found) if found else frozenset((DEFAULT,))

    def view_of(self, ip: str) -> str:
        return view_key(self.groups_of(ip))

    # ---- groups -------------------------------------------------------------------------------

    def group(self, name: str) -> dict[str, Any]:
        if name == DEFAULT:
            return {"name": DEFAULT, "description": "every client not in another group", "builtin": True,
                    "clients": 0, "created_at": None}
        for g in self.groups:
            if g["name"] == name:
                return {**g, "builtin": False,
                        "clients": sum(1 for c in self.clients if name in c["groups"])}
        raise UnknownGroup(name)

    def all_groups(self) -> list[dict[str, Any]]:
        return [self.group(n) for n in self.names()]

    def add_group(self, name: object, description: object = "") -> dict[str, Any]:
        name = check_group_name(name)
        if self.exists(name):
            raise Duplicate(name)
        if len(self.groups) >= MAX_GROUPS:
            raise GroupError("name", f"at most {MAX_GROUPS} groups")
        self.groups.append({"name": name, "description": _description(description),
                            "created_at": round(self.clock(), 3)})
        self._save()
        return self.group(name)

    def update_group(self, name: str, description: object) -> dict[str, Any]:
        if name == DEFAULT:
            raise GroupError("name", "the default group cannot be changed")
        for g in self.groups:
            if g["name"] == name:
                g["description"] = _description(description)
                self._save()
                return self.group(name)
        raise UnknownGroup(name)

    def delete_group(self, name: str) -> None:
        """Remove a group and take it off every client entry (an entry left with no group is
        removed too: its device falls back to the default group)."""
        if name == DEFAULT:
            raise GroupError("name", "the default group cannot be deleted")
        if not any(g["name"] == name for g in self.groups):
            raise UnknownGroup(name)
        self.groups = [g for g in self.groups if g["name"] != name]
        kept = []
        for c in self.clients:
            c["groups"] = [g for g in c["groups"] if g != name]
            if c["groups"]:
                kept.append(c)
        self.clients = kept
        self._save()

    # ---- clients ------------------------------------------------------------------------------

    def check_groups(self, value: object, field: str = "groups", allow_empty: bool = False) -> list[str]:
        if not isinstance(value, (list, tuple)) or (not value and not allow_empty):
            raise GroupError(field, "must be a list of group names" + ("" if allow_empty else " (at least one)"))
        out: list[str] = []
        for g in value:
            if not isinstance(g, str) or not self.exists(g.strip().lower()):
                raise GroupError(field, f"no group named {g!r}")
            g = g.strip().lower()
            if g not in out:
                out.append(g)
        return out

    def client(self, client_id: int) -> dict[str, Any]:
        for c in self.clients:
            if c["id"] == client_id:
                return dict(c)
        raise UnknownClient(client_id)

    def add_client(self, client: object, groups: object, name: object = "") -> dict[str, Any]:
        net = parse_client(client)
        groups = self.check_groups(groups)
        if any(parse_client(c["client"]) == net for c in self.clients):
            raise Duplicate(str(net))
        if len(self.clients) >= MAX_CLIENTS:
            raise GroupError("client", f"at most {MAX_CLIENTS} client entries")
        entry = {"id": max((c["id"] for c in self.clients), default=0) + 1, "client": _client_text(net),
                 "name": _description(name, "name"), "groups": groups, "created_at": round(self.clock(), 3)}
        self.clients.append(entry)
        self._save()
        return dict(entry)

    def update_client(self, client_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        for c in self.clients:
            if c["id"] == client_id:
                new = dict(c)
                if "client" in changes:
                    net = parse_client(changes["client"])
                    if any(parse_client(o["client"]) == net for o in self.clients if o["id"] != client_id):
                        raise Duplicate(str(net))
                    new["client"] = _client_text(net)
                if "groups" in changes:
                    new["groups"] = self.check_groups(changes["groups"])
                if "name" in changes:
                    new["name"] = _description(changes["name"], "name")
                c.update(new)
                self._save()
                return dict(c)
        raise UnknownClient(client_id)

    def delete_client(self, client_id: int) -> dict[str, Any]:
        for c in self.clients:
            if c["id"] == client_id:
                self.clients.remove(c)
                self._save()
                return c
        raise UnknownClient(client_id)

    def _save(self) -> None:
        with self.settings.transaction():
            self.settings.set("groups", self.groups)
            self.settings.set("clients", self.clients)
        self._build()
        self.on_change(Change.GROUPS)


def _client_text(net: Network) -> str:
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _description(value: object, field: str = "description") -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 200:
        raise GroupError(field, "must be text of at most 200 characters")
    return value.strip()
