"""Policy: the owner's ordered rules (seed 003 ``/api/policies``), before the lists.

For each question the engine evaluates the enabled rules in order; the first match decides:

    BLOCK     answered here as the blocking mode says, EDE 15 naming the rule
    ALLOW     passed on with ``query.policy_allowed`` set: the filter does not block it, and
              the answer still comes from the cache (or the upstreams) like any other
    REDIRECT  answered here with the rule's A / AAAA address by family (NODATA otherwise)
    FORWARD   ``query.route`` names the rule's upstream set (so the cache keeps those answers
              apart) and the forward stage asks a pool for exactly those upstreams

Answers must not outlive the decision that made them. While a rule reads the clock, every
answer's reuse lifetime (``Answer.ttl``: fast path) is capped at the next instant a time rule
could change its outcome (``PolicyEngine.next_boundary``). While a rule reads the client
address, answers are not given to the fast path at all (it keys by group, not by client); the
cache below still serves them.

The engine is immutable: a change builds a new one and swaps it in with ``set_rules`` (one
attribute assignment, so a query sees the old rules or the new ones, never a mix).

What it shares with other stages comes from the shared state (dns/shared.py): the blocking
settings and the pause (BLOCK answers as the filter would, and not while blocking is paused),
the upstream routes (a FORWARD rule adds a pool for its servers; the forward stage asks it) and
the client groups (rules' group conditions).
"""

from __future__ import annotations

import logging
import time
from datetime import tzinfo
from typing import Any, Callable, Iterable, cast

from ...policy import PolicyEngine, PolicyRule
from ...policy.engine import Match
from .. import qtypes, wire
from ..blocking import Redirects, blocked_answer
from ..decision import Decision
from ..message import Answer, Next, Query, silent
from ..names import view_groups
from ..shared import Options, Shared

log = logging.getLogger(__name__)

SOURCE = "policy_engine"


def _no_groups(ip: str) -> frozenset[str]:
    return frozenset()


def route_key(rule: PolicyRule) -> str:
    """A stable route name for a FORWARD rule's upstreams: the normalised upstream list."""
    return "policy:" + rule.action_data


class PolicyStage:
    name = "policy"

    def __init__(self, shared: Shared | None = None, *, group_lookup: Callable[[str], Iterable[str]] | None = None,
                 clock: Callable[[], float] = time.time, tz: tzinfo | None = None) -> None:
        self.shared = shared if shared is not None else Shared()  # blocking settings, pause, routes
        self.group_lookup = group_lookup or _no_groups
        self.clock = clock
        self.tz = tz
        self.engine = PolicyEngine((), group_lookup=self.group_lookup, clock=clock, tz=tz)
        self._idle = True
        self.blocked = 0

    @classmethod
    def from_config(cls, cfg: Options, shared: Shared) -> PolicyStage:
        """No options of its own: the rules are data (``load``), the rest is shared."""
        return cls(shared, group_lookup=shared.groups_of)

    # ---- rules ------------------------------------------------------------------------------------

    def build(self, rules: Iterable[PolicyRule]) -> PolicyEngine:
        return PolicyEngine(rules, group_lookup=self.group_lookup, clock=self.clock, tz=self.tz)

    def set_engine(self, engine: PolicyEngine) -> None:
        """Swap in a new engine (the policy store then announces the change: policy/store.py)."""
        self._idle = not any(r.enabled for r in engine.rules)
        self.engine = engine

    def set_rules(self, rules: Iterable[PolicyRule]) -> PolicyEngine:
        engine = self.build(rules)
        self.set_engine(engine)
        return engine

    def load(self, stored: object) -> int:
        """Rules from the settings DB (a JSON list of rule dicts, in order). A stored rule that
        no longer validates is skipped and logged, never fatal. Returns how many loaded."""
        rules = []
        for i, data in enumerate(stored if isinstance(stored, list) else []):
            try:
                rules.append(PolicyRule.from_dict(data, id=data.get("id", i) if isinstance(data, dict) else i))
            except (ValueError, TypeError) as e:
                log.error("stored policy rule %d skipped: %s", i, e)
        self.set_rules(rules)
        return len(rules)

    # ---- the stage --------------------------------------------------------------------------------

    async def resolve(self, query: Query, next: Next) -> Answer:
        if self._idle:
            return await next(query)
        engine = self.engine
        match = engine.evaluate(query.name, query.client_ip, qtypes.name(query.qtype),
                                count=query.explain is None)  # a dry run (dns/explain.py) counts nothing
        if match is None:
            answer = await next(query)
        else:
            answer = await self._act(query, match, next)
        return self._bound(engine, answer)

    async def _act(self, query: Query, match: Match, next: Next) -> Answer:
        rule = match.rule
        action = match.action
        if action == "BLOCK":
            pause = self.shared.pause
            if pause is not None and pause.paused(view_groups(query.view)):
                query.note("policy", "paused", rule=rule.name, source=SOURCE, detail="blocking paused")
                return await next(query)
            if query.explain is None:
                self.blocked += 1
            query.note("policy", "BLOCK", rule=rule.name, source=SOURCE, detail=f"policy {rule.id}")
            settings = self.shared.blocking
            return blocked_answer(query.qtype, settings.mode, settings,
                                  (wire.EDE_BLOCKED, f"policy: {rule.name}"))
        if action == "REDIRECT":
            query.note("policy", "REDIRECT", rule=rule.name, source=SOURCE, detail=match.action_data)
            return blocked_answer(query.qtype, "null", self.shared.blocking, None, cast(Redirects, match.targets))
        if action == "ALLOW":
            query.note("policy", "ALLOW", rule=rule.name, source=SOURCE, detail=f"policy {rule.id}")
            query.policy_allowed = True
            answer = await next(query)
            if answer.decision is Decision.RESOLVED:
                answer = answer.replace(decision=Decision.ALLOWED)
            return answer
        # FORWARD
        query.note("policy", "FORWARD", rule=rule.name, source=SOURCE, detail=match.action_data)
        route = route_key(rule)
        if query.explain is not None:  # a dry run makes no pool; action_data lists the upstreams
            query.explain.route = ("policy", rule.name, match.action_data.split(", "))
        else:
            self.shared.routes.add(route, cast(tuple[tuple[str, int], ...], match.targets))
        query.route = route
        answer = await next(query)
        if answer.decision is Decision.RESOLVED:
            answer = answer.replace(decision=Decision.FORWARDED_CONDITIONAL)
        return answer

    def matching(self, query: Query) -> list[dict[str, Any]]:
        """Every enabled rule whose logic holds for the question, in order (dns/explain.py)."""
        if self._idle:
            return []
        rows = self.engine.explain(query.name, query.client_ip, qtypes.name(query.qtype))
        return [{"list": "policy", "kind": row["action"].lower(), "rule": row["name"]}
                for row in rows if row["result"]]

    def _bound(self, engine: PolicyEngine, answer: Answer) -> Answer:
        """Cap how long the fast path may replay an answer decided under these rules."""
        if answer.ttl is None or silent(answer):
            return answer
        if engine.uses_client_ip:  # the fast path keys by group: a per-client decision must not ride it
            return answer.replace(ttl=None)
        if engine.uses_time:
            now = self.clock()
            boundary = engine.next_boundary(now)
            if boundary is not None:
                cap = max(0.0, boundary - now)
                if answer.ttl > cap:
                    return answer.replace(ttl=cap)
        return answer
