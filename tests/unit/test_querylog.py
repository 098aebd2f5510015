"""QueryLogDB: batch writes, API-shaped reads with trace filters, retention by age and size."""

from __future__ import annotations

import sqlite3

import pytest

from burrow.dns.decision import Decision, QueryRecord, TraceEntry
from burrow.storage.querylog import (MIGRATIONS, SIZE_PRUNE_TARGET, QueryLogDB, iso_utc,
                                     qtype_name, row_from_record, row_to_dict)
from burrow.storage.settings import SchemaTooNewError

T0 = 1_763_800_000.0  # 2025-11-22T08:26:40Z


def record(domain="example.com", client="192.168.1.100", qtype=1, rcode=0,
           decision=Decision.RESOLVED, elapsed=0.005, upstream="1.1.1.1:53", trace=()):
    return QueryRecord(100.0, client, domain, qtype, rcode, decision, elapsed, upstream, trace)


BLOCKLIST = (TraceEntry("blocklist", "block", source="manager", detail="rule matched"),)
POLICY = (TraceEntry("policy", "BLOCK", rule="Block social media", source="policy_engine"),)
MIXED = (TraceEntry("policy", "ALLOW", rule="Kids", source="policy_engine"),
         TraceEntry("blocklist", "block", source="manager"))


@pytest.fixture
def db(tmp_path):
    db = QueryLogDB(tmp_path / "querylog.db")
    yield db
    db.close()


def test_schema_and_pragmas(db, tmp_path):
    conn = db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(queries)")}
    assert {"queries_ts", "queries_domain"} <= indexes


def test_reopen_is_idempotent_and_newer_schema_refused(tmp_path):
    path = tmp_path / "querylog.db"
    db = QueryLogDB(path)
    db.write([row_from_record(record(), T0)])
    db.close()
    db = QueryLogDB(path)
    assert db.count() == 1
    db.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(SchemaTooNewError):
        QueryLogDB(path)


def test_row_round_trip_to_seed_api_shape(db):
    db.write([row_from_record(record(decision=Decision.BLOCKED, qtype=28, trace=BLOCKLIST,
                                     elapsed=0.0052), T0)])
    items, total = db.fetch()
    assert total == 1
    assert items == [{
        "id": 1,
        "timestamp": "2025-11-22T08:26:40.000Z",
        "client_ip": "192.168.1.100",
        "domain": "example.com",
        "query_type": "AAAA",
        "response_code": 0,
        "blocked": True,
        "cached": False,
        "response_time_ms": 5.2,
        "upstream": "1.1.1.1:53",
        "decision": "blocked",
        "block_trace": [{"stage": "blocklist", "action": "block", "source": "manager",
                         "detail": "rule matched"}],
    }]


def test_block_trace_absent_without_trace_and_cached_flag(db):
    db.write([row_from_record(record(decision=Decision.STALE, upstream=""), T0)])
    (item,), _ = db.fetch()
    assert "block_trace" not in item
    assert item["cached"] is True and item["blocked"] is False
    assert item["decision"] == "stale"
    assert item["upstream"] == ""


def test_helpers():
    assert qtype_name(1) == "A" and qtype_name(65) == "HTTPS"
    assert qtype_name(65280) == "TYPE65280"
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    row = row_from_record(tuple(record(trace=(("policy", "BLOCK", "r", "", ""),))), T0)
    assert row_to_dict(row)["block_trace"] == [{"stage": "policy", "action": "BLOCK", "rule": "r"}]


def test_write_is_one_transaction(db):
    good = row_from_record(record(), T0)
    bad = good[:3] + (None,) + good[4:]  # qtype NOT NULL: fails mid-batch
    with pytest.raises(sqlite3.IntegrityError):
        db.write([good, good, bad, good])
    assert db.count() == 0
    assert not db.conn.in_transaction
    assert db.write([]) == 0
    assert db.write([good] * 3) == 3
    assert db.count() == 3


@pytest.fixture
def filled(db):
    rows = [
        row_from_record(record("ads.example.com", "10.0.0.1", decision=Decision.BLOCKED,
                               trace=BLOCKLIST), T0 + 1),
        row_from_record(record("facebook.com", "10.0.0.2", decision=Decision.BLOCKED,
                               trace=POLICY), T0 + 2),
        row_from_record(record("www.example.com", "10.0.0.1", decision=Decision.CACHED), T0 + 3),
        row_from_record(record("example.com", "10.0.0.2"), T0 + 4),
        row_from_record(record("notexample.com", "10.0.0.3", trace=MIXED,
                               decision=Decision.BLOCKED), T0 + 5),
        row_from_record(record("a_b.example.org", "10.0.0.3"), T0 + 6),
    ]
    db.write(rows)
    return db


def domains(result):
    items, total = result
    assert total >= len(items)
    return [i["domain"] for i in items]


def test_fetch_newest_first_with_paging(filled):
    items, total = filled.fetch(limit=2)
    assert total == 6
    assert [i["domain"] for i in items] == ["a_b.example.org", "notexample.com"]
    items, total = filled.fetch(limit=2, offset=4)
    assert [i["id"] for i in items] == [2, 1] and total == 6
    items, _ = filled.fetch(limit=10_000)  # clamped, not an error
    assert len(items) == 6


def test_fetch_filters(filled):
    assert domains(filled.fetch(domain="example.com")) == [
        "example.com", "www.example.com", "ads.example.com"]  # subdomains, not notexample.com
    assert domains(filled.fetch(domain="Example.COM.")) == domains(
        filled.fetch(domain="example.com"))
    assert domains(filled.fetch(domain="b.example.org")) == []  # "_" is not a LIKE wildcard
    assert domains(filled.fetch(client="10.0.0.1")) == ["www.example.com", "ads.example.com"]
    assert domains(filled.fetch(since=T0 + 3, until=T0 + 5)) == ["example.com", "www.example.com"]
    assert domains(filled.fetch(blocked=True)) == ["notexample.com", "facebook.com",
                                                   "ads.example.com"]
    assert filled.fetch(blocked=False)[1] == 3
    assert filled.fetch(client="10.0.0.1", blocked=True)[1] == 1


def test_fetch_trace_filters(filled):
    assert domains(filled.fetch(stage="policy")) == ["notexample.com", "facebook.com"]
    assert domains(filled.fetch(source="manager")) == ["notexample.com", "ads.example.com"]
    assert domains(filled.fetch(rule="Block social media")) == ["facebook.com"]
    assert domains(filled.fetch(action="BLOCK")) == ["facebook.com"]
    assert domains(filled.fetch(stage="policy", source="policy_engine")) == [
        "notexample.com", "facebook.com"]
    # All given trace fields must match the SAME entry: MIXED has a policy entry and a block
    # action, but not on one entry.
    assert domains(filled.fetch(stage="policy", action="block")) == []
    assert domains(filled.fetch(stage="blocklist", action="block")) == [
        "notexample.com", "ads.example.com"]
    assert filled.fetch(stage="nope") == ([], 0)
    assert domains(filled.fetch(stage="blocklist", client="10.0.0.1")) == ["ads.example.com"]


def test_top_domains_and_clients(db):
    rows = []
    for domain, n, decision in [("a.com", 5, Decision.RESOLVED), ("b.com", 3, Decision.CACHED),
                                ("ads.com", 4, Decision.BLOCKED), ("c.com", 1, Decision.RESOLVED)]:
        rows += [row_from_record(record(domain, f"10.0.0.{i % 2}", decision=decision), T0 + i)
                 for i in range(n)]
    rows.append(row_from_record(record("old.com"), T0 - 3600))
    db.write(rows)
    assert db.top_domains(limit=2) == [{"domain": "a.com", "queries": 5, "blocked": False},
                                       {"domain": "b.com", "queries": 3, "blocked": False}]
    assert db.top_domains(blocked=True) == [{"domain": "ads.com", "queries": 4, "blocked": True}]
    assert [d["domain"] for d in db.top_domains(limit=10, blocked=None)] == [
        "a.com", "ads.com", "b.com", "c.com", "old.com"]
    assert "old.com" not in [d["domain"] for d in db.top_domains(blocked=False, since=T0)]
    assert db.top_clients(since=T0) == [{"client_ip": "10.0.0.0", "queries": 8, "blocked": 2},
                                        {"client_ip": "10.0.0.1", "queries": 5, "blocked": 2}]
    assert len(db.top_clients(limit=1)) == 1


def test_minute_counts(db):
    minute = int(T0 // 60)
    db.write([row_from_record(record(decision=Decision.BLOCKED, elapsed=0.001), minute * 60 + 1),
              row_from_record(record(decision=Decision.BLOCKED, elapsed=0.003), minute * 60 + 59),
              row_from_record(record(decision=Decision.CACHED, elapsed=0.002), minute * 60 + 30),
              row_from_record(record(), (minute + 1) * 60),
              row_from_record(record(), (minute - 10) * 60)])
    rows = db.minute_counts(since=minute * 60)
    assert [r[:5] for r in rows] == [(minute, int(Decision.CACHED), 1, 0, 1),
                                     (minute, int(Decision.BLOCKED), 2, 2, 0),
                                     (minute + 1, int(Decision.RESOLVED), 1, 0, 0)]
    assert rows[1][5] == pytest.approx(4.0)


def test_prune_by_age(db):
    now = T0
    db.write([row_from_record(record(f"d{i}.com"), now - i * 3600) for i in range(0, 24 * 10)])
    result = db.prune(now=now, retention_days=7, max_bytes=10**9)
    assert result["deleted_age"] == 240 - (7 * 24 + 1)  # rows at exactly 7 days are kept
    assert result["deleted_size"] == 0
    oldest = db.conn.execute("SELECT MIN(ts) FROM queries").fetchone()[0]
    assert oldest == now - 7 * 86400
    assert db.prune(now=now, retention_days=7, max_bytes=10**9)["deleted_age"] == 0


def test_prune_by_size_deletes_oldest_and_shrinks_file(db, tmp_path):
    trace = (TraceEntry("blocklist", "block", source="manager", detail="x" * 200),)
    for batch in range(10):
        db.write([row_from_record(record(f"host{batch}-{i}.example.com", trace=trace,
                                         decision=Decision.BLOCKED), T0 + batch * 1000 + i)
                  for i in range(1000)])
    db.checkpoint()
    before = db.file_bytes()
    assert before > 2_000_000
    limit = 1_000_000
    result = db.prune(now=T0 + 20_000, retention_days=7, max_bytes=limit)
    assert result["deleted_age"] == 0
    assert result["deleted_size"] > 0
    assert db.used_bytes() <= limit
    assert db.file_bytes() <= limit  # incremental_vacuum gave the pages back
    assert (tmp_path / "querylog.db").stat().st_size <= limit
    remaining = db.count()
    assert remaining == 10_000 - result["deleted_size"]
    # It aims a little under the limit (SIZE_PRUNE_TARGET), not far under it.
    bytes_per_row = before / 10_000
    assert remaining >= 0.8 * SIZE_PRUNE_TARGET * limit / bytes_per_row
    # The newest rows survive, the oldest are gone.
    newest_ts = db.conn.execute("SELECT MAX(ts), MIN(id) FROM queries").fetchone()
    assert newest_ts[0] == T0 + 9 * 1000 + 999
    assert newest_ts[1] == result["deleted_size"] + 1
    assert db.integrity_check() == "ok"
