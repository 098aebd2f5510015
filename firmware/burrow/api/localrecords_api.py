"""/api/localrecords (seed 003, exactly): local A, AAAA and CNAME records for home names.

A face of the zone store (``zones.store``, burrow/zones/service.py): local records are the records of the implicit zone
``local`` and also appear in /api/dns-records. Here they are grouped the seed's way, one entry
per domain and type with all its addresses (a round-robin set), id ``domain:type:index``
(``nas.local.:A:0``; the index is 0 since a domain and type form one entry). Adding
addresses to an existing domain and type joins the set. ``wildcard: true`` (or a domain
written ``*.home.lan``) makes a wildcard record: any name below home.lan, never home.lan
itself nor evilhome.lan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..zones.store import LOCAL_TYPES
from .routes import Api
from .schema import IP, Bool, Int, List, Obj, Str, any_case, domain_name
from .zones_api import publish_change, store_call

if TYPE_CHECKING:
    from ..telemetry.events import EventBus
    from ..zones.service import ZoneService
    from ..zones.store import ZoneStore

LocalRecordBody = Obj("LocalRecordBody", {
    "domain": domain_name(wildcard=True, description="domain name (trailing dot optional); *.name for a wildcard"),
    "type": Str(min_len=1, max_len=8, pattern=any_case(*LOCAL_TYPES), description="A, AAAA or CNAME"),
    "ips": List(Str(max_len=64, pattern=f"^{IP}$", hint="an IP address"), required=False, max_items=64,
                description="A/AAAA: one or more addresses (several answer round-robin)"),
    "target": domain_name(required=False, empty=True, description="CNAME: the target domain"),
    "ttl": Int(required=False, minimum=1, maximum=2**31 - 1, description="seconds (default 300)"),
    "wildcard": Bool(required=False, description="match every name below the domain"),
}, example={"domain": "nas.local", "type": "A", "ips": ["192.168.1.100"], "ttl": 300})
LocalRecord = Obj("LocalRecord", {
    "id": Str(description="domain:type:index"), "domain": Str(description="with trailing dot"),
    "type": Str(enum=["A", "AAAA", "CNAME"]), "ips": List(Str()), "target": Str(), "ttl": Int(),
    "wildcard": Bool(),
}, example={"id": "router.local.:A:0", "domain": "router.local.", "type": "A", "ips": ["192.168.1.1"],
            "target": "", "ttl": 300, "wildcard": False})
# domain:type:index as the records carry it: the stored (ASCII) name with its trailing dot, one of
# LOCAL_TYPES in any case, a position; percent-decoded by the route ("*" and ":" may arrive encoded)
RECORD_ID = {"record_id": Str(min_len=1, max_len=300, pattern=r"^[A-Za-z0-9_*][A-Za-z0-9_*.-]*:"
                              + any_case(*LOCAL_TYPES)[1:-1] + r":[0-9]{1,6}$", description="domain:type:index")}
LocalRecordList = Obj("LocalRecordList", {"total": Int(minimum=0), "records": List(LocalRecord)},
                      example={"total": 1, "records": [LocalRecord.example]})
LocalRecordAdded = Obj("LocalRecordAdded", {"message": Str(), "record": LocalRecord},
                       example={"message": "Local record added successfully",
                                "record": {"id": "nas.local.:A:0", "domain": "nas.local.", "type": "A",
                                           "ips": ["192.168.1.100"], "target": "", "ttl": 300,
                                           "wildcard": False}})
LocalRecordRemoved = Obj("LocalRecordRemoved", {"message": Str(), "total": Int(minimum=0)},
                         example={"message": "Local record removed successfully", "total": 2})


def register(api: Api, *, zones: ZoneService, events: EventBus) -> None:
    def store() -> ZoneStore:
        return zones.store

    @api.route("GET", "/api/localrecords", role="viewer", summary="All local DNS records",
               tags=["local-dns"], responses={200: LocalRecordList})
    async def list_local(req):
        records = store().local_entries()
        return {"total": len(records), "records": records}

    @api.route("POST", "/api/localrecords", role="admin", summary="Add a local DNS record",
               tags=["local-dns"], body=LocalRecordBody,
               responses={200: LocalRecordAdded, 400: "Invalid request (missing required fields, invalid IP "
                                                      "format, etc.)", 500: "Failed to save configuration"})
    async def add_local(req):
        b = req.g.body
        record = store_call(store().add_local, b["domain"], b["type"], b.get("ips"), b.get("target"),
                            b.get("ttl"), bool(b.get("wildcard")))
        publish_change(zones, events, req, "localrecord.added", f"{record['domain']} {record['type']} added",
                       {"record": record})
        return {"message": "Local record added successfully", "record": record}

    @api.route("DELETE", "/api/localrecords/<path:record_id>", params=RECORD_ID, role="admin", summary="Remove a local DNS record",
               tags=["local-dns"],
               responses={200: LocalRecordRemoved, 400: "Invalid ID format", 404: "Record not found",
                          500: "Failed to save configuration"})
    async def remove_local(req, record_id):
        record = store_call(store().delete_local, record_id)
        publish_change(zones, events, req, "localrecord.removed", f"{record['domain']} {record['type']} removed",
                       {"record": record})
        return {"message": "Local record removed successfully", "total": store().local_entry_count()}
