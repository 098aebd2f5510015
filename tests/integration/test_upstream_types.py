"""Through the real burrow process: query types whose code holds a letter byte reach the client.

HTTPS (65) is the byte "A", SVCB (64) is "@" next to it; the reply matcher once lower-cased the
type and so never recognised an HTTPS reply (three attempts, then SERVFAIL). The fake upstream
answers these types with NODATA and an SOA; the client must get exactly that, after a single
upstream query, over UDP and when TC sends Burrow to TCP.
"""

from __future__ import annotations

import uuid

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.support.burrow_proc import BurrowProcess

TYPES = [65, 64, 0x4141, 90, 0x5A5A, 0x4100, 0x0141]  # HTTPS, SVCB, and other letter bytes


@pytest.fixture(scope="module")
def srv(up, tmp_path_factory):
    # A long upstream timeout: an unmatched reply would show as a slow SERVFAIL, never a pass.
    with BurrowProcess(tmp_path_factory.mktemp("burrow"), [up.address],
                       {"upstream": {"timeout": 2.0}}) as b:
        yield b


def asked(up, name):
    return [q for q in up.queries() if q["name"].lower() == name.lower()]


def check(reply, name, qtype):
    assert reply.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(reply.rcode())
    assert reply.question[0].rdtype == qtype
    assert reply.answer == []
    soa = [r for r in reply.authority if r.rdtype == dns.rdatatype.SOA]
    assert soa, "the upstream's NODATA answer (with its SOA) was not relayed"


@pytest.mark.parametrize("qtype", TYPES)
def test_letter_byte_types_get_the_upstream_answer_over_udp(srv, up, qtype):
    name = f"t{qtype}-{uuid.uuid4().hex[:8]}.example.test"
    reply = dns.query.udp(dns.message.make_query(name, qtype), "127.0.0.1", port=srv.dns_port, timeout=10)
    check(reply, name, qtype)
    assert [q["transport"] for q in asked(up, name)] == ["udp"]  # one attempt, no retries


@pytest.mark.parametrize("qtype", [65, 64, 0x4141])
def test_letter_byte_types_get_the_upstream_answer_after_tc(srv, up, qtype):
    name = f"tc{qtype}-{uuid.uuid4().hex[:8]}.example.test"
    up.set_rule(name, truncate=True)
    reply = dns.query.tcp(dns.message.make_query(name, qtype), "127.0.0.1", port=srv.dns_port, timeout=10)
    check(reply, name, qtype)
    assert [q["transport"] for q in asked(up, name)] == ["udp", "tcp"]
