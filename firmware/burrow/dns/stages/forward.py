"""Forward: ask the upstreams, coalescing identical questions already in flight.

The upstream reply is sanitized before anyone sees it: only records that belong to the
question survive (see message.sanitize_upstream).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable, Sequence

from .. import wire
from ..cache import CacheKey

from ..decision import Decision
from ..message import Answer, Next, Query, sanitize_upstream

from ..upstream import UpstreamError, UpstreamPool, UpstreamSettings

log = logging.getLogger(__name__)

MAX_ROUTES = 64  # distinct upstream sets kept (each FORWARD rule's list is one)
TRUST_MEMO_MAX = 256  # upstream addresses whose AD verdict is remembered


class CacheLimits:
    """TTL clamps applied to what upstream says (cache.min_ttl / max_ttl / negative_ttl)."""

    def __init__(self, min_ttl: int = 0, max_ttl: int = 86400, negative_ttl: int = 3600):
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl


class AdTrust:
    """Whose AD bit Burrow passes on (``upstream.proxy_dnssec``, ``upstream.trusted_servers``).

    An upstream's AD says its validator checked the data; it is worth what the path to that
    validator is worth (RFC 6840 §5.7), and a stub behind Burrow believes it. "auto" (like
    dnsmasq's --proxy-dnssec on a box whose resolver is local) believes an upstream on
    loopback or inside a trusted network, "on" every upstream, "off" none. Decided per
    answering server, so conditional forwarding to a router never vouches for anything.
    """

    def __init__(self, mode: str = "auto", trusted: Iterable[str] = ()) -> None:
        self.mode = mode
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in trusted]
        self._memo: dict[str, bool] = {}

    def trusts(self, host: str) -> bool:
        if self.mode != "auto":
            return self.mode == "on"
        known = self._memo.get(host)
        if known is None:
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                return False
            if ip.version == 6 and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            known = ip.is_loopback or any(ip.version == n.version and ip in n for n in self.trusted)
            if len(self._memo) >= TRUST_MEMO_MAX:
                self._memo.clear()
            self._memo[host] = known
        return known


class ForwardStage:
    name = "forward"

    def __init__(self, pool: UpstreamPool, limits: CacheLimits, ad_trust: AdTrust | None = None):
        self.pool = pool
        self.limits = limits
        self.ad_trust = ad_trust or AdTrust()
        self._inflight: dict[CacheKey, asyncio.Future[Answer]] = {}
        self.coalesced = 0
        self._routes: dict[str, UpstreamPool] = {}  # route → pool for that upstream set (policy FORWARD,
        # conditional forwarding rules)
        self._servers: dict[str, Sequence[tuple[str, int]]] = {}  # route → the servers its pool was made from

    def add_route(self, route: str, servers: Sequence[tuple[str, int]],
                  settings: UpstreamSettings | None = None) -> UpstreamPool:
        """The pool for ``route`` (made once from ``servers``: ((host, port), ...)), cached.

        ``settings`` (timeout, attempts, failover) are the route's own; None shares the default
        pool's. Called per query, so the unchanged case is two identity checks: new ``servers``
        make a new pool, new ``settings`` are swapped into the pool (servers keep their health).
        """
        pool = self._routes.get(route)
        if pool is not None:
            known = self._servers[route]
            if known is not servers and tuple(known) != tuple(servers):
                pool = None  # same route, other servers: start afresh
            elif settings is not None and pool.settings is not settings:
                pool.settings = settings
        if pool is None:
            self._routes.pop(route, None)
            if len(self._routes) >= MAX_ROUTES:
                oldest = next(iter(self._routes))  # queries in flight keep theirs
                del self._routes[oldest], self._servers[oldest]
            pool = self._routes[route] = UpstreamPool(list(servers), settings or self.pool.settings)
            pool.local_ports = self.pool.local_ports  # one loop check for every socket we own
            self._servers[route] = servers
        return pool

    def pools(self, query: Query) -> UpstreamPool:
        """The upstream pool for the query's route ("" or unknown: the default upstreams)."""
        if query.route:
            return self._routes.get(query.route, self.pool)
        return self.pool

    async def resolve(self, query: Query, next: Next) -> Answer:
        if query.explain is not None:
            return self._explain(query)
        key = (query.qkey, query.do, query.cd, query.route)  # as the cache's key (stages/cache.py)
        pending = self._inflight.get(key)
        if pending is not None:
            self.coalesced += 1
            answer = await asyncio.shield(pending)
            query.note("forward", "coalesced", source="upstream", detail=answer.upstream)
            return answer
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            answer = await self._forward(query)
        except Exception as e:  # never leave coalesced waiters hanging
            log.exception("forwarding failed")
            answer = Answer(wire.SERVFAIL, Decision.SERVFAIL, ede=(wire.EDE_OTHER, str(e)[:100]))
        finally:
            del self._inflight[key]
        fut.set_result(answer)
        return answer

    def _explain(self, query: Query) -> Answer:
        """A dry run (dns/explain.py): note where the question would go, send nothing, and
        answer an empty placeholder carrying the decision of a forwarded name."""
        explain = query.explain
        assert explain is not None  # resolve() comes here for a dry run only
        if query.route and explain.route is not None:
            kind, rule, servers = explain.route  # the stage that routed it said where
        else:
            kind, rule, servers = "default", None, [s.label for s in self.pool.servers]
        explain.upstream = {"route": kind, "rule": rule, "servers": servers}
        query.note("forward", "would_forward", source="upstream", detail=", ".join(servers))
        return Answer(wire.NOERROR, Decision.FORWARDED_CONDITIONAL if query.route else Decision.RESOLVED)

    async def _forward(self, query: Query) -> Answer:
        question = query.qkey
        pool = self.pools(query)
        try:
            reply, server = await pool.query(question, query.flags, query.do, client=query.client_ip)
        except UpstreamError as e:
            if e.busy:
                # Turned away for want of an in-flight slot (the client's share, or the pool's):
                # a verdict on the load, not the question, so it must not enter the cache stage's
                # SERVFAIL memo, where it would fail the same question for every other client.
                query.note("forward", "rate_limited", source="upstream", detail=str(e))
                return Answer(wire.SERVFAIL, Decision.RATE_LIMITED, ede=(e.ede, e.text[:100]))
            query.note("forward", "servfail", source="upstream", detail=str(e))
            return Answer(wire.SERVFAIL, Decision.SERVFAIL, ede=(e.ede, e.text[:100]))
        lim = self.limits
        try:
            answer = sanitize_upstream(reply, query.qname, query.qtype, 12 + len(question),
                                       lim.min_ttl, lim.max_ttl, lim.negative_ttl, query.do)
        except wire.WireError as e:
            query.note("forward", "servfail", source="upstream", detail=f"bad reply: {e}")
            return Answer(wire.SERVFAIL, Decision.SERVFAIL, ede=(wire.EDE_NETWORK_ERROR, "malformed upstream reply"),
                          upstream=server.label)
        answer.upstream = server.label
        if answer.ad and not self.ad_trust.trusts(server.host):
            answer.ad = False  # an AD from a server we have no reason to believe
        if query.route:
            answer.decision = Decision.FORWARDED_CONDITIONAL
        query.note("forward", "resolved", source="upstream", detail=server.label)
        return answer
