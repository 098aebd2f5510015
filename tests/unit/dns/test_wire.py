"""Wire helpers: parsing queries, names, RRs, OPT building, TTL patching."""

import struct

import dns.edns
import dns.flags
import dns.message
import dns.rrset
import pytest

from burrow.dns import wire


def q(name="www.example.com", rdtype="A", **kw):
    return dns.message.make_query(name, rdtype, **kw).to_wire()


def test_parse_plain_query_keeps_case_and_lowers_key():
    packet = q("WwW.ExAmple.COM")
    parsed = wire.parse_query(packet)
    assert parsed.qname == wire.text_to_name("www.example.com")
    assert parsed.question[:-4] == b"\x03WwW\x07ExAmple\x03COM\x00"
    assert parsed.qtype == 1 and parsed.qclass == 1
    assert parsed.edns is None


def test_parse_edns_size_do_and_options():
    packet = q(use_edns=0, payload=4096, want_dnssec=True,
               options=[dns.edns.GenericOption(65001, b"xy")])
    parsed = wire.parse_query(packet)
    assert parsed.edns.udp_size == 4096 and parsed.edns.do and parsed.edns.version == 0
    assert parsed.edns.option(65001) == b"xy"


def test_edns_size_below_512_counts_as_512():
    parsed = wire.parse_query(q(use_edns=0, payload=100))
    assert parsed.edns.udp_size == 512


@pytest.mark.parametrize("mutate,rcode", [
    (lambda b: b[:4] + b"\x00\x02" + b[6:], wire.FORMERR),  # QDCOUNT 2
    (lambda b: b[:4] + b"\x00\x00" + b[6:], wire.FORMERR),  # QDCOUNT 0
    (lambda b: b[:2] + bytes([b[2] | 0x28]) + b[3:], wire.NOTIMP),  # opcode 5 (UPDATE)
    (lambda b: b[:-2], wire.FORMERR),  # truncated question
    (lambda b: b + b"\x00", wire.FORMERR),  # trailing garbage
])
def test_malformed_queries_raise_with_rcode(mutate, rcode):
    with pytest.raises(wire.WireError) as e:
        wire.parse_query(mutate(q()))
    assert e.value.rcode == rcode


def test_response_and_runt_are_dropped():
    resp = dns.message.make_response(dns.message.from_wire(q())).to_wire()
    with pytest.raises(wire.Drop):
        wire.parse_query(resp)
    with pytest.raises(wire.Drop):
        wire.parse_query(b"\x00" * 5)


def test_two_opt_records_is_formerr():
    packet = q(use_edns=0)
    opt = packet[-11:]
    doubled = packet[:10] + b"\x00\x02" + packet[12:] + opt
    with pytest.raises(wire.WireError) as e:
        wire.parse_query(doubled)
    assert e.value.rcode == wire.FORMERR


def test_edns_version_1_is_badvers():
    with pytest.raises(wire.WireError) as e:
        wire.parse_query(q(use_edns=1))
    assert e.value.rcode == wire.BADVERS


def test_read_name_follows_pointers_and_refuses_loops():
    resp = dns.message.make_response(dns.message.from_wire(q()))
    resp.answer.append(dns.rrset.from_text("www.example.com.", 60, "IN", "CNAME", "cdn.example.com."))
    packet = resp.to_wire()
    rrs, end = wire.read_rrs(packet, 12 + len(wire.text_to_name("www.example.com")) + 4, 1)
    assert end == len(packet)
    assert rrs[0].owner == wire.text_to_name("www.example.com")
    assert wire.rdata_name(packet, rrs[0]) == wire.text_to_name("cdn.example.com")
    looped = b"\x00" * 12 + b"\xc0\x0c"
    with pytest.raises(wire.WireError):
        wire.read_name(looped, 12)


def test_name_text_roundtrip_and_escapes():
    assert wire.name_to_text(wire.text_to_name("A.Example.com.")) == "a.example.com"
    assert wire.name_to_text(b"\x03a.b\x00") == "a\\046b"
    # Every byte outside printable ASCII, and '.' and '\\', is escaped; the rest is kept.
    assert wire.name_to_text(b"\x04a\\ \x7f\x03~!A\x01\x80\x00") == "a\\092\\032\\127.~!A.\\128"
    assert wire.text_to_name("") == b"\x00"
    with pytest.raises(wire.WireError):
        wire.text_to_name("a" * 64 + ".com")


def test_is_subdomain_is_label_bounded():
    n = wire.text_to_name
    assert wire.is_subdomain(n("a.example.com"), n("example.com"))
    assert wire.is_subdomain(n("example.com"), n("example.com"))
    assert not wire.is_subdomain(n("badexample.com"), n("example.com"))
    assert wire.is_subdomain(n("anything"), b"\x00")


def test_opt_record_with_ede_parses_in_dnspython():
    m = dns.message.make_response(dns.message.from_wire(q(use_edns=0)))
    packet = m.to_wire()
    # replace dnspython's OPT with ours carrying EDE 15
    base = packet[:-11]
    ours = wire.with_counts(base, 0, 0, 1) + wire.opt_record(True, (wire.EDE_BLOCKED, "ads list"))
    parsed = dns.message.from_wire(ours)
    assert parsed.edns == 0 and parsed.ednsflags & dns.flags.DO
    ede = [o for o in parsed.options if o.otype == 15][0]
    assert ede.code == 15 and ede.text == "ads list"


def test_patch_ttls_ages_and_floors_at_zero():
    body = struct.pack("!II", 300, 5)
    aged = wire.patch_ttls(body, (0, 4), (300, 5), 10)
    assert struct.unpack("!II", aged) == (290, 0)


def test_error_reply_to_an_unknown_opcode_echoes_only_rd():
    from burrow.dns.message import error_reply
    packet = bytearray(q())
    struct.pack_into("!H", packet, 2, (5 << 11) | wire.RD | wire.CD | wire.AD | wire.AA)  # UPDATE
    flags = struct.unpack_from("!H", error_reply(bytes(packet), wire.NOTIMP), 2)[0]
    assert flags == wire.QR | (5 << 11) | wire.RD | wire.NOTIMP  # no RA, CD, AD, AA
    struct.pack_into("!H", packet, 2, 15 << 11)
    assert struct.unpack_from("!H", error_reply(bytes(packet), wire.NOTIMP), 2)[0] == wire.QR | (15 << 11) | 4
    # a QUERY that fails to parse keeps the QUERY reply flags: RD, CD echoed, RA set
    struct.pack_into("!H", packet, 2, wire.RD | wire.CD | wire.AD)
    flags = struct.unpack_from("!H", error_reply(bytes(packet), wire.FORMERR), 2)[0]
    assert flags == wire.QR | wire.RD | wire.CD | wire.RA | wire.FORMERR
