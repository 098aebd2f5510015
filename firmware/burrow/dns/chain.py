"""The ordered stages a query passes through, declared once.

Each stage is ``async def resolve(query, next) -> Answer``: it answers, or delegates to
``next``. Order matters, and the reason for each position is written beside it:

    guard    first: refuse or limit before any work is spent, answer ANY/CHAOS locally
    local    local records and zones: the owner's own names win over rules and lists, so a home
             name is never blocked, rewritten or sent upstream
    conditional  conditional forwarding: names (or clients, or types) the owner sends to another
             server (the router, a VPN's DNS); marks the query's route before anything refuses it
    private  private reverse zones and special-use names answered here (never upstream), and
             rebinding protection around everything after it: it sees every upstream answer
    policy   the owner's explicit rules before the lists: a rule's BLOCK, ALLOW, REDIRECT or
             FORWARD overrides whatever a list says, and ALLOW/FORWARD still pass through cache
    filter   blocklists and allowlists; before cache+forward so a blocked name never costs
             an upstream query, and wrapping them so CNAME chains in answers are inspected
    cache    before forward: a cached answer saves an upstream round trip
    forward  last: only questions nothing above could answer leave the box
"""

from __future__ import annotations

from typing import Awaitable, Callable, Protocol

from . import wire
from .decision import Decision
from .message import Answer, Query


class Stage(Protocol):
    name: str

    async def resolve(self, query: Query, next: Callable[[Query], Awaitable[Answer]]) -> Answer: ...


async def _end(query: Query) -> Answer:
    query.note("chain", "no_answer", detail="no stage answered")
    return Answer(wire.SERVFAIL, Decision.SERVFAIL, ede=(wire.EDE_OTHER, "no stage answered"))


class Chain:
    """Links the stages so each one's ``next`` is the following stage."""

    def __init__(self, stages: list[Stage]):
        self.stages = stages
        nxt: Callable[[Query], Awaitable[Answer]] = _end
        for stage in reversed(stages):
            nxt = _link(stage, nxt)
        self.resolve = nxt

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)


def _link(stage: Stage, nxt: Callable[[Query], Awaitable[Answer]]) -> Callable[[Query], Awaitable[Answer]]:
    resolve = stage.resolve

    def call(query: Query) -> Awaitable[Answer]:
        return resolve(query, nxt)

    return call
