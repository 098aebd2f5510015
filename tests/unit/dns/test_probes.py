"""Setup-check probe names (dns/probes.py) and the local stage's recognition of them: an issued
name asked through the DNS is recorded with its client and answered NXDOMAIN without going on;
unknown and expired names are answered too but record nothing; every other name goes on as before
(the one suffix check is all it costs)."""

from __future__ import annotations

import asyncio
import re

import pytest

from burrow.dns import probes, wire
from burrow.dns.decision import Decision
from burrow.dns.explain import Explain
from burrow.dns.stages.local import LocalStage

from tests.support.dnsq import Next, make_query


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


def test_issued_names_are_random_under_the_reserved_suffix():
    p = probes.Probes()
    names = {p.issue().name for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert re.fullmatch(r"[0-9a-f]{20}\.check\.burrow\.test", name)
    assert len(p) == 20


def test_seen_records_the_first_client_and_counts_lookups():
    clock = Clock()
    p = probes.Probes(clock)
    probe = p.issue()
    assert p.status(probe.name).as_dict(clock())["seen"] is False
    clock.now += 5
    assert p.saw(probe.name, "192.168.1.40") is True
    assert p.saw(probe.name, "192.168.1.41") is True
    state = p.status(probe.name.upper() + ".").as_dict(clock())  # any case, trailing dot
    assert state == {"name": probe.name, "seen": True, "client": "192.168.1.40", "seen_at": clock.now,
                     "lookups": 2, "expires_in": int(probes.TTL - 5)}


def test_names_expire_and_the_number_kept_is_capped():
    clock = Clock()
    p = probes.Probes(clock)
    old = p.issue()
    clock.now += probes.TTL
    assert p.status(old.name) is None
    assert p.saw(old.name, "192.168.1.40") is False and p.unknown == 1
    first = [p.issue() for _ in range(probes.MAX_PENDING)]
    extra = p.issue()
    assert len(p) == probes.MAX_PENDING
    assert p.status(first[0].name) is None  # the oldest went
    assert p.status(extra.name) is not None and p.status(first[1].name) is not None


def run(stage, query, nxt):
    return asyncio.run(stage.resolve(query, nxt))


def test_local_stage_answers_and_records_an_issued_name():
    stage = LocalStage()
    probe = stage.probes.issue()
    nxt = Next()
    answer = run(stage, make_query(probe.name.upper(), "A", client="192.168.1.77"), nxt)
    assert answer.rcode == wire.NXDOMAIN and answer.decision is Decision.LOCAL
    assert answer.ttl is None  # never replayed by the fast path: the next lookup arrives too
    assert nxt.calls == []  # never forwarded
    state = stage.probes.status(probe.name)
    assert state.client == "192.168.1.77" and state.lookups == 1
    run(stage, make_query(probe.name, "AAAA", client="192.168.1.78"), nxt)
    assert stage.probes.status(probe.name).lookups == 2 and stage.probes.status(probe.name).client == "192.168.1.77"


def test_unknown_names_under_the_suffix_are_answered_but_record_nothing():
    stage = LocalStage()
    nxt = Next()
    query = make_query("0123456789abcdef0123.check.burrow.test", "A")
    answer = run(stage, query, nxt)
    assert answer.rcode == wire.NXDOMAIN and nxt.calls == [] and len(stage.probes) == 0
    assert stage.probes.unknown == 1
    assert [(e.stage, e.action) for e in query.trace] == [("local", "probe")]


@pytest.mark.parametrize("name", ["www.example.com", "check.burrow.test", "burrow.test",
                                  "xcheck.burrow.test", "check.burrow.test.example.com"])
def test_other_names_go_on_unchanged(name):
    stage = LocalStage()
    stage.probes.issue()
    nxt = Next()
    query = make_query(name, "A")
    answer = run(stage, query, nxt)
    assert nxt.calls == [query] and answer is nxt.answer and query.trace == []
    assert stage.probes.unknown == 0


def test_a_dry_run_records_nothing():
    stage = LocalStage()
    probe = stage.probes.issue()
    query = make_query(probe.name, "A")
    query.explain = Explain()
    answer = run(stage, query, Next())
    assert answer.rcode == wire.NXDOMAIN
    assert stage.probes.status(probe.name).seen_at is None
