"""The query log of the running process: every answer recorded, flushed in batches, crash-safe."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid

import dns.message
import dns.query

from burrow.storage.querylog import MAX_FETCH_LIMIT, QueryLogDB
from tests.support.api_client import admin_token, metric
from tests.support.burrow_proc import BurrowProcess
from tests.support.timing import wait_for


def rows(data_dir):
    """(domain, decision label, block_trace) of every logged query, oldest first, read through
    QueryLogDB (both tiers, whatever their layout) while the process may be running."""
    db = QueryLogDB(data_dir / "querylog.db")
    try:
        items, total = db.fetch(limit=MAX_FETCH_LIMIT)
        for offset in range(MAX_FETCH_LIMIT, total, MAX_FETCH_LIMIT):
            items += db.fetch(limit=MAX_FETCH_LIMIT, offset=offset)[0]
    finally:
        db.close()
    return [(i["domain"], i["decision"], i.get("block_trace")) for i in reversed(items)]


def integrity(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_every_answer_is_logged_including_fast_path_hits(tmp_path, upstream):
    with BurrowProcess(tmp_path, [upstream.address], {"storage": {"query_log_flush_interval": 0.3}}) as b:
        name = f"log-{uuid.uuid4().hex[:8]}.example.test"
        for _ in range(5):
            b.query(name)
        deadline = time.monotonic() + 30  # bounds a failure only
        found = []
        while time.monotonic() < deadline:
            found = [r for r in rows(b.data_dir) if r[0] == name]
            if len(found) >= 5:
                break
            time.sleep(0.2)
        assert len(found) == 5
        decisions = [r[1] for r in found]
        assert decisions[0] == "resolved" and set(decisions[1:]) == {"cached"}
        assert any(e["stage"] == "forward" for e in found[0][2])
        assert any(e["stage"] == "cache" for e in found[-1][2])


def test_clean_shutdown_flushes_what_is_pending(tmp_path, upstream):
    b = BurrowProcess(tmp_path, [upstream.address], {"storage": {"query_log_flush_interval": 3600}})
    with b:
        token = admin_token(b)
        for i in range(7):
            b.query(f"shutdown-{i}.example.test")
        wait_for(lambda: metric(b, token, "burrow_querylog_pending_rows") >= 7,
                 what="the rows drained into the pending buffer")
        assert b.stop() == 0
    assert len([r for r in rows(b.data_dir) if r[0].startswith("shutdown-")]) == 7


def test_kill_9_while_writing_keeps_databases_intact(tmp_path, upstream):
    b = BurrowProcess(tmp_path, [upstream.address], {"storage": {"query_log_flush_interval": 0.1}})
    stop = threading.Event()

    def load():
        i = 0
        deadline = time.monotonic() + 30  # bounded; stopped once the test has killed Burrow
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                q = dns.message.make_query(f"k{i % 300}.example.test", "A")
                dns.query.udp(q, "127.0.0.1", port=b.dns_port, timeout=0.5)
            except Exception:
                pass
            i += 1

    with b:
        worker = threading.Thread(target=load)
        worker.start()
        before = wait_for(lambda: len(rows(b.data_dir)), what="the first rows flushed")
        time.sleep(0.3)  # more writes under way: the kill lands while writing
        b.kill9()
        stop.set()
        worker.join()
    assert integrity(b.data_dir / "settings.db") == "ok"
    assert integrity(b.data_dir / "querylog.db") == "ok"  # the hot tier (no RAM dir here)
    assert integrity(b.data_dir / "querylog-archive.db") == "ok"
    after_crash = len(rows(b.data_dir))
    assert after_crash >= before  # everything flushed before the kill survived
    # and the process starts again on the same data
    b2 = BurrowProcess(tmp_path / "again", [upstream.address])
    b2.data_dir = b.data_dir
    b2.config["storage"]["data_dir"] = str(b.data_dir)
    with b2:
        assert b2.query("after.example.test").answer
    assert len(rows(b.data_dir)) >= after_crash + 1
