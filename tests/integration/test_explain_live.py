"""GET /api/blocklists/check through the running server: the explanation is the real chain run
as a dry run (dns/explain.py), so it names the stage that decides for local records, zones,
private reverse names, conditional forwarding, policies during a pause, per-group lists, the
allow list and CNAME inspection, and it leaves nothing behind: no upstream query, no query-log
row, no stats, no cache or fast-path entry, no rate-limit token."""

from __future__ import annotations

import re

import pytest

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.timing import wait_for
from tests.support.upstream_client import TestUpstream

KID, ADULT = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("explain")
    with TestUpstream() as up, TestUpstream() as router:
        # the rate limiter on, and never swept while the module runs: its table must not change
        b = BurrowProcess(workdir, [up.address], {"rate_limit": {"enabled": True, "cleanup_interval": 86400}})
        (b.data_dir / "lists").mkdir(parents=True)
        (b.data_dir / "lists" / "ads.txt").write_text("||ads.explain.test^\n")
        (b.data_dir / "lists" / "kids.txt").write_text("games.explain.test\n")
        with b:
            token = admin_token(b)
            assert authed(b, token, "POST", "/api/lists", {"name": "ads", "source": "ads.txt"})[0] == 201
            authed(b, token, "POST", "/api/groups", {"name": "kids"})
            assert authed(b, token, "POST", "/api/clients", {"client": KID, "groups": ["kids"]})[0] == 201
            assert authed(b, token, "POST", "/api/lists", {"name": "kids-games", "source": "kids.txt",
                                                           "groups": ["kids"]})[0] == 201
            assert authed(b, token, "POST", "/api/blocklist/reload", timeout=60)[1]["status"] == "ok"
            yield b, token, up, router


def explain(b, token, domain: str, rdtype: str = "A", client: str | None = None) -> dict:
    path = f"/api/blocklists/check?domain={domain}&type={rdtype}"
    if client is not None:
        path += f"&client={client}"
    status, body = authed(b, token, "GET", path)
    assert status == 200, body
    return body


def test_a_local_record_is_answered_locally(env):
    b, token, up, _ = env
    assert authed(b, token, "POST", "/api/localrecords",
                  {"domain": "nas.lan", "type": "A", "ips": ["192.168.1.10"]})[0] in (200, 201)
    body = explain(b, token, "nas.lan")
    assert body["decision"] == "local" and body["stage"] == "local", body
    assert body["upstream"] is None and body["answer"] == "192.168.1.10"
    assert body["reply"]["rcode"] == "NOERROR" and body["reply"]["ede"] is None
    assert [(r["section"], r["name"], r["type"], r["data"]) for r in body["reply"]["records"]] == \
        [("answer", "nas.lan", "A", "192.168.1.10")]
    assert {"list": "local_records", "kind": "local", "entry": "nas.lan"} in body["matches"]


def test_a_zone_name_is_answered_by_the_zone(env):
    b, token, _, _ = env
    status, zone = authed(b, token, "POST", "/api/zones", {"name": "lab.explain", "type": "master"})
    assert status == 201, zone
    assert authed(b, token, "POST", "/api/dns-records",
                  {"zone": "lab.explain", "name": "www", "type": "A", "value": "192.0.2.10"})[0] == 201
    body = explain(b, token, "www.lab.explain")
    assert body["decision"] == "local" and body["stage"] == "local" and body["rule"] == "lab.explain", body
    assert [r["data"] for r in body["reply"]["records"]] == ["192.0.2.10"]
    assert {"list": "zone", "kind": "local", "entry": "lab.explain"} in body["matches"]
    body = explain(b, token, "missing.lab.explain")  # the zone says the name does not exist
    assert body["decision"] == "local" and body["reply"]["rcode"] == "NXDOMAIN", body
    assert [r["type"] for r in body["reply"]["records"] if r["section"] == "authority"] == ["SOA"]


def test_a_private_reverse_name_stays_home(env):
    b, token, _, _ = env
    body = explain(b, token, "77.1.168.192.in-addr.arpa", "PTR")
    assert body["decision"] == "local" and body["stage"] == "private", body
    assert body["detail"] == "private reverse zone" and body["reply"]["rcode"] == "NXDOMAIN"
    assert body["answer"] == "NXDOMAIN" and body["upstream"] is None


def test_a_conditionally_forwarded_name_names_its_route_and_asks_nobody(env):
    b, token, up, router = env
    assert authed(b, token, "POST", "/api/conditionalforwarding",
                  {"name": "Router", "domains": ["*.corp.explain"], "upstreams": [router.address]})[0] == 200
    router.clear_log()
    up.clear_log()
    body = explain(b, token, "app.corp.explain")
    assert body["decision"] == "forwarded_conditional" and body["stage"] == "conditional", body
    assert body["rule"] == "Router" and body["reply"] is None
    assert body["upstream"]["servers"] == [router.address] and body["upstream"]["rule"] == "Router"
    assert router.queries() == [] and up.queries() == []
    # a private reverse name the rule covers goes to the router too (the rule beats refusal)
    authed(b, token, "POST", "/api/conditionalforwarding",
           {"name": "Reverse", "domains": ["1.168.192.in-addr.arpa"], "upstreams": [router.address]})
    body = explain(b, token, "5.1.168.192.in-addr.arpa", "PTR")
    assert body["decision"] == "forwarded_conditional" and body["rule"] == "Reverse", body
    assert router.queries() == []


def test_a_policy_redirect_holds_during_a_pause_and_a_block_does_not(env):
    b, token, _, _ = env
    assert authed(b, token, "POST", "/api/policies",
                  {"name": "portal", "logic": 'Domain == "portal.explain.test"', "action": "REDIRECT",
                   "action_data": "192.0.2.80"})[0] == 201
    assert authed(b, token, "POST", "/api/policies",
                  {"name": "no games", "logic": 'Domain == "blocked.explain.test"', "action": "BLOCK"})[0] == 201
    body = explain(b, token, "blocked.explain.test")
    assert body["decision"] == "blocked" and body["stage"] == "policy" and body["rule"] == "no games", body
    assert body["reply"]["ede"] == {"code": 15, "text": "policy: no games"}
    assert authed(b, token, "POST", "/api/blocking", {"enabled": False})[0] == 200
    try:
        body = explain(b, token, "portal.explain.test")
        assert body["decision"] == "redirected" and body["stage"] == "policy" and body["rule"] == "portal", body
        assert body["answer"] == "192.0.2.80"
        assert {"list": "policy", "kind": "redirect", "rule": "portal"} in body["matches"]
        assert b.query("portal.explain.test").answer[0][0].address == "192.0.2.80"  # as the chain says
        body = explain(b, token, "blocked.explain.test")  # the pause lets a BLOCK rule's name through
        assert body["decision"] == "forwarded" and body["stage"] == "filter", body
        assert [t["action"] for t in body["trace"]] == ["paused", "paused", "would_forward"]
    finally:
        assert authed(b, token, "POST", "/api/blocking", {"enabled": True})[0] == 200


def test_a_per_group_list_applies_to_its_group_only(env):
    b, token, _, _ = env
    body = explain(b, token, "games.explain.test", client=KID)
    assert body["groups"] == ["kids"] and body["decision"] == "blocked", body
    assert body["stage"] == "blocklist" and body["rule"] == "kids-games" and body["answer"] == "0.0.0.0"
    assert [m["list"] for m in body["matches"]] == ["kids-games"]
    body = explain(b, token, "games.explain.test", client=ADULT)
    assert body["groups"] == ["default"] and body["decision"] == "forwarded" and body["matches"] == [], body


def test_an_allow_listed_name_is_allowed_and_still_shows_the_list(env):
    b, token, _, _ = env
    assert authed(b, token, "POST", "/api/whitelist", {"domain": "ok.ads.explain.test"})[0] == 200
    body = explain(b, token, "ok.ads.explain.test")
    assert body["decision"] == "allowed" and body["stage"] == "whitelist", body
    assert body["rule"] == "ok.ads.explain.test" and body["reply"] is None
    assert {m["list"] for m in body["matches"]} == {"ads", "whitelist"}


def test_a_cname_into_a_blocked_name_is_blocked_once_its_answer_is_cached(env):
    b, token, up, _ = env
    up.set_rule("shop.explain.test", cname_chain=["t.ads.explain.test"])
    body = explain(b, token, "shop.explain.test")  # nothing cached: the upstream's answer decides
    assert body["decision"] == "forwarded" and "cname_inspection" in body["pending"], body
    assert b.query("shop.explain.test").answer[0][0].address == "0.0.0.0"  # caches the upstream's answer
    up.clear_log()
    body = explain(b, token, "shop.explain.test")
    assert body["decision"] == "blocked" and body["stage"] == "blocklist" and body["rule"] == "ads", body
    assert body["detail"] == "cname t.ads.explain.test (subtree ads.explain.test)" and body["pending"] == []
    assert {"list": "ads", "kind": "block", "how": "subtree", "entry": "ads.explain.test", "action": "block",
            "important": False, "cname": "t.ads.explain.test"} in body["matches"]
    assert [t["stage"] for t in body["trace"]] == ["cache", "blocklist"]
    assert body["reply"]["ede"]["code"] == 15 and body["answer"] == "0.0.0.0"
    assert up.queries() == []


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    assert found, name
    return float(found.group(1))


def test_explaining_leaves_no_trace(env):
    b, token, up, router = env
    # everything before this test is logged and counted: a marker query shows up last
    b.query("before.quiet.test")
    wait_for(lambda: authed(b, token, "GET", "/api/queries?domain=before.quiet.test")[1]["total"],
             what="the marker query in the log")
    stats = authed(b, token, "GET", "/api/stats")[1]["total_queries"]
    metrics = authed(b, token, "GET", "/metrics")[1]
    up.clear_log()
    router.clear_log()
    names = [("fresh.quiet.test", None), ("x.ads.explain.test", None), ("app.corp.explain", None),
             ("games.explain.test", KID), ("fresh.quiet.test", "192.0.2.99")]
    for name, client in names:
        explain(b, token, name, client=client)
    assert up.queries() == [] and router.queries() == []
    after = authed(b, token, "GET", "/metrics")[1]
    for name in ("burrow_cache_entries", "burrow_cache_hits_total", "burrow_cache_misses_total",
                 "burrow_fastpath_entries", "burrow_rate_limiter_clients", "burrow_rate_limited_total"):
        assert metric(after, name) == metric(metrics, name), name
    # a query after the explanations is logged and counted; none of the explained names is
    b.query("after.quiet.test")
    wait_for(lambda: authed(b, token, "GET", "/api/queries?domain=after.quiet.test")[1]["total"],
             what="the control query in the log")
    logged = authed(b, token, "GET", "/api/queries?limit=1000")[1]["queries"]
    assert not {q["domain"] for q in logged} & {name for name, _ in names}
    assert wait_for(lambda: authed(b, token, "GET", "/api/stats")[1]["total_queries"] >= stats + 1,
                    what="the control query counted")
    assert authed(b, token, "GET", "/api/stats")[1]["total_queries"] == stats + 1
