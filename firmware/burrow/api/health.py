"""Health endpoints, public without auth: /healthz, /readyz, /api/health (seed 003 shapes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .routes import Api
from .schema import List, Obj, Str

if TYPE_CHECKING:
    from ..health import Health as HealthService


def format_uptime(seconds: float) -> str:
    """Go-style duration as the seed shows it: "2h15m30s", "3m0s", "45s"."""
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    if m:
        return f"{m}m{sec}s"
    return f"{sec}s"


Alive = Obj("Alive", {"status": Str(enum=["alive"])}, example={"status": "alive"})
Health = Obj("Health", {"status": Str(enum=["ok"]), "uptime": Str(), "version": Str()},
             example={"status": "ok", "uptime": "2h15m30s", "version": "0.1.0"})
Readiness = Obj("Readiness", {"status": Str(enum=["ready", "not_ready"]),
                              "checks": Obj("ReadinessChecks", {}, additional=True),
                              "reasons": List(Str(), description=(
                                  "what needs a person (the fault status): a background task that "
                                  "died, storage that cannot be written, stored settings moved to "
                                  "the quarantine; empty when there is none"))},
                example={"status": "not_ready", "checks": {"storage": "ok", "upstreams": "ok",
                                                           "blocklist": "not_configured", "tasks": "fault"},
                         "reasons": ["background task housekeeping died: KeyError: 'x' "
                                     "(6 times in 600 s; not restarted again)"]})


def register(api: Api, *, health: HealthService, version: str) -> None:
    @api.route("GET", "/healthz", role="public", summary="Liveness probe", tags=["health"],
               responses={200: Alive})
    async def healthz(req):
        return {"status": "alive"}

    @api.route("GET", "/readyz", role="public", summary="Readiness probe", tags=["health"],
               responses={200: Readiness, 503: Readiness})
    async def readyz(req):
        ready, checks = health.readiness()
        reasons = health.reasons()
        if ready:
            return {"status": "ready", "checks": checks, "reasons": reasons}
        return {"status": "not_ready", "checks": checks, "reasons": reasons}, 503

    @api.route("GET", "/api/health", role="public", summary="Server health and uptime", tags=["health"],
               responses={200: Health})
    async def api_health(req):
        return {"status": "ok", "uptime": format_uptime(health.uptime_seconds()), "version": version}
