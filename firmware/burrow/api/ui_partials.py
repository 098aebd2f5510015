"""The seed's HTML partials (seed 003, "Web UI Endpoints"): ``GET /api/ui/stats``,
``/api/ui/queries`` and ``/api/ui/top-domains``, for htmx-style clients that swap a fragment
into their page.

Each one is its JSON counterpart rendered as HTML: the same role (viewer), the same query
parameters (the same ``Query`` objects validate them), the same answer from the same call
(``stats_answer``, ``queries_answer``, ``top_domains_answer``), so the numbers cannot differ.
Errors stay JSON in the one error shape (401, 403, 400 naming the parameter, 503), as from every
route. A success is ``text/html; charset=utf-8``: one element, no ``<html>`` around it, no
script or style (the CSP forbids inline ones; classes only), ``Cache-Control: no-store``.

Every text and attribute value goes through the one builder (markup.py), which escapes it: a
domain name is attacker-controlled (anyone who can send a query writes one into the log), and
``<img src=x onerror=alert(1)>`` in a label comes out as those characters.

The fragments (classes in brackets; ``<data value>`` holds the JSON answer's number):

- stats: ``<section class="ui-stats" data-period data-timestamp>`` with a ``<dl>`` of
  ``<div class="ui-stat" data-field="total_queries">`` … ``<dt>`` label, ``<dd><data value>``.
- queries: ``<table class="ui-queries" data-total data-limit data-offset>``, a caption, a
  header row, and one ``<tr class="ui-query ui-blocked|ui-allowed" data-id data-decision>`` per
  query (time, client, domain, type, decision, response time, the deciding trace entry), or one
  ``<tr class="ui-empty">``.
- top-domains: ``<section class="ui-top-domains" data-limit data-blocked>`` with an ``<ol>`` of
  ``<li class="ui-top-domain">`` (domain, ``<data class="ui-count" value>``), or ``<p class="ui-empty">``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from microdot import Response

from .markup import Html, el, join, number
from .openapi import Media
from .queries import QueriesQuery, queries_answer
from .routes import Api
from .stats import SinceQuery, TopDomainsQuery, decisive_entry, stats_answer, top_domains_answer

if TYPE_CHECKING:
    from ..telemetry.recorder import Recorder

CONTENT_TYPE = "text/html; charset=utf-8"
TAGS = ["ui"]

# /api/stats fields shown, in order: (field, label, unit after the number)
STAT_FIELDS = (
    ("total_queries", "Queries", ""),
    ("blocked_queries", "Blocked", ""),
    ("block_rate", "Block rate", "%"),
    ("cached_queries", "Answered from cache", ""),
    ("cache_hit_rate", "Cache hit rate", "%"),
    ("avg_response_ms", "Average response", "ms"),
    ("threats_blocked", "Threats blocked", ""),
    ("dropped_queries", "Dropped", ""),
)
QUERY_COLUMNS = ("Time", "Client", "Domain", "Type", "Answer", "Response", "Why")


def html_response(fragment: Html) -> Response:
    return Response(str(fragment), 200, {"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


def _value(value, unit: str = "", cls: str = "ui-value") -> Html:
    """A number as ``<data value="25.0">25.0 %</data>``: the JSON number and the text shown."""
    shown = number(value) + (f" {unit}" if unit else "")
    return el("data", shown, class_=cls, value=number(value))


# ---- fragments (pure: an answer of the JSON route in, HTML out) ------------------------------

def stats_fragment(answer: dict) -> Html:
    """``/api/stats``'s answer as a definition list of labelled figures."""
    items = [el("div", el("dt", label), el("dd", _value(answer[name], unit)), class_="ui-stat", data_field=name)
             for name, label, unit in STAT_FIELDS if name in answer]
    period = el("p", "Last ", el("time", answer["period"]), ", as of ",
                el("time", answer["timestamp"], datetime=answer["timestamp"]), class_="ui-stats-period")
    return el("section", el("dl", items, class_="ui-stats-list"), period, class_="ui-stats",
              data_period=answer["period"], data_timestamp=answer["timestamp"])


def _why(row: dict) -> Html | str:
    """The trace entry that decided the query, as ``stage: rule`` (or its action, detail)."""
    entry = decisive_entry(row.get("block_trace"))
    if entry is None:
        return ""
    stage, action = str(entry.get("stage") or ""), str(entry.get("action") or "")
    reason = next((str(entry[k]) for k in ("rule", "detail", "source") if entry.get(k)), "")
    return join(el("span", stage, class_="ui-stage"),
                [": ", el("span", reason, class_="ui-rule")] if reason else None,
                [" ", el("small", action, class_="ui-action")] if action else None)


def _query_row(row: dict) -> Html:
    blocked = bool(row.get("blocked"))
    decision = str(row.get("decision") or ("blocked" if blocked else "answered"))
    ts = str(row.get("timestamp") or "")
    return el(
        "tr",
        el("td", el("time", ts, datetime=ts), class_="ui-time"),
        el("td", str(row.get("client_ip") or ""), class_="ui-client"),
        el("td", str(row.get("domain") or ""), class_="ui-domain"),
        el("td", str(row.get("query_type") or ""), class_="ui-type"),
        el("td", decision + (" (cached)" if row.get("cached") and decision != "cached" else ""),
           class_="ui-decision"),
        el("td", _value(row.get("response_time_ms") or 0, "ms"), class_="ui-response"),
        el("td", _why(row), class_="ui-why"),
        class_="ui-query " + ("ui-blocked" if blocked else "ui-allowed"),
        data_id=row.get("id"), data_decision=decision)


def queries_fragment(answer: dict) -> Html:
    """``/api/queries``'s answer as a table, newest first."""
    rows, total = answer["queries"], answer["total"]
    offset, limit = answer["offset"], answer["limit"]
    if rows:
        caption = f"Queries {offset + 1}–{offset + len(rows)} of {total}, newest first"
        body = [_query_row(r) for r in rows]
    else:
        caption = f"No queries of {total} here" if total else "No queries match"
        body = [el("tr", el("td", "No queries match.", colspan=len(QUERY_COLUMNS)), class_="ui-empty")]
    head = el("thead", el("tr", [el("th", c, scope="col") for c in QUERY_COLUMNS]))
    return el("table", el("caption", caption), head, el("tbody", body), class_="ui-queries",
              data_total=total, data_limit=limit, data_offset=offset)


def top_domains_fragment(answer: dict, blocked: bool) -> Html:
    """``/api/top-domains``' answer as a ranked list (``blocked``: the query's parameter)."""
    domains = answer["domains"]
    if domains:
        content = el("ol", [el("li", el("span", str(d["domain"]), class_="ui-domain"), " ",
                               _value(d["queries"], "queries", cls="ui-count"),
                               class_="ui-top-domain" + (" ui-blocked" if d.get("blocked") else ""))
                            for d in domains], class_="ui-top-domains-list")
    else:
        content = el("p", "No blocked domains yet." if blocked else "No domains yet.", class_="ui-empty")
    return el("section", content, class_="ui-top-domains", data_limit=answer["limit"],
              data_blocked="true" if blocked else "false")


# ---- routes ----------------------------------------------------------------------------------

def _responses(what: str) -> dict:
    return {200: Media("text/html", f"{what} as an HTML fragment (no <html> around it)"),
            503: "storage not available"}


def register(api: Api, *, recorder: Recorder) -> None:
    @api.route("GET", "/api/ui/stats", role="viewer", tags=TAGS, raw_response=True, query=SinceQuery,
               summary="DNS query statistics as an HTML partial (the figures of GET /api/stats)",
               responses=_responses("the statistics"))
    async def ui_stats(req):
        return html_response(stats_fragment(stats_answer(recorder, req.g.query)))

    @api.route("GET", "/api/ui/queries", role="viewer", tags=TAGS, raw_response=True, query=QueriesQuery,
               summary="Recent DNS queries as an HTML partial (the rows of GET /api/queries)",
               responses=_responses("a page of the query log"))
    async def ui_queries(req):
        return html_response(queries_fragment(await queries_answer(recorder, req.g.query)))

    @api.route("GET", "/api/ui/top-domains", role="viewer", tags=TAGS, raw_response=True,
               query=TopDomainsQuery,
               summary="Most queried domains as an HTML partial (the list of GET /api/top-domains)",
               responses=_responses("the top domains"))
    async def ui_top_domains(req):
        q = req.g.query
        return html_response(top_domains_fragment(await top_domains_answer(recorder, q), q["blocked"]))
