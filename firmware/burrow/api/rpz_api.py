"""/api/rpz (seed 000): Response Policy Zones — made by hand, from a file or from a URL;
rules CRUD for zones made by hand; export as a zone file BIND or Unbound loads.

A zone is a filter list of format ``rpz`` (its id is the list's id), so it compiles into the
same index, honours groups and shows in /api/lists too. See filtering/rpz.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from microdot import Response

from .errors import ApiError
from .groups_api import group_names, known_groups
from .routes import Api
from .schema import NO_CONTROLS, Bool, Int, List, Obj, Str, domain_name

if TYPE_CHECKING:
    from ..filtering.groups import Groups
    from ..filtering.manager import ListManager
    from ..filtering.rpz import HandZones
    from ..filtering.sources import ListStore
    from ..telemetry.events import EventBus

RuleIn = Obj("RpzRuleIn", {
    "trigger": domain_name(wildcard=True, description="bad.example (that name) or *.bad.example (names below)"),
    "action": Str(enum=["nxdomain", "nodata", "passthru", "drop", "redirect"]),
    "data": Str(required=False, max_len=1024, description="redirect only: IP addresses, or one CNAME target"),
}, example={"trigger": "*.tracker.example", "action": "nxdomain"})
RuleOut = Obj("RpzRule", {"id": Int(minimum=1), "trigger": Str(), "action": Str(), "data": Str()},
              example={"id": 1, "trigger": "*.tracker.example", "action": "nxdomain", "data": ""})
ZoneCreate = Obj("RpzZoneCreate", {
    "name": domain_name(max_len=64, description="the zone's name, also its origin (e.g. rpz.home)"),
    "source": Str(required=False, min_len=1, max_len=2048, pattern=NO_CONTROLS, hint="text without control characters",
                  description="http(s) URL or a file in a local list folder; omit for a zone made by hand"),
    "zone": Str(required=False, max_len=4 * 1024 * 1024 // 2,
                description="RPZ zone-file text to start a zone made by hand from"),
    "rules": List(RuleIn, required=False, max_items=10_000),
    "enabled": Bool(required=False),
    "groups": group_names(required=False),
    "update_interval": Int(required=False, minimum=300, maximum=90 * 86400),
}, not_together=(("source", "zone"), ("source", "rules")),
   example={"name": "rpz.home", "rules": [{"trigger": "ads.example", "action": "nxdomain"}]})
ZoneOut = Obj("RpzZone", {}, additional=True, example={
    "id": 3, "name": "rpz.home", "origin": "rpz.home", "source_type": "hand", "enabled": True,
    "rules": 1, "serial": 1795000000, "last_error": None})


def register(api: Api, *, list_store: ListStore, lists: ListManager, rpz: HandZones, groups: Groups,
             events: EventBus) -> None:
    def env() -> tuple[ListStore, ListManager, HandZones]:
        return list_store, lists, rpz

    def audit(req, kind: str, summary: str, data=None) -> None:
        events.publish("events", {"type": kind, "actor": req.g.principal.username,
                                  "client_ip": req.g.client_ip, "summary": summary, "data": data or {}})

    def zone_row(zone_id: int) -> dict:
        store, _, _ = env()
        row = store.get(zone_id)
        if row is None or row["format"] != "rpz":
            raise ApiError(404, f"no RPZ zone {zone_id}")
        return row

    def describe(row: dict) -> dict:
        _, _, hand = env()
        state = hand.state(row["id"]) if hand.is_hand(row["id"]) else None
        kind = "hand" if state is not None else ("url" if row["source"].startswith(("http://", "https://"))
                                                 else "file")
        out = {"id": row["id"], "name": row["name"], "origin": state["origin"] if state else row["name"],
               "source_type": kind, "source": None if state else row["source"], "enabled": row["enabled"],
               "groups": row["groups"], "rules": len(state["rules"]) if state else row.get("entries"),
               "serial": state["serial"] if state else None, "last_success": row.get("last_success"),
               "last_error": row.get("last_error"), "entries": row.get("entries"),
               "skipped": row.get("skipped"), "errors": row.get("errors")}
        return out

    def current_rules(row: dict) -> list[dict]:
        _, manager, hand = env()
        if hand.is_hand(row["id"]):
            return hand.rules(row["id"])
        from ..filtering.parsers import parse_file
        from ..filtering.rpz import rules_from_list
        path = manager.live_file(row)
        if path is None:
            return []
        return [{"id": i, **r} for i, r in enumerate(rules_from_list(parse_file(path, "rpz").rules), 1)]

    async def apply(row: dict) -> dict:
        """Recompile with the zone's new file; the answer comes once the new index is live
        (the stores announced the change of rules, the manager the new index)."""
        _, manager, _ = env()
        result = await manager.refresh(row["id"], force=True)
        return manager.reload_report(result)

    @api.route("GET", "/api/rpz", role="viewer", summary="RPZ zones", tags=["rpz"])
    async def list_zones(req):
        store, _, _ = env()
        zones = [describe(r) for r in store.list() if r["format"] == "rpz"]
        return {"zones": zones, "total": len(zones)}

    @api.route("POST", "/api/rpz", role="admin", summary="Create an RPZ zone by hand, from zone text, a file "
               "or a URL", tags=["rpz"], body=ZoneCreate, status=201,
               responses={201: ZoneOut, 409: "a list with that name or source exists"})
    async def create_zone(req):
        from ..filtering.rpz import RpzError, check_rule, parse_zone_text
        store, manager, hand = env()
        body = dict(req.g.body)
        if body.get("groups"):
            body["groups"] = known_groups(groups, body["groups"])
        common = {k: body[k] for k in ("enabled", "groups", "update_interval") if k in body}
        if "source" in body:  # never with zone or rules (the declaration's not_together)
            row = store.create(body["name"], body["source"], "block", "rpz", **common)
            manager.wake()
            audit(req, "rpz.created", f"RPZ zone {row['name']} added from {row['source']}")
            return describe(row), 201
        from ..filtering.rpz import check_name
        origin = check_name(body["name"], "name")
        rules = parse_zone_text(body["zone"]) if "zone" in body else []
        try:
            for i, r in enumerate(body.get("rules") or ()):
                rules.append(check_rule(r["trigger"], r["action"], r.get("data", "")))
        except RpzError as e:
            e.field = f"rules[{i}].{e.field}"  # which rule of the body
            raise
        rules = [{"id": i, **r} for i, r in enumerate(rules, 1)]
        file = hand.new_file()  # the list points at it; written just below, before any compile
        row = store.create(body["name"], file, "block", "rpz", **common)
        try:
            hand.save(row["id"], origin, rules, file=file)
        except BaseException:
            store.delete(row["id"])
            hand.forget(row["id"])
            raise
        report = await apply(row)
        audit(req, "rpz.created", f"RPZ zone {row['name']} created with {len(rules)} rules")
        return {**describe(store.get(row["id"])), "reload": report}, 201

    @api.route("GET", "/api/rpz/<int:zone_id>", role="viewer", summary="One RPZ zone and its rules", tags=["rpz"])
    async def get_zone(req, zone_id):
        row = zone_row(zone_id)
        return {**describe(row), "rule_list": current_rules(row)[:10_000]}

    @api.route("DELETE", "/api/rpz/<int:zone_id>", role="admin", summary="Remove an RPZ zone", tags=["rpz"])
    async def delete_zone(req, zone_id):
        store, manager, hand = env()
        row = zone_row(zone_id)
        store.delete(zone_id)
        hand.forget(zone_id)
        manager.wake()
        audit(req, "rpz.deleted", f"RPZ zone {row['name']} removed")
        return {"message": "RPZ zone removed", "id": zone_id}

    @api.route("GET", "/api/rpz/<int:zone_id>/export", role="viewer", tags=["rpz"],
               summary="The zone as an RPZ zone file (BIND / Unbound)")
    async def export_zone(req, zone_id):
        import time as _time
        from ..filtering.rpz import render_zone
        _, _, hand = env()
        row = zone_row(zone_id)
        info = describe(row)
        serial = info["serial"] or int(row.get("last_success") or _time.time())
        text = render_zone(info["origin"], current_rules(row), serial)
        filename = info["origin"].replace("/", "_") + ".zone"
        return Response(text, 200, {"Content-Type": "text/dns; charset=utf-8",
                                    "Content-Disposition": f'attachment; filename="{filename}"'})

    @api.route("GET", "/api/rpz/<int:zone_id>/rules", role="viewer", summary="The zone's rules", tags=["rpz"])
    async def list_rules(req, zone_id):
        rules = current_rules(zone_row(zone_id))
        return {"rules": rules[:10_000], "total": len(rules)}

    def hand_zone(zone_id: int) -> dict:
        row = zone_row(zone_id)
        if not env()[2].is_hand(zone_id):
            raise ApiError(409, "this zone's rules come from its source (a file or URL); "
                                "edit them there, or make a zone by hand", error="Conflict")
        return row

    @api.route("POST", "/api/rpz/<int:zone_id>/rules", role="admin", summary="Add a rule to a zone made by hand",
               tags=["rpz"], body=RuleIn, status=201, responses={201: RuleOut, 409: "the zone is not made by hand (its rules come from its source), or the trigger has a rule"})
    async def add_rule(req, zone_id):
        from ..filtering.rpz import check_rule
        row = hand_zone(zone_id)
        hand = env()[2]
        b = req.g.body
        rule = check_rule(b["trigger"], b["action"], b.get("data", ""))
        state = hand.state(zone_id)
        if any(r["trigger"] == rule["trigger"] for r in state["rules"]):
            raise ApiError(409, f"{rule['trigger']} already has a rule in this zone", error="Conflict")
        rule = {"id": state["next_id"], **rule}
        hand.save(zone_id, state["origin"], state["rules"] + [rule], state["next_id"] + 1)
        await apply(row)
        audit(req, "rpz.rule_added", f"{rule['trigger']} → {rule['action']} in RPZ zone {row['name']}", rule)
        return rule, 201

    @api.route("PUT", "/api/rpz/<int:zone_id>/rules/<int:rule_id>", role="admin", summary="Change a rule",
               tags=["rpz"], body=RuleIn, responses={200: RuleOut, 409: "the zone is not made by hand (its rules come from its source), or the trigger has a rule"})
    async def update_rule(req, zone_id, rule_id):
        from ..filtering.rpz import check_rule
        row = hand_zone(zone_id)
        hand = env()[2]
        b = req.g.body
        rule = check_rule(b["trigger"], b["action"], b.get("data", ""))
        state = hand.state(zone_id)
        if not any(r["id"] == rule_id for r in state["rules"]):
            raise ApiError(404, f"no rule {rule_id} in RPZ zone {zone_id}")
        if any(r["trigger"] == rule["trigger"] and r["id"] != rule_id for r in state["rules"]):
            raise ApiError(409, f"{rule['trigger']} already has a rule in this zone", error="Conflict")
        rule = {"id": rule_id, **rule}
        rules = [rule if r["id"] == rule_id else r for r in state["rules"]]
        hand.save(zone_id, state["origin"], rules, state["next_id"])
        await apply(row)
        audit(req, "rpz.rule_updated", f"rule {rule_id} of RPZ zone {row['name']} changed", rule)
        return rule

    @api.route("DELETE", "/api/rpz/<int:zone_id>/rules/<int:rule_id>", role="admin", summary="Remove a rule",
               tags=["rpz"], responses={200: None, 409: "the zone is not made by hand"})
    async def delete_rule(req, zone_id, rule_id):
        row = hand_zone(zone_id)
        hand = env()[2]
        state = hand.state(zone_id)
        if not any(r["id"] == rule_id for r in state["rules"]):
            raise ApiError(404, f"no rule {rule_id} in RPZ zone {zone_id}")
        rules = [r for r in state["rules"] if r["id"] != rule_id]
        hand.save(zone_id, state["origin"], rules, state["next_id"])
        await apply(row)
        audit(req, "rpz.rule_deleted", f"rule {rule_id} of RPZ zone {row['name']} removed")
        return {"message": "Rule removed", "id": rule_id}
