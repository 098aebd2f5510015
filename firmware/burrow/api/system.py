"""GET /api/system: version, uptime, CPU, memory, disk, temperature, process, listen addresses,
network, the appliance status and upstream health.

Hardware and OS figures come from the board seam (``app.appliance.system()``, psutil and sysfs
read off the loop); without an appliance (tests, a plain PC run) the same SystemMonitor is
asked directly.
"""

from __future__ import annotations

import asyncio

from .errors import now_iso
from .health import format_uptime
from .routes import Api
from .schema import Int, List, Obj, Str

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
    "board": "rpi-4", "timestamp": "2025-11-22T10:30:00Z"})


def status_of(app) -> dict:
    """``{"state", "reasons", "led"}``: the appliance's status, or the same reducer fed from
    readiness when there is no appliance."""
    appliance = getattr(app, "appliance", None)
    if appliance is not None:
        return appliance.status().as_dict()
    from ..board.status import AppState, reduce
    pool = getattr(app, "upstreams", None)
    return reduce(AppState(
        booting=not getattr(app, "ready", False),
        faults=tuple(app.faults.reasons()),
        upstreams_total=len(pool.servers) if pool is not None else 0,
        upstreams_healthy=pool.healthy_count if pool is not None else 0,
    )).as_dict()


async def system_snapshot(app) -> dict:
    appliance = getattr(app, "appliance", None)
    if appliance is not None:
        return await appliance.system()
    from ..board import system as board_system
    data_dir = getattr(app, "data_dir", None) or "."
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, board_system.snapshot, "/", data_dir)


def web_address(app) -> str:
    from ..config.schema import format_hostport, parse_hostport
    host, port = parse_hostport(app.config["server.web_ui_address"], 8080)
    return format_hostport(host, getattr(app, "web_port", None) or port)


def register(api: Api, app) -> None:
    @api.route("GET", "/api/system", role="viewer", summary="Version, uptime, CPU, memory, disk, "
               "temperature, process, addresses, network and status", tags=["system"],
               responses={200: SystemInfo})
    async def get_system(req):
        snap = await system_snapshot(app)
        temps = snap.get("temperatures") or []
        appliance = getattr(app, "appliance", None)
        dns = getattr(app, "dns", None)
        uptime = app.uptime_seconds()
        return {
            "version": app.version,
            "uptime": format_uptime(uptime),
            "uptime_seconds": int(uptime),
            "status": status_of(app),
            "cpu": snap.get("cpu"),
            "memory": snap.get("memory"),
            "disk": snap.get("disk"),
            "temperature": max(temps, key=lambda t: t.get("celsius") or 0) if temps else None,
            "temperatures": temps,
            "throttled": snap.get("throttled"),
            "storage_writes": snap.get("storage_writes"),
            "process": snap.get("process"),
            "listen_addresses": {
                "dns": [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in (dns.addresses if dns else [])],
                "web": web_address(app),
            },
            "network": appliance.network() if appliance is not None else {"available": False},
            "upstreams": [s.snapshot() for s in app.upstreams.servers],
            "board": snap.get("board"),
            "timestamp": now_iso(),
        }
