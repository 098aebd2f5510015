"""policy/describe.py: a rule in plain words, and a rule checked field by field for the editor."""

import pytest

from burrow.policy.describe import describe, validate
from burrow.policy.engine import PolicyRule


def said(logic, action="BLOCK", data=""):
    return describe(PolicyRule(0, "r", logic, action, data))


@pytest.mark.parametrize("logic, action, data, sentence", [
    ('InClientGroup(ClientIP, "kids") && DomainMatches(Domain, ".tiktok.com") && !IsWeekend() '
     '&& InTimeRange(Hour, Minute, 21, 0, 7, 0)', "BLOCK", "",
     "Blocks tiktok.com and *.tiktok.com for group kids on weekdays 21:00–07:00"),
    ("Hour >= 22 || Hour < 6", "BLOCK", "", "Blocks every name for every client every day 22:00–06:00"),
    ("Hour >= 9 && Hour < 17 && (Weekday >= 1 && Weekday <= 5) && DomainMatches(Domain, 'steam')", "BLOCK", "",
     "Blocks names containing “steam” for every client on weekdays 09:00–17:00"),
    ('DomainEndsWith(Domain, "lan") && IPInCIDR(ClientIP, "10.0.0.0/8")', "FORWARD", "10.0.0.1",
     "Sends lan and *.lan to 10.0.0.1:53 for clients in 10.0.0.0/8 at any time"),
    ('DomainEndsWith(Domain, ".ads.test")', "BLOCK", "", "Blocks *.ads.test for every client at any time"),
    ('Domain == "a.test" && QueryTypeIn(QueryType, "A", "AAAA")', "REDIRECT", "1.2.3.4",
     "Answers a.test only (A and AAAA queries only) with 1.2.3.4 for every client at any time"),
    ('IPEquals(ClientIP, "192.168.1.9") && IsWeekend() && Hour >= 8 && Month == 12', "ALLOW", "",
     "Allows every name for client 192.168.1.9 on weekends in December from 08:00 to midnight"),
    ("Hour < 7 && Weekday == 0", "BLOCK", "", "Blocks every name for every client on Sundays before 07:00"),
    ('(InClientGroup(ClientIP, "kids") || InClientGroup(ClientIP, "teens")) && DomainRegex(Domain, "^game")',
     "BLOCK", "", "Blocks names matching “^game” for group kids or group teens at any time"),
])
def test_sentences(logic, action, data, sentence):
    assert said(logic, action, data) == sentence


def test_what_no_phrase_fits_is_said_literally_not_dropped():
    assert said('DomainLevelCount(Domain) > 5 && !InClientGroup(ClientIP, "adults")') == (
        "Blocks every name for everyone except group adults at any time, "
        "when the number of labels in the name is above 5")
    # mixed parts at the top: the whole condition, in words
    assert said('DomainMatches(Domain, "x") || InClientGroup(ClientIP, "kids")') == (
        "Blocks a query when the name contains “x” as whole labels or the client address is in group kids")
    assert said("Weekday > 9") == "Blocks a query when the weekday (0 = Sunday) is above 9"
    assert said("Minute == 5 && Hour == 3") == "Blocks a query when the minute is 5 and the hour is 3"


def test_hostile_names_stay_plain_text_in_the_sentence():
    # the sentence is text for the page (which sets it as text); the name passes through as typed
    s = said('InClientGroup(ClientIP, "<b>x</b>")')
    assert s == "Blocks every name for group <b>x</b> at any time"


def test_validate_reports_every_field_with_the_position():
    out = validate({"name": "", "logic": "Hour >= && Minute < 3", "action": "NOPE", "action_data": "x"})
    assert out["valid"] is False and out["summary"] is None
    assert out["errors"] == [
        {"field": "name", "message": "name is required"},
        {"field": "action", "message": "action must be one of BLOCK, ALLOW, REDIRECT, FORWARD"},
        {"field": "logic", "message": "expected a value, found operator '&&'", "position": 8},
    ]


@pytest.mark.parametrize("logic, position", [
    ("Hourr > 1", 0),                        # unknown name: where it starts
    ("Hour > 1 && (Minute < 2", 23),         # unbalanced '(': at the end
    ('DomainMatches(Domain, "a..b")', 22),  # a bad literal: at the string
    ("  Hour > 1 &", 11),                    # leading spaces count: positions are in the text as typed
])
def test_validate_positions_point_into_the_text(logic, position):
    (problem,) = validate({"name": "n", "logic": logic, "action": "BLOCK"})["errors"]
    assert problem["field"] == "logic" and problem["position"] == position, problem


def test_validate_action_data_by_action_and_a_valid_rule_has_its_sentence():
    assert validate({"name": "n", "logic": "Hour > 1", "action": "redirect", "action_data": "x"})["errors"] == [
        {"field": "action_data", "message": "'x' is not an IP address"}]
    assert validate({"name": "n", "logic": "Hour > 1", "action": "BLOCK", "action_data": "1.2.3.4"})["errors"] == [
        {"field": "action_data", "message": "BLOCK takes no action_data"}]
    assert validate({"name": "n", "action": "BLOCK"})["errors"] == [{"field": "logic", "message": "logic is required"}]
    ok = validate({"name": "bedtime", "logic": 'InClientGroup(ClientIP, "kids") && Hour >= 21', "action": "block"})
    assert ok == {"valid": True, "errors": [],
                  "summary": "Blocks every name for group kids every day from 21:00 to midnight"}


def test_every_seed_shape_is_described():
    for logic in ("Hour >= 22 || Hour < 6", "Hour >= 23", "QueryType != 'A'", "DomainStartsWith(Domain, 'ads')",
                  "ClientIP == '10.0.0.1' && Day <= 7", "!(Hour > 3)", "Month != 2 && Weekday != 6"):
        assert said(logic).startswith("Blocks "), logic
