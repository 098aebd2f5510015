"""dns/names.py: one normalisation for every name Burrow is given, wildcards, reverse names,
the view key; and the places that used to normalise on their own now agree with it."""

import ipaddress

import pytest

from burrow.dns import names
from burrow.dns.names import BadName, normalize
from burrow.filtering import parsers
from burrow.filtering.rpz import RpzError, check_name
from burrow.forwarding.rules import ForwardRule, ForwardRuleError, parse_domain_pattern, reverse_zones

RULE = {"name": "r", "upstreams": ["192.0.2.1:53"]}


@pytest.mark.parametrize("text, expected", [
    ("Example.COM.", "example.com"),
    ("  www.example.com  ", "www.example.com"),
    ("_dmarc.example.com", "_dmarc.example.com"),
    ("_sip._tcp.example.com", "_sip._tcp.example.com"),
    ("_acme-challenge.example.com", "_acme-challenge.example.com"),
    ("a_b.example", "a_b.example"),
    ("_.example", "_.example"),
    ("x_-y.example", "x_-y.example"),  # a hyphen inside, next to an underscore
    ("a-_.example", "a-_.example"),  # an underscore may end a label
    ("Bücher.de", "xn--bcher-kva.de"),
    ("_bü.de", "xn--_b-yka.de"),
    ("bücher。de", "xn--bcher-kva.de"),  # IDNA's dot look-alike separates labels
    ("a" * 63 + ".example", "a" * 63 + ".example"),
])
def test_normalize(text, expected):
    assert normalize(text) == expected
    assert names.is_normal(expected)


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), (".", "empty"), ("a..b", "empty label"), (".a", "empty label"),
    ("-a.example", "hyphen"), ("a-.example", "hyphen"), ("a.-b", "hyphen"),
    ("a b.example", "bad label"), ("a*b.example", "bad label"), ("ex!ample.com", "bad label"),
    ("a" * 64 + ".example", "longer than 63"),
    (".".join(["a" * 63] * 4), "longer than 253"),
])
def test_not_a_name(text, reason):
    with pytest.raises(BadName, match=reason):
        normalize(text)
    assert isinstance(BadName("x"), ValueError)  # callers catch ValueError


def test_underscore_is_one_rule_in_every_place_that_normalises():
    # The list parsers and the forwarding rules each had a normaliser of their own; an
    # underscore at a label's edge, next to a hyphen or in an IDN label is read alike now,
    # and a hyphen at a label's edge is refused alike.
    for name in ("_dmarc.example.com", "a_.example", "_-_.example", "bü_cher.de"):
        want = normalize(name)
        assert parsers.normalize_name(name) == want
        assert check_name(name, "trigger") == want
        assert parse_domain_pattern(name) == (False, want)
        assert ForwardRule({**RULE, "domains": [name]}).domains == (want,)
        rules = parsers.parse([name], "domains").rules
        assert [r[0] for r in rules] == [want]
        assert [r[0] for r in parsers.parse([f"||{name}^"], "adblock").rules] == [want]
    for bad in ("-x.example", "x-.example"):
        with pytest.raises(ValueError):
            parsers.normalize_name(bad)
        with pytest.raises(RpzError):
            check_name(bad, "trigger")
        with pytest.raises(ForwardRuleError):
            ForwardRule({**RULE, "domains": [bad]})
        assert parsers.parse([bad], "domains").errors == 1


def test_wildcards():
    assert names.split_wildcard("*.corp.example") == (True, "corp.example")
    assert names.split_wildcard("corp.example") == (False, "corp.example")
    assert names.normalize_pattern(" *.Corp.Example. ") == (True, "corp.example")
    for bad in ("a.*.example", "*example.com", "**.example", "*"):
        with pytest.raises(BadName, match="wildcard"):
            names.normalize_pattern(bad)


def test_reverse_names():
    assert names.reverse_name("192.0.2.7") == "7.2.0.192.in-addr.arpa"
    assert names.reverse_name("2001:db8::1").endswith(".8.b.d.0.1.0.0.2.ip6.arpa")
    with pytest.raises(ValueError):
        names.reverse_name("not-an-ip")
    assert str(names.reverse_network("1.168.192.in-addr.arpa")) == "192.168.1.0/24"
    assert str(names.reverse_network("d.f.ip6.arpa")) == "fd00::/8"
    for bad in ("300.in-addr.arpa", "1.2.3.4.5.in-addr.arpa", "x.in-addr.arpa", "².in-addr.arpa",
                "in-addr.arpa", "g.ip6.arpa", "example.com"):
        assert names.reverse_network(bad) is None
    assert names.reverse_address("7.2.0.192.IN-ADDR.ARPA.") == "192.0.2.7"
    assert names.reverse_address(names.reverse_name("2001:db8::1")) == "2001:db8::1"
    for partial in ("2.0.192.in-addr.arpa", "07.2.0.192.in-addr.arpa", "d.f.ip6.arpa"):
        assert names.reverse_address(partial) is None  # not complete, or not as written
    assert names.reverse_address("0.2.0.192.in-addr.arpa") == "192.0.2.0"


def test_reverse_zones():
    assert names.reverse_zones("192.168.1.0/24") == ["1.168.192.in-addr.arpa"]
    assert names.reverse_zones("10.1.16.0/22") == [f"{n}.1.10.in-addr.arpa" for n in range(16, 20)]
    assert names.reverse_zones("fd00::/8") == ["d.f.ip6.arpa"]
    for network in names.reverse_zones("172.16.0.0/12"):
        assert names.reverse_network(network).subnet_of(ipaddress.ip_network("172.16.0.0/12"))
    for bad, reason in (("0.0.0.0/0", "too large"), ("10.0.0.0/3", "reverse zones"), ("nonsense", "invalid")):
        with pytest.raises(ValueError, match=reason):
            names.reverse_zones(bad)
        with pytest.raises(ForwardRuleError) as e:
            reverse_zones(bad)
        assert e.value.field == "network"


def test_view_key():
    assert names.view_key({"kids", "iot"}) == "iot,kids"
    assert names.view_groups("iot,kids") == ("iot", "kids")
    assert names.view_groups("") == (names.DEFAULT_VIEW,) == ("default",)
    assert names.view_groups(names.view_key(["default"])) == ("default",)
