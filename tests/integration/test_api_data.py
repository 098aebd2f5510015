"""Stats, queries, cache and config endpoints against the real burrow process (seed 003).

The seed's curl examples are replayed with their documented fields checked; config changes
are shown to take effect on live DNS traffic and to survive a restart. An admin token comes
from POST /api/auth/setup + /api/auth/login; until those endpoints exist the tests skip.
"""

from __future__ import annotations

import time

import pytest

from tests.support.burrow_proc import BurrowProcess
from tests.support.timing import wait_for
from tests.support.upstream_client import TestUpstream

PASSWORD = "correct horse battery staple 1990!"
STATS_FIELDS = {"total_queries", "blocked_queries", "cached_queries", "block_rate", "cache_hit_rate",
                "avg_response_ms", "period", "timestamp"}
QUERY_FIELDS = {"id", "timestamp", "client_ip", "domain", "query_type", "response_code", "blocked",
                "cached", "response_time_ms", "upstream"}


def admin_headers(b: BurrowProcess, first: bool = True) -> dict:
    if first:
        status, body = b.http("POST", "/api/auth/setup", {"username": "admin", "password": PASSWORD})
        if status == 404:
            pytest.skip("POST /api/auth/setup is not served yet (auth endpoints not wired into the app)")
        assert status in (200, 201), body
    status, body = b.http("POST", "/api/auth/login", {"username": "admin", "password": PASSWORD})
    assert status == 200, body
    return {"Authorization": f"Bearer {body['access_token']}"}


def names_asked(up: TestUpstream, name: str) -> int:
    return sum(1 for q in up.queries() if q["name"].lower() == name)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("apidata"), [up.address]) as b:
        headers = admin_headers(b)
        for i in range(5):
            assert b.query(f"host{i}.example.com").rcode() == 0
        assert b.query("host0.example.com").rcode() == 0  # a cache hit
        yield b, up, headers


# ---- the seed's examples ---------------------------------------------------------------------

def test_stats_examples(env):
    b, _, h = env
    status, body = b.http("GET", "/api/stats", headers=h)
    assert status == 200 and set(body) >= STATS_FIELDS, body
    assert body["period"] == "24h0m0s" and body["timestamp"].endswith("Z")
    assert wait_for(lambda: b.http("GET", "/api/stats", headers=h)[1]["total_queries"] >= 6)
    status, body = b.http("GET", "/api/stats?since=1h", headers=h)
    assert status == 200 and body["period"] == "1h0m0s"
    status, body = b.http("GET", "/api/stats?since=7d", headers=h)
    assert status == 200 and body["period"] == "168h0m0s"
    status, body = b.http("GET", "/api/stats?since=fortnight", headers=h)
    assert status == 400 and body["code"] == 400 and body["details"][0]["field"] == "since"
    assert b.http("GET", "/api/stats")[0] == 401


def test_trace_stats_examples(env):
    b, _, h = env
    for path in ("/api/traces/stats", "/api/traces/stats?since=1h",
                 "/api/traces/stats?since=" + time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())):
        status, body = b.http("GET", path, headers=h)
        assert status == 200, (path, body)
        assert {"since", "until", "total_blocked", "by_stage", "by_action", "by_rule", "by_source"} <= set(body)
        assert body["total_blocked"] == 0  # nothing is blocked without lists


def test_queries_examples(env):
    b, _, h = env
    status, body = b.http("GET", "/api/queries", headers=h)
    assert status == 200 and body["limit"] == 100 and body["offset"] == 0
    assert body["total"] >= 6 and set(body["queries"][0]) >= QUERY_FIELDS
    status, body = b.http("GET", "/api/queries?limit=50", headers=h)
    assert status == 200 and body["limit"] == 50 and len(body["queries"]) <= 50
    status, body = b.http("GET", "/api/queries?limit=50&offset=100", headers=h)
    assert status == 200 and body["offset"] == 100 and body["queries"] == []
    for qs in ("stage=policy", "source=manager", "rule=Block+social+media", "stage=policy&source=policy_engine"):
        status, body = b.http("GET", "/api/queries?" + qs, headers=h)
        assert status == 200 and body["queries"] == [] and body["total"] == 0, qs
    status, body = b.http("GET", "/api/queries?source=response_cache", headers=h)
    assert status == 200 and body["total"] >= 1 and all(q["cached"] for q in body["queries"])
    status, body = b.http("GET", "/api/queries?domain=host3.example.com&client=127.0.0.1", headers=h)
    assert status == 200 and [q["domain"] for q in body["queries"]] == ["host3.example.com"]
    q = body["queries"][0]
    assert q["query_type"] == "A" and q["response_code"] == 0 and q["upstream"]
    assert b.http("GET", "/api/queries?limit=1001", headers=h)[0] == 400


def test_a_query_shows_up_within_a_second(env):
    b, _, h = env
    assert b.query("fresh-one.example.com").rcode() == 0

    def listed():
        _, body = b.http("GET", "/api/queries?domain=fresh-one.example.com", headers=h)
        return body["queries"]

    rows = wait_for(listed, what="the query in /api/queries")  # a second when idle
    assert rows and rows[0]["domain"] == "fresh-one.example.com"


def test_the_export_holds_queries_not_flushed_yet(tmp_path):
    # A flush an hour away: the rows exist only in the recorder's memory, and the export reads
    # the whole log (like /api/queries), so it holds them within a second all the same.
    config = {"storage": {"query_log_flush_interval": 3600}}
    with TestUpstream() as up, BurrowProcess(tmp_path, [up.address], config) as b:
        h = admin_headers(b)
        names = [f"export{i}.example.com" for i in range(3)]
        for name in names:
            assert b.query(name).rcode() == 0

        def exported():
            status, body = b.http("GET", "/api/reports/queries?format=json&since=1h", headers=h)
            assert status == 200, body
            return body if {q["domain"] for q in body["queries"]} >= set(names) else None

        body = wait_for(exported, what="the queries in /api/reports/queries")
        assert body["total"] == len(body["queries"]) >= 3 and body["truncated"] is False


def test_top_domains_examples(env):
    b, _, h = env

    def top():  # until both host0 queries are counted (a drain may split them; ties come first)
        _, body = b.http("GET", "/api/top-domains?limit=10", headers=h)
        first = body["domains"][0] if body["domains"] else {}
        return first.get("domain") == "host0.example.com" and first.get("queries") == 2 and body

    body = wait_for(top, what="host0 counted twice at the top")
    assert body and body["limit"] == 10 and body["domains"][0] == {"domain": "host0.example.com",
                                                                  "queries": 2, "blocked": False}
    status, body = b.http("GET", "/api/top-domains?limit=20&blocked=true", headers=h)
    assert status == 200 and body == {"domains": [], "limit": 20}
    status, body = b.http("GET", "/api/top-clients", headers=h)
    assert status == 200 and body["clients"][0]["client_ip"] == "127.0.0.1"


def test_cache_purge_example(env):
    b, up, h = env
    assert b.query("purge-me.example.com").rcode() == 0
    status, body = b.http("POST", "/api/cache/purge", headers=h)
    assert status == 200, body
    assert body["status"] == "ok" and body["message"] == "DNS cache purged successfully"
    assert body["entries_cleared"] >= 1
    assert b.query("purge-me.example.com").rcode() == 0
    assert names_asked(up, "purge-me.example.com") == 2  # asked upstream again after the purge
    status, body = b.http("GET", "/api/cache/purge", headers=h)
    assert status == 405 and body["code"] == 405
    assert b.http("POST", "/api/cache/purge")[0] == 401


def test_dashboard_system_realtime_metrics(env):
    b, _, h = env
    status, body = b.http("GET", "/api/dashboard", headers=h)
    assert status == 200 and body["stats"]["period"] == "24h0m0s" and body["upstreams"]
    assert body["status"]["state"] in ("ready", "upstream_degraded", "link_down", "no_upstream")
    status, body = b.http("GET", "/api/system", headers=h)
    assert status == 200 and body["process"]["rss"] > 0 and body["listen_addresses"]["dns"] == [b.dns_address]
    status, body = b.http("GET", "/api/realtime", headers=h)
    assert status == 200 and "qps" in body and "last_minute" in body
    b.query("metrics-count.example.com")
    counter = 'burrow_queries_total{decision="resolved",qtype="A",rcode="0"}'

    def counted():  # the recorder drains every 0.25 s: wait for the count, not a fixed time
        status, text = b.http("GET", "/metrics", headers=h)
        return status == 200 and counter in text and text

    text = wait_for(counted, what="the query counted in /metrics")
    assert "process_resident_memory_bytes" in text
    assert "burrow_system_memory_bytes{" in text  # board health (flash figures need a block device)
    assert "burrow_blocklist_entries 0" in text  # no lists yet: an empty index
    assert b.http("GET", "/metrics")[0] == 401  # server.metrics_public is false by default


# ---- config applied live and kept ------------------------------------------------------------

def test_config_changes_apply_live_and_survive_restart(tmp_path):
    with TestUpstream() as first, TestUpstream() as second:
        b = BurrowProcess(tmp_path / "live", [first.address])
        with b:
            h = admin_headers(b)
            status, body = b.http("GET", "/api/config", headers=h)
            assert status == 200 and body["upstream_dns_servers"] == [first.address]
            assert body["cache"]["enabled"] is True and "rate_limit" in body and "logging" in body

            # Cache off: the same question goes upstream every time.
            status, body = b.http("PUT", "/api/config/cache", {"enabled": False}, headers=h)
            assert status == 200 and body["config"]["enabled"] is False, body
            for _ in range(2):
                assert b.query("twice.example.com").rcode() == 0
            assert names_asked(first, "twice.example.com") == 2
            assert b.http("POST", "/api/cache/purge", headers=h)[0] == 503

            # New upstream list: the next question goes to the new server only.
            status, body = b.http("PUT", "/api/config/upstreams",
                                  {"upstream_dns_servers": [second.address]}, headers=h)
            assert status == 200, body
            assert b.query("after-switch.example.com").rcode() == 0
            assert names_asked(second, "after-switch.example.com") == 1
            assert names_asked(first, "after-switch.example.com") == 0

            # Validation names the field and changes nothing.
            status, body = b.http("PUT", "/api/config/upstreams",
                                  {"upstream_dns_servers": [second.address, "nonsense"]}, headers=h)
            assert status == 400 and body["details"][0]["field"] == "upstream_dns_servers[1]"
            status, body = b.http("PUT", "/api/config/cache", {"min_ttl": 600, "max_ttl": 60}, headers=h)
            assert status == 400 and body["details"][0]["field"] == "min_ttl"
            assert b.http("PUT", "/api/config/rate-limit", {"rps": 50}, headers={})[0] == 401

        b.start()  # same data dir: the overrides come back from the settings database
        try:
            h = admin_headers(b, first=False)
            status, body = b.http("GET", "/api/config", headers=h)
            assert body["upstream_dns_servers"] == [second.address] and body["cache"]["enabled"] is False
            for _ in range(2):
                assert b.query("post-restart.example.com").rcode() == 0
            assert names_asked(second, "post-restart.example.com") == 2
            assert names_asked(first, "post-restart.example.com") == 0
        finally:
            b.stop()
