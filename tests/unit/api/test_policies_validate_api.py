"""POST /api/policies/validate and GET /api/policies/summaries against a real App's services:
the editor's check changes nothing, reports every field with the position, and the sentences
come from the stored rules."""

from __future__ import annotations

import json

import pytest

from tests.unit.api.test_api_data import ADMIN, VIEWER, call, make_app


@pytest.fixture
def app(tmp_path):
    a = make_app(tmp_path)
    yield a
    a.recorder._executor.shutdown(wait=True)
    a.settings.close()


def post(app, path, body, headers=ADMIN):
    return call(app, "POST", path, {**headers, "Content-Type": "application/json"}, json.dumps(body).encode())


def test_validate_reports_positions_and_changes_nothing(app):
    res = post(app, "/api/policies/validate", {"name": "bad", "logic": "  Hour >= && 1", "action": "BLOCK"})
    assert res.status_code == 200, res.text
    assert res.json == {"valid": False, "summary": None, "errors": [
        {"field": "logic", "message": "expected a value, found operator '&&'", "position": 10}]}
    res = post(app, "/api/policies/validate", {"logic": 'InClientGroup(ClientIP, "kids") && Hour >= 21',
                                               "action": "FORWARD", "action_data": "nope"})
    assert [e["field"] for e in res.json["errors"]] == ["name", "action_data"]
    good = {"name": "bedtime", "logic": 'InClientGroup(ClientIP, "kids") && Hour >= 21', "action": "BLOCK"}
    res = post(app, "/api/policies/validate", good)
    assert res.json == {"valid": True, "errors": [],
                        "summary": "Blocks every name for group kids every day from 21:00 to midnight"}
    assert call(app, "GET", "/api/policies", VIEWER).json == {"policies": [], "total": 0}  # nothing saved


def test_validate_is_for_writers_and_its_body_is_checked(app):
    assert post(app, "/api/policies/validate", {"logic": "Hour > 1"}, VIEWER).status_code == 403
    res = post(app, "/api/policies/validate", {"logic": 5})
    assert res.status_code == 400 and res.json["details"][0]["field"] == "logic"
    # the fixed path is not a policy id
    assert call(app, "GET", "/api/policies/validate", VIEWER).status_code == 405


def test_summaries_follow_the_stored_rules(app):
    assert call(app, "GET", "/api/policies/summaries", VIEWER).json == {"summaries": [], "total": 0}
    for rule in ({"name": "night", "logic": "Hour >= 22 || Hour < 6", "action": "BLOCK"},
                 {"name": "tv", "logic": 'DomainEndsWith(Domain, "tv.test")', "action": "REDIRECT",
                  "action_data": "10.0.0.9"}):
        assert post(app, "/api/policies", rule).status_code == 201
    res = call(app, "GET", "/api/policies/summaries", VIEWER)
    assert res.status_code == 200
    assert res.json == {"total": 2, "summaries": [
        {"id": 0, "summary": "Blocks every name for every client every day 22:00–06:00"},
        {"id": 1, "summary": "Answers tv.test and *.tv.test with 10.0.0.9 for every client at any time"}]}
    assert call(app, "GET", "/api/policies/0", VIEWER).json["name"] == "night"  # ids still route
