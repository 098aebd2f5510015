"""Pi-hole's statistics shapes (api/stats.yaml, history.yaml, info.yaml, padd.yaml) from
Burrow's recorder, lists and resolver.

Pi-hole's "today" numbers cover the last 24 hours (FTL keeps 24 h in memory); so do these.
Counts come from the live per-minute buckets (``recorder.stats``); per-domain, per-client and
per-upstream figures read the query log on its worker thread. How Burrow's decisions map to
Pi-hole's query status names is :data:`STATUS_OF`.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

from ...config.schema import parse_hostport
from ...dns.decision import Decision
from ...storage.queryfilter import QueryFilter
from .http import PiholeError, bad_request

if TYPE_CHECKING:
    from ...services import Services

DAY = 86400
HISTORY_STEP = 600  # seconds per history slot (Pi-hole's 10-minute overTime slots)
MAX_COUNT = 1000  # Pi-hole's ?count= has no documented cap; ours is the query log's page limit

# Pi-hole's query types; the rest count as OTHER (api/stats.yaml).
QUERY_TYPES = ("A", "AAAA", "ANY", "SRV", "SOA", "PTR", "TXT", "NAPTR", "MX", "DS", "RRSIG", "DNSKEY",
               "NS", "SVCB", "HTTPS", "OTHER")
STATUSES = ("UNKNOWN", "GRAVITY", "FORWARDED", "CACHE", "REGEX", "DENYLIST", "EXTERNAL_BLOCKED_IP",
            "EXTERNAL_BLOCKED_NULL", "EXTERNAL_BLOCKED_NXRA", "GRAVITY_CNAME", "REGEX_CNAME", "DENYLIST_CNAME",
            "RETRIED", "RETRIED_DNSSEC", "IN_PROGRESS", "DBBUSY", "SPECIAL_DOMAIN", "CACHE_STALE",
            "EXTERNAL_BLOCKED_EDE15")
# Burrow's decision → Pi-hole's status. Burrow's log keeps why a query was blocked in its trace,
# not in the decision: every block (a list, the deny list, a rule, a threat feed) is GRAVITY
# here. Local records answer from memory, as dnsmasq's own records do in Pi-hole (CACHE).
STATUS_OF = {
    Decision.RESOLVED: "FORWARDED", Decision.ALLOWED: "FORWARDED", Decision.FORWARDED_CONDITIONAL: "FORWARDED",
    Decision.CACHED: "CACHE", Decision.LOCAL: "CACHE", Decision.STALE: "CACHE_STALE",
    Decision.BLOCKED: "GRAVITY", Decision.THREAT: "GRAVITY", Decision.DROPPED: "GRAVITY",
    Decision.REDIRECTED: "SPECIAL_DOMAIN",
}
FORWARDED = frozenset(d for d, name in STATUS_OF.items() if name == "FORWARDED")


# ---- query parameters ----------------------------------------------------------------------------

def flag(req, name: str) -> bool:
    """A boolean query parameter (``true``/``false``, 1/0); absent is false."""
    value = (req.args.get(name) if req.args else None)
    if value is None or value == "":
        return False
    value = value.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise bad_request(f'"{name}" has to be a boolean')


def count(req, default: int) -> int:
    """``?count=``: a positive whole number (at most MAX_COUNT)."""
    value = req.args.get("count") if req.args else None
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise bad_request('"count" has to be a positive integer') from None
    if n < 1:
        raise bad_request('"count" has to be a positive integer')
    return min(n, MAX_COUNT)


# ---- reading the query log ---------------------------------------------------------------------

async def _log(s: Services, method: str, *args) -> Any:
    """A QueryLogDB read on the recorder's worker thread; 503 (Pi-hole's DBBUSY) if it fails."""
    try:
        return await s.recorder.query(getattr(s.recorder.db, method), *args)
    except Exception as e:
        raise PiholeError(503, "database_unavailable", "The query log is not available",
                          type(e).__name__) from None


def _decisions(s: Services, seconds: float) -> dict[Decision, int]:
    counts = s.recorder.stats.decision_counts(seconds)
    return {d: counts.get(d.label, 0) for d in Decision}


def _statuses(decisions: dict[Decision, int]) -> dict[str, int]:
    out = dict.fromkeys(STATUSES, 0)
    for decision, n in decisions.items():
        out[STATUS_OF.get(decision, "UNKNOWN")] += n
    return out


async def query_types(s: Services) -> dict[str, int]:
    types = dict.fromkeys(QUERY_TYPES, 0)
    for row in await _log(s, "query_types", time.time() - DAY):
        key = row["type"] if row["type"] in types else "OTHER"
        types[key] += row["queries"]
    return types


def gravity(s: Services) -> dict:
    status = s.lists.status()
    created = status.get("index_created")
    return {"domains_being_blocked": int(status.get("domains") or 0),
            "last_update": int(created) if created else 0}


async def summary(s: Services) -> dict:
    """GET /api/stats/summary."""
    now = time.time()
    figures = s.recorder.stats.summary(DAY, now=now)
    decisions = _decisions(s, DAY)
    day = await _log(s, "distinct_counts", now - DAY)
    ever = await _log(s, "distinct_counts", None)
    total = figures["total_queries"]
    return {
        "queries": {
            "total": total, "blocked": figures["blocked_queries"],
            "percent_blocked": figures["block_rate"], "unique_domains": day["domains"],
            "forwarded": sum(decisions[d] for d in FORWARDED), "cached": figures["cached_queries"],
            "frequency": round(s.recorder.stats.realtime(now)["qps"], 2),
            "types": await query_types(s), "status": _statuses(decisions),
        },
        "clients": {"active": day["clients"], "total": ever["clients"]},
        "gravity": gravity(s),
    }


async def top_domains(s: Services, blocked: bool, n: int) -> dict:
    """GET /api/stats/top_domains?blocked=&count= (last 24 h)."""
    rows = await _log(s, "top_domains", n, blocked, time.time() - DAY)
    figures = s.recorder.stats.summary(DAY)
    return {"domains": [{"domain": r["domain"], "count": r["queries"]} for r in rows],
            "total_queries": figures["total_queries"], "blocked_queries": figures["blocked_queries"]}


async def top_clients(s: Services, blocked: bool, n: int) -> dict:
    """GET /api/stats/top_clients?blocked=&count= (last 24 h). Burrow knows clients by address:
    ``name`` is empty (Pi-hole's is a reverse-lookup name, "" when it has none)."""
    if blocked:  # busiest by blocked queries: rank every client, then keep those with blocks
        rows = await _log(s, "top_clients", MAX_COUNT, time.time() - DAY)
        ranked = sorted((r for r in rows if r["blocked"]), key=lambda r: (-r["blocked"], r["client_ip"]))[:n]
        clients = [{"ip": r["client_ip"], "name": "", "count": r["blocked"]} for r in ranked]
    else:
        rows = await _log(s, "top_clients", n, time.time() - DAY)
        clients = [{"ip": r["client_ip"], "name": "", "count": r["queries"]} for r in rows]
    figures = s.recorder.stats.summary(DAY)
    return {"clients": clients, "total_queries": figures["total_queries"],
            "blocked_queries": figures["blocked_queries"]}


def _split(address: str) -> tuple[str, int]:
    try:
        return parse_hostport(address, 53)
    except ValueError:
        return address, -1


async def upstreams(s: Services) -> dict:
    """GET /api/stats/upstreams: as FTL, the blocklist and the cache come first as pseudo
    upstreams, then each server with the queries it answered in the last 24 h. ``statistics``
    holds the smoothed response time Burrow keeps (seconds); Burrow keeps no variance."""
    figures = s.recorder.stats.summary(DAY)
    counts = await _log(s, "upstream_counts", time.time() - DAY)
    servers = {server.label: server for server in s.resolver.upstreams.servers}
    rows = [{"ip": "blocklist", "name": "blocklist", "port": -1, "count": figures["blocked_queries"],
             "statistics": {"response": 0.0}},
            {"ip": "cache", "name": "cache", "port": -1, "count": figures["cached_queries"],
             "statistics": {"response": 0.0}}]
    for label in sorted(set(servers) | set(counts), key=lambda k: -counts.get(k, 0)):
        host, port = _split(label)
        server = servers.get(label)
        rows.append({"ip": host, "name": host, "port": port, "count": counts.get(label, 0),
                     "statistics": {"response": round(server.srtt, 6) if server is not None else 0.0}})
    return {"upstreams": rows, "forwarded_queries": sum(counts.values()),
            "total_queries": figures["total_queries"]}


async def recent_blocked(s: Services, n: int) -> list[str]:
    """The ``n`` most recently blocked names, newest first."""
    try:
        rows, _ = await s.recorder.search(QueryFilter(blocked=True), n)
    except Exception as e:
        raise PiholeError(503, "database_unavailable", "The query log is not available",
                          type(e).__name__) from None
    return [row["domain"] for row in rows]


def history(s: Services) -> list[dict]:
    """GET /api/history: 10-minute slots over the last 24 h, oldest first."""
    out = []
    for start, counts in s.recorder.stats.decision_series(DAY, HISTORY_STEP):
        total = sum(counts.values())
        blocked = sum(n for d, n in counts.items() if d.blocked)
        cached = sum(n for d, n in counts.items() if STATUS_OF.get(d) in ("CACHE", "CACHE_STALE"))
        out.append({"timestamp": start, "total": total, "cached": cached, "blocked": blocked,
                    "forwarded": sum(counts[d] for d in FORWARDED)})
    return out


def versions(version: str) -> dict:
    """GET /api/info/version. Burrow is not Pi-hole: each component reports Burrow's version
    locally and nothing remotely (Burrow does not look for Pi-hole releases), so a client that
    compares local and remote hashes never sees an update to install."""
    local = {"branch": "burrow", "version": f"v{version}", "hash": None}
    remote = {"version": None, "hash": None}
    return {"core": {"local": dict(local), "remote": dict(remote)},
            "web": {"local": dict(local), "remote": dict(remote)},
            "ftl": {"local": {**local, "date": None}, "remote": dict(remote)},
            "docker": {"local": None, "remote": None}}


def _user_entries(s: Services) -> dict:
    """Allow and deny entries: exact names as Pi-hole's domains, wildcards and patterns as its
    regex entries."""
    allow, deny = s.allow_list.counts(), s.deny_list.counts()
    return {"allowed": allow["exact"], "denied": deny["exact"],
            "allowed_regex": allow["wildcard"] + allow["regex"], "denied_regex": deny["wildcard"] + deny["regex"]}


async def ftl_info(s: Services) -> dict:
    """GET /api/info/ftl: what Burrow has of FTL's figures."""
    import psutil  # (already loaded by the board's system monitor)

    day = await _log(s, "distinct_counts", time.time() - DAY)
    ever = await _log(s, "distinct_counts", None)
    entries = _user_entries(s)
    process = psutil.Process()
    lists = s.list_store.list()
    return {
        "database": {
            "gravity": gravity(s)["domains_being_blocked"], "groups": len(s.groups.names()),
            "lists": len(lists), "clients": ever["clients"],
            "domains": {"allowed": {"total": entries["allowed"], "enabled": entries["allowed"]},
                        "denied": {"total": entries["denied"], "enabled": entries["denied"]}},
            "regex": {"allowed": {"total": entries["allowed_regex"], "enabled": entries["allowed_regex"]},
                      "denied": {"total": entries["denied_regex"], "enabled": entries["denied_regex"]}},
        },
        "privacy_level": 0,
        "query_frequency": round(s.recorder.stats.realtime()["qps"], 2),
        "clients": {"total": ever["clients"], "active": day["clients"]},
        "pid": os.getpid(),
        "uptime": int(s.health.uptime_seconds() * 1000),
        "%mem": round(process.memory_percent(), 2),
        "%cpu": round(process.cpu_percent(None), 2),
        "allow_destructive": False,
    }


async def padd(s: Services, blocking: dict) -> dict:
    """GET /api/padd: the figures Burrow has (docs/compat.md lists what is left out)."""
    now = time.time()
    figures = s.recorder.stats.summary(DAY, now=now)
    top = await _log(s, "top_domains", 1, False, now - DAY)
    top_blocked = await _log(s, "top_domains", 1, True, now - DAY)
    clients = await _log(s, "top_clients", 1, now - DAY)
    day = await _log(s, "distinct_counts", now - DAY)
    recent = await recent_blocked(s, 1)
    system = await s.board.system_recent()
    temps = [t.get("celsius") for t in system.get("temperatures") or [] if t.get("celsius") is not None]
    dns_port = s.resolver.listen[0][1] if s.resolver.listen else 53
    return {
        "recent_blocked": recent[0] if recent else None,
        "top_domain": top[0]["domain"] if top else None,
        "top_blocked": top_blocked[0]["domain"] if top_blocked else None,
        "top_client": clients[0]["client_ip"] if clients else None,
        "active_clients": day["clients"],
        "gravity_size": gravity(s)["domains_being_blocked"],
        "blocking": blocking["blocking"],
        "queries": {"total": figures["total_queries"], "blocked": figures["blocked_queries"],
                    "percent_blocked": figures["block_rate"]},
        "node_name": socket.gethostname(),
        "host_model": system.get("board"),
        "config": {
            "dhcp_active": False, "dns_port": dns_port,
            "dns_num_upstreams": len(s.resolver.upstreams.servers),
            "dns_revServer_active": len(s.forwarding) > 0, "privacy_level": 0,
        },
        "pid": os.getpid(),
        "sensors": {"cpu_temp": max(temps) if temps else None, "unit": "C"},
    }


async def update_lists(s: Services) -> dict:
    """POST /api/action/gravity: every list downloaded and compiled now (``force``)."""
    from ...clock import ClockNotSet

    try:
        result = await s.lists.refresh(force=True)
    except ClockNotSet as e:
        raise PiholeError(409, "clock_not_set", str(e)) from None
    return s.lists.reload_report(result)
