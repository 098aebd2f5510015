"""The AdGuard Home face: clients as Burrow's client entries, one per id, grouped by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...filtering.groups import DEFAULT as DEFAULT_GROUP, parse_client
from .http import Refused, body_of, field
from .shapes import safesearch_off

if TYPE_CHECKING:
    from ...services import Services


def register(route, s: Services, audit, **kw) -> None:
    """Declare this part's routes with ``route`` (Control.route) over the services ``s``."""

    def by_name() -> dict[str, list[dict]]:
        """Burrow's client entries by name (an entry without one is named by its address): an
        AdGuard client is a name with its ids, each id one of Burrow's entries."""
        out: dict[str, list[dict]] = {}
        for c in s.groups.clients:
            out.setdefault(c.get("name") or c["client"], []).append(c)
        return out

    def client_of(name: str, entries: list[dict]) -> dict:
        return {"name": name, "ids": [c["client"] for c in entries], "tags": [],
                "use_global_settings": True, "filtering_enabled": True, "parental_enabled": False,
                "safebrowsing_enabled": False, "safesearch_enabled": False, "safe_search": safesearch_off(),
                "use_global_blocked_services": True, "blocked_services": [], "upstreams": [],
                "ignore_querylog": False, "ignore_statistics": False, "upstreams_cache_enabled": False,
                "upstreams_cache_size": 0}

    def client_fields(data: dict, current: list[dict]) -> tuple[str, list]:
        """(name, ids as Burrow writes them) of an AdGuard client; Refused for what Burrow cannot
        keep: ids that are not addresses or networks, and settings of its own."""
        name = field(data, "name", str).strip()
        ids = field(data, "ids", list)
        if not name or not ids or not all(isinstance(i, str) for i in ids):
            raise Refused(400, "a client needs a name and at least one id")
        own = [key for key, off in (("upstreams", []), ("blocked_services", []), ("ignore_querylog", False),
                                    ("ignore_statistics", False))
               if data.get(key, off) not in (off, None)]
        if data.get("use_global_settings") is False and (
                data.get("filtering_enabled") is False or data.get("parental_enabled")
                or data.get("safebrowsing_enabled") or (data.get("safe_search") or {}).get("enabled")):
            own.append("use_global_settings")
        if own:
            raise Refused(501, "Burrow's clients take the settings of their groups, not their own: "
                               + ", ".join(own))
        mine = {c["id"] for c in current}
        taken = {parse_client(c["client"]) for c in s.groups.clients if c["id"] not in mine}
        nets: list = []
        for raw in ids:
            try:
                net = parse_client(raw)
            except ValueError:
                raise Refused(400, f"{raw!r}: Burrow knows clients by IP address or network (CIDR), "
                                   "not by MAC address or ClientID") from None
            if net in taken or net in nets:
                raise Refused(400, f"{raw!r} is another client's already")
            nets.append(net)
        return name, nets

    def apply_client(name: str, nets: list, current: list[dict]) -> None:
        """Make the entries ``current`` (one client's) into ``nets`` named ``name``; new ones join
        the groups of the client's first entry (the default group for a new client)."""
        groups = current[0]["groups"] if current else [DEFAULT_GROUP]
        by_net = {parse_client(c["client"]): c for c in current}
        for net, entry in by_net.items():
            if net not in nets:
                s.groups.delete_client(entry["id"])
            elif entry.get("name") != name:
                s.groups.update_client(entry["id"], {"name": name})
        for net in nets:
            if net not in by_net:
                s.groups.add_client(str(net), groups, name)

    @route("GET", "/clients")
    async def clients(req):
        return {"clients": [client_of(n, e) for n, e in by_name().items()], "auto_clients": [], "supported_tags": []}

    @route("POST", "/clients/add")
    async def clients_add(req):
        body = body_of(req)
        name, ids = client_fields(body, [])
        if name in by_name():
            raise Refused(400, f"a client named {name!r} exists already")
        apply_client(name, ids, [])
        audit(req, "client.created", f"client {name} added", {"name": name, "ids": [str(n) for n in ids]})

    @route("POST", "/clients/update")
    async def clients_update(req):
        body = body_of(req)
        old = field(body, "name", str)
        current = by_name().get(old)
        if current is None:
            raise Refused(400, f"no client named {old!r}")
        name, ids = client_fields(field(body, "data", dict), current)
        if name != old and name in by_name():
            raise Refused(400, f"a client named {name!r} exists already")
        apply_client(name, ids, current)
        audit(req, "client.updated", f"client {old} changed", {"name": name, "ids": [str(n) for n in ids]})

    @route("POST", "/clients/delete")
    async def clients_delete(req):
        name = field(body_of(req), "name", str)
        current = by_name().get(name)
        if current is None:
            raise Refused(400, f"no client named {name!r}")
        for entry in current:
            s.groups.delete_client(entry["id"])
        audit(req, "client.deleted", f"client {name} removed", {"name": name})
