"""Upstream replies are reduced to what belongs to the question before anyone sees them."""

import struct

import dns.message
import dns.name
import dns.rdatatype
import dns.rcode
import dns.rrset
from hypothesis import given, settings
from hypothesis import strategies as st

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


# ---- DNSSEC: what a validating client needs survives, bailiwick still holds -------------------

ZONE = "example.com."
SOA = (ZONE, 3600, "IN", "SOA", "ns.example.com. host.example.com. 1 7200 900 1209600 60")
SIG_TAIL = "20300101000000 20200101000000 4711 {signer} c2lnbmF0dXJl"


def sig(owner, covered, labels, signer=ZONE, ttl=300):
    return (owner, ttl, "IN", "RRSIG", f"{covered} 13 {labels} {ttl} " + SIG_TAIL.format(signer=signer))


def msg(*answer, authority=(), additional=(), rcode=0, name=NAME, qtype="A"):
    query = dns.message.make_query(name, qtype, want_dnssec=True)
    resp = dns.message.make_response(query)
    resp.set_rcode(rcode)
    for section, texts in ((resp.answer, answer), (resp.authority, authority), (resp.additional, additional)):
        for text in texts:
            section.append(dns.rrset.from_text(*text))
    return resp.to_wire()


def kinds(records):
    out = []
    for rrset in records:
        covered = dns.rdatatype.to_text(rrset.covers) if rrset.rdtype == dns.rdatatype.RRSIG else ""
        out.append((str(rrset.name), dns.rdatatype.to_text(rrset.rdtype), covered))
    return out


def run_do(packet, qtype=1, name=NAME, do=True, **kw):
    qname = wire.text_to_name(name)
    return sanitize_upstream(packet, qname, qtype, 12 + len(qname) + 4, kw.get("min_ttl", 0),
                             kw.get("max_ttl", 86400), kw.get("negative_ttl", 3600), do)


def rebuilt_do(answer, name=NAME, qtype=1):
    qname = wire.text_to_name(name)
    packet = (wire.header(1, 0x8180, 1, answer.an, answer.ns, 0) + qname + struct.pack("!HH", qtype, 1)
              + answer.sections)
    return dns.message.from_wire(packet)


NSEC_PROOF = [SOA, sig(ZONE, "SOA", 2),
              ("a.example.com.", 60, "IN", "NSEC", "z.example.com. A RRSIG NSEC"), sig("a.example.com.", "NSEC", 3),
              ("b4um86eghhds6nea196smvmlo4ors995.example.com.", 60, "IN", "NSEC3",
               "1 0 0 - b4um86eghhds6nea196smvmlo4ors996 A RRSIG"),
              sig("b4um86eghhds6nea196smvmlo4ors995.example.com.", "NSEC3", 3)]
FOREIGN = [("evil.org.", 300, "IN", "NSEC", "z.evil.org. A"), sig("evil.org.", "NSEC", 2, signer="evil.org."),
           ("example.com.", 300, "IN", "NS", "ns.evil.org.")]


def test_nxdomain_keeps_denial_proofs_for_do_only():
    packet = msg(authority=NSEC_PROOF + FOREIGN, additional=[("ns.evil.org.", 300, "IN", "A", "6.6.6.6")],
                 rcode=dns.rcode.NXDOMAIN)
    ans = run_do(packet)
    m = rebuilt_do(ans)
    assert kinds(m.authority) == [("example.com.", "SOA", ""), ("example.com.", "RRSIG", "SOA"),
                                  ("a.example.com.", "NSEC", ""), ("a.example.com.", "RRSIG", "NSEC"),
                                  ("b4um86eghhds6nea196smvmlo4ors995.example.com.", "NSEC3", ""),
                                  ("b4um86eghhds6nea196smvmlo4ors995.example.com.", "RRSIG", "NSEC3")]
    assert ans.ttl == 60 and all(rrset.ttl <= 60 for rrset in m.authority)  # the negative TTL
    plain = run_do(packet, do=False)
    assert kinds(rebuilt_do(plain).authority) == [("example.com.", "SOA", "")] and plain.ttl == 60


def test_proofs_that_are_a_prefix_are_sliced_not_reencoded():
    packet = msg(authority=NSEC_PROOF, rcode=dns.rcode.NXDOMAIN)
    ans = run_do(packet)
    qend = 12 + len(wire.text_to_name(NAME)) + 4
    assert ans.ns == 6
    # same bytes as the upstream's (compression kept) but for the TTLs we set
    assert len(ans.sections) == len(packet) - qend - 11  # minus our request's OPT record
    assert kinds(rebuilt_do(ans).authority)[0] == ("example.com.", "SOA", "")


def test_nodata_proofs_kept_and_negative_ttl_capped():
    ans = run_do(msg(authority=NSEC_PROOF[:4]), negative_ttl=30)
    m = rebuilt_do(ans)
    assert ans.rcode == wire.NOERROR and ans.an == 0 and ans.ns == 4 and ans.ttl == 30
    assert all(rrset.ttl == 30 for rrset in m.authority)


def test_proofs_without_a_soa_are_dropped():
    ans = run_do(msg(authority=NSEC_PROOF[2:4], rcode=dns.rcode.NXDOMAIN))
    assert ans.ns == 0 and ans.ttl is None  # no zone to hold them to, and not cacheable


def test_rrsig_over_something_else_in_authority_is_dropped():
    ans = run_do(msg(authority=[SOA, sig(ZONE, "SOA", 2), sig(ZONE, "NS", 2), sig(ZONE, "DNSKEY", 2)],
                     rcode=dns.rcode.NXDOMAIN))
    assert kinds(rebuilt_do(ans).authority) == [("example.com.", "SOA", ""), ("example.com.", "RRSIG", "SOA")]


def test_wildcard_answer_keeps_nsec_in_the_signers_zone():
    packet = msg((NAME, 300, "IN", "A", "192.0.2.1"), sig(NAME, "A", 2),  # *.example.com expanded
                 authority=[("example.com.", 300, "IN", "NS", "ns.example.com."),
                            ("www.example.com.", 300, "IN", "NSEC", "z.example.com. A RRSIG NSEC"),
                            sig("www.example.com.", "NSEC", 3), sig(ZONE, "SOA", 2)] + FOREIGN[:2])
    ans = run_do(packet)
    m = rebuilt_do(ans)
    assert kinds(m.answer) == [(NAME, "A", ""), (NAME, "RRSIG", "A")]
    assert kinds(m.authority) == [("www.example.com.", "NSEC", ""), ("www.example.com.", "RRSIG", "NSEC")]
    assert ans.ttl == 300
    plain = rebuilt_do(run_do(packet, do=False))
    assert kinds(plain.answer) == [(NAME, "A", "")] and not plain.authority  # RFC 4035 §3.2.1


def test_a_signer_that_does_not_enclose_the_name_vouches_for_nothing():
    packet = msg((NAME, 300, "IN", "A", "192.0.2.1"), sig(NAME, "A", 2, signer="org."),
                 authority=[("x.org.", 300, "IN", "NSEC", "y.org. A")])
    assert run_do(packet).ns == 0


def test_cname_chain_to_nodata_keeps_the_soa_of_its_end():
    # the question is the longest name: the SOA must match the chain's end, not the longest owner
    long_name = "a-much-longer-first-name.example.com."
    packet = msg((long_name, 300, "IN", "CNAME", "end.example.net."),
                 authority=[("example.net.", 3600, "IN", "SOA", "ns.example.net. h.example.net. 1 2 3 4 120"),
                            ("example.com.", 3600, "IN", "SOA", "ns.example.com. h.example.com. 1 2 3 4 120")],
                 name=long_name)
    ans = run_do(packet, name=long_name, do=False)
    m = rebuilt_do(ans, name=long_name)
    assert kinds(m.answer) == [(long_name, "CNAME", "")]
    assert kinds(m.authority) == [("example.net.", "SOA", "")]
    assert ans.ttl == 120


def test_cname_chain_to_nxdomain_keeps_soa_and_proofs():
    packet = msg((NAME, 300, "IN", "CNAME", "gone.example.com."), sig(NAME, "CNAME", 3),
                 authority=NSEC_PROOF[:4], rcode=dns.rcode.NXDOMAIN)
    m = rebuilt_do(run_do(packet))
    assert [k[1] for k in kinds(m.answer)] == ["CNAME", "RRSIG"]
    assert [k[1] for k in kinds(m.authority)] == ["SOA", "RRSIG", "NSEC", "RRSIG"]


def test_chain_that_only_loops_is_negative_without_soa():
    packet = msg((NAME, 300, "IN", "CNAME", "b.example.com."), ("b.example.com.", 300, "IN", "CNAME", NAME))
    ans = run_do(packet, do=False)
    assert ans.an == 2 and ans.ttl is None


def test_dname_and_its_rrsig_kept_with_synthesised_cname():
    packet = msg(("example.com.", 300, "IN", "DNAME", "example.net."), sig("example.com.", "DNAME", 2),
                 (NAME, 300, "IN", "CNAME", "www.example.net."),
                 ("www.example.net.", 300, "IN", "A", "192.0.2.5"),
                 sig("www.example.net.", "A", 3, signer="example.net."),
                 ("other.org.", 300, "IN", "DNAME", "evil.org."), sig("example.com.", "NS", 2),
                 ("mail.example.com.", 300, "IN", "A", "6.6.6.6"))
    ans = run_do(packet)
    m = rebuilt_do(ans)
    assert kinds(m.answer) == [("example.com.", "DNAME", ""), ("example.com.", "RRSIG", "DNAME"),
                               (NAME, "CNAME", ""), ("www.example.net.", "A", ""),
                               ("www.example.net.", "RRSIG", "A")]
    assert ans.ttl == 300


def test_dname_followed_without_a_synthesised_cname():
    packet = msg(("example.com.", 300, "IN", "DNAME", "example.net."),
                 ("www.example.net.", 300, "IN", "A", "192.0.2.5"))
    ans = run_do(packet, do=False)
    assert ans.an == 2 and ans.ttl == 300  # positive: the rewritten name has the A record


def test_dname_owned_by_the_question_is_not_applied_to_it():
    packet = msg(("example.com.", 300, "IN", "DNAME", "example.net."), name="example.com.", qtype="DNAME")
    ans = run_do(packet, qtype=wire.TYPE_DNAME, name="example.com.", do=False)
    assert ans.an == 1 and ans.ttl == 300


def test_cname_question_is_not_followed():
    packet = msg((NAME, 300, "IN", "CNAME", "b.example.com."), ("b.example.com.", 300, "IN", "A", "6.6.6.6"),
                 qtype="CNAME")
    ans = run_do(packet, qtype=wire.TYPE_CNAME, do=False)
    assert kinds(rebuilt_do(ans, qtype=wire.TYPE_CNAME).answer) == [(NAME, "CNAME", "")]


def test_ad_bit_is_carried():
    packet = bytearray(reply((NAME, 300, "IN", "A", "192.0.2.1")))
    assert not run(bytes(packet)).ad
    packet[3] |= 0x20
    assert run(bytes(packet)).ad


# A property: whatever mix of records an upstream sends, what is kept belongs to the answer.
_POOL = ([(NAME, 300, "IN", "A", "192.0.2.1"), (NAME, 300, "IN", "CNAME", "b.example.com."),
          ("b.example.com.", 300, "IN", "A", "192.0.2.2"), ("example.com.", 300, "IN", "DNAME", "example.org."),
          ("www.example.org.", 300, "IN", "A", "192.0.2.3"), sig(NAME, "A", 3), sig("b.example.com.", "A", 3),
          ("evil.org.", 300, "IN", "A", "6.6.6.6"), sig("evil.org.", "A", 2, signer="evil.org.")]
         + NSEC_PROOF + FOREIGN)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_POOL), max_size=8, unique=True),
       st.lists(st.sampled_from(_POOL), max_size=8, unique=True),
       st.sampled_from([0, 3]), st.booleans(), st.sampled_from([1, 5, 28]))
def test_kept_records_always_belong_to_the_answer(answer, authority, rcode, do, qtype):
    packet = msg(*answer, authority=authority, rcode=rcode)
    ans = run_do(packet, qtype=qtype, do=do)
    m = rebuilt_do(ans, qtype=qtype)  # re-encoded or sliced, it parses
    allowed_an = {NAME, "b.example.com.", "example.com.", "www.example.org."}
    assert {str(r.name) for r in m.answer} <= allowed_an
    for rrset in m.authority:
        assert rrset.name.is_subdomain(dns.name.from_text(ZONE)), rrset
        assert rrset.rdtype != dns.rdatatype.NS
        assert do or rrset.rdtype == dns.rdatatype.SOA
    assert ans.ttl is None or ans.ttl <= 300
