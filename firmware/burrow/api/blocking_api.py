"""GET/POST /api/blocking: pause blocking for a while or until resumed, and resume."""

from __future__ import annotations

from .errors import ApiError
from .routes import Api
from .schema import Bool, Int, Obj, Str

BlockingState = Obj("BlockingState", {
    "enabled": Bool(description="false while blocking is paused"),
    "paused_until": Str(nullable=True, description="when a timed pause ends (UTC)"),
    "remaining_seconds": Int(nullable=True, minimum=0),
}, example={"enabled": False, "paused_until": "2026-11-24T12:05:00Z", "remaining_seconds": 300})

BlockingChange = Obj("BlockingChange", {
    "enabled": Bool(description="false pauses blocking, true resumes it"),
    "duration": Int(required=False, minimum=1, maximum=7 * 86400,
                    description="seconds to pause; without it the pause lasts until resumed"),
    "group": Str(required=False, max_len=64, description="client group; only \"default\" exists yet"),
}, example={"enabled": False, "duration": 300})


def register(api: Api, app) -> None:
    @api.route("GET", "/api/blocking", role="viewer", summary="Whether blocking is on, and time left in a pause",
               tags=["blocking"], responses={200: BlockingState})
    async def get_blocking(req):
        return app.pause.state()

    @api.route("POST", "/api/blocking", role="admin", summary="Pause blocking (optionally for a time) or resume it",
               tags=["blocking"], body=BlockingChange, responses={200: BlockingState})
    async def set_blocking(req):
        body = req.g.body
        if body.get("group") not in (None, "default"):
            raise ApiError(404, f"no client group named {body['group']!r}", error="not_found")
        before = app.pause.state()
        if body["enabled"]:
            if "duration" in body:
                raise ApiError(400, "duration only goes with enabled=false",
                               [{"field": "duration", "message": "only when pausing"}])
            app.pause.resume()
        else:
            app.pause.pause(body.get("duration"))
        after = app.pause.state()
        app.events.publish("events", {
            "type": "blocking.resumed" if body["enabled"] else "blocking.paused",
            "actor": req.g.principal.username, "client_ip": req.g.client_ip,
            "summary": "blocking resumed" if body["enabled"] else
            f"blocking paused {'for %d s' % body['duration'] if 'duration' in body else 'until resumed'}",
            "data": {"before": before, "after": after}})
        return after
