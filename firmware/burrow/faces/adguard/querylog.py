"""The AdGuard Home face: the query log and its retention (the ``privacy`` settings)."""

from __future__ import annotations

import datetime
import ipaddress
from typing import TYPE_CHECKING

from ...dns.decision import Decision
from ...storage.queryfilter import QueryFilter
from .http import Refused, body_of, field
from .shapes import DAY_MS, MAX_QUERYLOG, NOT_AVAILABLE, RCODES, always_on, ignores_names

if TYPE_CHECKING:
    from ...services import Services


def register(route, s: Services, audit, **kw) -> None:
    """Declare this part's routes with ``route`` (Control.route) over the services ``s``."""

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
