"""Conditional stage: a forwarding rule takes a question by name suffix, by client or by type
(the query's route is marked and the rule's pool added to the shared routes, so the forward
stage asks the rule's servers); what no rule takes is passed on untouched; an answer that
depended on who asked never rides the per-group fast path."""

import asyncio

import pytest

from burrow.dns.explain import Explain
from burrow.dns.shared import Routes
from burrow.dns.stages.conditional import ConditionalStage
from burrow.dns.upstream import UpstreamPool, UpstreamSettings
from burrow.forwarding import ForwardRules

from tests.support.dnsq import Next, make_query


@pytest.fixture
def rules(db):
    return ForwardRules(db)


@pytest.fixture
def routes():
    return Routes(UpstreamPool([("192.0.2.1", 53)], UpstreamSettings()))


def ask(stage, name, qtype="A", client="192.168.1.10"):
    """(query, answer, next) for one question through the stage."""
    query = make_query(name, qtype, client=client)
    nxt = Next()
    return query, asyncio.run(stage.resolve(query, nxt)), nxt


def servers(pool):
    return [(u.host, u.port) for u in pool.servers]


def assert_routed(query, answer, nxt, routes, rule):
    assert nxt.calls == [query]  # the forward stage below answers
    assert answer.decision is nxt.answer.decision and answer.rcode == nxt.answer.rcode
    assert query.route == rule.route
    pool = routes.pool(query.route)
    assert pool is not routes.default and servers(pool) == [(s.host, s.port) for s in rule.servers]
    assert pool.settings is rule.settings  # the rule's own timeout, retries and failover
    entry = query.trace[-1]
    assert (entry.stage, entry.action, entry.rule, entry.source) == (
        "conditional", "forward", rule.name, "conditional_forwarding")


def assert_passed_on(query, answer, nxt, routes, pools_before):
    assert nxt.calls == [query] and answer is nxt.answer  # untouched: TTL kept
    assert query.route == "" and routes.pool(query.route) is routes.default
    assert len(routes) == pools_before and not query.trace


def test_a_rule_takes_names_under_its_suffix_on_label_boundaries(rules, routes):
    rules.add({"name": "Router", "domains": ["*.lan", "home.example"], "upstreams": ["192.168.1.1:53"]})
    stage = ConditionalStage(routes, rules)
    rule = rules.get("Router")
    for name in ("nas.lan", "printer.office.lan", "home.example", "tv.home.example"):
        assert_routed(*ask(stage, name), routes, rule)
    assert len(routes) == 1 and stage.forwarded == 4  # one pool, made once
    for name in ("plan", "lan.example.org", "myhome.example", "example"):
        assert_passed_on(*ask(stage, name), routes, 1)


def test_a_rule_takes_the_clients_it_names(rules, routes):
    rules.add({"name": "Lab", "client_cidrs": ["10.1.0.0/16", "fd00:1::/64"], "upstreams": ["10.1.0.1"]})
    stage = ConditionalStage(routes, rules)
    for client in ("10.1.2.3", "fd00:1::9", "::ffff:10.1.9.9"):
        query, answer, nxt = ask(stage, "www.example.org", client=client)
        assert_routed(query, answer, nxt, routes, rules.get("Lab"))
    query, answer, nxt = ask(stage, "www.example.org", client="192.168.1.5")
    assert nxt.calls == [query] and query.route == "" and not query.trace


def test_a_rule_takes_the_query_types_it_names(rules, routes):
    rules.add({"name": "Reverse", "domains": ["168.192.in-addr.arpa"], "query_types": ["PTR"],
               "upstreams": ["192.168.1.1"]})
    stage = ConditionalStage(routes, rules)
    assert_routed(*ask(stage, "5.1.168.192.in-addr.arpa", "PTR"), routes, rules.get("Reverse"))
    for qtype in ("A", "TXT"):
        assert_passed_on(*ask(stage, "5.1.168.192.in-addr.arpa", qtype), routes, 1)


def test_the_highest_priority_rule_that_matches_routes(rules, routes):
    rules.add({"name": "Broad", "domains": ["corp"], "upstreams": ["10.0.0.1"], "priority": 10})
    rules.add({"name": "Vpn", "domains": ["vpn.corp"], "upstreams": ["10.0.0.2"], "priority": 90})
    stage = ConditionalStage(routes, rules)
    assert_routed(*ask(stage, "app.vpn.corp"), routes, rules.get("Vpn"))
    assert_routed(*ask(stage, "mail.corp"), routes, rules.get("Broad"))


def test_without_rules_or_with_rules_switched_off_everything_is_passed_on(rules, routes, db):
    assert_passed_on(*ask(ConditionalStage(routes), "nas.lan"), routes, 0)  # storage not open yet
    rules.add({"name": "Router", "domains": ["lan"], "upstreams": ["192.168.1.1"], "enabled": False})
    stage = ConditionalStage(routes, rules)
    assert_passed_on(*ask(stage, "nas.lan"), routes, 0)
    rules.add({"name": "Other", "domains": ["corp"], "upstreams": ["10.0.0.1"]})
    rules.set_enabled(False)
    assert_passed_on(*ask(stage, "x.corp"), routes, 0)
    assert stage.forwarded == 0


def test_an_answer_that_depended_on_the_client_never_rides_the_fast_path(rules, routes):
    """The fast path keys by group, not by client: an answer decided because of who asked
    (routed for one client, not for another of the same group) must not be replayed to the
    group, or a covered client would be given the other route's answer."""
    rules.add({"name": "Lab", "domains": ["lab.test"], "client_cidrs": ["10.1.0.0/16"],
               "upstreams": ["10.1.0.1"]})
    stage = ConditionalStage(routes, rules)
    query, covered, _ = ask(stage, "app.lab.test", client="10.1.2.3")
    assert query.route and covered.ttl is None
    query, other, _ = ask(stage, "app.lab.test", client="192.168.1.5")
    assert query.route == "" and other.ttl is None
    query, unrelated, nxt = ask(stage, "www.example.org", client="192.168.1.5")  # the rule's client test
    assert unrelated is nxt.answer and unrelated.ttl == 300                      # never ran: replayable


def test_a_dry_run_names_the_route_and_makes_no_pool(rules, routes):
    rules.add({"name": "Router", "domains": ["lan"], "upstreams": ["192.168.1.1", "192.168.1.2:5353"]})
    stage = ConditionalStage(routes, rules)
    query = make_query("nas.lan")
    query.explain = Explain()
    nxt = Next()
    asyncio.run(stage.resolve(query, nxt))
    assert nxt.calls == [query] and query.route == rules.get("Router").route
    assert query.explain.route == ("conditional", "Router", ["192.168.1.1", "192.168.1.2:5353"])  # as written
    assert len(routes) == 0 and stage.forwarded == 0
    assert stage.matching(query) == [{"list": "conditional_forwarding", "kind": "forward", "rule": "Router"}]
