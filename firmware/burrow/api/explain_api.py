"""GET /api/blocklists/check?domain=&client=&type= — why a name would be answered the way it is.

The question runs through the real DNS chain as a dry run (dns/explain.py): the stages decide
as they would for that client, and nothing is sent upstream, cached, logged or counted. This
module only turns the run into JSON: the deciding trace entry, every list, rule or record that
matches, the reply that would be sent, or where the question would be forwarded.
"""

from __future__ import annotations

import ipaddress

from dnslib import RCODE, DNSRecord

from ..dns import qtypes, wire
from ..dns.decision import Decision
from ..dns.explain import DryRun, dry_run, question
from ..dns.message import render
from ..dns.names import view_groups
from .errors import ApiError
from .routes import Api
from .schema import IP, Bool, Int, List, Obj, Query, Str, any_case, domain_name

CheckQuery = Query({
    "domain": domain_name(description="the name to explain"),
    "client": Str(required=False, max_len=64, pattern=f"^{IP}$", hint="an IP address", description="client address (default: the caller)"),
    "type": Str(required=False, max_len=10, default="A", pattern=any_case(*sorted(qtypes.NAMES)),
                description="query type, e.g. A or AAAA"),
})

_Text = Str(required=False, nullable=True)
MatchSchema = Obj("ExplainMatch", {
    "list": Str(description="list name, or whitelist, denylist, policy, local_records, auto_ptr, zone, "
                            "conditional_forwarding"),
    "kind": _Text, "how": Str(required=False), "entry": Str(required=False), "action": Str(required=False),
    "important": Bool(required=False), "rule": Str(required=False),
    "cname": Str(required=False, description="the CNAME target of a cached answer that matched, not the name asked"),
})
Record = Obj("ExplainRecord", {
    "section": Str(enum=["answer", "authority", "additional"]), "name": Str(), "type": Str(), "ttl": Int(),
    "data": Str(max_len=65535, description="the record's data in zone-file form"),
})
Reply = Obj("ExplainReply", {
    "rcode": Str(description="NOERROR, NXDOMAIN, SERVFAIL, REFUSED..."),
    "ede": Obj("ExplainEde", {"code": Int(), "text": Str()}, nullable=True,
               description="Extended DNS Error (RFC 8914) sent with the reply"),
    "records": List(Record, max_items=65535),
}, nullable=True, description="the reply a client would get; null when the upstream's answer decides "
                              "(see upstream) or when nothing would be sent (a drop)")
Upstream = Obj("ExplainUpstream", {
    "route": Str(enum=["default", "conditional", "policy"], description="the default upstreams, a conditional "
                                                                       "forwarding rule's or a policy FORWARD rule's"),
    "rule": _Text, "servers": List(Str()),
}, nullable=True, description="where the question would be sent (nothing is sent); null when it stays home")
TraceSchema = Obj("ExplainStep", {"stage": Str(), "action": Str(), "rule": Str(required=False),
                                  "source": Str(required=False), "detail": Str(required=False)})
Explanation = Obj("Explanation", {
    "domain": Str(), "client": Str(), "type": Str(), "groups": List(Str(), description="the client's groups"),
    "decision": Str(description="the Decision the query log would show (blocked, allowed, local, cached, "
                                "redirected, forwarded_conditional, refused...), or forwarded: sent to the "
                                "default upstreams"),
    "stage": _Text, "rule": _Text, "detail": _Text,
    "answer": Str(required=False, max_len=1 << 20,
                  description="the reply in short (an address, NXDOMAIN, NODATA), when known"),
    "matches": List(MatchSchema, max_items=65535),
    "reply": Reply, "upstream": Upstream,
    "pending": List(Str(enum=["cname_inspection", "rebind_protection"]),
                    description="checks that would run on the upstream's answer, which nothing here has"),
    "trace": List(TraceSchema, description="what each stage did, as the query log's block_trace"),
}, example={
    "domain": "ads.example.com", "client": "192.168.1.20", "type": "A", "groups": ["default"],
    "decision": "blocked", "stage": "blocklist", "rule": "StevenBlack", "detail": "subtree example.com",
    "answer": "0.0.0.0",
    "matches": [{"list": "StevenBlack", "kind": "block", "how": "subtree", "entry": "example.com",
                 "action": "block", "important": False}],
    "reply": {"rcode": "NOERROR", "ede": {"code": 15, "text": "StevenBlack: example.com"},
              "records": [{"section": "answer", "name": "ads.example.com", "type": "A", "ttl": 10,
                           "data": "0.0.0.0"}]},
    "upstream": None, "pending": [],
    "trace": [{"stage": "blocklist", "action": "block", "rule": "StevenBlack", "source": "manager",
               "detail": "subtree example.com"}]})

_SECTIONS = (("answer", "rr"), ("authority", "auth"), ("additional", "ar"))


def reply_of(run: DryRun) -> dict | None:
    """The reply the run's answer would be, record by record (None: not decided here)."""
    if run.dropped or run.explain.upstream is not None:
        return None
    answer = run.answer
    message = DNSRecord.parse(render(run.query, answer))
    records = [{"section": section, "name": str(rr.rname).rstrip(".") or ".",
                "type": qtypes.name(rr.rtype), "ttl": rr.ttl, "data": rr.rdata.toZone()}
               for section, attr in _SECTIONS for rr in getattr(message, attr)]
    ede = {"code": answer.ede[0], "text": answer.ede[1]} if answer.ede is not None else None
    return {"rcode": RCODE.get(answer.rcode, str(answer.rcode)), "ede": ede, "records": records}


def describe(run: DryRun, client: str, type_name: str) -> dict:
    answer = run.answer
    decision = answer.decision.label
    if answer.decision is Decision.RESOLVED and run.explain.upstream is not None:
        decision = "forwarded"  # nothing was resolved: it would be
    entry = run.deciding
    out = {"domain": run.query.name, "client": client, "type": type_name,
           "groups": list(view_groups(run.query.view)), "decision": decision,
           "stage": entry.stage if entry else None, "rule": entry and entry.rule or None,
           "detail": entry and entry.detail or None, "matches": run.matches, "reply": reply_of(run),
           "upstream": run.explain.upstream, "pending": run.explain.pending,
           "trace": [e.as_dict() for e in run.query.trace]}
    reply = out["reply"]
    if reply is not None:
        shown = [r["data"] for r in reply["records"] if r["section"] == "answer"]
        out["answer"] = reply["rcode"] if reply["rcode"] != "NOERROR" else ", ".join(shown) or "NODATA"
    return out


def register(api: Api, app) -> None:
    @api.route("GET", "/api/blocklists/check", role="viewer", tags=["filtering"], query=CheckQuery,
               summary="Explain how a domain would be answered: the DNS chain as a dry run "
                       "(nothing sent upstream, cached, logged or counted)",
               responses={200: Explanation})
    async def check(req):
        q = req.g.query
        client = q.get("client") or req.g.client_ip
        try:
            ipaddress.ip_address(client)
        except ValueError:
            raise ApiError(400, "client must be an IP address", [{"field": "client", "message": "not an IP"}]) from None
        type_name = q.get("type", "A").upper()
        try:
            qtype = qtypes.number(type_name)
        except ValueError:
            raise ApiError(400, f"unknown query type {type_name!r}",
                           [{"field": "type", "message": "unknown type"}]) from None
        view = app.groups.view_of(client) if app.groups is not None else "default"
        try:
            query = question(q["domain"], qtype, client, view)
        except (wire.WireError, UnicodeError):
            raise ApiError(400, "domain is not a name DNS can carry",
                           [{"field": "domain", "message": "not a valid name (labels of 1-63 bytes, IDNA)"}]) from None
        return describe(await dry_run(app.chain, query), client, type_name)
