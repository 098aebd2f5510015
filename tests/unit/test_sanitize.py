"""Upstream replies are reduced to what belongs to the question before anyone sees them."""

import struct

import dns.message
import dns.rcode
import dns.rrset

from burrow.dns import wire
from burrow.dns.message import sanitize_upstream

NAME = "www.example.com."


def reply(*answer, authority=(), additional=(), rcode=0, name=NAME):
    query = dns.message.make_query(name, "A")
    resp = dns.message.make_response(query)
    resp.set_rcode(rcode)
    for text in answer:
        resp.answer.append(dns.rrset.from_text(*text))
    for text in authority:
        resp.authority.append(dns.rrset.from_text(*text))
    for text in additional:
        resp.additional.append(dns.rrset.from_text(*text))
    return resp.to_wire()


def run(packet, qtype=1, min_ttl=0, max_ttl=86400, negative_ttl=3600, name=NAME):
    qname = wire.text_to_name(name)
    return sanitize_upstream(packet, qname, qtype, 12 + len(qname) + 4, min_ttl, max_ttl, negative_ttl)


def rebuilt(answer, name=NAME):
    """Render the sanitized sections behind a header+question and parse them with dnspython."""
    qname = wire.text_to_name(name)
    packet = (wire.header(1, 0x8180, 1, answer.an, answer.ns, 0) + qname + b"\x00\x01\x00\x01"
              + answer.sections)
    return dns.message.from_wire(packet)


def test_plain_answer_is_kept_whole_and_ttl_known():
    ans = run(reply((NAME, 300, "IN", "A", "192.0.2.1")))
    assert ans.an == 1 and ans.ns == 0 and ans.ttl == 300
    m = rebuilt(ans)
    assert m.answer[0][0].address == "192.0.2.1"


def test_unrelated_answer_records_and_glue_are_dropped():
    packet = reply((NAME, 300, "IN", "A", "192.0.2.1"), ("evil.bank.com.", 300, "IN", "A", "6.6.6.6"),
                   authority=[("example.com.", 300, "IN", "NS", "ns.evil.com.")],
                   additional=[("ns.evil.com.", 300, "IN", "A", "6.6.6.6")])
    ans = run(packet)
    m = rebuilt(ans)
    names = {str(r.name) for r in m.answer}
    assert names == {NAME} and not m.authority and not m.additional


def test_cname_chain_is_followed():
    packet = reply((NAME, 300, "IN", "CNAME", "cdn.example.net."),
                   ("cdn.example.net.", 60, "IN", "CNAME", "edge.example.org."),
                   ("edge.example.org.", 30, "IN", "A", "192.0.2.7"))
    ans = run(packet)
    assert ans.an == 3 and ans.ttl == 30


def test_nxdomain_keeps_soa_with_negative_ttl():
    packet = reply(authority=[("example.com.", 3600, "IN", "SOA",
                               "ns.example.com. host.example.com. 1 7200 900 1209600 60")],
                   rcode=dns.rcode.NXDOMAIN)
    ans = run(packet)
    assert ans.rcode == wire.NXDOMAIN and ans.ns == 1
    assert ans.ttl == 60  # min(SOA TTL, SOA minimum)
    m = rebuilt(ans)
    assert m.authority[0].ttl == 60


def test_negative_ttl_is_capped():
    packet = reply(authority=[("example.com.", 3600, "IN", "SOA",
                               "ns.example.com. host.example.com. 1 7200 900 1209600 3600")],
                   rcode=dns.rcode.NXDOMAIN)
    assert run(packet, negative_ttl=30).ttl == 30


def test_soa_of_unrelated_zone_is_not_kept():
    packet = reply(authority=[("other.org.", 3600, "IN", "SOA",
                               "ns.other.org. host.other.org. 1 7200 900 1209600 60")],
                   rcode=dns.rcode.NXDOMAIN)
    ans = run(packet)
    assert ans.ns == 0 and ans.ttl is None  # RFC 2308: no SOA, do not cache


def test_ttl_clamps():
    packet = reply((NAME, 5, "IN", "A", "192.0.2.1"))
    assert run(packet, min_ttl=60).ttl == 60
    packet = reply((NAME, 999999, "IN", "A", "192.0.2.1"))
    ans = run(packet, max_ttl=3600)
    assert ans.ttl == 3600
    assert struct.unpack_from("!I", ans.sections, ans.ttl_offsets[0])[0] == 3600


def test_rebuild_path_keeps_names_readable_when_middle_record_dropped():
    # an unrelated record before the real one forces re-encoding with decompressed names
    packet = reply(("junk.example.com.", 300, "IN", "A", "6.6.6.6"),
                   (NAME, 300, "IN", "CNAME", "target.example.com."),
                   ("target.example.com.", 300, "IN", "A", "192.0.2.9"))
    ans = run(packet)
    m = rebuilt(ans)
    assert [str(r.name) for r in m.answer] == [NAME, "target.example.com."]
    assert str(m.answer[0][0].target) == "target.example.com."
