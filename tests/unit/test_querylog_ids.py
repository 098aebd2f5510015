"""Query-log row ids: given when the Recorder takes a row in, kept through flush, archive and
restart, never handed out twice — not even after a crash that lost rows clients had seen."""

from __future__ import annotations

import time

import pytest

from burrow.dns.decision import Decision, QueryRecord
from burrow.storage.querylog import QueryLogDB, row_from_record


def rec(domain, decision=Decision.RESOLVED):
    return QueryRecord(time.monotonic(), "192.168.1.10", domain, 1, 0, decision, 0.004,
                       "1.1.1.1:53", ())


def test_write_keeps_given_ids_and_refuses_ones_below_the_log(tmp_path):
    db = QueryLogDB(tmp_path / "querylog.db")
    try:
        row = row_from_record(rec("x.example"), time.time())
        assert db.write([(7, *row), (9, *row)]) == 2
        assert [i["id"] for i in db.fetch()[0]] == [9, 7]
        assert db.next_id == 10
        with pytest.raises(ValueError):
            db.write([(9, *row)])
        assert db.write([row]) == 1  # rows without ids continue the sequence
        assert db.fetch()[0][0]["id"] == 10
    finally:
        db.close()


def test_reserved_ids_survive_reopening(tmp_path):
    db = QueryLogDB(tmp_path / "querylog.db")
    assert db.next_id == 1 and db.reserved_ids() == 0
    db.reserve_ids(5000)
    db.close()
    db = QueryLogDB(tmp_path / "querylog.db")
    try:
        assert db.next_id == 5000 and db.reserved_ids() == 5000
    finally:
        db.close()
