"""/api/lists (CRUD, status, update now) and POST /api/blocklist/reload (seed 003 shape)."""

from __future__ import annotations

from .errors import ApiError
from .routes import Api
from .schema import Bool, Int, List, Obj, Str

KINDS = ["block", "allow", "threat"]
FORMATS = ["auto", "hosts", "domains", "wildcard", "onlydomains", "adblock", "dnsmasq", "rpz", "regex"]
MODES = ["null", "nxdomain", "nodata", "custom"]

ListCreate = Obj("ListCreate", {
    "name": Str(min_len=1, max_len=64),
    "source": Str(min_len=1, max_len=2048, description="http(s) URL, or a file in an allowed local list folder"),
    "kind": Str(enum=KINDS, default="block"),
    "format": Str(enum=FORMATS, required=False, description="detected when omitted"),
    "groups": List(Str(max_len=64), required=False, max_items=64, description="empty: every group"),
    "enabled": Bool(required=False),
    "update_interval": Int(required=False, minimum=300, maximum=90 * 86400),
    "mode": Str(enum=MODES, required=False, nullable=True, description="blocking mode override"),
}, example={"name": "StevenBlack", "source": "https://example.org/hosts", "kind": "block"})
ListUpdate = Obj("ListUpdate", {
    "name": Str(min_len=1, max_len=64, required=False),
    "source": Str(min_len=1, max_len=2048, required=False),
    "kind": Str(enum=KINDS, required=False),
    "format": Str(enum=FORMATS, required=False),
    "groups": List(Str(max_len=64), required=False, max_items=64),
    "enabled": Bool(required=False),
    "update_interval": Int(required=False, minimum=300, maximum=90 * 86400),
    "mode": Str(enum=MODES, required=False, nullable=True),
}, min_fields=1, example={"enabled": False})
ReloadResult = Obj("ReloadResult", {"status": Str(), "domains": Int(minimum=0), "message": Str()},
                   example={"status": "ok", "domains": 101348, "message": "Blocklists reloaded successfully"})


def register(api: Api, app) -> None:
    def manager():
        if getattr(app, "lists", None) is None:
            raise ApiError(503, "Blocklist manager not available")
        return app.lists

    def store():
        manager()
        return app.list_store

    def audit(req, kind: str, summary: str, data=None) -> None:
        app.events.publish("events", {"type": kind, "actor": req.g.principal.username,
                                      "client_ip": req.g.client_ip, "summary": summary, "data": data or {}})

    def known_groups(body) -> None:
        from ..filtering.groups import GroupError
        if body.get("groups"):
            try:
                app.groups.check_groups(body["groups"])
            except GroupError as e:
                raise ApiError(400, e.message, [{"field": "groups", "message": e.message}]) from None

    def checked(fn, *args):
        """Run a store call; its ValueErrors carry the field they are about."""
        try:
            return fn(*args)
        except ValueError as e:
            field = getattr(e, "field", None)
            status = 409 if type(e).__name__ == "ListConflictError" else 400
            raise ApiError(status, str(e), [{"field": field, "message": str(e)}] if field else None) from None

    @api.route("GET", "/api/lists", role="viewer", summary="All lists with their status", tags=["lists"])
    async def get_lists(req):
        lists = store().list()
        return {"lists": lists, "total": len(lists), "index": manager().status()}

    @api.route("POST", "/api/lists", role="admin", summary="Add a block, allow or threat list", tags=["lists"],
               body=ListCreate, status=201)
    async def create_list(req):
        body = dict(req.g.body)
        if body.get("format") == "auto":
            body["format"] = None
        known_groups(body)
        created = checked(lambda: store().create(**body))
        app._answers_changed()  # the lists each view uses
        manager().wake()  # downloaded and compiled by the scheduler now
        audit(req, "list.created", f"list {created['name']} added", {"list": created["name"], "source": created["source"]})
        return created, 201

    @api.route("GET", "/api/lists/<int:list_id>", role="viewer", summary="One list and its status", tags=["lists"])
    async def get_list(req, list_id):
        found = store().get(list_id)
        if found is None:
            raise ApiError(404, f"no list {list_id}")
        return found

    @api.route("PUT", "/api/lists/<int:list_id>", role="admin", summary="Change a list", tags=["lists"],
               body=ListUpdate)
    async def update_list(req, list_id):
        changes = dict(req.g.body)
        if changes.get("format") == "auto":
            changes["format"] = None
        known_groups(changes)
        before = store().get(list_id)
        updated = checked(lambda: store().update(list_id, changes))
        if updated is None:
            raise ApiError(404, f"no list {list_id}")
        app._answers_changed()  # a list's groups apply at once, without a recompile
        manager().wake()
        audit(req, "list.updated", f"list {updated['name']} changed",
              {"before": {k: before.get(k) for k in changes}, "after": changes})
        return updated

    @api.route("DELETE", "/api/lists/<int:list_id>", role="admin", summary="Remove a list", tags=["lists"])
    async def delete_list(req, list_id):
        found = store().get(list_id)
        if found is None or not store().delete(list_id):
            raise ApiError(404, f"no list {list_id}")
        manager().wake()
        audit(req, "list.deleted", f"list {found['name']} removed")
        return {"message": "List removed", "id": list_id}

    @api.route("POST", "/api/lists/<int:list_id>/update", role="admin", summary="Download this list now",
               tags=["lists"], responses={200: ReloadResult})
    async def update_now(req, list_id):
        if store().get(list_id) is None:
            raise ApiError(404, f"no list {list_id}")
        result = await manager().refresh(list_id, force=True)
        audit(req, "list.refreshed", f"list {list_id} updated on request")
        report = manager().reload_report(result)
        return report, (500 if report["status"] != "ok" else 200)

    @api.route("POST", "/api/blocklist/reload", role="admin", summary="Reload every list now (seed 003)",
               tags=["lists"], responses={200: ReloadResult})
    async def reload_all(req):
        result = await manager().refresh(force=True)
        report = manager().reload_report(result)
        audit(req, "blocklist.reloaded", report["message"], {"domains": report["domains"]})
        return report, (500 if report["status"] != "ok" else 200)
