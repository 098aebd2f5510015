"""Conditional forwarding through the running server (seed 003 shapes), with a second test
upstream standing in for the router: matched by domain, by client address (127.0.0.2 vs
127.0.0.3), by query type, by priority; failover past a dead upstream; the router preset
carries private reverse lookups to the router and never to the public upstream."""

import dns.rcode

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess, free_port
from tests.support.upstream_client import TestUpstream


def names_seen(up):
    return [q["name"] for q in up.queries()]


def test_rules_route_by_domain_client_type_and_priority(tmp_path, upstream):
    with TestUpstream() as router, TestUpstream() as vpn, \
            BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        router.set_rule("corp.test", match="suffix", records={"A": ["192.0.2.10"]})
        vpn.set_rule("corp.test", match="suffix", records={"A": ["192.0.2.20"]})
        # seed 003 example shapes
        status, body = authed(b, token, "POST", "/api/conditionalforwarding",
                              {"name": "Local Network", "domains": ["*.corp.test"],
                               "upstreams": [router.address], "priority": 80})
        assert status == 200 and body["message"] == "Conditional forwarding rule added successfully"
        assert body["rule"]["id"] == "Local Network:80:0" and body["rule"]["timeout"] == ""
        assert authed(b, token, "POST", "/api/conditionalforwarding",
                      {"name": "Local Network", "domains": ["x.test"], "upstreams": [router.address]})[0] == 409
        status, bad = authed(b, token, "POST", "/api/conditionalforwarding",
                             {"name": "No matcher", "upstreams": [router.address]})
        assert status == 400
        status, bad = authed(b, token, "POST", "/api/conditionalforwarding",
                             {"name": "Bad prio", "domains": ["x.test"], "upstreams": [router.address],
                              "priority": 101})
        assert status == 400 and bad["details"][0]["field"] == "priority"

        assert b.query("www.corp.test").answer[0][0].address == "192.0.2.10"
        assert b.query("evilcorp.test").answer[0][0].address != "192.0.2.10"  # dot-bounded
        assert "evilcorp.test" not in names_seen(router)

        # a higher-priority rule for some clients only
        status, body = authed(b, token, "POST", "/api/conditionalforwarding",
                              {"name": "VPN", "domains": ["*.corp.test"], "client_cidrs": ["127.0.0.2/32"],
                               "upstreams": [vpn.address], "priority": 90, "timeout": "500ms",
                               "max_retries": 1, "failover": True})
        assert status == 200
        assert b.query("app.corp.test", source="127.0.0.2").answer[0][0].address == "192.0.2.20"
        assert b.query("app.corp.test", source="127.0.0.3").answer[0][0].address == "192.0.2.10"
        # the first client's answer is not replayed to the other (same group, other rule)
        assert b.query("app.corp.test", source="127.0.0.3").answer[0][0].address == "192.0.2.10"
        assert b.query("app.corp.test", source="127.0.0.2").answer[0][0].address == "192.0.2.20"

        # by query type: PTR questions from anyone go to the router
        authed(b, token, "POST", "/api/conditionalforwarding",
               {"name": "Reverse", "query_types": ["PTR"], "upstreams": [router.address], "priority": 70})
        router.clear_log()
        upstream.clear_log()
        b.query("4.3.2.1.in-addr.arpa", "PTR")
        assert names_seen(router) == ["4.3.2.1.in-addr.arpa"] and names_seen(upstream) == []

        status, listing = authed(b, token, "GET", "/api/conditionalforwarding")
        assert [r["name"] for r in listing["rules"]] == ["VPN", "Local Network", "Reverse"]  # priority order
        assert [r["id"] for r in listing["rules"]] == ["VPN:90:0", "Local Network:80:1", "Reverse:70:2"]
        assert listing["enabled"] is True and listing["total"] == 3
        status, body = authed(b, token, "DELETE", "/api/conditionalforwarding/VPN%3A90%3A0")
        assert status == 200 and body["total"] == 2
        assert b.query("app.corp.test", source="127.0.0.2").answer[0][0].address == "192.0.2.10"
        assert authed(b, token, "DELETE", "/api/conditionalforwarding/Nope%3A1%3A0")[0] == 404
        # the same objects through seed 000's face
        assert authed(b, token, "GET", "/api/conditionalforwarding/enabled")[1] == {"enabled": True}
        status, err = authed(b, token, "PUT", "/api/conditionalforwarding/enabled", {"name": "x"})
        assert status == 405 and err["code"] == 405  # a fixed resource, not a rule id
        status, fwd = authed(b, token, "GET", "/api/forwarders")
        assert status == 200 and {r["name"] for r in fwd["forwarders"]} == {"Local Network", "Reverse"}


def test_an_answer_for_a_client_a_rule_leaves_out_is_not_replayed_to_one_it_covers(tmp_path, upstream):
    """127.0.0.3 and 127.0.0.2 are in one client group; only .2 is sent to the lab's server.
    The public answer .3 gets must not be replayed by the (per-group) fast path to .2."""
    with TestUpstream() as lab, BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        upstream.set_rule("app.lab.test", records={"A": ["192.0.2.80"]})
        lab.set_rule("app.lab.test", records={"A": ["10.9.9.9"]})
        status, _ = authed(b, token, "POST", "/api/conditionalforwarding",
                           {"name": "Lab", "domains": ["lab.test"], "client_cidrs": ["127.0.0.2/32"],
                            "upstreams": [lab.address]})
        assert status == 200
        for _ in range(2):  # the second round would come from the fast path if it kept them
            assert b.query("app.lab.test", source="127.0.0.3").answer[0][0].address == "192.0.2.80"
            assert b.query("app.lab.test", source="127.0.0.2").answer[0][0].address == "10.9.9.9"
        assert names_seen(lab) == ["app.lab.test"]  # the second from the cache, by route


def test_failover_past_a_dead_upstream_and_router_preset(tmp_path, upstream):
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    with TestUpstream() as router, BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        router.set_rule("corp.test", match="suffix", records={"A": ["192.0.2.30"]})
        authed(b, token, "POST", "/api/conditionalforwarding",
               {"name": "Failover", "domains": ["corp.test"], "upstreams": [dead, router.address],
                "timeout": "2s", "failover": True})  # the router's answer must come within it
        assert b.query("x.corp.test", timeout=15).answer[0][0].address == "192.0.2.30"
        authed(b, token, "POST", "/api/conditionalforwarding",
               {"name": "NoFailover", "domains": ["nf.test"], "upstreams": [dead, router.address],
                "timeout": "300ms", "failover": False})
        assert b.query("x.nf.test", timeout=15).rcode() == dns.rcode.SERVFAIL  # dead's 300 ms, retried

        # the home preset: the router answers *.lan and the LAN's reverse zone
        router.set_rule("nas.lan", records={"A": ["192.168.1.20"]})
        router.set_rule("20.1.168.192.in-addr.arpa", records={"PTR": ["nas.lan."]})
        upstream.clear_log()
        assert b.query("nas.lan").rcode() == dns.rcode.NXDOMAIN  # private name: kept home
        status, preset = authed(b, token, "POST", "/api/conditionalforwarding/preset/router",
                                {"router": router.address, "domain": "lan", "network": "192.168.1.0/24"})
        assert status in (200, 201), preset
        assert b.query("nas.lan").answer[0][0].address == "192.168.1.20"
        assert str(b.query("20.1.168.192.in-addr.arpa", "PTR").answer[0][0].target) == "nas.lan."
        assert upstream.queries() == []  # nothing private reached the public upstream
        assert authed(b, token, "DELETE", "/api/conditionalforwarding/preset/router")[0] == 200
        assert b.query("nas.lan").rcode() == dns.rcode.NXDOMAIN
