"""Guard stage: ACL, rate limit, ANY and CHAOS answered here; everything else passes on."""

import asyncio

import dns.message

from burrow.config.schema import DEFAULT_ALLOWED_NETWORKS
from burrow.dns import wire
from burrow.dns.access import AccessControl, RateLimiter
from burrow.dns.decision import Decision
from burrow.dns.message import RATE_LIMIT_DROP, render
from burrow.dns.stages.guard import GuardStage

from tests.support.dnsq import Next, make_query


def run(stage, query, nxt):
    return asyncio.run(stage.resolve(query, nxt))


def guard(limiter=None, action="drop"):
    return GuardStage(AccessControl(DEFAULT_ALLOWED_NETWORKS), limiter, action)


def test_allowed_client_passes_to_next():
    nxt = Next()
    ans = run(guard(), make_query(client="192.168.1.10"), nxt)
    assert len(nxt.calls) == 1 and ans is nxt.answer


def test_public_client_is_refused_with_ede_prohibited():
    nxt = Next()
    q = make_query(client="8.8.8.8", use_edns=0)
    ans = run(guard(), q, nxt)
    assert not nxt.calls
    assert ans.rcode == wire.REFUSED and ans.decision is Decision.REFUSED
    assert ans.ede[0] == wire.EDE_PROHIBITED
    assert q.trace[0].stage == "guard"


def test_ipv4_mapped_and_v6_ula_are_allowed():
    acl = AccessControl(DEFAULT_ALLOWED_NETWORKS)
    assert acl.allowed("::ffff:192.168.1.4") and acl.allowed("fd00::1") and acl.allowed("::1")
    assert not acl.allowed("2001:db8::1") and not acl.allowed("not-an-ip")


def test_rate_limit_drop_and_refuse():
    nxt = Next()
    limiter = RateLimiter(rps=1, burst=2, max_clients=100)
    g = guard(limiter)
    results = [run(g, make_query(), nxt) for _ in range(4)]
    assert results[:2] == [nxt.answer, nxt.answer]
    assert results[2] is RATE_LIMIT_DROP and results[3] is RATE_LIMIT_DROP
    assert RATE_LIMIT_DROP.decision is Decision.RATE_LIMITED  # the limiter's own drops stay rate_limited
    g2 = guard(RateLimiter(rps=1, burst=1, max_clients=100), action="refuse")
    run(g2, make_query(), nxt)
    ans = run(g2, make_query(), nxt)
    assert ans.rcode == wire.REFUSED and ans.decision is Decision.RATE_LIMITED


def test_rate_limiter_refills_and_caps_table():
    lim = RateLimiter(rps=10, burst=1, max_clients=16)
    assert lim.admit("a", 0.0)
    assert not lim.admit("a", 0.01)
    assert lim.admit("a", 0.2)
    for i in range(100):
        lim.admit(f"c{i}", 1.0)
    assert len(lim) <= 16


def test_any_gets_rfc8482_hinfo_without_forwarding():
    nxt = Next()
    q = make_query(rdtype="ANY")
    ans = run(guard(), q, nxt)
    assert not nxt.calls and ans.an == 1
    m = dns.message.from_wire(render(q, ans))
    assert m.answer[0].rdtype == 13  # HINFO
    assert m.answer[0][0].cpu == b"RFC8482"


def test_chaos_version_answered_other_chaos_refused():
    nxt = Next()
    q = make_query("version.bind", "TXT", rdclass="CH")
    ans = run(guard(), q, nxt)
    m = dns.message.from_wire(render(q, ans))
    assert m.answer[0][0].strings == (b"Burrow",)
    ans = run(guard(), make_query("hostname.bind", "TXT", rdclass="CH"), nxt)
    assert ans.rcode == wire.REFUSED and not nxt.calls


def test_meta_types_get_formerr_and_never_go_on():
    for qtype in (wire.TYPE_OPT, wire.TYPE_TKEY, wire.TYPE_TSIG, wire.TYPE_MAILA, wire.TYPE_MAILB, 128, 200, 248):
        nxt = Next()
        ans = run(guard(), make_query(rdtype=qtype, use_edns=0), nxt)
        assert ans.rcode == wire.FORMERR and ans.decision is Decision.INVALID and not nxt.calls, qtype
        assert ans.ede[0] == wire.EDE_INVALID_QUERY_TYPE and ans.ttl is None


def test_zone_transfers_are_refused_and_any_still_gets_rfc8482():
    for qtype in (wire.TYPE_AXFR, wire.TYPE_IXFR):
        nxt = Next()
        ans = run(guard(), make_query(rdtype=qtype), nxt)
        assert ans.rcode == wire.REFUSED and ans.ede[0] == wire.EDE_NOT_SUPPORTED and not nxt.calls
    ans = run(guard(), make_query(rdtype="ANY"), Next())
    assert ans.rcode == wire.NOERROR and ans.an == 1
    for qtype in (wire.TYPE_DS, wire.TYPE_DNSKEY, wire.TYPE_RRSIG, wire.TYPE_NSEC3, 65, 127, 256, 65280):
        nxt = Next()
        assert run(guard(), make_query(rdtype=qtype), nxt) is nxt.answer, qtype  # data types go on
