"""The owner's allow/deny lists: kind detection, dot-bounded wildcards, and their place in the filter."""

import asyncio

import pytest

from burrow.dns.decision import Decision
from burrow.dns.stages.filter import FilterStage
from burrow.filtering.userlists import UserList, classify

from tests.support.dnsq import Next, make_query


def test_classify_kinds_like_the_seed():
    assert classify("Analytics.Google.com.") == ("exact", "analytics.google.com")
    assert classify("*.cdn.example.com") == ("wildcard", "*.cdn.example.com")
    assert classify(r"^cdn\d+\.example\.com$") == ("regex", r"^cdn\d+\.example\.com$")
    for bad in ("", "a*b.com", "bad name.com", "(unclosed", "a" * 64 + ".com"):
        with pytest.raises(ValueError):
            classify(bad)


def test_matching_and_persistence(db):
    lst = UserList(db, "filtering.whitelist")
    lst.add("analytics.google.com")
    lst.add("*.cdn.example.com")
    lst.add(r"^api\d+\.example\.com$")
    assert lst.match("analytics.google.com") == "analytics.google.com"
    assert lst.match("img.cdn.example.com") == "*.cdn.example.com"
    assert lst.match("cdn.example.com") is None and lst.match("evilcdn.example.com") is None
    assert lst.match("api7.example.com") == r"^api\d+\.example\.com$"
    with pytest.raises(KeyError):
        lst.add("ANALYTICS.google.com")  # duplicate after normalising
    assert UserList(db, "filtering.whitelist").counts() == {"total": 3, "exact": 1, "wildcard": 1, "regex": 1}
    lst.remove("*.cdn.example.com")
    assert lst.match("img.cdn.example.com") is None
    with pytest.raises(KeyError):
        lst.remove("nope.example")


def test_filter_uses_deny_and_allow_lists_without_an_index(db):
    stage = FilterStage()
    shared = stage.shared
    shared.allow_list = UserList(db, "a")
    shared.deny_list = UserList(db, "d")
    shared.deny_list.add("*.ads.example")
    shared.deny_list.add("both.example")
    shared.allow_list.add("both.example")
    q = make_query("x.ads.example")
    ans = asyncio.run(stage.resolve(q, Next()))
    assert ans.decision is Decision.BLOCKED and q.trace[-1].stage == "denylist"
    nxt = Next()
    ans = asyncio.run(stage.resolve(make_query("both.example"), nxt))  # allow beats deny
    assert len(nxt.calls) == 1 and ans.decision is Decision.ALLOWED


# ---- try_entry: what the page's tester shows, by the lists' own rules ---------------------------

from burrow.filtering.userlists import EntryError, try_entry  # noqa: E402


def test_classify_reports_the_position_of_a_regex_syntax_error():
    for pattern, position in (("(unclosed", 0), ("ab[cd", 2), ("^a{2,1}$", 3), ("a|*b", 2)):
        with pytest.raises(EntryError) as e:
            classify(pattern)
        assert e.value.position == position, (pattern, e.value)
    with pytest.raises(EntryError) as e:
        classify("a*b.com")
    assert e.value.position is None


def test_test_entry_agrees_with_a_list_holding_the_entry(db):
    names = ["ads.example.com", "x.ads.example.com", "adsexample.com", "api7.example.com", "cdn.example.com",
             "img.cdn.example.com", "evilcdn.example.com", "tracker12.test", "tracker.test"]
    entries = ["ads.example.com", "*.ads.example.com", "*.cdn.example.com", r"^api\d+\.example\.com$",
               r"tracker\d+", "(?i)ADS", r"^(?P<x>ads)\.(?P=x)", "Analytics.Google.com."]
    for entry in entries:
        lst = UserList(db, "filtering.test")
        for e in list(lst.summary()["exact"]) + lst.summary()["wildcard"] + lst.summary()["regex"]:
            lst.remove(e)
        lst.add(entry)
        for name in names:
            got = try_entry(entry, name=name)
            assert got["valid"] and got["matches"] == (lst.match(name) is not None), (entry, name, got)


def test_test_entry_reports_kind_errors_and_positions():
    assert try_entry("  (ads", name="ads.test") == {"valid": False, "kind": None, "entry": None,
                                                     "error": try_entry("(ads")["error"], "position": 2,
                                                     "matches": None}
    assert try_entry("ads.test", kind="regex")["valid"] is False
    assert "needs one of" in try_entry("ads.test", kind="regex")["error"]
    assert try_entry("*.ads.test", kind="exact")["error"].startswith("Burrow reads this as a wildcard")
    ok = try_entry("*.ADS.test", kind="wildcard", name="x.ads.test")
    assert ok == {"valid": True, "kind": "wildcard", "entry": "*.ads.test", "error": None, "position": None,
                  "matches": True}
    assert try_entry("*.ads.test", name="ads.test")["matches"] is False  # strictly below
    assert try_entry(r"^ads\.", name="ads.test")["matches"] is True
    # Python's dialect, not JavaScript's: a named group and a possessive quantifier are fine here
    assert try_entry(r"(?P<a>ads)\.(?P=a)", name="ads.ads.test")["matches"] is True
    assert try_entry(r"(?<name>ads)", name="ads.test")["valid"] is False
