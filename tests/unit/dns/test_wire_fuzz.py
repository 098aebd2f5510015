"""Property-based: no byte string makes the parsers or the fast path raise anything unexpected."""

import collections

import dns.message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burrow.config.schema import DEFAULT_ALLOWED_NETWORKS
from burrow.dns import wire
from burrow.dns.access import AccessControl
from burrow.dns.fastpath import FastPath
from burrow.dns.message import error_reply, sanitize_upstream
from burrow.dns.server import DnsServer

VALID = dns.message.make_query("www.example.com", "A", use_edns=0).to_wire()
QEND = 12 + len(wire.text_to_name("www.example.com")) + 4


def mutated():
    """Valid queries with random bytes flipped, cut or appended: closer to real junk than noise."""
    return st.tuples(st.integers(0, len(VALID)), st.binary(max_size=40), st.integers(0, len(VALID))).map(
        lambda t: VALID[:t[0]] + t[1] + VALID[t[2]:])


packets = st.one_of(st.binary(max_size=600), mutated())


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(packets)
def test_parse_query_raises_only_wire_errors(data):
    try:
        parsed = wire.parse_query(data)
    except (wire.WireError, wire.Drop):
        return
    assert parsed.qend <= len(data)


@settings(max_examples=1500)
@given(packets)
def test_error_reply_never_raises(data):
    reply = error_reply(data, wire.FORMERR)
    assert reply is None or len(reply) >= 12


@settings(max_examples=1500)
@given(st.binary(max_size=600), st.booleans(), st.sampled_from([1, 5, 39, 46]))
def test_sanitize_upstream_raises_only_wire_errors(tail, do, qtype):
    packet = wire.header(1, 0x8180, 1, tail[0] % 8 if tail else 0, tail[1] % 8 if len(tail) > 1 else 0, 0) \
        + VALID[12:QEND] + tail
    try:
        sanitize_upstream(packet, wire.text_to_name("www.example.com"), qtype, QEND, 0, 86400, 3600, do)
    except wire.WireError:
        pass


@settings(max_examples=1500)
@given(packets)
def test_fast_path_never_raises_on_junk(data):
    acl = AccessControl(DEFAULT_ALLOWED_NETWORKS)
    server = DnsServer(None, FastPath(), acl, None, collections.deque(maxlen=10))
    server.fast_clients["127.0.0.1"] = server.fastpath.stores("default")
    assert server.fast(data, "127.0.0.1", True) is None
