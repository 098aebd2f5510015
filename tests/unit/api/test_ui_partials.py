"""The seed's HTML partials /api/ui/stats, /api/ui/queries, /api/ui/top-domains (seed 003, "Web
UI Endpoints"; burrow/api/ui_partials.py) against a real App's services, authentication faked:
the JSON answer's numbers, rendered as strict, escaped fragments; errors in the JSON shape."""

from __future__ import annotations

import sqlite3

import pytest

from burrow import __version__
from burrow.api import offline_api, openapi, ui_partials
from burrow.dns.decision import Decision, TraceEntry

from tests.support.fragments import parse_fragment
from tests.unit.api.test_api_data import VIEWER, call, feed, make_app, record

HOSTILE = "<img src=x onerror=alert(1)>"
NAMES = [f"{HOSTILE}.example", "</script><script>alert(1)</script>.example", "q\"uo'te&amp.example",
         "ctl\\000\\007\\255.example", "xn--bcher-kva.example", "b\\195\\188cher.example"]
HOSTILE_RULE = (TraceEntry("policy", "BLOCK", '<b onmouseover="alert(1)">rule</b>', "policy_engine"),)
PATHS = ["/api/ui/stats", "/api/ui/queries", "/api/ui/top-domains"]


@pytest.fixture
def app(tmp_path):
    a = make_app(tmp_path)
    recorder, settings = a.recorder, a.settings
    yield a
    recorder._executor.shutdown(wait=True)
    settings.close()


def html_of(res):
    assert res.status_code == 200, (res.status_code, res.text)
    assert res.headers["Content-Type"] == "text/html; charset=utf-8"
    assert res.headers["Cache-Control"] == "no-store"
    return parse_fragment(res.text)


def fill(app):
    feed(app, [record(n) for n in NAMES] + [record(NAMES[0]), record("ads.example", decision=Decision.BLOCKED,
                                                                    trace=HOSTILE_RULE),
                                            record(NAMES[1], decision=Decision.BLOCKED, trace=HOSTILE_RULE),
                                            record("c.example", decision=Decision.CACHED)])
    feed(app, [record("unflushed.example")], flush=False)


@pytest.mark.parametrize("path", PATHS)
def test_partials_are_fragments_for_viewers_and_401_json_for_anonymous(app, path):
    fill(app)
    frag = html_of(call(app, "GET", path, VIEWER))
    assert frag.elements[0][0] in ("section", "table")
    res = call(app, "GET", path)
    assert res.status_code == 401 and res.headers["Content-Type"].startswith("application/json")
    assert res.json["code"] == 401 and res.json["error"] == "unauthorized"


@pytest.mark.parametrize("path,field", [("/api/ui/stats?since=yesterday", "since"),
                                        ("/api/ui/stats?since=30d", "since"),
                                        ("/api/ui/queries?limit=0", "limit"),
                                        ("/api/ui/queries?offset=-1", "offset"),
                                        ("/api/ui/queries?since=2999-01-01T00:00:00Z", "since"),
                                        ("/api/ui/top-domains?limit=101", "limit"),
                                        ("/api/ui/top-domains?blocked=maybe", "blocked")])
def test_bad_parameters_get_the_json_400_of_the_json_route(app, path, field):
    res = call(app, "GET", path, VIEWER)
    assert res.status_code == 400 and res.json["code"] == 400
    assert {d["field"] for d in res.json["details"]} == {field}
    twin = call(app, "GET", path.replace("/api/ui/", "/api/"), VIEWER)
    assert twin.status_code == 400 and twin.json["details"] == res.json["details"]


def test_storage_failure_is_the_json_503(app, monkeypatch):
    async def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(app.recorder, "query", broken)
    for path in ("/api/ui/queries", "/api/ui/top-domains"):
        res = call(app, "GET", path, VIEWER)
        assert res.status_code == 503 and res.json["error"] == "Service Unavailable"


@pytest.mark.parametrize("since", ["", "?since=1h", "?since=7d"])
def test_stats_figures_are_the_json_figures(app, since):
    fill(app)
    frag = html_of(call(app, "GET", "/api/ui/stats" + since, VIEWER))
    answer = call(app, "GET", "/api/stats" + since, VIEWER).json
    values = {attrs["data-field"]: None for attrs in frag.with_attribute("data-field")}
    shown = [attrs["value"] for tag, attrs in frag.elements if tag == "data"]
    assert list(values) == [name for name, _, _ in ui_partials.STAT_FIELDS]
    assert shown == [repr(answer[n]) if isinstance(answer[n], float) else str(answer[n]) for n in values]
    assert answer["total_queries"] == 11 and answer["blocked_queries"] == 2
    assert frag.elements[0][1]["data-period"] == answer["period"]


def test_query_rows_are_the_json_rows_and_hostile_names_are_text(app):
    fill(app)
    frag = html_of(call(app, "GET", "/api/ui/queries?limit=50", VIEWER))
    answer = call(app, "GET", "/api/queries?limit=50", VIEWER).json
    rows = [attrs for tag, attrs in frag.elements if tag == "tr" and "data-id" in attrs]
    assert [int(r["data-id"]) for r in rows] == [q["id"] for q in answer["queries"]]
    assert [r["data-decision"] for r in rows] == [q["decision"] for q in answer["queries"]]
    assert frag.texts("ui-domain") == [q["domain"] for q in answer["queries"]]
    assert set(NAMES) <= set(frag.texts("ui-domain")) and "unflushed.example" in frag.texts("ui-domain")
    table = frag.elements[0][1]
    assert (int(table["data-total"]), int(table["data-limit"]), int(table["data-offset"])) == \
        (answer["total"], 50, 0)
    assert frag.texts("ui-rule") == ['<b onmouseover="alert(1)">rule</b>'] * 2  # the rule name is text too
    assert [tag for tag, _ in frag.elements if tag not in ("table", "caption", "thead", "tbody", "tr", "th",
                                                           "td", "time", "span", "small", "data")] == []


def test_query_filters_and_paging_are_the_json_routes(app):
    fill(app)
    for qs in ("blocked=true", "domain=example&limit=3&offset=2", "stage=policy", "client=10.9.9.9"):
        frag = html_of(call(app, "GET", f"/api/ui/queries?{qs}", VIEWER))
        answer = call(app, "GET", f"/api/queries?{qs}", VIEWER).json
        assert frag.texts("ui-domain") == [q["domain"] for q in answer["queries"]], qs
        assert int(frag.elements[0][1]["data-total"]) == answer["total"]
    assert frag.texts("ui-empty") == ["No queries match."]


@pytest.mark.parametrize("qs", ["", "?blocked=true", "?limit=2", "?since=1h&blocked=false"])
def test_top_domains_are_the_json_list(app, qs):
    fill(app)
    frag = html_of(call(app, "GET", "/api/ui/top-domains" + qs, VIEWER))
    answer = call(app, "GET", "/api/top-domains" + qs, VIEWER).json
    assert frag.texts("ui-domain") == [d["domain"] for d in answer["domains"]]
    counts = [int(attrs["value"]) for tag, attrs in frag.elements if tag == "data"]
    assert counts == [d["queries"] for d in answer["domains"]]
    assert frag.elements[0][1]["data-limit"] == str(answer["limit"])
    assert answer["domains"], "the fixture has domains for each case"


def test_an_empty_log_has_empty_states(app):
    assert html_of(call(app, "GET", "/api/ui/top-domains?blocked=true", VIEWER)).texts("ui-empty") == \
        ["No blocked domains yet."]
    assert html_of(call(app, "GET", "/api/ui/queries", VIEWER)).texts("ui-empty") == ["No queries match."]
    values = [a["value"] for t, a in html_of(call(app, "GET", "/api/ui/stats", VIEWER)).elements if t == "data"]
    assert set(values) == {"0", "0.0"}


def test_the_openapi_document_says_text_html():
    doc = openapi.build(offline_api(), __version__)
    for path, params in (("/api/ui/stats", {"since"}), ("/api/ui/top-domains", {"limit", "blocked", "since"})):
        op = doc["paths"][path]["get"]
        assert op["x-role"] == "viewer"
        assert op["responses"]["200"]["content"] == {"text/html": {"schema": {"type": "string"}}}
        assert op["responses"]["401"]["content"]["application/json"]
        assert {p["name"] for p in op["parameters"]} == params
    assert {p["name"] for p in doc["paths"]["/api/ui/queries"]["get"]["parameters"]} == \
        {p["name"] for p in doc["paths"]["/api/queries"]["get"]["parameters"]}
