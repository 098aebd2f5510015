"""Conditional forwarding: /api/conditionalforwarding (seed 003, exactly) and /api/forwarders
(seed 000's face of the same rules), plus the "ask the router" preset and the global switch.

    GET    /api/conditionalforwarding                    {"enabled", "total", "rules"} (seed 003)
    POST   /api/conditionalforwarding                    200 {"message": "... added successfully", "rule"}
    DELETE /api/conditionalforwarding/{id}               200 {"message": "... removed successfully", "total"}
    GET    /api/conditionalforwarding/{id}               one rule
    PUT    /api/conditionalforwarding/{id}               change the given fields (a partial body is fine)
    POST   /api/conditionalforwarding/enabled            {"enabled": bool}: the global switch
    GET    /api/conditionalforwarding/preset/router      is the router preset on, with what
    POST   /api/conditionalforwarding/preset/router      {"router", "domain"?, "network"?}: turn it on
    DELETE /api/conditionalforwarding/preset/router      turn it off
    GET/POST /api/forwarders, GET/PUT/DELETE /api/forwarders/{id}   (POST answers 201 with the rule)

``{id}`` is ``name:priority:index`` (percent-encoded: names have spaces) or the rule's exact
name; text that is neither names no rule: 404 (seed 003 answered 400 for a malformed id, but
any text could be a name). 400 names the bad field, 409 is a duplicate name. Every change is
published as an audit event; the rules announce it to the DNS core themselves (burrow/changes.py).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ..config.upstream_spec import MAX_TEXT
from ..dns import qtypes
from ..forwarding.rules import MAX_CIDRS, MAX_DOMAINS, MAX_NAME, MAX_QTYPES, MAX_UPSTREAMS
from .errors import ApiError
from .routes import Api

if TYPE_CHECKING:
    from ..board.appliance import Appliance
    from ..forwarding import ForwardRules
    from ..telemetry.events import EventBus
from .schema import (HOST_PORT, IP_OR_CIDR, IPV4, IPV6, NO_CONTROLS, PORT, UPSTREAM, Bool, Int, List, Obj, Str,
                     any_case, domain_name)

TAGS = ["forwarding"]
ADDED = "Conditional forwarding rule added successfully"
UPDATED = "Conditional forwarding rule updated successfully"
REMOVED = "Conditional forwarding rule removed successfully"


# what qtypes.number reads: a name it knows, or TYPEn (1-65535), in any case
QTYPE_NAME = f"^({any_case(*sorted(qtypes.NAMES))[1:-1]}|[Tt][Yy][Pp][Ee]0*{PORT})$"


# what rules.parse_duration reads, as Go writes durations (2s, 500ms, 1m30s); "": the default.
# Zero and negative ones are out of the 100ms-30s range anyway.
GO_DURATION = r"^(|\+?(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"


def _rule_fields(create: bool) -> dict:
    """The body fields; ``create``: name and upstreams are required (PUT changes any subset)."""
    def strings(max_items: int, max_len: int, description: str, required: bool = False, pattern=None,
                min_items: int = 0, hint: str | None = None):
        return List(Str(max_len=max_len, pattern=pattern, hint=hint), required=required, max_items=max_items,
                    nullable=not required and not min_items, min_items=min_items, description=description)

    return {
        "name": Str(min_len=1, max_len=MAX_NAME, required=create, pattern=NO_CONTROLS,
                    hint="text without control characters", description="rule name (unique)"),
        "domains": strings(MAX_DOMAINS, 253, "domain patterns: *.corp.example.com (names below it), "
                                             "example.com (it and names below it)",
                           pattern=domain_name(wildcard=True).pattern, hint="a domain name (or *.name)"),
        "client_cidrs": strings(MAX_CIDRS, 64, "client networks in CIDR notation (v4 or v6)",
                                pattern=f"^{IP_OR_CIDR}$", hint="an IP address or network (CIDR)"),
        "query_types": strings(MAX_QTYPES, 16, "query types: A, AAAA, PTR, ..., TYPE65280",
                               pattern=QTYPE_NAME, hint="a query type (A, AAAA, TYPE65280, ...)"),
        "upstreams": strings(MAX_UPSTREAMS, MAX_TEXT, "upstream DNS servers: ip, ip:port, [v6]:port, "
                             "tls://host[:853][#name], https://host[:443]/dns-query[#name] (?pin=<base64> "
                             "for a key pin)",
                             required=create, pattern=f"^{UPSTREAM}$", min_items=1,
                             hint="an IP address, optionally with :port, or a tls:// or https:// URL"),
        "priority": Int(required=False, minimum=1, maximum=100, description="1-100, higher first (default 50)"),
        "timeout": Str(required=False, max_len=32, nullable=True, pattern=GO_DURATION,
                       hint="a duration such as 2s or 500ms", description="per attempt, Go duration: 2s, 500ms (100ms-30s); empty: default"),
        "max_retries": Int(required=False, minimum=0, maximum=10, description="extra attempts per upstream"),
        "failover": Bool(required=False, description="try the next upstream on failure (default false)"),
        "enabled": Bool(required=False, description="default true"),
        "id": Str(required=False, max_len=200, description="ignored: lets a GET object be sent back"),
    }


RuleBody = Obj("ForwardRuleBody", _rule_fields(True), needs_any=("domains", "client_cidrs", "query_types"), example={
    "name": "Local Network", "domains": ["*.local", "*.lan"], "upstreams": ["192.168.1.1:53"], "priority": 80})
RuleChange = Obj("ForwardRuleChange", _rule_fields(False), min_fields=1, example={"enabled": False})
Rule = Obj("ForwardRule", {
    "id": Str(description="name:priority:index (index: position in the sorted list)"), "name": Str(),
    "domains": List(Str()), "client_cidrs": List(Str()), "query_types": List(Str()), "upstreams": List(Str()),
    "priority": Int(minimum=1, maximum=100), "timeout": Str(), "max_retries": Int(minimum=0),
    "failover": Bool(), "enabled": Bool(),
}, example={"id": "Local Network:80:0", "name": "Local Network", "domains": ["*.local", "*.lan"],
            "client_cidrs": [], "query_types": [], "upstreams": ["192.168.1.1:53"], "priority": 80,
            "timeout": "", "max_retries": 0, "failover": False, "enabled": True})
RuleListing = Obj("ForwardRuleList", {"enabled": Bool(), "total": Int(minimum=0), "rules": List(Rule)},
                  example={"enabled": True, "total": 1, "rules": [Rule.example]})
ForwarderListing = Obj("ForwarderList", {"enabled": Bool(), "total": Int(minimum=0), "forwarders": List(Rule)},
                       example={"enabled": True, "total": 1, "forwarders": [Rule.example]})
RuleChanged = Obj("ForwardRuleChanged", {"message": Str(), "rule": Rule},
                  example={"message": ADDED, "rule": Rule.example})
RuleRemoved = Obj("ForwardRuleRemoved", {"message": Str(), "total": Int(minimum=0)},
                  example={"message": REMOVED, "total": 1})
SwitchBody = Obj("ForwardingSwitch", {"enabled": Bool()}, example={"enabled": False})
SwitchState = Obj("ConditionalForwardingSwitch", {"enabled": Bool()}, example={"enabled": True})
SwitchResult = Obj("ForwardingSwitched", {"message": Str(), "enabled": Bool()},
                   example={"message": "Conditional forwarding disabled", "enabled": False})
PresetBody = Obj("RouterPresetBody", {
    "router": Str(required=False, max_len=64, pattern=f"^{HOST_PORT}$",
                  hint="an IP address, optionally with :port", description="the router's IP (or ip:port); default: the default gateway"),
    "domain": domain_name(wildcard=True, empty=True, required=False, nullable=True,
                  description="the local domain the router serves (default \"lan\"); empty: reverse lookups only"),
    # reverse zones are cut at octets (v4) or nibbles (v6), at most 16 per network and not /0
    # (forwarding/rules.py reverse_zones): a v4 prefix at most 4 bits short of an octet boundary
    "network": Str(required=False, max_len=64, nullable=True,
                   pattern=f"^(|{IPV4}(/(3[0-2]|2[89]|2[0-4]|1[2-6]|[4-8]))?"
                           f"|{IPV6}(/(12[0-8]|1[01][0-9]|[1-9][0-9]|[1-9]))?)$",
                   description="the LAN whose reverse lookups go to the router (default: the router's /24)"),
}, example={"router": "192.168.1.1", "domain": "lan"})
Preset = Obj("RouterPreset", {
    "enabled": Bool(), "router": Str(), "domain": Str(), "network": Str(),
    "rule": Obj("RouterPresetRule", {}, additional=True, nullable=True, description="the rule, when on"),
    "suggested_router": Str(required=False, nullable=True, description="the default gateway, if known"),
}, example={"enabled": True, "router": "192.168.1.1", "domain": "lan", "network": "192.168.1.0/24",
            "rule": {**Rule.example, "id": "Router:40:0", "name": "Router",
                     "domains": ["lan", "1.168.192.in-addr.arpa"], "priority": 40, "max_retries": 1}})
PresetChanged = Obj("RouterPresetChanged", {"message": Str(), "preset": Preset},
                    example={"message": "Router preset enabled", "preset": Preset.example})

ERRORS = {400: "Invalid request (missing required fields, invalid priority/timeout, etc.)",
          409: "Rule with same name already exists", 500: "Failed to save configuration"}
ID_ERRORS = {404: "Rule not found (neither a rule's name nor the id of one)", 500: "Failed to save configuration"}
# {id}: a rule's exact name or its name:priority:index id (percent-decoded by the route).
RULE_REF = {"id": Str(min_len=1, max_len=MAX_NAME + 11, strip=False,
                      description="a rule's name, or its id name:priority:index")}


def gateway(board: Appliance) -> str | None:
    """The default IPv4 gateway (the router, most likely), or None."""
    try:
        route = board.network().get("default_v4") or {}
    except Exception:  # a missing netlink must not fail the page
        return None
    return route.get("gateway") or None


def router_preset_state(forwarding: ForwardRules, board: Appliance) -> dict:
    """GET /api/conditionalforwarding/preset/router's answer (also in GET /api/dashboard)."""
    state = forwarding.router_preset()
    state["suggested_router"] = gateway(board)
    return state


def register(api: Api, *, forwarding: ForwardRules, board: Appliance, events: EventBus) -> None:
    """``board``: where the router preset learns the default gateway."""
    def rules() -> ForwardRules:
        return forwarding

    def apply(fn, *args, **kwargs):
        """Call a store method; a storage failure becomes a 500 naming it (the store's domain
        errors answer 400/404/409 by their class)."""
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as e:
            raise ApiError(500, f"Failed to save configuration: {e}") from None

    def changed(req, kind: str, summary: str) -> None:  # the rules announced the change themselves
        events.publish("events", {"type": f"forwarding.{kind}", "actor": req.g.principal.username,
                                  "client_ip": req.g.client_ip, "summary": summary})


    # ---- shared handlers (both faces) -----------------------------------------------------------

    def create(req):
        store = rules()
        rule = apply(store.add, req.g.body)
        changed(req, "added", f"conditional forwarding rule {rule.name!r} added")
        return store.dict_of(rule)

    def update(req, ref):
        store = rules()
        rule = apply(store.update, ref, req.g.body)
        changed(req, "updated", f"conditional forwarding rule {rule.name!r} updated")
        return store.dict_of(rule)

    def remove(req, ref):
        store = rules()
        rule = apply(store.remove, ref)
        changed(req, "removed", f"conditional forwarding rule {rule.name!r} removed")
        return {"message": REMOVED, "total": len(store)}

    def one(ref):
        store = rules()
        return store.dict_of(apply(store.get, ref))

    # ---- the switch and the preset (before the {id} routes: first match wins) ----------------------

    @api.route("GET", "/api/conditionalforwarding/enabled", role="viewer", tags=TAGS,
               summary="Whether conditional forwarding is on", responses={200: SwitchState})
    async def switch_state(req):
        return {"enabled": rules().snapshot()["enabled"]}

    @api.route("POST", "/api/conditionalforwarding/enabled", role="admin", tags=TAGS, body=SwitchBody,
               summary="Turn conditional forwarding on or off (the rules are kept)",
               responses={200: SwitchResult, 500: "Failed to save configuration"})
    async def switch(req):
        on = req.g.body["enabled"]
        apply(rules().set_enabled, on)
        state = "enabled" if on else "disabled"
        changed(req, state, f"conditional forwarding {state}")
        return {"message": f"Conditional forwarding {state}", "enabled": on}

    def preset_state() -> dict:
        return router_preset_state(rules(), board)

    @api.route("GET", "/api/conditionalforwarding/preset/router", role="viewer", tags=TAGS,
               summary="Whether local names and reverse lookups are asked of the router",
               responses={200: Preset})
    async def get_preset(req):
        return preset_state()

    @api.route("POST", "/api/conditionalforwarding/preset/router", role="admin", tags=TAGS, body=PresetBody,
               summary="Ask the router for local names and reverse lookups (creates the \"Router\" rule)",
               responses={200: PresetChanged, 400: "Invalid router, domain or network",
                          500: "Failed to save configuration"})
    async def set_preset(req):
        body = req.g.body
        router = body.get("router") or gateway(board)
        if not router:
            raise ApiError(400, "router is required (the default gateway is not known)",
                           [{"field": "router", "message": "is required"}])
        domain = body["domain"] if "domain" in body else "lan"
        rule = apply(rules().set_router_preset, router, domain, body.get("network"))
        changed(req, "preset", f"router preset on: {', '.join(rule.domains)} → {rule.upstreams[0]}")
        return {"message": "Router preset enabled", "preset": preset_state()}

    @api.route("DELETE", "/api/conditionalforwarding/preset/router", role="admin", tags=TAGS,
               summary="Stop asking the router (removes the \"Router\" rule; its settings are remembered)",
               responses={200: PresetChanged, 500: "Failed to save configuration"})
    async def clear_preset(req):
        rule = apply(rules().clear_router_preset)
        if rule is not None:
            changed(req, "preset", "router preset off")
        return {"message": "Router preset disabled", "preset": preset_state()}

    # ---- seed 003 ---------------------------------------------------------------------------------

    @api.route("GET", "/api/conditionalforwarding", role="viewer", tags=TAGS,
               summary="All conditional forwarding rules, highest priority first", responses={200: RuleListing})
    async def list_rules(req):
        return rules().snapshot()

    @api.route("POST", "/api/conditionalforwarding", role="admin", tags=TAGS, body=RuleBody,
               summary="Add a conditional forwarding rule", responses={200: RuleChanged, **ERRORS})
    async def add_rule(req):
        return {"message": ADDED, "rule": create(req)}

    @api.route("GET", "/api/conditionalforwarding/<path:id>", params=RULE_REF, role="viewer", tags=TAGS,
               summary="One conditional forwarding rule (by id or name)", responses={200: Rule, **ID_ERRORS})
    async def get_rule(req, id):
        return one(id)

    @api.route("PUT", "/api/conditionalforwarding/<path:id>", params=RULE_REF, role="admin", tags=TAGS, body=RuleChange,
               summary="Change a conditional forwarding rule (only the fields given)",
               responses={200: RuleChanged, **ID_ERRORS, 409: ERRORS[409]})
    async def update_rule(req, id):
        return {"message": UPDATED, "rule": update(req, id)}

    @api.route("DELETE", "/api/conditionalforwarding/<path:id>", params=RULE_REF, role="admin", tags=TAGS,
               summary="Remove a conditional forwarding rule", responses={200: RuleRemoved, **ID_ERRORS})
    async def delete_rule(req, id):
        return remove(req, id)

    # ---- seed 000 ---------------------------------------------------------------------------------

    @api.route("GET", "/api/forwarders", role="viewer", tags=TAGS,
               summary="Forwarders (the conditional forwarding rules), highest priority first",
               responses={200: ForwarderListing})
    async def list_forwarders(req):
        snap = rules().snapshot()
        return {"enabled": snap["enabled"], "total": snap["total"], "forwarders": snap["rules"]}

    @api.route("POST", "/api/forwarders", role="admin", tags=TAGS, body=RuleBody, status=201,
               summary="Create a forwarder (a conditional forwarding rule)", responses={201: Rule, **ERRORS})
    async def add_forwarder(req):
        return create(req)

    @api.route("GET", "/api/forwarders/<path:id>", params=RULE_REF, role="viewer", tags=TAGS,
               summary="One forwarder (by id or name)", responses={200: Rule, **ID_ERRORS})
    async def get_forwarder(req, id):
        return one(id)

    @api.route("PUT", "/api/forwarders/<path:id>", params=RULE_REF, role="admin", tags=TAGS, body=RuleChange,
               summary="Change a forwarder (only the fields given)",
               responses={200: Rule, **ID_ERRORS, 409: ERRORS[409]})
    async def update_forwarder(req, id):
        return update(req, id)

    @api.route("DELETE", "/api/forwarders/<path:id>", params=RULE_REF, role="admin", tags=TAGS,
               summary="Delete a forwarder", responses={200: RuleRemoved, **ID_ERRORS})
    async def delete_forwarder(req, id):
        return remove(req, id)
