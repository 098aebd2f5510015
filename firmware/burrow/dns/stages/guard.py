"""Guard: access control, rate limiting, and questions answered without looking anything up.

ANY gets the minimal RFC 8482 answer (one HINFO record) and CHAOS-class questions are
answered here or refused, so neither ever reaches an upstream. So are meta-types, which are
no data anyone could look up (RFC 6895 §3.1): zone transfers (AXFR, IXFR) are refused, as
Burrow serves none (RFC 5936 §4.2 allows REFUSED; EDE 21 "Not Supported"), and OPT, TSIG,
TKEY, MAILA, MAILB and the unassigned meta range 128-248 get FORMERR with EDE 30 "Invalid
Query Type" (RFC 9824 §3.5; what Unbound and BIND answer).

It owns the access list (``access.allowed_networks``) and the rate limiter (``[rate_limit]``);
the server's fast path consults the same two objects, so after :meth:`GuardStage.configure`
the server takes the guard's limiter (None while rate limiting is off).
"""

from __future__ import annotations

from .. import wire
from ..access import AccessControl, RateLimiter
from ..decision import Decision
from ..message import RATE_LIMIT_DROP, Answer, Next, Query
from ..shared import Options, Shared

RFC8482_TTL = 3600
CHAOS_VERSION_NAMES = {wire.text_to_name("version.bind"), wire.text_to_name("version.server")}
ZONE_TRANSFERS = frozenset({wire.TYPE_AXFR, wire.TYPE_IXFR})
INVALID_QTYPES = frozenset({wire.TYPE_OPT, wire.TYPE_TKEY, wire.TYPE_TSIG, wire.TYPE_MAILB, wire.TYPE_MAILA,
                            *range(128, 249)})


class GuardStage:
    name = "guard"

    def __init__(self, acl: AccessControl, limiter: RateLimiter | None, limit_action: str = "drop"):
        self.acl = acl
        self.limiter = limiter
        self.limit_action = limit_action

    @classmethod
    def from_config(cls, cfg: Options, shared: Shared) -> GuardStage:
        stage = cls(AccessControl(cfg["access.allowed_networks"]), None)
        stage.configure(cfg)
        return stage

    def configure(self, cfg: Options) -> None:
        """Apply ``[rate_limit]`` live. The limiter is changed in place, so clients keep their
        buckets (tokens above a new burst are clamped); turned off it is None, turned on a new one."""
        limiter = None
        if cfg["rate_limit.enabled"]:
            limiter = self.limiter
            if limiter is None:
                limiter = RateLimiter(cfg["rate_limit.rps"], cfg["rate_limit.burst"],
                                      cfg["rate_limit.max_tracked_clients"])
            else:
                limiter.rps = cfg["rate_limit.rps"]
                limiter.burst = float(cfg["rate_limit.burst"])
                limiter.max_clients = cfg["rate_limit.max_tracked_clients"]
        self.limiter = limiter
        self.limit_action = cfg["rate_limit.action"]

    async def resolve(self, query: Query, next: Next) -> Answer:
        if not self.acl.allowed(query.client_ip):
            query.note("guard", "refused", source="access", detail="client not in allowed_networks")
            return Answer(wire.REFUSED, Decision.REFUSED, ede=(wire.EDE_PROHIBITED, "client not allowed"))
        admitted = query.admitted
        if admitted is None and self.limiter is not None:
            admitted = self.limiter.admit(query.client_ip, query.mono)
        if admitted is False:
            query.note("rate_limit", "rate_limited", source="rate_limiter", detail=self.limit_action)
            if self.limit_action == "drop":
                return RATE_LIMIT_DROP
            return Answer(wire.REFUSED, Decision.RATE_LIMITED, ede=(wire.EDE_OTHER, "rate limited"))
        if query.qclass == wire.CLASS_CH:
            return self._chaos(query)
        if query.qclass != wire.CLASS_IN:
            query.note("guard", "refused", source="guard", detail=f"class {query.qclass}")
            return Answer(wire.REFUSED, Decision.REFUSED)
        if query.qtype in INVALID_QTYPES:
            query.note("guard", "formerr", source="guard", detail=f"meta-type {query.qtype}")
            return Answer(wire.FORMERR, Decision.INVALID, ede=(wire.EDE_INVALID_QUERY_TYPE, ""))
        if query.qtype in ZONE_TRANSFERS:
            query.note("guard", "refused", source="guard", detail="zone transfer")
            return Answer(wire.REFUSED, Decision.REFUSED, ede=(wire.EDE_NOT_SUPPORTED, "no zone transfers"))
        if query.qtype == wire.TYPE_ANY:
            query.note("guard", "rfc8482", source="guard", detail="minimal ANY answer")
            rr = wire.build_rr(b"\xc0\x0c", wire.TYPE_HINFO, wire.CLASS_IN, RFC8482_TTL,
                               wire.txt_rdata("RFC8482", ""))
            return Answer(wire.NOERROR, Decision.LOCAL, rr, an=1, ttl_offsets=(6,), ttls=(RFC8482_TTL,),
                          ttl=RFC8482_TTL)
        return await next(query)

    def _chaos(self, query: Query) -> Answer:
        if query.qtype == wire.TYPE_TXT and query.qname in CHAOS_VERSION_NAMES:
            query.note("guard", "chaos", source="guard", detail="version")
            rr = wire.build_rr(b"\xc0\x0c", wire.TYPE_TXT, wire.CLASS_CH, 0, wire.txt_rdata("Burrow"))
            return Answer(wire.NOERROR, Decision.LOCAL, rr, an=1, aa=True)
        query.note("guard", "refused", source="guard", detail="CHAOS class")
        return Answer(wire.REFUSED, Decision.REFUSED)
