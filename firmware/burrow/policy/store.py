"""The policy rules as a store: kept, in order, in the settings DB under "policies" (a JSON
list of rule dicts), with ids that are never reused ("policies.next_id").

Every change validates the whole rule (a bad expression is a PolicyError naming the
position), saves, then swaps a new engine into the DNS chain at once, publishes an audit
event and announces ``Change.POLICIES`` (burrow/changes.py): all or nothing — a failed save
leaves the old rules answering. The HTTP API (api/policies_api.py) only parses and shapes.

The settings DB and the policy stage are handed in, typed by what the store uses, so this
foundation package imports neither storage nor the DNS core.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from .. import errors as domain
from ..changes import Announce, Change, ignore
from .engine import PolicyEngine, PolicyRule

SETTINGS_KEY = "policies"
NEXT_ID_KEY = "policies.next_id"
MAX_RULES = 1000


class Settings(Protocol):
    """The part of the settings DB (storage/settings.py) the store uses."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...
    def transaction(self) -> AbstractContextManager[Any]: ...


class Stage(Protocol):
    """The part of the policy stage (dns/stages/policy.py) the store drives."""

    @property
    def engine(self) -> PolicyEngine: ...
    def build(self, rules: Iterable[PolicyRule]) -> PolicyEngine: ...
    def set_engine(self, engine: PolicyEngine) -> None: ...
    def load(self, stored: object) -> int: ...


class PolicyNotFound(domain.NotFound, LookupError):
    """No rule has that id (404)."""

    error = "Not Found"

    def __init__(self, pid: int):
        super().__init__("Policy not found")
        self.pid = pid


class PolicyLimitError(domain.Invalid, ValueError):
    """MAX_RULES rules exist already (400)."""


class PolicySaveError(RuntimeError):
    """The settings DB refused the write; the old rules still answer."""


class PolicyStore:
    """The ordered rules; the stage's engine is what answers from them.

    :param audit: receives one event dict per change (the event bus's "events" topic).
    :param on_change: told ``Change.POLICIES`` after every change and every reload.
    """

    def __init__(self, settings: Settings, stage: Stage, *, on_change: Announce = ignore,
                 audit: Callable[[dict[str, Any]], None] = lambda event: None) -> None:
        self.settings = settings
        self.stage = stage
        self.on_change = on_change
        self.audit = audit

    # ---- reading --------------------------------------------------------------------------------

    def list(self) -> tuple[PolicyRule, ...]:
        return self.stage.engine.rules

    def get(self, pid: int) -> PolicyRule:
        return self.list()[self._find(self.list(), pid)]

    # ---- changes --------------------------------------------------------------------------------

    def reload(self) -> int:
        """Read the stored rules again (at start; a restore replaced them) and announce it.
        A stored rule that no longer validates is skipped and logged. Returns how many loaded."""
        n = self.stage.load(self.settings.get(SETTINGS_KEY, []))
        self.on_change(Change.POLICIES)
        return n

    def create(self, body: dict[str, Any], *, actor: str, client_ip: str | None = None) -> PolicyRule:
        """Append a rule (evaluated after the others) with a new id; PolicyError if invalid."""
        rules = list(self.list())
        if len(rules) >= MAX_RULES:
            raise PolicyLimitError(f"at most {MAX_RULES} policies")
        used = max((r.id for r in rules if isinstance(r.id, int)), default=-1) + 1
        stored = self.settings.get(NEXT_ID_KEY, 0)
        pid = max(used, stored if isinstance(stored, int) else 0)
        rule = PolicyRule.from_dict(body, id=pid)
        rules.append(rule)
        self._commit(rules, "created", rule, actor, client_ip, next_id=pid + 1)
        return rule

    def update(self, pid: int, body: dict[str, Any], *, actor: str, client_ip: str | None = None) -> PolicyRule:
        """Replace a rule; it keeps its id and its place."""
        rules = list(self.list())
        i = self._find(rules, pid)
        rule = PolicyRule.from_dict(body, id=pid)
        rules[i] = rule
        self._commit(rules, "updated", rule, actor, client_ip)
        return rule

    def delete(self, pid: int, *, actor: str, client_ip: str | None = None) -> PolicyRule:
        rules = list(self.list())
        rule = rules.pop(self._find(rules, pid))
        self._commit(rules, "deleted", rule, actor, client_ip)
        return rule

    # ---- inside ---------------------------------------------------------------------------------

    @staticmethod
    def _find(rules: Iterable[PolicyRule], pid: int) -> int:
        for i, r in enumerate(rules):
            if r.id == pid:
                return i
        raise PolicyNotFound(pid)

    def _commit(self, rules: builtins.list[PolicyRule], kind: str, rule: PolicyRule, actor: str, client_ip: str | None,
                next_id: int | None = None) -> None:
        """Save, then swap the engine, then tell: all or nothing."""
        engine = self.stage.build(rules)  # cheap: rules are compiled already
        try:
            with self.settings.transaction():
                self.settings.set(SETTINGS_KEY, [r.to_dict() for r in rules])
                if next_id is not None:
                    self.settings.set(NEXT_ID_KEY, next_id)
        except Exception as e:
            raise PolicySaveError(str(e)) from e
        self.stage.set_engine(engine)
        self.on_change(Change.POLICIES)
        self.audit({"type": f"policy.{kind}", "actor": actor, "client_ip": client_ip,
                    "summary": f"policy {rule.id} {rule.name!r} {kind}"})
