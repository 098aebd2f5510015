"""The query log: GET /api/queries (seed 003), newest first, with paging and filters.

Rows reach the database once per flush interval (60 s by default, to spare the flash), so the
rows the Recorder holds but has not written yet are merged in front: a query shows up here
within a second of being answered. Every row has its id from then on (the Recorder gives it
when it takes the row in), the same before and after the flush.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..dns.decision import Decision
from .routes import Api
from .schema import Bool, Int, List, Num, Obj, Query, Str
from .stats import RECENT_SCAN, SINCE_HELP, parse_since, parse_time, read_log, since_param

if TYPE_CHECKING:
    from ..telemetry.recorder import Recorder

MAX_LIMIT = 1000
# The decision labels (a row written by a newer release with more decisions reads decision_N).
DECISIONS = ", ".join(d.label for d in Decision)

TraceItem = Obj("TraceEntry", {"stage": Str(), "action": Str(), "rule": Str(required=False),
                               "source": Str(required=False), "detail": Str(required=False)})
QueryItem = Obj("QueryLogEntry", {
    "id": Int(description="the row's unique id, given when the query is recorded; it stays the "
                          "same once the row is written to the log, and is never reused"),
    "timestamp": Str(), "client_ip": Str(max_len=64), "domain": Str(max_len=255),
    "query_type": Str(), "response_code": Int(), "blocked": Bool(), "cached": Bool(),
    "response_time_ms": Num(), "upstream": Str(),
    "decision": Str(required=False, description=f"how it was answered: {DECISIONS}"),
    "block_trace": List(TraceItem, required=False, max_items=64),
})
Queries = Obj("Queries", {"queries": List(QueryItem, max_items=MAX_LIMIT), "total": Int(),
                          "limit": Int(), "offset": Int()},
              example={"queries": [{
                  "id": 12345, "timestamp": "2025-11-22T10:30:00Z", "client_ip": "192.168.1.100",
                  "domain": "example.com", "query_type": "A", "response_code": 0, "blocked": False,
                  "cached": True, "response_time_ms": 5, "upstream": "1.1.1.1:53", "decision": "cached",
                  "block_trace": [{"stage": "blocklist", "action": "block", "source": "manager",
                                   "detail": "rule matched"}]}],
                  "total": 1, "limit": 100, "offset": 0})

QueriesQuery = Query({
    "limit": Int(minimum=1, maximum=MAX_LIMIT, default=100, description="Number of results (1-1000)"),
    "offset": Int(minimum=0, maximum=10_000_000, default=0, description="Pagination offset"),
    "stage": Str(required=False, max_len=64, description="Decision stage (blocklist, policy, cache, rate_limit)"),
    "action": Str(required=False, max_len=64, description="Action (block, drop, BLOCK, blocked_hit, rate_limited)"),
    "rule": Str(required=False, max_len=256, description="Policy rule name"),
    "source": Str(required=False, max_len=64,
                  description="Source (manager, policy_engine, response_cache, rate_limiter)"),
    "domain": Str(required=False, max_len=255, description="The name and its subdomains"),
    "client": Str(required=False, max_len=64, description="Exact client IP"),
    "since": since_param(SINCE_HELP),
    "until": since_param("End of the range (exclusive): RFC 3339 or a duration ago"),
    "blocked": Bool(required=False, description="Only blocked (true) or only not blocked (false)"),
})

_TRACE_FILTERS = ("stage", "action", "rule", "source")


def _matches(row: dict, f: dict) -> bool:
    """The same filters QueryLogDB.fetch applies, for rows not written yet."""
    if f["domain"]:
        d = row.get("domain", "")
        if d != f["domain"] and not d.endswith("." + f["domain"]):
            return False
    if f["client"] and row.get("client_ip") != f["client"]:
        return False
    if f["blocked"] is not None and bool(row.get("blocked")) != f["blocked"]:
        return False
    if f["since"] is not None or f["until"] is not None:
        try:
            ts = parse_time(row["timestamp"])
        except (KeyError, ValueError, TypeError):
            return False
        if f["since"] is not None and ts < f["since"]:
            return False
        if f["until"] is not None and ts >= f["until"]:
            return False
    terms = [(k, f[k]) for k in _TRACE_FILTERS if f[k]]
    if terms:  # all given terms on ONE trace entry, as in the database
        return any(isinstance(e, dict) and all(e.get(k) == v for k, v in terms)
                   for e in row.get("block_trace") or ())
    return True


def register(api: Api, *, recorder: Recorder) -> None:
    @api.route("GET", "/api/queries", role="viewer", summary="Recent DNS queries, with paging and filters",
               tags=["queries"], query=QueriesQuery, responses={200: Queries, 503: "storage not available"})
    async def list_queries(req):
        q = req.g.query
        f = {k: q.get(k) for k in (*_TRACE_FILTERS, "client", "blocked")}
        f["domain"] = q["domain"].lower().rstrip(".") if q.get("domain") else None
        f["since"] = parse_since(q["since"], field="since")[0] if q.get("since") else None
        f["until"] = parse_since(q["until"], field="until")[0] if q.get("until") else None
        limit, offset = q["limit"], q["offset"]

        fresh = [row for row in recorder.recent(RECENT_SCAN) if _matches(row, f)]
        db_filters = dict(domain=f["domain"], client=f["client"], since=f["since"], until=f["until"],
                          stage=f["stage"], action=f["action"], rule=f["rule"], source=f["source"],
                          blocked=f["blocked"])
        # Unflushed rows are the newest: they come first, then the log from its newest row.
        page = fresh[offset:offset + limit]
        db_offset = max(0, offset - len(fresh))
        rows, total = await read_log(recorder, "fetch", limit, db_offset, **db_filters)
        ids = {r["id"] for r in fresh}
        duplicates = 0
        for row in rows:
            if row["id"] in ids:
                duplicates += 1  # being flushed right now: already listed from memory
                continue
            if len(page) >= limit:
                continue
            page.append(row)
        page.sort(key=lambda r: r["id"], reverse=True)  # the log's order: newest row first
        return {"queries": page, "total": total + len(fresh) - duplicates, "limit": limit, "offset": offset}
