"""/api/policies (seed 003, exactly): the ordered policy rules, CRUD.

The rules, their ids, the engine swap and the announcement of the change are the policy
store's (policy/store.py); a handler parses, calls the store and shapes the answer. A bad
expression is a 400 naming the position.

Beside seed 003's routes, two for editors (policy/describe.py): ``POST /api/policies/validate``
checks a rule as saving would, reporting every field's problem with the position in the
expression, and says in one sentence what the rule does; it changes nothing.
``GET /api/policies/summaries`` gives that sentence for every stored rule.
"""

from __future__ import annotations

from ..policy.describe import describe, validate
from ..policy.engine import ACTIONS, MAX_ACTION_DATA, MAX_NAME
from ..policy.expr import MAX_SOURCE
from ..policy.store import PolicySaveError, PolicyStore
from .errors import ApiError
from .routes import Api
from .schema import Bool, Int, List, Obj, Str, any_case

PolicyBody = Obj("PolicyBody", {
    "name": Str(min_len=1, max_len=MAX_NAME, description="rule name"),
    "logic": Str(min_len=1, max_len=MAX_SOURCE, description="expression, e.g. Hour >= 22 && DomainMatches(Domain, \"x\")"),
    "action": Str(min_len=1, max_len=16, pattern=any_case(*ACTIONS), description=" | ".join(ACTIONS)),
    "action_data": Str(required=False, default="", max_len=MAX_ACTION_DATA,
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
# What the editor sends as the owner types: every field optional and not yet judged (an
# unknown action is a problem in the answer, not a 400), the expression kept as typed so the
# positions count from its first character.
PolicyDraft = Obj("PolicyDraft", {
    "name": Str(required=False, max_len=MAX_NAME, strip=False),
    "logic": Str(required=False, max_len=MAX_SOURCE, strip=False, description="the expression as typed"),
    "action": Str(required=False, max_len=16),
    "action_data": Str(required=False, max_len=MAX_ACTION_DATA),
    "enabled": Bool(required=False),
}, example={"name": "Kids' bedtime", "logic": "InClientGroup(ClientIP, \"kids\") && Hour >= 21",
            "action": "BLOCK"})
Problem = Obj("PolicyProblem", {
    "field": Str(description="name | logic | action | action_data"),
    "message": Str(),
    "position": Int(minimum=0, required=False, description="0-based character offset into logic"),
}, example={"field": "logic", "message": "expected a value, found operator '&&'", "position": 8})
Validation = Obj("PolicyValidation", {
    "valid": Bool(),
    "errors": List(Problem, description="every problem, in field order"),
    "summary": Str(nullable=True, description="what the rule does, in words (null while invalid)"),
}, example={"valid": True, "errors": [],
            "summary": "Blocks every name for group kids every day from 21:00 to midnight"})
Summary = Obj("PolicySummary", {"id": Int(minimum=0), "summary": Str()},
              example={"id": 0, "summary": "Blocks every name for every client every day 22:00–06:00"})
Summaries = Obj("PolicySummaries", {"summaries": List(Summary), "total": Int(minimum=0)},
                example={"summaries": [Summary.example], "total": 1})
Deleted = Obj("PolicyDeleted", {"message": Str(), "id": Int(minimum=0), "name": Str()},
              example={"message": "Policy deleted successfully", "id": 0, "name": "Block after hours"})


def register(api: Api, *, policies: PolicyStore) -> None:
    def policy_id(text: str) -> int:
        return int(text, 10)  # the route's PID declaration let only digits through

    def stored(fn):
        """Call the store; a failed save becomes a 500 naming it (its domain errors, PolicyError,
        PolicyNotFound and PolicyLimitError, answer 400/404 by their class)."""
        try:
            return fn()
        except PolicySaveError as e:
            raise ApiError(500, f"Failed to save policies: {e}") from None

    def by(req) -> dict:
        return {"actor": req.g.principal.username, "client_ip": req.g.client_ip}

    @api.route("GET", "/api/policies", role="viewer", summary="All policy rules, in evaluation order",
               tags=["policies"], responses={200: PolicyListing})
    async def list_policies(req):
        rules = policies.list()
        return {"policies": [r.to_dict() for r in rules], "total": len(rules)}

    # The fixed paths first: /api/policies/<pid> would take them otherwise.
    @api.route("GET", "/api/policies/summaries", role="viewer", summary="Each rule in plain words",
               tags=["policies"], responses={200: Summaries})
    async def summaries(req):
        rules = policies.list()
        return {"summaries": [{"id": r.id, "summary": describe(r)} for r in rules], "total": len(rules)}

    @api.route("POST", "/api/policies/validate", role="admin", summary="Check a rule as saving would, "
               "and say what it does (changes nothing)", tags=["policies"], body=PolicyDraft,
               responses={200: Validation})
    async def validate_policy(req):
        return validate(req.g.body)

    @api.route("GET", "/api/policies/<pid>", params=PID, role="viewer", summary="One policy rule",
               tags=["policies"], responses={200: Policy, 400: "Invalid policy ID", 404: "Policy not found"})
    async def get_policy(req, pid):
        return stored(lambda: policies.get(policy_id(pid))).to_dict()

    @api.route("POST", "/api/policies", role="admin", summary="Create a policy rule (evaluated after the others)",
               tags=["policies"], body=PolicyBody, status=201,
               responses={201: Policy, 400: "Invalid request (missing fields, invalid action, bad logic)"})
    async def create_policy(req):
        return stored(lambda: policies.create(req.g.body, **by(req))).to_dict()

    @api.route("PUT", "/api/policies/<pid>", params=PID, role="admin", summary="Replace a policy rule (keeps its place)",
               tags=["policies"], body=PolicyBody,
               responses={200: Policy, 400: "Invalid policy ID or request body", 404: "Policy not found"})
    async def update_policy(req, pid):
        return stored(lambda: policies.update(policy_id(pid), req.g.body, **by(req))).to_dict()

    @api.route("DELETE", "/api/policies/<pid>", params=PID, role="admin", summary="Delete a policy rule",
               tags=["policies"],
               responses={200: Deleted, 400: "Invalid policy ID", 404: "Policy not found"})
    async def delete_policy(req, pid):
        rule = stored(lambda: policies.delete(policy_id(pid), **by(req)))
        return {"message": "Policy deleted successfully", "id": rule.id, "name": rule.name}
