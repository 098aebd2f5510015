"""GET /api/system: version, uptime, CPU, memory, disk, temperature, process, listen addresses,
network, the appliance status, upstream health and the clock (synchronised yet? burrow/clock.py).

Hardware and OS figures come from the board seam (``board.system()``, psutil and sysfs read
off the loop); ``services`` is the lifecycle's snapshot: each service's state in start order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config.schema import format_hostport
from .errors import now_iso
from .health import format_uptime
from .routes import Api
from .schema import Bool, Int, List, Obj, Str

if TYPE_CHECKING:
    from ..board.appliance import Appliance
    from ..clock import ClockGate
    from ..health import Health
    from ..lifecycle import Lifecycle
    from ..resolver import Resolver
    from .server import WebService

ClockStatus = Obj("ClockStatus", {
    "synchronized": Bool(description="the clock has been synchronised (network time) since start"),
    "source": Str(enum=["timesyncd", "kernel", "none"],
                  description="what said so: systemd-timesyncd's file, the kernel (adjtimex), or none yet"),
    "waiting": Bool(description="list downloads and query-log age pruning wait for the clock"),
    "waiting_since": Str(nullable=True, description="when the wait began, by the clock as it was; null "
                                                    "when not waiting"),
    "waited_seconds": Int(nullable=True, description="how long it has waited; null when not waiting"),
    "wait_for_sync": Bool(description="the clock.wait_for_sync option"),
    "gave_up": Bool(description="Burrow went on after clock.max_wait_minutes without a synchronisation "
                                "(the clock read no earlier than this release)"),
    "time": Str(description="what the clock reads now (UTC)"),
}, description="whether the wall clock is right yet (a board without a real-time clock boots with a "
               "wrong time): until it is, Burrow answers DNS but holds back list downloads")

SystemInfo = Obj("SystemInfo", {
    "version": Str(), "uptime": Str(), "uptime_seconds": Int(),
    "status": Obj("SystemStatus", {"state": Str(), "reasons": List(Str()), "led": Str()}),
    "cpu": Obj("SystemCpu", {}, additional=True, nullable=True),
    "memory": Obj("SystemMemory", {}, additional=True, nullable=True),
    "disk": Obj("SystemDisk", {}, additional=True, nullable=True),
    "temperature": Obj("SystemTemperature", {}, additional=True, nullable=True,
                       description="hottest thermal zone: {zone, type, celsius}; null when none"),
    "temperatures": List(Obj("ThermalZone", {}, additional=True)),
    "process": Obj("SystemProcess", {}, additional=True, nullable=True,
                   description="this process: pid, rss (bytes), cpu_percent, threads, open_fds"),
    "listen_addresses": Obj("ListenAddresses", {"dns": List(Str()), "web": Str()}),
    "network": Obj("SystemNetwork", {}, additional=True),
    "upstreams": List(Obj("UpstreamSnapshot", {}, additional=True)),
    "board": Str(nullable=True),
    "services": Obj("ServiceStates", {
        "phase": Str(enum=["created", "starting", "running", "stopping", "stopped"]),
        "services": List(Obj("ServiceState", {"name": Str(), "state": Str()}, additional=True)),
    }, description="each service in start order (the reverse is the stop order), its state "
                   "and its own figures"),
    "clock": ClockStatus,
    "timestamp": Str(),
}, additional=True, example={
    "version": "0.1.0", "uptime": "2h15m30s", "uptime_seconds": 8130,
    "status": {"state": "ready", "reasons": [], "led": "ready"},
    "cpu": {"percent": 3.5, "count": 4, "load": [0.1, 0.05, 0.01]},
    "memory": {"total": 1984425984, "available": 1524416512, "used": 300000000, "percent": 23.2},
    "disk": {"path": "/var/lib/burrow", "total": 31000000000, "used": 2100000000, "free": 28900000000,
             "percent": 6.8},
    "temperature": {"zone": "thermal_zone0", "type": "cpu-thermal", "celsius": 48.2},
    "temperatures": [{"zone": "thermal_zone0", "type": "cpu-thermal", "celsius": 48.2}],
    "process": {"pid": 412, "rss": 41943040, "cpu_percent": 1.2, "threads": 3, "open_fds": 24},
    "listen_addresses": {"dns": ["0.0.0.0:53"], "web": "0.0.0.0:8080"},
    "network": {"available": True, "primary_v4": "192.168.1.23"},
    "upstreams": [{"address": "1.1.1.1:53", "healthy": True, "srtt_ms": 12.5, "queries": 1200,
                   "errors": 1, "timeouts": 1, "consecutive_failures": 0, "last_error": "",
                   "loop_detected": False}],
    "board": "rpi-4",
    "services": {"phase": "running", "services": [{"name": "storage", "state": "running", "writable": True},
                                                  {"name": "dns", "state": "running"}]},
    "clock": {"synchronized": True, "source": "timesyncd", "waiting": False, "waiting_since": None,
              "waited_seconds": None, "wait_for_sync": True, "gave_up": False, "time": "2025-11-22T10:30:00Z"},
    "timestamp": "2025-11-22T10:30:00Z"})


def register(api: Api, *, board: Appliance, resolver: Resolver, health: Health, web: WebService,
             lifecycle: Lifecycle, clock: ClockGate, version: str) -> None:
    @api.route("GET", "/api/system", role="viewer", summary="Version, uptime, CPU, memory, disk, "
               "temperature, process, addresses, network and status", tags=["system"],
               responses={200: SystemInfo})
    async def get_system(req):
        snap = await board.system()
        temps = snap.get("temperatures") or []
        uptime = health.uptime_seconds()
        return {
            "version": version,
            "uptime": format_uptime(uptime),
            "uptime_seconds": int(uptime),
            "status": board.status().as_dict(),
            "cpu": snap.get("cpu"),
            "memory": snap.get("memory"),
            "disk": snap.get("disk"),
            "temperature": max(temps, key=lambda t: t.get("celsius") or 0) if temps else None,
            "temperatures": temps,
            "throttled": snap.get("throttled"),
            "storage_writes": snap.get("storage_writes"),
            "process": snap.get("process"),
            "listen_addresses": {
                "dns": [format_hostport(h, p) for h, p in resolver.server.addresses],
                "web": web.address(),
            },
            "network": board.network(),
            "upstreams": [s.snapshot() for s in resolver.upstreams.servers],
            "board": snap.get("board"),
            "services": lifecycle.snapshot(),
            "clock": clock.status(),
            "timestamp": now_iso(),
        }
