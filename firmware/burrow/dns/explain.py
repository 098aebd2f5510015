"""Explain: the real chain run as a dry run, for ``GET /api/blocklists/check``.

The question is built as a client's would be and sent through ``Chain.resolve`` with
``Query.explain`` set, so every stage decides exactly as it does for a client (there is no
second copy of the decision order to drift from the chain) and skips what has effects:

- guard: no rate-limit token is spent (the question is built ``admitted=True``);
- local: a round-robin set is not rotated; conditional and policy name the route they chose
  (``Explain.route``) instead of making an upstream pool for it;
- cache: read without counting a hit or a miss or moving the entry, never written, no prefetch;
- forward: nothing is sent; it notes where the question would go (``Explain.upstream``) and
  answers an empty placeholder, so the stages above it decide as for a name sent upstream;
- no stage counts the query or publishes an event (a threat feed's security event).

The DNS server is not involved, so nothing reaches the query log, the statistics or the fast
path. What is decided on an upstream's answer (the filter's CNAME inspection, rebinding
protection) can be decided only on a cached answer; without one, the checks that would look at
the upstream's answer are listed in ``Explain.pending``.

Besides the decision, an explanation lists every list, rule or record that matches the question
whether it decided or not: each stage with such data has ``matching(query) -> list[dict]``,
a pure look-up, and the filter adds what matched a CNAME target during the run.
"""

from __future__ import annotations

import logging
import struct
import time
from typing import Any, NamedTuple

from . import wire
from .chain import Chain
from .decision import Decision, TraceEntry
from .message import Answer, Query, silent

log = logging.getLogger(__name__)

# Trace entries of these stages carry out what was decided above them (or found nothing to
# decide): the deciding entry is the last one of another stage, when there is one.
_CARRYING_OUT = frozenset({"cache", "forward"})


class Explain:
    """What a dry run collects beside the trace, shared by a question and its sub-questions
    (a local CNAME's target)."""

    __slots__ = ("route", "upstream", "pending", "matches")

    def __init__(self) -> None:
        self.route: tuple[str, str, list[str]] | None = None  # (kind, rule, servers) a stage routed to
        self.upstream: dict[str, Any] | None = None  # where the question would be sent (the forward stage)
        self.pending: list[str] = []  # checks that would run on the upstream's answer
        self.matches: list[dict[str, Any]] = []  # found during the run (a CNAME target's list entry)

    def awaits(self, answer: Answer, check: str) -> None:
        """Note ``check`` as pending when ``answer`` is the forward stage's placeholder."""
        if self.upstream is not None and not answer.an and check not in self.pending:
            self.pending.append(check)


class DryRun(NamedTuple):
    query: Query  # its trace is the decision's story
    answer: Answer  # what would be sent (a silent one: nothing); with ``explain.upstream``: a placeholder
    explain: Explain
    matches: list[dict[str, Any]]

    @property
    def dropped(self) -> bool:
        return silent(self.answer)

    @property
    def deciding(self) -> TraceEntry | None:
        """The trace entry that decided: the last one of a stage that does not only carry out
        what others decided (cache, forward), or else the last one."""
        trace = self.query.trace
        for entry in reversed(trace):
            if entry.stage not in _CARRYING_OUT:
                return entry
        return trace[-1] if trace else None


def question(name: str, qtype: int, client_ip: str, view: str) -> Query:
    """The question a client at ``client_ip`` would send for ``name`` (RD set, no EDNS),
    marked for a dry run. Raises wire.WireError or UnicodeError for a name no packet can hold."""
    qname = wire.text_to_name(name)
    packet = wire.header(0, wire.RD, 1) + qname + struct.pack("!HH", qtype, wire.CLASS_IN)
    query = Query(wire.parse_query(packet), packet, client_ip, 0, "explain", time.monotonic(), view,
                  admitted=True)
    query.explain = Explain()
    return query


async def dry_run(chain: Chain, query: Query) -> DryRun:
    """Run ``query`` (from :func:`question`) through the chain, and ask each stage what matches."""
    try:
        answer = await chain.resolve(query)
    except Exception as e:  # as the server does: a client would get SERVFAIL (dns/server.py)
        log.exception("explaining %s failed", query.name)
        query.note("chain", "error", detail=type(e).__name__)
        answer = Answer(wire.SERVFAIL, Decision.SERVFAIL)
    explain = query.explain
    assert explain is not None  # question() made it a dry run
    matches: list[dict[str, Any]] = []
    for stage in chain.stages:
        matching = getattr(stage, "matching", None)
        if matching is not None:
            matches += matching(query)
    matches += [m for m in explain.matches if m not in matches]
    return DryRun(query, answer, explain, matches)
