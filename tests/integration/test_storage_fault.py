"""Storage that cannot be written is a fault, through the running server (issue 14, item 6).

The data dir is an ext4 file system on a loop device, mounted ``errors=remount-ro`` as the
image mounts the SD card. Writing to ``/sys/fs/ext4/<dev>/trigger_fs_error`` makes the kernel
take the path a failing card takes: the file system turns read-only under the running
process (``emergency_ro``), and every write fails with EROFS, root's included — so the test
holds although it runs as root (a chmod would not stop root; a read-only bind mount cannot be
made over files open for writing).

The second test uses the same failure to kill a supervised background task honestly (a slave
zone's refresh loop cannot write its failure note) and sees it counted and restarted.

Needs root, loop devices and mkfs.ext4 (e2fsprogs): skipped, with the reason, where the
machine has none of them (an unprivileged container).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.api_client import admin_token, authed, metric
from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream


def _run(*cmd) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def card(tmp_path):
    """A small ext4 "SD card" mounted at tmp_path/burrow/data; yields its sysfs error trigger."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a file system")
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("needs mkfs.ext4 (e2fsprogs)")
    image, mountpoint = tmp_path / "card.img", tmp_path / "burrow" / "data"
    mountpoint.mkdir(parents=True)
    with open(image, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    made = _run("mkfs.ext4", "-q", "-F", str(image))
    assert made.returncode == 0, made.stderr
    mounted = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(mountpoint))
    if mounted.returncode != 0:
        pytest.skip(f"cannot loop-mount an ext4 image here: {mounted.stderr.strip()}")
    try:
        device = _run("findmnt", "-n", "-o", "SOURCE", str(mountpoint)).stdout.strip()
        trigger = Path("/sys/fs/ext4") / Path(device).name / "trigger_fs_error"
        if not trigger.exists():
            pytest.skip(f"the kernel has no {trigger}")
        yield mountpoint, trigger
    finally:
        _run("umount", "-l", str(mountpoint))


def wait_for(check, timeout=30.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def test_a_data_dir_that_turns_read_only_is_a_fault_in_readyz_and_system(card, tmp_path):
    mountpoint, trigger = card
    with TestUpstream() as up, BurrowProcess(tmp_path / "burrow", [up.address]) as b:
        token = admin_token(b)  # before: signing in writes a session
        assert wait_for(lambda: b.http("GET", "/readyz")[0] == 200), b.http("GET", "/readyz")
        status, ready = b.http("GET", "/readyz")
        assert ready["checks"]["storage"] == "ok" and ready["reasons"] == []

        trigger.write_text("test\n")  # the card fails: the kernel remounts it read-only
        with pytest.raises(OSError):
            (mountpoint / "probe").write_text("x")

        def not_ready():  # the folder check (every 10 s) names the read-only file system
            status, body = b.http("GET", "/readyz")
            named = any("storage is not writable" in r and f"{mountpoint}: read-only file system" in r
                        for r in body["reasons"])
            return (status, body) if named else None

        answer = wait_for(not_ready)
        assert answer, b.http("GET", "/readyz")
        status, body = answer
        assert status == 503 and body["status"] == "not_ready" and body["checks"]["storage"] == "fault"
        status, system = authed(b, token, "GET", "/api/system")
        assert status == 200 and system["status"]["state"] == "fault", system["status"]
        assert any(r.startswith("fault: storage is not writable") for r in system["status"]["reasons"])
        # DNS still answers: the fault is for a person, the home network keeps working.
        assert b.query("www.example.com").rcode() == 0
        assert "storage is not writable" in b.output()


def test_a_loop_the_read_only_card_kills_is_counted_and_restarted(card, tmp_path):
    """A supervised task that dies, provoked honestly: a slave zone's refresh loop notes a
    failed transfer in the settings DB; with the card read-only that note raises out of the
    loop's own error handling, the task dies, and its policy starts it again."""
    mountpoint, trigger = card
    primary = socket.socket()  # a "primary" that takes the connection and never answers
    primary.bind(("127.0.0.1", 0))
    primary.listen(4)
    task = "zone-refresh sec.test"
    try:
        with TestUpstream() as up, BurrowProcess(tmp_path / "burrow", [up.address]) as b:
            token = admin_token(b)
            status, zone = authed(b, token, "POST", "/api/zones", {
                "name": "sec.test", "type": "slave", "primaries": [f"127.0.0.1:{primary.getsockname()[1]}"]})
            assert status == 201, zone
            # Its first transfer waits on the silent primary; then the card fails under it.
            trigger.write_text("test\n")
            primary.close()  # the waiting transfer is reset: the failure note cannot be written
            deaths = f'burrow_task_deaths_total{{task="{task}"}}'
            restarts = f'burrow_task_restarts_total{{task="{task}"}}'
            assert wait_for(lambda: metric(b, token, restarts) >= 1), b.output()[-3000:]
            assert metric(b, token, deaths) >= 1
            assert f"background task {task} died" in b.output()
            assert f"restarting background task {task}" in b.output()
    finally:
        primary.close()
