"""The owner's allow/deny lists: kind detection, dot-bounded wildcards, and their place in the filter."""

import asyncio

import pytest

from burrow.dns.decision import Decision
from burrow.dns.stages.filter import FilterStage
from burrow.filtering.userlists import UserList, classify
from burrow.storage.settings import SettingsDB

from .dnsq import Next, make_query


@pytest.fixture
def db(tmp_path):
    d = SettingsDB(tmp_path / "s.db")
    yield d
    d.close()


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
