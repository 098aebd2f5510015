"""The AdGuard Home face: rewrites as Burrow's local records (A, AAAA, CNAME)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from ...zones.store import LOCAL_NAME
from .http import Refused, body_of, field

if TYPE_CHECKING:
    from ...services import Services


def register(route, s: Services, audit, **kw) -> None:
    """Declare this part's routes with ``route`` (Control.route) over the services ``s``."""

    def rewrites() -> list[dict]:
        return [{"domain": r["name"].rstrip("."),
                 "answer": r["value"].rstrip(".") if r["type"] == "CNAME" else r["value"], "enabled": True}
                for r in s.zones.store.records(LOCAL_NAME) if r["type"] in ("A", "AAAA", "CNAME")]

    def rewrite_fields(body: dict) -> tuple[str, str, str]:
        """(domain, record type, answer) of a rewrite rule; Refused for a bad or disabled one."""
        domain = field(body, "domain", str).strip().rstrip(".").lower()
        answer = field(body, "answer", str).strip()
        if not domain or not answer:
            raise Refused(400, "domain and answer are required")
        try:
            kind = "A" if ipaddress.ip_address(answer).version == 4 else "AAAA"
        except ValueError:
            kind = "CNAME"
        if not field(body, "enabled", bool, required=False, default=True):
            raise Refused(501, "Burrow's local records cannot be turned off one by one: delete it instead")
        return domain, kind, answer

    def rewrite_body(req) -> tuple[str, str, str]:
        return rewrite_fields(body_of(req))

    def find_rewrite(domain: str, kind: str, answer: str) -> dict:
        value = answer.lower().rstrip(".") if kind == "CNAME" else str(ipaddress.ip_address(answer))
        for r in s.zones.store.records(LOCAL_NAME):
            stored = r["value"].lower().rstrip(".") if kind == "CNAME" else r["value"]
            if r["name"].rstrip(".").lower() == domain and r["type"] == kind and stored == value:
                return r
        raise Refused(400, f"no rewrite {domain} → {answer}")

    def add_rewrite(domain: str, kind: str, answer: str) -> dict:
        if kind == "CNAME":
            return s.zones.store.add_local(domain, kind, None, answer)
        return s.zones.store.add_local(domain, kind, [answer])

    @route("GET", "/rewrite/list")
    async def rewrite_list(req):
        return rewrites()

    @route("GET", "/rewrite/settings")
    async def rewrite_settings(req):
        return {"enabled": True}

    @route("POST", "/rewrite/add")
    async def rewrite_add(req):
        from ...api.zones_api import publish_change, store_call
        entry = store_call(add_rewrite, *rewrite_body(req))
        publish_change(s.zones, s.events, req, "localrecord.added",
                       f"{entry['domain']} {entry['type']} added (AdGuard Home API)", {"record": entry})

    @route("POST", "/rewrite/delete")
    async def rewrite_delete(req):
        from ...api.zones_api import publish_change, store_call
        domain, kind, answer = rewrite_body(req)
        removed = store_call(s.zones.store.delete_record, find_rewrite(domain, kind, answer)["id"])
        publish_change(s.zones, s.events, req, "localrecord.removed",
                       f"{domain} {kind} {answer} removed (AdGuard Home API)", {"record": removed})

    @route("PUT", "/rewrite/settings/update")
    async def rewrite_settings_update(req):
        if not field(body_of(req), "enabled", bool):
            raise Refused(501, "Burrow always answers its local records: delete them instead")

    @route("PUT", "/rewrite/update")
    async def rewrite_update(req):
        from ...api.zones_api import publish_change, store_call
        body = body_of(req)
        target, update = field(body, "target", dict), field(body, "update", dict)
        old = rewrite_fields(target)
        new = rewrite_fields({**target, **update})
        if old == new:
            return None
        found = find_rewrite(*old)
        added = store_call(add_rewrite, *new)  # first, so a refused new answer leaves the old one
        store_call(s.zones.store.delete_record, found["id"])
        publish_change(s.zones, s.events, req, "localrecord.changed",
                       f"{old[0]} {old[2]} changed to {new[0]} {new[2]} (AdGuard Home API)", {"record": added})
