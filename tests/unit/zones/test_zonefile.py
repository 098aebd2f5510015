"""Zone files: BIND-style import edge cases, strict errors with line numbers, export that
round-trips and that Debian's real named-checkzone accepts."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burrow.zones.authority import Zone
from burrow.zones.records import Record
from burrow.zones.validate import character_strings, make_record, quote_string
from burrow.zones.zonefile import ZoneFileError, export_zone, parse_zone

NAMED_CHECKZONE = shutil.which("named-checkzone") or "/usr/bin/named-checkzone"

SOA = "ns1.lab.test. hostmaster.lab.test. 2024010101 86400 7200 2419200 300"


def records(text: str, origin: str | None = "lab.test", **kw) -> list[Record]:
    return parse_zone(text, origin, **kw).records


def error(text: str, origin: str | None = "lab.test") -> ZoneFileError:
    with pytest.raises(ZoneFileError) as info:
        parse_zone(text, origin)
    assert str(info.value).startswith(f"line {info.value.line}: ")
    return info.value


# ---- import -----------------------------------------------------------------------------------

def test_multi_line_soa_with_comments_inside_parentheses():
    text = """$TTL 1h
@   IN  SOA ns1 hostmaster (   ; primary, contact
            2024010101 ; serial
            1d         ; refresh
            2h         ; retry
            4w         ; expire
            300 )      ; negative TTL
    IN  NS  ns1
ns1 IN  A   192.0.2.1
"""
    got = records(text)
    assert got[0] == Record("lab.test", "SOA", 3600, SOA)
    assert got[1] == Record("lab.test", "NS", 3600, "ns1.lab.test.")  # owner continues after ')'
    assert got[2] == Record("ns1.lab.test", "A", 3600, "192.0.2.1")


def test_parentheses_may_wrap_any_record_and_open_mid_line():
    assert records("txt TXT ( \"one\"\n   \"two\" )\n") == [Record("txt.lab.test", "TXT", 3600, '"one" "two"')]


def test_origin_switch_mid_file_and_relative_origin():
    text = """$ORIGIN lab.test.
www     A 192.0.2.1
$ORIGIN dev
api     A 192.0.2.2
@       MX 10 mail
$ORIGIN lab.test.
@       TXT top
"""
    assert records(text) == [
        Record("www.lab.test", "A", 3600, "192.0.2.1"),
        Record("api.dev.lab.test", "A", 3600, "192.0.2.2"),
        Record("dev.lab.test", "MX", 3600, "10 mail.dev.lab.test."),
        Record("lab.test", "TXT", 3600, '"top"'),
    ]


def test_names_relative_absolute_and_at():
    got = records("@ CNAME www\nalias CNAME www.example.com.\nx CNAME @\n")
    assert [r.value for r in got] == ["www.lab.test.", "www.example.com.", "lab.test."]


def test_omitted_owner_continues_previous_owner():
    text = "www A 192.0.2.1\n A 192.0.2.2\n\t AAAA 2001:db8::1\n; comment\n\n  TXT hi\nftp A 192.0.2.9\n"
    got = records(text)
    assert [r.name for r in got] == ["www.lab.test"] * 4 + ["ftp.lab.test"]


def test_ttl_and_class_in_either_order_with_units():
    text = "a 1h IN A 192.0.2.1\nb IN 2d A 192.0.2.2\nc IN A 192.0.2.3\nd 1w2d A 192.0.2.4\ne in 30M a 192.0.2.5\n"
    got = records(text, default_ttl=77)
    assert [r.ttl for r in got] == [3600, 172800, 172800, 777600, 1800]  # c: RFC 1035, the last TTL given


def test_default_ttl_order_dollar_ttl_then_last_then_default():
    assert records("a A 192.0.2.1\n", default_ttl=77)[0].ttl == 77
    assert [r.ttl for r in records("$TTL 5m\na 60 A 192.0.2.1\nb A 192.0.2.2\n")] == [60, 300]


def test_semicolons_inside_quotes_are_not_comments():
    text = 'txt TXT "v=DKIM1; k=rsa; p=abc" ; real comment\nsemi TXT "a\\;b" c\\;d\n'
    got = records(text)
    assert got[0].value == '"v=DKIM1; k=rsa; p=abc"'
    assert got[1].value == '"a;b" "c;d"'


def test_quoted_strings_with_escapes():
    got = records('t TXT "say \\"hi\\"" "back\\\\slash" "\\072\\105" plain\n')
    assert got[0].value == '"say \\"hi\\"" "back\\\\slash" "Hi" "plain"'


def test_caa_srv_and_soa_units():
    text = ('@ CAA 0 issue "letsencrypt.org; validationmethods=dns-01"\n'
            '_sip._tcp SRV 10 60 5060 sip\n')
    got = records(text)
    assert got[0].value == '0 issue "letsencrypt.org; validationmethods=dns-01"'
    assert got[1].value == "10 60 5060 sip.lab.test."


def test_origin_taken_from_soa_or_first_origin():
    assert parse_zone(f"$ORIGIN lab.test.\n@ SOA {SOA}\n").origin == "lab.test"
    assert parse_zone("$ORIGIN a.test.\nwww A 192.0.2.1\n").origin == "a.test"
    assert parse_zone("www.lab.test. A 192.0.2.1\n").origin is None


def test_crlf_line_endings():
    assert len(records("a A 192.0.2.1\r\nb A 192.0.2.2\r\n")) == 2


@pytest.mark.parametrize("text, line, words", [
    ("a A 192.0.2.1\n$INCLUDE other.zone\n", 2, "$INCLUDE"),
    ("$GENERATE 1-10 host$ A 10.0.0.$\n", 1, "unsupported directive"),
    ("a A 192.0.2.1\n\nb HINFO x y\n", 3, "HINFO"),
    ("a CH TXT hi\n", 1, "IN"),
    ("a A 192.0.2.1\nb A 300.1.1.1\n", 2, "IPv4"),
    ("@ SOA ns1 host (\n 1 2 3 4 5\n", 1, "never closed"),
    ("a A 192.0.2.1 )\n", 1, "without a matching"),
    ("a TXT \"open\nb A 192.0.2.1\n", 1, "unterminated"),
    (" A 192.0.2.1\n", 1, "owner"),
    ("a 3600 IN\n", 1, "missing record type"),
    ("$TTL forever\n", 1, "duration"),
    ("$ORIGIN\n", 1, "exactly one"),
    ("www.example.com. A 192.0.2.1\n", 1, "outside zone"),
    ("bad_name! A 192.0.2.1\n", 1, "letters"),
    ("a MX mail\n", 1, "preference"),
    ("a TXT \"" + "x" * 256 + "\"\n", 1, "255"),
    ("@ SOA ns1 host ( 1 2 3 4 5 (\n) )\n", 1, "nested"),
])
def test_bad_lines_raise_with_line_number(text, line, words):
    err = error(text)
    assert err.line == line
    assert words in err.message


def test_relative_names_without_any_origin_are_errors():
    err = error("a A 192.0.2.1\n", origin=None)
    assert "origin" in err.message and err.field == "name"


def test_non_strict_collects_errors_and_keeps_good_lines():
    parsed = parse_zone("a A 192.0.2.1\nb A nope\nc A 192.0.2.3\nd FOO x\n", "lab.test", strict=False)
    assert [r.name for r in parsed.records] == ["a.lab.test", "c.lab.test"]
    assert [e.line for e in parsed.errors] == [2, 4]


def test_duplicates_are_dropped_with_a_warning():
    parsed = parse_zone("a A 192.0.2.1\na 60 A 192.0.2.1\n", "lab.test")
    assert len(parsed.records) == 1
    assert "line 2" in parsed.warnings[0]


REAL_BIND_FILE = r"""
;
; BIND data file for lab.test — the kind of file people keep in /etc/bind
;
$TTL	604800
@	IN	SOA	ns1.lab.test. root.lab.test. (
			      2024031502	; Serial
			      604800		; Refresh
			       86400		; Retry
			     2419200		; Expire
			      604800 )	; Negative Cache TTL
;
@	IN	NS	ns1.lab.test.
@	IN	NS	ns2
@	IN	A	192.168.1.2
@	IN	MX	10 mail.lab.test.
@	IN	MX	20 backup-mx.example.net.
@	IN	TXT	"v=spf1 mx ip4:192.168.1.0/24 -all"
@	IN	CAA	0 issue "letsencrypt.org"
ns1	IN	A	192.168.1.2
ns2	IN	A	192.168.1.3
mail	IN	A	192.168.1.10
	IN	AAAA	fd00::10
www	300	IN	CNAME	@
nas		IN	A	192.168.1.20	; the Synology
printer	IN	A	192.168.1.30
*.k8s	IN	A	192.168.1.40
_ldap._tcp	IN	SRV	0 100 389 nas
mail._domainkey	IN	TXT	( "v=DKIM1; k=rsa; "
		"p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu9ZkZv3w2yqY6Hq5h2s1" )
_dmarc	IN	TXT	"v=DMARC1; p=reject; rua=mailto:postmaster@lab.test"
"""


def test_real_looking_bind_file():
    parsed = parse_zone(REAL_BIND_FILE, "lab.test")
    zone = Zone(parsed.origin, parsed.records)
    zone.validate(require_glue=True)
    assert len(parsed.records) == 19
    assert zone.soa.value == "ns1.lab.test. root.lab.test. 2024031502 604800 86400 2419200 604800"
    assert {r.value for r in zone.rrset("lab.test", "NS")} == {"ns1.lab.test.", "ns2.lab.test."}
    assert zone.rrset("www.lab.test", "CNAME")[0] == Record("www.lab.test", "CNAME", 300, "lab.test.")
    assert zone.rrset("mail.lab.test", "AAAA")[0].value == "fd00::10"
    dkim = zone.rrset("mail._domainkey.lab.test", "TXT")[0]
    assert dkim.value.startswith('"v=DKIM1; k=rsa; " "p=MIIB')
    assert zone.rrset("_ldap._tcp.lab.test", "SRV")[0].value == "0 100 389 nas.lab.test."
    assert all(r.ttl == 604800 for r in parsed.records if r.name != "www.lab.test")


# ---- export -----------------------------------------------------------------------------------

def full_zone() -> Zone:
    """A zone with every supported type and the awkward values (quotes, escapes, wildcards)."""
    mk = make_record
    recs = [
        Record("lab.test", "SOA", 3600, SOA),
        mk("lab.test", "@", "NS", "ns2.lab.test."), mk("lab.test", "@", "NS", "ns1.lab.test."),
        mk("lab.test", "ns1", "A", "192.0.2.1"), mk("lab.test", "ns2", "AAAA", "2001:db8::2"),
        mk("lab.test", "@", "A", "192.0.2.10"), mk("lab.test", "@", "MX", "mail", priority=10),
        mk("lab.test", "mail", "A", "192.0.2.25"), mk("lab.test", "mail", "AAAA", "2001:db8::25"),
        mk("lab.test", "www", "CNAME", "@", ttl=60),
        mk("lab.test", "*.apps", "A", "192.0.2.80"),
        mk("lab.test", "_sip._tcp", "SRV", "10 5 5060 mail.lab.test."),
        mk("lab.test", "10", "PTR", "mail.lab.test."),
        mk("lab.test", "@", "CAA", '0 issue "letsencrypt.org"'),
        mk("lab.test", "@", "CAA", '128 iodef "mailto:sec@lab.test"'),
        mk("lab.test", "@", "TXT", "v=spf1 mx -all"),
        mk("lab.test", "quotes", "TXT", '"say \\"hi\\"; ok" "back\\\\slash" "\\200\\001"'),
        mk("lab.test", "long", "TXT", "k" * 700),
        mk("lab.test", "child", "NS", "ns.child.lab.test."), mk("lab.test", "ns.child", "A", "192.0.2.53"),
        mk("lab.test", "deep.empty.nonterminal", "A", "192.0.2.99", ttl="1d"),
    ]
    zone = Zone("lab.test", recs)
    zone.validate(require_glue=True)
    return zone


def test_export_layout_soa_then_ns_then_sorted():
    text = export_zone("lab.test", full_zone().records())
    lines = [line for line in text.splitlines() if line and not line.startswith((";", "$", "\t\t"))]
    assert text.splitlines()[1:3] == ["$ORIGIN lab.test.", "$TTL 300"]
    assert "\tSOA\t" in lines[0]
    assert "\tNS\tns1.lab.test." in lines[1] and "\tNS\tns2.lab.test." in lines[2]
    owners = [line.split("\t")[0] for line in lines[3:] if line.split("\t")[0]]
    # RFC 4034 canonical order: labels compared from the right, so a parent precedes its children
    assert owners == ["10", "_sip._tcp", "*.apps", "child", "ns.child", "long", "mail",
                      "deep.empty.nonterminal", "ns1", "ns2", "quotes", "www"]
    assert owners.index("child") < owners.index("ns.child") < owners.index("ns1")


def test_export_round_trip():
    zone = full_zone()
    text = export_zone(zone.origin, zone.records())
    again = parse_zone(text, "lab.test")
    assert sorted(again.records) == sorted(zone.records())
    assert parse_zone(text).origin == "lab.test"
    assert export_zone("lab.test", again.records) == text  # stable: same data, same file


def test_round_trip_of_the_real_bind_file():
    parsed = parse_zone(REAL_BIND_FILE, "lab.test")
    assert sorted(parse_zone(export_zone("lab.test", parsed.records), "lab.test").records) == \
        sorted(parsed.records)


def named_checkzone(origin: str, text: str, tmp_path) -> subprocess.CompletedProcess:
    if not shutil.which(NAMED_CHECKZONE):
        pytest.skip("named-checkzone (Debian bind9utils) is not installed")
    path = tmp_path / f"{origin}.zone"
    path.write_text(text)
    # -i local: integrity checks on in-zone data only (out-of-zone lookups would need a network);
    # every other check is turned from a warning into a failure, stricter than named itself
    strict = ["-k", "fail", "-n", "fail", "-m", "fail", "-M", "fail", "-S", "fail", "-r", "fail"]
    return subprocess.run([NAMED_CHECKZONE, "-i", "local", *strict, origin, str(path)], capture_output=True,
                          text=True, timeout=30)


def test_named_checkzone_accepts_export_with_every_type(tmp_path):
    zone = full_zone()
    assert {r.type for r in zone.records()} == {"A", "AAAA", "CNAME", "MX", "TXT", "SRV", "PTR", "NS",
                                                 "CAA", "SOA"}
    done = named_checkzone("lab.test", export_zone(zone.origin, zone.records()), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loaded serial 2024010101" in done.stdout


def test_named_checkzone_accepts_reverse_zone_export(tmp_path):
    origin = "1.168.192.in-addr.arpa"
    recs = [make_record(origin, "@", "SOA", "ns1.lab.test. hostmaster@lab.test 7 1h 10m 1w 5m"),
            make_record(origin, "@", "NS", "ns1.lab.test."),
            make_record(origin, "2", "PTR", "ns1.lab.test."),
            make_record(origin, "20", "PTR", "nas.lab.test.")]
    done = named_checkzone(origin, export_zone(origin, recs), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_named_checkzone_reads_the_same_data(tmp_path):
    """Ask named itself to print the zone canonically and compare with what we parsed."""
    zone = full_zone()
    text = export_zone(zone.origin, zone.records())
    if not shutil.which(NAMED_CHECKZONE):
        pytest.skip("named-checkzone (Debian bind9utils) is not installed")
    src = tmp_path / "in.zone"
    src.write_text(text)
    out = tmp_path / "out.zone"
    done = subprocess.run([NAMED_CHECKZONE, "-i", "local", "-D", "-o", str(out), "lab.test", str(src)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(parse_zone(out.read_text(), "lab.test").records) == sorted(zone.records())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=255), min_size=1, max_size=4))
def test_any_txt_bytes_survive_export_and_import(strings):
    """Quotes, backslashes, semicolons, parentheses, control and high bytes: all round-trip."""
    text = " ".join(quote_string(s) for s in strings)
    rec = make_record("lab.test", "t", "TXT", text)
    assert character_strings(rec.value) == strings
    back = parse_zone(export_zone("lab.test", [rec]), "lab.test").records
    assert back == [rec]
