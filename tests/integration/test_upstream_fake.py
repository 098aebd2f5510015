"""The scriptable test upstream behaves as documented, over real UDP and TCP sockets."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

try:
    from tests.support.upstream import address6_for, address_for
    from tests.support.upstream_client import TestUpstream, UpstreamError
except ModuleNotFoundError:  # run without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.support.upstream import address6_for, address_for
    from tests.support.upstream_client import TestUpstream, UpstreamError

TIMEOUT = 10.0  # for questions that are answered; silence is waited for with 0.5 s


@pytest.fixture(scope="module")
def upstream():
    with TestUpstream() as up:
        yield up


@pytest.fixture(autouse=True)
def clean(upstream):
    upstream.reset()
    upstream.clear_log()
    yield


def udp(upstream, name, rdtype="A", **kwargs):
    query = dns.message.make_query(name, rdtype, **kwargs)
    return dns.query.udp(query, "127.0.0.1", port=upstream.dns_port, timeout=TIMEOUT)


def tcp(upstream, name, rdtype="A", **kwargs):
    query = dns.message.make_query(name, rdtype, **kwargs)
    return dns.query.tcp(query, "127.0.0.1", port=upstream.dns_port, timeout=TIMEOUT)


def raw_udp(upstream, name, rdtype="A"):
    """Send one query from a plain socket; return (reply message, reply source, query)."""
    query = dns.message.make_query(name, rdtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendto(query.to_wire(), ("127.0.0.1", upstream.dns_port))
        data, source = sock.recvfrom(65535)
    return dns.message.from_wire(data, ignore_trailing=True), source, query


def addresses(reply, rdtype="A"):
    return sorted(rd.to_text() for rrset in reply.answer
                  if rrset.rdtype == dns.rdatatype.from_text(rdtype) for rd in rrset)


def soa_of(reply):
    (rrset,) = [r for r in reply.authority if r.rdtype == dns.rdatatype.SOA]
    return rrset


# -- default answers ------------------------------------------------------------------

@pytest.mark.parametrize("send", [udp, tcp], ids=["udp", "tcp"])
def test_default_a_and_aaaa_are_deterministic_per_name(upstream, send):
    reply = send(upstream, "www.example.com")
    assert reply.rcode() == dns.rcode.NOERROR
    assert addresses(reply) == [address_for("www.example.com")]
    assert reply.answer[0].ttl == 300
    assert address_for("www.example.com").startswith("10.")
    assert address_for("WWW.Example.com.") == address_for("www.example.com")
    assert address_for("a.test") != address_for("b.test")

    reply6 = send(upstream, "www.example.com", "AAAA")
    assert addresses(reply6, "AAAA") == [address6_for("www.example.com")]


def test_answer_keeps_the_question_case(upstream):
    reply = udp(upstream, "MiXeD.Example.COM")
    assert reply.question[0].name.to_text() == "MiXeD.Example.COM."
    assert reply.answer[0].name.to_text() == "MiXeD.Example.COM."


@pytest.mark.parametrize("send", [udp, tcp], ids=["udp", "tcp"])
def test_nx_names_get_nxdomain_with_soa(upstream, send):
    reply = send(upstream, "nx-missing.example.org")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.answer == []
    soa = soa_of(reply)
    assert soa.ttl == 3600
    assert soa[0].minimum == 60


def test_nodata_names_get_noerror_without_answers(upstream):
    reply = udp(upstream, "nodata-thing.example.org")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert soa_of(reply)[0].minimum == 60


def test_other_types_get_nodata(upstream):
    reply = udp(upstream, "example.org", "MX")
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer == []


def test_edns_is_echoed(upstream):
    reply = udp(upstream, "example.org", use_edns=0, want_dnssec=True)
    assert reply.edns == 0
    assert reply.ednsflags & dns.flags.DO
    assert udp(upstream, "example.org").edns == -1


# -- scripted behaviours --------------------------------------------------------------

def test_fixed_records_of_any_type(upstream):
    upstream.set_rule("fixed.test", records={"A": ["192.0.2.1", "192.0.2.2"],
                                             "TXT": ['"hello world"'],
                                             "MX": ["10 mail.fixed.test."]}, ttl=42)
    reply = udp(upstream, "fixed.test")
    assert addresses(reply) == ["192.0.2.1", "192.0.2.2"]
    assert reply.answer[0].ttl == 42
    assert addresses(udp(upstream, "fixed.test", "TXT"), "TXT") == ['"hello world"']
    assert addresses(tcp(upstream, "fixed.test", "MX"), "MX") == ["10 mail.fixed.test."]
    nodata = udp(upstream, "fixed.test", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
    # exact match only: a name below is answered by default
    assert addresses(udp(upstream, "sub.fixed.test")) == [address_for("sub.fixed.test")]


def test_suffix_rules_and_specificity(upstream):
    upstream.set_rule("bad.test", match="suffix", rcode="SERVFAIL")
    upstream.set_rule("ok.bad.test", records={"A": ["192.0.2.9"]})
    assert udp(upstream, "bad.test").rcode() == dns.rcode.SERVFAIL
    assert udp(upstream, "deep.x.bad.test").rcode() == dns.rcode.SERVFAIL
    assert addresses(udp(upstream, "ok.bad.test")) == ["192.0.2.9"]
    assert udp(upstream, "notbad.test").rcode() == dns.rcode.NOERROR


@pytest.mark.parametrize("rcode", ["SERVFAIL", "REFUSED", "NXDOMAIN", "NOTIMP", "FORMERR"])
def test_rcode(upstream, rcode):
    upstream.set_rule("rc.test", rcode=rcode)
    reply = tcp(upstream, "rc.test")
    assert reply.rcode() == dns.rcode.from_text(rcode)
    assert reply.answer == []
    has_soa = any(r.rdtype == dns.rdatatype.SOA for r in reply.authority)
    assert has_soa == (rcode == "NXDOMAIN")


def test_qtype_rule_and_times_limit(upstream):
    upstream.set_rule("flaky.test", qtype="A", rcode="SERVFAIL", times=2)
    assert udp(upstream, "flaky.test", "AAAA").rcode() == dns.rcode.NOERROR
    assert udp(upstream, "flaky.test").rcode() == dns.rcode.SERVFAIL
    assert udp(upstream, "flaky.test").rcode() == dns.rcode.SERVFAIL
    assert addresses(udp(upstream, "flaky.test")) == [address_for("flaky.test")]


def test_nodata_rule(upstream):
    upstream.set_rule("empty.test", nodata=True)
    reply = udp(upstream, "empty.test")
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer == []
    assert soa_of(reply)[0].minimum == 60


@pytest.mark.parametrize("send", [udp, tcp], ids=["udp", "tcp"])
def test_delay(upstream, send):
    upstream.set_rule("slow.test", delay_ms=300)
    started = time.monotonic()
    reply = send(upstream, "slow.test")
    elapsed = time.monotonic() - started
    assert elapsed >= 0.28  # the delay happened (how much longer is the machine's business)
    assert addresses(reply) == [address_for("slow.test")]


@pytest.mark.parametrize("send", [udp, tcp], ids=["udp", "tcp"])
def test_drop_never_answers(upstream, send):
    upstream.set_rule("void.test", drop=True)
    query = dns.message.make_query("void.test", "A")
    call = dns.query.udp if send is udp else dns.query.tcp
    with pytest.raises(dns.exception.Timeout):
        call(query, "127.0.0.1", port=upstream.dns_port, timeout=0.5)
    # the query was received and logged all the same
    assert [q["name"] for q in upstream.queries()] == ["void.test"]


def test_truncate_over_udp_full_answer_over_tcp(upstream):
    upstream.set_rule("tc.test", truncate=True, records={"A": ["192.0.2.7"]})
    reply = udp(upstream, "tc.test")
    assert reply.flags & dns.flags.TC
    assert reply.answer == []
    full = tcp(upstream, "tc.test")
    assert not full.flags & dns.flags.TC
    assert addresses(full) == ["192.0.2.7"]


def test_large_answer_exceeds_1232_bytes(upstream):
    upstream.set_rule("big.test", large=True)
    small = udp(upstream, "big.test", use_edns=0, payload=1232)
    assert small.flags & dns.flags.TC and small.answer == []
    assert udp(upstream, "big.test").flags & dns.flags.TC  # 512 without EDNS

    query = dns.message.make_query("big.test", "A", use_edns=0, payload=1232)
    wire = dns.query.tcp(query, "127.0.0.1", port=upstream.dns_port, timeout=TIMEOUT)
    assert len(wire.to_wire()) > 1232
    assert len(addresses(wire)) == 100

    upstream.set_rule("big.test", large=150, ignore_size=True)
    forced = udp(upstream, "big.test", use_edns=0, payload=1232)
    assert not forced.flags & dns.flags.TC
    assert len(addresses(forced)) == 150


def test_large_fits_a_big_edns_buffer(upstream):
    upstream.set_rule("big.test", large=True)
    reply = udp(upstream, "big.test", use_edns=0, payload=4096)
    assert not reply.flags & dns.flags.TC
    assert len(addresses(reply)) == 100


def test_wrong_id(upstream):
    upstream.set_rule("wid.test", wrong_id=True)
    reply, source, query = raw_udp(upstream, "wid.test")
    assert reply.id != query.id
    assert source == ("127.0.0.1", upstream.dns_port)
    # a careful client does not take it as the answer
    with pytest.raises((dns.exception.Timeout, dns.query.BadResponse)):
        udp_query = dns.message.make_query("wid.test", "A")
        dns.query.udp(udp_query, "127.0.0.1", port=upstream.dns_port, timeout=0.5,
                      ignore_unexpected=True)


def test_wrong_source_port(upstream):
    upstream.set_rule("wport.test", wrong_port=True)
    reply, source, query = raw_udp(upstream, "wport.test")
    assert source[0] == "127.0.0.1"
    assert source[1] != upstream.dns_port
    assert reply.id == query.id
    assert addresses(reply) == [address_for("wport.test")]
    # over TCP there is no other port to answer from: the answer is normal
    assert addresses(tcp(upstream, "wport.test")) == [address_for("wport.test")]


def test_wrong_question(upstream):
    upstream.set_rule("asked.test", wrong_question="other.test")
    reply, _source, query = raw_udp(upstream, "asked.test")
    assert reply.id == query.id
    assert reply.question[0].name.to_text() == "other.test."
    assert addresses(reply) == [address_for("other.test")]


def test_cname_chain(upstream):
    upstream.set_rule("alias.test", cname_chain=["mid.test", "final.cdn.test"])
    reply = tcp(upstream, "alias.test")
    chain = [(r.name.to_text(), dns.rdatatype.to_text(r.rdtype), r[0].to_text())
             for r in reply.answer]
    assert chain == [("alias.test.", "CNAME", "mid.test."),
                     ("mid.test.", "CNAME", "final.cdn.test."),
                     ("final.cdn.test.", "A", address_for("final.cdn.test"))]

    upstream.set_rule("alias2.test", cname_chain=["t.test"], records={"A": ["192.0.2.5"]})
    reply = udp(upstream, "alias2.test")
    assert reply.answer[-1].name.to_text() == "t.test."
    assert addresses(reply) == ["192.0.2.5"]


def test_extra_unrelated_records(upstream):
    upstream.set_rule(
        "poison.test",
        extra_answer=["victim.test. 86400 IN A 6.6.6.6"],
        extra_authority=["victim.test. 86400 IN NS ns.evil.test."],
        extra_additional=["ns.evil.test. 86400 IN A 6.6.6.7"],
    )
    reply = udp(upstream, "poison.test", use_edns=0)
    names = {(r.name.to_text(), r[0].to_text()) for r in reply.answer}
    assert ("victim.test.", "6.6.6.6") in names
    assert ("poison.test.", address_for("poison.test")) in names
    assert reply.authority[0].name.to_text() == "victim.test."
    assert reply.additional[0][0].to_text() == "6.6.6.7"
    assert reply.edns == 0  # the OPT record is still there


def test_bad_rules_are_rejected(upstream):
    with pytest.raises(UpstreamError, match="unknown rule keys"):
        upstream.set_rule("x.test", explode=True)
    with pytest.raises(UpstreamError, match="rcode"):
        upstream.set_rule("x.test", rcode="NOPE")
    with pytest.raises(UpstreamError):
        upstream.set_rule("x.test", records={"A": ["not-an-address"]})


def test_reset_restores_defaults(upstream):
    upstream.set_rule("r.test", rcode="REFUSED")
    assert udp(upstream, "r.test").rcode() == dns.rcode.REFUSED
    upstream.reset()
    assert addresses(udp(upstream, "r.test")) == [address_for("r.test")]


# -- the query log --------------------------------------------------------------------

def test_query_log_records_each_query(upstream):
    query = dns.message.make_query("Log.Example.test", "AAAA", use_edns=0,
                                   want_dnssec=True, payload=1400)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.bind(("127.0.0.1", 0))
        client_port = sock.getsockname()[1]
        sock.sendto(query.to_wire(), ("127.0.0.1", upstream.dns_port))
        sock.recvfrom(65535)
    tcp(upstream, "plain.test", "A")

    first, second = upstream.queries()
    assert first["name"] == "Log.Example.test"
    assert first["type"] == "AAAA"
    assert first["transport"] == "udp"
    assert first["src"] == f"127.0.0.1:{client_port}"
    assert first["edns"] is True and first["edns_size"] == 1400 and first["do"] is True
    assert first["id"] == query.id
    assert first["rd"] is True
    assert second["name"] == "plain.test" and second["transport"] == "tcp"
    assert second["edns"] is False and second["do"] is False and second["edns_size"] is None
    assert upstream.query_count() == 2

    upstream.clear_log()
    assert upstream.queries() == []
    assert upstream.query_count() == 0


def test_tcp_connection_carries_several_queries(upstream):
    with socket.create_connection(("127.0.0.1", upstream.dns_port), timeout=TIMEOUT) as sock:
        for name in ("one.test", "two.test", "three.test"):
            query = dns.message.make_query(name, "A")
            dns.query.send_tcp(sock, query, expiration=time.time() + TIMEOUT)
            reply, _ = dns.query.receive_tcp(sock, expiration=time.time() + TIMEOUT)
            assert reply.id == query.id
            assert addresses(reply) == [address_for(name)]
    assert upstream.query_count() == 3


def test_stop_ends_the_process():
    up = TestUpstream().start()
    assert up.running and up.address == f"127.0.0.1:{up.dns_port}"
    up.stop()
    assert not up.running
    up.stop()  # idempotent
