"""Fast path: replays stored final answers with the client's ID and case; invalidation is total."""

import collections
import time

import dns.flags
import dns.message
import dns.rrset

from burrow.config.schema import DEFAULT_ALLOWED_NETWORKS
from burrow.dns import wire
from burrow.dns.access import AccessControl, RateLimiter
from burrow.dns.decision import Decision
from burrow.dns.fastpath import FastPath
from burrow.dns.server import DnsServer

NAME = "www.example.com"


def server(limiter=None):
    s = DnsServer(None, FastPath(), AccessControl(DEFAULT_ALLOWED_NETWORKS), limiter,
                  collections.deque(maxlen=100))
    s.fast_clients["192.168.1.2"] = s.fastpath.stores("default")
    return s


def reply_for(query_wire, ttl=300, n=1):
    resp = dns.message.make_response(dns.message.from_wire(query_wire))
    resp.answer.append(dns.rrset.from_text(NAME + ".", ttl, "IN", "A", *[f"192.0.2.{i}" for i in range(1, n + 1)]))
    resp.use_edns(False)
    return resp


def store(s, query_wire, ttl=300, now=None, decision=Decision.RESOLVED, n=1):
    """Store as the server does after the chain: key = lower(question), TTL offsets absolute."""
    resp = reply_for(query_wire, ttl, n)
    parsed = wire.parse_query(query_wire)
    shape = 0 if parsed.edns is None else (2 if parsed.edns.do else 1)
    packet = resp.to_wire()
    if parsed.edns is not None:  # our OPT, as render() appends it
        packet = wire.with_counts(packet, 1, 0, 1) + wire.opt_record(parsed.edns.do)
    qname_end = 12 + len(parsed.qname)
    base = parsed.qend
    rrs, _ = wire.read_rrs(packet, base, 1)
    s.fastpath.store("default", shape, packet[12:base].lower(), packet, qname_end, (rrs[0].ttl_offset,),
                     (ttl,), ttl, time.monotonic() if now is None else now, NAME, 1, decision, "up", ())
    return packet


def test_hit_patches_id_and_keeps_client_case():
    s = server()
    store(s, dns.message.make_query(NAME, "A").to_wire())
    q = dns.message.make_query("WWW.Example.COM", "A")
    out = dns.message.from_wire(s.fast(q.to_wire(), "192.168.1.2", True))
    assert out.id == q.id
    assert out.question[0].name.to_text() == "WWW.Example.COM."
    assert out.answer[0][0].address == "192.0.2.1"
    assert len(s.ring) == 1 and s.ring[0][2].decision is Decision.CACHED


def test_ttl_ages_with_time():
    s = server()
    store(s, dns.message.make_query(NAME, "A").to_wire(), ttl=300, now=time.monotonic() - 100)
    out = dns.message.from_wire(s.fast(dns.message.make_query(NAME, "A").to_wire(), "192.168.1.2", True))
    assert 199 <= out.answer[0].ttl <= 200


def test_entry_ends_at_ninety_percent_of_ttl_for_prefetch():
    s = server()
    store(s, dns.message.make_query(NAME, "A").to_wire(), ttl=100, now=time.monotonic() - 91)
    assert s.fast(dns.message.make_query(NAME, "A").to_wire(), "192.168.1.2", True) is None


def test_edns_shapes_are_separate():
    s = server()
    store(s, dns.message.make_query(NAME, "A").to_wire())
    edns_q = dns.message.make_query(NAME, "A", use_edns=0)
    assert s.fast(edns_q.to_wire(), "192.168.1.2", True) is None
    store(s, edns_q.to_wire())
    out = dns.message.from_wire(s.fast(edns_q.to_wire(), "192.168.1.2", True))
    assert out.edns == 0
    do_q = dns.message.make_query(NAME, "A", use_edns=0, want_dnssec=True)
    assert s.fast(do_q.to_wire(), "192.168.1.2", True) is None


def test_rd_flag_mismatch_and_unknown_client_take_slow_path():
    s = server()
    store(s, dns.message.make_query(NAME, "A").to_wire())
    q = dns.message.make_query(NAME, "A")
    q.flags &= ~dns.flags.RD
    assert s.fast(q.to_wire(), "192.168.1.2", True) is None
    assert s.fast(dns.message.make_query(NAME, "A").to_wire(), "192.168.1.99", True) is None


def test_too_large_for_client_udp_goes_slow_but_tcp_hits():
    s = server()
    store(s, dns.message.make_query(NAME, "A").to_wire(), n=40)  # > 512 bytes
    q = dns.message.make_query(NAME, "A").to_wire()
    assert s.fast(q, "192.168.1.2", True) is None
    assert s.fast(q, "192.168.1.2", False) is not None


def test_invalidate_empties_stores_held_by_memos():
    s = server()
    store(s, dns.message.make_query(NAME, "A").to_wire())
    held = s.fast_clients["192.168.1.2"]
    s.fastpath.invalidate()
    assert all(not store_ for store_ in held)
    assert s.fast(dns.message.make_query(NAME, "A").to_wire(), "192.168.1.2", True) is None
    assert s.fastpath.entries == 0 and s.fastpath.generation == 1


def test_caps_evict_oldest():
    fp = FastPath(max_entries=3)
    for i in range(5):
        fp.store("default", 0, b"k%d" % i, b"\x00" * 40, 12, (), (), 300, time.monotonic(), "x", 1,
                 Decision.RESOLVED, "", ())
    keys = list(fp.stores("default")[0])
    assert keys == [b"k2", b"k3", b"k4"] and fp.entries == 3


def test_not_stored_when_undecided_or_stale():
    fp = FastPath()
    for decision in (Decision.STALE, Decision.SERVFAIL, Decision.RATE_LIMITED, Decision.REFUSED):
        fp.store("default", 0, b"k", b"\x00" * 40, 12, (), (), 300, time.monotonic(), "x", 1, decision, "", ())
    assert fp.entries == 0


def test_rate_limited_client_leaves_fast_path():
    s = server(RateLimiter(rps=0.1, burst=1, max_clients=10))
    store(s, dns.message.make_query(NAME, "A").to_wire())
    q = dns.message.make_query(NAME, "A").to_wire()
    assert s.fast(q, "192.168.1.2", True) is not None
    assert s.fast(q, "192.168.1.2", True) is None  # over the limit: the guard decides


def test_qtype_bytes_are_not_blurred_by_lowercasing():
    s = server()
    store(s, dns.message.make_query(NAME, 97).to_wire())  # 0x61 = lower('A' = 65 = HTTPS)
    assert s.fast(dns.message.make_query(NAME, "HTTPS").to_wire(), "192.168.1.2", True) is None


def test_blocked_answer_replays_until_the_generation_moves_with_its_ttl_unaged():
    """A block depends only on lists/rules/pause (whose changes invalidate): the answer the
    filter stage makes is replayed long after its record TTL, which stays as made."""
    from burrow.dns.message import Query, render
    from burrow.dns.blocking import BlockingSettings, blocked_answer

    s = server()
    qw = dns.message.make_query(NAME, "A").to_wire()
    parsed = wire.parse_query(qw)
    answer = blocked_answer(1, "null", BlockingSettings(), None)
    query = Query(parsed, qw, "192.168.1.2", 5353, "udp", time.monotonic())
    packet = render(query, answer, 512)
    base = 12 + len(query.question)
    s.fastpath.store("default", 0, packet[12:base].lower(), packet, 12 + len(query.qname),
                     tuple(o + base for o in answer.ttl_offsets), answer.ttls, answer.ttl,
                     time.monotonic() - 3600, NAME, 1, answer.decision, "", ())
    out = dns.message.from_wire(s.fast(dns.message.make_query(NAME, "A").to_wire(), "192.168.1.2", True))
    assert out.answer[0][0].address == "0.0.0.0" and out.answer[0].ttl == 10  # an hour on: same TTL
    s.invalidate()
    assert s.fast(qw, "192.168.1.2", True) is None


def test_each_client_gets_its_own_case_whatever_case_was_stored():
    """The stored reply's question is lower-case: a lower-case query gets lower case back even
    when a mixed-case query filled the entry, and a mixed-case one gets its own case."""
    s = server()
    store(s, dns.message.make_query("WwW.ExAmPle.CoM", "A").to_wire())
    for name in ("www.example.com", "WWW.EXAMPLE.COM", "wWw.eXample.com"):
        q = dns.message.make_query(name, "A")
        out = dns.message.from_wire(s.fast(q.to_wire(), "192.168.1.2", True))
        assert out.id == q.id and out.question[0].name.to_text() == name + "."
        assert out.answer[0][0].address == "192.0.2.1"


def test_https_type_hits_though_its_code_is_a_letter():
    """Type 65 (HTTPS) is the byte 'A': lower() blurs it, yet an HTTPS entry answers HTTPS."""
    s = server()
    store(s, dns.message.make_query(NAME, "HTTPS").to_wire())
    for name in (NAME, "WWW.example.com"):
        out = s.fast(dns.message.make_query(name, "HTTPS").to_wire(), "192.168.1.2", True)
        assert out is not None and dns.message.from_wire(out).question[0].rdtype == 65
    assert s.fast(dns.message.make_query(NAME, 97).to_wire(), "192.168.1.2", True) is None


def test_ttls_tick_once_a_second_until_the_entry_ends(monkeypatch):
    import burrow.dns.server as server_module

    clock = [1000.0]
    monkeypatch.setattr(server_module, "_monotonic", lambda: clock[0])
    s = server()
    store(s, dns.message.make_query(NAME, "A").to_wire(), ttl=300, now=1000.0)

    def ttl_at(t):
        clock[0] = t
        out = s.fast(dns.message.make_query(NAME, "A").to_wire(), "192.168.1.2", True)
        return None if out is None else dns.message.from_wire(out).answer[0].ttl

    assert ttl_at(1000.5) == 300
    assert ttl_at(1002.7) == 298
    assert ttl_at(1002.9) == 298
    assert ttl_at(1003.0) == 297
    assert ttl_at(1269.9) == 31  # the entry ends at 90% of the TTL (270 s) for prefetch
    assert ttl_at(1270.0) is None
