"""Stages are built from their own options and change them live: a chain built from one
configuration and then configured with another (``Chain.configure``, what a runtime change does)
ends as the chain built from the other, while what must survive a change survives: the rate
limiter's buckets, the cache's entries, an upstream's health, the objects others hold."""

import asyncio

from burrow import config
from burrow.dns import chain, wire
from burrow.dns.decision import Decision
from burrow.dns.shared import Shared
from burrow.dns.stages.cache import CacheStage
from burrow.dns.stages.filter import FilterStage
from burrow.dns.stages.forward import ForwardStage
from burrow.dns.stages.guard import GuardStage
from burrow.dns.stages.private import PrivateStage

from tests.support.dnsq import Next, make_query

BASE = config.load(None, environ={})
CHANGED = BASE.with_overrides({
    "upstream_dns_servers": ["9.9.9.9:53", "192.0.2.53:5353"], "upstream.timeout": 1.5, "upstream.max_attempts": 2,
    "upstream.max_inflight": 256, "upstream.max_inflight_share": 0.5,
    "cache.enabled": False, "cache.max_bytes": 65536, "cache.min_ttl": 30, "cache.max_ttl": 600,
    "cache.negative_ttl": 60, "cache.serve_stale": False, "cache.prefetch": False,
    "rate_limit.rps": 5, "rate_limit.burst": 10, "rate_limit.action": "refuse", "rate_limit.max_tracked_clients": 100,
    "filtering.blocking_mode": "nxdomain", "filtering.blocked_ttl": 60,
    "local.private_reverse": False, "local.rebind_allowed_domains": ["plex.direct"],
    "upstream.proxy_dnssec": "on"})


def settings_of(made):
    """Everything the configuration decides in a built chain, as one comparable value."""
    of, shared = made.of, made.shared
    guard, cache, forward = of(GuardStage), of(CacheStage), of(ForwardStage)
    limiter = guard.limiter
    pool = shared.routes.default
    return {
        "guard": (guard.limit_action, None if limiter is None else (limiter.rps, limiter.burst, limiter.max_clients)),
        "cache": (cache.enabled, cache.serve_stale, cache.prefetch, cache.cache.max_bytes),
        "forward": (vars(forward.limits), forward.ad_trust.mode, forward.ad_trust.trusted),
        "private": of(PrivateStage).settings,
        "blocking": shared.blocking,
        "upstreams": ([s.label for s in pool.servers], pool.settings),
    }


def build(cfg):
    return chain.build(cfg, Shared.from_config(cfg))


def test_a_chain_configured_live_is_the_chain_built_from_the_new_configuration():
    live = build(BASE)
    before = settings_of(live)
    assert all(before[part] != settings_of(build(CHANGED))[part] for part in before)  # every part changes
    live.configure(CHANGED)
    assert settings_of(live) == settings_of(build(CHANGED))
    live.configure(BASE)
    assert settings_of(live) == before


def test_what_others_hold_survives_a_change():
    live = build(BASE)
    guard, cache, forward = live.of(GuardStage), live.of(CacheStage), live.of(ForwardStage)
    limiter, answers, limits = guard.limiter, cache.cache, forward.limits
    pool = live.shared.routes.default
    kept = pool.servers[0]  # 9.9.9.9:53, in both configurations
    kept.failures = 2
    settings = pool.settings  # conditional rules without their own settings share it
    live.configure(CHANGED)
    assert guard.limiter is limiter and cache.cache is answers and forward.limits is limits
    assert live.shared.routes.default is pool and pool.settings is settings
    assert pool.servers[0] is kept and kept.failures == 2  # health kept
    assert guard.limiter.rps == 5.0 and settings.timeout == 1.5


def test_rate_limiting_turned_off_and_on_again():
    live = build(BASE)
    guard = live.of(GuardStage)
    live.configure(BASE.with_overrides({"rate_limit.enabled": False}))
    assert guard.limiter is None
    live.configure(BASE.with_overrides({"rate_limit.rps": 7}))
    assert guard.limiter is not None and guard.limiter.rps == 7.0


def test_stages_answer_by_the_new_options_at_once():
    live = build(BASE)
    live.shared.deny_list = type("Deny", (), {"match": lambda self, name, groups=None: name})()
    filt, private = live.of(FilterStage), live.of(PrivateStage)

    def ask(stage, name, qtype="A"):
        return asyncio.run(stage.resolve(make_query(name, qtype), Next()))

    assert ask(filt, "ads.example").rcode == wire.NOERROR  # blocked as 0.0.0.0
    assert ask(private, "5.1.168.192.in-addr.arpa", "PTR").decision is Decision.LOCAL
    live.configure(CHANGED)
    blocked = ask(filt, "ads.example")
    assert blocked.rcode == wire.NXDOMAIN and blocked.decision is Decision.BLOCKED
    assert ask(private, "5.1.168.192.in-addr.arpa", "PTR").decision is Decision.RESOLVED  # passed on
