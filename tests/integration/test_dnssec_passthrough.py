"""DNSSEC through Burrow: what a validating resolver behind it needs arrives intact.

The scripted upstream plays a validating resolver answering from signed zones: its replies carry
RRSIGs, NSEC/NSEC3 proofs, DNAMEs and the AD bit as such a resolver's would (the signatures are
not real: Burrow forwards, it never validates). Each test asks the running ``burrow`` process
as a client would and checks what reaches it, fresh and again from the cache and the fast path.
"""

from __future__ import annotations

import concurrent.futures
import struct
import time
import uuid

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.support.burrow_proc import BurrowProcess

ZONE = "signed.test"
SOA = f"{ZONE}. 3600 IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 7200 900 1209600 300"
NSEC3_HASH = "2t7b4g4vsa5smi47k61mv5bv1a22bojr"


def sig(owner: str, covered: str, labels: int, signer: str = ZONE, ttl: int = 300) -> str:
    """A zone-format RRSIG (the signature bytes are filler: nobody here validates)."""
    return (f"{owner}. {ttl} IN RRSIG {covered} 13 {labels} {ttl} 20300101000000 20200101000000 "
            f"4711 {signer}. c2lnbmF0dXJlIGJ5dGVz")


@pytest.fixture(autouse=True)
def clean_upstream(up):
    up.reset()
    up.clear_log()


def unique(prefix="q", zone=ZONE):
    return f"{prefix}-{uuid.uuid4().hex[:10]}.{zone}"


def ask(b, name, rdtype="A", *, do=False, cd=False, ad=False, edns=False, tcp=False, timeout=5.0):
    q = dns.message.make_query(name, rdtype, use_edns=0 if (do or edns) else None, want_dnssec=do)
    q.flags = dns.flags.RD | (dns.flags.CD if cd else 0) | (dns.flags.AD if ad else 0)
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=b.dns_port, timeout=timeout)
    return dns.query.udp(q, "127.0.0.1", port=b.dns_port, timeout=timeout)


def kinds(section):
    """The section as a set of (owner, type, covered type for RRSIGs)."""
    out = set()
    for rrset in section:
        covered = rrset.covers if rrset.rdtype == dns.rdatatype.RRSIG else 0
        out.add((rrset.name.to_text().rstrip("."), dns.rdatatype.to_text(rrset.rdtype),
                 dns.rdatatype.to_text(covered) if covered else ""))
    return out


def asked(up, name):
    return [q for q in up.queries() if q["name"].lower() == name.lower()]


def three_times(b, name, rdtype="A", **kw):
    """The answer fresh, from the cache/fast path, and over TCP (slow path, same cache entry)."""
    return [ask(b, name, rdtype, **kw), ask(b, name, rdtype, **kw), ask(b, name, rdtype, tcp=True, **kw)]


# ---- a. negative and wildcard answers keep their proofs for DO=1 ------------------------------

def test_nxdomain_keeps_nsec_proof_and_soa_signature_for_do_clients(srv, up):
    name = unique("nx")
    up.set_rule(name, rcode="NXDOMAIN", soa=False, extra_authority=[
        SOA, sig(ZONE, "SOA", 2),
        f"a.{ZONE}. 300 IN NSEC z.{ZONE}. A RRSIG NSEC", sig(f"a.{ZONE}", "NSEC", 3),
        f"{ZONE}. 300 IN NSEC a.{ZONE}. SOA NS RRSIG NSEC DNSKEY", sig(ZONE, "NSEC", 2),
        # out of bailiwick: another zone's denial and a delegation never belong to this answer
        "evil.test. 300 IN NSEC zzz.evil.test. A RRSIG NSEC", sig("evil.test", "NSEC", 2, signer="evil.test"),
        f"{ZONE}. 300 IN NS ns.evil.test."],
        extra_additional=["ns.evil.test. 300 IN A 6.6.6.6"])
    want = {(ZONE, "SOA", ""), (ZONE, "RRSIG", "SOA"), (f"a.{ZONE}", "NSEC", ""),
            (f"a.{ZONE}", "RRSIG", "NSEC"), (ZONE, "NSEC", ""), (ZONE, "RRSIG", "NSEC")}
    for r in three_times(srv, name, do=True):
        assert r.rcode() == dns.rcode.NXDOMAIN
        assert kinds(r.authority) == want
        assert not r.answer and [rr.rdtype for rr in r.additional] in ([], [dns.rdatatype.OPT])
    for r in three_times(srv, name):  # DO=0: the SOA alone (RFC 4035 §3.2.1)
        assert r.rcode() == dns.rcode.NXDOMAIN and kinds(r.authority) == {(ZONE, "SOA", "")}
    assert len(asked(up, name)) == 2  # once per DO value, then cached


def test_nodata_keeps_nsec3_proof_for_do_clients(srv, up):
    name = unique("nodata")
    owner = f"{NSEC3_HASH}.{ZONE}"
    up.set_rule(name, nodata=True, soa=False, extra_authority=[
        SOA, sig(ZONE, "SOA", 2),
        f"{owner}. 300 IN NSEC3 1 0 0 - {NSEC3_HASH} A RRSIG", sig(owner, "NSEC3", 3)])
    for r in three_times(srv, name, "TXT", do=True):
        assert r.rcode() == dns.rcode.NOERROR and not r.answer
        assert kinds(r.authority) == {(ZONE, "SOA", ""), (ZONE, "RRSIG", "SOA"), (owner, "NSEC3", ""),
                                      (owner, "RRSIG", "NSEC3")}
        assert r.authority[0].ttl <= 300


def test_wildcard_answer_keeps_its_no_closer_match_proof(srv, up):
    name = unique("host", f"wild.{ZONE}")
    up.set_rule(name, nodata=True, soa=False,
                extra_answer=[f"{name}. 300 IN A 192.0.2.10", sig(name, "A", 3)],  # 3 labels: *.wild.signed.test
                extra_authority=[f"host.wild.{ZONE}. 300 IN NSEC z.wild.{ZONE}. A RRSIG NSEC",
                                 sig(f"host.wild.{ZONE}", "NSEC", 4),
                                 f"{ZONE}. 300 IN NS ns.{ZONE}.",
                                 "evil.test. 300 IN NSEC zzz.evil.test. A RRSIG NSEC"])
    for r in three_times(srv, name, do=True):
        assert kinds(r.answer) == {(name, "A", ""), (name, "RRSIG", "A")}
        assert kinds(r.authority) == {(f"host.wild.{ZONE}", "NSEC", ""), (f"host.wild.{ZONE}", "RRSIG", "NSEC")}
    for r in three_times(srv, name):  # DO=0: no DNSSEC records at all (RFC 4035 §3.2.1)
        assert kinds(r.answer) == {(name, "A", "")} and not r.authority


# ---- b. a CNAME chain ending in NODATA / NXDOMAIN keeps the SOA of its end -------------------

@pytest.mark.parametrize("end, rcode", [("nodata-end.b.test", dns.rcode.NOERROR),
                                        ("nx-end.b.test", dns.rcode.NXDOMAIN)])
def test_cname_chain_to_a_negative_end_keeps_its_soa(srv, up, end, rcode):
    # the question is the longest name: the SOA belongs to the chain's end, not to it
    name = unique("a-rather-long-first-name-in-the-chain", "example.test")
    up.set_rule(name, cname_chain=["mid.example.test", end])
    for r in three_times(srv, name):
        assert r.rcode() == rcode
        assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.CNAME]
        assert kinds(r.authority) == {("b.test", "SOA", "")}
        assert r.authority[0].ttl <= 60  # the negative TTL (SOA minimum)


# ---- c. DNAME and the RRSIGs of the answer ----------------------------------------------------

def test_dname_and_its_signature_are_kept_with_the_synthesised_cname(srv, up):
    label = f"w{uuid.uuid4().hex[:8]}"
    name, target = f"{label}.old.{ZONE}", f"{label}.new.{ZONE}"
    up.set_rule(name, nodata=True, soa=False, extra_answer=[
        f"old.{ZONE}. 300 IN DNAME new.{ZONE}.", sig(f"old.{ZONE}", "DNAME", 3),
        f"{name}. 300 IN CNAME {target}.",
        f"{target}. 300 IN A 192.0.2.20", sig(target, "A", 4),
        "unrelated.test. 300 IN DNAME evil.test.", f"other.{ZONE}. 300 IN A 6.6.6.6"])
    want = {(f"old.{ZONE}", "DNAME", ""), (f"old.{ZONE}", "RRSIG", "DNAME"), (name, "CNAME", ""),
            (target, "A", ""), (target, "RRSIG", "A")}
    for r in three_times(srv, name, do=True):
        assert kinds(r.answer) == want
        assert r.answer[0].rdtype == dns.rdatatype.DNAME  # order kept: DNAME before its CNAME


# ---- d. single-label names: only A/AAAA are refused locally -----------------------------------

def test_single_label_names_are_forwarded_for_dnssec_types(srv, up):
    for name, rdtype in (("com", "DS"), ("test", "DNSKEY"), ("net", "SOA"), (".", "NS"), ("org", "NSEC")):
        r = ask(srv, name, rdtype, do=True)
        assert r.rcode() == dns.rcode.NOERROR, (name, rdtype)
        assert [q["type"] for q in asked(up, name.rstrip(".") if name != "." else "")] == [rdtype]
    for rdtype in ("A", "AAAA"):
        assert ask(srv, "nas", rdtype).rcode() == dns.rcode.NXDOMAIN  # domain-needed, as before
    assert ask(srv, "printer.local", "DS").rcode() == dns.rcode.NXDOMAIN  # special-use stays home
    assert not asked(up, "nas") and not asked(up, "printer.local")


# ---- e. the CD bit separates cache entries, coalescing and the SERVFAIL memo ------------------

def bogus(up, name):
    """A validating upstream's view of a bogus name: SERVFAIL, but the data when CD=1."""
    up.set_rule(name, cd=False, rcode="SERVFAIL")
    up.set_rule(name, cd=True, records={"A": ["192.0.2.66"]})


def test_cd_answer_is_not_served_to_checking_clients(srv, up):
    name = unique("bogus")
    bogus(up, name)
    for _ in range(2):  # fresh, then from the cache / fast path
        assert ask(srv, name, cd=True, do=True).answer[0][0].address == "192.0.2.66"
    for _ in range(2):
        assert ask(srv, name, do=True).rcode() == dns.rcode.SERVFAIL
    assert ask(srv, name, cd=True, do=True).answer[0][0].address == "192.0.2.66"


def test_servfail_memo_does_not_refuse_cd_clients(srv, up):
    name = unique("bogus")
    bogus(up, name)
    assert ask(srv, name).rcode() == dns.rcode.SERVFAIL  # remembered for a few seconds
    assert ask(srv, name, cd=True).answer[0][0].address == "192.0.2.66"
    assert ask(srv, name).rcode() == dns.rcode.SERVFAIL


def test_cd_and_plain_questions_in_flight_are_not_coalesced(srv, up):
    name = unique("bogus")
    up.set_rule(name, cd=False, rcode="SERVFAIL", delay_ms=300)
    up.set_rule(name, cd=True, records={"A": ["192.0.2.66"]}, delay_ms=300)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        plain = pool.submit(ask, srv, name)
        checking_disabled = pool.submit(ask, srv, name, cd=True)
        assert checking_disabled.result().answer[0][0].address == "192.0.2.66"
        assert plain.result().rcode() == dns.rcode.SERVFAIL
    assert {q["cd"] for q in asked(up, name)} == {True, False}


# ---- f. the AD bit of a trusted (loopback) validating upstream is relayed ---------------------

def ad(r):
    return bool(r.flags & dns.flags.AD)


def test_ad_relayed_to_clients_that_asked_for_it(srv, up):
    name = unique("secure")
    up.set_rule(name, ad=True)
    # EDNS without DO: the same fast-path store for AD=1 and AD=0 clients, in both orders
    assert ad(ask(srv, name, edns=True, ad=True))
    assert not ad(ask(srv, name, edns=True))
    assert ad(ask(srv, name, edns=True, ad=True))
    assert not ad(ask(srv, name, edns=True))
    for _ in range(2):
        assert ad(ask(srv, name, do=True)) and ad(ask(srv, name, do=True, ad=True))
        assert not ad(ask(srv, name)) and ad(ask(srv, name, ad=True))
    assert all(q["ad"] for q in asked(up, name))  # we tell the upstream we understand AD
    insecure = unique("insecure")
    assert not ad(ask(srv, insecure, do=True)) and not ad(ask(srv, insecure, ad=True))


def test_ad_cleared_on_answers_burrow_makes(srv, up):
    assert not ad(ask(srv, "nas", ad=True, do=True))  # answered locally (NXDOMAIN)
    name = unique("secure")
    up.set_rule(name, ad=True, ttl=1)
    assert ad(ask(srv, name, do=True))
    up.set_rule(name, drop=True)
    deadline = time.monotonic() + 30  # bounds a failure only
    while True:  # once the answer has expired and the upstream is silent: served stale
        r = ask(srv, name, do=True)
        if r.answer and r.answer[0].ttl == 30 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert r.answer and r.answer[0].ttl == 30, r  # the stale answer (RFC 8767 TTL)
    assert not ad(r)


def test_ad_not_relayed_when_proxy_dnssec_is_off(tmp_path, up):
    with BurrowProcess(tmp_path, [up.address], {"upstream": {"proxy_dnssec": "off"}}) as b:
        name = unique("secure")
        up.set_rule(name, ad=True)
        assert not ad(ask(b, name, do=True)) and not ad(ask(b, name, ad=True))


# ---- g. opcodes other than QUERY, and meta-types ----------------------------------------------

def test_unknown_opcode_echoes_only_rd(srv):
    q = dns.message.make_query(unique(), "A").to_wire()
    flags = (2 << 11) | 0x0100 | 0x0020 | 0x0010  # opcode STATUS, RD, AD, CD
    reply = srv.send_raw(q[:2] + struct.pack("!H", flags) + q[4:])
    rflags = struct.unpack_from("!H", reply, 2)[0]
    assert rflags & 0xF == dns.rcode.NOTIMP
    assert rflags & 0x7800 == 2 << 11  # the opcode is copied (RFC 1035 §4.1.1)
    assert rflags & 0x07F0 == 0x0100  # RD echoed; no AA, TC, RA, Z, AD, CD
    no_rd = srv.send_raw(q[:2] + struct.pack("!H", (4 << 11) | 0x0010) + q[4:])  # NOTIFY with CD
    assert struct.unpack_from("!H", no_rd, 2)[0] & 0x07F0 == 0


@pytest.mark.parametrize("rdtype", ["OPT", "TKEY", "TSIG", "MAILA", "MAILB", "TYPE128", "TYPE200", "TYPE248"])
def test_meta_types_get_formerr(srv, up, rdtype):
    r = ask(srv, unique("meta"), rdtype, edns=True)
    assert r.rcode() == dns.rcode.FORMERR
    assert up.query_count() == 0


@pytest.mark.parametrize("rdtype, tcp", [("AXFR", False), ("AXFR", True), ("IXFR", False), ("IXFR", True)])
def test_zone_transfers_are_refused(srv, up, rdtype, tcp):
    r = ask(srv, ZONE, rdtype, tcp=tcp)
    assert r.rcode() == dns.rcode.REFUSED and not r.answer
    assert up.query_count() == 0


def test_any_keeps_its_rfc8482_answer(srv, up):
    r = ask(srv, unique("any"), "ANY")
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0].rdtype == dns.rdatatype.HINFO
    assert up.query_count() == 0
