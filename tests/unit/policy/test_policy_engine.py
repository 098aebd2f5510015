"""Policy rules and the engine: validation, order, counters, time boundaries."""

import calendar
import random
from datetime import timezone
from zoneinfo import ZoneInfo

import pytest

from burrow.policy import (Match, PolicyEngine, PolicyError, PolicyRule, PolicySyntaxError,
                           PolicyTypeError, PolicyValueError, boundary_after)
from burrow.policy.expr import local_fields

UTC = timezone.utc


def ts(y, mo, d, h=0, mi=0, s=0):
    return float(calendar.timegm((y, mo, d, h, mi, s)))


SUN_NOON = ts(2024, 6, 2, 12, 0)


def rule(id, logic, action="BLOCK", data="", enabled=True, name=None):
    return PolicyRule(id, name or f"rule {id}", logic, action, data, enabled)


# ------------------------------------------------------------------ rules

def test_rule_fields_and_to_dict():
    r = PolicyRule(0, "Block social media after hours",
                   'Hour >= 22 && DomainMatches(Domain, "facebook")', "BLOCK")
    assert r.to_dict() == {"id": 0, "name": "Block social media after hours",
                           "logic": 'Hour >= 22 && DomainMatches(Domain, "facebook")',
                           "action": "BLOCK", "action_data": "", "enabled": True}
    assert r.uses_time and r.time_grain == "hour"
    assert not rule(1, "DomainMatches(Domain, 'x')").uses_time


def test_from_dict_seed_body():
    body = {"name": "Block after hours", "logic": "Hour >= 22 || Hour < 6",
            "action": "BLOCK", "enabled": True}
    r = PolicyRule.from_dict(body, id=1)
    assert r.to_dict() == dict(body, id=1, action_data="")
    assert PolicyRule.from_dict(dict(body, action="block")).action == "BLOCK"
    for missing in ("name", "logic", "action"):
        b = dict(body)
        del b[missing]
        with pytest.raises(PolicyValueError) as ei:
            PolicyRule.from_dict(b)
        assert ei.value.field == missing


@pytest.mark.parametrize("kwargs, field", [
    (dict(name=""), "name"), (dict(name=" "), "name"), (dict(name=5), "name"),
    (dict(logic=""), "logic"), (dict(logic=None), "logic"),
    (dict(action="DROP"), "action"), (dict(action=None), "action"),
    (dict(enabled="yes"), "enabled"),
    (dict(action="BLOCK", action_data="1.2.3.4"), "action_data"),
    (dict(action="ALLOW", action_data=5), "action_data"),
    (dict(action="REDIRECT", action_data=""), "action_data"),
    (dict(action="REDIRECT", action_data="example.com"), "action_data"),
    (dict(action="REDIRECT", action_data="1.2.3.4, 5.6.7.8"), "action_data"),
    (dict(action="REDIRECT", action_data="::1, ::2"), "action_data"),
    (dict(action="REDIRECT", action_data="1.2.3.4,"), "action_data"),
    (dict(action="FORWARD", action_data=""), "action_data"),
    (dict(action="FORWARD", action_data="dns.google:53"), "action_data"),
    (dict(action="FORWARD", action_data="9.9.9.9:99999"), "action_data"),
    (dict(action="FORWARD", action_data="9.9.9.9:0"), "action_data"),
    (dict(action="FORWARD", action_data="9.9.9.9:53,,1.1.1.1:53"), "action_data"),
    (dict(action="FORWARD", action_data="[::1:53"), "action_data"),
    (dict(action="FORWARD", action_data=",".join(f"10.0.0.{i}:53" for i in range(9))),
     "action_data"),
    (dict(name="n" * 201), "name"),
    (dict(action="FORWARD", action_data=" " * 1025 + "9.9.9.9:53"), "action_data"),
])
def test_rule_validation(kwargs, field):
    args = dict(id=0, name="r", logic="IsWeekend()", action="BLOCK", action_data="",
                enabled=True)
    args.update(kwargs)
    with pytest.raises(PolicyValueError) as ei:
        PolicyRule(**args)
    assert ei.value.field == field
    assert ei.value.to_dict()["field"] == field
    assert isinstance(ei.value, PolicyError) and isinstance(ei.value, ValueError)


def test_bad_logic_errors_name_logic():
    with pytest.raises(PolicySyntaxError) as ei:
        rule(0, "Hour >= (22")
    assert ei.value.field == "logic" and ei.value.position == 11
    with pytest.raises(PolicyTypeError) as ei:
        rule(0, "DomainRegex(Domain, '[')")
    assert ei.value.position == 20


@pytest.mark.parametrize("data, targets, text", [
    ("1.2.3.4", (("A", "1.2.3.4"),), "1.2.3.4"),
    ("::1", (("AAAA", "::1"),), "::1"),
    (" 2001:DB8::1 , 10.0.0.1 ", (("A", "10.0.0.1"), ("AAAA", "2001:db8::1")),
     "10.0.0.1, 2001:db8::1"),
])
def test_redirect_data(data, targets, text):
    r = rule(0, "IsWeekend()", "REDIRECT", data)
    assert r.targets == targets and r.action_data == text


@pytest.mark.parametrize("data, targets, text", [
    ("9.9.9.9:53", (("9.9.9.9", 53),), "9.9.9.9:53"),
    ("9.9.9.9", (("9.9.9.9", 53),), "9.9.9.9:53"),
    ("9.9.9.9:53, [2620:fe::fe]:5353, 9.9.9.9:53",
     (("9.9.9.9", 53), ("2620:fe::fe", 5353)), "9.9.9.9:53, [2620:fe::fe]:5353"),
])
def test_forward_data(data, targets, text):
    r = rule(0, "IsWeekend()", "FORWARD", data)
    assert r.targets == targets and r.action_data == text


def test_block_allow_ignore_blank_action_data():
    assert rule(0, "IsWeekend()", "ALLOW", "  ").action_data == ""
    assert PolicyRule(0, "r", "IsWeekend()", "BLOCK", None).action_data == ""


# ------------------------------------------------------------------ engine

def engine(*rules, **kw):
    kw.setdefault("tz", UTC)
    kw.setdefault("clock", lambda: SUN_NOON)
    return PolicyEngine(rules, **kw)


def test_first_match_wins_in_order():
    a = rule(1, "DomainEndsWith(Domain, 'example.com')", "ALLOW")
    b = rule(2, "DomainMatches(Domain, 'example')", "BLOCK")
    c = rule(3, "DomainLevelCount(Domain) >= 1", "REDIRECT", "10.0.0.1")
    e = engine(a, b, c)
    m = e.evaluate("www.example.com", "10.0.0.2", "A")
    assert m == Match(a, "ALLOW", "", ())
    assert e.evaluate("example.org", "10.0.0.2", "A").rule is b
    m = e.evaluate("other.net", "10.0.0.2", "A")
    assert m.rule is c and m.action == "REDIRECT" and m.targets == (("A", "10.0.0.1"),)
    assert engine(b, a).evaluate("www.example.com", "10.0.0.2").rule is b
    assert e.matches == {1: 1, 2: 1, 3: 1} and e.evaluations == 3


def test_no_match_and_empty_engine():
    e = engine(rule(1, "DomainMatches(Domain, 'x')"))
    assert e.evaluate("y.com", "10.0.0.1", "A") is None
    assert engine().evaluate("y.com", "10.0.0.1", "A") is None
    assert e.evaluations == 1 and e.matches == {1: 0}


def test_disabled_rules_skipped():
    a = rule(1, "DomainMatches(Domain, 'x')", enabled=False)
    b = rule(2, "DomainMatches(Domain, 'x')", "ALLOW")
    e = engine(a, b)
    assert e.evaluate("x.com", "1.1.1.1").rule is b
    assert e.matches == {1: 0, 2: 1}


def test_domain_and_qtype_normalised():
    e = engine(rule(1, "DomainEndsWith(Domain, 'x.com') && QueryType == 'AAAA'"))
    assert e.evaluate("WWW.X.COM.", "1.1.1.1", "aaaa") is not None


def test_runtime_error_skipped_and_counted():
    def lookup(ip):
        raise RuntimeError("group store down")
    a = rule(1, "InClientGroup(ClientIP, 'kids')")
    b = rule(2, "DomainMatches(Domain, 'x')", "ALLOW")
    e = engine(a, b, group_lookup=lookup)
    assert e.evaluate("x.com", "10.0.0.1").rule is b
    assert e.evaluate("y.com", "10.0.0.1") is None
    assert e.runtime_errors == 2 and e.errors[1] == 2 and e.errors[2] == 0
    assert "group store down" in e.last_error[1]
    s = e.stats()
    assert s["runtime_errors"] == 2 and s["evaluations"] == 2 and s["matches"] == {1: 0, 2: 1}


def test_clock_error_is_a_runtime_error():
    def clock():
        raise OSError("no clock")
    e = PolicyEngine([rule(1, "Hour >= 0"), rule(2, "IsWeekend() || !IsWeekend()"),
                      rule(3, "Domain == 'a.com'")], clock=clock, tz=UTC)
    assert e.evaluate("a.com", "1.1.1.1").rule.id == 3
    assert e.runtime_errors == 2


def test_groups_looked_up_once_per_query():
    calls = []

    def lookup(ip):
        calls.append(ip)
        return {"tv"}
    e = engine(rule(1, "InClientGroup(ClientIP, 'kids')"),
               rule(2, "InClientGroup(ClientIP, 'adults')"),
               rule(3, "InClientGroup(ClientIP, 'tv')", "ALLOW"), group_lookup=lookup)
    assert e.evaluate("a.com", "10.0.0.7").rule.id == 3
    assert calls == ["10.0.0.7"]
    assert e.evaluate("a.com", "10.0.0.8").rule.id == 3
    assert calls == ["10.0.0.7", "10.0.0.8"]


def test_time_rules_with_injected_clock():
    now = [ts(2024, 6, 3, 21, 59)]        # Monday
    e = PolicyEngine([rule(1, "InTimeRange(Hour, Minute, 22, 0, 6, 30) && !IsWeekend()")],
                     clock=lambda: now[0], tz=UTC)
    assert e.evaluate("a.com", "1.1.1.1") is None
    now[0] = ts(2024, 6, 3, 22, 0)
    assert e.evaluate("a.com", "1.1.1.1") is not None
    now[0] = ts(2024, 6, 4, 6, 29)
    assert e.evaluate("a.com", "1.1.1.1") is not None
    now[0] = ts(2024, 6, 4, 6, 30)
    assert e.evaluate("a.com", "1.1.1.1") is None
    # `now=` overrides the clock (explain / tests)
    assert e.evaluate("a.com", "1.1.1.1", now=ts(2024, 6, 4, 23, 0)) is not None
    assert e.evaluate("a.com", "1.1.1.1", now=ts(2024, 6, 8, 23, 0)) is None  # Saturday


def test_tz_changes_weekday():
    r = rule(1, "Weekday == 0")
    t = ts(2024, 6, 2, 23, 30)            # Sunday 23:30 UTC = Monday in Berlin
    assert engine(r).evaluate("a.com", "1.1.1.1", now=t) is not None
    assert engine(r, tz=ZoneInfo("Europe/Berlin")).evaluate("a.com", "1.1.1.1", now=t) is None


def test_explain_does_not_count():
    def lookup(ip):
        raise RuntimeError("x")
    e = engine(rule(1, "InClientGroup(ClientIP, 'k')"), rule(2, "Domain == 'a.com'"),
               rule(3, "Domain == 'a.com'", enabled=False), rule(4, "IsWeekend()"),
               group_lookup=lookup)
    rows = e.explain("A.com.", "1.1.1.1")
    assert [r["result"] for r in rows] == [None, True, None, True]
    assert [r["decides"] for r in rows] == [False, True, False, False]
    assert "error" in rows[0]
    assert e.evaluations == 0 and e.runtime_errors == 0


def test_evaluate_without_counting_decides_the_same():
    def lookup(ip):
        raise RuntimeError("x")
    e = engine(rule(1, "InClientGroup(ClientIP, 'k')"), rule(2, "Domain == 'a.com'"), group_lookup=lookup)
    assert e.evaluate("a.com", "1.1.1.1", count=False).rule.id == 2
    assert e.stats()["evaluations"] == 0 and e.runtime_errors == 0 and e.stats()["matches"] == {1: 0, 2: 0}
    assert e.evaluate("a.com", "1.1.1.1").rule.id == 2
    assert e.evaluations == 1 and e.runtime_errors == 1 and e.matches[2] == 1


def test_engine_flags():
    assert not engine(rule(1, "DomainMatches(Domain, 'x')")).uses_client_ip
    assert engine(rule(1, "IPInCIDR(ClientIP, '10.0.0.0/8')")).uses_client_ip
    assert engine(rule(1, "QueryTypeIn(QueryType, 'A')")).uses_qtype
    assert not engine(rule(1, "IPInCIDR(ClientIP, '10.0.0.0/8')", enabled=False)).uses_client_ip
    assert len(engine(rule(1, "IsWeekend()"), rule(2, "IsWeekend()"))) == 2
    assert engine(rule(7, "IsWeekend()")).get(7).id == 7


# ------------------------------------------------------------------ next_boundary

def test_next_boundary_none_without_time_rules():
    e = engine(rule(1, "DomainMatches(Domain, 'x')"), rule(2, "Hour > 3", enabled=False))
    assert e.next_boundary(SUN_NOON) is None and not e.uses_time


@pytest.mark.parametrize("logics, now, expected", [
    (["Minute == 5"], ts(2024, 6, 2, 12, 0, 0), ts(2024, 6, 2, 12, 1)),
    (["Minute == 5"], ts(2024, 6, 2, 12, 0, 59) + 0.9, ts(2024, 6, 2, 12, 1)),
    (["InTimeRange(Hour, Minute, 22, 0, 6, 0)"], ts(2024, 6, 2, 23, 59, 30),
     ts(2024, 6, 3, 0, 0)),
    (["Hour >= 22"], ts(2024, 6, 2, 12, 0, 0), ts(2024, 6, 2, 13)),
    (["Hour >= 22"], ts(2024, 6, 2, 12, 59, 59) + 0.5, ts(2024, 6, 2, 13)),
    (["Hour >= 22", "Weekday == 1"], ts(2024, 6, 2, 12, 30), ts(2024, 6, 2, 13)),
    (["Weekday == 1"], ts(2024, 6, 2, 12, 30), ts(2024, 6, 3)),
    (["IsWeekend()"], ts(2024, 6, 2, 0, 0), ts(2024, 6, 3)),
    (["Month == 1"], ts(2024, 12, 31, 23, 59, 59), ts(2025, 1, 1)),
    (["Day == 1", "Hour == 3", "Minute == 3"], ts(2024, 6, 2, 12, 30, 10),
     ts(2024, 6, 2, 12, 31)),
    (["DomainMatches(Domain, 'x')", "Hour == 3"], ts(2024, 6, 2, 12, 30), ts(2024, 6, 2, 13)),
])
def test_next_boundary_utc(logics, now, expected):
    e = engine(*(rule(i, lg) for i, lg in enumerate(logics)))
    assert e.next_boundary(now) == expected


def test_next_boundary_ignores_disabled_and_uses_clock():
    e = PolicyEngine([rule(1, "Minute == 1", enabled=False), rule(2, "Hour == 1")],
                     clock=lambda: ts(2024, 6, 2, 12, 30), tz=UTC)
    assert e.next_boundary() == ts(2024, 6, 2, 13)


def test_next_boundary_half_hour_zone():
    kolkata = ZoneInfo("Asia/Kolkata")   # UTC+5:30: local hours start at :30 UTC
    e = engine(rule(1, "Hour >= 22"), tz=kolkata)
    now = ts(2024, 6, 2, 4, 45)           # 10:15 local
    assert e.next_boundary(now) == ts(2024, 6, 2, 5, 30)
    e = engine(rule(1, "Weekday == 1"), tz=kolkata)
    assert e.next_boundary(now) == ts(2024, 6, 2, 18, 30)   # local midnight


def test_next_boundary_dst():
    berlin = ZoneInfo("Europe/Berlin")
    spring = ts(2024, 3, 31, 1, 0)        # 02:00 CET → 03:00 CEST
    # hour grain, 01:30 local: the next change is the jump itself
    assert engine(rule(1, "Hour == 2"), tz=berlin).next_boundary(ts(2024, 3, 31, 0, 30)) == spring
    # day grain just after midnight on the short day: never later than the real midnight
    day = engine(rule(1, "Weekday == 1"), tz=berlin)
    b = day.next_boundary(ts(2024, 3, 30, 23, 30))          # 00:30 local on 31 March
    assert b <= ts(2024, 3, 31, 22, 0) and b == spring
    # after the jump the real midnight (22:00 UTC) is found
    assert day.next_boundary(spring) == ts(2024, 3, 31, 22, 0)
    autumn = ts(2024, 10, 27, 1, 0)       # 03:00 CEST → 02:00 CET
    hour = engine(rule(1, "Hour == 2"), tz=berlin)
    assert hour.next_boundary(ts(2024, 10, 27, 0, 30)) == autumn
    assert hour.next_boundary(autumn) == ts(2024, 10, 27, 2, 0)


GRAIN_FIELDS = {"minute": (1, 2, 3, 4, 6), "hour": (1, 2, 3, 6), "day": (1, 2, 6)}


@pytest.mark.parametrize("tzname", ["UTC", "Europe/Berlin", "America/New_York",
                                    "Asia/Kolkata", "Australia/Lord_Howe"])
@pytest.mark.parametrize("grain", ["minute", "hour", "day"])
def test_next_boundary_never_late(tzname, grain):
    """Fields a rule of this grain can read never change inside [now, boundary)."""
    tz = ZoneInfo(tzname)
    rnd = random.Random(f"{tzname}{grain}")
    fields = GRAIN_FIELDS[grain]

    def sig(t):
        f = local_fields(t, tz)
        return tuple(f[i] for i in fields)
    starts = [rnd.uniform(ts(2024, 1, 1), ts(2025, 1, 1)) for _ in range(40)]
    # and moments around DST changes
    starts += [ts(2024, 3, 31, 0, 30), ts(2024, 3, 10, 6, 30), ts(2024, 11, 3, 5, 30),
               ts(2024, 10, 26, 23, 59), ts(2024, 4, 6, 14, 45), ts(2024, 10, 5, 15, 10)]
    for now in starts:
        b = boundary_after(now, grain, tz)
        assert b > now
        step = {"minute": 7, "hour": 97, "day": 1799}[grain]
        s0 = sig(now)
        t = now
        while t < b:
            assert sig(t) == s0, (tzname, grain, now, t, b)
            t += step
        assert sig(b - 0.001) == s0


# ------------------------------------------------------------------ many rules

def test_first_match_wins_among_many_rules():
    """Ten rules, only the last matches (timing is measured by benchmarks, never asserted here)."""
    rules = [rule(i, f"DomainEndsWith(Domain, 'blocked{i}.example') && "
                     f"IPInCIDR(ClientIP, '10.0.0.0/8') && QueryTypeIn(QueryType, 'A', 'AAAA')")
             for i in range(9)]
    rules.append(rule(9, "DomainEndsWith(Domain, 'example.com') && "
                         "IPInCIDR(ClientIP, '10.0.0.0/8') && Hour >= 0", "ALLOW"))
    e = PolicyEngine(rules, tz=UTC)
    assert e.evaluate("www.example.com", "10.1.2.3", "A").rule.id == 9
    assert e.evaluate("x.blocked3.example", "10.1.2.3", "AAAA").rule.id == 3
    assert e.evaluate("x.blocked3.example", "192.0.2.1", "A") is None
