"""The query log: GET /api/queries (seed 003), newest first, with paging and filters.

Rows reach the database once per flush interval (60 s by default, to spare the flash); the
Recorder's ``search`` merges the rows it holds but has not written yet in front of them, with
the filter applied by one definition (storage/queryfilter.py), so a query shows up here within a
second of being answered. Every row has its id from then on (the Recorder gives it when it takes
the row in), the same before and after the flush. This module only reads the request, calls
``search`` and shapes the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..dns import qtypes
from ..dns.decision import Decision
from ..storage.queryfilter import TRACE_KEYS, QueryFilter
from .errors import ValidationError
from .routes import Api
from .schema import PORT, Bool, Int, List, Num, Obj, Query, Str, any_case
from .stats import SINCE_HELP, from_log, parse_since, since_param

# A type's name in any case, or TYPE1 … TYPE65535 (RFC 3597): what qtypes.number reads. The range
# is the port pattern's (1-65535).
QTYPE_PATTERN = "^(?:" + any_case(*sorted(qtypes.NAMES))[4:-2] + "|[Tt][Yy][Pp][Ee]" + PORT + ")$"

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
    "type": Str(required=False, max_len=16, pattern=QTYPE_PATTERN, hint="a query type",
                description="Query type, any case: A, AAAA, HTTPS, TYPE65280"),
})


def register(api: Api, *, recorder: Recorder) -> None:
    @api.route("GET", "/api/queries", role="viewer", summary="Recent DNS queries, with paging and filters",
               tags=["queries"], query=QueriesQuery, responses={200: Queries, 503: "storage not available"})
    async def list_queries(req):
        return await queries_answer(recorder, req.g.query)


async def queries_answer(recorder: Recorder, q: dict) -> dict:
    """The /api/queries answer for a query validated by ``QueriesQuery`` (the HTML partial of
    ui_partials.py renders the same answer)."""
    match = QueryFilter(
        domain=q.get("domain") or None, client=q.get("client"), blocked=q.get("blocked"),
        since=parse_since(q["since"], field="since")[0] if q.get("since") else None,
        until=parse_since(q["until"], field="until")[0] if q.get("until") else None,
        qtype=query_type(q.get("type")), **{k: q.get(k) for k in TRACE_KEYS})
    limit, offset = q["limit"], q["offset"]
    page, total = await from_log(recorder.search(match, limit, offset))
    return {"queries": page, "total": total, "limit": limit, "offset": offset}


def query_type(text: str | None) -> int | None:
    """The number of the ``type`` parameter (None when not given); a 400 naming ``type``."""
    if not text:
        return None
    try:
        return qtypes.number(text)
    except ValueError:
        raise ValidationError([("type", f"{text!r} is not a query type (A, AAAA, MX, TYPE65280 …)")]) from None
