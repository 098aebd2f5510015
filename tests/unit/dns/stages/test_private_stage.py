"""Private names stay home: reverse zones of private ranges, special-use and single-label
names answered NXDOMAIN here; rebinding protection on upstream answers."""

import asyncio

import dns.message
import dns.rrset
import pytest

from burrow.dns import wire
from burrow.dns.decision import Decision
from burrow.dns.message import render, sanitize_upstream
from burrow.dns.names import reverse_network
from burrow.dns.shared import Shared
from burrow.dns.stages.private import PrivateSettings, PrivateStage, is_private_reverse, is_special
from burrow.filtering.userlists import UserList

from tests.support.dnsq import Next, make_query


@pytest.mark.parametrize("name, private", [
    ("5.1.168.192.in-addr.arpa", True), ("1.168.192.in-addr.arpa", True), ("168.192.in-addr.arpa", True),
    ("192.in-addr.arpa", False), ("10.in-addr.arpa", True), ("1.0.0.127.in-addr.arpa", True),
    ("31.172.in-addr.arpa", True), ("32.172.in-addr.arpa", False), ("8.8.8.8.in-addr.arpa", False),
    ("1.64.100.in-addr.arpa", True), ("254.169.in-addr.arpa", True),
    ("x.1.168.192.in-addr.arpa", False), ("300.1.168.192.in-addr.arpa", False),
    ("d.f.ip6.arpa", True), ("0.8.e.f.ip6.arpa", True), ("8.b.d.0.1.0.0.2.ip6.arpa", True),
    ("1." + "0." * 31 + "ip6.arpa", True), ("2.0.0.2.ip6.arpa", False), ("example.com", False)])
def test_private_reverse_zones(name, private):
    assert is_private_reverse(name) is private


def test_reverse_network_and_special_names():
    assert str(reverse_network("1.168.192.in-addr.arpa")) == "192.168.1.0/24"
    assert str(reverse_network("d.f.ip6.arpa")) == "fd00::/8"
    for name in ("nas", "printer.local", "nas.lan", "x.internal", "router.home.arpa", "localhost", "a.onion"):
        assert is_special(name), name
    for name in ("example.com", "locallan.com", "lan.example.com", "", "in-addr.arpa"):
        assert not is_special(name), name


def run(stage, query, nxt):
    return asyncio.run(stage.resolve(query, nxt))


def test_private_names_answered_locally_unless_a_route_covers_them():
    stage = PrivateStage()
    for name, qtype in (("5.1.168.192.in-addr.arpa", "PTR"), ("nas.lan", "A"), ("printer.local", "A"), ("nas", "A")):
        nxt = Next()
        ans = run(stage, make_query(name, qtype), nxt)
        assert ans.rcode == wire.NXDOMAIN and ans.decision is Decision.LOCAL and not nxt.calls
    q = make_query("nas.lan")
    q.route = "cf:router"  # a conditional forwarding rule chose where it goes
    nxt = Next()
    assert run(stage, q, nxt) is nxt.answer
    off = PrivateStage(PrivateSettings(private_reverse=False, special_names=False))
    nxt = Next()
    assert run(off, make_query("nas.lan"), nxt) is nxt.answer


def upstream_answer(query, *addresses):
    rdtype = "AAAA" if ":" in addresses[0] else "A"
    reply = dns.message.make_response(dns.message.make_query(query.name, rdtype))
    for a in addresses:
        reply.answer.append(dns.rrset.from_text(query.name + ".", 300, "IN", rdtype, a))
    qn = wire.text_to_name(query.name)
    return sanitize_upstream(reply.to_wire(), qn, query.qtype, 12 + len(qn) + 4, 0, 86400, 3600)


@pytest.mark.parametrize("address, blocked", [
    ("10.0.0.5", True), ("192.168.1.1", True), ("127.0.0.1", True), ("169.254.1.1", True),
    ("100.64.0.1", True), ("fd00::1", True), ("::1", True), ("::ffff:192.168.1.1", True),
    ("93.184.216.34", False), ("2606:2800::1", False)])
def test_rebinding_protection(address, blocked, db):
    stage = PrivateStage()
    q = make_query("evil.example", "AAAA" if ":" in address else "A", use_edns=0)
    nxt = Next(upstream_answer(q, address))
    ans = run(stage, q, nxt)
    assert (ans.decision is Decision.BLOCKED) is blocked
    if blocked:
        reply = dns.message.from_wire(render(q, ans))
        assert reply.answer[0][0].address in ("0.0.0.0", "::")
        assert [o.code for o in reply.options if o.otype == 15] == [15]


def test_rebinding_exemptions(db):
    shared = Shared(allow_list=UserList(db, "filtering.whitelist"))  # the filter's allow list
    shared.allow_list.add("nas.example")
    stage = PrivateStage(PrivateSettings(rebind_allowed_domains=["plex.direct"]), shared)
    for name in ("nas.example", "x.plex.direct"):
        q = make_query(name)
        assert run(stage, q, Next(upstream_answer(q, "192.168.1.9"))).decision is Decision.RESOLVED
    q = make_query("nas.example.evil")
    assert run(stage, q, Next(upstream_answer(q, "192.168.1.9"))).decision is Decision.BLOCKED
    off = PrivateStage(PrivateSettings(rebind_protection=False))
    q = make_query("evil.example")
    assert run(off, q, Next(upstream_answer(q, "10.0.0.1"))).decision is Decision.RESOLVED


def test_single_label_names_are_refused_only_for_addresses():
    # dnsmasq's domain-needed: a bare host name asked for an address stays home...
    for qtype in (wire.TYPE_A, wire.TYPE_AAAA):
        assert is_special("nas", qtype)
    # ...but other single-label questions are about the root zone (DS, DNSKEY, SOA, NS of a TLD)
    for name, qtype in (("com", 43), ("test", 48), ("net", wire.TYPE_SOA), ("", wire.TYPE_NS),
                        ("org", wire.TYPE_TXT), ("nas", wire.TYPE_PTR)):
        assert not is_special(name, qtype), (name, qtype)
    # special-use names stay special whatever the type, their TLD itself included
    for name in ("local", "lan", "printer.local", "x.home.arpa", "a.onion"):
        assert is_special(name, 43), name


def test_single_label_dnssec_questions_go_on():
    stage = PrivateStage()
    for name, qtype in (("com", "DS"), ("test", "DNSKEY"), ("net", "SOA"), (".", "NS")):
        nxt = Next()
        assert run(stage, make_query(name, qtype), nxt) is nxt.answer and len(nxt.calls) == 1, name
    nxt = Next()
    assert run(stage, make_query("nas", "AAAA"), nxt).rcode == wire.NXDOMAIN and not nxt.calls
