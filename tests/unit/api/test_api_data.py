"""Stats, queries, config, cache, system and metrics endpoints against a real App's services.

The services are built from a config (``App.build``: no sockets, nothing started), with a real
Recorder over a real query-log file and a real settings DB; only authentication is faked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import time

import pytest
from microdot.test_client import TestClient

from burrow import config as config_mod
from burrow import runtime_config
from burrow.api import create_api
from burrow.api.routes import WebSettings
from burrow.app import App
from burrow.dns.decision import Decision, QueryRecord, TraceEntry
from burrow.storage.settings import SettingsDB

from tests.support.fakes import FakeAuth, FakePrincipal

VIEWER = {"Authorization": "Bearer viewer"}
ADMIN = {"Authorization": "Bearer admin"}


def run(coro):
    return asyncio.run(coro)


def web_service(services):
    """The web service of the built services (it serves the API made from them)."""
    return next(s for s in services.lifecycle.services if s.name == "web")


def make_app(tmp_path, **overrides):
    """The built services (burrow/services.py) with authentication faked."""
    cfg = config_mod.load(None, environ={})
    cfg = cfg.with_overrides({"storage.data_dir": str(tmp_path), "upstream_dns_servers": ["192.0.2.1:53"],
                              **overrides})
    services = App(cfg).build()
    services.auth.close()  # its password workers are not used: authentication is faked
    return dataclasses.replace(services, auth=FakeAuth({"Bearer viewer": FakePrincipal("vera", "viewer"),
                                                        "Bearer admin": FakePrincipal("ada", "admin")}))


@pytest.fixture
def app(tmp_path):
    a = make_app(tmp_path)
    recorder, settings = a.recorder, a.settings
    yield a
    recorder._executor.shutdown(wait=True)
    settings.close()


def record(domain, client="192.168.1.10", decision=Decision.RESOLVED, trace=(), age=0.0, qtype=1):
    return QueryRecord(time.monotonic() - age, client, domain, qtype, 0, decision, 0.002,
                       "192.0.2.1:53" if decision == Decision.RESOLVED else "", tuple(trace))


BLOCK = (TraceEntry("blocklist", "block", "", "manager", "rule matched"),)
POLICY = (TraceEntry("policy", "BLOCK", "Block social media", "policy_engine"),)


def feed(app, records, flush=True):
    """Hand records to the recorder as the DNS path would, drain them, optionally flush."""
    for r in records:
        app.recorder.ring.append(r)
    app.recorder.drain()
    if flush:
        run(app.recorder.flush())


def call(app, method, path, headers=None, body=None):
    api = create_api(app, web_service(app), WebSettings())
    client = TestClient(api.web)

    async def go():
        return await client.request(method, path, headers=dict(headers or {}), body=body)

    return run(go())


def fields_of(res):
    return {d["field"] for d in res.json.get("details") or []}


# ---- /api/stats and friends ------------------------------------------------------------------

def test_stats_default_period_and_seed_fields(app):
    feed(app, [record("a.example"), record("b.example", decision=Decision.CACHED),
               record("ads.example", decision=Decision.BLOCKED, trace=BLOCK),
               record("c2.example", decision=Decision.THREAT, trace=BLOCK)])
    res = call(app, "GET", "/api/stats", VIEWER)
    assert res.status_code == 200
    body = res.json
    assert set(body) == {"total_queries", "blocked_queries", "cached_queries", "block_rate",
                         "cache_hit_rate", "avg_response_ms", "period", "timestamp", "threats_blocked",
                         "dropped_queries"}
    assert body["total_queries"] == 4 and body["blocked_queries"] == 2 and body["cached_queries"] == 1
    assert body["threats_blocked"] == 1
    assert body["block_rate"] == pytest.approx(50.0) and body["period"] == "24h0m0s"
    assert body["timestamp"].endswith("Z")


@pytest.mark.parametrize("since,period", [("1h", "1h0m0s"), ("7d", "168h0m0s"), ("30m", "30m0s"),
                                          ("1h30m", "1h30m0s")])
def test_stats_since_durations(app, since, period):
    res = call(app, "GET", f"/api/stats?since={since}", VIEWER)
    assert res.status_code == 200 and res.json["period"] == period


def test_stats_since_rfc3339(app):
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
    res = call(app, "GET", f"/api/stats?since={start}", VIEWER)
    assert res.status_code == 200 and res.json["period"].startswith("2h")


@pytest.mark.parametrize("since", ["yesterday", "-1h", "0s", "30d", "2999-01-01T00:00:00Z", "2025-13-40T00:00:00Z"])
def test_stats_bad_since_is_400_naming_the_field(app, since):
    res = call(app, "GET", f"/api/stats?since={since}", VIEWER)
    assert res.status_code == 400 and res.json["code"] == 400
    assert fields_of(res) == {"since"}


def test_stats_need_a_login_and_storage(app, monkeypatch):
    assert call(app, "GET", "/api/stats").status_code == 401

    async def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(app.recorder, "query", broken)
    res = call(app, "GET", "/api/top-domains", VIEWER)
    assert res.status_code == 503 and res.json["error"] == "Service Unavailable"
    for path in ("/api/queries", "/api/traces/stats"):  # the merged read: the same 503
        res = call(app, "GET", path, VIEWER)
        assert res.status_code == 503 and res.json["error"] == "Service Unavailable"


def test_trace_stats_break_down_blocked_queries(app):
    feed(app, [record("ads.example", decision=Decision.BLOCKED, trace=BLOCK),
               record("ads2.example", decision=Decision.BLOCKED, trace=BLOCK),
               record("fb.example", decision=Decision.BLOCKED, trace=POLICY),
               record("ok.example")])
    feed(app, [record("late.example", decision=Decision.BLOCKED, trace=POLICY)], flush=False)  # not flushed
    res = call(app, "GET", "/api/traces/stats?since=1h", VIEWER)
    assert res.status_code == 200, res.json
    b = res.json
    assert b["total_blocked"] == 4
    assert b["by_stage"] == {"blocklist": 2, "policy": 2}
    assert b["by_action"] == {"block": 2, "BLOCK": 2}
    assert b["by_rule"] == {"Block social media": 2}
    assert b["by_source"] == {"manager": 2, "policy_engine": 2}
    assert b["since"].endswith("Z") and b["until"] > b["since"]
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    assert call(app, "GET", f"/api/traces/stats?since={start}", VIEWER).json["total_blocked"] == 4
    assert call(app, "GET", "/api/traces/stats?since=soon", VIEWER).status_code == 400


def test_timeseries_points_and_validation(app):
    feed(app, [record("a.example"), record("b.example", decision=Decision.BLOCKED, trace=BLOCK)])
    res = call(app, "GET", "/api/stats/timeseries?since=1h&step=5m", VIEWER)
    assert res.status_code == 200
    b = res.json
    assert b["step"] == "5m0s" and set(b) == {"since", "until", "step", "points"}
    assert sum(p["total"] for p in b["points"]) == 2 and sum(p["blocked"] for p in b["points"]) == 1
    assert set(b["points"][0]) == {"timestamp", "total", "blocked", "cached"}
    assert call(app, "GET", "/api/stats/timeseries", VIEWER).status_code == 200
    assert fields_of(call(app, "GET", "/api/stats/timeseries?step=10s", VIEWER)) == {"step"}
    assert fields_of(call(app, "GET", "/api/stats/timeseries?since=7d&step=1m", VIEWER)) == {"step"}


def test_top_domains_and_clients(app):
    feed(app, [record("a.example"), record("a.example"), record("b.example", client="192.168.1.11"),
               record("ads.example", decision=Decision.BLOCKED, trace=BLOCK)])
    res = call(app, "GET", "/api/top-domains", VIEWER)
    assert res.status_code == 200
    assert res.json == {"domains": [{"domain": "a.example", "queries": 2, "blocked": False},
                                    {"domain": "b.example", "queries": 1, "blocked": False}], "limit": 10}
    res = call(app, "GET", "/api/top-domains?limit=20&blocked=true", VIEWER)
    assert res.json == {"domains": [{"domain": "ads.example", "queries": 1, "blocked": True}], "limit": 20}
    assert fields_of(call(app, "GET", "/api/top-domains?limit=101", VIEWER)) == {"limit"}
    assert fields_of(call(app, "GET", "/api/top-domains?blocked=maybe", VIEWER)) == {"blocked"}
    res = call(app, "GET", "/api/top-clients?limit=1", VIEWER)
    assert res.json == {"clients": [{"client_ip": "192.168.1.10", "queries": 3, "blocked": 1}], "limit": 1}
    assert call(app, "GET", "/api/top-clients?limit=0", VIEWER).status_code == 400


def test_realtime_and_dashboard(app):
    feed(app, [record("a.example", age=2), record("ads.example", decision=Decision.BLOCKED, trace=BLOCK, age=2)])
    res = call(app, "GET", "/api/realtime", VIEWER)
    assert res.status_code == 200
    assert res.json["last_minute"]["total"] == 2 and res.json["qps"] > 0
    assert res.json["decisions"] == {"resolved": 1, "blocked": 1}
    res = call(app, "GET", "/api/dashboard", VIEWER)
    assert res.status_code == 200
    d = res.json
    assert d["stats"]["total_queries"] == 2 and d["stats"]["period"] == "24h0m0s"
    assert d["top_domains"] == [{"domain": "a.example", "queries": 1, "blocked": False}]
    assert d["top_blocked_domains"][0]["domain"] == "ads.example"
    assert d["top_clients"][0]["client_ip"] == "192.168.1.10"
    assert d["status"]["state"] == "booting"  # App.ready is False: not started
    assert d["upstreams"][0]["address"] == "192.0.2.1:53"
    assert d["cache"]["enabled"] is True and "entries" in d["cache"]
    assert d["query_types"] == [{"type": "A", "queries": 2}]
    # The other cards' data, so a phone opening the dashboard asks once: each equal to its own GET.
    for key, path in (("blocking", "/api/blocking"), ("groups", "/api/groups"), ("lists", "/api/lists"),
                      ("router_preset", "/api/conditionalforwarding/preset/router")):
        assert d[key] == call(app, "GET", path, VIEWER).json, key


# ---- /api/queries ----------------------------------------------------------------------------

def test_queries_page_shape_and_unflushed_rows_show_up(app):
    feed(app, [record("old.example", age=5)])
    feed(app, [record("new.example", decision=Decision.BLOCKED, trace=BLOCK)], flush=False)
    res = call(app, "GET", "/api/queries", VIEWER)
    assert res.status_code == 200
    b = res.json
    assert b["total"] == 2 and b["limit"] == 100 and b["offset"] == 0
    assert [q["domain"] for q in b["queries"]] == ["new.example", "old.example"]
    q = b["queries"][0]
    for key in ("id", "timestamp", "client_ip", "domain", "query_type", "response_code", "blocked",
                "cached", "response_time_ms", "upstream", "block_trace"):
        assert key in q
    assert type(q["id"]) is int and q["blocked"] is True and q["query_type"] == "A"
    assert q["block_trace"] == [{"stage": "blocklist", "action": "block", "source": "manager",
                                 "detail": "rule matched"}]
    assert b["queries"][1]["id"] < q["id"]  # written earlier, so a lower id


def test_queries_paging_spans_memory_and_log(app):
    feed(app, [record(f"d{i}.example", age=10 - i) for i in range(5)])
    feed(app, [record(f"m{i}.example") for i in range(3)], flush=False)
    pages = [call(app, "GET", f"/api/queries?limit=3&offset={o}", VIEWER).json for o in (0, 3, 6)]
    names = [q["domain"] for p in pages for q in p["queries"]]
    assert names == ["m2.example", "m1.example", "m0.example", "d4.example", "d3.example",
                     "d2.example", "d1.example", "d0.example"]
    assert all(p["total"] == 8 for p in pages)


def test_queries_filters_apply_to_log_and_memory(app):
    feed(app, [record("ads.example", decision=Decision.BLOCKED, trace=BLOCK),
               record("fb.example", decision=Decision.BLOCKED, trace=POLICY),
               record("www.fb.example", client="192.168.1.20")])
    feed(app, [record("x.fb.example", decision=Decision.BLOCKED, trace=POLICY)], flush=False)

    def domains(qs):
        res = call(app, "GET", "/api/queries?" + qs, VIEWER)
        assert res.status_code == 200, res.json
        return sorted(q["domain"] for q in res.json["queries"])

    assert domains("stage=policy") == ["fb.example", "x.fb.example"]
    assert domains("source=manager") == ["ads.example"]
    assert domains("rule=Block+social+media") == ["fb.example", "x.fb.example"]
    assert domains("stage=policy&source=policy_engine") == ["fb.example", "x.fb.example"]
    assert domains("stage=policy&source=manager") == []
    assert domains("action=block") == ["ads.example"]
    assert domains("domain=fb.example") == ["fb.example", "www.fb.example", "x.fb.example"]
    assert domains("client=192.168.1.20") == ["www.fb.example"]
    assert domains("blocked=false") == ["www.fb.example"]
    assert domains("since=1h") == ["ads.example", "fb.example", "www.fb.example", "x.fb.example"]
    assert domains("until=2000-01-01T00:00:00Z") == []


def test_queries_type_filter_in_log_and_memory(app):
    feed(app, [record("a.example"), record("a.example", qtype=28), record("x.example", qtype=65280)])
    feed(app, [record("b.example", qtype=28, decision=Decision.BLOCKED, trace=BLOCK)], flush=False)

    def domains(qs):
        res = call(app, "GET", "/api/queries?" + qs, VIEWER)
        assert res.status_code == 200, res.json
        return sorted((q["domain"], q["query_type"]) for q in res.json["queries"])

    assert domains("type=AAAA") == [("a.example", "AAAA"), ("b.example", "AAAA")]
    assert domains("type=aaaa&blocked=true") == [("b.example", "AAAA")]
    assert domains("type=A") == [("a.example", "A")]
    assert domains("type=TYPE65280") == [("x.example", "TYPE65280")]
    assert domains("type=MX") == []


def test_queries_count_and_list_every_unflushed_row(app):
    # More rows wait for the flush than a fixed "recent" window held (a busy minute): each one
    # is listed and counted, none is missing until the flush writes it.
    feed(app, [record("old.example", age=5)])
    feed(app, [record(f"m{i}.example") for i in range(2500)], flush=False)
    body = call(app, "GET", "/api/queries?limit=10&offset=2495", VIEWER).json
    assert body["total"] == 2501
    assert [q["domain"] for q in body["queries"]] == [f"m{i}.example" for i in range(4, -1, -1)] + [
        "old.example"]
    assert call(app, "GET", "/api/queries?domain=m0.example", VIEWER).json["total"] == 1


def test_queries_pages_while_a_flush_commits_have_no_duplicate_and_no_gap(app):
    feed(app, [record(f"d{i}.example", age=10 - i) for i in range(5)])
    feed(app, [record(f"f{i}.example", age=3 - i) for i in range(3)], flush=False)
    recorder = app.recorder
    # A flush whose transaction has committed while the loop has not yet heard back: its
    # rows are both in the log and still in flight in memory.
    batch = list(recorder._pending)
    recorder._pending.clear()
    recorder._inflight = batch
    run(recorder.query(recorder.db.write, batch))
    feed(app, [record(f"p{i}.example") for i in range(2)], flush=False)
    pages = [call(app, "GET", f"/api/queries?limit=4&offset={o}", VIEWER).json for o in (0, 4, 8)]
    names = [q["domain"] for p in pages for q in p["queries"]]
    assert names == ["p1.example", "p0.example", "f2.example", "f1.example", "f0.example",
                     "d4.example", "d3.example", "d2.example", "d1.example", "d0.example"]
    assert [len(p["queries"]) for p in pages] == [4, 4, 2] and all(p["total"] == 10 for p in pages)
    recorder._inflight = []


def test_queries_time_window_is_the_same_before_and_after_the_flush(app):
    # One rule for the window: a row answered a few microseconds after ``until`` is out of it,
    # whether it still waits in memory or is in the log (the API's timestamps show
    # milliseconds only; the filter compares the row's real time).
    feed(app, [record("edge.example")], flush=False)
    recorder = app.recorder
    row = recorder._pending[0]
    ts = int(time.time()) - 60 + 0.0005  # 500 µs past a whole second, a minute ago
    recorder._pending[0] = (row[0], ts) + row[2:]
    until = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".000400Z"  # 100 µs before it
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + "Z"
    window = f"/api/queries?since={since}&until={until}"
    before = call(app, "GET", window, VIEWER).json["total"]
    run(recorder.flush())
    after = call(app, "GET", window, VIEWER).json["total"]
    assert (before, after) == (0, 0)
    assert call(app, "GET", f"/api/queries?since={since}", VIEWER).json["total"] == 1


@pytest.mark.parametrize("qs,field", [("limit=0", "limit"), ("limit=1001", "limit"), ("offset=-1", "offset"),
                                      ("since=later", "since"), ("until=nope", "until"), ("bogus=1", "bogus"),
                                      ("type=NOPE", "type"), ("type=TYPE0", "type")])
def test_queries_bad_parameters(app, qs, field):
    res = call(app, "GET", "/api/queries?" + qs, VIEWER)
    assert res.status_code == 400 and field in fields_of(res)


# ---- config ----------------------------------------------------------------------------------

def test_get_config_is_the_toml_shape(app):
    res = call(app, "GET", "/api/config", VIEWER)
    assert res.status_code == 200
    c = res.json
    assert c["upstream_dns_servers"] == ["192.0.2.1:53"]
    for section in ("server", "cache", "rate_limit", "logging", "storage", "access", "upstream"):
        assert section in c
    assert c["cache"]["max_bytes"] == 16 * 1024 * 1024
    assert c["server"]["metrics_public"] is False


def test_snapshot_leaves_out_secret_looking_options():
    assert runtime_config.is_secret("tls.private_key") and runtime_config.is_secret("auth.password")
    assert not runtime_config.is_secret("cache.max_bytes")


@pytest.fixture
def events(app):
    sub = app.events.subscribe("events")
    yield sub


def drain_events(sub):
    out = []
    while sub.pending():
        out.append(sub._queue.get_nowait()[1])
    return out


def test_put_cache_applies_live_persists_and_audits(app, events):
    app.resolver.cache.put(("k",), _answer(), 300, time.monotonic())
    assert len(app.resolver.cache) == 1
    gen = app.resolver.fastpath.generation
    res = call(app, "PUT", "/api/config/cache", ADMIN,
               {"enabled": False, "max_ttl": 600, "max_bytes": 65536, "serve_stale": False})
    assert res.status_code == 200, res.json
    assert res.json["status"] == "ok" and res.json["section"] == "cache"
    assert res.json["config"]["enabled"] is False and res.json["config"]["max_ttl"] == 600
    assert app.config["cache.enabled"] is False and app.config.source("cache.max_ttl") == "runtime"
    assert app.resolver.cache_stage.enabled is False and app.resolver.cache_stage.serve_stale is False
    assert app.resolver.cache.max_bytes == 65536 and app.resolver.forward.limits.max_ttl == 600
    assert len(app.resolver.cache) == 0  # disabled: emptied
    assert app.resolver.fastpath.generation > gen  # fast path dropped
    assert app.settings.get("config.overrides") == {"cache.enabled": False, "cache.max_ttl": 600,
                                                    "cache.max_bytes": 65536, "cache.serve_stale": False}
    (event,) = drain_events(events)
    assert event["type"] == "config.changed" and event["section"] == "cache"
    assert event["before"]["enabled"] is True and event["after"]["enabled"] is False
    assert event["actor"] == "ada" and event["client_ip"]


def _answer():
    from burrow.dns.message import Answer
    return Answer(0, Decision.RESOLVED, b"\x00" * 16, an=1, ttl=300)


def test_put_cache_partial_update_keeps_other_fields(app):
    res = call(app, "PUT", "/api/config/cache", ADMIN, {"min_ttl": 30})
    assert res.status_code == 200
    assert app.config["cache.min_ttl"] == 30 and app.config["cache.max_ttl"] == 86400
    assert app.resolver.forward.limits.min_ttl == 30 and app.resolver.cache_stage.enabled is True


@pytest.mark.parametrize("body,fields", [
    ({"max_ttl": 0}, {"max_ttl"}),
    ({"max_ttl": "long"}, {"max_ttl"}),
    ({"enabled": "perhaps"}, {"enabled"}),
    ({"min_ttl": 100, "max_ttl": 50}, {"min_ttl"}),  # the config file's cross-check
    ({"shards": 4}, {"shards", ""}),  # unknown, and no known field given
    ({}, {""}),
])
def test_put_cache_validation_names_the_field_and_changes_nothing(app, body, fields):
    before = app.config.current
    res = call(app, "PUT", "/api/config/cache", ADMIN, body)
    assert res.status_code == 400, res.json
    assert fields_of(res) == fields
    assert app.config.current is before and app.settings.get("config.overrides") is None


def test_put_upstreams_swaps_servers_keeping_known_ones(app):
    old = app.resolver.upstreams.servers[0]
    old.queries = 7
    res = call(app, "PUT", "/api/config/upstreams", ADMIN,
               {"upstream_dns_servers": ["192.0.2.1:53", "198.51.100.7", "[2001:db8::1]:5353"]})
    assert res.status_code == 200, res.json
    labels = [s.label for s in app.resolver.upstreams.servers]
    assert labels == ["192.0.2.1:53", "198.51.100.7:53", "[2001:db8::1]:5353"]
    assert app.resolver.upstreams.servers[0] is old and old.queries == 7
    assert res.json["config"] == {"upstream_dns_servers": ["192.0.2.1:53", "198.51.100.7:53", "[2001:db8::1]:5353"],
                                  "bootstrap": []}


@pytest.mark.parametrize("body,fields", [
    ({"upstream_dns_servers": ["1.1.1.1:53", "not-an-ip"]}, {"upstream_dns_servers[1]"}),
    ({"upstream_dns_servers": []}, {"upstream_dns_servers"}),
    ({"upstream_dns_servers": "1.1.1.1"}, {"upstream_dns_servers"}),
    ({}, {"upstream_dns_servers", ""}),
])
def test_put_upstreams_validation(app, body, fields):
    res = call(app, "PUT", "/api/config/upstreams", ADMIN, body)
    assert res.status_code == 400 and fields_of(res) == fields
    assert [s.label for s in app.resolver.upstreams.servers] == ["192.0.2.1:53"]


def test_put_rate_limit_updates_guard_and_server_together(app):
    dns = app.resolver
    assert dns.limiter is not None and dns.guard.limiter is dns.limiter and dns.server.limiter is dns.limiter
    limiter = app.resolver.limiter
    res = call(app, "PUT", "/api/config/rate-limit", ADMIN, {"rps": 5, "burst": 10, "action": "refuse"})
    assert res.status_code == 200, res.json
    assert app.resolver.limiter is limiter and limiter.rps == 5.0 and limiter.burst == 10.0
    assert app.resolver.guard.limit_action == "refuse"
    res = call(app, "PUT", "/api/config/rate-limit", ADMIN, {"enabled": False})
    assert res.status_code == 200
    assert app.resolver.limiter is None and app.resolver.guard.limiter is None and app.resolver.server.limiter is None
    res = call(app, "PUT", "/api/config/rate-limit", ADMIN, {"enabled": True, "max_tracked_clients": 100})
    dns = app.resolver
    assert dns.limiter is not None and dns.guard.limiter is dns.limiter and dns.server.limiter is dns.limiter
    assert app.resolver.limiter.max_clients == 100 and app.resolver.limiter.rps == 5.0
    res = call(app, "PUT", "/api/config/rate-limit", ADMIN, {"action": "tarpit", "rps": 0})
    assert res.status_code == 400 and fields_of(res) == {"action", "rps"}


def test_put_logging_changes_level_and_format(app):
    root = logging.getLogger()
    saved = (root.level, [(h, h.formatter) for h in root.handlers])
    try:
        res = call(app, "PUT", "/api/config/logging", ADMIN, {"level": "warning", "format": "json"})
        assert res.status_code == 200, res.json
        assert root.level == logging.WARNING
        assert app.config["logging.format"] == "json"
        assert fields_of(call(app, "PUT", "/api/config/logging", ADMIN, {"level": "chatty"})) == {"level"}
    finally:
        root.setLevel(saved[0])
        for h, fmt in saved[1]:
            h.setFormatter(fmt)


def test_put_blocking_applies_live_persists_and_audits(app, events):
    gen = app.resolver.fastpath.generation
    res = call(app, "PUT", "/api/config/blocking", ADMIN,
               {"blocking_mode": "custom", "custom_ipv4": "192.0.2.99", "blocked_ttl": 120})
    assert res.status_code == 200, res.json
    assert res.json["section"] == "blocking"
    assert res.json["config"] == {"blocking_mode": "custom", "custom_ipv4": "192.0.2.99",
                                  "custom_ipv6": "::", "blocked_ttl": 120}
    blocking = app.resolver.shared.blocking
    assert (blocking.mode, blocking.custom_ipv4, blocking.ttl) == ("custom", "192.0.2.99", 120)
    assert app.resolver.fastpath.generation > gen  # answers made the old way are not replayed
    assert app.settings.get("config.overrides") == {"filtering.blocking_mode": "custom",
                                                    "filtering.custom_ipv4": "192.0.2.99",
                                                    "filtering.blocked_ttl": 120}
    (event,) = drain_events(events)
    assert event["type"] == "config.changed" and event["section"] == "blocking"
    assert event["before"]["blocking_mode"] == "null" and event["after"]["blocking_mode"] == "custom"


@pytest.mark.parametrize("body,fields", [
    ({"blocking_mode": "sinkhole"}, {"blocking_mode"}),
    ({"blocked_ttl": -1, "custom_ipv4": "::1"}, {"blocked_ttl", "custom_ipv4"}),  # every bad field
    ({"custom_ipv6": "10.0.0.1"}, {"custom_ipv6"}),
    ({}, {""}),
])
def test_put_blocking_validation_names_every_field_and_changes_nothing(app, body, fields):
    before = app.config.current
    res = call(app, "PUT", "/api/config/blocking", ADMIN, body)
    assert res.status_code == 400, res.json
    assert fields_of(res) == fields
    assert app.config.current is before and app.resolver.shared.blocking.mode == "null"


def test_put_privacy_sets_what_the_query_log_keeps(app, events):
    assert app.resolver.server.decision_trace is True
    res = call(app, "PUT", "/api/config/privacy", ADMIN,
               {"decision_trace": False, "query_log_retention_days": 2, "query_log_max_bytes": 8 * 1024 * 1024})
    assert res.status_code == 200, res.json
    assert res.json["config"] == {"decision_trace": False, "query_log_retention_days": 2,
                                  "query_log_max_bytes": 8 * 1024 * 1024}
    assert app.resolver.server.decision_trace is False  # the next query keeps no trace
    assert app.recorder.retention_days == 2 and app.recorder.max_bytes == 8 * 1024 * 1024  # the next prune
    assert app.settings.get("config.overrides")["storage.query_log_retention_days"] == 2
    (event,) = drain_events(events)
    assert event["section"] == "privacy" and event["before"]["decision_trace"] is True


def test_put_privacy_validation_names_every_field_and_changes_nothing(app):
    res = call(app, "PUT", "/api/config/privacy", ADMIN,
               {"decision_trace": "maybe", "query_log_retention_days": 0})
    assert res.status_code == 400 and fields_of(res) == {"decision_trace", "query_log_retention_days"}
    assert app.resolver.server.decision_trace is True and app.recorder.retention_days == 7


@pytest.mark.parametrize("path", ["/api/config/upstreams", "/api/config/cache", "/api/config/logging",
                                  "/api/config/rate-limit", "/api/config/blocking", "/api/config/privacy"])
def test_config_changes_need_admin(app, path):
    res = call(app, "PUT", path, VIEWER, {"enabled": False})
    assert res.status_code == 403 and res.json["code"] == 403
    assert call(app, "PUT", path, None, {"enabled": False}).status_code == 401
    assert app.config["cache.enabled"] is True


def test_overrides_survive_a_restart(tmp_path):
    app = make_app(tmp_path)
    try:
        assert call(app, "PUT", "/api/config/cache", ADMIN, {"max_ttl": 900}).status_code == 200
        assert call(app, "PUT", "/api/config/upstreams", ADMIN,
                    {"upstream_dns_servers": ["198.51.100.9:53"]}).status_code == 200
    finally:
        app.recorder._executor.shutdown(wait=True)
        app.settings.close()
    base = config_mod.load(None, environ={}).with_overrides({"storage.data_dir": str(tmp_path)})
    for source in (tmp_path / "settings.db", None):
        if source is None:
            db = SettingsDB(tmp_path / "settings.db")
            cfg = runtime_config.load_overrides(base, db)
            db.close()
        else:
            cfg = runtime_config.load_overrides(base, source)
        assert cfg["cache.max_ttl"] == 900 and cfg["upstream_dns_servers"] == ["198.51.100.9:53"]
        assert cfg.source("cache.max_ttl") == "runtime"
    assert runtime_config.load_overrides(base, tmp_path / "missing.db") is base


def test_bad_stored_overrides_are_skipped_not_fatal(tmp_path):
    db = SettingsDB(tmp_path / "settings.db")
    db.set("config.overrides", {"cache.max_ttl": -5, "cache.min_ttl": 10, "server.listen_address": "0.0.0.0:53"})
    base = config_mod.load(None, environ={})
    cfg = runtime_config.load_overrides(base, db)
    db.close()
    assert cfg["cache.min_ttl"] == 10 and cfg["cache.max_ttl"] == 86400
    assert cfg["server.listen_address"] == base["server.listen_address"]


# ---- cache purge -----------------------------------------------------------------------------

def test_cache_purge(app, events):
    app.resolver.cache.put(("k1",), _answer(), 300, time.monotonic())
    app.resolver.cache.put(("k2",), _answer(), 300, time.monotonic())
    res = call(app, "POST", "/api/cache/purge", ADMIN)
    assert res.status_code == 200
    assert res.json == {"status": "ok", "message": "DNS cache purged successfully", "entries_cleared": 2}
    assert len(app.resolver.cache) == 0
    assert drain_events(events)[0]["type"] == "cache.purged"


def test_cache_purge_errors(app):
    assert call(app, "POST", "/api/cache/purge", VIEWER).status_code == 403
    res = call(app, "GET", "/api/cache/purge", ADMIN)
    assert res.status_code == 405 and res.json["code"] == 405 and res.json["error"] == "Method Not Allowed"
    app.resolver.cache_stage.enabled = False
    res = call(app, "POST", "/api/cache/purge", ADMIN)
    assert res.status_code == 503 and "disabled" in res.json["message"]


# ---- system and metrics ----------------------------------------------------------------------

def test_system(app):
    res = call(app, "GET", "/api/system", VIEWER)
    assert res.status_code == 200, res.json
    s = res.json
    assert s["version"] == app.version and s["status"]["state"] == "booting"
    assert set(s["status"]) == {"state", "reasons", "led"}
    assert s["memory"]["total"] > 0 and s["process"]["rss"] > 0 and s["cpu"]["count"] >= 1
    assert "temperature" in s and "disk" in s
    assert s["listen_addresses"]["web"] == "127.0.0.1:8080"
    assert s["upstreams"][0]["address"] == "192.0.2.1:53"
    assert call(app, "GET", "/api/system").status_code == 401


def test_system_uses_the_appliance_status(app):
    class FakeStatus:
        def as_dict(self):
            return {"state": "upstream_degraded", "reasons": ["1 of 2 upstream DNS servers failing"],
                    "led": "upstream_degraded"}

    class FakeAppliance:
        def status(self):
            return FakeStatus()

        def network(self):
            return {"available": True, "primary_v4": "192.168.1.23"}

        async def system(self):
            return {"cpu": {"percent": 1.0, "count": 4}, "temperatures": [
                {"zone": "thermal_zone0", "type": "cpu", "celsius": 51.0},
                {"zone": "thermal_zone1", "type": "gpu", "celsius": 47.0}], "board": "rpi-4",
                "memory": {"total": 1000, "percent": 20.0},
                "storage_writes": {"device": "mmcblk0", "bytes_today": 4096, "today_since": 1.0}}

        system_recent = system

    app = dataclasses.replace(app, board=FakeAppliance())
    s = call(app, "GET", "/api/system", VIEWER).json
    assert s["status"]["state"] == "upstream_degraded" and s["network"]["primary_v4"] == "192.168.1.23"
    assert s["temperature"]["celsius"] == 51.0 and s["board"] == "rpi-4"
    d = call(app, "GET", "/api/dashboard", VIEWER).json
    assert d["status"]["state"] == "upstream_degraded"
    assert d["system"] == {"temperature": {"zone": "thermal_zone0", "type": "cpu", "celsius": 51.0},
                           "memory": {"total": 1000, "percent": 20.0}, "disk": None,
                           "storage_writes": {"device": "mmcblk0", "bytes_today": 4096, "today_since": 1.0}}


def parse_metrics(text):
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_exposition(app):
    feed(app, [record("a.example", age=1), record("ads.example", decision=Decision.BLOCKED, trace=BLOCK, age=1)])
    app.resolver.upstreams.servers[0].queries = 3
    res = call(app, "GET", "/metrics", VIEWER)
    assert res.status_code == 200
    assert res.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    m = parse_metrics(res.text)
    assert m['burrow_queries_total{decision="blocked",qtype="A",rcode="0"}'] == 1
    assert m['burrow_queries_total{decision="resolved",qtype="A",rcode="0"}'] == 1
    assert m['burrow_upstream_queries_total{upstream="192.0.2.1:53"}'] == 3
    assert "burrow_cache_entries" in m and "burrow_cache_hits_total" in m and "burrow_fastpath_entries" in m
    assert m["process_resident_memory_bytes"] > 0 and "process_cpu_seconds_total" in m
    assert m["burrow_querylog_written_total"] == 2
    assert m["burrow_blocklist_entries"] == 0  # no index compiled yet
    assert not any("a.example" in k or "192.168.1.10" in k for k in m)  # low cardinality only
    assert "# TYPE burrow_queries_total counter" in res.text
    assert call(app, "GET", "/metrics").status_code == 401


def test_a_background_task_that_dies_is_a_fault_in_readyz_system_and_metrics(app):
    app.health.phase_changed("running")  # as after start(); the upstream counts as healthy until it fails

    async def die():
        async def flush_loop():
            raise OSError(5, "Input/output error")
        app.supervisor.spawn("querylog-flush", flush_loop)
        deadline = asyncio.get_running_loop().time() + 5
        while not app.faults and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    ready = call(app, "GET", "/readyz")
    assert ready.status_code == 200 and ready.json["reasons"] == [] and ready.json["checks"]["tasks"] == "ok"
    run(die())
    reason = "background task querylog-flush died: OSError: [Errno 5] Input/output error"
    ready = call(app, "GET", "/readyz")
    assert ready.status_code == 503 and ready.json["status"] == "not_ready"
    assert ready.json["reasons"] == [reason] and ready.json["checks"]["tasks"] == "fault"
    status = call(app, "GET", "/api/system", VIEWER).json["status"]
    assert status["state"] == "fault" and status["led"] == "fault" and status["reasons"][0] == f"fault: {reason}"
    m = parse_metrics(call(app, "GET", "/metrics", VIEWER).text)
    assert m['burrow_task_deaths_total{task="querylog-flush"}'] == 1 and m["burrow_faults"] == 1


def test_a_quarantine_fault_leaves_burrow_ready(app):
    app.health.phase_changed("running")
    app.faults.set("settings", "1 invalid stored setting(s) moved to quarantine at start", serving=True)
    ready = call(app, "GET", "/readyz")
    assert ready.status_code == 200 and ready.json["checks"]["settings"] == "fault"
    assert ready.json["reasons"] == ["1 invalid stored setting(s) moved to quarantine at start"]
    assert call(app, "GET", "/api/system", VIEWER).json["status"]["state"] == "fault"


def test_metrics_public_when_configured(tmp_path):
    app = make_app(tmp_path, **{"server.metrics_public": True})
    try:
        res = call(app, "GET", "/metrics")
        assert res.status_code == 200 and "burrow_build_info" in res.text
    finally:
        app.recorder._executor.shutdown(wait=True)
        app.settings.close()


def test_query_counts_cover_fast_path_hits_and_fold_odd_qtypes(app):
    import time as _time

    import dns.message
    import dns.rrset

    from burrow.dns.fastpath import FastEntry
    q = dns.message.make_query("www.example.com", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.1"))
    entry = FastEntry(r.to_wire(), 29, (39,), (300,), 0.0, 100.0, "www.example.com", 1,
                      Decision.RESOLVED, "", ())
    now = _time.monotonic()
    for _ in range(3):
        app.recorder.ring.append((now, "10.0.0.1", entry, 0.00001))
    feed(app, [record("odd.example", qtype=65280)])
    m = parse_metrics(call(app, "GET", "/metrics", VIEWER).text)
    assert m['burrow_queries_total{decision="cached",qtype="A",rcode="0"}'] == 3
    assert m['burrow_queries_total{decision="resolved",qtype="other",rcode="0"}'] == 1


def test_system_health_figures_in_metrics():
    from burrow.api.metrics import Exposition, render_system
    system = {"cpu": {"percent": 12.5, "load": [0.5, 0.4, 0.3]},
              "memory": {"total": 512 << 20, "available": 300 << 20, "used": 212 << 20},
              "disk": {"total": 30 << 30, "free": 20 << 30, "used": 10 << 30},
              "temperatures": [{"zone": "thermal_zone0", "type": "cpu-thermal", "celsius": 51.2}],
              "throttled": {"raw": "0x50005", "flags": {"under_voltage_now": True, "throttled_now": False}},
              "storage_writes": {"bytes_since_boot": 123456, "bytes_per_day_since_boot": 99,
                                 "bytes_per_day_recent": None}}
    out = Exposition()
    render_system(out.family, system)
    m = parse_metrics(out.text())
    assert m['burrow_system_load{period="1m"}'] == 0.5
    assert m['burrow_system_temperature_celsius{zone="thermal_zone0",type="cpu-thermal"}'] == 51.2
    assert m['burrow_system_throttled{flag="under_voltage_now"}'] == 1
    assert m["burrow_storage_written_bytes"] == 123456 and m["burrow_storage_written_bytes_per_day"] == 99
    render_system(Exposition().family, {"cpu": {}, "throttled": None})  # missing parts: no error


def test_trace_stats_count_a_row_once_by_its_id(app, monkeypatch):
    """A row caught mid-flush is read from memory and from the log: counted once. Two distinct
    queries alike in time, client and name are two rows: counted twice (they were one, when
    rows were matched by (timestamp, client, domain) before they had ids)."""
    now = time.monotonic()
    twin = QueryRecord(now, "192.168.1.10", "ads.example", 1, 0, Decision.BLOCKED, 0.002, "", BLOCK)
    feed(app, [twin])
    feed(app, [twin], flush=False)
    assert call(app, "GET", "/api/traces/stats?since=1h", VIEWER).json["total_blocked"] == 2
    flushed = call(app, "GET", "/api/queries?limit=10", ADMIN).json
    recent = app.recorder.recent
    in_flight = [q for q in flushed["queries"] if q["id"] not in {r["id"] for r in recent()}]
    assert len(in_flight) == 1
    monkeypatch.setattr(app.recorder, "recent", lambda limit=100: recent(limit) + in_flight)
    assert call(app, "GET", "/api/traces/stats?since=1h", VIEWER).json["total_blocked"] == 2
