"""Health of the machine: CPU, memory, disk, temperature, power, flash wear.

``SystemMonitor(...).snapshot()`` returns one JSON-able dict for the API and
metrics. Every kernel file is read under one ROOT prefix, so tests point it
at a fake tree (``tmp_path``) with just the files they care about; anything
missing is reported as ``None``, never an exception::

    from burrow.board.system import SystemMonitor

    monitor = SystemMonitor(data_dir="/var/lib/burrow")   # keep one around
    monitor.snapshot()["throttled"]["flags"]["under_voltage_now"]

Sources: psutil for CPU, memory, disk usage and this process; ROOT/proc and
ROOT/sys for load, uptime, thermal zones, the Raspberry Pi firmware's
``get_throttled`` and the root block device's write counter. Without the
sysfs ``get_throttled`` file, ``vcgencmd get_throttled`` is tried when ROOT
is the real ``/`` and the tool is on PATH.

Keep one monitor for the process: CPU percentages and the recent write rate
are measured between calls. psutil is imported on first use.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import psutil

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "/var/lib/burrow"
SECTOR_BYTES = 512  # /sys/block/*/stat counts 512-byte sectors regardless of device
THROTTLED_PATH = "sys/devices/platform/soc/soc:firmware/get_throttled"
VCGENCMD_TIMEOUT_S = 2.0

# Bits of the firmware's get_throttled word (Raspberry Pi documentation,
# "vcgencmd get_throttled").
THROTTLE_BITS = {
    0: "under_voltage_now",
    1: "freq_capped_now",
    2: "throttled_now",
    3: "soft_temp_limit_now",
    16: "under_voltage_occurred",
    17: "freq_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temp_limit_occurred",
}


def decode_throttled(value: int) -> dict:
    """``{"raw": "0x50005", "flags": {name: bool, ...}}`` for a get_throttled word."""
    return {
        "raw": hex(value),
        "flags": {name: bool(value >> bit & 1) for bit, name in THROTTLE_BITS.items()},
    }


def _parse_throttled(text: str) -> int | None:
    # sysfs gives bare hex ("50005"); vcgencmd gives "throttled=0x50005".
    text = text.strip()
    if "=" in text:
        text = text.split("=", 1)[1]
    try:
        return int(text, 16)
    except ValueError:
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def local_midnight(ts: float) -> float:
    """Unix seconds of the local midnight that began the day of ``ts``."""
    day = time.localtime(ts)
    return time.mktime((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0, 0, 0, -1))


class SystemMonitor:
    """Reads system health; one instance per process.

    :param root: prefix for /proc and /sys (tests pass a fake tree).
    :param data_dir: directory whose filesystem usage is reported.
    :param block_device: root block device name (e.g. ``"mmcblk0"``); None
        finds it from ROOT/proc/mounts (and, when ROOT is ``/``, from the
        device number of ``/``). A partition name is mapped to its disk.
    :param use_vcgencmd: allow the ``vcgencmd`` fallback (default: only
        when ROOT is ``/``).
    :param clock: monotonic seconds, for the write-rate window.
    :param wall: unix seconds, for "today" (local midnight) in the write counts.
    """

    def __init__(self, root: str | os.PathLike = "/", data_dir: str | os.PathLike = DEFAULT_DATA_DIR,
                 *, block_device: str | None = None, use_vcgencmd: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        self.root = Path(root)
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.wall = wall
        self._today: tuple[float, int, float] | None = None  # (local midnight, bytes, at) of today's first sample
        self.use_vcgencmd = (str(root) == "/") if use_vcgencmd is None else use_vcgencmd
        self.block_device = block_device or self._find_block_device()
        self._first_write_sample: tuple[float, int] | None = None
        self._process: psutil.Process | None = None

    # -- public --

    def snapshot(self) -> dict:
        """Everything at once, as a JSON-able dict. Sections that cannot be
        read are ``None``."""
        import psutil

        if self._process is None:
            self._process = psutil.Process()
            # The first cpu_percent() call only sets the baseline.
            self._process.cpu_percent(None)
            psutil.cpu_percent(None)
        return {
            "cpu": self.cpu(),
            "memory": self.memory(),
            "disk": self.disk(),
            "temperatures": self.temperatures(),
            "throttled": self.throttled(),
            "process": self.process(),
            "storage_writes": self.storage_writes(),
            "uptime_s": self.uptime(),
        }

    def cpu(self) -> dict:
        """CPU use since the previous call (percent), count and load average."""
        import psutil

        return {
            "percent": psutil.cpu_percent(None),
            "count": psutil.cpu_count() or 1,
            "load": self.load(),
        }

    def load(self) -> list[float] | None:
        text = _read(self.root / "proc/loadavg")
        if text is not None:
            try:
                return [float(x) for x in text.split()[:3]]
            except ValueError:
                return None
        return None

    def uptime(self) -> float | None:
        text = _read(self.root / "proc/uptime")
        try:
            return float(text.split()[0]) if text else None
        except (ValueError, IndexError):
            return None

    def memory(self) -> dict:
        import psutil

        vm = psutil.virtual_memory()
        return {"total": vm.total, "available": vm.available, "used": vm.used,
                "percent": vm.percent}

    def disk(self) -> dict | None:
        """Usage of the filesystem holding ``data_dir`` (None if missing)."""
        import psutil

        try:
            du = psutil.disk_usage(str(self.data_dir))
        except OSError:
            return None
        return {"path": str(self.data_dir), "total": du.total, "used": du.used,
                "free": du.free, "percent": du.percent}

    def temperatures(self) -> list[dict]:
        """One entry per ROOT/sys/class/thermal/thermal_zone*: zone, type,
        degrees Celsius."""
        found = []
        base = self.root / "sys/class/thermal"
        for zone in sorted(base.glob("thermal_zone*"),
                           key=lambda p: int(re.sub(r"\D", "", p.name) or 0)):
            text = _read(zone / "temp")
            if text is None:
                continue
            try:
                millideg = int(text.strip())
            except ValueError:
                continue
            found.append({"zone": zone.name,
                          "type": (_read(zone / "type") or "").strip() or None,
                          "celsius": round(millideg / 1000.0, 1)})
        return found

    def throttled(self) -> dict | None:
        """The Pi firmware's under-voltage/throttling word, decoded; None on
        other boards."""
        text = _read(self.root / THROTTLED_PATH)
        source = "sysfs"
        if text is None and self.use_vcgencmd:
            text = self._vcgencmd()
            source = "vcgencmd"
        if text is None:
            return None
        value = _parse_throttled(text)
        if value is None:
            log.debug("unparseable get_throttled %r", text)
            return None
        return {**decode_throttled(value), "source": source}

    def process(self) -> dict:
        """This process: resident memory, open files and descriptors, threads."""
        import psutil

        proc = self._process or psutil.Process()
        with proc.oneshot():
            info: dict[str, Any] = {
                "pid": proc.pid,
                "rss": proc.memory_info().rss,
                "cpu_percent": proc.cpu_percent(None),
                "threads": proc.num_threads(),
                "open_fds": proc.num_fds(),
            }
        try:
            info["open_files"] = len(proc.open_files())
        except (psutil.Error, OSError):
            info["open_files"] = None
        return info

    def storage_writes(self) -> dict | None:
        """Bytes written to the root block device since boot, the average per
        day since boot, the rate since this monitor's first sample (None
        until a later sample exists), and the bytes written today.

        ``bytes_today`` counts from ``today_since`` (unix seconds): local
        midnight when the machine booted after it (the kernel's counter
        starts at boot, so the figure is exact), else this monitor's first
        sample of the day (writes before it today are not known)."""
        if not self.block_device:
            return None
        text = _read(self.root / "sys/block" / self.block_device / "stat")
        if text is None:
            return None
        fields = text.split()
        try:
            written = int(fields[6]) * SECTOR_BYTES  # field 7: sectors written
        except (IndexError, ValueError):
            return None
        now = self.clock()
        if self._first_write_sample is None:
            self._first_write_sample = (now, written)
        since, base = self._first_write_sample
        uptime = self.uptime()
        today, today_since = self._written_today(written, uptime)
        return {
            "device": self.block_device,
            "bytes_since_boot": written,
            "bytes_per_day_since_boot": (round(written / uptime * 86400) if uptime else None),
            "bytes_per_day_recent": (round((written - base) / (now - since) * 86400)
                                     if now - since >= 1.0 else None),
            "bytes_today": today,
            "today_since": today_since,
        }

    def _written_today(self, written: int, uptime: float | None) -> tuple[int, float]:
        now = self.wall()
        midnight = local_midnight(now)
        if uptime is not None and now - uptime >= midnight:  # booted today: the counter is today's
            return written, midnight
        if self._today is None or self._today[0] != midnight or written < self._today[1]:
            self._today = (midnight, written, now)
        _, base, at = self._today
        return written - base, at

    # -- internals --

    def _vcgencmd(self) -> str | None:
        tool = shutil.which("vcgencmd")
        if tool is None:
            return None
        try:
            done = subprocess.run([tool, "get_throttled"], capture_output=True, text=True,
                                  timeout=VCGENCMD_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    def _find_block_device(self) -> str | None:
        name = None
        mounts = _read(self.root / "proc/mounts") or ""
        for line in mounts.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1] == "/" and parts[0].startswith("/dev/"):
                candidate = parts[0][len("/dev/"):]
                if candidate != "root":  # /dev/root is an alias, not a sysfs name
                    name = candidate
        if name is None and str(self.root) == "/":
            try:
                dev = os.stat("/").st_dev
                link = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
                name = link.resolve().name if link.exists() else None
            except OSError:
                name = None
        return self._disk_of(name) if name else None

    def _disk_of(self, name: str) -> str | None:
        # A whole disk has ROOT/sys/block/<name>; a partition lives inside its
        # disk's directory (mmcblk0p2 under mmcblk0).
        block = self.root / "sys/block"
        if (block / name).is_dir():
            return name
        for disk in glob.glob(str(block / "*" / name)):
            return Path(disk).parent.name
        return None


def snapshot(root: str | os.PathLike = "/", data_dir: str | os.PathLike = DEFAULT_DATA_DIR) -> dict:
    """A one-off snapshot (rates that need two samples are None)."""
    return SystemMonitor(root, data_dir).snapshot()
