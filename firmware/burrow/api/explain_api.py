"""GET /api/blocklists/check?domain=&client= — why a name would be answered the way it is.

It asks the same objects the DNS path asks (pause, the owner's allow/deny lists, policy
rules when present, the compiled index with every regex checked) without sending anything
upstream, and reports which stage would decide, what matched, and the answer it would give.
"""

from __future__ import annotations

import ipaddress

from ..dns import qtypes
from ..dns.names import view_key
from .errors import ApiError
from .routes import Api
from .schema import IP, Obj, Query, Str, any_case, domain_name

CheckQuery = Query({
    "domain": domain_name(description="the name to explain"),
    "client": Str(required=False, max_len=64, pattern=f"^{IP}$", hint="an IP address", description="client address (default: the caller)"),
    "type": Str(required=False, max_len=10, default="A", pattern=any_case(*sorted(qtypes.NAMES)),
                description="query type, e.g. A or AAAA"),
})
Explanation = Obj("Explanation", {}, additional=True, example={
    "domain": "ads.example.com", "client": "192.168.1.20", "type": "A", "decision": "blocked",
    "stage": "blocklist", "rule": "StevenBlack", "answer": "0.0.0.0",
    "matches": [{"list": "StevenBlack", "kind": "block", "how": "subtree", "entry": "example.com",
                 "action": "block", "important": False}]})


def register(api: Api, app) -> None:
    @api.route("GET", "/api/blocklists/check", role="viewer", tags=["filtering"], query=CheckQuery,
               summary="Explain how a domain would be answered, and which lists or rules match",
               responses={200: Explanation})
    async def check(req):
        q = req.g.query
        domain = q["domain"].strip().rstrip(".").lower()
        client = q.get("client") or req.g.client_ip
        try:
            ipaddress.ip_address(client)
        except ValueError:
            raise ApiError(400, "client must be an IP address", [{"field": "client", "message": "not an IP"}]) from None
        qtype_name = q.get("type", "A").upper()
        try:
            qtype = qtypes.number(qtype_name)
        except ValueError:
            raise ApiError(400, f"unknown query type {qtype_name!r}", [{"field": "type", "message": "unknown type"}]) from None
        groups = sorted(app.groups.groups_of(client)) if app.groups is not None else ["default"]
        view = view_key(groups)
        out = {"domain": domain, "client": client, "type": qtype_name, "groups": groups, "matches": []}
        filt = app.filter
        index = filt.index
        if index is not None:
            for m in index.lookup(domain, qtype, lists=filt.lists_for(view), complete=True) or ():
                for list_id, info in sorted(index.lists.items()):
                    if m.mask >> list_id & 1:
                        out["matches"].append({"list": info.get("name") or f"list {list_id}",
                                               "kind": info.get("kind"), "how": m.how, "entry": m.name,
                                               "action": m.action, "important": m.important})
        allow = filt.allow_list.match(domain, groups) if filt.allow_list is not None else None
        deny = filt.deny_list.match(domain, groups) if filt.deny_list is not None else None
        if allow:
            out["matches"].append({"list": "whitelist", "kind": "allow", "entry": allow})
        if deny:
            out["matches"].append({"list": "denylist", "kind": "block", "entry": deny})
        policy = getattr(app, "policy", None)
        engine = getattr(policy, "engine", None)
        decided = None
        if engine is not None:
            hit = engine.evaluate(domain, client, qtype_name)
            if hit is not None:
                out["matches"].append({"list": "policy", "kind": hit.action.lower(), "rule": hit.rule.name})
                decided = ("policy", hit.rule.name, {"BLOCK": "blocked", "ALLOW": "allowed",
                                                     "REDIRECT": "redirected", "FORWARD": "forwarded"}[hit.action])
        if app.pause is not None and app.pause.paused(groups):
            out.update(decision="allowed", stage="filter", rule="blocking paused")
            return out
        if decided is None:
            if allow:
                decided = ("whitelist", allow, "allowed")
            elif deny:
                decided = ("denylist", deny, "blocked")
            else:
                verdict = filt.verdict(domain, qtype, view)
                if verdict is not None:
                    match, list_id, blocked = verdict
                    name = index.lists.get(list_id, {}).get("name") or f"list {list_id}"
                    decided = ("blocklist", name, "blocked" if blocked else "allowed")
        if decided is None:
            out.update(decision="forwarded", stage="forward", rule=None)
        else:
            out.update(stage=decided[0], rule=decided[1], decision=decided[2])
        if out["decision"] == "blocked":
            mode = filt.settings.mode
            out["answer"] = {"nxdomain": "NXDOMAIN", "nodata": "NODATA"}.get(mode) or (
                (filt.settings.custom_ipv4 if mode == "custom" else "0.0.0.0") if qtype_name == "A" else
                (filt.settings.custom_ipv6 if mode == "custom" else "::") if qtype_name == "AAAA" else "NODATA")
        return out
