"""Authoritative answers: NXDOMAIN vs NODATA, negative TTLs, CNAME chains, RFC 4592 wildcards,
referrals, zone checks, serials, reverse names and the wire form (checked with dnspython)."""

from __future__ import annotations

import datetime

import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from burrow.dns import wire
from burrow.dns.decision import Decision
from burrow.dns.message import render
from burrow.dns.names import reverse_address as ptr_address
from burrow.dns.serial import next_serial, serial_lt
from burrow.zones.authority import Zone, ptr_name, rdata, to_answer
from burrow.zones.records import TYPE_CODES, Record
from burrow.zones.validate import RecordError
from burrow.zones.zonefile import parse_zone

from tests.support.dnsq import make_query

A, AAAA, CNAME, MX, TXT, NS, SOA_T, ANY = (wire.TYPE_A, wire.TYPE_AAAA, wire.TYPE_CNAME, wire.TYPE_MX,
                                           wire.TYPE_TXT, wire.TYPE_NS, wire.TYPE_SOA, wire.TYPE_ANY)

LAB = """$ORIGIN lab.test.
$TTL 3600
@        SOA ns1 hostmaster 2024010101 1d 2h 4w 300
@        NS  ns1
ns1      A   192.0.2.1
www      A   192.0.2.10
www      A   192.0.2.11
www      AAAA 2001:db8::10
a.b      A   192.0.2.20          ; b.lab.test is an empty non-terminal
alias    CNAME alias2
alias2   CNAME www
out      CNAME www.example.com.
dangling CNAME missing
loop1    CNAME loop2
loop2    CNAME loop1
*.apps   A   192.0.2.80
*.apps   TXT "wild"
exact.apps A 192.0.2.81
x.sub.apps A 192.0.2.82          ; sub.apps is an empty non-terminal: blocks *.apps below it
*.cn     CNAME www
child    NS  ns.child
ns.child A   192.0.2.53
"""


@pytest.fixture
def zone() -> Zone:
    z = Zone("lab.test", parse_zone(LAB, "lab.test").records)
    z.validate(require_glue=True)
    return z


def values(records) -> list[tuple[str, str, str]]:
    return [(r.name, r.type, r.value) for r in records]


def negative_soa(answer):
    assert len(answer.authority) == 1 and answer.authority[0].type == "SOA"
    assert answer.authority[0].name == "lab.test"
    return answer.authority[0]


# ---- positive, negative -----------------------------------------------------------------------

def test_exact_answer_is_authoritative(zone):
    got = zone.answer("www.lab.test", A)
    assert (got.rcode, got.aa, got.authority) == (wire.NOERROR, True, [])
    assert values(got.answer) == [("www.lab.test", "A", "192.0.2.10"), ("www.lab.test", "A", "192.0.2.11")]


def test_qname_case_trailing_dot_and_wire_form(zone):
    assert zone.answer("WWW.Lab.Test.", AAAA).answer[0].value == "2001:db8::10"
    assert zone.answer(wire.text_to_name("www.lab.test"), AAAA).answer[0].value == "2001:db8::10"


def test_nxdomain_carries_soa_with_negative_ttl(zone):
    got = zone.answer("nothing.lab.test", A)
    assert (got.rcode, got.aa, got.answer) == (wire.NXDOMAIN, True, [])
    assert negative_soa(got).ttl == 300  # min(SOA TTL 3600, MINIMUM 300), RFC 2308 §5
    assert got.negative


def test_negative_ttl_is_the_soa_ttl_when_smaller():
    recs = parse_zone(LAB.replace("@        SOA", "@ 60     SOA"), "lab.test").records
    assert negative_soa(Zone("lab.test", recs).answer("nothing.lab.test", A)).ttl == 60


def test_nodata_when_name_has_other_types(zone):
    got = zone.answer("www.lab.test", MX)
    assert (got.rcode, got.answer) == (wire.NOERROR, [])
    assert negative_soa(got).ttl == 300
    assert got.negative


def test_empty_non_terminal_is_nodata_not_nxdomain(zone):
    got = zone.answer("b.lab.test", A)
    assert (got.rcode, got.answer) == (wire.NOERROR, [])
    negative_soa(got)
    assert zone.answer("c.b.lab.test", A).rcode == wire.NXDOMAIN


def test_apex_queries(zone):
    assert values(zone.answer("lab.test", NS).answer) == [("lab.test", "NS", "ns1.lab.test.")]
    assert zone.answer("lab.test", SOA_T).answer[0].ttl == 3600  # positive SOA keeps its own TTL
    assert zone.answer("lab.test", A).authority[0].type == "SOA"


def test_any_returns_every_rrset(zone):
    got = zone.answer("www.lab.test", ANY)
    assert sorted(r.type for r in got.answer) == ["A", "A", "AAAA"]
    assert zone.answer("b.lab.test", ANY).answer == []
    assert zone.answer("b.lab.test", ANY).authority


def test_unknown_qtype_is_nodata(zone):
    got = zone.answer("www.lab.test", 99)
    assert (got.rcode, got.answer) == (wire.NOERROR, [])
    assert got.authority


def test_name_outside_the_zone_is_refused(zone):
    with pytest.raises(ValueError):
        zone.answer("www.example.com", A)
    with pytest.raises(ValueError):
        zone.answer("evillab.test", A)


# ---- CNAME ------------------------------------------------------------------------------------

def test_cname_chain_followed_inside_the_zone(zone):
    got = zone.answer("alias.lab.test", A)
    assert values(got.answer) == [("alias.lab.test", "CNAME", "alias2.lab.test."),
                                  ("alias2.lab.test", "CNAME", "www.lab.test."),
                                  ("www.lab.test", "A", "192.0.2.10"), ("www.lab.test", "A", "192.0.2.11")]
    assert (got.rcode, got.chase, got.authority) == (wire.NOERROR, None, [])


def test_cname_query_is_not_chased(zone):
    assert values(zone.answer("alias.lab.test", CNAME).answer) == [("alias.lab.test", "CNAME",
                                                                    "alias2.lab.test.")]


def test_cname_chain_ending_in_nodata(zone):
    got = zone.answer("alias.lab.test", MX)
    assert [r.type for r in got.answer] == ["CNAME", "CNAME"]
    assert got.rcode == wire.NOERROR and got.authority[0].type == "SOA"


def test_cname_to_missing_in_zone_name_is_nxdomain(zone):
    got = zone.answer("dangling.lab.test", A)
    assert got.rcode == wire.NXDOMAIN  # RFC 6604: the rcode of the last name in the chain
    assert values(got.answer) == [("dangling.lab.test", "CNAME", "missing.lab.test.")]
    negative_soa(got)


def test_cname_leaving_the_zone_stops_and_names_the_target(zone):
    got = zone.answer("out.lab.test", A)
    assert values(got.answer) == [("out.lab.test", "CNAME", "www.example.com.")]
    assert (got.rcode, got.chase, got.authority) == (wire.NOERROR, "www.example.com", [])


def test_cname_loop_stops(zone):
    got = zone.answer("loop1.lab.test", A)
    assert [r.name for r in got.answer] == ["loop1.lab.test", "loop2.lab.test"]


# ---- wildcards (RFC 4592) ---------------------------------------------------------------------

def test_wildcard_synthesises_with_the_qname_as_owner(zone):
    got = zone.answer("foo.apps.lab.test", A)
    assert values(got.answer) == [("foo.apps.lab.test", "A", "192.0.2.80")]
    assert got.aa and got.rcode == wire.NOERROR


def test_wildcard_matches_several_labels_below(zone):
    assert values(zone.answer("a.b.c.apps.lab.test", TXT).answer) == [("a.b.c.apps.lab.test", "TXT", '"wild"')]


def test_wildcard_nodata_for_missing_type(zone):
    got = zone.answer("foo.apps.lab.test", AAAA)
    assert (got.rcode, got.answer) == (wire.NOERROR, [])
    negative_soa(got)


def test_exact_name_wins_over_wildcard(zone):
    assert values(zone.answer("exact.apps.lab.test", A).answer) == [("exact.apps.lab.test", "A", "192.0.2.81")]
    got = zone.answer("exact.apps.lab.test", TXT)  # exists: no synthesis for other types either
    assert got.answer == [] and got.rcode == wire.NOERROR


def test_wildcard_does_not_cover_its_parent(zone):
    got = zone.answer("apps.lab.test", A)  # apps is an empty non-terminal
    assert (got.rcode, got.answer) == (wire.NOERROR, [])


def test_empty_non_terminal_blocks_the_wildcard(zone):
    assert zone.answer("sub.apps.lab.test", A).answer == []  # ENT itself: NODATA
    got = zone.answer("y.sub.apps.lab.test", A)  # closest encloser sub.apps has no *.sub.apps
    assert got.rcode == wire.NXDOMAIN and got.answer == []


def test_existing_name_blocks_the_wildcard_below_it(zone):
    assert zone.answer("deeper.exact.apps.lab.test", A).rcode == wire.NXDOMAIN


def test_literal_wildcard_name(zone):
    assert values(zone.answer("*.apps.lab.test", A).answer) == [("*.apps.lab.test", "A", "192.0.2.80")]


def test_wildcard_cname_is_synthesised_then_chased(zone):
    got = zone.answer("anything.cn.lab.test", A)
    assert values(got.answer)[0] == ("anything.cn.lab.test", "CNAME", "www.lab.test.")
    assert [r.type for r in got.answer] == ["CNAME", "A", "A"]


def test_home_lan_wildcard_is_dot_bounded():
    recs = [Record("lan", "SOA", 300, "ns.lan. hostmaster.lan. 1 3600 600 86400 60"),
            Record("lan", "NS", 300, "ns.lan."), Record("ns.lan", "A", 300, "192.168.1.1"),
            Record("*.home.lan", "A", 300, "192.168.1.50")]
    zone = Zone("lan", recs)
    zone.validate()
    assert zone.answer("evilhome.lan", A).rcode == wire.NXDOMAIN
    assert zone.answer("xhome.lan", A).rcode == wire.NXDOMAIN
    assert zone.answer("home.lan", A).answer == []
    assert values(zone.answer("nas.home.lan", A).answer) == [("nas.home.lan", "A", "192.168.1.50")]
    assert values(zone.answer("a.b.home.lan", A).answer) == [("a.b.home.lan", "A", "192.168.1.50")]


# ---- delegation -------------------------------------------------------------------------------

def test_referral_below_a_delegation(zone):
    got = zone.answer("host.child.lab.test", A)
    assert (got.rcode, got.aa, got.referral, got.answer) == (wire.NOERROR, False, True, [])
    assert values(got.authority) == [("child.lab.test", "NS", "ns.child.lab.test.")]
    assert values(got.additional) == [("ns.child.lab.test", "A", "192.0.2.53")]
    assert not got.negative
    assert zone.answer("child.lab.test", NS).referral


# ---- zone checks ------------------------------------------------------------------------------

SOA = Record("lab.test", "SOA", 3600, "ns1.lab.test. hostmaster.lab.test. 1 3600 600 86400 300")
NS1 = Record("lab.test", "NS", 3600, "ns1.lab.test.")
GLUE = Record("ns1.lab.test", "A", 3600, "192.0.2.1")


def check(records, field: str, words: str, **kw) -> None:
    with pytest.raises(RecordError) as info:
        Zone("lab.test", records).validate(**kw)
    assert info.value.field == field
    assert words in info.value.message


def test_valid_minimal_zone():
    Zone("lab.test", [SOA, NS1, GLUE]).validate(require_glue=True)


def test_zone_check_failures():
    check([NS1], "type", "exactly one SOA")
    check([SOA, SOA._replace(value=SOA.value.replace(" 1 ", " 2 ")), NS1], "type", "exactly one SOA")
    check([SOA, NS1, SOA._replace(name="x.lab.test")], "name", "apex")
    check([SOA], "type", "NS")
    check([SOA, NS1, Record("lab.test", "CNAME", 60, "x.example.")], "type", "apex")
    check([SOA, NS1, Record("w.lab.test", "CNAME", 60, "x.example."), Record("w.lab.test", "A", 60, "192.0.2.1")],
          "type", "no other data")
    check([SOA, NS1, Record("w.lab.test", "CNAME", 60, "x.example."), Record("w.lab.test", "CNAME", 60, "y.example.")],
          "type", "more than one CNAME")
    check([SOA, NS1, Record("www.example.com", "A", 60, "192.0.2.1")], "name", "not inside")
    check([SOA, NS1, Record("evillab.test", "A", 60, "192.0.2.1")], "name", "not inside")
    check([SOA, NS1, Record("w.lab.test", "A", 60, "300.0.0.1")], "value", "IPv4")
    check([SOA, NS1], "value", "no A or AAAA", require_glue=True)


def test_add_and_remove_keep_lookups_current():
    zone = Zone("lab.test", [SOA, NS1, GLUE])
    assert zone.answer("new.lab.test", A).rcode == wire.NXDOMAIN
    rec = Record("new.lab.test", "A", 60, "192.0.2.7")
    assert zone.add(rec) and not zone.add(rec._replace(ttl=99))
    assert zone.answer("new.lab.test", A).answer == [rec]
    assert zone.remove(rec._replace(ttl=1)) and not zone.remove(rec)
    assert zone.answer("new.lab.test", A).rcode == wire.NXDOMAIN
    assert len(zone) == 3


def test_rrset_answers_use_one_ttl():
    zone = Zone("lab.test", [SOA, NS1, Record("w.lab.test", "A", 60, "192.0.2.1"),
                             Record("w.lab.test", "A", 30, "192.0.2.2")])
    assert [r.ttl for r in zone.answer("w.lab.test", A).answer] == [30, 30]


# ---- serials ----------------------------------------------------------------------------------

def test_bump_serial_date_based_and_plain():
    day = datetime.date(2024, 3, 15)
    zone = Zone("lab.test", [SOA._replace(value="ns1.lab.test. h.lab.test. 2024010107 3600 600 86400 300"), NS1])
    assert zone.bump_serial(day) == 2024031500
    assert zone.bump_serial(day) == 2024031501
    assert zone.soa.value == "ns1.lab.test. h.lab.test. 2024031501 3600 600 86400 300"
    assert next_serial(2024031599, day) == 2024031600  # nn overflows into the next day's numbers
    assert next_serial(2030010100, day) == 2030010101  # a future date: just one more
    assert next_serial(7, day) == 8
    assert next_serial(2**32 - 1, day) == 0
    assert next_serial(2024139901, day) == 2024139902  # month 13: not a date


def test_bump_serial_needs_an_soa():
    with pytest.raises(RecordError):
        Zone("lab.test", [NS1]).bump_serial()


def test_serial_arithmetic_rfc1982():
    assert serial_lt(1, 2) and not serial_lt(2, 1) and not serial_lt(5, 5)
    assert serial_lt(2**32 - 1, 0)  # wraps
    assert serial_lt(2**32 - 10, 5)
    assert not serial_lt(0, 2**31 + 1)


# ---- reverse names ----------------------------------------------------------------------------

def test_ptr_names():
    assert ptr_name("192.0.2.1") == "1.2.0.192.in-addr.arpa"
    v6 = ptr_name("2001:db8::567:89ab")
    assert v6 == "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    assert ptr_address(v6) == "2001:db8::567:89ab"
    assert ptr_address("1.2.0.192.in-addr.arpa.") == "192.0.2.1"
    for partial in ("2.0.192.in-addr.arpa", "01.2.0.192.in-addr.arpa", "1.2.0.300.in-addr.arpa",
                    "www.lab.test", "x.ip6.arpa"):
        assert ptr_address(partial) is None
    with pytest.raises(RecordError):
        ptr_name("not-an-ip")


# ---- wire form --------------------------------------------------------------------------------

@pytest.mark.parametrize("rtype, value", [
    ("A", "192.0.2.1"), ("AAAA", "2001:db8::1"), ("CNAME", "www.lab.test."), ("NS", "ns1.lab.test."),
    ("PTR", "host.lab.test."), ("MX", "10 mail.lab.test."), ("MX", "0 ."),
    ("SRV", "10 5 5060 sip.lab.test."), ("SOA", "ns1.lab.test. h.lab.test. 2024010101 86400 7200 2419200 300"),
    ("TXT", '"v=spf1 -all" "two" "q\\"uote" "\\255"'), ("TXT", '""'),
    ("CAA", '0 issue "letsencrypt.org"'), ("CAA", '128 iodef "mailto:a@b.test"'),
])
def test_rdata_matches_dnspython(rtype, value):
    expected = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), value)
    got = dns.rdata.from_wire(dns.rdataclass.IN, TYPE_CODES[rtype], rdata(rtype, value), 0,
                              len(rdata(rtype, value)))
    assert got == expected


def reply(zone: Zone, qname: str, qtype: str):
    query = make_query(qname, qtype)
    answer = to_answer(zone.answer(query.qname, query.qtype), query.qname, Decision.LOCAL)
    return answer, dns.message.from_wire(render(query, answer))


def test_to_answer_positive_wire_reply(zone):
    answer, msg = reply(zone, "Alias.LAB.test", "A")
    assert answer.decision is Decision.LOCAL and answer.aa and answer.ttl == 3600
    assert msg.flags & dns.flags.AA and msg.rcode() == dns.rcode.NOERROR
    owners = [str(rrset.name) for rrset in msg.answer]
    assert owners == ["Alias.LAB.test.", "alias2.lab.test.", "www.lab.test."]  # the client's case kept
    assert sorted(str(rd) for rd in msg.answer[2]) == ["192.0.2.10", "192.0.2.11"]


def test_to_answer_nxdomain_wire_reply(zone):
    answer, msg = reply(zone, "nothing.lab.test", "AAAA")
    assert msg.rcode() == dns.rcode.NXDOMAIN and msg.flags & dns.flags.AA
    assert not msg.answer
    soa = msg.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 300 and str(soa.name) == "lab.test."
    assert answer.ttl == 300 and (answer.an, answer.ns, answer.ar) == (0, 1, 0)


def test_to_answer_ttls_can_be_aged(zone):
    answer, _ = reply(zone, "www.lab.test", "A")
    query = make_query("www.lab.test", "A")
    aged = dns.message.from_wire(render(query, answer.aged(100)))
    assert aged.answer[0].ttl == 3500


def test_to_answer_referral_and_wildcard(zone):
    answer, msg = reply(zone, "host.child.lab.test", "A")
    assert not msg.flags & dns.flags.AA
    assert [str(r.name) for r in msg.authority] == ["child.lab.test."]
    assert [str(r.name) for r in msg.additional] == ["ns.child.lab.test."]
    _, msg = reply(zone, "x.apps.lab.test", "TXT")
    assert [rd.strings for rd in msg.answer[0]] == [(b"wild",)]
