"""The DNS core as one service: the stages and their chain (built as dns/chain.py declares
it, from the state they share, dns/shared.py), the fast path, and the server that listens.

Built from the configuration by the composition root (burrow/app.py), which then hands the
shared state the stores the stages read (pause, allow/deny lists, groups) and the stages the
data they answer from (forwarding rules, local data, the list index). ``start()`` binds the
listeners; ``stop()`` closes them. Its loops — the rate limiter's sweep and, for wildcard
listeners, following the machine's addresses — run under the supervisor.

A change that can alter answers is announced by the store that made it (burrow/changes.py);
the composition root's one subscriber then calls :meth:`invalidate` (nothing decided before is
replayed) and, when the lists each client group uses may differ too, ``filter.forget_views``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from .config import Config, ConfigView
from .config.schema import parse_hostport
from .dns import chain
from .dns.access import RateLimiter
from .dns.fastpath import FastPath
from .dns.server import DnsServer
from .dns.shared import Shared
from .dns.stages.cache import CacheStage
from .dns.stages.conditional import ConditionalStage
from .dns.stages.filter import FilterStage
from .dns.stages.forward import ForwardStage
from .dns.stages.guard import GuardStage
from .dns.stages.local import LocalStage
from .dns.stages.policy import PolicyStage
from .dns.stages.private import PrivateStage
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
    :param supervisor: runs the sweep and the address follower.
    """

    name = "dns"

    def __init__(self, config: Config, supervisor: Supervisor, ring: deque, view_of: Callable[[str], str]):
        cfg = config
        self.supervisor = supervisor
        self.listen = [parse_hostport(a, 53) for a in cfg["server.listen_address"]]
        self.cleanup_interval = cfg["rate_limit.cleanup_interval"]  # may change live (configure)
        # The state several stages share first (blocking settings, upstream routes; the stores
        # join once storage is open), then the chain as dns/chain.py declares it.
        self.shared = Shared.from_config(cfg)
        self.chain = chain.build(cfg, self.shared)
        of = self.chain.of
        self.guard, self.local, self.conditional, self.private = (
            of(GuardStage), of(LocalStage), of(ConditionalStage), of(PrivateStage))
        self.policy, self.filter, self.cache_stage, self.forward = (
            of(PolicyStage), of(FilterStage), of(CacheStage), of(ForwardStage))
        self.acl = self.guard.acl  # the server's fast path checks the same access list
        self.cache = self.cache_stage.cache
        self.upstreams = self.shared.routes.default
        self.fastpath = FastPath()
        self.server = DnsServer(self.chain, self.fastpath, self.acl, self.limiter, ring,
                                decision_trace=cfg["server.decision_trace"],
                                tcp_idle_timeout=cfg["server.tcp_idle_timeout"],
                                max_tcp_connections=cfg["server.max_tcp_connections"],
                                max_tcp_per_client=cfg["server.max_tcp_per_client"],
                                tcp_message_timeout=cfg["server.tcp_message_timeout"],
                                loop_ports=self.upstreams.local_ports, view_of=view_of,
                                dot_idle_timeout=cfg["tls.dot_idle_timeout"],
                                max_dot_connections=cfg["tls.dot_max_connections"])
        self._local_addresses: Callable[[], list[str] | None] = lambda: None
        self._network_changes: EventBus | None = None  # where "network" changes arrive (follow_addresses)
        self._loops: list[Supervised] = []

    @property
    def limiter(self) -> RateLimiter | None:
        """The guard's rate limiter (None while rate limiting is off); the server's fast path
        consults the same one (``configure`` hands it over after a change)."""
        return self.guard.limiter

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
        self.shared.routes.close()  # encrypted upstreams' connections

    def background_tasks(self) -> list[asyncio.Task]:
        return []  # its loops run under the supervisor

    def snapshot(self) -> dict:
        return {"listening": [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.server.addresses],
                "upstreams_healthy": self.upstreams.healthy_count, "upstreams": len(self.upstreams.servers)}

    # ---- changes --------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Something that shapes answers changed: no answer decided before it is replayed."""
        self.server.invalidate()

    def purge_cache(self) -> int:
        n = self.cache_stage.purge()
        self.server.invalidate()
        return n

    def configure(self, cfg: ConfigView, upstreams_changed: bool = False) -> None:
        """Apply a changed configuration live: the shared state and every stage read their own
        options (``Chain.configure``); the server's fast path takes the guard's limiter; an
        upstream that is ourselves is never used."""
        self.chain.configure(cfg)
        self.server.limiter = self.guard.limiter
        self.server.decision_trace = cfg["server.decision_trace"]
        self.server.dot_idle_timeout = cfg["tls.dot_idle_timeout"]  # from the next connection
        self.server.max_dot_connections = cfg["tls.dot_max_connections"]
        self.cleanup_interval = cfg["rate_limit.cleanup_interval"]
        if upstreams_changed:
            self.check_static_loop()

    def check_static_loop(self) -> None:
        """An upstream that is one of our own listeners would forward to ourselves forever."""
        ours = set(self.server.addresses)
        if not ours:
            return  # not listening yet: start() checks
        for server in self.upstreams.servers:
            if server.transport is not None:
                continue  # DoT/DoH: never one of our plain DNS listeners
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
