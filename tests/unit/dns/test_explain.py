"""The dry run (dns/explain.py): the real stages, wired in the app's order, decide for an explained
question as for a client's, and nothing they own changes: no upstream asked, no pool made, no
cache read counted or entry stored, no rate-limit token, no counter, no threat event, no
round-robin turn."""

from __future__ import annotations

import asyncio

import pytest

from burrow import config
from burrow.dns import chain, wire
from burrow.dns.decision import Decision
from burrow.dns.explain import dry_run, question
from burrow.dns.shared import Shared
from burrow.dns.stages.cache import CacheStage
from burrow.dns.stages.conditional import ConditionalStage
from burrow.dns.stages.filter import FilterStage
from burrow.dns.stages.forward import ForwardStage
from burrow.dns.stages.guard import GuardStage
from burrow.dns.stages.local import LocalStage
from burrow.dns.stages.policy import PolicyStage
from burrow.dns.stages.private import PrivateStage
from burrow.filtering.compiler import Source, compile_index
from burrow.filtering.index import Index
from burrow.filtering.userlists import UserList
from burrow.forwarding import ForwardRules
from burrow.policy import PolicyRule
from burrow.storage.settings import SettingsDB
from burrow.zones.localdata import LocalData
from burrow.zones.records import Record

from tests.support.dnsq import upstream_cname_answer

A = wire.TYPE_A


class Stages:
    """The chain as declared (dns/chain.py: what app.py builds), with real stores under a
    temporary directory."""

    def __init__(self, tmp_path):
        (tmp_path / "ads.txt").write_text("||ads.test^\n")
        (tmp_path / "feed.txt").write_text("evil.test\n")
        (tmp_path / "r.rpz").write_text("$TTL 300\n@ SOA localhost. root.localhost. 1 3600 600 86400 300\n"
                                        "  NS localhost.\ngone.test CNAME rpz-drop.\n")
        report = compile_index([Source(0, str(tmp_path / "ads.txt"), "adblock", "block", name="ads"),
                                Source(1, str(tmp_path / "feed.txt"), "domains", "threat", name="feed"),
                                Source(2, str(tmp_path / "r.rpz"), "rpz", "block", name="rpz")],
                               tmp_path / "index.bin")
        assert report.ok, report.error
        self.index = Index.open(tmp_path / "index.bin")
        self.db = SettingsDB(tmp_path / "settings.db")
        cfg = config.load(None, environ={}).with_overrides({
            "upstream_dns_servers": ["127.0.0.1:9"], "upstream.timeout": 0.2, "upstream.max_attempts": 1,
            "rate_limit.rps": 1, "rate_limit.burst": 1, "rate_limit.max_tracked_clients": 16})
        self.shared = Shared.from_config(cfg)
        self.shared.allow_list = UserList(self.db, "filtering.whitelist")
        self.shared.deny_list = UserList(self.db, "filtering.denylist")
        self.chain = chain.build(cfg, self.shared)
        of = self.chain.of
        self.guard, self.local, self.conditional, self.private = (
            of(GuardStage), of(LocalStage), of(ConditionalStage), of(PrivateStage))
        self.policy, self.filter, self.cache_stage, self.forward = (
            of(PolicyStage), of(FilterStage), of(CacheStage), of(ForwardStage))
        self.limiter, self.pool, self.cache = self.guard.limiter, self.shared.routes.default, self.cache_stage.cache
        self.filter.set_index(self.index)
        self.threats = []
        self.filter.on_threat = lambda query, name, entry: self.threats.append(name)
        self.policy.set_rules([PolicyRule(1, "vpn", 'Domain == "via.vpn.test"', "FORWARD", "192.0.2.53:53"),
                               PolicyRule(2, "portal", 'Domain == "portal.test"', "REDIRECT", "192.0.2.80")])
        self.rules = ForwardRules(self.db)
        self.rules.add({"name": "Router", "domains": ["*.corp.test"], "upstreams": ["192.0.2.1:53"]})
        self.conditional.rules = self.rules
        self.local.set_data(LocalData((), [Record("rr.lan", "A", 300, "192.168.1.1"),
                                           Record("rr.lan", "A", 300, "192.168.1.2")]))

    def explain(self, name, qtype=A, client="192.168.1.20"):
        return asyncio.run(dry_run(self.chain, question(name, qtype, client, "default")))

    def counters(self):
        """Everything a query can move, as one comparable value."""
        return (self.cache.stats(), self.cache_stage.prefetches, len(self.limiter), self.limiter.limited,
                self.pool.servers[0].queries, list(self.shared.routes), self.forward.coalesced,
                self.local.answered, self.local.chased, self.local.data._turns.copy(),
                self.conditional.forwarded, self.private.refused, self.private.rebind_blocked,
                self.policy.blocked, self.policy.engine.stats(), self.filter.blocked,
                self.filter.cname_blocked, list(self.threats))

    def close(self):
        self.index.close()
        self.db.close()


@pytest.fixture
def stages(tmp_path):
    s = Stages(tmp_path)
    yield s
    s.close()


def test_a_name_for_the_upstreams_says_where_it_would_go_and_changes_nothing(stages):
    before = stages.counters()
    for _ in range(3):  # more than the rate limiter's burst of one
        run = stages.explain("www.example.org")
        assert run.answer.decision is Decision.RESOLVED and not run.dropped
        assert run.explain.upstream == {"route": "default", "rule": None, "servers": ["127.0.0.1:9"]}
        assert run.explain.pending == ["cname_inspection", "rebind_protection"]
        assert run.deciding.stage == "forward" and run.deciding.action == "would_forward"
    assert stages.counters() == before


def test_routes_are_named_without_making_pools(stages):
    before = stages.counters()
    run = stages.explain("app.corp.test")
    assert run.answer.decision is Decision.FORWARDED_CONDITIONAL
    assert run.explain.upstream == {"route": "conditional", "rule": "Router", "servers": ["192.0.2.1:53"]}
    assert run.deciding.stage == "conditional" and run.deciding.rule == "Router"
    assert {"list": "conditional_forwarding", "kind": "forward", "rule": "Router"} in run.matches
    run = stages.explain("via.vpn.test")
    assert run.answer.decision is Decision.FORWARDED_CONDITIONAL
    assert run.explain.upstream == {"route": "policy", "rule": "vpn", "servers": ["192.0.2.53:53"]}
    assert stages.counters() == before


def test_blocks_and_threats_decide_as_for_a_client_without_counting_or_reporting(stages):
    before = stages.counters()
    run = stages.explain("x.ads.test")
    assert run.answer.decision is Decision.BLOCKED and run.deciding.rule == "ads"
    run = stages.explain("evil.test")
    assert run.answer.decision is Decision.THREAT and run.answer.ede[0] == wire.EDE_FILTERED
    assert [m["list"] for m in run.matches] == ["feed"]
    run = stages.explain("portal.test")
    assert run.answer.decision is Decision.REDIRECTED and run.deciding.stage == "policy"
    assert stages.counters() == before
    # the same questions from a client are counted, so the counters above could have moved
    q = question("evil.test", A, "192.168.1.20", "default")
    q.explain = None
    assert asyncio.run(stages.chain.resolve(q)).decision is Decision.THREAT
    assert stages.threats == ["feed"] and stages.filter.blocked == 1


def test_every_matching_list_and_rule_is_listed_beside_the_one_that_decides(stages):
    stages.shared.allow_list.add("x.ads.test")
    run = stages.explain("x.ads.test")
    assert run.answer.decision is Decision.ALLOWED and run.deciding.stage == "whitelist"
    assert [m["list"] for m in run.matches] == ["ads", "whitelist"]


def test_a_cached_answer_is_inspected_read_only(stages):
    key = (question("shop.test", A, "", "default").qkey, False, False, "")
    stages.cache.put(key, upstream_cname_answer("shop.test", "pixel.ads.test"), 300)
    before = stages.counters()
    run = stages.explain("shop.test")
    assert run.answer.decision is Decision.BLOCKED and run.explain.upstream is None
    assert run.deciding.stage == "blocklist" and run.deciding.detail == "cname pixel.ads.test (subtree ads.test)"
    assert [(m["list"], m["cname"]) for m in run.matches] == [("ads", "pixel.ads.test")]
    assert [e.stage for e in run.query.trace] == ["cache", "blocklist"]
    assert stages.counters() == before


def test_round_robin_keeps_its_turn(stages):
    before = stages.counters()
    run = stages.explain("rr.lan")
    assert run.answer.decision is Decision.LOCAL and run.answer.an == 2
    assert {"list": "local_records", "kind": "local", "entry": "rr.lan"} in run.matches
    assert stages.counters() == before


def test_a_drop_sends_nothing_and_asks_nobody(stages):
    run = stages.explain("gone.test")
    assert run.dropped and run.explain.upstream is None and run.deciding.rule == "rpz"


def test_a_stage_that_fails_gives_servfail_as_for_a_client(stages, monkeypatch):
    def broken(*args, **kw):
        raise RuntimeError("a bug")
    monkeypatch.setattr(stages.policy.engine, "evaluate", broken)
    run = stages.explain("www.example.org")
    assert run.answer.rcode == wire.SERVFAIL and run.deciding.action == "error"


def test_private_reverse_names_stay_home(stages):
    run = stages.explain("5.1.168.192.in-addr.arpa", wire.TYPE_PTR)
    assert run.answer.rcode == wire.NXDOMAIN and run.deciding.stage == "private"
    assert run.explain.upstream is None
