"""GET/POST /api/blocking: pause blocking for a while or until resumed, and resume — for the
whole network or for one client group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ApiError
from .routes import Api
from .schema import Bool, Int, Obj, Query, Str

if TYPE_CHECKING:
    from ..filtering.groups import Groups
    from ..filtering.pause import BlockingPause
    from ..telemetry.events import EventBus

BlockingState = Obj("BlockingState", {
    "enabled": Bool(description="false while blocking is paused (for the group asked about, or for everyone)"),
    "paused_until": Str(nullable=True, description="when a timed pause ends (UTC)"),
    "remaining_seconds": Int(nullable=True, minimum=0),
    "groups": Obj("PausedGroups", {}, additional=True, required=False, description="paused groups, each with its own enabled / paused_until / "
                                              "remaining_seconds (whole-network state only)"),
    "group": Str(required=False, description="the group this state is about"),
}, example={"enabled": True, "paused_until": None, "remaining_seconds": None,
            "groups": {"kids": {"enabled": False, "paused_until": "2026-11-24T12:05:00Z",
                                "remaining_seconds": 300}}})

BlockingChange = Obj("BlockingChange", {
    "enabled": Bool(description="false pauses blocking, true resumes it"),
    "duration": Int(required=False, minimum=1, maximum=7 * 86400,
                    description="seconds to pause; without it the pause lasts until resumed"),
    "group": Str(required=False, max_len=64, description="client group to pause or resume; without it, "
                                                         "the whole network"),
}, only_with={"duration": ("enabled", False)}, example={"enabled": False, "duration": 300})


def register(api: Api, *, pause: BlockingPause, groups: Groups, events: EventBus) -> None:
    @api.route("GET", "/api/blocking", role="viewer", summary="Whether blocking is on, and time left in a pause",
               tags=["blocking"], responses={200: BlockingState, 404: "no such client group"},
               query=Query({"group": Str(required=False, max_len=64, description="one client group's state")}))
    async def get_blocking(req):
        group = req.g.query.get("group")
        if group is not None and not groups.exists(group):
            raise ApiError(404, f"no client group named {group!r}", error="not_found")
        return pause.state(group)

    @api.route("POST", "/api/blocking", role="admin", summary="Pause blocking (optionally for a time) or resume it",
               tags=["blocking"], body=BlockingChange, responses={200: BlockingState, 404: "no such client group"})
    async def set_blocking(req):
        body = req.g.body
        group = body.get("group")
        if group is not None and not groups.exists(group):
            raise ApiError(404, f"no client group named {group!r}", error="not_found")
        before = pause.state(group)
        if body["enabled"]:
            pause.resume(group)
        else:
            pause.pause(body.get("duration"), group)
        after = pause.state(group)
        who = f" for group {group}" if group is not None else ""
        events.publish("events", {
            "type": "blocking.resumed" if body["enabled"] else "blocking.paused",
            "actor": req.g.principal.username, "client_ip": req.g.client_ip,
            "summary": f"blocking resumed{who}" if body["enabled"] else
            f"blocking paused{who} {'for %d s' % body['duration'] if 'duration' in body else 'until resumed'}",
            "data": {"before": before, "after": after, "group": group}})
        return after
