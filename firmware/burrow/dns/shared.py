"""The state several stages read, made once before any stage and handed to each that needs it.

Stages never hold each other: what more than one of them needs is one :class:`Shared` object,
which the composition root builds first (``Shared.from_config``) and the chain declaration
(dns/chain.py) hands to each stage's constructor:

    blocking    how a block is answered (``[filtering]`` blocking_mode, custom_ipv4/6,
                blocked_ttl): filter, policy (BLOCK and REDIRECT rules), private (rebinding)
    routes      the upstream pools by route: "" is the default upstreams
                (``upstream_dns_servers``, ``[upstream]``); conditional forwarding rules and
                policy FORWARD rules add theirs, the forward stage asks the query's
    pause       the blocking pause (filtering.pause.BlockingPause): filter, policy (BLOCK only)
    allow_list  the owner's allow list (filtering.userlists.UserList): filter, and private (a
                name on it is exempt from rebinding protection)
    deny_list   the owner's deny list: filter (the question and its CNAME targets)
    groups      the client groups (filtering.groups.Groups): policy rules' group conditions

The stores (pause, lists, groups) live in the settings database, so the composition root sets
them here once storage is open (after a restore they re-read themselves in place); until then
they are None and the stages act as if they were empty. The DNS core imports nothing from filtering/: what it
reads of them is the protocols below.

What is a fact about one query, not shared state, travels on the Query instead (its route,
``policy_allowed``, ``admitted``, ``explain``: see dns/message.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config.schema import parse_upstream
from ..config.upstream_spec import UpstreamSpec
from .blocking import BlockingSettings
from .upstream import Upstream, UpstreamPool, UpstreamSettings
from .upstream_tls import Encryption

Server = tuple[str, int] | UpstreamSpec  # what a pool is made from: (host, port) or a parsed entry

MAX_ROUTES = 64  # distinct upstream sets kept besides the default (each FORWARD rule's list is one)
DEFAULT_GROUPS = frozenset(("default",))  # every client's groups before the groups store is open


class Options(Protocol):
    """The configuration as stages read it: ``cfg["cache.max_ttl"]`` (burrow.config.Config)."""

    def __getitem__(self, key: str) -> Any: ...


class NameList(Protocol):
    """An allow or deny list (filtering.userlists.UserList): the entry that covers a name."""

    def match(self, name: str, groups: Iterable[str] | None = ...) -> str | None: ...


class Pause(Protocol):
    """The blocking pause (filtering.pause.BlockingPause), global or per client group."""

    def paused(self, groups: Iterable[str] = ...) -> bool: ...


class ClientGroups(Protocol):
    """The client groups (filtering.groups.Groups): the groups a client address is in."""

    def groups_of(self, ip: str) -> frozenset[str]: ...


class Routes:
    """Upstream pools by route. The route "" (and any route not known) is the default pool;
    conditional forwarding rules and policy FORWARD rules add a pool for their own servers.

    ``add`` is called per routed query, so the unchanged case is two identity checks; at most
    MAX_ROUTES pools are kept besides the default (the oldest goes; queries in flight keep it).

    Every pool shares the default's ``Encryption`` (dns/upstream_tls.py): one TLS context and
    one bootstrap, which asks ``bootstrap`` — a pool of plain servers only (``upstream.bootstrap``,
    else the plain entries of ``upstream_dns_servers``), so finding an encrypted server's address
    never goes through an encrypted server, nor through Burrow.
    """

    def __init__(self, default: UpstreamPool, bootstrap: UpstreamPool | None = None) -> None:
        self.default = default
        self.bootstrap = bootstrap or UpstreamPool([], UpstreamSettings())
        self._pools: dict[str, UpstreamPool] = {}
        self._servers: dict[str, Sequence[Server]] = {}  # route → the servers its pool was made from

    async def ask_bootstrap(self, question: bytes) -> bytes:
        reply, _ = await self.bootstrap.query(question, 0, False)
        return reply

    def add(self, route: str, servers: Sequence[Server],
            settings: UpstreamSettings | None = None) -> UpstreamPool:
        """The pool for ``route`` (made once from ``servers``: ((host, port), ...)), cached.

        ``settings`` (timeout, attempts, failover) are the route's own; None shares the default
        pool's. New ``servers`` make a new pool, new ``settings`` are swapped into the pool
        (servers keep their health).
        """
        pool = self._pools.get(route)
        if pool is not None:
            known = self._servers[route]
            if known is not servers and tuple(known) != tuple(servers):
                pool = None  # same route, other servers: start afresh
            elif settings is not None and pool.settings is not settings:
                pool.settings = settings
        if pool is None:
            self._pools.pop(route, None)
            if len(self._pools) >= MAX_ROUTES:
                oldest = next(iter(self._pools))  # queries in flight keep theirs
                del self._pools[oldest], self._servers[oldest]
            pool = self._pools[route] = UpstreamPool(list(servers), settings or self.default.settings,
                                                     encryption=self.default.encryption)
            pool.local_ports = self.default.local_ports  # one loop check for every socket we own
            self._servers[route] = servers
        return pool

    def pool(self, route: str) -> UpstreamPool:
        """The pool that answers ``route`` ("" or unknown: the default upstreams)."""
        if route:
            return self._pools.get(route, self.default)
        return self.default

    def __iter__(self) -> Iterator[str]:
        return iter(self._pools)

    def __len__(self) -> int:
        return len(self._pools)

    def configure(self, cfg: Options) -> None:
        """The default upstreams from ``upstream_dns_servers`` and ``[upstream]``, in place: a
        server still listed keeps its health and counters, and the settings object stays the
        one shared by routes without settings of their own (conditional rules, FORWARD rules)."""
        pool = self.default
        specs = _servers(cfg)
        pool.encryption.configure(cfg["upstream.ca_file"], self.ask_bootstrap)
        current: dict[str, Upstream | None] = {s.key: s for s in pool.servers}
        pool.servers = [current.pop(spec.text, None) or pool.make_server(spec) for spec in specs]
        for gone in current.values():
            if gone is not None and gone.transport is not None:
                gone.transport.close()
        boot = self.bootstrap
        known = {s.key: s for s in boot.servers}
        boot.servers = [known.get(spec.text) or boot.make_server(spec) for spec in _bootstrap(cfg, specs)]
        _upstream_settings(cfg, pool.settings)

    def close(self) -> None:
        """Close every encrypted connection (at shutdown)."""
        for pool in (self.default, *self._pools.values()):
            pool.close()


@dataclass(eq=False)
class Shared:
    """What several stages read (module doc). Stages read the fields at each query, so a store
    set here later, or a setting configured live, is seen by the next query."""

    blocking: BlockingSettings = field(default_factory=BlockingSettings)
    routes: Routes = field(default_factory=lambda: Routes(UpstreamPool([], UpstreamSettings())))
    pause: Pause | None = None
    allow_list: NameList | None = None
    deny_list: NameList | None = None
    groups: ClientGroups | None = None

    @classmethod
    def from_config(cls, cfg: Options) -> Shared:
        """The shared state ``cfg`` asks for; the stores join once storage is open."""
        specs = _servers(cfg)
        settings = _upstream_settings(cfg, UpstreamSettings())
        pool = UpstreamPool(specs, settings, encryption=Encryption(cfg["upstream.ca_file"]))
        bootstrap = UpstreamPool(_bootstrap(cfg, specs), settings)
        bootstrap.local_ports = pool.local_ports  # one loop check for every socket we own
        routes = Routes(pool, bootstrap)
        pool.encryption.bootstrap.ask = routes.ask_bootstrap
        return cls(blocking=_blocking(cfg), routes=routes)

    def configure(self, cfg: Options) -> None:
        """Apply ``cfg`` live: the blocking settings and the default upstreams."""
        self.blocking = _blocking(cfg)
        self.routes.configure(cfg)

    def groups_of(self, ip: str) -> frozenset[str]:
        """The groups of the client at ``ip`` (``{"default"}`` until the groups store is open)."""
        groups = self.groups
        return groups.groups_of(ip) if groups is not None else DEFAULT_GROUPS


def _blocking(cfg: Options) -> BlockingSettings:
    return BlockingSettings(cfg["filtering.blocking_mode"], cfg["filtering.custom_ipv4"],
                            cfg["filtering.custom_ipv6"], cfg["filtering.blocked_ttl"])


def _servers(cfg: Options) -> list[UpstreamSpec]:
    return [parse_upstream(text) for text in cfg["upstream_dns_servers"]]


def _bootstrap(cfg: Options, specs: list[UpstreamSpec]) -> list[UpstreamSpec]:
    """The plain servers that resolve encrypted upstreams' host names (see Routes)."""
    if cfg["upstream.bootstrap"]:
        return [parse_upstream(text) for text in cfg["upstream.bootstrap"]]
    return [spec for spec in specs if not spec.encrypted]


def _upstream_settings(cfg: Options, settings: UpstreamSettings) -> UpstreamSettings:
    """``settings`` (changed in place) as ``[upstream]`` says."""
    settings.timeout = cfg["upstream.timeout"]
    settings.max_attempts = cfg["upstream.max_attempts"]
    settings.max_inflight = cfg["upstream.max_inflight"]
    settings.max_inflight_share = cfg["upstream.max_inflight_share"]
    return settings
