"""Conditional forwarding: names, clients or query types the owner sends to another server
(the router for ``*.lan`` and its reverse zone, a VPN's DNS for ``*.corp``).

Chain position: after ``local`` (the owner's own records and zones answer first), before
``private`` (a rule is the owner saying where a private name lives, so it must be routed
before the private-names stage would refuse it) and before policy/filter (filtering still
applies to forwarded names, as in Pi-hole). The stage only marks the query's route and adds
the rule's pool to the shared routes (dns/shared.py); the forward stage asks that pool, with
the rule's timeout/retries/failover, and the cache keys answers by route, so they never reach
clients the rule does not cover. The rules (forwarding.ForwardRules) are the stage's own data,
handed in once storage is open; until then it passes every query on. A rule
that matches on client addresses makes answers the fast path must not replay to the whole
group (it keys by group, not by client), whether the rule took the question or, because of the
client, did not.
"""

from __future__ import annotations

from typing import Any, Protocol

from ...config.upstream_spec import UpstreamSpec
from ..message import Answer, Next, Query
from ..shared import Options, Routes, Shared
from ..upstream import UpstreamSettings


class Route(Protocol):
    """A conditional-forwarding rule as the stage reads it (forwarding.ForwardRule)."""

    name: str
    route: str
    servers: tuple[UpstreamSpec, ...]
    settings: UpstreamSettings
    upstreams: tuple[str, ...]


class Rules(Protocol):
    """The rule set (forwarding.ForwardRules): the rule for a question, and whether it
    depends on the client."""

    def lookup(self, name: str, client_ip: str, qtype: int) -> tuple[Route | None, bool]: ...


class ConditionalStage:
    name = "conditional"

    def __init__(self, routes: Routes, rules: Rules | None = None) -> None:
        self.routes = routes  # the shared upstream pools by route (dns/shared.py)
        self.rules = rules  # burrow.forwarding.ForwardRules, set once storage is open
        self.forwarded = 0

    @classmethod
    def from_config(cls, cfg: Options, shared: Shared) -> ConditionalStage:
        """No options of its own: the rules are data, the pools shared."""
        return cls(shared.routes)

    async def resolve(self, query: Query, next: Next) -> Answer:
        rules = self.rules
        if rules is None:
            return await next(query)
        rule, per_client = rules.lookup(query.name, query.client_ip, query.qtype)
        if rule is not None:
            if query.explain is None:
                self.forwarded += 1
                self.routes.add(rule.route, rule.servers, rule.settings)
            else:  # a dry run (dns/explain.py) makes no pool: it says where the question would go
                query.explain.route = ("conditional", rule.name, list(rule.upstreams))
            query.route = rule.route
            query.note("conditional", "forward", rule=rule.name, source="conditional_forwarding",
                       detail=", ".join(rule.upstreams))
        elif not per_client:
            return await next(query)
        answer = await next(query)
        if per_client and answer.ttl is not None:
            # Routed or not because of who asked: another client of the same group could get
            # another route, so the answer is not for the per-group fast path (the cache below
            # keys by route and still serves it).
            answer = answer.replace(ttl=None)
        return answer

    def matching(self, query: Query) -> list[dict[str, Any]]:
        """The conditional forwarding rule that takes the question (dns/explain.py)."""
        rules = self.rules
        rule = rules.lookup(query.name, query.client_ip, query.qtype)[0] if rules is not None else None
        return [] if rule is None else [{"list": "conditional_forwarding", "kind": "forward", "rule": rule.name}]
