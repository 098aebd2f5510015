"""The AdGuard Home face: filter lists (Burrow's block lists are AdGuard's ``filters``, its allow
lists the ``whitelist_filters``; threat feeds stay out of sight) and the user rules, read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .http import Refused, body_of, field
from .shapes import iso

if TYPE_CHECKING:
    from ...services import Services


def user_rules(allow: dict, deny: dict) -> list[str]:
    """Burrow's allow and deny lists in AdGuard's rule syntax: ``|name^`` (that name),
    ``/\\.name$/`` (the names below it), ``/regex/``; allow entries start with ``@@``."""
    out = []
    for prefix, summary in (("", deny), ("@@", allow)):
        out += [f"{prefix}|{name}^" for name in summary["exact"]]
        out += [f"{prefix}/\\.{w[2:].replace('.', chr(92) + '.')}$/" for w in summary["wildcard"]]
        out += [f"{prefix}/{pattern}/" for pattern in summary["regex"]]
    return out


def register(route, s: Services, audit, **kw) -> None:
    """Declare this part's routes with ``route`` (Control.route) over the services ``s``."""

    def kind_of(allow: bool) -> str:
        return "allow" if allow else "block"

    def filter_of(row: dict) -> dict:
        out = {"id": row["id"], "name": row["name"], "url": row["source"], "enabled": bool(row["enabled"]),
               "rules_count": int(row.get("entries") or 0)}
        updated = iso(row.get("last_success"))
        if updated:
            out["last_updated"] = updated
        return out

    def interval_hours() -> int:
        """The lists' update interval in whole hours (the shortest, when they differ; 24 with none)."""
        intervals = [r["update_interval"] for r in s.list_store.list() if r["kind"] in ("block", "allow")]
        return max(1, round(min(intervals) / 3600)) if intervals else 24

    @route("GET", "/filtering/status")
    async def filtering_status(req):
        rows = s.list_store.list()
        return {"enabled": True, "interval": interval_hours(),
                "filters": [filter_of(r) for r in rows if r["kind"] == "block"],
                "whitelist_filters": [filter_of(r) for r in rows if r["kind"] == "allow"],
                "user_rules": user_rules(s.allow_list.summary(), s.deny_list.summary())}

    @route("POST", "/filtering/config")
    async def filtering_config(req):
        body = body_of(req)
        enabled = field(body, "enabled", bool, required=False, default=True)
        hours = field(body, "interval", int, required=False)
        if not enabled:
            raise Refused(501, "Burrow cannot turn its lists off apart from protection: pause protection "
                               "(POST /control/protection), or turn lists off one by one")
        if hours is None or hours == interval_hours():
            return None
        if not 1 <= hours <= 90 * 24:
            raise Refused(400, "interval: Burrow updates lists every 1 to 2160 hours (0, never, is not offered)")
        rows = [r for r in s.list_store.list() if r["kind"] in ("block", "allow")]
        if not rows:  # Burrow keeps an interval per list, none of its own
            raise Refused(400, "interval: there are no lists to set it for (a new list is updated every 24 hours)")
        for r in rows:  # one change per list; each is durable before the next
            s.list_store.update(r["id"], {"update_interval": hours * 3600})
        s.lists.wake()
        audit(req, "list.updated", f"every list updated every {hours} h", {"update_interval": hours * 3600})

    def find_list(url: str, allow: bool) -> dict:
        for r in s.list_store.list(kind=kind_of(allow)):
            if r["source"] == url:
                return r
        raise Refused(400, f"no {'allow' if allow else 'block'} list with the URL {url}")

    @route("POST", "/filtering/add_url")
    async def add_url(req):
        body = body_of(req)
        allow = field(body, "whitelist", bool, required=False, default=False)
        created = s.list_store.create(name=field(body, "name", str), source=field(body, "url", str),
                                      kind=kind_of(allow))
        s.lists.wake()  # downloaded and compiled by the scheduler now
        audit(req, "list.created", f"list {created['name']} added",
              {"list": created["name"], "source": created["source"]})

    @route("POST", "/filtering/remove_url")
    async def remove_url(req):
        body = body_of(req)
        row = find_list(field(body, "url", str), field(body, "whitelist", bool, required=False, default=False))
        s.list_store.delete(row["id"])
        s.lists.wake()
        audit(req, "list.deleted", f"list {row['name']} removed")

    @route("POST", "/filtering/set_url")
    async def set_url(req):
        body = body_of(req)
        row = find_list(field(body, "url", str), field(body, "whitelist", bool, required=False, default=False))
        data = field(body, "data", dict)
        changes = {"name": field(data, "name", str), "source": field(data, "url", str),
                   "enabled": field(data, "enabled", bool)}
        changes = {k: v for k, v in changes.items() if v != row[k]}
        if changes:
            s.list_store.update(row["id"], changes)
            s.lists.wake()
            audit(req, "list.updated", f"list {row['name']} changed",
                  {"before": {k: row.get(k) for k in changes}, "after": changes})

    @route("POST", "/filtering/refresh")
    async def refresh(req):
        body = body_of(req) if req.body else {}
        allow = field(body, "whitelist", bool, required=False, default=False)
        force = req.args.get("force", "").lower() in ("1", "true")
        try:
            result = await s.lists.refresh(force=force)
        except Exception as e:  # the clock is not set (ClockNotSet) or the refresh failed
            raise Refused(500, f"the lists were not refreshed: {e}") from None
        ids = {r["id"] for r in s.list_store.list(kind=kind_of(allow))}
        updated = sum(1 for list_id, report in (result.get("lists") or {}).items()
                      if int(list_id) in ids and report.get("download") == "updated")
        return {"updated": updated}
