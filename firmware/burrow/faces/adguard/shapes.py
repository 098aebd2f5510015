"""What the AdGuard Home face's parts share: the AdGuard version it speaks, its caps, and the
shapes of what Burrow always keeps or never has."""

from __future__ import annotations

import datetime

from .http import field

# The AdGuard Home release whose API this face follows; clients check for at least v0.107.68
# (the adguardhome library's MINIMUM_VERSION). Burrow's own version rides as build metadata.
ADGUARD_API_VERSION = "v0.107.79"
STATS_HOURS = 24  # GET /control/stats: the last day, hour by hour (time_units "hours")
TOP = 10  # entries in each top_* list
MAX_QUERYLOG = 1000  # entries in one GET /control/querylog answer
DAY_MS = 86_400_000
STATS_KEPT_DAYS = 7  # the live statistics' buckets (api/stats.py STATS_WINDOW)
SAFESEARCH_ENGINES = ("bing", "duckduckgo", "ecosia", "google", "pixabay", "yandex", "youtube")
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
NOT_AVAILABLE = "Burrow has no {what}: it stays off (Burrow answers DNS from its lists, rules and local records)"


def iso(ts: float | None) -> str | None:
    if not ts:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="milliseconds")


def always_on(days: int) -> dict:
    """The config of what Burrow always keeps (statistics, the query log) for ``days``, every name."""
    return {"enabled": True, "interval": days * DAY_MS, "ignored": [], "ignored_enabled": False}


def ignores_names(body: dict) -> bool:
    """Whether a config asks for names kept out (of the statistics or the query log)."""
    return bool(field(body, "ignored", list, required=False, default=[])) \
        and field(body, "ignored_enabled", bool, required=False, default=True)


def safesearch_off() -> dict:
    return {"enabled": False, **{engine: False for engine in SAFESEARCH_ENGINES}}
