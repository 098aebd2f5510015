"""Policy rules: validated, compiled once, evaluated in order — first match wins.

    rule = PolicyRule(0, "No games at work",
                      "Hour >= 9 && Hour < 17 && DomainMatches(Domain, 'steam')", "BLOCK")
    engine = PolicyEngine([rule], group_lookup=groups_of_ip)
    m = engine.evaluate("store.steam.com", "192.168.1.20", "A")   # Match | None
    engine.next_boundary(now)   # when a time rule could next change its outcome

The engine is immutable apart from its counters: on any change build a new one (and move
the generation counter). Pure library: no DNS, no HTTP.
"""

from __future__ import annotations

import ipaddress
import time
from datetime import tzinfo
from typing import Any, Callable, Iterable, NamedTuple

from burrow.config.schema import format_hostport, parse_hostport

from .expr import (CompiledExpression, EvalContext, PolicyError, compile_expression,
                   local_fields)

__all__ = ["ACTIONS", "PolicyValueError", "PolicyRule", "Match", "PolicyEngine",
           "parse_redirect", "parse_forward", "boundary_after"]

ACTIONS = ("BLOCK", "ALLOW", "REDIRECT", "FORWARD")
MAX_NAME = 200
MAX_ACTION_DATA = 1024  # characters: up to MAX_UPSTREAMS addresses with ports
MAX_UPSTREAMS = 8


class PolicyValueError(PolicyError):
    """A rule field other than the expression is invalid; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


# REDIRECT: (("A", ip), ("AAAA", ip)); FORWARD: ((ip, port), ...); other actions: ().
Targets = tuple[tuple[str, str], ...] | tuple[tuple[str, int], ...]


def parse_redirect(text: str) -> tuple[tuple[str, str], ...]:
    """"1.2.3.4" | "::1" | "1.2.3.4, ::1" → (("A", "1.2.3.4"), ("AAAA", "::1"))."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyValueError("action_data", "REDIRECT needs an IP address "
                               "(IPv4 and/or IPv6, comma-separated)")
    out: dict[str, str] = {}
    for part in text.split(","):
        part = part.strip()
        try:
            ip = ipaddress.ip_address(part)
        except ValueError:
            raise PolicyValueError("action_data", f"{part!r} is not an IP address") from None
        rtype = "A" if ip.version == 4 else "AAAA"
        if rtype in out:
            raise PolicyValueError("action_data",
                                   "REDIRECT takes at most one IPv4 and one IPv6 address")
        out[rtype] = str(ip)
    return tuple((t, out[t]) for t in ("A", "AAAA") if t in out)


def parse_forward(text: str) -> tuple[tuple[str, int], ...]:
    """"9.9.9.9:53, [2620:fe::fe]:53" → (("9.9.9.9", 53), ("2620:fe::fe", 53)).
    A bare IP means port 53; duplicates are dropped, order kept."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyValueError("action_data", 'FORWARD needs one or more "ip:port" upstreams')
    out: list[tuple[str, int]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise PolicyValueError("action_data", "empty upstream in the list")
        try:
            host, port = parse_hostport(part, default_port=53)
        except ValueError as exc:
            raise PolicyValueError("action_data", f"bad upstream {part!r}: {exc}") from None
        if port == 0:
            raise PolicyValueError("action_data", f"bad upstream {part!r}: port 0")
        if (host, port) not in out:
            out.append((host, port))
    if len(out) > MAX_UPSTREAMS:
        raise PolicyValueError("action_data", f"at most {MAX_UPSTREAMS} upstreams")
    return tuple(out)


class PolicyRule:
    """One validated, compiled rule. Raises PolicySyntaxError / PolicyTypeError (field
    "logic") or PolicyValueError (field named) — all PolicyError, a ValueError."""

    __slots__ = ("id", "name", "logic", "action", "action_data", "enabled", "compiled",
                 "predicate", "targets")

    def __init__(self, id: object, name: str, logic: str, action: str, action_data: str = "",
                 enabled: bool = True):
        if not isinstance(name, str) or not name.strip():
            raise PolicyValueError("name", "name is required")
        if len(name) > MAX_NAME:
            raise PolicyValueError("name", f"name longer than {MAX_NAME} characters")
        if not isinstance(logic, str) or not logic.strip():
            raise PolicyValueError("logic", "logic is required")
        if not isinstance(action, str) or action.strip().upper() not in ACTIONS:
            raise PolicyValueError("action", f"action must be one of {', '.join(ACTIONS)}")
        if not isinstance(enabled, bool):
            raise PolicyValueError("enabled", "enabled must be true or false")
        if action_data is None:
            action_data = ""
        if not isinstance(action_data, str):
            raise PolicyValueError("action_data", "action_data must be a string")
        if len(action_data) > MAX_ACTION_DATA:
            raise PolicyValueError("action_data", f"action_data longer than {MAX_ACTION_DATA} characters")
        action = action.strip().upper()
        self.compiled: CompiledExpression = compile_expression(logic)
        self.targets: Targets
        if action == "REDIRECT":
            self.targets = redirects = parse_redirect(action_data)
            action_data = ", ".join(ip for _, ip in redirects)
        elif action == "FORWARD":
            self.targets = servers = parse_forward(action_data)
            action_data = ", ".join(format_hostport(h, p) for h, p in servers)
        else:
            if action_data.strip():
                raise PolicyValueError("action_data", f"{action} takes no action_data")
            self.targets = ()
            action_data = ""
        self.id = id
        self.name = name.strip()
        self.logic = logic
        self.action = action
        self.action_data = action_data   # normalised: usable in a cache key
        self.enabled = enabled
        self.predicate = self.compiled.predicate

    @classmethod
    def from_dict(cls, data: dict[str, Any], id: object = None) -> "PolicyRule":
        """A seed-shaped body {name, logic, action, action_data?, enabled?}."""
        if not isinstance(data, dict):
            raise PolicyValueError("body", "expected a JSON object")
        for key in ("name", "logic", "action"):
            if key not in data:
                raise PolicyValueError(key, f"{key} is required")
        return cls(data.get("id", id) if id is None else id, data["name"], data["logic"],
                   data["action"], data.get("action_data", ""), data.get("enabled", True))

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "logic": self.logic, "action": self.action,
                "action_data": self.action_data, "enabled": self.enabled}

    @property
    def uses(self) -> frozenset[str]:
        return self.compiled.uses

    @property
    def uses_time(self) -> bool:
        return self.compiled.time_grain is not None

    @property
    def time_grain(self) -> str | None:
        return self.compiled.time_grain

    def __repr__(self) -> str:
        return f"PolicyRule({self.id!r}, {self.name!r}, {self.logic!r}, {self.action!r})"


class Match(NamedTuple):
    rule: PolicyRule
    action: str          # BLOCK | ALLOW | REDIRECT | FORWARD
    action_data: str     # normalised text ("1.2.3.4, ::1" / "9.9.9.9:53, [::1]:5353" / "")
    targets: Targets     # REDIRECT: (("A", ip), ("AAAA", ip)); FORWARD: ((ip, port), ...)


_GRAIN_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_CLIENT_NAMES = frozenset({"ClientIP"})


class PolicyEngine:
    def __init__(self, rules: Iterable[PolicyRule] = (), *,
                 group_lookup: Callable[[str], Iterable[str] | None] | None = None,
                 clock: Callable[[], float] = time.time, tz: tzinfo | None = None):
        self.rules = tuple(rules)
        self.group_lookup = group_lookup
        self.clock = clock
        self.tz = tz                       # None = the appliance's local time
        self._active = tuple(r for r in self.rules if r.enabled)
        self._plan = tuple((r, r.predicate, Match(r, r.action, r.action_data, r.targets))
                           for r in self._active)
        grains = [r.time_grain for r in self._active if r.time_grain]
        self.time_grain = min(grains, key=_GRAIN_SECONDS.__getitem__) if grains else None
        self.evaluations = 0
        self.runtime_errors = 0
        self.matches: dict[object, int] = {r.id: 0 for r in self.rules}  # rule id → times it decided
        self.errors: dict[object, int] = {r.id: 0 for r in self.rules}
        self.last_error: dict[object, str] = {}

    # ---------------------------------------------------------------- properties

    @property
    def uses_time(self) -> bool:
        return self.time_grain is not None

    @property
    def uses_client_ip(self) -> bool:
        """True when a decision can depend on the client address itself (IPInCIDR,
        IPEquals, ClientIP comparisons, InClientGroup): the fast path must then key
        policy decisions by client, not only by group."""
        return any("ClientIP" in r.uses for r in self._active)

    @property
    def uses_qtype(self) -> bool:
        return any("QueryType" in r.uses or "QueryTypeIn" in r.uses for r in self._active)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: object) -> PolicyRule | None:
        for r in self.rules:
            if r.id == rule_id:
                return r
        return None

    # ---------------------------------------------------------------- evaluation

    def evaluate(self, domain: str, client_ip: str = "", qtype_name: str = "A", *,
                 now: float | None = None, count: bool = True) -> Match | None:
        """First enabled rule (in order) whose logic is true, or None.
        A rule that raises is skipped and counted in `runtime_errors`. `count=False` leaves
        every counter alone (a dry run: explaining a decision)."""
        if count:
            self.evaluations += 1
        plan = self._plan
        if not plan:
            return None
        if domain[-1:] == ".":
            domain = domain[:-1]
        ctx = EvalContext(domain.lower(), client_ip, qtype_name.upper(), now=now,
                          clock=self.clock, tz=self.tz, group_lookup=self.group_lookup)
        for rule, pred, match in plan:
            try:
                hit = pred(ctx)
            except Exception as exc:  # an injected function (groups, clock) failed
                if count:
                    self.runtime_errors += 1
                    self.errors[rule.id] = self.errors.get(rule.id, 0) + 1
                    self.last_error[rule.id] = f"{type(exc).__name__}: {exc}"
                continue
            if hit:
                if count:
                    self.matches[rule.id] = self.matches.get(rule.id, 0) + 1
                return match
        return None

    def explain(self, domain: str, client_ip: str = "", qtype_name: str = "A", *,
                now: float | None = None) -> list[dict[str, Any]]:
        """Every rule's outcome for one query, without touching the counters:
        [{"id", "name", "enabled", "result": true|false|null, "error"?, "decides"}]."""
        domain = domain.lower().rstrip(".")
        ctx = EvalContext(domain, client_ip, qtype_name.upper(), now=now,
                          clock=self.clock, tz=self.tz, group_lookup=self.group_lookup)
        out: list[dict[str, Any]] = []
        decided = False
        for r in self.rules:
            row: dict[str, Any] = {"id": r.id, "name": r.name, "enabled": r.enabled, "action": r.action,
                   "result": None, "decides": False}
            if r.enabled:
                try:
                    row["result"] = bool(r.predicate(ctx))
                except Exception as exc:
                    row["error"] = f"{type(exc).__name__}: {exc}"
                if row["result"] and not decided:
                    row["decides"] = decided = True
            out.append(row)
        return out

    def stats(self) -> dict[str, object]:
        return {
            "rules": len(self.rules),
            "enabled": len(self._active),
            "evaluations": self.evaluations,
            "runtime_errors": self.runtime_errors,
            "matches": dict(self.matches),
            "errors": dict(self.errors),
            "last_error": dict(self.last_error),
        }

    # ---------------------------------------------------------------- time

    def next_boundary(self, now: float | None = None) -> float | None:
        """The earliest wall-clock time (epoch seconds, > now) at which any enabled
        time-dependent rule could change its outcome; None when no rule reads the clock.

        Minute/InTimeRange → the next local minute boundary; Hour only → the next local
        hour; Day/Month/Weekday/IsWeekend only → the next local midnight. If the zone's
        UTC offset changes (DST) before that, the instant of the change is returned
        instead — conservative: a reused decision may expire early, never late."""
        grain = self.time_grain
        if grain is None:
            return None
        if now is None:
            now = self.clock()
        return boundary_after(now, grain, self.tz)


def boundary_after(now: float, grain: str, tz: tzinfo | None = None) -> float:
    """Next local minute/hour/midnight boundary strictly after `now`, bounded by the next
    UTC-offset change (found by bisection to the second)."""
    f = local_fields(now, tz)
    base = float(int(now // 1))               # whole second at or before now
    sec = f[5]
    if grain == "minute":
        cand = base - sec + 60
    elif grain == "hour":
        cand = base - f[4] * 60 - sec + 3600
    else:
        cand = base - f[3] * 3600 - f[4] * 60 - sec + 86400
    off = f[7]
    if local_fields(cand, tz)[7] == off and local_fields(cand - 1, tz)[7] == off:
        return cand
    # an offset change lies in (now, cand]: find its first second
    lo, hi = base, cand      # offset(lo) == off, offset(hi) != off (or hi-1 differs)
    if local_fields(cand, tz)[7] == off:
        hi = cand - 1
    while hi - lo > 1:
        mid = float(int((lo + hi) // 2))
        if local_fields(mid, tz)[7] == off:
            lo = mid
        else:
            hi = mid
    return hi
