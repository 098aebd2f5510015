"""Pi-hole v5's ``/admin/api.php``, for dashboards still configured for v5 (Homepage's
``version: 5``, older Home Assistant set-ups): ``?summaryRaw`` (and ``?summary``), ``?status``,
``?versions``, ``?enable`` and ``?disable=N``, each with ``&auth=<token>``.

v5's ``auth`` was a hash of the web password; here it is a Burrow API token (any scope: v5's
token could read and switch blocking, which a read token may do too). A call without a valid
token answers ``[]``, as v5 does. v5 answered flat JSON without ``took``; so does this.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from microdot import Response

from ...api.routes import client_ip
from ...auth.errors import AuthError
from ...storage.events import publish_event
from . import stats

if TYPE_CHECKING:
    from ...services import Services
    from .face import PiholeFace

MAX_DISABLE = 7 * 86400  # seconds (Burrow's longest timed pause)


def _json(payload) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), 200,
                    {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"})


def summary_raw(s: Services, day: dict, ever: dict) -> dict:
    """v5's summaryRaw fields that Burrow has (no per-reply-type counts: Burrow's statistics do
    not keep them, so those keys are left out rather than sent as zeros)."""
    figures = s.recorder.stats.summary(stats.DAY)
    decisions = s.recorder.stats.decision_counts(stats.DAY)
    forwarded = sum(decisions.get(d.label, 0) for d in stats.FORWARDED)
    created = stats.gravity(s)["last_update"]
    age = max(0, int(time.time()) - created) if created else 0
    return {
        "domains_being_blocked": stats.gravity(s)["domains_being_blocked"],
        "dns_queries_today": figures["total_queries"],
        "ads_blocked_today": figures["blocked_queries"],
        "ads_percentage_today": figures["block_rate"],
        "unique_domains": day["domains"],
        "queries_forwarded": forwarded,
        "queries_cached": figures["cached_queries"],
        "clients_ever_seen": ever["clients"],
        "unique_clients": day["clients"],
        "dns_queries_all_types": figures["total_queries"],
        "privacy_level": 0,
        "status": "disabled" if s.pause.group_paused(None) else "enabled",
        "gravity_last_updated": {"file_exists": bool(created), "absolute": created,
                                 "relative": {"days": age // 86400, "hours": age % 86400 // 3600,
                                              "minutes": age % 3600 // 60}},
    }


def register(face: PiholeFace, s: Services) -> None:
    def caller(req):
        token = req.args.get("auth") if req.args else None
        if not token:
            return None
        try:
            return s.auth.authenticate_api_token(token)
        except AuthError:
            return None

    async def api_php(req):
        args = req.args or {}
        if "versions" in args:
            version = f"v{s.version}"
            return _json({"core_update": False, "web_update": False, "FTL_update": False,
                          "core_current": version, "web_current": version, "FTL_current": version,
                          "core_latest": "", "web_latest": "", "FTL_latest": "",
                          "core_branch": "burrow", "web_branch": "burrow", "FTL_branch": "burrow"})
        principal = caller(req)
        if principal is None:
            return _json([])
        if "summaryRaw" in args or "summary" in args:
            try:
                day = await s.recorder.query(s.recorder.db.distinct_counts, time.time() - stats.DAY)
                ever = await s.recorder.query(s.recorder.db.distinct_counts, None)
            except Exception:
                return _json([])
            return _json(summary_raw(s, day, ever))
        if "enable" in args:
            s.pause.resume()
            publish_event(s.events, "blocking.resumed", actor=f"{principal.username} (Pi-hole v5 API)",
                          client_ip=client_ip(req), summary="blocking resumed")
            return _json({"status": "enabled"})
        if "disable" in args:
            raw = args.get("disable") or ""
            try:
                seconds = float(raw) if raw not in ("", "true", "True") else 0.0
            except ValueError:
                return _json([])
            duration = min(seconds, MAX_DISABLE) if seconds > 0 else None
            s.pause.pause(duration)
            publish_event(s.events, "blocking.paused", actor=f"{principal.username} (Pi-hole v5 API)",
                          client_ip=client_ip(req),
                          summary=f"blocking paused {'for %d s' % duration if duration else 'until resumed'}")
            return _json({"status": "disabled"})
        if "status" in args:
            return _json({"status": "disabled" if s.pause.group_paused(None) else "enabled"})
        return _json([])

    face.web.route("/admin/api.php", methods=["GET"])(api_php)
