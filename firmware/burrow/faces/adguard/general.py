"""The AdGuard Home face: the status, protection, profile, statistics, and what Burrow does not
have (parental control, safe browsing, safe search: reported off; turning one on answers 501)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ...config.schema import parse_hostport
from .http import Refused, body_of, field
from .shapes import (ADGUARD_API_VERSION, DAY_MS, NOT_AVAILABLE, SAFESEARCH_ENGINES, STATS_HOURS, STATS_KEPT_DAYS,
                     TOP, always_on, ignores_names, safesearch_off)

if TYPE_CHECKING:
    from ...services import Services


def register(route, s: Services, audit, *, web_port) -> None:
    """Declare this part's routes with ``route`` (Control.route) over the services ``s``;
    ``web_port()`` is the main listener's bound port."""
    # ---- status and protection ----------------------------------------------------------------

    def protection() -> dict:
        state = s.pause.state(None)
        left = state["remaining_seconds"]
        return {"protection_enabled": state["enabled"],
                "protection_disabled_duration": 0 if state["enabled"] or left is None else left * 1000}

    @route("GET", "/status")
    async def status(req):
        # Where DNS is served: the bound addresses (a configured port 0 is bound to one), else the configured
        addresses = list(s.resolver.server.addresses) \
            or [parse_hostport(a, 53) for a in s.config["server.listen_address"]]
        return {"version": f"{ADGUARD_API_VERSION}+burrow.{s.version}", "language": "en",
                "running": s.health.ready, "dns_addresses": [host for host, _ in addresses],
                "dns_port": addresses[0][1] if addresses else 53,
                "http_port": web_port(), "dhcp_available": False, **protection(),
                "start_time": round((time.time() - s.health.uptime_seconds()) * 1000)}

    def set_protection(req, enabled: bool, duration_ms: int | None) -> None:
        before = s.pause.state(None)
        if enabled:
            s.pause.resume(None)
        else:
            try:
                s.pause.pause(None if not duration_ms else duration_ms / 1000)
            except ValueError as e:
                raise Refused(400, f"duration: {e}") from None
        audit(req, "blocking.resumed" if enabled else "blocking.paused",
              "blocking resumed" if enabled else "blocking paused",
              {"before": before, "after": s.pause.state(None)})

    @route("POST", "/protection")
    async def post_protection(req):
        body = body_of(req)
        duration = field(body, "duration", int, required=False)
        if duration is not None and duration < 0:
            raise Refused(400, "duration: must not be negative")
        set_protection(req, field(body, "enabled", bool), duration)

    @route("POST", "/dns_config")
    async def dns_config(req):
        body = body_of(req)
        other = sorted(set(body) - {"protection_enabled"})
        if other:
            raise Refused(400, "Burrow takes only protection_enabled here; its DNS settings are in its own "
                               f"API (/api/config): not {', '.join(other)}")
        if "protection_enabled" in body:
            set_protection(req, field(body, "protection_enabled", bool), None)

    @route("POST", "/version.json")
    async def version_json(req):
        return {"disabled": True}  # Burrow is updated with its image, never through this API

    @route("GET", "/profile")
    async def profile(req):
        return {"name": req.g.principal.username, "language": "en", "theme": "auto"}

    @route("PUT", "/profile/update")
    async def profile_update(req):
        body = body_of(req)
        if field(body, "language", str, required=False, default="en") not in ("en", "") \
                or field(body, "theme", str, required=False, default="auto") not in ("auto", ""):
            raise Refused(501, NOT_AVAILABLE.format(what="other language or theme for this API's profile"))

    # ---- statistics ---------------------------------------------------------------------------

    @route("GET", "/stats")
    async def stats(req):
        from ...api.stats import read_log
        seconds = STATS_HOURS * 3600
        since = time.time() - seconds
        summary = s.recorder.stats.summary(seconds)
        points = s.recorder.stats.timeseries(seconds, 3600)[-STATS_HOURS:]
        top = await read_log(s.recorder, "top_domains", TOP, False, since)
        blocked = await read_log(s.recorder, "top_domains", TOP, True, since)
        clients = await read_log(s.recorder, "top_clients", TOP, since)
        zeros = [0] * len(points)
        return {
            "time_units": "hours",
            "num_dns_queries": summary["total_queries"],
            "num_blocked_filtering": summary["blocked_queries"],
            "num_replaced_safebrowsing": 0, "num_replaced_safesearch": 0, "num_replaced_parental": 0,
            "avg_processing_time": round(summary["avg_response_ms"] / 1000, 6),
            "top_queried_domains": [{d["domain"]: d["queries"]} for d in top],
            "top_blocked_domains": [{d["domain"]: d["queries"]} for d in blocked],
            "top_clients": [{c["client_ip"]: c["queries"]} for c in clients],
            "top_upstreams_responses": [], "top_upstreams_avg_time": [],
            "dns_queries": [p["total"] for p in points],
            "blocked_filtering": [p["blocked"] for p in points],
            "replaced_safebrowsing": zeros, "replaced_parental": zeros,
        }

    @route("GET", "/stats/config")
    async def get_stats_config(req):
        return always_on(STATS_KEPT_DAYS)

    @route("PUT", "/stats/config/update")
    async def stats_config_update(req):
        body = body_of(req)
        kept = STATS_KEPT_DAYS * DAY_MS
        if not field(body, "enabled", bool, required=False, default=True) \
                or field(body, "interval", float, required=False, default=kept) != kept or ignores_names(body):
            raise Refused(501, f"Burrow's statistics are always on and kept {STATS_KEPT_DAYS} days, every name counted")

    # ---- what Burrow does not have ------------------------------------------------------------

    for path, what in (("parental", "parental control"), ("safebrowsing", "safe browsing")):
        def toggles(path: str = path, what: str = what) -> None:
            @route("GET", f"/{path}/status")
            async def toggle_status(req):
                return {"enabled": False}

            @route("POST", f"/{path}/enable")
            async def toggle_enable(req):
                raise Refused(501, NOT_AVAILABLE.format(what=what))

            @route("POST", f"/{path}/disable")
            async def toggle_disable(req):
                return None  # it is off: so it stays

        toggles()

    @route("GET", "/safesearch/status")
    async def safesearch_status(req):
        return safesearch_off()

    @route("POST", "/safesearch/enable")
    async def safesearch_enable(req):
        raise Refused(501, NOT_AVAILABLE.format(what="safe search"))

    @route("POST", "/safesearch/disable")
    async def safesearch_disable(req):
        return None

    @route("PUT", "/safesearch/settings")
    async def safesearch_settings(req):
        body = body_of(req)
        if any(field(body, k, bool, required=False, default=False) for k in ("enabled", *SAFESEARCH_ENGINES)):
            raise Refused(501, NOT_AVAILABLE.format(what="safe search"))
