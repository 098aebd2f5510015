"""Record validation: every type valid and invalid, names, TTLs, and the API helper."""

from __future__ import annotations

import pytest

from burrow.zones.records import Record
from burrow.zones.validate import (
    TXT_MAX_OCTETS,
    RecordError,
    character_strings,
    in_zone,
    make_record,
    normalize_origin,
    parse_ttl,
    resolve_name,
    validate_record,
    validate_ttl,
    validate_type,
    validate_value,
)

ORIGIN = "lab.test"


def value(rtype: str, text: str, origin: str | None = ORIGIN) -> str:
    return validate_value(rtype, text, origin)


def bad(rtype: str, text: str, field: str = "value", origin: str | None = ORIGIN) -> RecordError:
    with pytest.raises(RecordError) as info:
        validate_value(rtype, text, origin)
    assert info.value.field == field
    assert str(info.value)
    return info.value


# ---- per type ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rtype, text, want", [
    ("A", " 192.0.2.1 ", "192.0.2.1"),
    ("AAAA", "2001:DB8:0:0::1", "2001:db8::1"),
    ("AAAA", "::ffff:192.0.2.1", "::ffff:c000:201"),
    ("CNAME", "www", "www.lab.test."),
    ("CNAME", "www.example.com.", "www.example.com."),
    ("CNAME", "@", "lab.test."),
    ("PTR", "host.lab.test.", "host.lab.test."),
    ("NS", "NS1", "ns1.lab.test."),
    ("MX", "10 mail", "10 mail.lab.test."),
    ("MX", "0 .", "0 ."),  # RFC 7505 null MX
    ("MX", "  5   mx.example.net. ", "5 mx.example.net."),
    ("SRV", "10 5 5060 sip", "10 5 5060 sip.lab.test."),
    ("SRV", "0 0 0 .", "0 0 0 ."),
    ("CAA", '0 issue "letsencrypt.org"', '0 issue "letsencrypt.org"'),
    ("CAA", "128 ISSUEWILD ;", '128 issuewild ";"'),
    ("CAA", '0 iodef "mailto:sec@lab.test"', '0 iodef "mailto:sec@lab.test"'),
    ("SOA", "ns1 hostmaster 2024010101 1d 2h 4w 1h",
     "ns1.lab.test. hostmaster.lab.test. 2024010101 86400 7200 2419200 3600"),
    ("SOA", "ns1.lab.test. hostmaster@lab.test 1 3600 600 86400 300",
     "ns1.lab.test. hostmaster.lab.test. 1 3600 600 86400 300"),
    ("TXT", "v=spf1 -all", '"v=spf1 -all"'),
    ("TXT", '"v=spf1" "-all"', '"v=spf1" "-all"'),
    ("TXT", '"a \\"quoted\\" word" bare', '"a \\"quoted\\" word" "bare"'),
    ("TXT", '"semi\\059colon"', '"semi;colon"'),
    ("TXT", '""', '""'),
    ("TXT", '"tab\\009"', '"tab\\009"'),
    ("TXT", "grüß", '"gr\\195\\188\\195\\159"'),
])
def test_valid_values_are_normalised(rtype, text, want):
    assert value(rtype, text) == want
    assert value(rtype, want) == want  # canonical text is a fixed point


@pytest.mark.parametrize("rtype, text", [
    ("A", "256.1.1.1"), ("A", "192.0.2"), ("A", "01.2.3.4"), ("A", "::1"), ("A", "host"),
    ("AAAA", "192.0.2.1"), ("AAAA", "gggg::1"), ("AAAA", "fe80::1%eth0"), ("AAAA", "1::2::3"),
    ("CNAME", "a b"), ("CNAME", "*.x.lab.test."), ("CNAME", "bad!name"), ("CNAME", "a..b"),
    ("CNAME", "."), ("PTR", "x\\.y"), ("NS", ""),
    ("MX", "mail.lab.test."), ("MX", "70000 mx."), ("MX", "-1 mx."), ("MX", "ten mx."), ("MX", "10 a b"),
    ("SRV", "10 5 70000 sip."), ("SRV", "10 5 sip."), ("SRV", "x 5 5060 sip."),
    ("CAA", '256 issue "ca"'), ("CAA", '0 is-sue "ca"'), ("CAA", "0 issue"),
    ("CAA", "0 issue letsencrypt.org extra"), ("CAA", '0 "issue" "ca"'), ("CAA", "0 waytoolongtagname1 x"),
    ("SOA", "ns1 hostmaster 1 2 3 4"), ("SOA", "ns1 hostmaster 4294967296 1 2 3 4"),
    ("SOA", "ns1 hostmaster 1 1x 2 3 4"), ("SOA", "ns1 a.b@lab.test 1 2 3 4 5"),
    ("TXT", ""), ("TXT", '"unterminated'), ("TXT", '"bad \\999 escape"'), ("TXT", '"ends\\'),
])
def test_invalid_values_name_the_value_field(rtype, text):
    bad(rtype, text)


def test_txt_strings_over_255_octets_are_refused_when_quoted_and_split_when_plain():
    long = "k" * 600
    err = bad("TXT", f'"{long}"')
    assert "255" in err.message
    plain = value("TXT", long)
    assert [len(s) for s in character_strings(plain)] == [255, 255, 90]
    assert b"".join(character_strings(plain)) == long.encode()
    assert value("TXT", '"' + "a" * 255 + '"') == '"' + "a" * 255 + '"'


def test_txt_total_is_capped():
    bad("TXT", "x" * (TXT_MAX_OCTETS + 1))
    assert value("TXT", "x" * TXT_MAX_OCTETS)


def test_txt_escapes_decode_to_the_wire_bytes():
    assert character_strings(value("TXT", '"a\\"b" "c\\\\d" "\\255"')) == [b'a"b', b"c\\d", b"\xff"]


def test_relative_names_need_an_origin():
    bad("CNAME", "www", origin=None)
    assert value("CNAME", "www.example.com.", origin=None) == "www.example.com."


def test_unknown_type_names_the_type_field():
    bad("HINFO", "x y", field="type")


# ---- names ------------------------------------------------------------------------------------

def name(text: str, origin: str | None = ORIGIN, **kw) -> str:
    return resolve_name(text, origin, **kw)


def test_name_forms():
    assert name("@") == "lab.test"
    assert name("www") == "www.lab.test"
    assert name("WWW.Example.COM.") == "www.example.com"
    assert name("a.b") == "a.b.lab.test"
    assert name("_sip._tcp") == "_sip._tcp.lab.test"
    assert name(".", root_ok=True) == ""
    assert name("bücher") == "xn--bcher-kva.lab.test"


def test_lenient_names_ending_in_the_origin_are_absolute():
    assert name("www.lab.test") == "www.lab.test.lab.test"  # zone-file rule
    assert name("www.lab.test", lenient=True) == "www.lab.test"
    assert name("LAB.TEST", lenient=True) == "lab.test"
    assert name("www.otherlab.test", lenient=True) == "www.otherlab.test.lab.test"


def test_label_and_name_length_limits():
    assert name("a" * 63)
    with pytest.raises(RecordError, match="63"):
        name("a" * 64)
    long_ok = ".".join(["a" * 49] * 5) + ".abc."  # 49*5 + 4 + 4 = 253
    assert len(name(long_ok)) == 253
    with pytest.raises(RecordError, match="253"):
        name(".".join(["a" * 49] * 5) + ".abcd.")


@pytest.mark.parametrize("text", ["a..b", "a b", "bad!", "a\\.b", "", "   ", "*a", "a.*", "a.*.b", "a\ufffd"])
def test_bad_owner_names(text):
    with pytest.raises(RecordError) as info:
        name(text, wildcard=True)
    assert info.value.field == "name"


def test_wildcard_only_as_whole_leftmost_label_of_owners():
    assert name("*", wildcard=True) == "*.lab.test"
    assert name("*.apps", wildcard=True) == "*.apps.lab.test"
    with pytest.raises(RecordError, match="wildcard"):
        name("*.apps")


def test_relative_owner_without_origin():
    with pytest.raises(RecordError, match="origin"):
        name("www", None)
    with pytest.raises(RecordError, match="origin"):
        name("@", None)


def test_in_zone_is_label_bounded():
    assert in_zone("home.lan", "home.lan")
    assert in_zone("a.b.home.lan", "home.lan")
    assert not in_zone("evilhome.lan", "home.lan")
    assert not in_zone("lan", "home.lan")


def test_normalize_origin():
    assert normalize_origin("Lab.Test.") == "lab.test"
    for bad_origin in ("", ".", None, "a..b"):
        with pytest.raises(RecordError):
            normalize_origin(bad_origin)


# ---- ttl, type --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("0", 0), ("3600", 3600), ("1h", 3600), ("1H30m", 5400), ("2d", 172800), ("1w", 604800),
    ("1w2d3h4m5s", 788645), ("2147483647", 2**31 - 1),
])
def test_parse_ttl(text, seconds):
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "-5", "1.5h", "2147483648", "1 h", "9999999w"])
def test_parse_ttl_rejects(text):
    with pytest.raises(RecordError) as info:
        parse_ttl(text)
    assert info.value.field == "ttl"


def test_validate_ttl_accepts_ints_and_text():
    assert validate_ttl(60) == 60
    assert validate_ttl("5m") == 300
    for wrong in (True, -1, 2**31, 1.5, None):
        with pytest.raises(RecordError) as info:
            validate_ttl(wrong)
        assert info.value.field == "ttl"


def test_validate_type():
    assert validate_type(" mx ") == "MX"
    for wrong in ("HINFO", "", None, 15):
        with pytest.raises(RecordError) as info:
            validate_type(wrong)
        assert info.value.field == "type"


# ---- make_record (the API helper) -------------------------------------------------------------

def test_make_record_from_script_shapes():
    rec = make_record("lab.test", "@", "MX", "mail.lab.test.", priority=10)
    assert rec == Record("lab.test", "MX", 300, "10 mail.lab.test.")
    assert make_record("lab.test.", "www", "a", "192.0.2.1", ttl=60) == Record("www.lab.test", "A", 60,
                                                                              "192.0.2.1")
    assert make_record("lab.test", "www.lab.test", "A", "192.0.2.1").name == "www.lab.test"
    assert make_record("lab.test", "www.lab.test.", "A", "192.0.2.1").name == "www.lab.test"
    assert make_record("lab.test", None, "TXT", "hello").name == "lab.test"
    assert make_record("lab.test", "", "TXT", "hello", default_ttl=3600).ttl == 3600
    assert make_record("lab.test", "*.apps", "CNAME", "proxy").value == "proxy.lab.test."
    assert make_record("lab.test", "mx", "MX", "10 mail.lab.test").value == "10 mail.lab.test."


def test_make_record_priority_rules():
    assert make_record("lab.test", "_sip._tcp", "SRV", "5 5060 sip", priority=1).value == "1 5 5060 sip.lab.test."
    assert make_record("lab.test", "@", "MX", "10 mail", priority="10").value == "10 mail.lab.test."
    cases = [("MX", "mail", None), ("MX", "20 mail", 10), ("A", "192.0.2.1", 5), ("MX", "mail", -1),
             ("MX", "mail", 70000), ("MX", "mail", True), ("SRV", "5 5060 sip", None)]
    for rtype, text, prio in cases:
        with pytest.raises(RecordError) as info:
            make_record("lab.test", "@", rtype, text, priority=prio)
        assert info.value.field == "priority", (rtype, text, prio)


@pytest.mark.parametrize("kwargs, field", [
    (dict(name="www.example.com.", type="A", value="192.0.2.1"), "name"),
    (dict(name="bad name", type="A", value="192.0.2.1"), "name"),
    (dict(name="www", type="HINFO", value="x"), "type"),
    (dict(name="www", type="A", value="999.1.1.1"), "value"),
    (dict(name="www", type="A", value=None), "value"),
    (dict(name="www", type="A", value="192.0.2.1", ttl=-5), "ttl"),
    (dict(name="www", type="A", value="192.0.2.1", ttl="soon"), "ttl"),
])
def test_make_record_errors_name_the_field(kwargs, field):
    with pytest.raises(RecordError) as info:
        make_record("lab.test", **kwargs)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_validate_record_renormalises_hand_built_records():
    rec = validate_record(Record("WWW.lab.test.", "aaaa", 60, "2001:DB8::0001"), "lab.test")
    assert rec == Record("www.lab.test", "AAAA", 60, "2001:db8::1")
    with pytest.raises(RecordError) as info:
        validate_record(Record("www.example.com", "A", 60, "192.0.2.1"), "lab.test")
    assert info.value.field == "name"
