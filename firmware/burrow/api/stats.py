"""Statistics: /api/stats, /api/traces/stats, /api/stats/timeseries, /api/top-domains,
/api/top-clients, /api/realtime and /api/dashboard (seed 003 shapes where it has them).

Counts over time come from the live per-minute buckets (``recorder.stats``, no database scan);
per-domain and per-client tops and the trace breakdown read the query log on its worker thread
(``recorder.query``) so the DNS loop never waits on SQLite.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from ..storage.queryfilter import QueryFilter
from .errors import ApiError, ValidationError, now_iso
from .health import format_uptime
from .blocking_api import BlockingState
from .forwarding_api import Preset, router_preset_state
from .groups_api import groups_answer
from .lists_api import lists_answer
from .routes import Api
from .schema import DECIMAL, DURATION_UNIT, POSITIVE_DECIMAL, RFC3339, Bool, Int, List, Num, Obj, Query, Str

if TYPE_CHECKING:
    from ..board.appliance import Appliance
    from ..filtering.groups import Groups
    from ..filtering.manager import ListManager
    from ..filtering.pause import BlockingPause
    from ..filtering.sources import ListStore
    from ..forwarding import ForwardRules
    from ..health import Health
    from ..resolver import Resolver
    from ..telemetry.recorder import Recorder

STATS_WINDOW = 7 * 86400  # the live buckets keep 7 days of minutes: the longest stats window
MAX_POINTS = 1440  # points in one timeseries answer (a day of minutes)
TARGET_POINTS = 288  # default step aims at about this many points (5 minutes over a day)
# The trace breakdown reads blocked rows of the log page by page; this caps the rows read for
# one answer (a few MB of dicts at most) so a huge log cannot stall the worker thread for long.
TRACE_PAGE = 1000
MAX_TRACE_ROWS = 50_000

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SINCE_HELP = "Time period: a duration (1h, 24h, 7d, 90m) or an RFC 3339 timestamp"
# What parse_duration reads: terms like 1h30m, one of them not zero
DURATION = f"({DECIMAL}{DURATION_UNIT})*{POSITIVE_DECIMAL}{DURATION_UNIT}({DECIMAL}{DURATION_UNIT})*"
SINCE = f"^(|{DURATION}|{RFC3339})$"  # what parse_since reads ("": the default)
T = TypeVar("T")


def since_param(description: str = SINCE_HELP, **kw) -> Str:
    """A ``since``-like query parameter: its shape is declared (and so checked and documented);
    parse_since refuses only what no pattern can say (a date that does not exist, a moment in
    the future or beyond the kept window)."""
    return Str(required=False, max_len=64, pattern=SINCE, hint="a duration (24h, 7d) or an RFC 3339 time", description=description, **kw)


# ---- parameters ------------------------------------------------------------------------------

def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration with days: "1h", "24h", "7d", "1h30m", "45s"."""
    text = text.strip().lower()
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if m is None:
            raise ValueError(f"{text!r} is not a duration (write 1h, 24h or 7d) or an RFC 3339 time")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or total <= 0:
        raise ValueError("the duration must be positive")
    return total


def parse_time(text: str) -> float:
    """Unix seconds of an RFC 3339 timestamp (a timestamp without an offset is UTC)."""
    moment = datetime.datetime.fromisoformat(text.strip().replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def parse_since(text: str | None, default: str = "24h", field: str = "since",
                now: float | None = None, max_seconds: float | None = None) -> tuple[float, float]:
    """(start as unix seconds, window length in seconds) for a ``since`` parameter: a duration
    back from now or an RFC 3339 timestamp. Raises a 400 naming ``field``."""
    now = time.time() if now is None else now
    text = default if text in (None, "") else text
    try:
        try:
            seconds = parse_duration(text)
        except ValueError as duration_error:
            if not re.match(r"^\d{4}-\d{2}-\d{2}", text.strip()):
                raise duration_error
            try:
                start = parse_time(text)
            except ValueError:
                raise ValueError(f"{text!r} is not an RFC 3339 timestamp") from None
            seconds = now - start
            if seconds <= 0:
                raise ValueError("must be in the past") from None
    except ValueError as e:
        raise ValidationError([(field, str(e))]) from None
    if max_seconds is not None and seconds > max_seconds + 60:
        raise ValidationError([(field, f"at most {format_uptime(max_seconds)} back")])
    return now - seconds, seconds


def iso(ts: float) -> str:
    moment = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


async def from_log(read: Awaitable[T]) -> T:
    """Await a read of the query log; 503 if storage is not there."""
    try:
        return await read
    except ApiError:
        raise
    except Exception as e:  # a closed or broken database: the seed answers 503
        raise ApiError(503, f"storage not available: {type(e).__name__}") from None


async def read_log(recorder: Recorder, method_name: str, *args, **kwargs):
    """Run a QueryLogDB method on the recorder's worker thread; 503 if storage is not there."""
    return await from_log(recorder.query(getattr(recorder.db, method_name), *args, **kwargs))


def stats_summary(recorder: Recorder, seconds: float) -> dict:
    summary = recorder.stats.summary(seconds)
    summary["period"] = format_uptime(seconds)
    summary["timestamp"] = now_iso()
    return summary


# ---- schemas ---------------------------------------------------------------------------------

Stats = Obj("Stats", {
    "total_queries": Int(), "blocked_queries": Int(), "cached_queries": Int(),
    "block_rate": Num(description="percent"), "cache_hit_rate": Num(description="percent"),
    "avg_response_ms": Num(), "period": Str(description="Go duration, e.g. 24h0m0s"),
    "timestamp": Str(),
    "threats_blocked": Int(description="blocked by threat feeds (also in blocked_queries); "
                                       "each is a security event"),
    "dropped_queries": Int(description="blocked by sending no answer at all, an RPZ rpz-drop. rule "
                                       "(decision dropped; also in blocked_queries)"),
}, example={"total_queries": 10000, "blocked_queries": 2500, "cached_queries": 5000,
            "block_rate": 25.0, "cache_hit_rate": 50.0, "avg_response_ms": 5.2,
            "period": "24h0m0s", "timestamp": "2025-11-22T10:30:00Z", "threats_blocked": 3,
            "dropped_queries": 0})

Counts = Obj("CountsByName", {}, additional=True)
TraceStats = Obj("TraceStats", {
    "since": Str(), "until": Str(), "total_blocked": Int(),
    "by_stage": Counts, "by_action": Counts, "by_rule": Counts, "by_source": Counts,
    "truncated": Bool(required=False, description=f"true when more than {MAX_TRACE_ROWS} blocked "
                                                  "queries matched: the by_* counts cover the newest"),
}, example={"since": "2025-11-23T10:30:00Z", "until": "2025-11-24T10:30:00Z", "total_blocked": 15432,
            "by_stage": {"blocklist": 12000, "policy": 3200, "cache": 232},
            "by_action": {"block": 12000, "BLOCK": 3200, "blocked_hit": 232},
            "by_rule": {"Block ads and trackers": 2100, "Block social media": 1100},
            "by_source": {"manager": 12000, "policy_engine": 3200, "response_cache": 232},
            "truncated": False})

TopDomain = Obj("TopDomain", {"domain": Str(max_len=255), "queries": Int(), "blocked": Bool()})
TopDomains = Obj("TopDomains", {"domains": List(TopDomain, max_items=1000), "limit": Int()},
                 example={"domains": [{"domain": "google.com", "queries": 1250, "blocked": False},
                                      {"domain": "facebook.com", "queries": 850, "blocked": False}],
                          "limit": 10})
TopClient = Obj("TopClient", {"client_ip": Str(max_len=64), "queries": Int(),
                              "blocked": Int(description="blocked queries of this client")})
TopClients = Obj("TopClients", {"clients": List(TopClient, max_items=1000), "limit": Int()},
                 example={"clients": [{"client_ip": "192.168.1.100", "queries": 5230, "blocked": 812}],
                          "limit": 10})
Point = Obj("TimeseriesPoint", {"timestamp": Str(), "total": Int(), "blocked": Int(), "cached": Int()})
Timeseries = Obj("Timeseries", {"since": Str(), "until": Str(), "step": Str(),
                                "points": List(Point, max_items=MAX_POINTS + 1)},
                 example={"since": "2025-11-22T09:30:00Z", "until": "2025-11-22T10:30:00Z", "step": "5m0s",
                          "points": [{"timestamp": "2025-11-22T09:30:00.000Z", "total": 120,
                                      "blocked": 30, "cached": 60}]})
LastMinute = Obj("LastMinute", {"total": Int(), "blocked": Int(), "cached": Int()})
Realtime = Obj("Realtime", {
    "qps": Num(description="queries per second over the last 10 s"),
    "last_minute": LastMinute,
    "decisions": Obj("RealtimeDecisions", {}, additional=True,
                     description="queries per decision in the current and previous minute"),
    "timestamp": Str(),
}, example={"qps": 4.2, "last_minute": {"total": 250, "blocked": 40, "cached": 120},
            "decisions": {"cached": 120, "resolved": 90, "blocked": 40},
            "timestamp": "2025-11-22T10:30:00Z"})
StatusShape = Obj("ApplianceStatus", {"state": Str(), "reasons": List(Str()), "led": Str()})
QueryType = Obj("QueryTypeCount", {"type": Str(description="record type: A, AAAA, HTTPS, ... or TYPEn"),
                                   "queries": Int()})
Dashboard = Obj("Dashboard", {
    "stats": Stats, "realtime": Realtime,
    "top_domains": List(TopDomain), "top_blocked_domains": List(TopDomain),
    "top_clients": List(TopClient),
    "query_types": List(QueryType, description="queries by record type in the last 24 h, most first"),
    "status": StatusShape,
    "upstreams": List(Obj("UpstreamHealth", {}, additional=True)),
    "cache": Obj("CacheStats", {}, additional=True),
    "system": Obj("DashboardSystem", {
        "temperature": Obj("HottestZone", {}, additional=True, nullable=True,
                           description="hottest thermal zone {zone, type, celsius}; null when none"),
        "memory": Obj("DashboardMemory", {}, additional=True, nullable=True),
        "disk": Obj("DashboardDisk", {}, additional=True, nullable=True),
        "storage_writes": Obj("StorageWrites", {}, additional=True, nullable=True,
                              description="as /api/system storage_writes (bytes_today, today_since, ...)"),
    }, description="the board's figures, as in /api/system (read at most every 5 s)"),
    "version": Str(), "uptime": Str(), "timestamp": Str(),
    # What the dashboard's other cards show, so that a phone opening it asks once, not five times:
    "blocking": BlockingState, "router_preset": Preset,
    "groups": Obj("DashboardGroups", {}, additional=True, description="as GET /api/groups"),
    "lists": Obj("DashboardLists", {}, additional=True, description="as GET /api/lists"),
}, example={
    "stats": {"total_queries": 10000, "blocked_queries": 2500, "cached_queries": 5000, "block_rate": 25.0,
              "cache_hit_rate": 50.0, "avg_response_ms": 5.2, "period": "24h0m0s",
              "timestamp": "2025-11-22T10:30:00Z", "threats_blocked": 3, "dropped_queries": 0},
    "realtime": {"qps": 4.2, "last_minute": {"total": 250, "blocked": 40, "cached": 120},
                 "decisions": {"cached": 120}, "timestamp": "2025-11-22T10:30:00Z"},
    "top_domains": [{"domain": "google.com", "queries": 1250, "blocked": False}],
    "top_blocked_domains": [{"domain": "ads.example.net", "queries": 300, "blocked": True}],
    "top_clients": [{"client_ip": "192.168.1.100", "queries": 5230, "blocked": 812}],
    "query_types": [{"type": "A", "queries": 6100}, {"type": "AAAA", "queries": 3000},
                    {"type": "HTTPS", "queries": 900}],
    "status": {"state": "ready", "reasons": [], "led": "ready"},
    "upstreams": [{"address": "1.1.1.1:53", "healthy": True, "srtt_ms": 12.5}],
    "cache": {"entries": 1523, "bytes": 1048576, "max_bytes": 16777216, "hits": 5000, "misses": 2000},
    "system": {"temperature": {"zone": "thermal_zone0", "type": "cpu-thermal", "celsius": 48.2},
               "memory": {"total": 1984425984, "available": 1524416512, "used": 300000000, "percent": 23.2},
               "disk": {"path": "/var/lib/burrow", "total": 31000000000, "used": 2100000000,
                        "free": 28900000000, "percent": 6.8},
               "storage_writes": {"device": "mmcblk0", "bytes_since_boot": 1200000000,
                                  "bytes_per_day_since_boot": 90000000, "bytes_per_day_recent": 40000000,
                                  "bytes_today": 18000000, "today_since": 1763769600.0}},
    "version": "0.1.0", "uptime": "2h15m30s", "timestamp": "2025-11-22T10:30:00Z",
    "blocking": BlockingState.example, "router_preset": Preset.example,
    "groups": {"groups": [{"name": "default", "clients": []}], "total": 1},
    "lists": {"lists": [], "total": 0, "index": {"domains": 0}}})

SinceQuery = Query({"since": since_param(SINCE_HELP + " (default 24h)")})
TopDomainsQuery = Query({
    "limit": Int(minimum=1, maximum=100, default=10, description="Number of results (1-100)"),
    "blocked": Bool(default=False, description="true: blocked domains; false: allowed ones"),
    "since": since_param(SINCE_HELP + " (default: whole log)"),
})


# ---- answers (the JSON routes and the HTML partials of ui_partials.py both call these) --------

def stats_answer(recorder: Recorder, query: dict) -> dict:
    """The /api/stats answer for a query validated by ``SinceQuery``."""
    _, seconds = parse_since(query.get("since"), max_seconds=STATS_WINDOW)
    return stats_summary(recorder, seconds)


async def top_domains_answer(recorder: Recorder, query: dict) -> dict:
    """The /api/top-domains answer for a query validated by ``TopDomainsQuery``."""
    since = parse_since(query["since"])[0] if query.get("since") else None
    domains = await read_log(recorder, "top_domains", query["limit"], query["blocked"], since)
    return {"domains": domains, "limit": query["limit"]}


# ---- the trace breakdown ---------------------------------------------------------------------

def _tally(counts: dict, key) -> None:
    if key:
        counts[key] = counts.get(key, 0) + 1


async def trace_stats(recorder: Recorder, since: float, until: float) -> dict:
    """The seed's /api/traces/stats answer for blocked queries in [since, until)."""
    by: dict[str, dict] = {"stage": {}, "action": {}, "rule": {}, "source": {}}
    # The whole log (rows not flushed yet included: the Recorder merges them), newest first,
    # page by page below the last id read, so rows written or flushed meanwhile shift nothing.
    match = QueryFilter(since=since, until=until, blocked=True)
    total: int | None = None
    scanned = 0
    while scanned < MAX_TRACE_ROWS:  # bounded: MAX_TRACE_ROWS rows at most
        rows, matched = await from_log(recorder.search(match, TRACE_PAGE))
        if total is None:
            total = matched
        for row in rows:
            _count_trace(by, row)
        scanned += len(rows)
        if len(rows) < TRACE_PAGE:
            break
        match = dataclasses.replace(match, below_id=rows[-1]["id"])
    total = total or 0
    return {"since": iso(since), "until": iso(until), "total_blocked": total,
            "by_stage": by["stage"], "by_action": by["action"], "by_rule": by["rule"],
            "by_source": by["source"], "truncated": scanned < total}


def decisive_entry(trace) -> dict | None:
    """The trace entry that decided a query: the last one that blocked (or dropped); else the
    last entry; None for no trace."""
    decisive = None
    for entry in trace or ():
        if isinstance(entry, dict):
            decisive = entry
    for entry in reversed(trace or ()):
        action = str(entry.get("action", "")).lower() if isinstance(entry, dict) else ""
        if "block" in action or action == "drop":
            return entry
    return decisive


def _count_trace(by: dict, row: dict) -> None:
    decisive = decisive_entry(row.get("block_trace"))
    if decisive is None:
        _tally(by["stage"], "unknown")
        return
    for name in ("stage", "action", "rule", "source"):
        _tally(by[name], decisive.get(name))


# ---- routes ----------------------------------------------------------------------------------

def register(api: Api, *, recorder: Recorder, resolver: Resolver, board: Appliance, health: Health,
             version: str, pause: BlockingPause, groups: Groups, lists: ListManager, list_store: ListStore,
             forwarding: ForwardRules) -> None:
    @api.route("GET", "/api/stats", role="viewer", summary="DNS query statistics for a time period",
               tags=["stats"], query=SinceQuery, responses={200: Stats, 503: "storage not available"})
    async def get_stats(req):
        return stats_answer(recorder, req.g.query)

    @api.route("GET", "/api/traces/stats", role="viewer",
               summary="How blocked queries were blocked: counts by stage, action, rule and source",
               tags=["stats"], query=SinceQuery, responses={200: TraceStats, 503: "storage not available"})
    async def get_trace_stats(req):
        now = time.time()
        since, _ = parse_since(req.g.query.get("since"), now=now, max_seconds=now)  # not before 1970
        return await trace_stats(recorder, since, now + 1)

    @api.route("GET", "/api/stats/timeseries", role="viewer", summary="Queries over time, for charts",
               tags=["stats"], query=Query({
                   "since": since_param(SINCE_HELP + " (default 24h)"),
                   "step": Str(required=False, max_len=32, pattern=f"^(|{DURATION})$",
                               description="Width of one point, whole minutes (5m, 1h); default: "
                                           f"about {TARGET_POINTS} points"),
               }), responses={200: Timeseries, 503: "storage not available"})
    async def get_timeseries(req):
        now = time.time()
        since, seconds = parse_since(req.g.query.get("since"), now=now, max_seconds=STATS_WINDOW)
        step_text = req.g.query.get("step")
        if step_text:
            try:
                step = parse_duration(step_text)
            except ValueError as e:
                raise ValidationError([("step", str(e))]) from None
            if step < 60:
                raise ValidationError([("step", "at least 1m")])
        else:
            step = max(60, math.ceil(seconds / TARGET_POINTS / 60) * 60)
        step = min(max(1, round(step / 60)) * 60, STATS_WINDOW)  # a huge step looped for ages
        if seconds / step > MAX_POINTS:
            raise ValidationError([("step", f"too small for since: at most {MAX_POINTS} points")])
        points = recorder.stats.timeseries(seconds, step, now=now)
        return {"since": iso(since), "until": iso(now), "step": format_uptime(step), "points": points}

    @api.route("GET", "/api/top-domains", role="viewer", summary="Most queried domains", tags=["stats"],
               query=TopDomainsQuery, responses={200: TopDomains, 503: "storage not available"})
    async def top_domains(req):
        return await top_domains_answer(recorder, req.g.query)

    @api.route("GET", "/api/top-clients", role="viewer", summary="Busiest clients", tags=["stats"],
               query=Query({
                   "limit": Int(minimum=1, maximum=100, default=10, description="Number of results (1-100)"),
                   "since": since_param(SINCE_HELP + " (default: whole log)"),
               }), responses={200: TopClients, 503: "storage not available"})
    async def top_clients(req):
        q = req.g.query
        since = parse_since(q["since"])[0] if q.get("since") else None
        clients = await read_log(recorder, "top_clients", q["limit"], since)
        return {"clients": clients, "limit": q["limit"]}

    @api.route("GET", "/api/realtime", role="viewer", summary="Current queries per second and last-minute counters",
               tags=["stats"], responses={200: Realtime, 503: "storage not available"})
    async def realtime(req):
        return realtime_view(recorder)

    @api.route("GET", "/api/dashboard", role="viewer", summary="Everything the phone dashboard shows, in one call",
               tags=["stats"], responses={200: Dashboard, 503: "storage not available"})
    async def dashboard(req):
        since = time.time() - 86400
        top = await read_log(recorder, "top_domains", 5, False, since)
        blocked = await read_log(recorder, "top_domains", 5, True, since)
        clients = await read_log(recorder, "top_clients", 5, since)
        types = await read_log(recorder, "query_types", since)
        cache = resolver.cache.stats()
        cache["enabled"] = bool(resolver.cache_stage.enabled)
        snap = await board.system_recent()
        temps = snap.get("temperatures") or []
        return {
            "stats": stats_summary(recorder, 86400),
            "realtime": realtime_view(recorder),
            "top_domains": top, "top_blocked_domains": blocked, "top_clients": clients,
            "query_types": types, "status": board.status().as_dict(),
            "upstreams": [s.snapshot() for s in resolver.upstreams.servers],
            "cache": cache,
            "system": {"temperature": max(temps, key=lambda t: t.get("celsius") or 0) if temps else None,
                       "memory": snap.get("memory"), "disk": snap.get("disk"),
                       "storage_writes": snap.get("storage_writes")},
            "version": version, "uptime": format_uptime(health.uptime_seconds()),
            "timestamp": now_iso(),
            "blocking": pause.state(None), "groups": groups_answer(groups),
            "lists": lists_answer(list_store, lists), "router_preset": router_preset_state(forwarding, board),
        }


def realtime_view(recorder: Recorder) -> dict:
    stats = recorder.stats
    out = stats.realtime()
    out["decisions"] = stats.decision_counts(120)  # this minute and the one before
    out["timestamp"] = now_iso()
    return out
