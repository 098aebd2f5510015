"""Storage that cannot be written is a fault (burrow/storage/health.py)."""

from __future__ import annotations

import asyncio
import os
import time

from burrow.dns.decision import Decision, QueryRecord
from burrow.lifecycle import Faults
from burrow.storage import health
from burrow.storage.health import StorageHealth
from burrow.storage.querylog import QueryLogDB
from burrow.telemetry.recorder import Recorder


class StatVfs:
    def __init__(self, flags):
        self.f_flag = flags


def test_a_read_only_file_system_is_a_fault_until_it_is_writable_again(tmp_path, monkeypatch):
    faults = Faults()
    storage = StorageHealth([tmp_path, tmp_path / "ram"], faults)
    (tmp_path / "ram").mkdir()
    assert storage.check() and not faults
    real = os.statvfs
    monkeypatch.setattr(health.os, "statvfs",
                        lambda p: StatVfs(os.ST_RDONLY) if str(p) == str(tmp_path) else real(p))
    assert not storage.check()
    assert faults.blocking() == [f"storage is not writable, settings and the query log cannot be saved: "
                                 f"{tmp_path}: read-only file system"]
    monkeypatch.setattr(health.os, "statvfs", real)
    assert storage.check() and not faults


def test_a_folder_that_refuses_writes_or_is_gone_is_a_fault(tmp_path, monkeypatch):
    faults = Faults()
    storage = StorageHealth([tmp_path / "missing"], faults)
    assert not storage.check()
    assert "missing: No such file or directory" in faults.reasons()[0]
    monkeypatch.setattr(health.os, "access", lambda path, mode: False)
    storage.folders = [tmp_path]
    assert not storage.check()
    assert faults.reasons()[0].endswith(f"{tmp_path}: not writable")


def test_writers_report_failed_writes_and_the_next_good_one_clears_them(tmp_path):
    faults = Faults()
    seen = []
    faults.subscribe(lambda: seen.append(list(faults.reasons())))
    storage = StorageHealth([tmp_path], faults)
    storage.report("the query log", None)  # fine and was fine: nothing to say
    storage.report("the query log", "OperationalError: disk I/O error")
    storage.report("the query log", "OperationalError: disk I/O error")  # the same again
    storage.report("the event log", "OperationalError: attempt to write a readonly database")
    assert storage.snapshot()["writable"] is False
    storage.report("the query log", None)
    storage.report("the event log", None)
    assert seen == [
        ["storage is not writable, settings and the query log cannot be saved: the query log could "
         "not be written (OperationalError: disk I/O error)"],
        ["storage is not writable, settings and the query log cannot be saved: the query log could "
         "not be written (OperationalError: disk I/O error); the event log could not be written "
         "(OperationalError: attempt to write a readonly database)"],
        ["storage is not writable, settings and the query log cannot be saved: the event log could "
         "not be written (OperationalError: attempt to write a readonly database)"],
        [],
    ]
    assert storage.ok


def test_the_recorder_reports_each_flush(tmp_path):
    reports = []

    async def main():
        recorder = Recorder(QueryLogDB(tmp_path / "q.db"), on_write=lambda what, err: reports.append((what, err)))
        recorder.ring.append(QueryRecord(time.monotonic(), "10.0.0.1", "a.example", 1, 0, Decision.RESOLVED,
                                         0.001, "", ()))
        recorder.drain()
        await recorder.flush()

        def broken(batch):
            raise OSError(30, "Read-only file system")
        recorder.db.write = broken
        recorder.ring.append(QueryRecord(time.monotonic(), "10.0.0.1", "b.example", 1, 0, Decision.RESOLVED,
                                         0.001, "", ()))
        recorder.drain()
        await recorder.flush()
        recorder._executor.shutdown(wait=True)

    asyncio.run(main())
    assert reports == [("the query log", None), ("the query log", "OSError: [Errno 30] Read-only file system")]
