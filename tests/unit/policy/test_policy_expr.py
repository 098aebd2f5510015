"""The policy expression language: tokenizer, parser, type checker, closures."""

import ast
import calendar
import inspect
from datetime import timezone

import pytest

from burrow.policy import expr as expr_mod
from burrow.policy.expr import (PolicyError, PolicySyntaxError, PolicyTypeError,
                                compile_expression, parse, tokenize, unparse)

UTC = timezone.utc


def ts(y, mo, d, h=0, mi=0, s=0):
    return float(calendar.timegm((y, mo, d, h, mi, s)))


# 2024-06-02 is a Sunday.
SUN_NOON = ts(2024, 6, 2, 12, 0)


def ev(logic, domain="www.example.com", client="192.168.1.10", qtype="A", now=SUN_NOON,
       groups=None):
    lookup = (lambda ip: groups.get(ip, set())) if groups is not None else None
    return compile_expression(logic).evaluate(domain, client, qtype, now=now, tz=UTC,
                                              group_lookup=lookup)


# ------------------------------------------------------------------ seed examples

SEED = [
    'Hour >= 22 && DomainMatches(Domain, "facebook")',
    "Hour >= 22 || Hour < 6",
    "Hour >= 23",
    "Hour >= 9 && Hour < 17 && (Weekday >= 1 && Weekday <= 5) && DomainMatches(Domain, 'steam')",
]


@pytest.mark.parametrize("logic", SEED)
def test_seed_examples_parse(logic):
    c = compile_expression(logic)
    assert c.uses_time and c.time_grain == "hour"


def test_seed_examples_behave():
    fb, night, late, work = SEED
    assert ev(fb, "www.facebook.com", now=ts(2024, 6, 2, 22, 30))
    assert not ev(fb, "www.facebook.com", now=ts(2024, 6, 2, 21, 59))
    assert not ev(fb, "notfacebook.com", now=ts(2024, 6, 2, 23, 0))
    assert ev(night, now=ts(2024, 6, 2, 23, 0)) and ev(night, now=ts(2024, 6, 2, 5, 59))
    assert not ev(night, now=ts(2024, 6, 2, 6, 0)) and not ev(night, now=ts(2024, 6, 2, 21, 0))
    assert ev(late, now=ts(2024, 6, 2, 23, 0)) and not ev(late, now=ts(2024, 6, 2, 22, 59))
    monday10 = ts(2024, 6, 3, 10, 0)
    assert ev(work, "store.steam.com", now=monday10)
    assert ev(work, "steam", now=monday10)
    assert not ev(work, "store.steam.com", now=SUN_NOON)            # Sunday
    assert not ev(work, "store.steam.com", now=ts(2024, 6, 8, 10))  # Saturday
    assert not ev(work, "store.steam.com", now=ts(2024, 6, 3, 17))  # 17:00 excluded
    assert not ev(work, "steampowered.com", now=monday10)           # dot-bounded labels
    assert not ev(work, "mainstream.org", now=monday10)


# ------------------------------------------------------------------ operators

@pytest.mark.parametrize("source, tree", [
    ("Hour == 1 || Hour == 2 && Hour == 3", "((Hour == 1) || ((Hour == 2) && (Hour == 3)))"),
    ("Hour == 1 && Hour == 2 || Hour == 3", "(((Hour == 1) && (Hour == 2)) || (Hour == 3))"),
    ("(Hour == 1 || Hour == 2) && Hour == 3", "(((Hour == 1) || (Hour == 2)) && (Hour == 3))"),
    ("!IsWeekend() && Hour > 3", "(!IsWeekend() && (Hour > 3))"),
    ("!(Hour > 3) || IsWeekend()", "(!(Hour > 3) || IsWeekend())"),
    ("!!IsWeekend()", "!!IsWeekend()"),
    ("IsWeekend() == !IsWeekend()", "(IsWeekend() == !IsWeekend())"),
    ("Hour==1&&Hour!=2||Hour<3&&Hour<=4||Hour>5&&Hour>=6",
     "(((Hour == 1) && (Hour != 2)) || ((Hour < 3) && (Hour <= 4)) || ((Hour > 5) && (Hour >= 6)))"),
    ("  Hour\t>=\n9 ", "(Hour >= 9)"),
])
def test_precedence(source, tree):
    assert unparse(parse(source)) == tree


@pytest.mark.parametrize("logic, expected", [
    ("Hour == 12", True), ("Hour != 12", False), ("Hour < 12", False), ("Hour <= 12", True),
    ("Hour > 11", True), ("Hour >= 13", False), ("12 == Hour", True), ("13 > Hour", True),
    ("11 >= Hour", False), ("1 < 2", True), ("2 <= 1", False),
    ("Minute == 0 && Hour == 12", True), ("Minute == 1 && Hour == 12", False),
    ("Minute == 1 || Hour == 12", True), ("Minute == 1 || Hour == 13", False),
    ("!(Hour == 12)", False), ("!IsWeekend()", False), ("!!IsWeekend()", True),
    ("Hour == 13 || Hour == 12 && Minute == 0", True),
    ("(Hour == 13 || Hour == 12) && Minute == 1", False),
    ('Domain == "www.example.com"', True), ("Domain != 'www.example.com'", False),
    ('QueryType == "A"', True), ('ClientIP == "192.168.1.10"', True),
    ("IsWeekend() == IsWeekend()", True),
    ("Month == 6 && Day == 2 && Weekday == 0", True),
    ("Hour > 1 && Hour > 2 && Hour > 3 && Hour > 4 && Hour > 5", True),
    ("Hour > 1 && Hour > 2 && Hour > 3 && Hour > 4 && Hour > 50", False),
    ("Hour > 100 || Hour > 200 || Hour > 300 || Hour > 1", True),
    ("Hour > 100 || Hour > 200 || Hour > 300 || Hour > 400", False),
])
def test_operator_results(logic, expected):
    assert ev(logic) is expected


def test_short_circuit_skips_group_lookup():
    calls = []

    def lookup(ip):
        calls.append(ip)
        return {"kids"}
    c = compile_expression('Hour == 3 && InClientGroup(ClientIP, "kids")')
    assert not c.evaluate("a.com", "10.0.0.1", now=SUN_NOON, tz=UTC, group_lookup=lookup)
    assert calls == []


# ------------------------------------------------------------------ quoting

@pytest.mark.parametrize("source, value", [
    (r'"abc"', "abc"), (r"'abc'", "abc"), (r'"it\'s"', "it's"), (r"'it\'s'", "it's"),
    (r'"say \"hi\""', 'say "hi"'), (r"'a\\b'", "a\\b"), ('"it\'s"', "it's"),
    ("'say \"hi\"'", 'say "hi"'), ('""', ""), (r'"\\"', "\\"),
])
def test_string_literals(source, value):
    toks = tokenize(source)
    assert toks[0].kind == "str" and toks[0].value == value and toks[1].kind == "eof"


def test_quoted_regex_backslash():
    assert ev(r'DomainRegex(Domain, "^www\\.example\\.com$")')
    assert not ev(r'DomainRegex(Domain, "^wwwXexample\\.com$")')


@pytest.mark.parametrize("source, pos", [
    ('"abc', 0), ("Domain == 'abc", 10), (r'"a\n"', 2), ('"abc\\', 4),
])
def test_string_errors(source, pos):
    with pytest.raises(PolicySyntaxError) as ei:
        tokenize(source)
    assert ei.value.position == pos


def test_integer_literals():
    assert tokenize("007")[0].value == 7
    with pytest.raises(PolicySyntaxError):
        tokenize("1" * 13)
    with pytest.raises(PolicySyntaxError) as ei:
        tokenize("Hour == 12abc")
    assert ei.value.position == 10


# ------------------------------------------------------------------ functions

@pytest.mark.parametrize("pattern, domain, expected", [
    # plain: equals the name or a dot-bounded run of its labels
    ("steam", "steam", True), ("steam", "steam.com", True), ("steam", "store.steam.com", True),
    ("steam", "a.b.steam", True), ("steam", "steampowered.com", False),
    ("steam", "mainstream.org", False), ("steam", "steam-cdn.net", False),
    ("facebook", "www.facebook.com", True), ("facebook", "m.facebook.co.uk", True),
    ("facebook", "notfacebook.com", False), ("facebook", "facebookcorewwwi.onion", False),
    ("example.com", "example.com", True), ("example.com", "www.example.com", True),
    ("example.com", "example.com.cdn.net", True), ("example.com", "myexample.com", False),
    ("example.com", "example.community", False), ("EXAMPLE.com.", "www.example.com", True),
    # leading dot: the name and its subtree only
    (".example.com", "example.com", True), (".example.com", "a.b.example.com", True),
    (".example.com", "evilexample.com", False), (".example.com", "example.com.evil.net", False),
])
def test_domain_matches(pattern, domain, expected):
    assert ev(f'DomainMatches(Domain, "{pattern}")', domain) is expected


@pytest.mark.parametrize("pattern, domain, expected", [
    ("x.com", "x.com", True), ("x.com", "a.x.com", True), ("x.com", "b.a.x.com", True),
    ("x.com", "evilx.com", False), ("x.com", "x.com.evil", False), ("com", "x.com", True),
    (".x.com", "x.com", False), (".x.com", "a.x.com", True), (".x.com", "evilx.com", False),
    ("X.COM.", "a.x.com", True),
])
def test_domain_ends_with(pattern, domain, expected):
    assert ev(f'DomainEndsWith(Domain, "{pattern}")', domain) is expected


@pytest.mark.parametrize("pattern, domain, expected", [
    ("www", "www", True), ("www", "www.x.com", True), ("www", "www2.x.com", False),
    ("www", "a.www.com", False), ("ads.x", "ads.x.com", True), ("ads.x", "ads.xy.com", False),
    ("www.", "www", False), ("www.", "www.x.com", True),
])
def test_domain_starts_with(pattern, domain, expected):
    assert ev(f'DomainStartsWith(Domain, "{pattern}")', domain) is expected


def test_domain_is_normalised_by_evaluate():
    assert ev('DomainEndsWith(Domain, "x.com")', "A.X.COM.")
    assert ev('Domain == "a.x.com"', "A.X.Com.")


def test_idn_pattern():
    assert ev('DomainEndsWith(Domain, "bücher.de")', "www.xn--bcher-kva.de")


@pytest.mark.parametrize("domain, n", [
    ("com", 1), ("example.com", 2), ("a.b.example.com", 4), ("", 0), (".", 0),
])
def test_domain_level_count(domain, n):
    assert ev(f"DomainLevelCount(Domain) == {n}", domain)
    assert ev(f"DomainLevelCount(Domain) > {n}", domain) is False


def test_domain_regex():
    assert ev(r'DomainRegex(Domain, "(^|\\.)doubleclick\\.net$")', "ad.doubleclick.net")
    assert not ev(r'DomainRegex(Domain, "(^|\\.)doubleclick\\.net$")', "doubleclick.net.evil")
    assert ev('DomainRegex(Domain, "^ads?[0-9]*\\\\.")', "ads12.x.com")


@pytest.mark.parametrize("cidr, client, expected", [
    ("10.0.0.0/8", "10.200.3.4", True), ("10.0.0.0/8", "11.0.0.1", False),
    ("192.168.1.0/24", "192.168.1.255", True), ("192.168.1.0/24", "192.168.2.0", False),
    ("192.168.1.7/32", "192.168.1.7", True), ("192.168.1.7", "192.168.1.7", True),
    ("0.0.0.0/0", "8.8.8.8", True), ("0.0.0.0/0", "::1", False),
    ("10.0.0.0/8", "::ffff:10.1.2.3", True),     # v4-mapped clients count as IPv4
    ("fd00::/8", "fd12::1", True), ("fd00::/8", "fe80::1", False),
    ("::/0", "2001:db8::1", True), ("10.0.0.0/8", "not-an-ip", False),
    ("10.1.2.3/8", "10.9.9.9", True),          # host bits are masked off
    ("fe80::/10", "fe80::1%eth0", True),       # scope id ignored
])
def test_ip_in_cidr(cidr, client, expected):
    assert ev(f'IPInCIDR(ClientIP, "{cidr}")', client=client) is expected


@pytest.mark.parametrize("ip, client, expected", [
    ("1.2.3.4", "1.2.3.4", True), ("1.2.3.4", "1.2.3.5", False),
    ("2001:db8::1", "2001:DB8:0::1", True), ("1.2.3.4", "::ffff:1.2.3.4", True),
    ("1.2.3.4", "", False),
])
def test_ip_equals(ip, client, expected):
    assert ev(f'IPEquals(ClientIP, "{ip}")', client=client) is expected


def test_in_client_group_calls_lookup_once_per_evaluation():
    calls = []

    def lookup(ip):
        calls.append(ip)
        return {"kids", "tv"}
    c = compile_expression('InClientGroup(ClientIP, "kids") && InClientGroup(ClientIP, "tv")'
                           ' && !InClientGroup(ClientIP, "adults")')
    assert c.evaluate("a.com", "10.0.0.5", group_lookup=lookup)
    assert calls == ["10.0.0.5"]
    assert not ev('InClientGroup(ClientIP, "kids")', groups={})
    assert ev('InClientGroup(ClientIP, "kids")', client="10.0.0.9", groups={"10.0.0.9": {"kids"}})


@pytest.mark.parametrize("qtype, expected", [
    ("A", True), ("AAAA", True), ("aaaa", True), ("MX", False), ("HTTPS", False),
])
def test_query_type_in(qtype, expected):
    assert ev('QueryTypeIn(QueryType, "A", "aaaa")', qtype=qtype) is expected


def test_query_type_in_single_and_many():
    assert ev('QueryTypeIn(QueryType, "HTTPS")', qtype="HTTPS")
    assert ev('QueryTypeIn(QueryType, "A", "MX", "TXT", "SRV", "TYPE65")', qtype="TYPE65")


@pytest.mark.parametrize("day, weekday, weekend", [
    (2, 0, True), (3, 1, False), (4, 2, False), (5, 3, False), (6, 4, False), (7, 5, False),
    (8, 6, True),
])
def test_weekday_sunday_zero_and_is_weekend(day, weekday, weekend):
    now = ts(2024, 6, day, 12)
    assert ev(f"Weekday == {weekday}", now=now)
    assert ev("IsWeekend()", now=now) is weekend


def test_local_time_uses_tz():
    from datetime import timedelta
    c = compile_expression("Hour == 23 && Weekday == 6 && Day == 1 && Month == 6")
    # 2024-06-02 01:00 UTC is Saturday 2024-06-01 23:00 at UTC-2
    assert c.evaluate("a.com", now=ts(2024, 6, 2, 1), tz=timezone(timedelta(hours=-2)))
    assert not c.evaluate("a.com", now=ts(2024, 6, 2, 1), tz=UTC)


@pytest.mark.parametrize("h, m, expected", [
    (21, 59, False), (22, 0, True), (23, 59, True), (0, 0, True), (5, 59, True),
    (6, 0, False), (12, 0, False),
])
def test_in_time_range_crossing_midnight(h, m, expected):
    assert ev("InTimeRange(Hour, Minute, 22, 0, 6, 0)", now=ts(2024, 6, 2, h, m)) is expected


@pytest.mark.parametrize("h, m, expected", [
    (8, 29, False), (8, 30, True), (12, 0, True), (17, 14, True), (17, 15, False),
])
def test_in_time_range_same_day(h, m, expected):
    assert ev("InTimeRange(Hour, Minute, 8, 30, 17, 15)", now=ts(2024, 6, 2, h, m)) is expected


def test_in_time_range_until_midnight():
    c = "InTimeRange(Hour, Minute, 18, 0, 24, 0)"
    assert ev(c, now=ts(2024, 6, 2, 23, 59)) and not ev(c, now=ts(2024, 6, 2, 0, 0))
    c = "InTimeRange(Hour, Minute, 0, 0, 7, 0)"
    assert ev(c, now=ts(2024, 6, 2, 0, 0)) and not ev(c, now=ts(2024, 6, 2, 7, 0))


# ------------------------------------------------------------------ errors

def err(logic):
    with pytest.raises(PolicyError) as ei:
        compile_expression(logic)
    return ei.value


@pytest.mark.parametrize("logic, pos, fragment", [
    ("(Hour > 3", 9, "unbalanced '('"),
    ("((Hour > 3) && Hour < 5", 23, "unbalanced '('"),
    ("Hour > 3)", 8, "unbalanced ')'"),
    (")", 0, "unbalanced ')'"),
    ("Hour > ", 7, "end of expression"),
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("Hour = 3", 5, "'=='"),
    ("Hour > 3 & IsWeekend()", 9, "'&&'"),
    ("Hour > 3 | IsWeekend()", 9, "'||'"),
    ("1 < Hour < 5", 9, "chained"),
    ("Hour > 3 Minute", 9, "expected an operator"),
    ("DomainMatches(Domain \"x\")", 21, "expected ',' or ')'"),
    ("DomainMatches(Domain, \"x\"", 25, "unbalanced '('"),
    ("()", 1, "empty parentheses"),
    ("Hour > 3 && && IsWeekend()", 12, "expected a value"),
    ("Hour @ 3", 5, "unexpected character"),
    ("Domain.endswith('x')", 6, "unexpected character"),
    ("__import__('os')", 0, "unexpected character"),
    ("Hour > 3 #", 9, "unexpected character"),
])
def test_syntax_errors(logic, pos, fragment):
    e = err(logic)
    assert isinstance(e, PolicySyntaxError), e
    assert e.position == pos, (e, e.caret())
    assert fragment in e.message
    assert str(pos) in str(e)


def test_nesting_and_length_limits():
    e = err("(" * 100 + "IsWeekend()" + ")" * 100)
    assert isinstance(e, PolicySyntaxError) and "nested" in e.message
    e = err("!" * 100 + "IsWeekend()")
    assert isinstance(e, PolicySyntaxError)
    e = err("IsWeekend() || " * 400 + "IsWeekend()")
    assert isinstance(e, PolicySyntaxError) and e.position == expr_mod.MAX_SOURCE
    # long flat chains are fine (flattened, no deep recursion)
    c = compile_expression(" && ".join(["Hour >= 0"] * 300))
    assert c.evaluate("a.com", now=SUN_NOON, tz=UTC)


@pytest.mark.parametrize("logic, pos, fragment", [
    ("Foo(Domain)", 0, "unknown function"),
    ("domainmatches(Domain, 'x')", 0, "did you mean 'DomainMatches'"),
    ("Hour > 3 && Colour == 'x'", 12, "unknown name"),
    ("hour > 3", 0, "did you mean 'Hour'"),
    ("IsWeekend() and Hour > 3", 12, "expected an operator"),
    ("not IsWeekend()", 4, "expected an operator"),
    ("IsWeekend", 0, "is a function"),
    ("Hour() > 3", 0, "is a variable"),
    ("DomainMatches(Domain)", 0, "takes 2 arguments, got 1"),
    ("DomainMatches(Domain, 'a', 'b')", 0, "takes 2 arguments, got 3"),
    ("IsWeekend(Hour)", 0, "takes 0 arguments, got 1"),
    ("DomainLevelCount()", 0, "takes 1 argument, got 0"),
    ("QueryTypeIn(QueryType)", 0, "at least 2"),
    ("InTimeRange(Hour, Minute, 22, 0, 6)", 0, "takes 6 arguments"),
    ("Hour == 'x'", 5, "cannot compare int with str"),
    ("Domain == 3", 7, "cannot compare str with int"),
    ("Domain > 'a'", 7, "integers only"),
    ("IsWeekend() < IsWeekend()", 12, "integers only"),
    ("Hour && IsWeekend()", 0, "needs boolean operands"),
    ("IsWeekend() || 'x'", 15, "needs boolean operands"),
    ("!Hour", 1, "! needs a boolean"),
    ("!Hour > 3", 1, "! needs a boolean"),
    ("Hour", 0, "must be a condition"),
    ("'x'", 0, "must be a condition"),
    ("DomainLevelCount(Domain)", 0, "must be a condition"),
    ("DomainMatches(Hour, 'x')", 14, "argument 1 of DomainMatches must be str, got int"),
    ("DomainMatches(Domain, Hour)", 22, "argument 2 of DomainMatches must be str"),
    ("DomainMatches(Domain, ClientIP)", 22, "must be a literal"),
    ("InTimeRange(Hour, Minute, Hour, 0, 6, 0)", 26, "must be a literal"),
    ("InTimeRange(Hour, Minute, 24, 0, 6, 0)", 26, "out of range"),
    ("InTimeRange(Hour, Minute, 22, 60, 6, 0)", 30, "out of range"),
    ("InTimeRange(Hour, Minute, 22, 0, 24, 5)", 37, "24:00"),
    ("InTimeRange(Hour, Minute, 6, 0, 6, 0)", 0, "same time"),
    ("InTimeRange(Hour, Minute, 0, 0, 24, 0)", 0, "whole day"),
    ("InTimeRange(Hour, Minute, '22', 0, 6, 0)", 26, "must be int"),
    ("DomainRegex(Domain, '(unclosed')", 20, "invalid regular expression"),
    ("DomainRegex(Domain, '*x')", 20, "invalid regular expression"),
    ("IPInCIDR(ClientIP, '10.0.0.0/33')", 19, "not a CIDR"),
    ("IPInCIDR(ClientIP, 'ten/8')", 19, "not a CIDR"),
    ("IPInCIDR(ClientIP, '')", 19, "not a CIDR"),
    ("IPEquals(ClientIP, '1.2.3')", 19, "not an IP"),
    ("DomainEndsWith(Domain, 'a..b')", 23, "not a valid domain"),
    ("DomainEndsWith(Domain, '')", 23, "not a valid domain"),
    ("DomainMatches(Domain, 'a b')", 22, "not a valid domain"),
    ("DomainStartsWith(Domain, '-x')", 25, "not a valid domain"),
    ("InClientGroup(ClientIP, ' ')", 24, "empty group"),
    ("QueryTypeIn(QueryType, 'A', 'A A')", 28, "not a query type"),
])
def test_type_errors(logic, pos, fragment):
    e = err(logic)
    assert isinstance(e, PolicyError), e
    assert e.position == pos, (e, e.caret())
    assert fragment in e.message, e.message


def test_error_categories():
    assert isinstance(err("Foo()"), PolicyTypeError)
    assert isinstance(err("Hour == 'x'"), PolicyTypeError)
    assert isinstance(err("DomainRegex(Domain, '(')"), PolicyTypeError)
    assert isinstance(err("(Hour"), PolicySyntaxError)
    assert isinstance(err("(Hour"), ValueError)


def test_caret_and_to_dict():
    e = err("Hour >= 22 && Colour == 'x'")
    assert e.caret() == "Hour >= 22 && Colour == 'x'\n              ^"
    d = e.to_dict()
    assert d["position"] == 14 and d["field"] == "logic" and d["caret"].endswith("^")
    e = err("Hour >\t= 3")        # tabs/newlines shown as one space, caret still aligned
    assert e.caret().split("\n")[0] == "Hour > = 3" and e.caret().split("\n")[1].index("^") == 7


# ------------------------------------------------------------------ no eval

@pytest.mark.parametrize("payload", [
    "__import__('os')",
    "__import__('os').system('id')",
    "().__class__.__bases__[0]",
    "Domain.__class__",
    "exec('1')",
    "eval('1')",
    "open('/etc/passwd')",
    "lambda: 1",
    "[x for x in ()]",
    "Hour; import os",
    "Hour >= 22 # comment",
    "`id`",
])
def test_python_payloads_are_rejected(payload):
    with pytest.raises(PolicyError):
        compile_expression(payload)


def test_import_payload_is_a_syntax_error():
    with pytest.raises(PolicySyntaxError) as ei:
        compile_expression("__import__('os')")
    assert ei.value.position == 0


def test_no_eval_exec_compile_in_policy_package():
    import burrow.policy.engine as engine_mod
    for mod in (expr_mod, engine_mod):
        tree = ast.parse(inspect.getsource(mod))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "compile", "__import__"}, node.lineno
            if isinstance(node, ast.Name):
                assert node.id not in {"eval", "exec"}, node.lineno


def test_uses_and_time_grain():
    c = compile_expression("DomainMatches(Domain, 'x') && IPInCIDR(ClientIP, '10.0.0.0/8')")
    assert c.uses == {"DomainMatches", "Domain", "IPInCIDR", "ClientIP"}
    assert c.time_grain is None and not c.uses_time
    assert compile_expression("Hour > 3 && Weekday == 1").time_grain == "hour"
    assert compile_expression("Hour > 3 || Minute == 1").time_grain == "minute"
    assert compile_expression("InTimeRange(Hour, Minute, 1, 0, 2, 0)").time_grain == "minute"
    assert compile_expression("IsWeekend()").time_grain == "day"
    assert compile_expression("Month == 12 || Day == 1").time_grain == "day"
