"""Conditional forwarding rules: seed 003 validation and shapes, ids, order, matching, storage,
the router preset; and the forward stage honouring a rule's own timeout, retries and failover."""

import asyncio
import sqlite3
import time

import pytest
from dnslib import QTYPE, RR, A, DNSRecord

from burrow.dns import wire
from burrow.dns.cache import AnswerCache
from burrow.dns.chain import Chain
from burrow.dns.message import render
from burrow.dns.stages.cache import CacheStage
from burrow.dns.decision import Decision
from burrow.dns.shared import Routes
from burrow.dns.stages.conditional import ConditionalStage
from burrow.dns.stages.forward import CacheLimits, ForwardStage
from burrow.dns.upstream import UpstreamError, UpstreamPool, UpstreamSettings
from burrow.forwarding import (DuplicateRule, ForwardRule, ForwardRuleError, ForwardRules, RuleNotFound,
                               parse_duration, parse_rule_id, reverse_zones, router_preset_rule)
from burrow.forwarding.rules import ENABLED_KEY, SETTINGS_KEY

from tests.support.dnsq import make_query

A_, AAAA, PTR, MX = 1, 28, 12, 15

# The seed's three POST examples, verbatim.
LOCAL_NETWORK = {"name": "Local Network", "domains": ["*.local", "*.lan"], "upstreams": ["192.168.1.1:53"],
                 "priority": 80}
REVERSE_DNS = {"name": "Reverse DNS", "client_cidrs": ["10.0.0.0/8"], "query_types": ["PTR"],
               "upstreams": ["10.0.0.1:53"], "priority": 70, "timeout": "3s", "max_retries": 2, "failover": True}
VPN_NETWORK = {"name": "VPN Network", "domains": ["*.vpn.corp"], "client_cidrs": ["172.16.0.0/12"],
               "query_types": ["A", "AAAA"], "upstreams": ["172.16.0.1:53", "172.16.0.2:53"], "priority": 90,
               "timeout": "5s", "max_retries": 3, "failover": True}


@pytest.fixture
def store(db):
    return ForwardRules(db)


def run(coro):
    return asyncio.run(coro)


# ---- shapes and ids ------------------------------------------------------------------------------

def test_first_rule_added_has_the_seed_response_shape(store):
    rule = store.add(LOCAL_NETWORK)
    assert store.dict_of(rule) == {
        "id": "Local Network:80:0", "name": "Local Network", "domains": ["*.local", "*.lan"],
        "client_cidrs": [], "query_types": [], "upstreams": ["192.168.1.1:53"], "priority": 80,
        "timeout": "", "max_retries": 0, "failover": False, "enabled": True}


def test_seed_get_example_ids_are_positions_in_the_sorted_list(store):
    store.add({"name": "Home Network", "client_cidrs": ["192.168.1.0/24"], "query_types": ["PTR"],
               "upstreams": ["192.168.1.1:53"], "priority": 50})
    store.add({"name": "Corporate VPN", "domains": ["*.corp.example.com", "*.internal"],
               "upstreams": ["10.0.0.1:53", "10.0.0.2:53"], "priority": 90, "timeout": "3s",
               "max_retries": 2, "failover": True})
    snap = store.snapshot()
    assert snap["enabled"] is True and snap["total"] == 2
    assert [r["id"] for r in snap["rules"]] == ["Corporate VPN:90:0", "Home Network:50:1"]
    assert snap["rules"][0] == {
        "id": "Corporate VPN:90:0", "name": "Corporate VPN", "domains": ["*.corp.example.com", "*.internal"],
        "client_cidrs": [], "query_types": [], "upstreams": ["10.0.0.1:53", "10.0.0.2:53"], "priority": 90,
        "timeout": "3s", "max_retries": 2, "failover": True, "enabled": True}
    assert snap["rules"][1]["timeout"] == "" and snap["rules"][1]["failover"] is False


def test_seed_post_examples_are_accepted_and_sorted(store):
    for body in (LOCAL_NETWORK, REVERSE_DNS, VPN_NETWORK):
        store.add(body)
    ids = [r["id"] for r in store.to_dicts()]
    assert ids == ["VPN Network:90:0", "Local Network:80:1", "Reverse DNS:70:2"]
    vpn = store.get("VPN Network:90:0")
    assert vpn.query_types == ("A", "AAAA") and vpn.client_cidrs == ("172.16.0.0/12",)
    assert vpn.settings.timeout == 5.0 and vpn.settings.failover
    assert vpn.settings.max_attempts == 4 * 2  # (1 + 3 retries) for each of two upstreams
    rev = store.get("Reverse DNS")
    assert rev.settings.timeout == 3.0 and rev.settings.max_attempts == 3


def test_seed_post_examples_match_what_they_say(store):
    for body in (LOCAL_NETWORK, REVERSE_DNS, VPN_NETWORK):
        store.add(body)
    assert store.match("printer.local", "192.168.1.20", A_).name == "Local Network"
    assert store.match("nas.lan", "8.8.8.8", AAAA).name == "Local Network"
    assert store.match("4.3.2.10.in-addr.arpa", "10.20.30.40", PTR).name == "Reverse DNS"
    assert store.match("4.3.2.10.in-addr.arpa", "192.168.1.20", PTR) is None  # not a 10/8 client
    assert store.match("4.3.2.10.in-addr.arpa", "10.20.30.40", A_) is None  # not a PTR
    assert store.match("git.vpn.corp", "172.20.0.5", A_).name == "VPN Network"
    assert store.match("git.vpn.corp", "172.20.0.5", MX) is None  # wrong type
    assert store.match("git.vpn.corp", "192.168.1.5", A_) is None  # wrong client
    assert store.match("www.example.com", "172.20.0.5", A_) is None  # wrong name


def test_ties_keep_creation_order_and_ids_follow(store):
    for name in ("b", "a", "c"):
        store.add({"name": name, "domains": [f"{name}.test"], "upstreams": ["10.0.0.1"]})
    store.add({"name": "top", "domains": ["x.test"], "upstreams": ["10.0.0.1"], "priority": 51})
    assert [r["id"] for r in store.to_dicts()] == ["top:51:0", "b:50:1", "a:50:2", "c:50:3"]
    # a rule edited in place keeps its creation slot among equals
    store.update("a", {"upstreams": ["10.0.0.9"]})
    assert [r.name for r in store.list()] == ["top", "b", "a", "c"]
    # the first created wins a tie when both match
    store.add({"name": "also-b", "domains": ["b.test"], "upstreams": ["10.0.0.2"]})
    assert store.match("x.b.test", "1.2.3.4", A_).name == "b"


def test_rule_ids_parse_with_colons_in_names():
    assert parse_rule_id("Local Network:80:0") == ("Local Network", 80, 0)
    assert parse_rule_id("a:b:c:5:12") == ("a:b:c", 5, 12)
    for bad in ("nocolons", "x:80", ":80:0", "x:high:0", "x:80:first", "x:-1:0", ""):
        with pytest.raises(ForwardRuleError) as e:
            parse_rule_id(bad)
        assert e.value.field == "id" and e.value.status == 400


def test_get_and_remove_by_id_or_name(store):
    store.add(LOCAL_NETWORK)
    store.add(REVERSE_DNS)
    assert store.get("Local Network:80:0").name == "Local Network"
    assert store.get("Local Network:80:7").name == "Local Network"  # a stale index still finds it
    assert store.get("Reverse DNS").name == "Reverse DNS"  # an exact name works too
    with pytest.raises(RuleNotFound):
        store.get("Local Network:81:0")  # the priority is part of the id
    with pytest.raises(RuleNotFound):
        store.get("Nobody:50:0")
    with pytest.raises(RuleNotFound):
        store.remove("Nobody")  # not an id, so a name: one no rule has (404, not a malformed request)
    assert store.remove("Local Network:80:0").name == "Local Network"
    assert len(store) == 1 and store.to_dicts()[0]["id"] == "Reverse DNS:70:0"
    with pytest.raises(RuleNotFound) as nf:
        store.remove("Local Network:80:0")
    assert nf.value.status == 404


# ---- validation (seed rules) ---------------------------------------------------------------------

@pytest.mark.parametrize("body,field", [
    ({"domains": ["*.lan"], "upstreams": ["10.0.0.1"]}, "name"),  # name is required
    ({"name": "   ", "domains": ["*.lan"], "upstreams": ["10.0.0.1"]}, "name"),
    ({"name": "x", "upstreams": ["10.0.0.1"]}, "domains"),  # at least one matcher
    ({"name": "x", "domains": [], "client_cidrs": [], "query_types": [], "upstreams": ["10.0.0.1"]}, "domains"),
    ({"name": "x", "domains": ["*.lan"]}, "upstreams"),  # at least one upstream
    ({"name": "x", "domains": ["*.lan"], "upstreams": []}, "upstreams"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["router.lan:53"]}, "upstreams[0]"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1:99999"]}, "upstreams[0]"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1:0"]}, "upstreams[0]"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1"], "priority": 0}, "priority"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1"], "priority": 101}, "priority"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1"], "priority": "high"}, "priority"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1"], "timeout": "3"}, "timeout"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1"], "timeout": "3 seconds"}, "timeout"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1"], "timeout": "-2s"}, "timeout"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1"], "timeout": "1m"}, "timeout"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1"], "timeout": 3}, "timeout"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1"], "max_retries": 11}, "max_retries"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1"], "max_retries": -1}, "max_retries"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1"], "failover": "yes"}, "failover"),
    ({"name": "x", "client_cidrs": ["10.0.0.0/33"], "upstreams": ["10.0.0.1"]}, "client_cidrs[0]"),
    ({"name": "x", "client_cidrs": ["10.0.0.0/8", "lan"], "upstreams": ["10.0.0.1"]}, "client_cidrs[1]"),
    ({"name": "x", "query_types": ["A", "BOGUS"], "upstreams": ["10.0.0.1"]}, "query_types[1]"),
    ({"name": "x", "domains": ["a.*.lan"], "upstreams": ["10.0.0.1"]}, "domains[0]"),
    ({"name": "x", "domains": ["*lan"], "upstreams": ["10.0.0.1"]}, "domains[0]"),
    ({"name": "x", "domains": ["ok.lan", ".lan"], "upstreams": ["10.0.0.1"]}, "domains[1]"),
    ({"name": "x", "domains": ["bad domain.lan"], "upstreams": ["10.0.0.1"]}, "domains[0]"),
    ({"name": "x", "domains": ["*"], "upstreams": ["10.0.0.1"]}, "domains[0]"),
])
def test_invalid_rules_name_the_field(store, body, field):
    with pytest.raises(ForwardRuleError) as e:
        store.add(body)
    assert e.value.field == field and e.value.status == 400
    assert len(store) == 0


def test_duplicate_name_is_409(store):
    store.add(LOCAL_NETWORK)
    with pytest.raises(DuplicateRule) as e:
        store.add({**REVERSE_DNS, "name": "Local Network"})
    assert e.value.status == 409 and e.value.field == "name"
    store.add(REVERSE_DNS)
    with pytest.raises(DuplicateRule):
        store.update("Reverse DNS", {"name": "Local Network"})


def test_accepted_forms_and_defaults():
    r = ForwardRule({"name": " spaced ", "query_types": ["ptr", "TYPE65280"],
                     "upstreams": ["10.0.0.1", "[fd00::53]:5353", "fd00::1", "10.0.0.1:53"],
                     "client_cidrs": ["192.168.1.5/24", "fd00::/8"], "domains": ["Corp.Example.COM.", "bücher.de"],
                     "timeout": "500ms", "priority": 1})
    assert r.name == "spaced" and r.query_types == ("PTR", "TYPE65280")
    assert tuple((s.host, s.port) for s in r.servers) == (("10.0.0.1", 53), ("fd00::53", 5353), ("fd00::1", 53))
    assert not any(s.encrypted for s in r.servers)  # duplicate dropped above
    assert r.domains == ("corp.example.com", "xn--bcher-kva.de")
    assert r.timeout == "500ms" and r.timeout_seconds == 0.5 and r.priority == 1
    assert r.max_retries == 0 and r.failover is False and r.enabled is True
    assert r.settings.max_attempts == 1 and r.settings.failover is False
    assert r.route == "cf:spaced@10.0.0.1:53,[fd00::53]:5353,[fd00::1]:53"
    d = ForwardRule({"name": "d", "domains": ["lan"], "upstreams": ["10.0.0.1"], "timeout": None,
                     "domains_extra": 1}, UpstreamSettings(timeout=1.5, max_inflight=77))
    assert d.settings.timeout == 1.5 and d.settings.max_inflight == 77 and d.priority == 50


def test_go_durations():
    assert parse_duration("3s") == 3 and parse_duration("500ms") == 0.5
    assert parse_duration("1m30s") == 90 and parse_duration("1.5s") == 1.5 and parse_duration("0") == 0
    assert parse_duration("250us") == pytest.approx(0.00025) and parse_duration("2h") == 7200
    for bad in ("3", "s", "1x", "1.2.3s", "", "3s garbage", "ms"):
        with pytest.raises(ValueError):
            parse_duration(bad)


# ---- matching ------------------------------------------------------------------------------------

def test_wildcards_are_dot_bounded(store):
    store.add({"name": "corp", "domains": ["*.corp.example.com"], "upstreams": ["10.0.0.1"]})
    assert store.match("a.corp.example.com", "1.2.3.4", A_).name == "corp"
    assert store.match("a.b.corp.example.com", "1.2.3.4", A_).name == "corp"
    assert store.match("A.Corp.Example.Com.", "1.2.3.4", A_).name == "corp"  # case, trailing dot
    for miss in ("corp.example.com", "evilcorp.example.com", "a.evilcorp.example.com", "example.com",
                 "corp.example.com.evil.net", "xcorp.example.com"):
        assert store.match(miss, "1.2.3.4", A_) is None, miss


def test_plain_domain_covers_itself_and_below_on_label_boundaries(store):
    store.add({"name": "lan", "domains": ["example.com"], "upstreams": ["10.0.0.1"]})
    assert store.match("example.com", "1.2.3.4", A_) is not None
    assert store.match("www.example.com", "1.2.3.4", A_) is not None
    assert store.match("badexample.com", "1.2.3.4", A_) is None
    assert store.match("example.com.au", "1.2.3.4", A_) is None


def test_client_cidrs_v4_v6_and_mapped(store):
    store.add({"name": "kids", "client_cidrs": ["192.168.1.128/25", "fd00:1::/64"], "upstreams": ["10.0.0.1"]})
    assert store.match("any.example", "192.168.1.200", A_).name == "kids"
    assert store.match("any.example", "192.168.1.100", A_) is None
    assert store.match("any.example", "fd00:1::25", A_).name == "kids"
    assert store.match("any.example", "fd00:2::25", A_) is None
    assert store.match("any.example", "::ffff:192.168.1.200", A_).name == "kids"
    assert store.match("any.example", "not-an-ip", A_) is None
    rule, dependent = store.lookup("any.example", "192.168.1.100", A_)
    assert rule is None and dependent  # another client would be routed: keep off the fast path


def test_lookup_says_when_the_client_did_not_matter(store):
    store.add({"name": "names", "domains": ["lan"], "upstreams": ["10.0.0.1"], "priority": 90})
    store.add({"name": "clients", "domains": ["corp"], "client_cidrs": ["10.0.0.0/8"], "upstreams": ["10.0.0.2"]})
    assert store.lookup("nas.lan", "10.1.1.1", A_) == (store.get("names"), False)
    assert store.lookup("www.example", "10.1.1.1", A_) == (None, False)  # client rule not asked
    assert store.lookup("x.corp", "10.1.1.1", A_) == (store.get("clients"), True)
    assert store.lookup("x.corp", "192.168.1.1", A_) == (None, True)
    assert store.uses_client_cidrs


def test_query_types_and_all_matchers_must_match(store):
    store.add({"name": "ptr-only", "query_types": ["PTR"], "upstreams": ["10.0.0.1"]})
    store.add({"name": "combo", "domains": ["*.lab"], "query_types": ["AAAA"], "client_cidrs": ["10.0.0.0/8"],
               "upstreams": ["10.0.0.2"], "priority": 60})
    assert store.match("1.1.168.192.in-addr.arpa", "1.2.3.4", PTR).name == "ptr-only"
    assert store.match("www.example", "1.2.3.4", A_) is None
    assert store.match("x.lab", "10.1.2.3", AAAA).name == "combo"
    assert store.match("x.lab", "10.1.2.3", A_) is None
    assert store.match("x.lab", "11.1.2.3", AAAA) is None
    assert store.match("lab", "10.1.2.3", AAAA) is None


def test_higher_priority_wins(store):
    store.add({"name": "low", "domains": ["lan"], "upstreams": ["10.0.0.1"], "priority": 10})
    store.add({"name": "high", "domains": ["*.lan"], "upstreams": ["10.0.0.2"], "priority": 20})
    assert store.match("nas.lan", "1.2.3.4", A_).name == "high"
    assert store.match("lan", "1.2.3.4", A_).name == "low"


def test_disabled_rules_and_the_global_switch(store, db):
    store.add({**LOCAL_NETWORK, "enabled": False})
    store.add({"name": "other", "domains": ["*.lan"], "upstreams": ["10.0.0.9"], "priority": 10})
    assert store.match("nas.lan", "1.2.3.4", A_).name == "other"
    assert not store.covers_name("printer.local") and store.covers_name("nas.lan")
    store.set_enabled(False)
    assert store.match("nas.lan", "1.2.3.4", A_) is None and not store.covers_name("nas.lan")
    assert store.snapshot()["enabled"] is False and db.get(ENABLED_KEY) is False
    assert ForwardRules(db).match("nas.lan", "1.2.3.4", A_) is None  # the switch is stored
    store.set_enabled(True)
    store.update("Local Network:80:0", {"enabled": True})
    assert store.match("nas.lan", "1.2.3.4", A_).name == "Local Network"


def test_covers_name_ignores_rules_without_domains(store):
    store.add({"name": "ptr", "query_types": ["PTR"], "upstreams": ["10.0.0.1"]})
    assert not store.covers_name("1.1.168.192.in-addr.arpa")
    store.add({"name": "rev", "domains": ["168.192.in-addr.arpa"], "client_cidrs": ["10.0.0.0/8"],
               "upstreams": ["10.0.0.1"]})
    assert store.covers_name("1.1.168.192.IN-ADDR.ARPA.")  # whatever the other matchers say
    assert not store.covers_name("1.1.169.192.in-addr.arpa")


# ---- storage -------------------------------------------------------------------------------------

def test_rules_survive_a_new_store_on_the_same_db(store, db):
    for body in (REVERSE_DNS, LOCAL_NETWORK, VPN_NETWORK):
        store.add(body)
    store.update("Local Network", {"priority": 95, "timeout": "750ms"})
    again = ForwardRules(db)
    assert again.to_dicts() == store.to_dicts()
    assert [r.name for r in again._rules] == ["Reverse DNS", "Local Network", "VPN Network"]  # creation order
    assert again.get("Local Network:95:0").settings.timeout == 0.75
    assert [d["name"] for d in db.get(SETTINGS_KEY)] == ["Reverse DNS", "Local Network", "VPN Network"]


def test_invalid_stored_rules_are_skipped_not_fatal(db):
    db.set(SETTINGS_KEY, [LOCAL_NETWORK, {"name": "broken"}, {**LOCAL_NETWORK}, "junk"])
    store = ForwardRules(db)
    assert [r.name for r in store.list()] == ["Local Network"]


def test_a_failed_write_keeps_the_old_rules(store, db):
    store.add(LOCAL_NETWORK)
    db.close()
    with pytest.raises(sqlite3.ProgrammingError):  # "Cannot operate on a closed database"
        store.add(REVERSE_DNS)
    assert [r.name for r in store.list()] == ["Local Network"]


def test_generation_moves_on_every_change(store):
    g = store.generation
    store.add(LOCAL_NETWORK)
    store.update("Local Network", {"priority": 70})
    store.set_enabled(False)
    store.remove("Local Network")
    assert store.generation == g + 4


# ---- the router preset ---------------------------------------------------------------------------

def test_reverse_zone_names():
    assert reverse_zones("192.168.1.0/24") == ["1.168.192.in-addr.arpa"]
    assert reverse_zones("192.168.0.0/16") == ["168.192.in-addr.arpa"]
    assert reverse_zones("10.0.0.0/8") == ["10.in-addr.arpa"]
    assert reverse_zones("192.168.1.77/24") == ["1.168.192.in-addr.arpa"]  # host bits ignored
    assert reverse_zones("10.1.16.0/22") == [f"{n}.1.10.in-addr.arpa" for n in (16, 17, 18, 19)]
    assert reverse_zones("172.16.0.0/12") == [f"{n}.172.in-addr.arpa" for n in range(16, 32)]
    assert reverse_zones("192.168.1.240/28") == [f"{n}.1.168.192.in-addr.arpa" for n in range(240, 256)]
    assert reverse_zones("fd00:1:2:3::/64") == ["3.0.0.0.2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa"]
    assert reverse_zones("fd12:3456:789a::/48") == ["a.9.8.7.6.5.4.3.2.1.d.f.ip6.arpa"]
    for bad in ("0.0.0.0/0", "10.0.0.0/1", "192.168.1.128/25", "nonsense"):
        with pytest.raises(ForwardRuleError) as e:
            reverse_zones(bad)
        assert e.value.field == "network"


def test_router_preset_rule_defaults_to_the_routers_24():
    rule, params = router_preset_rule("192.168.1.1", "lan")
    assert rule["domains"] == ["lan", "1.168.192.in-addr.arpa"] and rule["upstreams"] == ["192.168.1.1:53"]
    assert params == {"router": "192.168.1.1", "domain": "lan", "network": "192.168.1.0/24"}
    rule, params = router_preset_rule("192.168.1.1:5353", "*.Fritz.Box", "192.168.0.0/16")
    assert rule["domains"] == ["fritz.box", "168.192.in-addr.arpa"] and rule["upstreams"] == ["192.168.1.1:5353"]
    assert params["router"] == "192.168.1.1:5353"
    rule, _ = router_preset_rule("192.168.1.1", "")
    assert rule["domains"] == ["1.168.192.in-addr.arpa"]  # reverse lookups only
    for args, field in ((("", "lan"), "router"), (("router.lan", "lan"), "router"),
                        (("192.168.1.1", "bad name"), "domain"), (("192.168.1.1", "lan", "10.0.0.0/33"), "network")):
        with pytest.raises(ForwardRuleError) as e:
            router_preset_rule(*args)
        assert e.value.field == field


def test_router_preset_on_off_and_replace(store, db):
    store.add(LOCAL_NETWORK)
    assert store.router_preset()["enabled"] is False and store.router_preset()["rule"] is None
    store.set_router_preset("192.168.1.1", "lan")
    state = store.router_preset()
    assert state["enabled"] and state["router"] == "192.168.1.1" and state["network"] == "192.168.1.0/24"
    assert state["rule"]["id"] == "Router:40:1" and state["rule"]["max_retries"] == 1
    assert store.match("nas.lan", "1.2.3.4", A_).name == "Local Network"  # the person's rule (80) first
    assert store.match("lan", "1.2.3.4", A_).name == "Router"
    assert store.match("7.1.168.192.in-addr.arpa", "1.2.3.4", PTR).name == "Router"
    assert store.match("7.2.168.192.in-addr.arpa", "1.2.3.4", PTR) is None
    store.set_router_preset("10.0.0.1", "home.arpa", "10.0.0.0/16")  # replaces, one rule
    assert len(store) == 2 and store.get("Router").upstreams == ("10.0.0.1:53",)
    assert store.covers_name("3.2.0.10.in-addr.arpa") and not store.covers_name("nas.lan.example")
    assert ForwardRules(db).router_preset()["domain"] == "home.arpa"
    assert store.clear_router_preset().name == "Router"
    assert store.clear_router_preset() is None
    state = store.router_preset()
    assert not state["enabled"] and state["router"] == "10.0.0.1"  # remembered for the toggle
    assert store.match("lan", "1.2.3.4", A_) is None


# ---- forwarding with the rule's own settings -----------------------------------------------------

class FakeUpstream(asyncio.DatagramProtocol):
    """A loopback UDP DNS server that answers A queries with 10.0.0.1, or drops them."""

    def __init__(self, drop=False, address="10.0.0.1"):
        self.drop = drop
        self.address = address
        self.seen: list[float] = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.seen.append(time.monotonic())
        if self.drop:
            return
        q = DNSRecord.parse(data)
        reply = q.reply()
        reply.add_answer(RR(q.q.qname, QTYPE.A, rdata=A(self.address), ttl=60))
        self.transport.sendto(reply.pack(), addr)


async def start(*protocols):
    loop = asyncio.get_running_loop()
    out = []
    for proto in protocols:
        transport, _ = await loop.create_datagram_endpoint(lambda p=proto: p, local_addr=("127.0.0.1", 0))
        out.append((transport, transport.get_extra_info("sockname")[1]))
    return out


def forward_with(rule_body, protocols, query_name="nas.lan"):
    """Run one query through a ForwardStage routed by the rule; (answer, elapsed, stage)."""
    async def scenario():
        endpoints = await start(*protocols)
        try:
            body = {**rule_body, "upstreams": [f"127.0.0.1:{port}" for _, port in endpoints]}
            rule = ForwardRule(body)
            routes = Routes(UpstreamPool([("192.0.2.1", 53)], UpstreamSettings(timeout=5, max_attempts=5)))
            fwd = ForwardStage(routes, CacheLimits())
            pool = routes.add(rule.route, rule.servers, rule.settings)
            assert routes.add(rule.route, rule.servers, rule.settings) is pool  # made once
            q = make_query(query_name)
            q.route = rule.route
            t0 = time.monotonic()
            answer = await fwd.resolve(q, None)
            return answer, time.monotonic() - t0, fwd
        finally:
            for transport, _ in endpoints:
                transport.close()

    return run(scenario())


def test_rule_timeout_and_retries_without_failover_stay_on_the_first_server():
    first, second = FakeUpstream(drop=True), FakeUpstream()
    answer, elapsed, _ = forward_with({"name": "r", "domains": ["lan"], "timeout": "200ms", "max_retries": 2,
                                       "failover": False}, [first, second])
    assert answer.rcode == wire.SERVFAIL
    assert len(first.seen) == 3 and not second.seen  # 1 + 2 retries, never the second server
    # Three 200 ms timeouts, not the default pool's 5 s. The upper bounds only tell the two
    # apart: a busy machine may stretch a 200 ms wait by seconds, never shorten it.
    assert 0.55 < elapsed < 4.5
    gaps = [b - a for a, b in zip(first.seen, first.seen[1:])]
    assert all(0.15 < g < 4.5 for g in gaps)


def test_rule_failover_reaches_the_second_server():
    first, second = FakeUpstream(drop=True), FakeUpstream()
    answer, elapsed, _ = forward_with({"name": "r", "domains": ["lan"], "timeout": "200ms", "failover": True},
                                      [first, second])
    assert answer.rcode == wire.NOERROR and answer.decision is Decision.FORWARDED_CONDITIONAL
    assert answer.upstream.startswith("127.0.0.1:") and len(second.seen) == 1
    assert len(first.seen) <= 1 and elapsed < 4.5  # one 200 ms timeout, not the pool's 5 s


def test_a_route_swaps_settings_and_replaces_pools_for_new_servers():
    routes = Routes(UpstreamPool([("192.0.2.1", 53)], UpstreamSettings()))
    a = ForwardRule({"name": "r", "domains": ["lan"], "upstreams": ["10.0.0.1"], "timeout": "1s"})
    pool = routes.add(a.route, a.servers, a.settings)
    assert pool.settings.timeout == 1.0 and pool.settings is not routes.default.settings
    b = ForwardRule({"name": "r", "domains": ["lan"], "upstreams": ["10.0.0.1"], "timeout": "3s",
                     "max_retries": 1})
    assert a.route == b.route
    assert routes.add(b.route, b.servers, b.settings) is pool and pool.settings.timeout == 3.0
    assert pool.settings.max_attempts == 2
    other = routes.add(b.route, (("10.0.0.2", 53),), b.settings)
    assert other is not pool and [(u.host, u.port) for u in other.servers] == [("10.0.0.2", 53)]
    shared = routes.add("policy:10.0.0.3:53", (("10.0.0.3", 53),))  # the policy stage's call
    assert shared.settings is routes.default.settings


def test_pool_without_failover_asks_only_the_first_server():
    async def scenario():
        first, second = FakeUpstream(drop=True), FakeUpstream()
        endpoints = await start(first, second)
        try:
            servers = [("127.0.0.1", port) for _, port in endpoints]
            pool = UpstreamPool(servers, UpstreamSettings(timeout=0.1, max_attempts=2, failover=False))
            with pytest.raises(UpstreamError):  # silence: the short timeout costs nothing here
                await pool.query(make_query("x.lan").qkey, 0, False)
            assert len(first.seen) == 2 and not second.seen
            # The second server's answer must arrive within the timeout: a generous one (the
            # first server's silence costs it once), and a question without x.lan's strike,
            # which would shorten it.
            pool.settings = UpstreamSettings(timeout=1.0, max_attempts=2, failover=True)
            for s in pool.servers:  # let the first server look best, then fail over from it
                s.srtt, s.failures = (0.001 if s.port == servers[0][1] else 0.5), 0
            reply, server = await pool.query(make_query("y.lan").qkey, 0, False)
            assert server.port == servers[1][1] and second.seen
        finally:
            for transport, _ in endpoints:
                transport.close()

    run(scenario())


def test_rule_answers_stay_with_the_clients_the_rule_covers(store):
    import dns.message

    async def scenario():
        public, lab = FakeUpstream(address="192.0.2.80"), FakeUpstream(address="10.9.9.9")
        (t1, public_port), (t2, lab_port) = await start(public, lab)
        try:
            store.add({"name": "lab", "domains": ["*.lab.test"], "client_cidrs": ["10.1.0.0/16"],
                       "upstreams": [f"127.0.0.1:{lab_port}"], "timeout": "5s"})  # both answer:
            routes = Routes(UpstreamPool([("127.0.0.1", public_port)], UpstreamSettings(timeout=5)))
            fwd = ForwardStage(routes, CacheLimits())
            chain = Chain([ConditionalStage(routes, store), CacheStage(AnswerCache(1 << 20), prefetch=False), fwd])
            out = []
            for client in ("10.1.2.3", "192.168.1.5", "10.1.2.4", "192.168.1.6"):
                q = make_query("app.lab.test", client=client)
                answer = await chain.resolve(q)
                msg = dns.message.from_wire(render(q, answer))
                out.append((answer.decision, msg.answer[0][0].address, answer.ttl))
            return out, len(lab.seen), len(public.seen)
        finally:
            t1.close()
            t2.close()

    out, lab_seen, public_seen = run(scenario())
    assert out[0][:2] == (Decision.FORWARDED_CONDITIONAL, "10.9.9.9")
    assert out[1][:2] == (Decision.RESOLVED, "192.0.2.80")
    assert out[2][:2] == (Decision.CACHED, "10.9.9.9") and out[3][:2] == (Decision.CACHED, "192.0.2.80")
    assert all(ttl is None for *_, ttl in out)  # per-client: never for the per-group fast path
    assert (lab_seen, public_seen) == (1, 1)
