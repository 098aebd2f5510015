"""System monitor against a fake ROOT tree, and sanity of real psutil values."""

import json
import os
from pathlib import Path

import pytest

from burrow.board import system
from burrow.board.system import SystemMonitor, decode_throttled

# /sys/block/<dev>/stat: reads, merges, sectors, ms, writes, merges, SECTORS, ms, ...
STAT = "  4711 0 300000 100 2000 10 {written} 500 0 900 600 0 0 0 0 0 0\n"


def put(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def pi_root(tmp_path):
    put(tmp_path, "proc/loadavg", "0.52 0.40 0.33 1/123 4567\n")
    put(tmp_path, "proc/uptime", "43200.00 80000.00\n")  # half a day
    put(tmp_path, "proc/mounts",
        "/dev/mmcblk0p2 / ext4 rw,noatime 0 0\n"
        "/dev/mmcblk0p1 /boot/firmware vfat rw 0 0\n"
        "tmpfs /run tmpfs rw 0 0\n")
    put(tmp_path, "sys/class/thermal/thermal_zone0/temp", "47236\n")
    put(tmp_path, "sys/class/thermal/thermal_zone0/type", "cpu-thermal\n")
    put(tmp_path, "sys/class/thermal/thermal_zone10/temp", "30000\n")
    put(tmp_path, "sys/class/thermal/thermal_zone2/temp", "not a number\n")
    put(tmp_path, "sys/devices/platform/soc/soc:firmware/get_throttled", "50005\n")
    put(tmp_path, "sys/block/mmcblk0/stat", STAT.format(written=2_000_000))
    (tmp_path / "sys/block/mmcblk0/mmcblk0p2").mkdir()
    (tmp_path / "sys/block/mmcblk0/mmcblk0p1").mkdir()
    return tmp_path


def test_fake_pi_tree(pi_root, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monitor = SystemMonitor(pi_root, data_dir)
    snap = monitor.snapshot()
    assert json.loads(json.dumps(snap)) == snap

    assert snap["cpu"]["load"] == [0.52, 0.40, 0.33]
    assert snap["uptime_s"] == 43200.0
    assert snap["temperatures"] == [
        {"zone": "thermal_zone0", "type": "cpu-thermal", "celsius": 47.2},
        {"zone": "thermal_zone10", "type": None, "celsius": 30.0},
    ]
    throttled = snap["throttled"]
    assert throttled["raw"] == "0x50005" and throttled["source"] == "sysfs"
    flags = throttled["flags"]
    assert flags["under_voltage_now"] and flags["throttled_now"]
    assert flags["under_voltage_occurred"] and flags["throttled_occurred"]
    assert not flags["freq_capped_now"] and not flags["soft_temp_limit_occurred"]

    writes = snap["storage_writes"]
    assert writes["device"] == "mmcblk0"  # partition mapped to its disk
    assert writes["bytes_since_boot"] == 2_000_000 * 512
    assert writes["bytes_per_day_since_boot"] == 2_000_000 * 512 * 2
    assert writes["bytes_per_day_recent"] is None  # one sample so far
    assert snap["disk"]["path"] == str(data_dir)


def test_recent_write_rate_uses_monitor_window(pi_root):
    now = [100.0]
    monitor = SystemMonitor(pi_root, pi_root, clock=lambda: now[0])
    monitor.storage_writes()
    put(pi_root, "sys/block/mmcblk0/stat", STAT.format(written=2_000_000 + 1000))
    now[0] += 3600
    writes = monitor.storage_writes()
    assert writes["bytes_per_day_recent"] == 1000 * 512 * 24


def test_writes_today_count_from_boot_when_it_booted_after_midnight(pi_root):
    # proc/uptime says 12 h: at 15:00 local time the machine booted at 03:00 today.
    at_three_pm = system.local_midnight(1_750_000_000) + 15 * 3600
    monitor = SystemMonitor(pi_root, pi_root, wall=lambda: at_three_pm)
    writes = monitor.storage_writes()
    assert writes["bytes_today"] == 2_000_000 * 512  # the kernel's counter began today
    assert writes["today_since"] == system.local_midnight(at_three_pm)


def test_writes_today_count_from_the_first_sample_of_the_day(pi_root):
    # Up for 12 h at 09:00: booted yesterday, so today's writes count from the first sample.
    midnight = system.local_midnight(1_750_000_000)
    wall = [midnight + 9 * 3600]
    monitor = SystemMonitor(pi_root, pi_root, wall=lambda: wall[0])
    first = monitor.storage_writes()
    assert (first["bytes_today"], first["today_since"]) == (0, wall[0])
    put(pi_root, "sys/block/mmcblk0/stat", STAT.format(written=2_000_000 + 300))
    wall[0] += 3600
    later = monitor.storage_writes()
    assert (later["bytes_today"], later["today_since"]) == (300 * 512, midnight + 9 * 3600)
    # The next day starts a new count at its first sample.
    put(pi_root, "proc/uptime", "400000.00 80000.00\n")
    put(pi_root, "sys/block/mmcblk0/stat", STAT.format(written=2_000_000 + 900))
    wall[0] = midnight + 86400 + 60
    next_day = monitor.storage_writes()
    assert (next_day["bytes_today"], next_day["today_since"]) == (0, wall[0])


def test_vcgencmd_output_format_parses():
    assert system._parse_throttled("throttled=0x0\n") == 0
    assert system._parse_throttled("throttled=0x80008") == 0x80008
    assert system._parse_throttled("junk") is None
    assert decode_throttled(0)["flags"] == dict.fromkeys(system.THROTTLE_BITS.values(), False)


def test_vcgencmd_fallback_only_when_allowed(tmp_path, monkeypatch):
    tool = tmp_path / "bin/vcgencmd"
    put(tmp_path, "bin/vcgencmd", "#!/bin/sh\necho throttled=0x1\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "root"
    root.mkdir()
    assert SystemMonitor(root, root).throttled() is None  # fake ROOT: never run tools
    got = SystemMonitor(root, root, use_vcgencmd=True).throttled()
    assert got["source"] == "vcgencmd" and got["flags"]["under_voltage_now"]


def test_empty_root_degrades_to_none(tmp_path):
    monitor = SystemMonitor(tmp_path, tmp_path / "missing")
    snap = monitor.snapshot()
    assert snap["temperatures"] == []
    assert snap["throttled"] is None
    assert snap["storage_writes"] is None
    assert snap["disk"] is None
    assert snap["cpu"]["load"] is None and snap["uptime_s"] is None
    assert json.loads(json.dumps(snap)) == snap


def test_explicit_block_device_and_dev_root_alias(tmp_path):
    put(tmp_path, "proc/mounts", "/dev/root / ext4 rw 0 0\n")
    put(tmp_path, "sys/block/sda/stat", STAT.format(written=8))
    assert SystemMonitor(tmp_path, tmp_path).block_device is None
    monitor = SystemMonitor(tmp_path, tmp_path, block_device="sda")
    assert monitor.storage_writes()["bytes_since_boot"] == 8 * 512


def test_real_machine_values_are_sane(tmp_path):
    monitor = SystemMonitor("/", tmp_path)
    snap = monitor.snapshot()
    snap = monitor.snapshot()  # second call: CPU percent measured over an interval
    assert json.loads(json.dumps(snap)) == snap
    assert 0.0 <= snap["cpu"]["percent"] <= 100.0
    assert snap["cpu"]["count"] >= 1
    mem = snap["memory"]
    assert 0 < mem["available"] <= mem["total"] and 0 <= mem["percent"] <= 100
    assert snap["disk"]["total"] > 0 and 0 <= snap["disk"]["percent"] <= 100
    proc = snap["process"]
    assert proc["pid"] == os.getpid()
    assert 1 << 20 < proc["rss"] < 4 << 30
    assert proc["open_fds"] >= 3 and proc["threads"] >= 1
    assert snap["uptime_s"] > 0
    for t in snap["temperatures"]:
        assert -40 < t["celsius"] < 150


def test_module_snapshot_helper(tmp_path):
    assert set(system.snapshot(tmp_path, tmp_path)) == {
        "cpu", "memory", "disk", "temperatures", "throttled", "process",
        "storage_writes", "uptime_s"}
