"""/api/reports: query-log and statistics exports as CSV or JSON downloads.

The query export is streamed: pages of ``PAGE_ROWS`` rows of the whole query log — rows the
recorder holds in memory, the hot tier and the archive, read through ``Recorder.search`` with
one ``QueryFilter`` of the window — are written as they come (keyset paging on the row id, so
rows taken in, flushed or archived meanwhile neither repeat nor shift pages), so memory stays at
one page whatever the window. It is bounded:
at most ``MAX_EXPORT_ROWS`` rows, newest first; the response says how many matched
(``X-Total-Count``), how many it carries (``X-Export-Rows``) and whether it was cut
(``X-Export-Truncated``), and the JSON body repeats that up front.

CSV cells that a spreadsheet would run as a formula (starting with = + - @ or a tab) are
prefixed with a quote: domain names come from the network, so they are attacker-controlled.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from typing import TYPE_CHECKING

import ujson
from microdot import Response

from ..storage.queryfilter import QueryFilter
from ..storage.querylog import iso_utc
from .errors import ValidationError
from .events_api import TIME, TIME_HELP, TIME_HINT, parse_duration, parse_time
from .routes import Api
from .schema import DECIMAL, DURATION_UNIT, Int, Query, Str

if TYPE_CHECKING:
    from ..telemetry.recorder import Recorder

MAX_EXPORT_ROWS = 100_000  # per export; a week of a busy home network is more: narrow the window
PAGE_ROWS = 1000  # rows read per worker-thread round trip
MAX_STATS_POINTS = 10_080  # a week of minutes (the stats buckets' whole span)
QUERY_COLUMNS = ("id", "timestamp", "client_ip", "domain", "query_type", "response_code",
                 "decision", "blocked", "cached", "response_time_ms", "upstream", "block_trace")
STATS_COLUMNS = ("timestamp", "total", "blocked", "cached")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        value = json.dumps(value, separators=(",", ":"))
    text = str(value)
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return text


def csv_line(values) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([csv_safe(v) for v in values])
    return buf.getvalue()


def _stamp(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts))


def _download_headers(kind: str, fmt: str, extra: dict | None = None) -> dict:
    ctype = "text/csv; charset=utf-8" if fmt == "csv" else "application/json; charset=UTF-8"
    name = f"burrow-{kind}-{_stamp(time.time())}.{fmt}"
    return {"Content-Type": ctype, "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store", **(extra or {})}


async def stream_queries(recorder: Recorder, match: QueryFilter, first: list[dict], limit: int,
                         fmt: str, total: int):
    """Async generator of the export body (str chunks): ``first`` (the first page, read with
    the total), then pages below its last id, at most ``limit`` rows in all."""
    sent = 0
    page = first
    want = min(PAGE_ROWS, limit)  # what each page was asked for
    if fmt == "csv":
        yield csv_line(QUERY_COLUMNS)
    else:
        head = {"since": iso_utc(match.since) if match.since is not None else None,
                "until": iso_utc(match.until) if match.until is not None else None,
                "total": total, "limit": limit, "truncated": total > limit}
        yield ujson.dumps(head, escape_forward_slashes=False)[:-1] + ',"queries":['
    while page:
        if fmt == "csv":
            chunk = "".join(csv_line([row.get(c) for c in QUERY_COLUMNS]) for row in page)
        else:
            chunk = ",".join(ujson.dumps(row, ensure_ascii=False, escape_forward_slashes=False)
                             for row in page)
            if sent:
                chunk = "," + chunk
        sent += len(page)
        yield chunk
        if sent >= limit or len(page) < want:
            break
        # Keyset paging below the last id sent: rows taken in meanwhile (higher ids), and rows
        # moving from memory to the hot tier to the archive, neither repeat nor shift pages.
        want = min(PAGE_ROWS, limit - sent)
        page, _ = await recorder.search(dataclasses.replace(match, below_id=page[-1]["id"]), want)
    if fmt == "json":
        yield "]}"


Format = Str(enum=["csv", "json"], default="csv", description="csv (with a header row) or json")


def register(api: Api, *, recorder: Recorder) -> None:
    @api.route("GET", "/api/reports/queries", role="viewer", tags=["reports"], raw_response=True,
               summary=f"Export the query log (CSV or JSON, streamed, at most {MAX_EXPORT_ROWS} rows)",
               query=Query({
                   "format": Format,
                   "since": Str(required=False, max_len=64, pattern=TIME, hint=TIME_HINT, description=TIME_HELP),
                   "until": Str(required=False, max_len=64, pattern=TIME, hint=TIME_HINT, description=TIME_HELP),
                   "limit": Int(minimum=1, maximum=MAX_EXPORT_ROWS, default=MAX_EXPORT_ROWS,
                                description="rows at most (newest first)"),
               }),
               responses={200: "the export as an attachment; X-Total-Count, X-Export-Rows and "
                               "X-Export-Truncated say how much of the window it holds"})
    async def export_queries(req):
        q = req.g.query
        since = parse_time(q.get("since"), "since")
        until = parse_time(q.get("until"), "until")
        since, until = (None if t is None else min(max(t, 0.0), 1e11) for t in (since, until))  # iso_utc range
        if since is not None and until is not None and until <= since:
            raise ValidationError([("until", "must be after since")])
        # The first page and the total in one read of the whole log (rows in memory, the hot
        # tier and the archive: Recorder.search), so the headers and the body agree.
        match = QueryFilter(since=since, until=until)
        first, total = await recorder.search(match, min(PAGE_ROWS, q["limit"]))
        rows = min(total, q["limit"])
        headers = _download_headers("queries", q["format"], {
            "X-Total-Count": str(total), "X-Export-Rows": str(rows),
            "X-Export-Truncated": "true" if total > rows else "false"})
        body = stream_queries(recorder, match, first, q["limit"], q["format"], total)
        return Response(body, 200, headers)

    @api.route("GET", "/api/reports/stats", role="viewer", tags=["reports"], raw_response=True,
               summary="Export the queries-over-time series (CSV or JSON)",
               query=Query({
                   "format": Format,
                   "since": Str(default="24h", max_len=64, pattern=TIME, hint=TIME_HINT,
                                description="window: a duration (24h, 7d) or a start time; at most 7d"),
                   "step": Str(default="1h", max_len=16, pattern=f"^{DECIMAL}{DURATION_UNIT}$",
                               description="bucket size: 1m, 5m, 1h, 1d"),
               }),
               responses={200: "the series as an attachment: timestamp, total, blocked, cached"})
    async def export_stats(req):
        q = req.g.query
        now = time.time()
        start = parse_time(q["since"] or "24h", "since", now)  # "?since=" means the default
        window = max(60.0, now - start)
        step = parse_duration(q["step"])
        if step is None or not 60 <= step <= MAX_STATS_POINTS * 60:  # a huge step looped for ages
            raise ValidationError([("step", "must be a duration of at least 1m (1m, 5m, 1h, 1d)")])
        if window / step > MAX_STATS_POINTS:
            raise ValidationError([("step", f"gives more than {MAX_STATS_POINTS} points; use a larger step")])
        points = recorder.stats.timeseries(window, step, now=now)
        headers = _download_headers("stats", q["format"])
        if q["format"] == "csv":
            body = csv_line(STATS_COLUMNS) + "".join(
                csv_line([p[c] for c in STATS_COLUMNS]) for p in points)
        else:
            body = ujson.dumps({"since": iso_utc(now - window), "step_seconds": max(60, round(step / 60) * 60),
                                "points": points}, escape_forward_slashes=False)
        return Response(body, 200, headers)
