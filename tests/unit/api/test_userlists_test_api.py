"""GET /api/userlists/test: the page's entry tester, answered by the allow/deny lists' own rules."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.unit.api.test_api_data import ADMIN, VIEWER, app, call  # noqa: F401  (app is a fixture)


def ask(app, **params):  # noqa: F811
    return call(app, "GET", "/api/userlists/test?" + urlencode(params), VIEWER)


def test_a_viewer_tests_entries_and_nothing_changes(app):  # noqa: F811
    res = ask(app, pattern=r"^ads\d+\.", domain="ADS12.Example.com.")
    assert res.status_code == 200
    assert res.json == {"valid": True, "kind": "regex", "entry": r"^ads\d+\.", "error": None, "position": None,
                        "domain": "ads12.example.com", "matches": True}
    assert ask(app, pattern="*.example.com", domain="example.com").json["matches"] is False
    assert ask(app, pattern="*.example.com", kind="wildcard", domain="a.example.com").json["matches"] is True
    assert ask(app, pattern="example.com").json["matches"] is None
    assert call(app, "GET", "/api/whitelist", VIEWER).json["total"] == 0
    assert call(app, "GET", "/api/denylist", VIEWER).json["total"] == 0


def test_a_bad_pattern_says_where_and_the_add_refuses_it_too(app):  # noqa: F811
    res = ask(app, pattern=" ab[cd", domain="abc.test")
    assert res.status_code == 200
    body = res.json
    assert body["valid"] is False and body["position"] == 3 and "unterminated character set" in body["error"]
    added = call(app, "POST", "/api/denylist", ADMIN, {"domain": " ab[cd"})
    assert added.status_code == 400 and "unterminated character set" in added.json["message"]
    # the body check's refusal is the tester's too
    body = ask(app, pattern="no spaces.example").json
    assert body["valid"] is False and body["position"] is None and body["error"]
    assert call(app, "POST", "/api/denylist", ADMIN, {"domain": "no spaces.example"}).status_code == 400
    body = ask(app, pattern="ads.example", kind="regex").json
    assert body["valid"] is False and body["kind"] == "exact"


@pytest.mark.parametrize("params", [{}, {"pattern": ""}, {"pattern": "x" * 1025}, {"pattern": "a", "kind": "glob"},
                                    {"pattern": "a", "domain": "bad name"}, {"pattern": "a", "domain": "a" * 300}])
def test_bad_questions_get_400_naming_the_field(app, params):  # noqa: F811
    res = ask(app, **params)
    assert res.status_code == 400
    assert res.json["details"], res.json


def test_a_name_idna_refuses_is_a_400_naming_domain_not_a_500(app):  # noqa: F811
    # Schemathesis sent a plane-15 private-use character: the IDNA codec raised, and it was a 500.
    res = ask(app, pattern="example.com", domain="a\U000f18dd.example")
    assert res.status_code == 400, res.json
    assert [d["field"] for d in res.json["details"]] == ["domain"]
