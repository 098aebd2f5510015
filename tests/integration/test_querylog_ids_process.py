"""Query-log ids through the running process: every row /api/queries serves has its unique
integer id from the moment it shows up, keeps it when it is flushed and across a restart, and
an id a client saw is never given to another row — not even after kill -9 or a reboot."""

from __future__ import annotations

import shutil
import sqlite3
import time
import uuid

import pytest

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess


def served(b, token, parent):
    """{domain: id} of the rows /api/queries serves for names under ``parent``."""
    status, body = authed(b, token, "GET", f"/api/queries?domain={parent}&limit=1000")
    assert status == 200, body
    rows = body["queries"]
    ids = [r["id"] for r in rows]
    assert all(type(i) is int for i in ids), rows
    assert len(set(ids)) == len(ids), ids
    return {r["domain"]: r["id"] for r in rows}


def wait_served(b, token, parent, names, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        rows = served(b, token, parent)
        if set(names) <= set(rows):
            return rows
        assert time.monotonic() < deadline, f"{names} not all in /api/queries: {rows}"
        time.sleep(0.05)


def in_log(data_dir, parent):
    """{domain: id} of the rows under ``parent`` already written to the log's hot tier."""
    conn = sqlite3.connect(data_dir / "querylog.db", timeout=5)
    try:
        return dict(conn.execute("SELECT domain, id FROM queries WHERE domain LIKE ?",
                                 (f"%.{parent}",)).fetchall())
    finally:
        conn.close()


def ask(b, names):
    for name in names:
        assert b.query(name).answer


def test_a_row_keeps_its_id_from_memory_to_the_log(tmp_path, upstream):
    # The test must ask before the flush; a long interval leaves a busy machine time to.
    with BurrowProcess(tmp_path, [upstream.address], {"storage": {"query_log_flush_interval": 5.0}}) as b:
        token = admin_token(b)
        for _ in range(5):  # until a GET saw rows that were not flushed yet
            parent = f"ids-{uuid.uuid4().hex[:8]}.example.test"
            names = [f"n{i}.{parent}" for i in range(6)]
            ask(b, names)
            before = wait_served(b, token, parent, names)
            if len(in_log(b.data_dir, parent)) < len(names):
                break  # at least one row was served from memory, and it had an id
        else:
            pytest.fail("every row was flushed before /api/queries could be asked")
        deadline = time.monotonic() + 30
        while len(in_log(b.data_dir, parent)) < len(names):  # await the flush
            assert time.monotonic() < deadline, "rows not flushed"
            time.sleep(0.1)
        assert in_log(b.data_dir, parent) == before
        assert served(b, token, parent) == before


@pytest.mark.parametrize("ending", ["clean", "kill-9", "reboot"])
def test_ids_survive_a_restart_and_are_never_given_twice(tmp_path, upstream, ending):
    ram = tmp_path / "ram"
    config = {"storage": {"query_log_flush_interval": 3600, "query_log_ram_dir": str(ram)}}
    parent = f"ids-{uuid.uuid4().hex[:8]}.example.test"
    first_names = [f"a{i}.{parent}" for i in range(6)]
    b = BurrowProcess(tmp_path / "box", [upstream.address], config)
    with b:
        token = admin_token(b)
        ask(b, first_names)
        seen = wait_served(b, token, parent, first_names)  # pending: no flush for an hour
        if ending == "clean":
            assert b.stop() == 0  # flushes them
        else:
            b.kill9()  # they are lost with the process
    if ending == "reboot":  # the RAM dir (the hot tier) is gone too
        shutil.rmtree(ram)
    again = BurrowProcess(tmp_path / "box", [upstream.address], config)
    with again:
        token = admin_token(again)
        later = served(again, token, parent)
        if ending == "clean":
            assert later == seen  # the same rows, the same ids
        new_names = [f"b{i}.{parent}" for i in range(4)]
        ask(again, new_names)
        rows = wait_served(again, token, parent, new_names)
        new_ids = [rows[n] for n in new_names]
        assert min(new_ids) > max(seen.values()), (seen, rows)
