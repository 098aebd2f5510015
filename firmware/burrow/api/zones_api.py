"""/api/zones and /api/dns-records (seed 000): authoritative zones and their records, CRUD,
zone-file import and export.

One store underneath (``zones.store``, burrow/zones/store.py): the local records of
/api/localrecords are the records of the implicit zone ``local`` and show here too. Every
change is saved in one transaction, then ``zones.edited()`` (zones/service.py) updates the resolver's
snapshot (for the owner names a local-records edit touched; in full after any other change)
and drops fast-path answers decided before it, then an audit event is published.

Zones are addressed by id or by name (``/api/zones/lab.test``); records by id. Validation
failures are 400 naming the field (``name``, ``type``, ``value``, ``ttl``, ``priority``,
``zone``, ``primaries``); a zone-file import that fails names the line and changes nothing.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from microdot import Response

from ..zones.validate import MAX_TTL, TYPES
from .errors import ApiError
from .routes import Api
from .schema import HOST_PORT, AnyOf, Field, Int, List, Obj, Query, Str, any_case, domain_name

if TYPE_CHECKING:
    from ..telemetry.events import EventBus
    from ..zones.service import ZoneService
    from ..zones.store import ZoneStore

ZONE_TYPES = ["master", "slave"]
MAX_ZONE_FILE = 60 * 1024  # characters; the JSON body cap (64 KiB) bounds it anyway


def zone_ref(**kw) -> AnyOf:
    """A zone's name (lab.test; 'local' for local records; digits are its id) or its id."""
    return AnyOf(domain_name(), Int(minimum=1, maximum=2**63 - 1), example="lab.test",
                 description="zone id, or zone name (lab.test; 'local' for local records)", **kw)


ZoneRef = zone_ref()
# seconds, or BIND-style units (zones/validate.py parse_ttl): 3600, 1h, 1h30m
TtlField = AnyOf(Int(minimum=0, maximum=MAX_TTL), Str(max_len=64, pattern=r"^([0-9]+|([0-9]+[SsMmHhDdWw])+)$"),
                 required=False, example=3600,
                 description="seconds, or a duration like 1h; default 3600 (local records: 300)")
RECORD_TYPE = any_case(*TYPES)
OWNER = f"^(@|\\*|{domain_name(wildcard=True).pattern[1:-1]})$"  # www, @, *, *.lab, www.lab.test.

ZoneCreate = Obj("ZoneCreate", {
    "name": domain_name(description="the zone's origin, e.g. lab.test or 1.168.192.in-addr.arpa"),
    "type": Str(enum=ZONE_TYPES, default="master"),
    "primaries": List(Str(max_len=64, pattern=f"^{HOST_PORT}$", hint="an IP address, optionally with :port"), required=False, max_items=8,
                      description="slave zones: the servers to transfer from, ip or ip:port"),
}, only_with={"primaries": ("type", "slave")}, needs_when={"primaries": ("type", "slave")}, example={"name": "lab.test", "type": "master"})
ZoneUpdate = Obj("ZoneUpdate", {
    "name": domain_name(required=False, description="must stay the same (no renames)"),
    "type": Str(enum=ZONE_TYPES, required=False, description="slave → master keeps the transferred data"),
    "primaries": List(Str(max_len=64, pattern=f"^{HOST_PORT}$", hint="an IP address, optionally with :port"), required=False, max_items=8),
}, min_fields=1, example={"primaries": ["192.0.2.53"]})
ZoneInfo = Obj("Zone", {
    "id": Int(), "name": Str(), "type": Str(enum=ZONE_TYPES + ["local"]), "primaries": List(Str()),
    "serial": Int(), "record_count": Int(), "created_at": Field(), "updated_at": Field(),
    "last_transfer": Field(nullable=True), "last_error": Str(nullable=True),
}, example={"id": 2, "name": "lab.test", "type": "master", "primaries": [], "serial": 2024050601,
            "record_count": 3, "created_at": 1714953600.0, "updated_at": 1714953600.0,
            "last_transfer": None, "last_error": None})
ZoneList = Obj("ZoneList", {"zones": List(ZoneInfo), "total": Int(minimum=0)},
               example={"zones": [ZoneInfo.example], "total": 1})
ZoneImport = Obj("ZoneImport", {
    "zone": Str(min_len=1, max_len=MAX_ZONE_FILE, strip=False,
                description="an RFC 1035 master file ($ORIGIN, $TTL, relative names, parentheses, comments)"),
}, example={"zone": "$TTL 1h\nwww IN A 192.0.2.10\n"})
ImportResult = Obj("ZoneImportResult", {"message": Str(), "zone": ZoneInfo, "records": Int(minimum=0),
                                        "warnings": List(Str())},
                   example={"message": "Zone imported", "zone": ZoneInfo.example, "records": 3, "warnings": []})

RecordCreate = Obj("DnsRecordCreate", {
    "zone": ZoneRef,
    "name": Str(required=False, max_len=255, pattern=OWNER, description="owner: relative to the zone (www, @) or absolute"),
    "type": Str(min_len=1, max_len=10, pattern=RECORD_TYPE, description="A, AAAA, CNAME, MX, TXT, SRV, PTR, NS, CAA"),
    "value": Str(max_len=8192, description="RDATA in zone-file text form, e.g. '10 mail' or '192.0.2.10'"),
    "ttl": TtlField,
    "priority": Int(required=False, minimum=0, maximum=65535, description="MX preference / SRV priority"),
}, example={"zone": "lab.test", "name": "www", "type": "A", "value": "192.0.2.10", "ttl": 3600})
RecordUpdate = Obj("DnsRecordUpdate", {
    "zone": zone_ref(required=False),
    "name": Str(required=False, max_len=255, pattern=OWNER),
    "type": Str(required=False, min_len=1, max_len=10, pattern=RECORD_TYPE),
    "value": Str(required=False, max_len=8192),
    "ttl": TtlField,
    "priority": Int(required=False, minimum=0, maximum=65535),
}, min_fields=1, example={"value": "192.0.2.11"})
DnsRecord = Obj("DnsRecord", {
    "id": Int(), "zone": Str(), "zone_id": Int(), "name": Str(description="absolute owner, no trailing dot"),
    "type": Str(), "ttl": Int(), "value": Str(), "priority": Int(nullable=True),
}, example={"id": 7, "zone": "lab.test", "zone_id": 2, "name": "www.lab.test", "type": "A", "ttl": 3600,
            "value": "192.0.2.10", "priority": None})
RecordList = Obj("DnsRecordList", {"records": List(DnsRecord), "total": Int(minimum=0)},
                 example={"records": [DnsRecord.example], "total": 1})
ZoneWithRecords = Obj("ZoneWithRecords", {**ZoneInfo.fields, "records": List(DnsRecord)},
                      example={**ZoneInfo.example, "records": [DnsRecord.example]})
Deleted = Obj("DnsRecordDeleted", {"message": Str(), "id": Int()}, example={"message": "Record deleted", "id": 7})
ZoneDeleted = Obj("ZoneDeleted", {"message": Str(), "id": Int(), "name": Str()},
                  example={"message": "Zone deleted", "id": 2, "name": "lab.test"})


def store_call(fn, *args, **kw):
    """Run a store method; a storage failure becomes a 500 naming it (the store's domain errors
    answer 400 naming the field, 404 or 409 by their class)."""
    try:
        return fn(*args, **kw)
    except sqlite3.Error as e:
        raise ApiError(500, f"Failed to save configuration: {e}") from None


def publish_change(zones: ZoneService, events: EventBus, req, kind: str, summary: str,
                   data: dict | None = None) -> None:
    """Local data changed through the zone store: update the resolver's snapshot (for what the
    store says it changed), then tell the audit log."""
    zones.edited()
    events.publish("events", {"type": kind, "actor": req.g.principal.username,
                              "client_ip": req.g.client_ip, "summary": summary, "data": data or {}})


def register(api: Api, *, zones: ZoneService, events: EventBus) -> None:
    def store() -> ZoneStore:
        return zones.store

    def zone_or_404(zid: str) -> dict:
        zone = store().zone(zid)
        if zone is None:
            raise ApiError(404, f"no zone {zid}", error="Not Found")
        return zone

    # ---- zones -------------------------------------------------------------------------------

    @api.route("GET", "/api/zones", role="viewer", summary="All zones (the local records' zone first)",
               tags=["zones"], responses={200: ZoneList})
    async def list_zones(req):
        zones = store().zones()
        return {"zones": zones, "total": len(zones)}

    @api.route("POST", "/api/zones", role="admin", summary="Create a master zone (default SOA and NS) or a "
               "slave zone (copied from its primaries by AXFR)", tags=["zones"], body=ZoneCreate, status=201,
               responses={201: ZoneInfo, 400: "invalid name, type or primaries", 409: "the zone exists"})
    async def create_zone(req):
        body = req.g.body
        zone = store_call(store().create_zone, body["name"], body.get("type") or "master", body.get("primaries"))
        publish_change(zones, events, req, "zone.created", f"zone {zone['name']} ({zone['type']}) created",
                       {"zone": zone["name"], "type": zone["type"]})
        return zone, 201

    @api.route("GET", "/api/zones/<zid>", role="viewer", summary="One zone (by id or name) with its records",
               tags=["zones"], responses={200: ZoneWithRecords, 404: "no such zone"})
    async def get_zone(req, zid):
        zone = zone_or_404(zid)
        return {**zone, "records": store_call(store().records, zone["id"])}

    @api.route("PUT", "/api/zones/<zid>", role="admin", summary="Change a zone's type or primaries",
               tags=["zones"], body=ZoneUpdate, responses={200: ZoneInfo, 404: "no such zone"})
    async def update_zone(req, zid):
        before = zone_or_404(zid)
        zone = store_call(store().update_zone, before["id"], dict(req.g.body))
        publish_change(zones, events, req, "zone.updated", f"zone {zone['name']} changed",
                       {"before": {k: before.get(k) for k in req.g.body}, "after": dict(req.g.body)})
        return zone

    @api.route("DELETE", "/api/zones/<zid>", role="admin", summary="Delete a zone and its records",
               tags=["zones"], responses={200: ZoneDeleted, 400: "the local zone stays", 404: "no such zone"})
    async def delete_zone(req, zid):
        zone = store_call(store().delete_zone, zone_or_404(zid)["id"])
        publish_change(zones, events, req, "zone.deleted", f"zone {zone['name']} deleted", {"zone": zone["name"]})
        return {"message": "Zone deleted", "id": zone["id"], "name": zone["name"]}

    @api.route("POST", "/api/zones/<zid>/import", role="admin",
               summary="Replace a master zone's records with a zone file (all or nothing)", tags=["zones"],
               body=ZoneImport, responses={200: ImportResult, 400: "the file has an error (its line is named)"})
    async def import_zone(req, zid):
        zone = zone_or_404(zid)
        result = store_call(store().import_zone, zone["id"], req.g.body["zone"])
        publish_change(zones, events, req, "zone.imported", f"zone {zone['name']} imported ({result['records']} records)",
                       {"zone": zone["name"], "records": result["records"]})
        return {"message": "Zone imported", **result}

    @api.route("GET", "/api/zones/<zid>/export", role="viewer", summary="The zone as an RFC 1035 zone file",
               tags=["zones"], raw_response=True,
               responses={200: "text/dns zone file", 400: "local records are not a zone", 404: "no such zone"})
    async def export_zone(req, zid):
        zone = zone_or_404(zid)
        text = store_call(store().export_zone, zone["id"])
        filename = zone["name"].replace("/", "_") + ".zone"
        return Response(text, 200, {"Content-Type": "text/dns; charset=utf-8",
                                    "Content-Disposition": f'attachment; filename="{filename}"'})

    # ---- records -----------------------------------------------------------------------------

    @api.route("GET", "/api/dns-records", role="viewer", summary="All records, or one zone's (?zone=)",
               tags=["zones"], query=Query({"zone": domain_name(required=False, empty=True)}),
               responses={200: RecordList, 404: "no such zone"})
    async def list_records(req):
        zone = req.g.query.get("zone")
        records = store_call(store().records, zone or None)
        return {"records": records, "total": len(records)}

    @api.route("POST", "/api/dns-records", role="admin", summary="Add a record to a zone", tags=["zones"],
               body=RecordCreate, status=201,
               responses={201: DnsRecord, 400: "invalid field (named)", 404: "no such zone",
                          409: "the record exists"})
    async def create_record(req):
        b = req.g.body
        record = store_call(store().add_record, b["zone"], b.get("name"), b["type"], b["value"], b.get("ttl"),
                            b.get("priority"))
        publish_change(zones, events, req, "dns_record.created",
                       f"{record['type']} {record['name']} added to {record['zone']}", {"record": record})
        return record, 201

    @api.route("GET", "/api/dns-records/<int:rid>", role="viewer", summary="One record", tags=["zones"],
               responses={200: DnsRecord, 404: "no such record"})
    async def get_record(req, rid):
        record = store().record(rid)
        if record is None:
            raise ApiError(404, f"no record {rid}", error="Not Found")
        return record

    @api.route("PUT", "/api/dns-records/<int:rid>", role="admin", summary="Change a record (fields not given stay)",
               tags=["zones"], body=RecordUpdate,
               responses={200: DnsRecord, 400: "invalid field (named)", 404: "no such record"})
    async def update_record(req, rid):
        before = store().record(rid)
        record = store_call(store().update_record, rid, dict(req.g.body))
        publish_change(zones, events, req, "dns_record.updated", f"{record['type']} {record['name']} changed",
                       {"before": before, "after": record})
        return record

    @api.route("DELETE", "/api/dns-records/<int:rid>", role="admin", summary="Delete a record", tags=["zones"],
               responses={200: Deleted, 400: "the zone would break (its SOA, its last apex NS)",
                          404: "no such record"})
    async def delete_record(req, rid):
        record = store_call(store().delete_record, rid)
        publish_change(zones, events, req, "dns_record.deleted",
                       f"{record['type']} {record['name']} removed from {record['zone']}", {"record": record})
        return {"message": "Record deleted", "id": record["id"]}
