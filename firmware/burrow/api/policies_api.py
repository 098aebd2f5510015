"""/api/policies (seed 003, exactly): the ordered policy rules, CRUD.

Rules are kept, in order, in the settings DB under "policies" (a JSON list of rule dicts).
Every change validates the whole rule (a bad expression is a 400 naming the position), saves,
then swaps a new engine into the DNS chain at once and drops fast-path answers decided under
the old rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..policy import PolicyError, PolicyRule
from ..policy.engine import ACTIONS
from .errors import ApiError
from .routes import Api
from .schema import Bool, Int, List, Obj, Str, any_case

if TYPE_CHECKING:
    from ..dns.stages.policy import PolicyStage
    from ..resolver import Resolver
    from ..storage.settings import SettingsDB
    from ..telemetry.events import EventBus

SETTINGS_KEY = "policies"
NEXT_ID_KEY = "policies.next_id"
MAX_RULES = 1000

PolicyBody = Obj("PolicyBody", {
    "name": Str(min_len=1, max_len=200, description="rule name"),
    "logic": Str(min_len=1, max_len=4096, description="expression, e.g. Hour >= 22 && DomainMatches(Domain, \"x\")"),
    "action": Str(min_len=1, max_len=16, pattern=any_case(*ACTIONS), description=" | ".join(ACTIONS)),
    "action_data": Str(required=False, default="", max_len=1024,
                       description="REDIRECT: IPv4 and/or IPv6; FORWARD: ip:port upstreams, comma-separated"),
    "enabled": Bool(required=False, default=True),
}, example={"name": "Block after hours", "logic": "Hour >= 22 || Hour < 6", "action": "BLOCK",
            "enabled": True})
Policy = Obj("Policy", {
    "id": Int(minimum=0), "name": Str(), "logic": Str(), "action": Str(), "action_data": Str(),
    "enabled": Bool(),
}, example={"id": 0, "name": "Block social media after hours",
            "logic": "Hour >= 22 && DomainMatches(Domain, \"facebook\")", "action": "BLOCK",
            "action_data": "", "enabled": True})
PolicyListing = Obj("PolicyList", {"policies": List(Policy), "total": Int(minimum=0)},
                    example={"policies": [Policy.example], "total": 1})
PID = {"pid": Str(min_len=1, max_len=18, pattern=r"^[0-9]+$", description="the policy's id")}
Deleted = Obj("PolicyDeleted", {"message": Str(), "id": Int(minimum=0), "name": Str()},
              example={"message": "Policy deleted successfully", "id": 0, "name": "Block after hours"})


def register(api: Api, *, policy: PolicyStage, settings: SettingsDB, resolver: Resolver, events: EventBus) -> None:
    def stage() -> PolicyStage:
        return policy

    def policy_id(text: str) -> int:
        return int(text, 10)  # the route's PID declaration let only digits through

    def find(rules, pid: int) -> int:
        for i, r in enumerate(rules):
            if r.id == pid:
                return i
        raise ApiError(404, "Policy not found", error="Not Found")

    def build(body: dict, pid: int) -> PolicyRule:
        try:
            return PolicyRule.from_dict(body, id=pid)
        except PolicyError as e:
            raise ApiError(400, f"invalid policy: {e}", [e.to_dict()]) from None

    def commit(req, rules: list, kind: str, rule: PolicyRule, next_id: int | None = None) -> None:
        """Save, then swap the engine, then drop replayable answers: all or nothing."""
        engine = policy.build(rules)  # cheap: rules are compiled already
        try:
            with settings.transaction():
                settings.set(SETTINGS_KEY, [r.to_dict() for r in rules])
                if next_id is not None:
                    settings.set(NEXT_ID_KEY, next_id)
        except Exception as e:
            raise ApiError(500, f"Failed to save policies: {e}") from None
        policy.set_engine(engine)
        resolver.invalidate()  # answers decided under the old rules must not be replayed
        events.publish("events", {"type": f"policy.{kind}", "actor": req.g.principal.username,
                                  "client_ip": req.g.client_ip,
                                  "summary": f"policy {rule.id} {rule.name!r} {kind}"})

    @api.route("GET", "/api/policies", role="viewer", summary="All policy rules, in evaluation order",
               tags=["policies"], responses={200: PolicyListing})
    async def list_policies(req):
        rules = stage().engine.rules
        return {"policies": [r.to_dict() for r in rules], "total": len(rules)}

    @api.route("GET", "/api/policies/<pid>", params=PID, role="viewer", summary="One policy rule",
               tags=["policies"], responses={200: Policy, 400: "Invalid policy ID", 404: "Policy not found"})
    async def get_policy(req, pid):
        rules = stage().engine.rules
        n = policy_id(pid)
        return rules[find(rules, n)].to_dict()

    @api.route("POST", "/api/policies", role="admin", summary="Create a policy rule (evaluated after the others)",
               tags=["policies"], body=PolicyBody, status=201,
               responses={201: Policy, 400: "Invalid request (missing fields, invalid action, bad logic)"})
    async def create_policy(req):
        rules = list(stage().engine.rules)
        if len(rules) >= MAX_RULES:
            raise ApiError(400, f"at most {MAX_RULES} policies")
        used = max((r.id for r in rules if isinstance(r.id, int)), default=-1) + 1
        stored = settings.get(NEXT_ID_KEY, 0)
        pid = max(used, stored if isinstance(stored, int) else 0)
        rule = build(req.g.body, pid)
        rules.append(rule)
        commit(req, rules, "created", rule, next_id=pid + 1)
        return rule.to_dict()

    @api.route("PUT", "/api/policies/<pid>", params=PID, role="admin", summary="Replace a policy rule (keeps its place)",
               tags=["policies"], body=PolicyBody,
               responses={200: Policy, 400: "Invalid policy ID or request body", 404: "Policy not found"})
    async def update_policy(req, pid):
        rules = list(stage().engine.rules)
        n = policy_id(pid)
        i = find(rules, n)
        rule = build(req.g.body, n)
        rules[i] = rule
        commit(req, rules, "updated", rule)
        return rule.to_dict()

    @api.route("DELETE", "/api/policies/<pid>", params=PID, role="admin", summary="Delete a policy rule",
               tags=["policies"],
               responses={200: Deleted, 400: "Invalid policy ID", 404: "Policy not found"})
    async def delete_policy(req, pid):
        rules = list(stage().engine.rules)
        n = policy_id(pid)
        i = find(rules, n)
        rule = rules.pop(i)
        commit(req, rules, "deleted", rule)
        return {"message": "Policy deleted successfully", "id": rule.id, "name": rule.name}
