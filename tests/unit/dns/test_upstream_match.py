"""Upstream replies are matched with the name case-insensitive and the type and class exact.

Lower-casing the whole question turned type 65 (HTTPS, byte 0x41 "A") into 97, so no HTTPS
reply ever matched. These tests ask a real loopback responder (UDP, and TCP after TC) for
every type whose code has a byte in 0x41-0x5A, and check the matching rule as a property.
"""

from __future__ import annotations

import asyncio
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burrow.dns import wire
from burrow.dns.upstream import UpstreamError, UpstreamPool, UpstreamSettings, reply_matches

from tests.support.responder import Responder

NAME = wire.text_to_name("www.Example.COM")  # lower-cased by text_to_name, as the chain keys it
LETTER = range(0x41, 0x5B)
LETTER_TYPES = [t for t in range(65536) if t >> 8 in LETTER or t & 0xFF in LETTER]
BATCH = 256  # queries in flight at once (each one is a socket)
TIMEOUT = 20.0  # per query: a loaded machine answers 256 TCP connections slowly (2 s failed under
# load); a reply that does not match is never taken, so a wrong rule still fails, after this long


def question(qtype: int, qclass: int = 1, name: bytes = NAME) -> bytes:
    return name + struct.pack("!HH", qtype, qclass)


async def ask_all(types, tc: bool) -> list[int]:
    """Ask for each type; return the types that did not get the responder's reply."""
    async with Responder(tc=tc) as up:
        pool = UpstreamPool([up.address], UpstreamSettings(timeout=TIMEOUT, max_attempts=1, max_inflight=BATCH))
        for i in range(0, len(types), BATCH):
            batch = types[i:i + BATCH]
            results = await asyncio.gather(*(pool.query(question(t), 0, False) for t in batch),
                                           return_exceptions=True)
            failed = [t for t, r in zip(batch, results) if isinstance(r, BaseException)
                      or r[0][-4:] != question(t)[-4:]]
            if failed:  # stop at the first bad batch: each failure costs a timeout
                return failed
        if tc:
            assert {transport for transport, _ in up.seen} == {"udp", "tcp"}
    return []


def test_every_type_with_a_letter_byte_is_matched_over_udp():
    assert len(LETTER_TYPES) == 65536 - (256 - 26) ** 2
    failed = asyncio.run(ask_all(LETTER_TYPES, tc=False))
    assert failed == [], f"{len(failed)} types unanswered, e.g. {failed[:5]}"


def test_every_type_with_a_letter_byte_is_matched_over_tcp_after_tc():
    failed = asyncio.run(ask_all(LETTER_TYPES, tc=True))
    assert failed == [], f"{len(failed)} types unanswered, e.g. {failed[:5]}"


@pytest.mark.parametrize("qtype", [65, 64, 0x4141])
def test_a_reply_with_another_type_is_not_ours(qtype):
    async def main():
        async with Responder(mangle_type=True) as up:
            pool = UpstreamPool([up.address], UpstreamSettings(timeout=0.3, max_attempts=1))
            with pytest.raises(UpstreamError):
                await pool.query(question(qtype), 0, False)
    asyncio.run(main())


# ---- the rule itself, as a property --------------------------------------------------------

labels = st.lists(st.binary(min_size=1, max_size=20), min_size=0, max_size=4)


def encode(parts: list[bytes]) -> bytes:
    return b"".join(bytes([len(p)]) + p for p in parts) + b"\x00"


def reply_for(qid: int, name: bytes, qtype: int, qclass: int) -> bytes:
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 0, 0, 0) + name + struct.pack("!HH", qtype, qclass)


@settings(max_examples=2000)
@given(labels, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
       st.randoms(use_true_random=False))
def test_name_case_is_ignored_and_type_and_class_are_exact(parts, qid, qtype, qclass, rnd):
    ours = encode([p.lower() for p in parts])
    q = ours + struct.pack("!HH", qtype, qclass)
    # The upstream may echo any mix of case in the name: still our reply.
    echoed = bytes(b ^ 0x20 if 0x61 <= b <= 0x7A and rnd.random() < 0.5 else b for b in ours)
    assert reply_matches(reply_for(qid, echoed, qtype, qclass), qid, q)
    # Any other type or class is another question, however its bytes compare case-blind.
    other = rnd.choice([qtype ^ 0x20, qtype ^ 0x2000, rnd.randrange(65536)])
    if other != qtype:
        assert not reply_matches(reply_for(qid, echoed, other, qclass), qid, q)
    other = rnd.choice([qclass ^ 0x20, rnd.randrange(65536)])
    if other != qclass:
        assert not reply_matches(reply_for(qid, echoed, qtype, other), qid, q)
    # Another ID, or a query instead of a response, is not our reply either.
    assert not reply_matches(reply_for(qid ^ 1, echoed, qtype, qclass), qid, q)
    query = bytearray(reply_for(qid, echoed, qtype, qclass))
    query[2] &= 0x7F
    assert not reply_matches(bytes(query), qid, q)


@given(labels, labels)
def test_another_name_is_not_ours(a, b):
    ours, theirs = encode([p.lower() for p in a]), encode([p.lower() for p in b])
    if ours == theirs:
        return
    assert not reply_matches(reply_for(7, theirs, 1, 1), 7, ours + b"\x00\x01\x00\x01")
