"""SettingsDB: migrations, JSON values, transactions, and crash safety with a real SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from burrow.storage.querylog import QueryLogDB
from burrow.storage.settings import MIGRATIONS, SchemaTooNewError, SettingsDB, split_sql


def user_version(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_new_database_is_migrated_with_durable_pragmas(tmp_path):
    db = SettingsDB(tmp_path / "settings.db")
    try:
        assert db.version == len(MIGRATIONS)
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        cols = [r[1] for r in db.conn.execute("PRAGMA table_info(settings)")]
        assert cols == ["key", "value", "updated_at"]
    finally:
        db.close()
    assert user_version(tmp_path / "settings.db") == len(MIGRATIONS)


def test_reopen_is_idempotent_and_keeps_data(tmp_path):
    path = tmp_path / "settings.db"
    db = SettingsDB(path)
    db.set("dns.upstreams", ["1.1.1.1", "9.9.9.9"])
    db.close()
    db = SettingsDB(path)  # would fail with "table settings already exists" if re-applied
    try:
        assert db.get("dns.upstreams") == ["1.1.1.1", "9.9.9.9"]
        assert db.version == len(MIGRATIONS)
    finally:
        db.close()


def test_later_migrations_apply_once_in_order(tmp_path):
    path = tmp_path / "settings.db"
    SettingsDB(path).close()
    more = [*MIGRATIONS,
            (len(MIGRATIONS) + 1, "CREATE TABLE test_groups (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"),
            (len(MIGRATIONS) + 2, "INSERT INTO test_groups (name) VALUES ('default'); "
                "CREATE TABLE test_members (group_id INTEGER REFERENCES test_groups(id), ip TEXT);")]
    db = SettingsDB(path, migrations=more)
    db.close()
    db = SettingsDB(path, migrations=more)
    try:
        assert db.version == len(MIGRATIONS) + 2
        assert db.conn.execute("SELECT name FROM test_groups").fetchall() == [("default",)]
    finally:
        db.close()


def test_failed_migration_rolls_back_entirely(tmp_path):
    path = tmp_path / "settings.db"
    SettingsDB(path).close()
    broken = [*MIGRATIONS,
              (len(MIGRATIONS) + 1, "CREATE TABLE test_groups (id INTEGER PRIMARY KEY);"),
              (len(MIGRATIONS) + 2, "CREATE TABLE oops (x); INSERT INTO nowhere VALUES (1);")]
    with pytest.raises(sqlite3.OperationalError):
        SettingsDB(path, migrations=broken)
    assert user_version(path) == len(MIGRATIONS)
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "test_groups" not in tables and "oops" not in tables  # both rolled back: one transaction


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "settings.db"
    SettingsDB(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(SchemaTooNewError, match="newer"):
        SettingsDB(path)
    assert user_version(path) == len(MIGRATIONS) + 5  # untouched


def test_misnumbered_migrations_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="numbered"):
        SettingsDB(tmp_path / "s.db", migrations=[(1, "SELECT 1;"), (3, "SELECT 1;")])


def test_split_sql_keeps_trigger_bodies_and_strings_whole():
    script = """
        CREATE TABLE t (a TEXT);
        INSERT INTO t VALUES ('x;y');
        CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 'z'; END;
    """
    parts = split_sql(script)
    assert len(parts) == 3
    assert "'x;y'" in parts[1]
    assert parts[2].endswith("END;")


def test_values_round_trip_as_json(tmp_path):
    db = SettingsDB(tmp_path / "settings.db")
    try:
        assert db.get("missing") is None
        assert db.get("missing", 42) == 42
        for key, value in [("b", True), ("n", 3), ("f", 2.5), ("s", "héllo"), ("none", None),
                           ("obj", {"a": [1, 2, {"b": None}]})]:
            db.set(key, value)
            assert db.get(key) == value
        db.set("n", 4)
        assert db.get("n") == 4
        assert db.all() == {"b": True, "n": 4, "f": 2.5, "s": "héllo", "none": None,
                            "obj": {"a": [1, 2, {"b": None}]}}
        assert db.delete("n") is True
        assert db.delete("n") is False
        assert db.get("n") is None
        with pytest.raises(TypeError):
            db.set("bad", object())
        with pytest.raises(ValueError):
            db.set("bad", float("nan"))
        assert "bad" not in db.all()
    finally:
        db.close()


def test_transaction_commits_or_rolls_back_together(tmp_path):
    db = SettingsDB(tmp_path / "settings.db")
    try:
        with db.transaction():
            db.set("a", 1)
            db.set("b", 2)
        assert db.all() == {"a": 1, "b": 2}

        with pytest.raises(RuntimeError):
            with db.transaction():
                db.set("a", 100)
                db.delete("b")
                raise RuntimeError("boom")
        assert db.all() == {"a": 1, "b": 2}
        assert not db.conn.in_transaction

        with db.transaction():
            db.set("a", 10)
            with pytest.raises(KeyError):
                with db.transaction():  # nested: a savepoint, only its writes undone
                    db.set("b", 20)
                    raise KeyError("inner")
            db.set("c", 30)
        assert db.all() == {"a": 10, "b": 2, "c": 30}
    finally:
        db.close()


def test_integrity_check_reports_ok_and_damage(tmp_path):
    path = tmp_path / "settings.db"
    db = SettingsDB(path)
    for i in range(300):
        db.set(f"key{i}", "x" * 200)
    assert db.integrity_check() == "ok"
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    # Scribble over a b-tree page holding the rows just written (the file ends with them;
    # the first pages hold the schema and tables other migrations create).
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size - 4096 * 3 + 100)
        f.write(b"\xff" * 2000)
    db = SettingsDB(path)
    try:
        assert db.integrity_check() != "ok"
    finally:
        db.close()


CHILD = textwrap.dedent("""
    import sys, time
    from burrow.storage.settings import SettingsDB
    from burrow.storage.querylog import QueryLogDB
    settings = SettingsDB(sys.argv[1])
    log = QueryLogDB(sys.argv[2])
    rows_per_batch = int(sys.argv[3])
    batch = 0
    while True:
        settings.set("counter", batch)
        log.write([(time.time(), "10.0.0.1", f"b{batch}-{i}.example", 1, 0, 1, 0, 0, 1.5,
                    "1.1.1.1:53", None) for i in range(rows_per_batch)])
        print(batch, flush=True)
        batch += 1
""")


def test_sigkill_mid_write_leaves_both_databases_consistent(tmp_path):
    settings_path, log_path = tmp_path / "settings.db", tmp_path / "querylog.db"
    script = tmp_path / "writer.py"
    script.write_text(CHILD)
    rows_per_batch = 500
    child = subprocess.Popen([sys.executable, str(script), str(settings_path), str(log_path),
                              str(rows_per_batch)], stdout=subprocess.PIPE, text=True)
    printed = []
    try:
        deadline = time.monotonic() + 30
        while len(printed) < 15 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            printed.append(int(line))
        assert len(printed) >= 15, "writer child did not make progress"
        time.sleep(0.003)  # land somewhere inside the next write
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        printed += [int(line) for line in child.stdout.read().split()]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    settings = SettingsDB(settings_path)
    log = QueryLogDB(log_path)
    try:
        assert settings.integrity_check() == "ok"
        assert log.integrity_check() == "ok"
        rows = log.conn.execute(
            "SELECT substr(domain, 2, instr(domain, '-') - 2), COUNT(*) FROM queries "
            "GROUP BY 1").fetchall()
        stored = {int(b): n for b, n in rows}
        last = max(printed)
        # Every batch whose write() returned is there; the only other one allowed is the batch
        # committed in the instant between write() returning and its line being printed.
        assert set(printed) <= set(stored)
        assert set(stored) - set(printed) <= {last + 1}
        assert all(n == rows_per_batch for n in stored.values()), "a batch was torn"
        assert settings.get("counter") in (last, last + 1)
    finally:
        settings.close()
        log.close()

