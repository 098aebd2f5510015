"""Property-based: whole junk packets at the running server never take the listener down."""

from __future__ import annotations

import socket

import dns.message
import dns.rcode
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.burrow_proc import BurrowProcess

VALID = dns.message.make_query("fuzz.example.test", "A", use_edns=0).to_wire()


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    from tests.support.upstream_client import TestUpstream
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("fuzz"), [up.address]) as b:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        yield b, sock
        sock.close()


junk = st.one_of(
    st.binary(max_size=700),
    st.tuples(st.integers(0, len(VALID)), st.binary(max_size=32), st.integers(0, len(VALID))).map(
        lambda t: VALID[:t[0]] + t[1] + VALID[t[2]:]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(junk, min_size=1, max_size=10))
def test_junk_udp_and_tcp_then_a_normal_query_still_works(fuzz_target, batch):
    b, sock = fuzz_target
    for packet in batch:
        sock.sendto(packet, ("127.0.0.1", b.dns_port))
    with socket.create_connection(("127.0.0.1", b.dns_port), timeout=10) as t:
        t.sendall(b"".join(len(p).to_bytes(2, "big") + p for p in batch))
    r = b.query("ok.example.test")  # the default timeout: generous, the answer must come
    assert r.rcode() == dns.rcode.NOERROR
    assert b.proc.poll() is None
    assert "Traceback" not in b.output()  # junk is answered or dropped, never an internal error
