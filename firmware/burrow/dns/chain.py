"""The chain: the stages a query passes through, declared once, in order, each beside the reason
for its position (``STAGES`` below; docs/architecture.md draws the same order, and
tests/unit/dns/test_chain_declaration.py keeps the two in step).

Each stage is ``async def resolve(query, next) -> Answer``: it answers, or delegates to
``next``. :func:`build` makes every stage with its ``from_config(cfg, shared)``: from its own
options, and from the state it shares with other stages (dns/shared.py), which is made first
and handed in, so no stage holds another. :meth:`Chain.configure` applies a changed
configuration live: the shared state and every stage with options (``configure(cfg)``) change
themselves in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Awaitable, Callable, NamedTuple, Protocol, TypeVar, runtime_checkable

from . import wire
from .decision import Decision
from .message import Answer, Query
from .shared import Options, Shared
from .stages.cache import CacheStage
from .stages.conditional import ConditionalStage
from .stages.filter import FilterStage
from .stages.forward import ForwardStage
from .stages.guard import GuardStage
from .stages.local import LocalStage
from .stages.policy import PolicyStage
from .stages.private import PrivateStage


class Stage(Protocol):
    name: str

    async def resolve(self, query: Query, next: Callable[[Query], Awaitable[Answer]]) -> Answer: ...


@runtime_checkable
class Configurable(Protocol):
    """A stage with options of its own, which it can change while queries run."""

    def configure(self, cfg: Options) -> None: ...


class Position(NamedTuple):
    name: str  # the stage's name (its trace entries, the decision trace)
    build: Callable[[Options, Shared], Stage]  # the stage, from its options and the shared state
    why: str  # why it sits here


STAGES: tuple[Position, ...] = (
    Position("guard", GuardStage.from_config,
             "first: refuse or limit before any work is spent; ANY, CHAOS and meta-types are answered "
             "here and never reach local data or an upstream"),
    Position("local", LocalStage.from_config,
             "local records and zones: the owner's own names win over rules and lists, so a home name "
             "is never blocked, rewritten or sent upstream"),
    Position("conditional", ConditionalStage.from_config,
             "names (or clients, or types) the owner sends to another server (the router, a VPN's DNS): "
             "the query's route is marked before anything below could refuse the name"),
    Position("private", PrivateStage.from_config,
             "private reverse zones and special-use names answered here, never upstream; rebinding "
             "protection wraps everything after it, so it sees every upstream answer"),
    Position("policy", PolicyStage.from_config,
             "the owner's explicit rules before the lists: a rule's BLOCK, ALLOW, REDIRECT or FORWARD "
             "overrides whatever a list says, and ALLOW/FORWARD still pass through the cache"),
    Position("filter", FilterStage.from_config,
             "blocklists and allowlists before cache and forward, so a blocked name never costs an "
             "upstream query; wrapping them, so CNAME chains in answers are inspected"),
    Position("cache", CacheStage.from_config,
             "before forward: a cached answer saves an upstream round trip"),
    Position("forward", ForwardStage.from_config,
             "last: only questions nothing above could answer leave the box"),
)


async def _end(query: Query) -> Answer:
    query.note("chain", "no_answer", detail="no stage answered")
    return Answer(wire.SERVFAIL, Decision.SERVFAIL, ede=(wire.EDE_OTHER, "no stage answered"))


S = TypeVar("S")


class Chain:
    """Links the stages so each one's ``next`` is the following stage.

    ``shared`` is the state the stages were built with (:func:`build`), configured with them.
    """

    def __init__(self, stages: Sequence[Stage], shared: Shared | None = None):
        self.stages = list(stages)
        self.shared = shared
        nxt: Callable[[Query], Awaitable[Answer]] = _end
        for stage in reversed(self.stages):
            nxt = _link(stage, nxt)
        self.resolve = nxt

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def of(self, kind: type[S]) -> S:
        """The stage of class ``kind`` (typed: ``chain.of(FilterStage).set_index(...)``)."""
        for s in self.stages:
            if isinstance(s, kind):
                return s
        raise KeyError(kind.__name__)

    def configure(self, cfg: Options) -> None:
        """Apply ``cfg`` live: the shared state, then each stage with options of its own. Each
        reads only its own options, so one whose options did not change stays as it was."""
        if self.shared is not None:
            self.shared.configure(cfg)
        for stage in self.stages:
            if isinstance(stage, Configurable):
                stage.configure(cfg)


def build(cfg: Options, shared: Shared) -> Chain:
    """The chain as declared: every stage in ``STAGES`` order, made from ``cfg`` and ``shared``."""
    return Chain([position.build(cfg, shared) for position in STAGES], shared)


def _link(stage: Stage, nxt: Callable[[Query], Awaitable[Answer]]) -> Callable[[Query], Awaitable[Answer]]:
    resolve = stage.resolve

    def call(query: Query) -> Awaitable[Answer]:
        return resolve(query, nxt)

    return call
