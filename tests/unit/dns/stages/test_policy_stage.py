"""Policy stage: each action answers or delegates; ALLOW beats lists and keeps the cache;
REDIRECT by family; FORWARD routes apart in the cache; time rules bound fast-path lifetimes."""

import asyncio
import datetime

import dns.message

from burrow.dns import wire
from burrow.dns.cache import AnswerCache
from burrow.dns.chain import Chain
from burrow.dns.decision import Decision
from burrow.dns.message import Answer, render
from burrow.dns.stages.cache import CacheStage
from burrow.dns.blocking import UNTIL_CHANGED, BlockingSettings
from burrow.dns.shared import Routes, Shared
from burrow.dns.stages.filter import FilterStage
from burrow.dns.stages.policy import PolicyStage, route_key
from burrow.dns.upstream import UpstreamPool, UpstreamSettings
from burrow.policy import PolicyRule

from tests.support.dnsq import Next, make_query

UTC = datetime.timezone.utc


def run(coro):
    return asyncio.run(coro)


def reply(query, answer):
    return dns.message.from_wire(render(query, answer))


def rule(i, logic, action, data="", name=None, enabled=True):
    return PolicyRule(i, name or f"rule {i}", logic, action, data, enabled)


def policy(*rules, **kw):
    s = PolicyStage(**kw)
    s.set_rules(rules)
    return s


class Terminal:
    """The rest of the chain as a stage: answers every question, remembers the routes asked."""

    name = "end"

    def __init__(self, ttl=300):
        self.calls = []
        self.ttl = ttl

    async def resolve(self, query, next):
        self.calls.append(query.route)
        return Answer(wire.NOERROR, Decision.RESOLVED, ttl=self.ttl, upstream=query.route or "default")


class DenyAll:
    def match(self, name, groups=None):
        return name


def test_no_rules_and_no_match_delegate_untouched():
    nxt = Next()
    q = make_query("www.example.org")
    assert run(PolicyStage().resolve(q, nxt)) is nxt.answer and len(nxt.calls) == 1
    s = policy(rule(0, 'DomainMatches(Domain, "facebook")', "BLOCK"))
    ans = run(s.resolve(make_query("www.example.org"), nxt))
    assert ans is nxt.answer and len(nxt.calls) == 2
    off = policy(rule(0, 'Domain == "www.example.org"', "BLOCK", enabled=False))
    assert run(off.resolve(make_query("www.example.org"), nxt)) is nxt.answer


def test_block_answers_with_ede_and_seed_trace():
    nxt = Next()
    s = policy(rule(3, 'DomainMatches(Domain, ".facebook.com")', "BLOCK", name="Block social media"))
    q = make_query("www.facebook.com", "A", use_edns=0)
    ans = run(s.resolve(q, nxt))
    assert not nxt.calls and ans.decision is Decision.BLOCKED
    m = reply(q, ans)
    assert m.answer[0][0].address == "0.0.0.0"
    ede = [o for o in m.options if o.otype == 15][0]
    assert ede.code == 15 and "Block social media" in ede.text
    t = q.trace[-1]
    assert (t.stage, t.action, t.rule, t.source) == ("policy", "BLOCK", "Block social media", "policy_engine")
    q6 = make_query("facebook.com", "AAAA")
    assert reply(q6, run(s.resolve(q6, nxt))).answer[0][0].address == "::"


def test_block_follows_the_shared_blocking_mode_and_pause():
    shared = Shared(BlockingSettings(mode="nxdomain"))  # what the filter blocks with too
    s = policy(rule(0, 'Domain == "x.test"', "BLOCK"), shared=shared)
    nxt = Next()
    assert run(s.resolve(make_query("x.test"), nxt)).rcode == wire.NXDOMAIN

    class Paused:
        def paused(self, groups=()):
            return True

    shared.pause = Paused()
    assert run(s.resolve(make_query("x.test"), nxt)) is nxt.answer


def test_allow_beats_a_blocklist_entry_and_still_uses_the_cache():
    shared = Shared(deny_list=DenyAll())  # the filter would block every name
    f = FilterStage(shared)
    end = Terminal()
    cache = CacheStage(AnswerCache(1 << 20), prefetch=False)
    s = policy(rule(0, 'DomainMatches(Domain, "ok.test")', "ALLOW"), shared=shared)
    chain = Chain([s, f, cache, end])
    a1 = run(chain.resolve(make_query("ok.test")))
    assert a1.decision is Decision.ALLOWED and len(end.calls) == 1
    q2 = make_query("ok.test")
    a2 = run(chain.resolve(q2))
    assert a2.decision is Decision.CACHED and len(end.calls) == 1  # second answer from the cache
    assert q2.trace[0].stage == "policy" and q2.trace[0].action == "ALLOW"
    blocked = run(chain.resolve(make_query("other.test")))
    assert blocked.decision is Decision.BLOCKED  # no rule: the filter decides as before


def test_redirect_by_family():
    nxt = Next()
    s = policy(rule(0, 'Domain == "portal.test"', "REDIRECT", "10.0.0.7, fd00::7"))
    for rdtype, addr in (("A", "10.0.0.7"), ("AAAA", "fd00::7")):
        q = make_query("portal.test", rdtype)
        ans = run(s.resolve(q, nxt))
        assert ans.decision is Decision.REDIRECTED and reply(q, ans).answer[0][0].address == addr
    qmx = make_query("portal.test", "MX")
    m = reply(qmx, run(s.resolve(qmx, nxt)))
    assert m.rcode() == 0 and not m.answer
    only4 = policy(rule(0, 'Domain == "portal.test"', "REDIRECT", "10.0.0.7"))
    q6 = make_query("portal.test", "AAAA")
    ans = run(only4.resolve(q6, nxt))
    assert ans.decision is Decision.REDIRECTED and not reply(q6, ans).answer  # NODATA
    assert not nxt.calls
    assert q6.trace[-1].action == "REDIRECT"


def test_forward_routes_separate_cache_entries_and_pick_the_pool():
    pool = UpstreamPool([("192.0.2.1", 53)], UpstreamSettings())
    routes = Routes(pool)
    r = rule(0, 'DomainMatches(Domain, ".corp.test") && IPEquals(ClientIP, "192.168.1.50")', "FORWARD",
             "10.1.1.1:5353, 10.1.1.2")
    s = policy(r, shared=Shared(routes=routes))
    end = Terminal()
    cache = CacheStage(AnswerCache(1 << 20), prefetch=False)
    chain = Chain([s, FilterStage(), cache, end])
    q = make_query("intranet.corp.test", client="192.168.1.50")
    a = run(chain.resolve(q))
    assert a.decision is Decision.FORWARDED_CONDITIONAL and a.upstream == route_key(r)
    assert q.route == route_key(r) == "policy:10.1.1.1:5353, 10.1.1.2:53"
    assert q.trace[0].action == "FORWARD"
    chosen = routes.pool(q.route)
    assert chosen is not pool and [(u.host, u.port) for u in chosen.servers] == [("10.1.1.1", 5353),
                                                                                  ("10.1.1.2", 53)]
    assert routes.add(route_key(r), r.targets) is chosen  # made once
    other = make_query("intranet.corp.test", client="192.168.1.10")
    b = run(chain.resolve(other))
    assert b.upstream == "default" and routes.pool(other.route) is pool
    assert end.calls == [route_key(r), ""]  # two questions, two cache entries
    again = run(chain.resolve(make_query("intranet.corp.test", client="192.168.1.50")))
    assert again.decision is Decision.CACHED and again.upstream == route_key(r) and len(end.calls) == 2
    # the decision depends on the client: not for the (per-group) fast path, still cached
    assert a.ttl is None and b.ttl is None


def test_forward_answers_use_cache_ttl_without_client_rules():
    s = policy(rule(0, 'DomainMatches(Domain, ".corp.test")', "FORWARD", "10.1.1.1"))
    ans = run(Chain([s, Terminal()]).resolve(make_query("a.corp.test")))
    assert ans.ttl == 300 and ans.decision is Decision.FORWARDED_CONDITIONAL


def clock_at(*hms):
    t = datetime.datetime(2025, 6, 2, *hms, tzinfo=UTC).timestamp()
    return lambda: t


def test_time_rule_caps_fast_path_lifetime_at_next_boundary():
    clock = clock_at(12, 0, 55)
    s = policy(rule(0, 'InTimeRange(Hour, Minute, 12, 0, 12, 30) && Domain == "game.test"', "BLOCK"),
               clock=clock, tz=UTC)
    blocked = run(s.resolve(make_query("game.test"), Next()))
    assert blocked.decision is Decision.BLOCKED and blocked.ttl == 5  # 12:01:00 − 12:00:55
    nxt = Next(Answer(wire.NOERROR, Decision.RESOLVED, ttl=300))
    passed = run(s.resolve(make_query("www.example.org"), nxt))
    assert passed.ttl == 5 and nxt.answer.ttl == 300  # a copy: the cache's answer is untouched
    never = Next(Answer(wire.NOERROR, Decision.RESOLVED, ttl=None))
    assert run(s.resolve(make_query("www.example.org"), never)).ttl is None
    # outside the window the rule does not match, but the answer still ends at the boundary
    late = policy(rule(0, 'InTimeRange(Hour, Minute, 22, 0, 6, 0)', "BLOCK"), clock=clock_at(13, 59, 30), tz=UTC)
    ans = run(late.resolve(make_query("www.example.org"), Next()))
    assert ans.decision is Decision.RESOLVED and ans.ttl == 30
    hourly = policy(rule(0, 'Hour >= 22', "BLOCK"), clock=clock_at(13, 50, 0), tz=UTC)
    assert run(hourly.resolve(make_query("a.test"), Next())).ttl == 300  # next boundary 14:00, TTL smaller
    hourly2 = policy(rule(0, 'Hour >= 22', "BLOCK"), clock=clock_at(13, 59, 0), tz=UTC)
    assert run(hourly2.resolve(make_query("a.test"), Next())).ttl == 60


def test_no_time_rule_leaves_ttl_alone():
    s = policy(rule(0, 'Domain == "x.test"', "BLOCK"), clock=clock_at(12, 0, 59), tz=UTC)
    assert run(s.resolve(make_query("y.test"), Next())).ttl == 300
    blocked = run(s.resolve(make_query("x.test"), Next()))
    assert blocked.ttls == (10,) and blocked.ttl == UNTIL_CHANGED  # replayed until something changes


def test_load_skips_bad_stored_rules():
    s = PolicyStage()
    n = s.load([{"id": 4, "name": "ok", "logic": "Hour >= 0", "action": "BLOCK"},
                {"id": 5, "name": "bad", "logic": "Hour >=", "action": "BLOCK"}, "junk"])
    assert n == 1 and [r.id for r in s.engine.rules] == [4]
