"""GET /api/events: the audit log and system events, newest first, with paging and filters."""

from __future__ import annotations

import datetime
import re
import time
from typing import TYPE_CHECKING

from ..storage.events import MAX_FETCH_LIMIT, SEVERITIES
from .errors import ValidationError
from .routes import Api
from .schema import DECIMAL, DURATION_UNIT, RFC3339, Int, List, Num, Obj, Query, Str

if TYPE_CHECKING:
    from ..storage.events import EventLog

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# What parse_time reads ("": none): one duration term, unix seconds (below 1e11), RFC 3339
TIME = f"^(|{DECIMAL}{DURATION_UNIT}|[0-9]{{1,10}}(\\.[0-9]+)?|{RFC3339})$"
TIME_HINT = "a duration (24h, 7d) or a time (RFC 3339 or unix seconds)"  # said when TIME refuses
TIME_HELP = ("a duration back from now (90s, 15m, 24h, 7d), an RFC 3339 time "
             "(2025-11-22T10:00:00Z) or unix seconds")


def parse_duration(text: str) -> float | None:
    """Seconds for "90s", "15m", "1.5h", "7d"; None if ``text`` is not a duration."""
    m = _DURATION_RE.match(text.strip().lower())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse_time(text: str | None, field: str, now: float | None = None) -> float | None:
    """Unix seconds for a query parameter given as a duration back from now, RFC 3339 or unix
    seconds; None when absent. Raises ValidationError naming ``field`` otherwise."""
    if text is None or text == "":
        return None
    now = time.time() if now is None else now
    text = text.strip()
    seconds = parse_duration(text)
    if seconds is not None:
        return now - seconds
    try:
        value = float(text)
        if value == value and 0 <= value < 1e11:
            return value
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        if re.fullmatch(RFC3339, text):  # the declared shape, but no such day (09-31) or hour
            raise ValidationError([(field, f"{text!r} is not a date and time that exists")]) from None
        raise ValidationError([(field, TIME_HELP.replace("a duration", "must be a duration", 1))]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


EventItem = Obj("Event", {
    "id": Int(), "timestamp": Str(description="ISO 8601 UTC"), "ts": Num(description="unix seconds"),
    "type": Str(description="dotted type: auth.login, auth.login_failed, backup.restored, ..."),
    "severity": Str(enum=list(SEVERITIES)),
    "actor": Str(nullable=True, description="who did it (username), if known"),
    "client_ip": Str(nullable=True), "summary": Str(nullable=True),
    "data": Obj("EventData", {}, additional=True, description="details; never secrets"),
})
EventPage = Obj("EventPage", {
    "events": List(EventItem, max_items=MAX_FETCH_LIMIT), "total": Int(), "limit": Int(),
    "offset": Int(),
}, example={"events": [{"id": 42, "timestamp": "2025-11-22T10:30:00.000Z", "ts": 1763807400.0,
                        "type": "auth.login_failed", "severity": "warning", "actor": "bob",
                        "client_ip": "192.168.1.5", "summary": "auth.login_failed by bob",
                        "data": {"reason": "bad_password"}}],
            "total": 1, "limit": 100, "offset": 0})

EventQuery = Query({
    "limit": Int(minimum=1, maximum=MAX_FETCH_LIMIT, default=100),
    "offset": Int(minimum=0, maximum=10_000_000, default=0),
    "type": Str(required=False, max_len=64, pattern=r"^[A-Za-z0-9_.*-]+$",
                description='exact type, or a prefix ending in "." (auth. matches auth.login)'),
    "actor": Str(required=False, max_len=256),
    "severity": Str(required=False, enum=list(SEVERITIES)),
    "since": Str(required=False, max_len=64, pattern=TIME, hint=TIME_HINT, description=TIME_HELP),
    "until": Str(required=False, max_len=64, pattern=TIME, hint=TIME_HINT, description=TIME_HELP),
})


def register(api: Api, *, eventlog: EventLog) -> None:
    @api.route("GET", "/api/events", role="viewer", summary="Audit log and system events",
               tags=["events"], query=EventQuery, responses={200: EventPage})
    async def list_events(req):
        q = req.g.query
        since = parse_time(q.get("since"), "since")
        until = parse_time(q.get("until"), "until")
        await eventlog.sync()  # events published a moment ago are visible at once
        events, total = eventlog.query(q["limit"], q["offset"], type=q.get("type"),
                                       actor=q.get("actor"), since=since, until=until,
                                       severity=q.get("severity"))
        return {"events": events, "total": total, "limit": q["limit"], "offset": q["offset"]}

