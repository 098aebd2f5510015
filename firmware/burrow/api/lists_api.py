"""/api/lists (CRUD, status, update now), POST /api/blocklist/reload (seed 003 shape), and
/api/threat-feeds (seed 000): the same lists store seen through kind ``threat`` — a feed is a
list whose hits are blocked with EDE 17 (Filtered), counted apart in the stats and reported as
security events (filtering/threats.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ApiError
from .groups_api import group_names, known_groups
from .routes import Api
from .schema import NO_CONTROLS, Bool, Int, Obj, Str

if TYPE_CHECKING:
    from ..filtering.groups import Groups
    from ..filtering.manager import ListManager
    from ..filtering.sources import ListStore
    from ..filtering.threats import ThreatReporter
    from ..telemetry.events import EventBus

KINDS = ["block", "allow", "threat"]
FORMATS = ["auto", "hosts", "domains", "wildcard", "onlydomains", "adblock", "dnsmasq", "rpz", "regex"]
MODES = ["null", "nxdomain", "nodata", "custom"]

ListCreate = Obj("ListCreate", {
    "name": Str(min_len=1, max_len=64, pattern=NO_CONTROLS, hint="text without control characters"),
    "source": Str(min_len=1, max_len=2048, pattern=NO_CONTROLS, hint="text without control characters", description="http(s) URL, or a file in an allowed local list folder"),
    "kind": Str(enum=KINDS, default="block"),
    "format": Str(enum=FORMATS, required=False, description="detected when omitted"),
    "groups": group_names(required=False, description="empty: every group"),
    "enabled": Bool(required=False),
    "update_interval": Int(required=False, minimum=300, maximum=90 * 86400),
    "mode": Str(enum=MODES, required=False, nullable=True, description="blocking mode override"),
}, example={"name": "StevenBlack", "source": "https://example.org/hosts", "kind": "block"})
ListUpdate = Obj("ListUpdate", {
    "name": Str(min_len=1, max_len=64, required=False, pattern=NO_CONTROLS, hint="text without control characters"),
    "source": Str(min_len=1, max_len=2048, required=False, pattern=NO_CONTROLS, hint="text without control characters"),
    "kind": Str(enum=KINDS, required=False),
    "format": Str(enum=FORMATS, required=False),
    "groups": group_names(required=False),
    "enabled": Bool(required=False),
    "update_interval": Int(required=False, minimum=300, maximum=90 * 86400),
    "mode": Str(enum=MODES, required=False, nullable=True),
}, min_fields=1, example={"enabled": False})
ThreatFeedCreate = Obj("ThreatFeedCreate", {k: f for k, f in ListCreate.fields.items() if k != "kind"},
                       example={"name": "URLhaus", "source": "https://urlhaus.abuse.ch/downloads/hostfile/"})
ThreatFeedUpdate = Obj("ThreatFeedUpdate", {k: f for k, f in ListUpdate.fields.items() if k != "kind"},
                       min_fields=1, example={"update_interval": 3600})
# A person's "update now" while the clock is not set (burrow/clock.py ClockNotSet): the download
# would fail on TLS; the lists are downloaded by themselves once the clock is set.
CLOCK_NOT_SET = ("the clock is not set yet (no network time since start): nothing downloaded; "
                 "error \"clock_not_set\"")
ReloadResult = Obj("ReloadResult", {"status": Str(), "domains": Int(minimum=0), "message": Str()},
                   example={"status": "ok", "domains": 101348, "message": "Blocklists reloaded successfully"})


def lists_answer(list_store: ListStore, lists: ListManager, kind: str | None = None) -> dict:
    """GET /api/lists's answer (kind None; also in GET /api/dashboard), or the threat feeds'."""
    rows = list_store.list(kind=kind)
    return {"lists" if kind is None else "feeds": rows, "total": len(rows), "index": lists.status()}


def register(api: Api, *, lists: ListManager, list_store: ListStore, threats: ThreatReporter, groups: Groups,
             events: EventBus) -> None:
    def audit(req, kind: str, summary: str, data=None) -> None:
        events.publish("events", {"type": kind, "actor": req.g.principal.username,
                                  "client_ip": req.g.client_ip, "summary": summary, "data": data or {}})

    faces = (("/api/lists", None, "list", ListCreate, ListUpdate),
             ("/api/threat-feeds", "threat", "threat feed", ThreatFeedCreate, ThreatFeedUpdate))
    for base, kind, label, create_schema, update_schema in faces:
        _register_face(api, lists, list_store, threats, groups, audit, base, kind, label,
                       create_schema, update_schema)

    @api.route("POST", "/api/blocklist/reload", role="admin", summary="Reload every list now (seed 003)",
               tags=["lists"], responses={200: ReloadResult, 409: CLOCK_NOT_SET})
    async def reload_all(req):
        result = await lists.refresh(force=True)
        report = lists.reload_report(result)
        audit(req, "blocklist.reloaded", report["message"], {"domains": report["domains"]})
        return report, (500 if report["status"] != "ok" else 200)


def _register_face(api: Api, list_manager: ListManager, list_store: ListStore, threats: ThreatReporter, groups: Groups,
                   audit, base: str, kind: str | None, label: str,
                   create_schema: Obj, update_schema: Obj) -> None:
    """CRUD + update-now on the lists store; ``kind`` fixes the kind this face shows and makes."""
    tag = "lists" if kind is None else "threat-feeds"
    event = "list" if kind is None else "threat_feed"

    def manager() -> ListManager:
        return list_manager

    def store() -> ListStore:
        return list_store

    def found(list_id: int) -> dict:
        row = store().get(list_id)
        if row is None or (kind is not None and row["kind"] != kind):
            raise ApiError(404, f"no {label} {list_id}")
        return row

    @api.route("GET", base, role="viewer", summary=f"All {label}s with their status", tags=[tag])
    async def get_lists(req):
        out = lists_answer(store(), manager(), kind)
        if kind == "threat":
            out["hits"] = threats.status()  # since start; per-minute counts are in /api/stats
        return out

    @api.route("POST", base, role="admin", summary=f"Add a {label}" if kind else "Add a block, allow or threat list",
               tags=[tag], body=create_schema, status=201, responses={201: None, 409: "a list with that name or source exists"})
    async def create_list(req):
        body = dict(req.g.body)
        if kind is not None:
            body["kind"] = kind
        if body.get("format") == "auto":
            body["format"] = None
        if body.get("groups"):
            body["groups"] = known_groups(groups, body["groups"])
        created = store().create(**body)
        manager().wake()  # the store announced the new list itself (the lists each view uses)  # downloaded and compiled by the scheduler now
        audit(req, f"{event}.created", f"{label} {created['name']} added",
              {"list": created["name"], "source": created["source"]})
        return created, 201

    @api.route("GET", base + "/<int:list_id>", role="viewer", summary=f"One {label} and its status", tags=[tag])
    async def get_list(req, list_id):
        return found(list_id)

    @api.route("PUT", base + "/<int:list_id>", role="admin", summary=f"Change a {label}", tags=[tag],
               body=update_schema, responses={200: None, 409: "a list with that name or source exists"})
    async def update_list(req, list_id):
        changes = dict(req.g.body)
        if changes.get("format") == "auto":
            changes["format"] = None
        if changes.get("groups"):
            changes["groups"] = known_groups(groups, changes["groups"])
        before = found(list_id)
        updated = store().update(list_id, changes)
        if updated is None:
            raise ApiError(404, f"no {label} {list_id}")
        manager().wake()  # a list's groups apply at once (the store announced them), without a recompile
        audit(req, f"{event}.updated", f"{label} {updated['name']} changed",
              {"before": {k: before.get(k) for k in changes}, "after": changes})
        return updated

    @api.route("DELETE", base + "/<int:list_id>", role="admin", summary=f"Remove a {label}", tags=[tag])
    async def delete_list(req, list_id):
        row = found(list_id)
        if not store().delete(list_id):
            raise ApiError(404, f"no {label} {list_id}")
        manager().wake()
        audit(req, f"{event}.deleted", f"{label} {row['name']} removed")
        return {"message": "List removed" if kind is None else "Threat feed removed", "id": list_id}

    @api.route("POST", base + "/<int:list_id>/update", role="admin", summary=f"Download this {label} now",
               tags=[tag], responses={200: ReloadResult, 409: CLOCK_NOT_SET})
    async def update_now(req, list_id):
        found(list_id)
        result = await manager().refresh(list_id, force=True)
        audit(req, f"{event}.refreshed", f"{label} {list_id} updated on request")
        report = manager().reload_report(result)
        return report, (500 if report["status"] != "ok" else 200)
