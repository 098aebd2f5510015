"""Health endpoints, public without auth: /healthz, /readyz, /api/health (seed 003 shapes)."""

from __future__ import annotations

from microdot import Microdot


def format_uptime(seconds: float) -> str:
    """Go-style duration as the seed shows it: "2h15m30s", "45s", "3m0s"."""
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    if m:
        return f"{m}m{sec}s"
    return f"{sec}s"


def health_app(app) -> Microdot:
    web = Microdot()

    @web.get("/healthz")
    async def healthz(request):
        return {"status": "alive"}

    @web.get("/readyz")
    async def readyz(request):
        ready, checks = app.readiness()
        if ready:
            return {"status": "ready", "checks": checks}
        return {"status": "not_ready", "checks": checks}, 503

    @web.get("/api/health")
    async def api_health(request):
        return {"status": "ok", "uptime": format_uptime(app.uptime_seconds()), "version": app.version}

    return web
