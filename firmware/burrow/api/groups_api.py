"""/api/groups and /api/clients: client groups, and which devices or networks belong to them.

A group is a name lists, allow/deny entries, policy rules (``InClientGroup``) and pauses
apply to; ``default`` is built in and holds every client no entry covers. A client entry is an
IP address or a CIDR with the groups it is in (filtering/groups.py). Every change moves the
DNS generation, so no answer decided for a client's old groups is replayed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..filtering.groups import MAX_NAME, NAME_PATTERN
from .blocking_api import BlockingState
from .errors import ApiError
from .routes import Api
from .schema import IP, IP_OR_CIDR, Bool, Int, List, Num, Obj, Query, Str

if TYPE_CHECKING:
    from ..filtering.groups import Groups
    from ..filtering.pause import BlockingPause
    from ..filtering.sources import ListStore
    from ..filtering.userlists import UserList
    from ..telemetry.events import EventBus

GROUP_NAME = NAME_PATTERN.replace("a-z", "A-Za-z")  # names are folded to lower case


def group_name(**kw) -> Str:
    """A client group's name as a body declares it; that the group exists is the handler's check."""
    return Str(min_len=1, max_len=MAX_NAME, pattern=GROUP_NAME, hint="a group name (letters, digits, - and _)", **kw)


def group_names(**kw) -> List:
    return List(group_name(), max_items=64, **kw)


GroupOut = Obj("Group", {
    "name": Str(), "description": Str(), "builtin": Bool(description="true for \"default\""),
    "clients": Int(minimum=0, description="client entries in the group"),
    "created_at": Num(nullable=True, description="unix seconds"),
}, example={"name": "kids", "description": "tablets and the games console", "builtin": False,
            "clients": 2, "created_at": 1795000000.0})
GroupCreate = Obj("GroupCreate", {
    "name": group_name(description="lower-case letters, digits, - and _"),
    "description": Str(required=False, max_len=200),
}, example={"name": "kids", "description": "tablets and the games console"})
GroupUpdate = Obj("GroupUpdate", {"description": Str(max_len=200)},
                  example={"description": "tablets, the console and the kids' laptop"})
ClientOut = Obj("Client", {
    "id": Int(minimum=1), "client": Str(description="IP address or CIDR"), "name": Str(),
    "groups": List(Str()), "created_at": Num(nullable=True, description="unix seconds"),
}, example={"id": 1, "client": "192.168.1.40", "name": "tablet", "groups": ["kids"], "created_at": 1795000000.0})
GroupDetail = Obj("GroupDetail", {
    **GroupOut.fields,
    "members": List(ClientOut, max_items=100_000, description="the client entries in the group"),
    "blocking": BlockingState,
}, example={**GroupOut.example, "members": [ClientOut.example],
            "blocking": {"enabled": True, "paused_until": None, "remaining_seconds": None, "group": "kids"}})
ClientCreate = Obj("ClientCreate", {
    "client": Str(min_len=1, max_len=64, pattern=f"^{IP_OR_CIDR}$", hint="an IP address or network (CIDR)",
                  description="an IP address (192.168.1.40) or a CIDR (192.168.5.0/24)"),
    "name": Str(required=False, max_len=200),
    "groups": group_names(min_items=1),
}, example={"client": "192.168.1.40", "name": "tablet", "groups": ["kids"]})
ClientUpdate = Obj("ClientUpdate", {
    "client": Str(required=False, min_len=1, max_len=64, pattern=f"^{IP_OR_CIDR}$", hint="an IP address or network (CIDR)"),
    "name": Str(required=False, max_len=200),
    "groups": group_names(required=False, min_items=1),
}, min_fields=1, example={"groups": ["kids", "guests"]})


def known_groups(store: Groups, groups, field: str = "groups") -> list[str] | None:
    """``groups`` checked against the existing client groups (normalised), or a 400 naming
    ``field``; None/[] pass through as "every group"."""
    if not groups:
        return groups
    return store.check_groups(groups, field)


def groups_answer(groups: Groups) -> dict:
    """GET /api/groups's answer (also in GET /api/dashboard)."""
    rows = groups.all_groups()
    return {"groups": rows, "total": len(rows)}


def register(api: Api, *, groups: Groups, pause: BlockingPause, allow_list: UserList, deny_list: UserList,
             list_store: ListStore, events: EventBus) -> None:
    def store() -> Groups:
        return groups

    def changed(req, kind: str, summary: str, data=None) -> None:  # the stores announced the change themselves
        events.publish("events", {"type": kind, "actor": req.g.principal.username,
                                      "client_ip": req.g.client_ip, "summary": summary, "data": data or {}})

    @api.route("GET", "/api/groups", role="viewer", summary="Client groups (default first)", tags=["groups"])
    async def list_groups(req):
        return groups_answer(store())

    @api.route("POST", "/api/groups", role="admin", summary="Create a client group", tags=["groups"],
               body=GroupCreate, status=201, responses={201: GroupOut, 409: "a group or client entry with that name or address exists"})
    async def create_group(req):
        body = req.g.body
        created = store().add_group(body["name"], body.get("description", ""))
        changed(req, "group.created", f"group {created['name']} created")
        return created, 201

    @api.route("GET", "/api/groups/<name>", role="viewer", summary="One group, its clients and pause state",
               tags=["groups"], responses={200: GroupDetail, 404: "no such client group"})
    async def get_group(req, name):
        group = store().group(name)
        members = [c for c in store().clients if name in c["groups"]]
        return {**group, "members": members, "blocking": pause.state(name)}

    @api.route("PUT", "/api/groups/<name>", role="admin", summary="Change a group's description",
               tags=["groups"], body=GroupUpdate, responses={200: GroupOut, 404: "no such client group"})
    async def update_group(req, name):
        updated = store().update_group(name, req.g.body["description"])
        changed(req, "group.updated", f"group {updated['name']} described anew")
        return updated

    @api.route("DELETE", "/api/groups/<name>", role="admin", summary="Delete a group (its clients fall back "
               "to the groups left, or default)", tags=["groups"],
               responses={200: None, 400: "the built-in default group stays", 404: "no such client group"})
    async def delete_group(req, name):
        store().delete_group(name)
        pause.forget_group(name)
        for user_list in (allow_list, deny_list):
            user_list.drop_group(name)
        for row in list_store.list():
            if name in row["groups"]:
                list_store.update(row["id"], {"groups": [g for g in row["groups"] if g != name]})
        changed(req, "group.deleted", f"group {name} deleted")
        return {"message": "Group deleted", "name": name}

    @api.route("GET", "/api/clients", role="viewer", summary="Client entries; with ip=, the groups of one address",
               tags=["groups"], query=Query({"ip": Str(required=False, max_len=64, pattern=f"^{IP}$", hint="an IP address",
                                                        description="show which groups this address is in")}))
    async def list_clients(req):
        ip = req.g.query.get("ip")
        out = {"clients": [dict(c) for c in store().clients], "total": len(store().clients)}
        if ip is not None:
            from ..filtering.groups import parse_client
            try:
                net = parse_client(ip)
            except ValueError as e:
                raise ApiError(400, str(e), [{"field": "ip", "message": str(e)}]) from None
            if net.num_addresses != 1:
                raise ApiError(400, "ip must be one address", [{"field": "ip", "message": "one address"}])
            out["lookup"] = {"ip": ip, "groups": sorted(store().groups_of(ip))}
        return out

    @api.route("POST", "/api/clients", role="admin", summary="Put a device or network in groups", tags=["groups"],
               body=ClientCreate, status=201, responses={201: ClientOut, 409: "a group or client entry with that name or address exists"})
    async def create_client(req):
        body = req.g.body
        created = store().add_client(body["client"], body["groups"], body.get("name", ""))
        changed(req, "client.created", f"client {created['client']} in {', '.join(created['groups'])}", created)
        return created, 201

    @api.route("GET", "/api/clients/<int:client_id>", role="viewer", summary="One client entry",
               tags=["groups"], responses={200: ClientOut})
    async def get_client(req, client_id):
        return store().client(client_id)

    @api.route("PUT", "/api/clients/<int:client_id>", role="admin", summary="Change a client entry",
               tags=["groups"], body=ClientUpdate, responses={200: ClientOut, 409: "a group or client entry with that name or address exists"})
    async def update_client(req, client_id):
        before = store().client(client_id)
        updated = store().update_client(client_id, req.g.body)
        changed(req, "client.updated", f"client {updated['client']} changed", {"before": before, "after": updated})
        return updated

    @api.route("DELETE", "/api/clients/<int:client_id>", role="admin", summary="Remove a client entry",
               tags=["groups"])
    async def delete_client(req, client_id):
        removed = store().delete_client(client_id)
        changed(req, "client.deleted", f"client {removed['client']} removed")
        return {"message": "Client removed", "id": client_id}
