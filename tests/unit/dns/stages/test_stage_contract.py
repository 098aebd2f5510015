"""Every stage keeps the contract ``resolve(query, next)``: it answers (an Answer, and ``next``
never called) or it passes on (``next`` called with the query, and its answer returned as it
came). Each declared stage, built as the chain builds it (dns/chain.py), shows both here; the
tests run over the declaration, so a stage added to it without a case below fails.

Two stages cannot show one side, by their position: ``conditional`` never answers (it marks
the route; the forward stage below answers), and ``forward`` never passes on (it is last).
Those are stated with the reason, and the reason is checked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import NamedTuple

import pytest

from burrow import config
from burrow.dns import chain, wire
from burrow.dns.decision import Decision
from burrow.dns.message import Answer, Query
from burrow.dns.shared import Shared
from burrow.policy import PolicyRule
from burrow.zones.localdata import LocalData
from burrow.zones.records import Record

from tests.support.dnsq import Next, make_query
from tests.support.responder import Responder

POSITIONS = {position.name: position for position in chain.STAGES}
NAMES = list(POSITIONS)


class Never(NamedTuple):
    why: str
    check: Callable[[], None]  # asserts the reason holds


class Listed:
    """An allow or deny list holding ``names``."""

    def __init__(self, *names):
        self.names = set(names)

    def match(self, name, groups=None):
        return name if name in self.names else None


# ---- what each stage is given before each side of the contract: (stage, shared) -> the query ----

def local_records(stage, shared):
    stage.set_data(LocalData((), [Record("nas.home", "A", 300, "192.168.1.2")]))


def block_rule(stage, shared):
    stage.set_rules([PolicyRule(1, "no games", 'Domain == "games.test"', "BLOCK")])


def deny_ads(stage, shared):
    shared.deny_list = Listed("ads.example")


def cached(stage, shared):
    query = make_query("cached.example")
    stage.cache.put(stage.key(query), Answer(wire.NOERROR, Decision.RESOLVED, ttl=300), 300, time.monotonic())
    return query


def routes_conditionally(stage, shared):
    class Rule:  # forwarding.ForwardRule as the stage reads it
        name, route, settings = "Router", "cf:Router", None
        servers, upstreams = (("192.168.1.1", 53),), ("192.168.1.1",)

    class Rules:
        def lookup(self, name, client_ip, qtype):
            return (Rule, False) if name.endswith(".lan") else (None, False)

    stage.rules = Rules()


def conditional_never_answers():
    # it sits above forward, which asks the route it marked...
    assert NAMES.index("conditional") < NAMES.index("forward")
    # ...and a question a rule takes is still passed on, with its route marked
    query, answer, nxt = run("conditional", routes_conditionally, lambda: make_query("nas.lan"))
    assert nxt.calls == [query] and answer is nxt.answer and query.route == "cf:Router"


def forward_never_passes_on():
    assert NAMES[-1] == "forward"  # last: what would come after it is the chain's own end


class Case(NamedTuple):
    arrange: Callable | None  # (stage, shared) -> None, or the Query to ask when ``answered`` is None
    answered: Callable[[], Query] | Never | None  # the question it answers itself...
    decision: Decision | None  # ...with this decision
    passed_on: Callable[[], Query] | Never  # a question it passes on


def plain():
    return make_query("www.example.com")


CASES: dict[str, Case] = {
    "guard": Case(None, lambda: make_query("version.bind", "TXT", rdclass="CH"), Decision.LOCAL, plain),
    "local": Case(local_records, lambda: make_query("nas.home"), Decision.LOCAL, plain),
    "conditional": Case(routes_conditionally,
                        Never("it only marks the query's route; the forward stage below answers",
                              conditional_never_answers), None, plain),
    "private": Case(None, lambda: make_query("nas.lan"), Decision.LOCAL, plain),
    "policy": Case(block_rule, lambda: make_query("games.test"), Decision.BLOCKED, plain),
    "filter": Case(deny_ads, lambda: make_query("ads.example"), Decision.BLOCKED, plain),
    "cache": Case(cached, None, Decision.CACHED, plain),  # answered: the question the arrangement cached
    "forward": Case(None, plain, Decision.RESOLVED,  # by the loopback upstream
                    Never("it is the last stage: there is nothing to pass on to", forward_never_passes_on)),
}


def run(name, arrange, question):
    """Build the stage ``name`` as the chain does and ask it ``question()`` once:
    (query, answer, next). Its upstream is a loopback responder."""
    async def scenario():
        async with Responder() as upstream:
            cfg = config.load(None, environ={}).with_overrides(
                {"upstream_dns_servers": [f"127.0.0.1:{upstream.port}"], "upstream.timeout": 1.0})
            shared = Shared.from_config(cfg)
            stage = POSITIONS[name].build(cfg, shared)
            made = arrange(stage, shared) if arrange is not None else None
            query = question() if question is not None else made
            nxt = Next()
            return query, await stage.resolve(query, nxt), nxt

    return asyncio.run(scenario())


def case_of(name):
    case = CASES.get(name)
    assert case is not None, f"the declared stage {name!r} has no contract case in {__name__}"
    return case


@pytest.mark.parametrize("name", NAMES)
def test_the_stage_answers_without_calling_next(name):
    case = case_of(name)
    if isinstance(case.answered, Never):
        case.answered.check()
        return
    query, answer, nxt = run(name, case.arrange, case.answered)
    assert nxt.calls == [], f"{name} passed the question on instead of answering it"
    assert isinstance(answer, Answer) and answer.decision is case.decision


@pytest.mark.parametrize("name", NAMES)
def test_the_stage_passes_on_and_returns_what_next_answered(name):
    case = case_of(name)
    if isinstance(case.passed_on, Never):
        case.passed_on.check()
        return
    query, answer, nxt = run(name, case.arrange, case.passed_on)
    assert nxt.calls == [query], f"{name} did not pass the question on"
    assert answer is nxt.answer


def test_only_the_stages_the_module_doc_names_are_excused():
    excused = {name: [side for side in ("answered", "passed_on") if isinstance(getattr(CASES[name], side), Never)]
               for name in CASES}
    assert {name: sides for name, sides in excused.items() if sides} == {
        "conditional": ["answered"], "forward": ["passed_on"]}
    assert set(CASES) == set(NAMES)  # no case left for a stage no longer declared
