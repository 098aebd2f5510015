"""Forward: ask the upstreams, coalescing identical questions already in flight.

The upstream reply is sanitized before anyone sees it: only records that belong to the
question survive (see message.sanitize_upstream).

The pools are shared state (dns/shared.py ``Routes``): the query's route picks one, "" the
default upstreams; conditional forwarding and policy FORWARD rules add theirs. The stage's own
options are the TTL clamps (``cache.min_ttl``, ``max_ttl``, ``negative_ttl``) and whose AD bit
it believes (``upstream.proxy_dnssec``, ``trusted_servers``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable

from .. import wire
from ..cache import CacheKey
from ..decision import Decision
from ..message import Answer, Next, Query, sanitize_upstream
from ..shared import Options, Routes, Shared
from ..upstream import Upstream, UpstreamError

log = logging.getLogger(__name__)

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
    loopback or inside a trusted network, or one reached over DNS over TLS or HTTPS (the
    channel is authenticated: its certificate was verified against the CA store or the
    configured CA, so nobody on the path could have set the bit), "on" every upstream, "off"
    none. Decided per answering server, so conditional forwarding to a router never vouches
    for anything.
    """

    def __init__(self, mode: str = "auto", trusted: Iterable[str] = ()) -> None:
        self.mode = mode
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in trusted]
        self._memo: dict[str, bool] = {}

    def trusts_server(self, server: Upstream) -> bool:
        """Whether the AD bit of an answer from ``server`` is believed."""
        if self.mode == "auto" and server.spec.encrypted:
            return True
        return self.trusts(server.host)

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

    def __init__(self, routes: Routes, limits: CacheLimits | None = None, ad_trust: AdTrust | None = None):
        self.routes = routes  # the shared upstream pools by route (dns/shared.py)
        self.limits = limits or CacheLimits()
        self.ad_trust = ad_trust or AdTrust()
        self._inflight: dict[CacheKey, asyncio.Future[Answer]] = {}
        self.coalesced = 0

    @classmethod
    def from_config(cls, cfg: Options, shared: Shared) -> ForwardStage:
        stage = cls(shared.routes)
        stage.configure(cfg)
        return stage

    def configure(self, cfg: Options) -> None:
        """Apply the TTL clamps (in place: they are read per answer) and the AD trust live."""
        lim = self.limits
        lim.min_ttl, lim.max_ttl = cfg["cache.min_ttl"], cfg["cache.max_ttl"]
        lim.negative_ttl = cfg["cache.negative_ttl"]
        self.ad_trust = AdTrust(cfg["upstream.proxy_dnssec"], cfg["upstream.trusted_servers"])

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
            kind, rule, servers = "default", None, [s.label for s in self.routes.default.servers]
        explain.upstream = {"route": kind, "rule": rule, "servers": servers}
        query.note("forward", "would_forward", source="upstream", detail=", ".join(servers))
        return Answer(wire.NOERROR, Decision.FORWARDED_CONDITIONAL if query.route else Decision.RESOLVED)

    async def _forward(self, query: Query) -> Answer:
        question = query.qkey
        pool = self.routes.pool(query.route)
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
        if answer.ad and not self.ad_trust.trusts_server(server):
            answer.ad = False  # an AD from a server we have no reason to believe
        if query.route:
            answer.decision = Decision.FORWARDED_CONDITIONAL
        query.note("forward", "resolved", source="upstream", detail=server.label)
        return answer
