"""QueryFilter: one definition of the query-log filter, as SQL and as a predicate on rows in
memory. The agreement test writes rows to a real log and asks both forms about the same rows."""

from __future__ import annotations

import pytest

from burrow.dns.decision import Decision, QueryRecord, TraceEntry
from burrow.storage.queryfilter import QueryFilter
from burrow.storage.querylog import QueryLogDB, row_from_record

T0 = 1_763_800_000.0

BLOCKLIST = (TraceEntry("blocklist", "block", source="manager", detail="rule matched"),)
POLICY = (TraceEntry("policy", "BLOCK", rule="Block social media", source="policy_engine"),)
MIXED = (TraceEntry("policy", "ALLOW", rule="Kids", source="policy_engine"),
         TraceEntry("blocklist", "block", source="manager"))


def row(row_id, domain, client="10.0.0.1", decision=Decision.RESOLVED, trace=(), ts=None, qtype=1):
    record = QueryRecord(0.0, client, domain, qtype, 0, decision, 0.003, "", trace)
    return (row_id,) + row_from_record(record, T0 + row_id if ts is None else ts)


# Names chosen where a suffix, an escape or a case rule could go wrong; times a few
# microseconds apart, finer than the API's milliseconds.
ROWS = [
    row(1, "example.com"),
    row(2, "www.example.com", "10.0.0.2", Decision.BLOCKED, BLOCKLIST),
    row(3, "notexample.com", decision=Decision.BLOCKED, trace=MIXED),
    row(4, "a_b.example.org", "10.0.0.3"),
    row(5, "axb.example.org", "10.0.0.3", Decision.CACHED, qtype=28),
    row(6, "WWW.Example.COM", decision=Decision.BLOCKED, trace=POLICY),  # written by hand, not lowered
    row(7, "example.com.evil", "10.0.0.2"),
    row(8, "deep.www.example.com", decision=Decision.BLOCKED, trace=POLICY, ts=T0 + 8.0005),
    row(9, "xn--bcher-kva.example", "fe80::1", ts=T0 + 8.000502, qtype=65280),
    row(10, "com", ts=T0 + 8.000504),
]

FILTERS = [
    QueryFilter(),
    QueryFilter(domain="example.com"), QueryFilter(domain="Example.COM."), QueryFilter(domain="com"),
    QueryFilter(domain="b.example.org"), QueryFilter(domain="a_b.example.org"),
    QueryFilter(domain="_b.example.org"), QueryFilter(domain="%.example.org"),
    QueryFilter(client="10.0.0.2"), QueryFilter(client="fe80::1"), QueryFilter(client="10.0.0"),
    QueryFilter(blocked=True), QueryFilter(blocked=False),
    QueryFilter(since=T0 + 8.0005), QueryFilter(since=T0 + 8.000501), QueryFilter(until=T0 + 8.000502),
    QueryFilter(since=T0 + 3, until=T0 + 8.0005), QueryFilter(until=T0 + 8.0004),
    QueryFilter(stage="policy"), QueryFilter(action="block"), QueryFilter(action="BLOCK"),
    QueryFilter(rule="Block social media"), QueryFilter(source="manager"),
    QueryFilter(stage="policy", action="block"),  # on two different entries of MIXED: no
    QueryFilter(stage="policy", source="policy_engine"),
    QueryFilter(stage="blocklist", client="10.0.0.2"),
    QueryFilter(qtype=1), QueryFilter(qtype=28), QueryFilter(qtype=65280), QueryFilter(qtype=16),
    QueryFilter(qtype=28, domain="example.org"), QueryFilter(qtype=1, blocked=True, stage="policy"),
    QueryFilter(below_id=5), QueryFilter(below_id=9, blocked=True, domain="example.com"),
    QueryFilter(domain="example.com", since=T0 + 2, until=T0 + 9, blocked=True, stage="policy"),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    db = QueryLogDB(tmp_path_factory.mktemp("log") / "querylog.db")
    db.write(ROWS)
    yield db
    db.close()


@pytest.mark.parametrize("match", FILTERS, ids=repr)
def test_sql_and_predicate_select_the_same_rows(db, match):
    where, params = match.sql()
    in_sql = [r[0] for r in db.conn.execute(f"SELECT id FROM queries {where} ORDER BY id", params)]
    in_memory = [r[0] for r in ROWS if match.matches(r)]
    assert in_sql == in_memory


def test_the_filters_select_what_the_api_documents(db):
    def ids(**kw):
        return [r[0] for r in ROWS if QueryFilter(**kw).matches(r)]

    assert ids(domain="example.com") == [1, 2, 8]  # the name and below; case as stored
    assert ids(domain="a_b.example.org") == [4] and ids(domain="_b.example.org") == []
    assert ids(stage="policy", action="block") == []
    assert ids(action="block") == [2, 3]
    assert ids(until=T0 + 8.000502) == [1, 2, 3, 4, 5, 6, 7, 8]  # until is exclusive
    assert ids(since=T0 + 8.000501) == [9, 10]
    assert ids(below_id=3) == [1, 2]
    assert ids(qtype=28) == [5] and ids(qtype=65280) == [9] and ids(qtype=16) == []
    assert len(ids(qtype=1)) == len(ROWS) - 2
    assert not QueryFilter(since=T0).selective and not QueryFilter(below_id=3).selective
    assert QueryFilter(blocked=False).selective and QueryFilter(rule="x").selective
    assert QueryFilter(qtype=1).selective
