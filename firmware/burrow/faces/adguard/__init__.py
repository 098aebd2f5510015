"""The AdGuard Home face: AdGuard Home's HTTP API (``/control/…``, its openapi/openapi.yaml) on
Burrow's main web listener, over the same services as Burrow's own API.

What maps is served from Burrow's services: the status and protection (the pause service),
statistics and the query log (the recorder), filter lists (the list store: block lists are
AdGuard's ``filters``, allow lists its ``whitelist_filters``; threat feeds have no AdGuard
counterpart and stay out of sight), rewrites (local records), clients (Burrow's client
entries), the query log's retention (the ``privacy`` settings). What Burrow does not have —
parental control, safe browsing, safe search, turning the query log off — is reported off, and
turning it on answers 501 with a sentence saying so; never a success that did nothing.

AdGuard's filter ids are Burrow's list ids (1..64): stable for a list's life; a deleted list's
id may be given to a later list (lists_api.py).

docs/compat.md, "AdGuard Home face", has the table of endpoints.
"""

from __future__ import annotations

import datetime
import ipaddress
import time
from typing import TYPE_CHECKING

from ...config.schema import parse_hostport
from ...filtering.groups import DEFAULT as DEFAULT_GROUP, parse_client
from ...dns.decision import Decision
from ...storage.queryfilter import QueryFilter
from ...zones.store import LOCAL_NAME
from .http import Control, Refused, body_of, field

if TYPE_CHECKING:
    from ...api.routes import Api
    from ...services import Services

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


def _iso(ts: float | None) -> str | None:
    if not ts:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="milliseconds")


def user_rules(allow: dict, deny: dict) -> list[str]:
    """Burrow's allow and deny lists in AdGuard's rule syntax: ``|name^`` (that name),
    ``/\\.name$/`` (the names below it), ``/regex/``; allow entries start with ``@@``."""
    out = []
    for prefix, summary in (("", deny), ("@@", allow)):
        out += [f"{prefix}|{name}^" for name in summary["exact"]]
        out += [f"{prefix}/\\.{w[2:].replace('.', chr(92) + '.')}$/" for w in summary["wildcard"]]
        out += [f"{prefix}/{pattern}/" for pattern in summary["regex"]]
    return out


def register(api: Api, s: Services, *, web_port) -> Control:
    """Serve the face on ``api`` (the main listener's) over the services ``s``; ``web_port()``
    is the listener's bound port (AdGuard's ``http_port``). Returns the Control (its routes)."""
    control = Control(api, s.auth)
    route = control.route

    def audit(req, kind: str, summary: str, data: dict | None = None) -> None:
        s.events.publish("events", {"type": kind, "actor": req.g.principal.username,
                                    "client_ip": req.g.client_ip, "summary": f"{summary} (AdGuard Home API)",
                                    "data": data or {}})

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

    def always_on(days: int) -> dict:
        """The config of what Burrow always keeps (statistics, the query log) for ``days``, every name."""
        return {"enabled": True, "interval": days * DAY_MS, "ignored": [], "ignored_enabled": False}

    def ignores_names(body: dict) -> bool:
        return bool(field(body, "ignored", list, required=False, default=[])) \
            and field(body, "ignored_enabled", bool, required=False, default=True)

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

    # ---- filtering ----------------------------------------------------------------------------

    def kind_of(allow: bool) -> str:
        return "allow" if allow else "block"

    def filter_of(row: dict) -> dict:
        out = {"id": row["id"], "name": row["name"], "url": row["source"], "enabled": bool(row["enabled"]),
               "rules_count": int(row.get("entries") or 0)}
        updated = _iso(row.get("last_success"))
        if updated:
            out["last_updated"] = updated
        return out

    def interval_hours() -> int:
        """The lists' update interval in whole hours (the shortest, when they differ; 24 with none)."""
        intervals = [r["update_interval"] for r in s.list_store.list() if r["kind"] in ("block", "allow")]
        return max(1, round(min(intervals) / 3600)) if intervals else 24

    @route("GET", "/filtering/status")
    async def filtering_status(req):
        rows = s.list_store.list()
        return {"enabled": True, "interval": interval_hours(),
                "filters": [filter_of(r) for r in rows if r["kind"] == "block"],
                "whitelist_filters": [filter_of(r) for r in rows if r["kind"] == "allow"],
                "user_rules": user_rules(s.allow_list.summary(), s.deny_list.summary())}

    @route("POST", "/filtering/config")
    async def filtering_config(req):
        body = body_of(req)
        enabled = field(body, "enabled", bool, required=False, default=True)
        hours = field(body, "interval", int, required=False)
        if not enabled:
            raise Refused(501, "Burrow cannot turn its lists off apart from protection: pause protection "
                               "(POST /control/protection), or turn lists off one by one")
        if hours is None or hours == interval_hours():
            return None
        if not 1 <= hours <= 90 * 24:
            raise Refused(400, "interval: Burrow updates lists every 1 to 2160 hours (0, never, is not offered)")
        rows = [r for r in s.list_store.list() if r["kind"] in ("block", "allow")]
        if not rows:  # Burrow keeps an interval per list, none of its own
            raise Refused(400, "interval: there are no lists to set it for (a new list is updated every 24 hours)")
        for r in rows:  # one change per list; each is durable before the next
            s.list_store.update(r["id"], {"update_interval": hours * 3600})
        s.lists.wake()
        audit(req, "list.updated", f"every list updated every {hours} h", {"update_interval": hours * 3600})

    def find_list(url: str, allow: bool) -> dict:
        for r in s.list_store.list(kind=kind_of(allow)):
            if r["source"] == url:
                return r
        raise Refused(400, f"no {'allow' if allow else 'block'} list with the URL {url}")

    @route("POST", "/filtering/add_url")
    async def add_url(req):
        body = body_of(req)
        allow = field(body, "whitelist", bool, required=False, default=False)
        created = s.list_store.create(name=field(body, "name", str), source=field(body, "url", str),
                                      kind=kind_of(allow))
        s.lists.wake()  # downloaded and compiled by the scheduler now
        audit(req, "list.created", f"list {created['name']} added",
              {"list": created["name"], "source": created["source"]})

    @route("POST", "/filtering/remove_url")
    async def remove_url(req):
        body = body_of(req)
        row = find_list(field(body, "url", str), field(body, "whitelist", bool, required=False, default=False))
        s.list_store.delete(row["id"])
        s.lists.wake()
        audit(req, "list.deleted", f"list {row['name']} removed")

    @route("POST", "/filtering/set_url")
    async def set_url(req):
        body = body_of(req)
        row = find_list(field(body, "url", str), field(body, "whitelist", bool, required=False, default=False))
        data = field(body, "data", dict)
        changes = {"name": field(data, "name", str), "source": field(data, "url", str),
                   "enabled": field(data, "enabled", bool)}
        changes = {k: v for k, v in changes.items() if v != row[k]}
        if changes:
            s.list_store.update(row["id"], changes)
            s.lists.wake()
            audit(req, "list.updated", f"list {row['name']} changed",
                  {"before": {k: row.get(k) for k in changes}, "after": changes})

    @route("POST", "/filtering/refresh")
    async def refresh(req):
        body = body_of(req) if req.body else {}
        allow = field(body, "whitelist", bool, required=False, default=False)
        force = req.args.get("force", "").lower() in ("1", "true")
        try:
            result = await s.lists.refresh(force=force)
        except Exception as e:  # the clock is not set (ClockNotSet) or the refresh failed
            raise Refused(500, f"the lists were not refreshed: {e}") from None
        ids = {r["id"] for r in s.list_store.list(kind=kind_of(allow))}
        updated = sum(1 for list_id, report in (result.get("lists") or {}).items()
                      if int(list_id) in ids and report.get("download") == "updated")
        return {"updated": updated}

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

    def safesearch_off() -> dict:
        return {"enabled": False, **{engine: False for engine in SAFESEARCH_ENGINES}}

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

    # ---- the query log ------------------------------------------------------------------------

    def retention_days() -> int:
        return int(s.config["storage.query_log_retention_days"])

    def set_retention(req, days: int) -> None:
        if days == retention_days():
            return
        if not 1 <= days <= 365:
            raise Refused(400, "interval: Burrow keeps the query log 1 to 365 days")
        from ...config import ConfigError
        try:
            _, before, after = s.config.update("privacy", {"storage.query_log_retention_days": days})
        except ConfigError as e:
            raise Refused(400, str(e)) from None
        audit(req, "config.changed", f"query log kept {days} days", {"before": before, "after": after})

    def check_log_options(body: dict) -> None:
        if not field(body, "enabled", bool, required=False, default=True):
            raise Refused(501, "Burrow's query log cannot be turned off; shorten its retention instead")
        if field(body, "anonymize_client_ip", bool, required=False, default=False):
            raise Refused(501, NOT_AVAILABLE.format(what="anonymizing of client addresses in the query log"))
        if ignores_names(body):
            raise Refused(501, NOT_AVAILABLE.format(what="list of names kept out of the query log"))

    @route("GET", "/querylog/config")
    async def querylog_config(req):
        return {**always_on(retention_days()), "anonymize_client_ip": False}

    @route("PUT", "/querylog/config/update")
    async def querylog_config_update(req):
        body = body_of(req)
        check_log_options(body)
        interval = field(body, "interval", float)
        if interval <= 0 or interval % DAY_MS:
            raise Refused(400, "interval: Burrow keeps the query log for whole days (a multiple of 86400000 ms)")
        set_retention(req, int(interval // DAY_MS))

    @route("GET", "/querylog_info")
    async def querylog_info(req):
        return {"enabled": True, "interval": retention_days(), "anonymize_client_ip": False}

    @route("POST", "/querylog_config")
    async def querylog_config_old(req):
        body = body_of(req)
        check_log_options(body)
        days = field(body, "interval", float, required=False)
        if days is not None:
            if days != int(days):
                raise Refused(400, "interval: Burrow keeps the query log for whole days")
            set_retention(req, int(days))

    def entry_of(row: dict) -> dict:
        decision = row.get("decision") or ""
        if row["blocked"]:
            reason = "FilteredBlackList"
        elif decision == Decision.ALLOWED.label:
            reason = "NotFilteredWhiteList"
        elif decision == Decision.LOCAL.label:
            reason = "Rewrite"
        else:
            reason = "NotFilteredNotFound"
        moment = datetime.datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00"))
        return {"time": moment.isoformat(timespec="microseconds"), "client": row["client_ip"], "client_proto": "",
                "question": {"name": row["domain"], "type": row["query_type"], "class": "IN"},
                "reason": reason, "status": RCODES.get(row["response_code"], f"RCODE{row['response_code']}"),
                "elapsedMs": str(row["response_time_ms"]), "upstream": row["upstream"] or "",
                "cached": bool(row["cached"]), "answer": [], "rules": []}

    @route("GET", "/querylog")
    async def querylog(req):
        from ...api.stats import from_log, parse_time
        args = req.args
        try:
            limit = min(int(args.get("limit") or 500), MAX_QUERYLOG)
            offset = int(args.get("offset") or 0)
            until = parse_time(args["older_than"]) if args.get("older_than") else None
        except ValueError:
            raise Refused(400, "limit, offset: whole numbers; older_than: an RFC 3339 time") from None
        if limit < 1 or offset < 0:
            raise Refused(400, "limit must be positive and offset not negative")
        search = (args.get("search") or "").strip()
        client = domain = None
        if search:
            try:
                client = str(ipaddress.ip_address(search))
            except ValueError:
                domain = search
        blocked = {"blocked": True, "filtered": True, "processed": False, "whitelisted": False}.get(
            args.get("response_status") or "all")
        match = QueryFilter(domain=domain, client=client, until=until, blocked=blocked)
        page, _ = await from_log(s.recorder.search(match, limit, offset))
        data = [entry_of(r) for r in page]
        return {"data": data, "oldest": data[-1]["time"] if data else ""}

    # ---- rewrites (local records) -------------------------------------------------------------

    def rewrites() -> list[dict]:
        return [{"domain": r["name"].rstrip("."),
                 "answer": r["value"].rstrip(".") if r["type"] == "CNAME" else r["value"], "enabled": True}
                for r in s.zones.store.records(LOCAL_NAME) if r["type"] in ("A", "AAAA", "CNAME")]

    def rewrite_fields(body: dict) -> tuple[str, str, str]:
        """(domain, record type, answer) of a rewrite rule; Refused for a bad or disabled one."""
        domain = field(body, "domain", str).strip().rstrip(".").lower()
        answer = field(body, "answer", str).strip()
        if not domain or not answer:
            raise Refused(400, "domain and answer are required")
        try:
            kind = "A" if ipaddress.ip_address(answer).version == 4 else "AAAA"
        except ValueError:
            kind = "CNAME"
        if not field(body, "enabled", bool, required=False, default=True):
            raise Refused(501, "Burrow's local records cannot be turned off one by one: delete it instead")
        return domain, kind, answer

    def rewrite_body(req) -> tuple[str, str, str]:
        return rewrite_fields(body_of(req))

    def find_rewrite(domain: str, kind: str, answer: str) -> dict:
        value = answer.lower().rstrip(".") if kind == "CNAME" else str(ipaddress.ip_address(answer))
        for r in s.zones.store.records(LOCAL_NAME):
            stored = r["value"].lower().rstrip(".") if kind == "CNAME" else r["value"]
            if r["name"].rstrip(".").lower() == domain and r["type"] == kind and stored == value:
                return r
        raise Refused(400, f"no rewrite {domain} → {answer}")

    def add_rewrite(domain: str, kind: str, answer: str) -> dict:
        if kind == "CNAME":
            return s.zones.store.add_local(domain, kind, None, answer)
        return s.zones.store.add_local(domain, kind, [answer])

    @route("GET", "/rewrite/list")
    async def rewrite_list(req):
        return rewrites()

    @route("GET", "/rewrite/settings")
    async def rewrite_settings(req):
        return {"enabled": True}

    @route("POST", "/rewrite/add")
    async def rewrite_add(req):
        from ...api.zones_api import publish_change, store_call
        entry = store_call(add_rewrite, *rewrite_body(req))
        publish_change(s.zones, s.events, req, "localrecord.added",
                       f"{entry['domain']} {entry['type']} added (AdGuard Home API)", {"record": entry})

    @route("POST", "/rewrite/delete")
    async def rewrite_delete(req):
        from ...api.zones_api import publish_change, store_call
        domain, kind, answer = rewrite_body(req)
        removed = store_call(s.zones.store.delete_record, find_rewrite(domain, kind, answer)["id"])
        publish_change(s.zones, s.events, req, "localrecord.removed",
                       f"{domain} {kind} {answer} removed (AdGuard Home API)", {"record": removed})

    @route("PUT", "/rewrite/settings/update")
    async def rewrite_settings_update(req):
        if not field(body_of(req), "enabled", bool):
            raise Refused(501, "Burrow always answers its local records: delete them instead")

    @route("PUT", "/rewrite/update")
    async def rewrite_update(req):
        from ...api.zones_api import publish_change, store_call
        body = body_of(req)
        target, update = field(body, "target", dict), field(body, "update", dict)
        old = rewrite_fields(target)
        new = rewrite_fields({**target, **update})
        if old == new:
            return None
        found = find_rewrite(*old)
        added = store_call(add_rewrite, *new)  # first, so a refused new answer leaves the old one
        store_call(s.zones.store.delete_record, found["id"])
        publish_change(s.zones, s.events, req, "localrecord.changed",
                       f"{old[0]} {old[2]} changed to {new[0]} {new[2]} (AdGuard Home API)", {"record": added})

    # ---- clients ------------------------------------------------------------------------------

    def by_name() -> dict[str, list[dict]]:
        """Burrow's client entries by name (an entry without one is named by its address): an
        AdGuard client is a name with its ids, each id one of Burrow's entries."""
        out: dict[str, list[dict]] = {}
        for c in s.groups.clients:
            out.setdefault(c.get("name") or c["client"], []).append(c)
        return out

    def client_of(name: str, entries: list[dict]) -> dict:
        return {"name": name, "ids": [c["client"] for c in entries], "tags": [],
                "use_global_settings": True, "filtering_enabled": True, "parental_enabled": False,
                "safebrowsing_enabled": False, "safesearch_enabled": False, "safe_search": safesearch_off(),
                "use_global_blocked_services": True, "blocked_services": [], "upstreams": [],
                "ignore_querylog": False, "ignore_statistics": False, "upstreams_cache_enabled": False,
                "upstreams_cache_size": 0}

    def client_fields(data: dict, current: list[dict]) -> tuple[str, list]:
        """(name, ids as Burrow writes them) of an AdGuard client; Refused for what Burrow cannot
        keep: ids that are not addresses or networks, and settings of its own."""
        name = field(data, "name", str).strip()
        ids = field(data, "ids", list)
        if not name or not ids or not all(isinstance(i, str) for i in ids):
            raise Refused(400, "a client needs a name and at least one id")
        own = [key for key, off in (("upstreams", []), ("blocked_services", []), ("ignore_querylog", False),
                                    ("ignore_statistics", False))
               if data.get(key, off) not in (off, None)]
        if data.get("use_global_settings") is False and (
                data.get("filtering_enabled") is False or data.get("parental_enabled")
                or data.get("safebrowsing_enabled") or (data.get("safe_search") or {}).get("enabled")):
            own.append("use_global_settings")
        if own:
            raise Refused(501, "Burrow's clients take the settings of their groups, not their own: "
                               + ", ".join(own))
        mine = {c["id"] for c in current}
        taken = {parse_client(c["client"]) for c in s.groups.clients if c["id"] not in mine}
        nets: list = []
        for raw in ids:
            try:
                net = parse_client(raw)
            except ValueError:
                raise Refused(400, f"{raw!r}: Burrow knows clients by IP address or network (CIDR), "
                                   "not by MAC address or ClientID") from None
            if net in taken or net in nets:
                raise Refused(400, f"{raw!r} is another client's already")
            nets.append(net)
        return name, nets

    def apply_client(name: str, nets: list, current: list[dict]) -> None:
        """Make the entries ``current`` (one client's) into ``nets`` named ``name``; new ones join
        the groups of the client's first entry (the default group for a new client)."""
        groups = current[0]["groups"] if current else [DEFAULT_GROUP]
        by_net = {parse_client(c["client"]): c for c in current}
        for net, entry in by_net.items():
            if net not in nets:
                s.groups.delete_client(entry["id"])
            elif entry.get("name") != name:
                s.groups.update_client(entry["id"], {"name": name})
        for net in nets:
            if net not in by_net:
                s.groups.add_client(str(net), groups, name)

    @route("GET", "/clients")
    async def clients(req):
        return {"clients": [client_of(n, e) for n, e in by_name().items()], "auto_clients": [], "supported_tags": []}

    @route("POST", "/clients/add")
    async def clients_add(req):
        body = body_of(req)
        name, ids = client_fields(body, [])
        if name in by_name():
            raise Refused(400, f"a client named {name!r} exists already")
        apply_client(name, ids, [])
        audit(req, "client.created", f"client {name} added", {"name": name, "ids": [str(n) for n in ids]})

    @route("POST", "/clients/update")
    async def clients_update(req):
        body = body_of(req)
        old = field(body, "name", str)
        current = by_name().get(old)
        if current is None:
            raise Refused(400, f"no client named {old!r}")
        name, ids = client_fields(field(body, "data", dict), current)
        if name != old and name in by_name():
            raise Refused(400, f"a client named {name!r} exists already")
        apply_client(name, ids, current)
        audit(req, "client.updated", f"client {old} changed", {"name": name, "ids": [str(n) for n in ids]})

    @route("POST", "/clients/delete")
    async def clients_delete(req):
        name = field(body_of(req), "name", str)
        current = by_name().get(name)
        if current is None:
            raise Refused(400, f"no client named {name!r}")
        for entry in current:
            s.groups.delete_client(entry["id"])
        audit(req, "client.deleted", f"client {name} removed", {"name": name})

    return control

