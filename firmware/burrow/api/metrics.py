"""GET /metrics: Prometheus text exposition (format 0.0.4).

Labels stay low-cardinality: decision (fourteen values), upstream (the configured servers, at
most 16), transport and error kind. Never domains or client addresses.

Public only when ``server.metrics_public`` is true; otherwise a viewer login or an API token
(``Authorization: Bearer brw_...``, which is what a scraper uses).

Query counts by decision, query type and rcode are the Recorder's running totals (every
drained query, fast-path hits included); they restart at zero with the process, which
Prometheus handles as a counter reset. Query types outside a fixed list count as "other".
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from microdot import Response

from .routes import Api

if TYPE_CHECKING:
    from ..board.appliance import Appliance
    from ..filtering.manager import ListManager
    from ..health import Health
    from ..lifecycle import Supervisor
    from ..resolver import Resolver
    from ..telemetry.events import EventBus
    from ..telemetry.recorder import Recorder

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Builds the text: one HELP/TYPE header per metric family, then its samples."""

    def __init__(self):
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples) -> None:
        """``samples``: a number, or an iterable of (labels dict, number)."""
        if samples is None:
            return
        if isinstance(samples, (int, float)):
            samples = [({}, samples)]
        samples = [(labels, value) for labels, value in samples if value is not None]
        if not samples:
            return
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _number(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


_process = None


def process_figures() -> dict:
    """RSS, CPU seconds, open fds and start time of this process (psutil, else /proc)."""
    global _process
    try:
        import psutil
        if _process is None:
            _process = psutil.Process()
        with _process.oneshot():
            cpu = _process.cpu_times()
            return {"rss": _process.memory_info().rss, "cpu": cpu.user + cpu.system,
                    "fds": _process.num_fds(), "start": _process.create_time()}
    except Exception:
        pass
    out = {}
    try:
        with open("/proc/self/statm") as f:
            out["rss"] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        times = os.times()
        out["cpu"] = times.user + times.system
    except (OSError, ValueError, IndexError):
        pass
    return out


def render_system(f, system: dict) -> None:
    """Board health (issue: system health in /metrics): CPU, load, memory, disk, temperature,
    Pi throttling flags and bytes written to the SD card — the flash-wear figure."""
    cpu = system.get("cpu") or {}
    f("burrow_system_cpu_percent", "gauge", "Machine CPU use, percent.", cpu.get("percent"))
    load = cpu.get("load") or []
    f("burrow_system_load", "gauge", "Load average.",
      [({"period": p}, v) for p, v in zip(("1m", "5m", "15m"), load)])
    mem = system.get("memory") or {}
    f("burrow_system_memory_bytes", "gauge", "Machine memory.",
      [({"kind": k}, mem.get(k)) for k in ("total", "available", "used") if mem.get(k) is not None])
    disk = system.get("disk") or {}
    f("burrow_system_disk_bytes", "gauge", "Space on the data directory's filesystem.",
      [({"kind": k}, disk.get(k)) for k in ("total", "free", "used") if disk.get(k) is not None])
    f("burrow_system_temperature_celsius", "gauge", "Thermal zone temperatures.",
      [({"zone": t.get("zone", ""), "type": t.get("type", "")}, t.get("celsius"))
       for t in system.get("temperatures") or [] if t.get("celsius") is not None])
    throttled = system.get("throttled") or {}
    f("burrow_system_throttled", "gauge", "Raspberry Pi firmware flags (under-voltage, throttling), 1 = set.",
      [({"flag": name}, int(bool(v))) for name, v in sorted((throttled.get("flags") or {}).items())])
    writes = system.get("storage_writes") or {}
    f("burrow_storage_written_bytes", "gauge", "Bytes written to the root block device since boot.",
      writes.get("bytes_since_boot"))
    f("burrow_storage_written_bytes_per_day", "gauge", "Flash writes per day (recent rate when known).",
      writes.get("bytes_per_day_recent") or writes.get("bytes_per_day_since_boot"))


def render(api: Api, system: dict | None, *, version: str, health: Health, supervisor: Supervisor,
           lists: ListManager, recorder: Recorder, resolver: Resolver, events: EventBus) -> str:
    out = Exposition()
    f = out.family
    if system:
        render_system(f, system)
    f("burrow_build_info", "gauge", "Burrow version (value is always 1).", [({"version": version}, 1)])
    f("burrow_uptime_seconds", "gauge", "Seconds since the process started.", health.uptime_seconds())

    f("burrow_blocklist_entries", "gauge", "Names in the live compiled blocklist index.", lists.domains())

    # The query log.
    f("burrow_queries_total", "counter", "DNS queries answered, by decision, query type and rcode.",
      [({"decision": d, "qtype": q, "rcode": str(r)}, n)
       for (d, q, r), n in sorted(recorder.query_counts.items())])
    snap = recorder.snapshot()
    f("burrow_querylog_received_total", "counter", "Query records taken from the telemetry ring.",
      snap["received"])
    f("burrow_querylog_written_total", "counter", "Query-log rows committed to the database.",
      snap["flushed"])
    f("burrow_querylog_pending_rows", "gauge", "Query-log rows waiting for the next flush.", snap["pending"])
    f("burrow_querylog_flush_errors_total", "counter", "Failed query-log flushes.", snap["flush_errors"])
    f("burrow_querylog_dropped_total", "counter", "Query records lost, by where they were dropped.",
      [({"where": "ring"}, snap["dropped_ring"]), ({"where": "pending"}, snap["dropped_pending"]),
       ({"where": "bad_record"}, snap["bad_records"])])
    f("burrow_querylog_ring_overflows_total", "counter", "Drains that found the telemetry ring full.",
      snap["ring_overflows"])

    # The DNS server.
    dns = resolver.server
    c = dns.counters.as_dict()
    f("burrow_dns_requests_total", "counter", "DNS messages received, by transport.",
      [({"transport": t}, c.get(t)) for t in ("udp", "tcp", "dot", "doh")])
    f("burrow_dns_problems_total", "counter",
      "Messages dropped or answered with an error by the server itself, by kind.",
      [({"kind": k}, c[k]) for k in ("dropped", "formerr", "errors", "loops", "tcp_refused",
                                     "tcp_client_cap", "tcp_deadline", "dot_refused", "dot_client_cap") if k in c])
    f("burrow_dns_tcp_connections", "gauge", "Open DNS-over-TCP connections.", dns.tcp_connections)
    f("burrow_dns_dot_connections", "gauge", "Open DNS-over-TLS connections (handshake done).", dns.dot_slots.used)

    # The answer cache.
    s = resolver.cache.stats()
    stage = resolver.cache_stage
    f("burrow_cache_enabled", "gauge", "1 when the answer cache is on.", bool(stage.enabled))
    f("burrow_cache_hits_total", "counter", "Answer-cache hits (fast-path replays count as cached queries).",
      s["hits"])
    f("burrow_cache_misses_total", "counter", "Answer-cache misses.", s["misses"])
    f("burrow_cache_stale_hits_total", "counter", "Expired answers served (RFC 8767).", s["stale_hits"])
    f("burrow_cache_evictions_total", "counter", "Entries evicted by the size cap.", s["evictions"])
    f("burrow_cache_entries", "gauge", "Entries in the answer cache.", s["entries"])
    f("burrow_cache_bytes", "gauge", "Bytes held by the answer cache.", s["bytes"])
    f("burrow_cache_max_bytes", "gauge", "Size cap of the answer cache.", s["max_bytes"])
    f("burrow_cache_prefetches_total", "counter", "Background refreshes of expiring entries.",
      stage.prefetches)

    # The fast path.
    s = resolver.fastpath.stats()
    f("burrow_fastpath_entries", "gauge", "Final answers held by the fast path.", s["entries"])
    f("burrow_fastpath_bytes", "gauge", "Bytes held by the fast path.", s["bytes"])
    f("burrow_fastpath_invalidations_total", "counter", "Times the fast path was dropped wholesale.",
      s["generation"])

    # The upstreams.
    pool = resolver.upstreams
    servers = list(pool.servers)
    per = lambda attr: [({"upstream": s.label}, getattr(s, attr)) for s in servers]  # noqa: E731
    f("burrow_upstream_queries_total", "counter", "Queries sent to each upstream.", per("queries"))
    f("burrow_upstream_errors_total", "counter", "Failed attempts per upstream (timeouts included).",
      per("errors"))
    f("burrow_upstream_timeouts_total", "counter", "Timed-out attempts per upstream.", per("timeouts"))
    f("burrow_upstream_srtt_seconds", "gauge", "Smoothed round-trip time per upstream.", per("srtt"))
    f("burrow_upstream_healthy", "gauge", "1 when the upstream is considered healthy.",
      [({"upstream": s.label}, bool(s.healthy)) for s in servers])
    f("burrow_upstream_inflight", "gauge", "Upstream queries in flight.", pool.inflight)
    f("burrow_upstream_turned_away_total", "counter",
      "Cache misses not sent upstream: no in-flight slot (the pool's or the client's share), "
      "or a question that keeps timing out, held back.",
      [({"reason": "budget"}, pool.slots.refused), ({"reason": "timeout_memo"}, pool.timeout_held)])
    f("burrow_upstream_wrong_replies_total", "counter", "TCP replies ignored for a wrong ID or question.",
      pool.wrong_replies)

    limiter = resolver.limiter
    if limiter is not None:
        f("burrow_rate_limited_total", "counter", "Queries refused or dropped by the rate limiter.",
          limiter.limited)
        f("burrow_rate_limiter_clients", "gauge", "Clients tracked by the rate limiter.", len(limiter))

    # Supervision and the fault status.
    tasks = sorted(set(supervisor.running()) | set(supervisor.deaths))  # a zero for each live one
    f("burrow_task_deaths_total", "counter",
      "Background tasks that died (raised, or ended while they should run), by task.",
      [({"task": name}, supervisor.deaths.get(name, 0)) for name in tasks])
    f("burrow_task_restarts_total", "counter", "Background tasks started again by their restart policy.",
      [({"task": name}, n) for name, n in sorted(supervisor.restarts.items())])
    f("burrow_faults", "gauge", "Reasons Burrow needs a person (the fault status; see /readyz).",
      len(supervisor.faults))

    # The event bus.
    f("burrow_events_published_total", "counter", "Messages published on the event bus.", events.published)
    f("burrow_event_subscribers", "gauge", "Open event-bus subscriptions (websockets).", len(events))

    # The web server.
    web = api.web
    f("burrow_http_connections", "gauge", "Open HTTP connections.", web.active_connections)
    f("burrow_http_connections_total", "counter",
      "HTTP connections admitted (a kept-alive one serves many requests).", web.connections_total)
    f("burrow_http_requests_total", "counter", "HTTP requests routed.", web.requests_total)
    f("burrow_http_reused_requests_total", "counter",
      "HTTP requests on a kept-alive connection that had served one before.", web.reused_requests)
    f("burrow_http_idle_closes_total", "counter",
      "Kept-alive HTTP connections closed while idle (timeout, a full connection cap, stop).",
      web.idle_closes)
    f("burrow_http_gzipped_total", "counter", "JSON answers sent gzip-compressed.", api.gzipped)
    f("burrow_http_rejected_connections_total", "counter",
      "HTTP connections answered 503 at a cap (in all or per client).",
      web.rejected_connections)
    f("burrow_http_deadline_cuts_total", "counter", "HTTP connections cut for being too slow.",
      web.deadline_cuts)
    f("burrow_http2_flood_cuts_total", "counter",
      "HTTP/2 connections ended for flooding: resets, pings, settings (GOAWAY ENHANCE_YOUR_CALM).",
      web.flood_cuts)
    f("burrow_http_refused_requests_total", "counter",
      "HTTP requests refused before any route: a malformed, oversized or ambiguous head.",
      web.refused_requests)
    site = api.site
    f("burrow_http_foreign_requests_total", "counter",
      "HTTP requests refused as another web page's (docs/security.md): a Host that is not "
      "Burrow's (421), or a write, WebSocket upgrade or preflight from another origin (403).",
      [({"reason": "host"}, site.misdirected), ({"reason": "origin"}, site.cross_origin)])

    proc = process_figures()
    f("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", proc.get("rss"))
    f("process_cpu_seconds_total", "counter", "User and system CPU time in seconds.", proc.get("cpu"))
    f("process_open_fds", "gauge", "Open file descriptors.", proc.get("fds"))
    f("process_start_time_seconds", "gauge", "Start time of the process since the epoch, seconds.",
      proc.get("start"))
    return out.text()


def register(api: Api, *, public: bool, version: str, health: Health, supervisor: Supervisor, lists: ListManager,
             recorder: Recorder, resolver: Resolver, events: EventBus, board: Appliance) -> None:
    """``public``: server.metrics_public (read once: the route's role is fixed when it is made)."""
    @api.route("GET", "/metrics", role="public" if public else "viewer",
               summary="Prometheus metrics (public when server.metrics_public is true)",
               tags=["metrics"], responses={200: "Prometheus text exposition format 0.0.4"},
               raw_response=True)
    async def metrics(req):
        system = await board.system_recent()
        text = render(api, system, version=version, health=health, supervisor=supervisor, lists=lists,
                      recorder=recorder, resolver=resolver, events=events)
        return Response(text, 200, {"Content-Type": CONTENT_TYPE})
