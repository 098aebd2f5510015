"""QueryLogDB: batch writes, API-shaped reads with trace filters, retention by age and size."""

from __future__ import annotations

import sqlite3

import pytest

from burrow.dns.decision import Decision, QueryRecord, TraceEntry
import burrow.storage.querylog as querylog
from burrow.storage.querylog import (MIGRATIONS, SIZE_PRUNE_TARGET, QueryLogDB, decode_block,
                                     encode_block, iso_utc, qtype_name, row_from_record,
                                     row_to_dict)
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
    assert "queries_ts" in indexes and "queries_domain" not in indexes  # see MIGRATIONS 2
    # The archive beside it: rollback journal (no -wal/-shm on flash), FULL, no per-row index.
    assert db.archive_path == str(tmp_path / "querylog-archive.db")
    archive = db.archive
    assert archive.execute("PRAGMA journal_mode").fetchone()[0] == "truncate"
    assert archive.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert archive.execute("PRAGMA secure_delete").fetchone()[0] == 0  # freed pages not rewritten
    assert archive.execute("PRAGMA index_list(blocks)").fetchall() == []


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


def test_query_types(db):
    rows = [row_from_record(record("a.com", qtype=qtype), T0 + i)
            for i, qtype in enumerate([1, 1, 1, 28, 28, 65, 15])]
    rows.append(row_from_record(record("old.com", qtype=16), T0 - 3600))
    rows.append(row_from_record(record("odd.com", qtype=65280), T0 + 9))
    db.write(rows)
    assert db.query_types(since=T0) == [{"type": "A", "queries": 3}, {"type": "AAAA", "queries": 2},
                                        {"type": "HTTPS", "queries": 1}, {"type": "MX", "queries": 1},
                                        {"type": "TYPE65280", "queries": 1}]
    assert {"type": "TXT", "queries": 1} in db.query_types()  # no since: the whole log


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


# ---- two tiers: the hot log and the compressed archive ----------------------------------------

def rows_at(n, start=T0, step=0.5, prefix="q"):
    """n varied rows, timestamps on whole milliseconds (what the archive keeps)."""
    kinds = [(Decision.BLOCKED, BLOCKLIST), (Decision.BLOCKED, POLICY), (Decision.CACHED, ()),
             (Decision.RESOLVED, MIXED), (Decision.RESOLVED, ())]
    out = []
    for i in range(n):
        decision, trace = kinds[i % len(kinds)]
        out.append(row_from_record(record(f"{prefix}{i % 7}.example.com" if i % 3 else "example.com",
                                          f"10.0.0.{i % 4}", qtype=(1, 28)[i % 2],
                                          decision=decision, trace=trace,
                                          elapsed=(i % 9) * 0.001 + 0.000123), start + i * step))
    return out


def test_block_round_trip_keeps_every_field():
    rows = [(i + 40, *row) for i, row in enumerate(rows_at(300))]
    rows.append((400, T0 + 1000.25, "::1", "é.example", 65280, 2, int(Decision.SERVFAIL), 0, 0,
                 0.0, "", None))
    data = encode_block(rows)
    # Response times come back to the microsecond (what the API shows), the rest exactly.
    assert decode_block(data) == [(*r[:9], round(r[9], 3), *r[10:]) for r in rows]
    assert len(data) * 10 < len(repr(rows))  # repeated names and traces compress
    with pytest.raises(ValueError):
        decode_block(data, fmt=99)


def test_persist_archives_once_then_trims_the_hot_tier(tmp_path):
    db = QueryLogDB(tmp_path / "querylog.db", ram_dir=tmp_path / "ram", hot_seconds=600)
    try:
        assert db.hot_path == str(tmp_path / "ram" / "querylog.db")
        db.write(rows_at(100))  # T0 .. T0+49.5
        assert db.persist(now=T0 + 100) == {"archived": 100, "blocks": 1, "trimmed": 0}
        assert db.persist(now=T0 + 100)["archived"] == 0  # nothing new: nothing written
        assert db.archive.execute("SELECT first_ts, last_ts, row_count, min_id, max_id "
                                  "FROM blocks").fetchall() == [(T0, T0 + 49.5, 100, 1, 100)]
        # Ten minutes later the archived rows older than hot_seconds leave the RAM tier.
        db.write(rows_at(10, start=T0 + 700))
        assert db.persist(now=T0 + 620) == {"archived": 10, "blocks": 1, "trimmed": 40}
        assert db.conn.execute("SELECT MIN(id), COUNT(*) FROM queries").fetchone() == (41, 70)
        assert db.count() == 110
        assert [i["id"] for i in db.fetch(limit=1000)[0]] == list(range(110, 0, -1))
    finally:
        db.close()


def test_a_backlog_is_cut_into_bounded_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(querylog, "BLOCK_MAX_ROWS", 64)
    db = QueryLogDB(tmp_path / "querylog.db")
    try:
        db.write(rows_at(200))
        assert db.persist(now=T0)["blocks"] == 4
        assert db.archive.execute("SELECT SUM(row_count) FROM blocks").fetchone()[0] == 200
    finally:
        db.close()


@pytest.fixture
def tiers(tmp_path):
    """The same 400 rows in a single hot tier (reference) and split across the two tiers:
    ids 1-200 only in the archive, 201-300 in both (archived, still hot), 301-400 only hot."""
    rows = rows_at(400)
    (tmp_path / "ref").mkdir()
    reference = QueryLogDB(tmp_path / "ref" / "querylog.db")
    reference.write(rows)
    split = QueryLogDB(tmp_path / "querylog.db", ram_dir=tmp_path / "ram", hot_seconds=100)
    split.write(rows[:150])
    split.persist(now=T0)  # block 1: ids 1-150, nothing trimmed yet
    split.write(rows[150:300])
    split.persist(now=T0 + 200)  # block 2: ids 151-300; trims ids < T0+100's first id (201)
    split.write(rows[300:])
    assert split.conn.execute("SELECT MIN(id), MAX(id) FROM queries").fetchone() == (201, 400)
    assert split.archive.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == 2
    yield reference, split
    reference.close()
    split.close()


FETCHES = [
    {}, {"limit": 5}, {"limit": 30, "offset": 190}, {"limit": 50, "offset": 230},
    {"limit": 1000, "offset": 0}, {"limit": 10, "offset": 395}, {"offset": 500},
    {"domain": "example.com", "limit": 1000}, {"domain": "q3.example.com", "limit": 7, "offset": 20},
    {"client": "10.0.0.1", "blocked": True}, {"blocked": False, "limit": 1000},
    {"since": T0 + 10, "until": T0 + 160.5, "limit": 1000},
    {"since": T0 + 74.5, "until": T0 + 125}, {"since": T0 + 74.5, "limit": 3, "offset": 40},
    {"stage": "policy", "limit": 1000}, {"stage": "policy", "action": "block"},
    {"source": "manager", "client": "10.0.0.3", "limit": 1000},
    {"rule": "Block social media", "since": T0 + 50, "limit": 1000},
    # below_id: the cursor of a newest-first scan, in the hot tier, in the overlap and in the
    # archive only (the archive's floor moves down to it).
    {"below_id": 350, "limit": 30}, {"below_id": 250, "limit": 1000}, {"below_id": 120, "limit": 1000},
    {"below_id": 175, "limit": 20, "offset": 10, "blocked": True}, {"below_id": 1},
]


@pytest.mark.parametrize("kwargs", FETCHES)
def test_reads_union_both_tiers_like_one_log(tiers, kwargs):
    reference, split = tiers
    assert split.fetch(**kwargs) == reference.fetch(**kwargs)
    assert not split.last_scan_capped


def test_aggregates_union_both_tiers(tiers):
    reference, split = tiers
    assert split.count() == reference.count() == 400
    for kwargs in ({}, {"limit": 3, "blocked": True}, {"blocked": None, "since": T0 + 120}):
        assert split.top_domains(**kwargs) == reference.top_domains(**kwargs)
    for kwargs in ({}, {"limit": 2, "since": T0 + 99.5}):
        assert split.top_clients(**kwargs) == reference.top_clients(**kwargs)
    for since in (None, T0 + 120):
        assert split.query_types(since) == reference.query_types(since)
    for since in (T0 - 60, T0 + 61, T0 + 180):
        got, want = split.minute_counts(since), reference.minute_counts(since)
        assert [r[:5] for r in got] == [r[:5] for r in want]
        assert [r[5] for r in got] == pytest.approx([r[5] for r in want])


def test_filtered_totals_over_the_archive_are_capped(tiers, monkeypatch):
    reference, split = tiers
    monkeypatch.setattr(querylog, "ARCHIVE_SCAN_MAX_ROWS", 40)
    items, total = split.fetch(blocked=True, limit=1000)
    # The hot tier (ids 201-400), then the newest archive block (its ids 151-200: the rest of
    # it is read from the hot tier), then the cap stops the scan before block 1 (ids 1-150).
    assert split.last_scan_capped
    assert [i["id"] for i in items] == [i["id"] for i in reference.fetch(blocked=True, limit=1000)[0]
                                        if i["id"] > 150]
    assert total == len(items)
    # Unfiltered totals come from block counts: never capped.
    assert split.fetch(limit=1)[1] == 400 and not split.last_scan_capped


def test_reboot_loses_only_the_unarchived_rows_and_ids_go_on(tmp_path):
    ram = tmp_path / "ram"
    db = QueryLogDB(tmp_path / "querylog.db", ram_dir=ram)
    db.write(rows_at(50))
    db.persist(now=T0)
    db.write(rows_at(5, start=T0 + 100, prefix="late"))  # flushed, not yet persisted
    db.close()
    # A process restart keeps the RAM tier: everything is there.
    db = QueryLogDB(tmp_path / "querylog.db", ram_dir=ram)
    assert db.count() == 55
    db.close()
    # A reboot empties the tmpfs: the archive still has every persisted row.
    for f in ram.iterdir():
        f.unlink()
    db = QueryLogDB(tmp_path / "querylog.db", ram_dir=ram)
    try:
        assert db.count() == 50
        db.write(rows_at(3, start=T0 + 200, prefix="new"))
        items, total = db.fetch(limit=1000)
        assert total == 53
        assert [i["id"] for i in items] == list(range(53, 0, -1))  # no id reused
        assert items[0]["domain"] == "new2.example.com"
    finally:
        db.close()


def test_a_hot_file_left_in_the_data_dir_is_folded_into_the_archive(tmp_path):
    db = QueryLogDB(tmp_path / "querylog.db")  # no RAM dir: the hot file is in the data dir
    db.write(rows_at(20))
    db.persist(now=T0)
    db.write(rows_at(4, start=T0 + 50, prefix="x"))
    db.close()
    db = QueryLogDB(tmp_path / "querylog.db", ram_dir=tmp_path / "ram")
    try:
        assert not (tmp_path / "querylog.db").exists()
        assert db.count() == 24
        assert [i["id"] for i in db.fetch(limit=100)[0]] == list(range(24, 0, -1))
        db.write(rows_at(1, start=T0 + 60))
        assert db.fetch(limit=1)[0][0]["id"] == 25
    finally:
        db.close()


def test_prune_by_age_across_tiers_drops_whole_archive_blocks(tmp_path):
    day = 86400.0
    db = QueryLogDB(tmp_path / "querylog.db", hot_seconds=0)
    try:
        for d in range(10):  # one block a day, ten days back, 24 rows each
            db.write(rows_at(24, start=T0 - (10 - d) * day, step=3600))
            db.persist(now=T0)
        db.write(rows_at(24, start=T0 - day, step=3600, prefix="hot"))  # hot only
        assert db.count() == 264
        result = db.prune(now=T0, retention_days=7, max_bytes=10**9)
        # Blocks whose newest row is more than 7 days old (days -10, -9, -8: the last ends at
        # -8 d + 23 h) go whole; nothing hot is that old.
        assert result["deleted_age"] == 3 * 24
        assert result["deleted_size"] == 0
        assert db.count() == 264 - 72
        assert db.fetch(limit=1, since=0, until=T0 - 7 * day - 3600)[1] == 0
        # The next day's expired block waits for a batch (ARCHIVE_AGE_BATCH) ...
        assert db.prune(now=T0 + day, retention_days=7, max_bytes=10**9)["deleted_age"] == 0
        # ... and goes once it has been expired for that long.
        later = T0 + day + querylog.ARCHIVE_AGE_BATCH
        assert db.prune(now=later, retention_days=7, max_bytes=10**9)["deleted_age"] == 24
        assert db.integrity_check() == "ok"
    finally:
        db.close()


def test_prune_by_size_across_tiers_drops_oldest_blocks_first(tmp_path):
    db = QueryLogDB(tmp_path / "querylog.db", ram_dir=tmp_path / "ram", hot_seconds=0)
    try:
        trace = (TraceEntry("blocklist", "block", source="manager", detail="x" * 200),)
        for batch in range(40):  # 40 blocks of poorly compressible rows
            db.write([row_from_record(record(f"h{batch}-{i}-{i * 7919 % 10007}.example.com",
                                             f"10.{batch}.{i % 250}.{i % 7}", trace=trace,
                                             decision=Decision.BLOCKED, elapsed=i * 1e-6),
                                      T0 + batch * 1000 + i) for i in range(500)])
            db.persist(now=T0 + 10**6)
        db.write(rows_at(50, start=T0 + 50_000, prefix="hot"))
        used = db.used_bytes()
        limit = used // 2
        result = db.prune(now=T0 + 50_000, retention_days=7, max_bytes=limit)
        assert result["deleted_age"] == 0 and result["deleted_size"] > 0
        assert db.used_bytes() <= limit and result["bytes"] <= limit
        assert result["deleted_size"] % 500 == 0  # whole blocks
        blocks = db.archive.execute("SELECT MIN(min_id), COUNT(*) FROM blocks").fetchone()
        assert blocks[0] == result["deleted_size"] + 1  # the oldest went
        assert db.count() == 40 * 500 + 50 - result["deleted_size"]
        assert db.fetch(limit=1)[0][0]["domain"] == "hot0.example.com"  # the newest, hot row
        assert db.conn.execute("SELECT COUNT(*) FROM queries").fetchone()[0] == 50  # hot kept
        assert db.integrity_check() == "ok"
    finally:
        db.close()


PERSIST_CHILD = """
import sys
from burrow.storage.querylog import QueryLogDB
db = QueryLogDB(sys.argv[1], ram_dir=sys.argv[2], hot_seconds=0)
run, per_batch = sys.argv[3], int(sys.argv[4])
batch = 0
while True:
    db.write([(1_000_000.0 + batch, "10.0.0.1", f"{run}.{batch}.{i}.example", 1, 0, 1, 0, 0, 1.5,
               "1.1.1.1:53", None) for i in range(per_batch)])
    print(batch, flush=True)
    db.persist(now=2_000_000.0)  # archives the batch, then trims it from the RAM tier
    batch += 1
"""


def test_sigkill_during_persist_keeps_both_files_and_every_row_once(tmp_path):
    """kill -9 at several moments of write/persist/trim cycles: both files pass integrity_check,
    every row of every batch whose write returned is read exactly once, none is torn."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "persister.py"
    script.write_text(PERSIST_CHILD)
    path, ram = tmp_path / "querylog.db", tmp_path / "ram"
    per_batch = 400
    printed: dict[str, list[int]] = {}
    for run in ("r0", "r1", "r2", "r3"):
        child = subprocess.Popen([sys.executable, str(script), str(path), str(ram), run,
                                  str(per_batch)], stdout=subprocess.PIPE, text=True)
        got = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < 8 and time.monotonic() < deadline:
                line = child.stdout.readline()
                if not line:
                    break
                got.append(int(line))
            assert len(got) >= 8, "persister child did not make progress"
            time.sleep(0.001 * int(run[1:]))  # land at a different point of the cycle
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
            got += [int(x) for x in child.stdout.read().split()]
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        printed[run] = got

        assert integrity_ok(path.parent / "querylog-archive.db")
        assert integrity_ok(ram / "querylog.db")
        db = QueryLogDB(path, ram_dir=ram, hot_seconds=0)
        try:
            assert db.integrity_check() == "ok"
            total = db.fetch(limit=1)[1]
            everything = []
            for offset in range(0, total, 1000):
                everything += db.fetch(limit=1000, offset=offset)[0]
            assert len(everything) == total == db.count()
            ids = [i["id"] for i in everything]
            assert len(set(ids)) == len(ids)  # no row in both tiers' reads
            names = [i["domain"] for i in everything]
            assert len(set(names)) == len(names)  # no row written twice
            per: dict[tuple[str, int], int] = {}
            for name in names:
                r, b, _i, _ = name.split(".", 3)
                per[(r, int(b))] = per.get((r, int(b)), 0) + 1
            assert all(n == per_batch for n in per.values()), "a batch was torn"
            for r, batches in printed.items():
                stored = {b for rr, b in per if rr == r}
                # Every batch whose write returned is there; the only other one allowed is the
                # batch committed in the instant between write() returning and the print.
                assert set(batches) <= stored
                assert stored - set(batches) <= {max(batches) + 1}
        finally:
            db.close()


def integrity_ok(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_trace_json_is_the_standard_encoding_for_awkward_text():
    # ujson encodes traces on the hot path: it must write what json.dumps writes, byte for byte.
    import json

    from burrow.dns.decision import TraceEntry
    from burrow.storage.querylog import _trace_json

    traces = [
        (TraceEntry("blocklist", "block", "My list/é", "manager", 'exact a.b "q" \\ /re/ \x01 \u2028 😀'),),
        (TraceEntry("cache", "hit", "", "response_cache", "fast path"), TraceEntry("x", "y")),
        (TraceEntry("policy", "BLOCK", "rule <1>", "", "\t\n&'"),),
    ]
    for trace in traces:
        expected = json.dumps([e.as_dict() for e in trace], separators=(",", ":"))
        assert _trace_json.__wrapped__(trace) == expected


def test_row_from_record_takes_a_decision_or_its_number_and_refuses_an_unknown_one():
    by_enum = row_from_record(record(decision=Decision.THREAT), T0)
    by_int = row_from_record(record(decision=13), T0)
    assert by_enum == by_int and by_enum[5:8] == (13, 1, 0)
    assert row_from_record(record(decision=Decision.STALE), T0)[5:8] == (3, 0, 1)
    with pytest.raises(ValueError):
        row_from_record(record(decision=99), T0)
