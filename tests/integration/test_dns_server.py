"""The real burrow process answering real clients (dnspython, dig) through a scripted upstream."""

from __future__ import annotations

import concurrent.futures
import socket
import struct
import subprocess
import time
import uuid

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.conftest import need_tool
from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream import address_for
from tests.support.upstream_client import TestUpstream


@pytest.fixture(autouse=True)
def clean_upstream(request):
    if "up" in request.fixturenames:
        up = request.getfixturevalue("up")
        up.reset()
        up.clear_log()


def unique(prefix="q"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}.example.test"


def ede_codes(msg):
    return [o.code for o in msg.options if o.otype == 15]


def asked(up, name):
    return [q for q in up.queries() if q["name"].lower() == name.lower()]


def test_forwards_and_returns_upstream_answer(srv, up):
    name = unique()
    r = srv.query(name)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer[0][0].address == address_for(name)
    assert r.flags & dns.flags.RA
    assert len(asked(up, name)) == 1


def test_cache_hit_ttl_counts_down_and_upstream_asked_once(srv, up):
    name = unique()
    first = srv.query(name)
    time.sleep(1.2)
    second = srv.query(name)
    assert first.answer[0].ttl == 300
    assert second.answer[0].ttl < first.answer[0].ttl
    assert second.answer[0][0].address == first.answer[0][0].address
    assert len(asked(up, name)) == 1


def test_upstream_query_uses_random_id_and_port(srv, up):
    for _ in range(3):
        srv.query(unique())
    seen = up.queries()[-3:]
    assert len({q["src"] for q in seen}) == 3  # a fresh source port per upstream query
    assert len({q["id"] for q in seen}) == 3


def test_negative_answer_cached_with_soa(srv, up):
    name = "nx-" + unique()
    r1 = srv.query(name)
    assert r1.rcode() == dns.rcode.NXDOMAIN
    soa = r1.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA and soa.ttl <= 60
    r2 = srv.query(name)
    assert r2.rcode() == dns.rcode.NXDOMAIN and r2.authority
    assert len(asked(up, name)) == 1
    nodata = srv.query("nodata-" + unique())
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and nodata.authority


def test_case_of_question_is_preserved_0x20(srv):
    name = unique().upper().replace("EXAMPLE", "ExAmPlE")
    r = srv.query(name)
    assert r.question[0].name.to_text().rstrip(".") == name
    again = srv.query(name.lower())  # from the fast path, other case
    assert again.question[0].name.to_text().rstrip(".") == name.lower()
    assert again.answer[0].name.to_text().rstrip(".") == name.lower()


def test_tcp_pipelined_queries_on_one_connection(srv):
    names = [unique("tcp") for _ in range(5)]
    msgs = [dns.message.make_query(n, "A") for n in names]
    payload = b"".join(struct.pack("!H", len(w)) + w for w in (m.to_wire() for m in msgs))
    with socket.create_connection(("127.0.0.1", srv.dns_port), timeout=5) as s:
        s.sendall(payload)
        replies = {}
        buf = b""
        while len(replies) < 5:
            chunk = s.recv(65535)
            assert chunk, "connection closed early"
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                size = struct.unpack("!H", buf[:2])[0]
                reply = dns.message.from_wire(buf[2:2 + size])
                buf = buf[2 + size:]
                replies[reply.id] = reply
    for m, n in zip(msgs, names):
        assert replies[m.id].answer[0][0].address == address_for(n)


def test_large_answer_truncated_over_udp_then_whole_over_tcp(srv, up):
    name = unique("big")
    up.set_rule(name, large=True)
    q = dns.message.make_query(name, "A", use_edns=0, payload=1232)
    udp = dns.query.udp(q, "127.0.0.1", port=srv.dns_port, timeout=10)
    assert udp.flags & dns.flags.TC and not udp.answer
    assert len(udp.to_wire()) <= 1232
    full, used_tcp = dns.query.udp_with_fallback(q, "127.0.0.1", port=srv.dns_port, timeout=10)
    assert used_tcp and len(full.answer[0]) == 100
    plain = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=srv.dns_port, timeout=10)
    assert plain.flags & dns.flags.TC  # without EDNS the limit is 512 bytes


def test_upstream_truncation_falls_back_to_tcp(srv, up):
    name = unique("tc")
    up.set_rule(name, truncate=True)
    r = srv.query(name)
    assert r.answer[0][0].address == address_for(name)
    assert {q["transport"] for q in asked(up, name)} == {"udp", "tcp"}


def test_edns_echo_and_absence(srv):
    with_edns = srv.query(unique(), use_edns=0, payload=4096)
    assert with_edns.edns == 0 and with_edns.payload == 1232
    without = srv.query(unique())
    assert without.edns == -1


def test_edns_do_bit_echoed_and_unknown_option_ignored(srv):
    r = srv.query(unique(), use_edns=0, want_dnssec=True,
                  options=[dns.edns.GenericOption(65001, b"hello")])
    assert r.rcode() == dns.rcode.NOERROR and r.ednsflags & dns.flags.DO


def test_edns_version_1_gets_badvers(srv):
    r = srv.query(unique(), use_edns=1)
    assert r.rcode() == dns.rcode.BADVERS


def test_two_opt_records_get_formerr(srv):
    wire = dns.message.make_query(unique(), "A", use_edns=0).to_wire()
    doubled = wire[:10] + b"\x00\x02" + wire[12:] + wire[-11:]
    reply = srv.send_raw(doubled)
    assert reply is not None and reply[3] & 0xF == dns.rcode.FORMERR


def test_header_rules(srv, up):
    q = dns.message.make_query(unique(), "A").to_wire()
    notimp = q[:2] + bytes([q[2] | 0x10]) + q[3:]  # opcode 2 (STATUS)
    assert srv.send_raw(notimp)[3] & 0xF == dns.rcode.NOTIMP
    noq = q[:4] + b"\x00\x00" + q[6:12]
    assert srv.send_raw(noq)[3] & 0xF == dns.rcode.FORMERR
    response = q[:2] + bytes([q[2] | 0x80]) + q[3:]
    assert srv.send_raw(response, timeout=0.5) is None  # QR set: dropped, never answered
    any_reply = srv.query(unique(), "ANY")
    assert any_reply.answer[0].rdtype == dns.rdatatype.HINFO
    chaos = srv.query("version.bind", "TXT", rdclass="CH")
    assert chaos.answer[0][0].strings == (b"Burrow",)
    assert up.query_count() == 0  # none of these went upstream


def test_malformed_packets_then_normal_query_still_works(srv):
    junk = [b"", b"\x00", b"\xff" * 11, b"\x12\x34" + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x3f" * 40,
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
            bytes(range(256)) * 3]
    for packet in junk:
        srv.send_raw(packet, timeout=0.2)
    r = srv.query(unique())
    assert r.rcode() == dns.rcode.NOERROR


def test_upstream_failure_gives_servfail_with_ede(srv, up):
    name = unique("fail")
    up.set_rule(name, rcode="SERVFAIL")
    r = srv.query(name, use_edns=0)
    assert r.rcode() == dns.rcode.SERVFAIL
    # The upstream was reached: its own failure is EDE 0 naming the rcode, not 22 (issue 13).
    assert ede_codes(r) == [0]


def test_dropped_upstream_times_out_to_servfail(srv, up):
    name = unique("drop")
    up.set_rule(name, drop=True)
    r = srv.query(name, use_edns=0, timeout=10)
    assert r.rcode() == dns.rcode.SERVFAIL and 22 in ede_codes(r)


@pytest.mark.parametrize("behaviour", [{"wrong_id": True}, {"wrong_port": True},
                                       {"wrong_question": "other.example.test"}])
def test_forged_replies_are_not_accepted(srv, up, behaviour):
    name = unique("forge")
    up.set_rule(name, **behaviour)
    r = srv.query(name, use_edns=0, timeout=10)
    assert r.rcode() == dns.rcode.SERVFAIL  # the only replies were forgeries


def test_poisoning_extras_are_not_cached(srv, up):
    name = unique("poison")
    victim = unique("victim")
    up.set_rule(name, extra_answer=[f"{victim}. 300 IN A 6.6.6.6"],
                extra_authority=["example.test. 300 IN NS ns.evil.test."],
                extra_additional=["ns.evil.test. 300 IN A 6.6.6.6"])
    r = srv.query(name)
    assert {rr.name.to_text().rstrip(".") for rr in r.answer} == {name}
    assert not r.authority and not r.additional
    v = srv.query(victim)
    assert v.answer[0][0].address == address_for(victim)
    assert len(asked(up, victim)) == 1  # it was not answered from poisoned cache


def test_cname_chain_answered_and_cached(srv, up):
    name = unique("cn")
    up.set_rule(name, cname_chain=["mid.example.test", "end.example.test"])
    r = srv.query(name)
    types = [rr.rdtype for rr in r.answer]
    assert types.count(dns.rdatatype.CNAME) == 2 and types[-1] == dns.rdatatype.A


def test_identical_questions_in_flight_are_coalesced(srv, up):
    name = unique("slow")
    up.set_rule(name, delay_ms=400)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: srv.query(name), range(8)))
    assert all(r.answer for r in results)
    assert len(asked(up, name)) == 1


def test_dig_forward_tcp_and_case(srv):
    dig = need_tool("dig")
    name = unique().replace("q-", "DiG-")
    out = subprocess.run([dig, "@127.0.0.1", "-p", str(srv.dns_port), name, "A", "+noall", "+answer"],
                         capture_output=True, text=True, timeout=10).stdout
    assert name in out and address_for(name) in out
    out = subprocess.run([dig, "@127.0.0.1", "-p", str(srv.dns_port), name, "A", "+tcp", "+short"],
                         capture_output=True, text=True, timeout=10).stdout
    assert out.strip() == address_for(name)


def test_health_endpoints(srv):
    assert srv.http("GET", "/healthz") == (200, {"status": "alive"})
    status, body = srv.http("GET", "/api/health")
    assert status == 200 and body["status"] == "ok" and body["version"]
    assert body["uptime"].endswith("s")
    # The timeout tests above kept the upstream failing for seconds on end, so it may have
    # been reported down; the report changes at most once per REPORT_MIN_DWELL (issue 13).
    deadline = time.monotonic() + 30
    while True:
        srv.query(unique())
        status, body = srv.http("GET", "/readyz")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200 and body["status"] == "ready"
    assert set(body["checks"]) >= {"storage", "upstreams", "blocklist"}


# ---- separate processes for configuration-dependent behaviour ---------------------------------

def test_acl_refuses_clients_outside_allowed_networks(tmp_path, up):
    with BurrowProcess(tmp_path, [up.address], {"access": {"allowed_networks": ["127.0.0.2/32"]}}) as b:
        refused = b.query(unique(), source="127.0.0.1", use_edns=0)
        assert refused.rcode() == dns.rcode.REFUSED and 18 in ede_codes(refused)
        ok = b.query(unique(), source="127.0.0.2")
        assert ok.rcode() == dns.rcode.NOERROR and ok.answer


def test_rate_limit_drops_past_burst(tmp_path, up):
    with BurrowProcess(tmp_path, [up.address],
                       # a token back only every 10 s: the sixth query is over however slowly they go
                       {"rate_limit": {"enabled": True, "rps": 0.1, "burst": 5, "action": "refuse"}}) as b:
        name = unique()
        codes = [b.query(name).rcode() for _ in range(8)]
        assert codes[:5] == [dns.rcode.NOERROR] * 5
        assert dns.rcode.REFUSED in codes[5:]


def test_failover_to_second_upstream_when_first_is_dead(tmp_path, up):
    with TestUpstream() as dead:
        dead.set_rule(".", match="suffix", drop=True)
        # The live upstream's answer must come within the timeout: generous (the dead one costs
        # it once per query at most).
        with BurrowProcess(tmp_path, [dead.address, up.address],
                           {"upstream": {"timeout": 2.0, "max_attempts": 3}}) as b:
            for _ in range(4):
                name = unique("fo")
                r = b.query(name, timeout=15)
                assert r.answer[0][0].address == address_for(name)
            _, ready = b.http("GET", "/readyz")
            assert ready["checks"]["upstreams"] in ("degraded", "ok")


def test_serve_stale_when_upstream_fails(tmp_path, up):
    with BurrowProcess(tmp_path, [up.address]) as b:
        name = unique("stale")
        up.set_rule(name, records={"A": ["192.0.2.55"]}, ttl=1)
        assert b.query(name).answer[0][0].address == "192.0.2.55"
        up.set_rule(name, rcode="SERVFAIL")
        time.sleep(1.3)
        r = b.query(name, use_edns=0)
        assert r.rcode() == dns.rcode.NOERROR
        assert r.answer[0][0].address == "192.0.2.55" and r.answer[0].ttl == 30
        assert 3 in ede_codes(r)


def test_burrow_as_its_own_upstream_does_not_melt_down(tmp_path):
    port = None
    proc = BurrowProcess(tmp_path / "self", None)
    port = proc.dns_port
    proc.config["upstream_dns_servers"] = [f"127.0.0.1:{port}"]
    with proc as b:
        r = b.query(unique("loop"), use_edns=0, timeout=10)
        assert r.rcode() in (dns.rcode.SERVFAIL, dns.rcode.REFUSED)
        assert b.http("GET", "/healthz")[0] == 200
        status, body = b.http("GET", "/readyz")
        assert status == 503 and body["checks"]["upstreams"] == "unavailable"


def test_two_burrows_forwarding_to_each_other_stay_bounded(tmp_path):
    a = BurrowProcess(tmp_path / "a", None, {"upstream": {"timeout": 0.5, "max_attempts": 1}})
    b = BurrowProcess(tmp_path / "b", None, {"upstream": {"timeout": 0.5, "max_attempts": 1}})
    a.config["upstream_dns_servers"] = [b.dns_address]
    b.config["upstream_dns_servers"] = [a.dns_address]
    with a, b:
        r = a.query(unique("pingpong"), use_edns=0, timeout=10)
        assert r.rcode() in (dns.rcode.SERVFAIL, dns.rcode.REFUSED)
        assert a.http("GET", "/healthz")[0] == 200 and b.http("GET", "/healthz")[0] == 200
