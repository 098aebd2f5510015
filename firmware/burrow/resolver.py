"""The DNS core as one service: access control, the stages and their chain, the answer cache,
the fast path, the upstream pool, and the server that listens.

Built from the configuration by the composition root (burrow/app.py), which then hands the
stages the stores they answer from (pause, allow/deny lists, groups, forwarding rules, local
data, the list index). ``start()`` binds the listeners; ``stop()`` closes them. Its loops —
the rate limiter's sweep and, for wildcard listeners, following the machine's addresses — run
under the supervisor.

Whatever changes answers calls :meth:`invalidate` (nothing decided before is replayed) or,
when the lists each client group uses may differ too, :meth:`answers_changed`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from .config import Config
from .config.schema import parse_hostport
from .dns.access import AccessControl, RateLimiter
from .dns.cache import AnswerCache
from .dns.chain import Chain
from .dns.fastpath import FastPath
from .dns.server import DnsServer
from .dns.stages.cache import CacheStage
from .dns.stages.conditional import ConditionalStage
from .dns.stages.filter import BlockingSettings, FilterStage
from .dns.stages.forward import AdTrust, CacheLimits, ForwardStage
from .dns.stages.guard import GuardStage
from .dns.stages.local import LocalStage
from .dns.stages.policy import PolicyStage
from .dns.stages.private import PrivateSettings, PrivateStage
from .dns.upstream import UpstreamPool, UpstreamSettings
from .lifecycle import Restart, Supervised, Supervisor
from .telemetry.events import EventBus

log = logging.getLogger(__name__)

# The sweep and the address follower keep nothing between rounds: one that dies is started
# again; five deaths in ten minutes is a fault.
LOOP_POLICY = Restart(max_restarts=5, window=600.0, backoff=1.0, max_backoff=60.0)


class Resolver:
    """The stages, caches, upstreams and the DNS server, built from ``config``.

    :param ring: where the server hands each answered query (the Recorder's ring).
    :param view_of: client address → its view (the groups it is in), for the fast path.
    :param groups_of: client address → its groups, for the policy stage.
    :param supervisor: runs the sweep and the address follower.
    """

    name = "dns"

    def __init__(self, config: Config, supervisor: Supervisor, ring: deque,
                 view_of: Callable[[str], str], groups_of: Callable[[str], frozenset[str]]):
        cfg = config
        self.supervisor = supervisor
        self.listen = [parse_hostport(a, 53) for a in cfg["server.listen_address"]]
        self.cleanup_interval = cfg["rate_limit.cleanup_interval"]  # may change live (runtime_config)
        self.acl = AccessControl(cfg["access.allowed_networks"])
        self.limiter = make_limiter(cfg)
        self.cache = AnswerCache(cfg["cache.max_bytes"])
        servers = [parse_hostport(s, 53) for s in cfg["upstream_dns_servers"]]
        self.upstreams = UpstreamPool(servers, UpstreamSettings(
            cfg["upstream.timeout"], cfg["upstream.max_attempts"], cfg["upstream.max_inflight"],
            max_inflight_share=cfg["upstream.max_inflight_share"]))
        self.limits = CacheLimits(cfg["cache.min_ttl"], cfg["cache.max_ttl"], cfg["cache.negative_ttl"])
        self.guard = GuardStage(self.acl, self.limiter, cfg["rate_limit.action"])
        self.cache_stage = CacheStage(self.cache, cfg["cache.serve_stale"], cfg["cache.prefetch"],
                                      cfg["cache.enabled"])
        self.forward = ForwardStage(self.upstreams, self.limits,
                                    AdTrust(cfg["upstream.proxy_dnssec"], cfg["upstream.trusted_servers"]))
        self.filter = FilterStage(BlockingSettings(cfg["filtering.blocking_mode"], cfg["filtering.custom_ipv4"],
                                                   cfg["filtering.custom_ipv6"], cfg["filtering.blocked_ttl"]))
        self.policy = PolicyStage(filter=self.filter, forward=self.forward, group_lookup=groups_of)
        self.private = PrivateStage(PrivateSettings(cfg["local.private_reverse"], cfg["local.special_names"],
                                                    cfg["local.rebind_protection"],
                                                    cfg["local.rebind_allowed_domains"]), filter=self.filter)
        self.conditional = ConditionalStage(self.forward)  # rules arrive with storage
        self.local = LocalStage()  # local records and zones: the zone service hands them over
        self.chain = Chain([self.guard, self.local, self.conditional, self.private, self.policy, self.filter,
                            self.cache_stage, self.forward])
        self.fastpath = FastPath()
        self.server = DnsServer(self.chain, self.fastpath, self.acl, self.limiter, ring,
                                decision_trace=cfg["server.decision_trace"],
                                tcp_idle_timeout=cfg["server.tcp_idle_timeout"],
                                max_tcp_connections=cfg["server.max_tcp_connections"],
                                max_tcp_per_client=cfg["server.max_tcp_per_client"],
                                tcp_message_timeout=cfg["server.tcp_message_timeout"],
                                loop_ports=self.upstreams.local_ports, view_of=view_of)
        self._local_addresses: Callable[[], list[str] | None] = lambda: None
        self._network_changes: EventBus | None = None  # where "network" changes arrive (follow_addresses)
        self._loops: list[Supervised] = []

    def follow_addresses(self, local_addresses: Callable[[], list[str] | None], bus: EventBus) -> None:
        """Where to learn the machine's addresses (the board's network watcher): wildcard
        listeners get one UDP socket per address, kept in step on every "network" event."""
        self._local_addresses = local_addresses
        self._network_changes = bus

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.server.start(self.listen)
        self.check_static_loop()
        ips = self._local_addresses()
        if self.server.wildcard_ports and ips is not None and self._network_changes is not None:
            self.server.set_local_addresses(ips)
            self._loops.append(self.supervisor.spawn("dns-addresses", self._follow_addresses, LOOP_POLICY))
        self._loops.append(self.supervisor.spawn("housekeeping", self._housekeeping, LOOP_POLICY))

    async def stop(self) -> None:
        loops, self._loops = self._loops, []
        for loop in loops:
            loop.cancel()
        await self.server.stop()

    def background_tasks(self) -> list[asyncio.Task]:
        return []  # its loops run under the supervisor

    def snapshot(self) -> dict:
        return {"listening": [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.server.addresses],
                "upstreams_healthy": self.upstreams.healthy_count, "upstreams": len(self.upstreams.servers)}

    # ---- changes --------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Something that shapes answers changed: no answer decided before it is replayed."""
        self.server.invalidate()

    def answers_changed(self) -> None:
        """Answers changed, and perhaps which lists each client group uses (groups, a list's
        groups, the pause): recompute the views' list masks too."""
        self.filter.forget_views()
        self.server.invalidate()

    def purge_cache(self) -> int:
        n = self.cache_stage.purge()
        self.server.invalidate()
        return n

    def set_limiter(self, limiter: RateLimiter | None, action: str) -> None:
        """The guard stage and the server's fast path each hold the limiter: change both together."""
        self.limiter = limiter
        self.guard.limiter = limiter
        self.guard.limit_action = action
        self.server.limiter = limiter

    def check_static_loop(self) -> None:
        """An upstream that is one of our own listeners would forward to ourselves forever."""
        ours = set(self.server.addresses)
        if not ours:
            return  # not listening yet: start() checks
        for server in self.upstreams.servers:
            if (server.host, server.port) in ours or (
                    server.port in {p for _, p in ours}
                    and any(h in ("0.0.0.0", "::") for h, _ in ours)):
                server.loop_detected = True
                log.error("upstream %s is Burrow itself: not used (forwarding loop)", server.label)

    # ---- loops ----------------------------------------------------------------------------------

    async def _follow_addresses(self) -> None:
        """Keep per-address UDP sockets in step with the network (see DnsServer)."""
        bus = self._network_changes
        assert bus is not None  # start() spawns this only with one
        subscription = bus.subscribe("network", maxsize=8)
        try:
            async for _event in subscription:
                ips = self._local_addresses()
                if ips is not None:
                    self.server.set_local_addresses(ips)
        finally:
            bus.unsubscribe(subscription)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.cleanup_interval)
            if self.limiter is not None:
                self.limiter.sweep(time.monotonic())


def make_limiter(cfg) -> RateLimiter | None:
    """The rate limiter ``cfg`` asks for, or None when rate limiting is off."""
    if not cfg["rate_limit.enabled"]:
        return None
    return RateLimiter(cfg["rate_limit.rps"], cfg["rate_limit.burst"], cfg["rate_limit.max_tracked_clients"])
