"""AXFR client, SOA serial check and secondary-zone schedule, against an in-test fake primary.

The fake primary is a real asyncio TCP + UDP server on 127.0.0.1 (random port); its replies are
built with dnspython, an implementation independent of the code under test.
"""

from __future__ import annotations

import asyncio
import socket
import time

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from burrow.dns import wire
from burrow.dns.serial import serial_add, serial_gt
from burrow.zones import axfr as axfr_mod
from burrow.zones.axfr import (AxfrError, SecondaryZone, axfr, parse_primary, query_soa_serial,
                               rdata_text, soa_fields)
from burrow.zones.records import Record

ZONE = "lab.test"
SOA = "ns1.lab.test. hostmaster.lab.test. {serial} 3600 600 86400 300"


def run(coro, limit: float = 15.0):
    return asyncio.run(asyncio.wait_for(coro, limit))


def rrset(name: str, rtype: str, value: str, ttl: int = 300) -> dns.rrset.RRset:
    return dns.rrset.from_text(name + ".", ttl, "IN", rtype, value)


def zone_rrsets(serial: int = 1, hosts: int = 300) -> list[dns.rrset.RRset]:
    """A zone as a list of one-record RRsets, SOA first (no closing SOA)."""
    out = [rrset(ZONE, "SOA", SOA.format(serial=serial)),
           rrset(ZONE, "NS", "ns1.lab.test."),
           rrset(ZONE, "MX", "10 mail.lab.test."),
           rrset(ZONE, "TXT", '"v=spf1 -all"'),
           rrset("ns1.lab.test", "A", "192.0.2.1"),
           rrset("www.lab.test", "AAAA", "2001:db8::1"),
           rrset("_sip._tcp.lab.test", "SRV", "10 20 5060 sip.lab.test."),
           rrset("alias.lab.test", "CNAME", "www.lab.test.")]
    out += [rrset(f"h{i}.lab.test", "A", f"10.0.{i // 256}.{i % 256}") for i in range(hosts)]
    return out


def as_records(rrsets) -> list[Record]:
    return [Record(r.name.to_text(omit_final_dot=True).lower(), dns.rdatatype.to_text(r.rdtype), r.ttl,
                   r[0].to_text()) for r in rrsets]


def reply_messages(query: dns.message.Message, chunks, *, qid=None, rcode=dns.rcode.NOERROR,
                   question_in_later=False, aa=False) -> list[bytes]:
    """One reply message per chunk of RRsets; later messages omit the question (RFC 5936 allows)."""
    out = []
    for i, chunk in enumerate(chunks):
        reply = dns.message.make_response(query)
        reply.set_rcode(rcode)
        if aa:
            reply.flags |= dns.flags.AA
        if i and not question_in_later:
            reply.question = []
        reply.answer.extend(chunk)
        data = reply.to_wire(max_size=65535)
        if qid is not None:
            data = qid.to_bytes(2, "big") + data[2:]
        out.append(data)
    return out


def chunked(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def axfr_reply(query, rrsets, per_message=100, **kwargs) -> list[bytes]:
    return reply_messages(query, chunked(rrsets + [rrsets[0]], per_message), **kwargs)


class FakePrimary:
    """TCP and UDP on one 127.0.0.1 port. ``tcp`` / ``udp`` map a query to the raw replies."""

    def __init__(self, tcp=None, udp=None):
        self.tcp = tcp
        self.udp = udp
        self.queries: list[tuple[str, str]] = []  # (transport, qtype)
        self.port = 0

    async def __aenter__(self):
        loop = asyncio.get_running_loop()
        for _ in range(20):
            self.server = await asyncio.start_server(self._serve_tcp, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            try:
                self.transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(self), local_addr=("127.0.0.1", self.port))
                return self
            except OSError:
                self.server.close()
                await self.server.wait_closed()
        raise RuntimeError("no free port for both TCP and UDP")

    async def __aexit__(self, *exc):
        self.transport.close()
        self.server.close()
        await self.server.wait_closed()

    def count(self, transport: str, qtype: str) -> int:
        return self.queries.count((transport, qtype))

    async def _serve_tcp(self, reader, writer):
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(2), "big")
                query = dns.message.from_wire(await reader.readexactly(length))
                self.queries.append(("tcp", dns.rdatatype.to_text(query.question[0].rdtype)))
                replies = self.tcp(query) if self.tcp else []
                if replies is None:  # stay silent
                    await asyncio.sleep(30)
                for data in replies:
                    writer.write(len(data).to_bytes(2, "big") + data)
                await writer.drain()
                if query.question[0].rdtype == dns.rdatatype.AXFR:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: FakePrimary):
        self.owner = owner

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        query = dns.message.from_wire(data)
        self.owner.queries.append(("udp", dns.rdatatype.to_text(query.question[0].rdtype)))
        for reply in (self.owner.udp(query) if self.owner.udp else []):
            self.transport.sendto(reply, addr)


def soa_answer(query, serial, *, aa=True, tc=False, rcode=dns.rcode.NOERROR) -> bytes:
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    if aa:
        reply.flags |= dns.flags.AA
    if tc:
        reply.flags |= dns.flags.TC
    else:
        reply.answer.append(rrset(ZONE, "SOA", SOA.format(serial=serial)))
    return reply.to_wire()


async def transfer_with(tcp, **kwargs):
    async with FakePrimary(tcp=tcp) as primary:
        return await axfr(ZONE, "127.0.0.1", primary.port, **kwargs)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- transfers ----------------------------------------------------------------------------------

def test_multi_message_transfer_returns_records_in_order_without_closing_soa():
    rrsets = zone_rrsets(serial=7, hosts=300)
    sent = []

    def tcp(query):
        sent.extend(axfr_reply(query, rrsets, per_message=40))
        return sent

    records = run(transfer_with(tcp))
    assert len(sent) == 8  # 309 records incl. closing SOA, 40 per message
    assert records == as_records(rrsets)
    assert records[0] == Record("lab.test", "SOA", 300, "ns1.lab.test. hostmaster.lab.test. 7 3600 600 86400 300")
    assert Record("_sip._tcp.lab.test", "SRV", 300, "10 20 5060 sip.lab.test.") in records
    assert sum(r.type == "SOA" for r in records) == 1


def test_question_repeated_in_every_message_is_accepted():
    rrsets = zone_rrsets(hosts=50)
    records = run(transfer_with(lambda q: axfr_reply(q, rrsets, per_message=10, question_in_later=True)))
    assert records == as_records(rrsets)


def test_single_message_transfer_and_upper_case_zone_argument():
    rrsets = zone_rrsets(hosts=3)

    async def go():
        async with FakePrimary(tcp=lambda q: axfr_reply(q, rrsets)) as primary:
            return await axfr("LAB.Test.", "127.0.0.1", primary.port)

    assert run(go()) == as_records(rrsets)


def test_owner_names_and_rdata_names_come_back_lower_case():
    rrsets = [rrset("Lab.Test", "SOA", "NS1.Lab.Test. Host.Lab.Test. 1 2 3 4 5"),
              rrset("WWW.lab.test", "CNAME", "Target.Example.")]
    records = run(transfer_with(lambda q: axfr_reply(q, rrsets)))
    assert records == [Record("lab.test", "SOA", 300, "ns1.lab.test. host.lab.test. 1 2 3 4 5"),
                       Record("www.lab.test", "CNAME", 300, "target.example.")]


def test_wrong_id_is_an_error():
    rrsets = zone_rrsets(hosts=3)

    def tcp(query):
        return axfr_reply(query, rrsets, qid=(query.id + 1) % 65536)

    with pytest.raises(AxfrError, match="does not match query ID"):
        run(transfer_with(tcp))


def test_wrong_id_in_a_later_message_is_an_error():
    rrsets = zone_rrsets(hosts=30)

    def tcp(query):
        msgs = axfr_reply(query, rrsets, per_message=10)
        bad = (query.id ^ 0x55).to_bytes(2, "big")
        return [msgs[0], bad + msgs[1][2:]] + msgs[2:]

    with pytest.raises(AxfrError, match="does not match query ID"):
        run(transfer_with(tcp))


def test_connection_closed_before_final_soa_is_an_error():
    rrsets = zone_rrsets(hosts=30)
    with pytest.raises(AxfrError, match="closed before the closing SOA"):
        run(transfer_with(lambda q: reply_messages(q, chunked(rrsets, 10))))


def test_connection_closed_mid_message_is_an_error():
    rrsets = zone_rrsets(hosts=30)

    async def go():
        async def serve(reader, writer):
            length = int.from_bytes(await reader.readexactly(2), "big")
            query = dns.message.from_wire(await reader.readexactly(length))
            data = axfr_reply(query, rrsets)[0]
            writer.write(len(data).to_bytes(2, "big") + data[: len(data) // 2])
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        async with server:
            await axfr(ZONE, "127.0.0.1", server.sockets[0].getsockname()[1])

    with pytest.raises(AxfrError, match="connection closed"):
        run(go())


@pytest.mark.parametrize("rcode, words", [(dns.rcode.REFUSED, "REFUSED (this host is not allowed"),
                                          (dns.rcode.NOTAUTH, "NOTAUTH (the primary is not authoritative"),
                                          (dns.rcode.SERVFAIL, "SERVFAIL")])
def test_error_rcodes_are_reported_by_name(rcode, words):
    with pytest.raises(AxfrError, match=r"answered " + words.replace("(", r"\(")) as info:
        run(transfer_with(lambda q: reply_messages(q, [[]], rcode=rcode)))
    assert "lab.test" in str(info.value) and "127.0.0.1:" in str(info.value)


def test_owner_outside_the_zone_is_an_error():
    rrsets = zone_rrsets(hosts=3) + [rrset("evil.example", "A", "192.0.2.66")]
    with pytest.raises(AxfrError, match="evil.example is outside the zone"):
        run(transfer_with(lambda q: axfr_reply(q, rrsets)))


def test_sibling_name_sharing_a_suffix_is_outside_the_zone():
    rrsets = zone_rrsets(hosts=3) + [rrset("xlab.test", "A", "192.0.2.66")]
    with pytest.raises(AxfrError, match="outside the zone"):
        run(transfer_with(lambda q: axfr_reply(q, rrsets)))


def test_first_record_must_be_the_soa():
    rrsets = zone_rrsets(hosts=3)
    with pytest.raises(AxfrError, match="does not start with the zone's SOA"):
        run(transfer_with(lambda q: reply_messages(q, [rrsets[1:] + [rrsets[0]]])))


def test_empty_first_reply_is_an_error():
    with pytest.raises(AxfrError, match="no records"):
        run(transfer_with(lambda q: reply_messages(q, [[]])))


def test_question_for_another_zone_is_an_error():
    rrsets = zone_rrsets(hosts=3)

    def tcp(query):
        other = dns.message.make_query("other.test.", "AXFR")
        other.id = query.id
        return axfr_reply(other, rrsets)

    with pytest.raises(AxfrError, match="does not match the query"):
        run(transfer_with(tcp))


def test_records_after_the_closing_soa_are_an_error():
    rrsets = zone_rrsets(hosts=3)
    extra = rrset("late.lab.test", "A", "192.0.2.9")
    with pytest.raises(AxfrError, match="after the closing SOA"):
        run(transfer_with(lambda q: reply_messages(q, [rrsets + [rrsets[0], extra]])))


def test_serial_changing_between_opening_and_closing_soa_is_an_error():
    rrsets = zone_rrsets(serial=5, hosts=3)
    closing = rrset(ZONE, "SOA", SOA.format(serial=6))
    with pytest.raises(AxfrError, match="serial changed"):
        run(transfer_with(lambda q: reply_messages(q, [rrsets + [closing]])))


def test_record_cap():
    rrsets = zone_rrsets(hosts=100)  # 108 records
    assert len(run(transfer_with(lambda q: axfr_reply(q, rrsets), max_records=108))) == 108
    with pytest.raises(AxfrError, match="more than 107 records"):
        run(transfer_with(lambda q: axfr_reply(q, rrsets), max_records=107))


def test_byte_cap():
    rrsets = zone_rrsets(hosts=300)
    holder = []

    def tcp(query):
        holder[:] = axfr_reply(query, rrsets, per_message=50)
        return holder

    run(transfer_with(tcp))
    total = sum(2 + len(m) for m in holder)
    assert len(run(transfer_with(tcp, max_bytes=total))) == len(rrsets)
    with pytest.raises(AxfrError, match="byte cap"):
        run(transfer_with(tcp, max_bytes=total - 1))


def test_overall_timeout_bounds_a_silent_primary():
    start = time.monotonic()
    with pytest.raises(AxfrError, match="timed out after 0.5 s"):
        run(transfer_with(lambda q: None, timeout=0.5))
    assert time.monotonic() - start < 5


def test_overall_timeout_bounds_a_trickling_primary():
    rrsets = zone_rrsets(hosts=2000)

    async def go():
        async def serve(reader, writer):  # answers promptly but never finishes
            length = int.from_bytes(await reader.readexactly(2), "big")
            query = dns.message.from_wire(await reader.readexactly(length))
            for data in reply_messages(query, chunked(rrsets, 5)):
                writer.write(len(data).to_bytes(2, "big") + data)
                await writer.drain()
                await asyncio.sleep(0.05)
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        async with server:
            await axfr(ZONE, "127.0.0.1", server.sockets[0].getsockname()[1], timeout=0.6)

    start = time.monotonic()
    with pytest.raises(AxfrError, match="timed out"):
        run(go())
    assert time.monotonic() - start < 5


def test_connection_refused_is_an_axfr_error():
    with pytest.raises(AxfrError, match="127.0.0.1:"):
        run(axfr(ZONE, "127.0.0.1", closed_port(), timeout=2))


def test_query_uses_random_ids_and_asks_for_axfr_without_rd():
    rrsets = zone_rrsets(hosts=1)
    seen = []

    def tcp(query):
        seen.append(query)
        return axfr_reply(query, rrsets)

    async def go():
        async with FakePrimary(tcp=tcp) as primary:
            for _ in range(8):
                await axfr(ZONE, "127.0.0.1", primary.port)

    run(go())
    assert len({q.id for q in seen}) > 1
    for q in seen:
        assert q.question[0].rdtype == dns.rdatatype.AXFR
        assert q.question[0].name == dns.name.from_text("lab.test.")
        assert not q.flags & dns.flags.RD


# ---- RDATA text ---------------------------------------------------------------------------------

RDATA_CASES = [
    ("A", "192.0.2.1", "192.0.2.1"),
    ("AAAA", "2001:db8::1", "2001:db8::1"),
    ("NS", "ns1.lab.test.", "ns1.lab.test."),
    ("CNAME", "www.lab.test.", "www.lab.test."),
    ("PTR", "host.example.", "host.example."),
    ("DNAME", "other.example.", "other.example."),
    ("MX", "10 mail.lab.test.", "10 mail.lab.test."),
    ("SRV", "0 5 5060 sip.lab.test.", "0 5 5060 sip.lab.test."),
    ("TXT", '"v=spf1 -all"', '"v=spf1 -all"'),
    ("TXT", '"a" "b c"', '"a" "b c"'),
    ("TXT", r'"say \"hi\" back\\slash"', r'"say \"hi\" back\\slash"'),
    ("TXT", r'"caf\195\169 tab\009"', r'"caf\195\169 tab\009"'),
    ("TXT", '""', '""'),
    ("SPF", '"v=spf1 mx -all"', '"v=spf1 mx -all"'),
    ("HINFO", '"ARM" "Linux"', '"ARM" "Linux"'),
    ("CAA", '0 issue "letsencrypt.org"', '0 issue "letsencrypt.org"'),
    ("CAA", '128 iodef "mailto:x@lab.test"', '128 iodef "mailto:x@lab.test"'),
    ("NAPTR", r'100 10 "U" "E2U+sip" "!^.*$!sip:info@lab.test!" .',
     r'100 10 "U" "E2U+sip" "!^.*$!sip:info@lab.test!" .'),
    ("RP", "mbox.lab.test. txt.lab.test.", "mbox.lab.test. txt.lab.test."),
    ("SOA", "ns1.lab.test. hostmaster.lab.test. 4294967295 1 2 3 4",
     "ns1.lab.test. hostmaster.lab.test. 4294967295 1 2 3 4"),
    ("SSHFP", "1 1 0123456789abcdef0123456789abcdef01234567", "1 1 0123456789ABCDEF0123456789ABCDEF01234567"),
    ("DS", "12345 8 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
     "12345 8 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"),
    ("TLSA", "3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
     "3 1 1 00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"),
    ("HTTPS", "1 . alpn=h2", "1 . alpn=h2"),
    ("NSEC", "b.lab.test. A MX RRSIG NSEC", "b.lab.test. A MX RRSIG NSEC"),
    ("TYPE65534", r"\# 3 010203", r"\# 3 010203"),
    ("URI", '10 1 "https://lab.test/"', None),  # no formatter: RFC 3597 generic form
]


@pytest.mark.parametrize("rtype, text, expected", RDATA_CASES)
def test_rdata_text_matches_record_convention_and_round_trips(rtype, text, expected):
    rd = dns.rdata.from_text("IN", rtype, text, origin=dns.name.root, relativize=False)
    reply = dns.message.make_response(dns.message.make_query("lab.test.", "AXFR"))
    reply.answer.append(dns.rrset.from_rdata("x.lab.test.", 60, rd))
    data = reply.to_wire()
    _, an, offset = axfr_mod._check_reply(data, reply.id, wire.text_to_name(ZONE), 252, "t", True)
    (rr,), _ = wire.read_rrs(data, offset, an)
    value = rdata_text(data, rr)
    if expected is not None:
        assert value == expected
    else:
        assert value.startswith("\\# ")
    # the text parses back (by dnspython) to the same RDATA
    assert dns.rdata.from_text("IN", rtype, value, origin=dns.name.root, relativize=False) == rd


def test_names_with_special_characters_are_escaped():
    target = dns.name.Name([b"a.b", b'q"(;)', b"\x00", b"lab", b"test", b""])
    rd = dns.rdata.from_text("IN", "CNAME", target.to_text())
    reply = dns.message.make_response(dns.message.make_query("lab.test.", "AXFR"))
    reply.answer.append(dns.rrset.from_rdata("x.lab.test.", 60, rd))
    data = reply.to_wire()
    _, an, offset = axfr_mod._check_reply(data, reply.id, wire.text_to_name(ZONE), 252, "t", True)
    (rr,), _ = wire.read_rrs(data, offset, an)
    value = rdata_text(data, rr)
    assert value == "a\\046b.q\\034\\040\\059\\041.\\000.lab.test."
    assert dns.name.from_text(value) == target


def test_caa_with_a_non_alphanumeric_tag_falls_back_to_generic_form():
    rdata = bytes([0, 6]) + b"is-sue" + b"ca.example"
    owner = wire.text_to_name("x.lab.test")
    data = wire.header(1, wire.QR, qd=0, an=1) + wire.build_rr(owner, 257, 1, 60, rdata)
    (rr,), _ = wire.read_rrs(data, 12, 1)
    value = rdata_text(data, rr)
    assert value == f"\\# {len(rdata)} {rdata.hex().upper()}"


def test_ttl_with_the_top_bit_set_reads_as_zero():
    rrsets = zone_rrsets(hosts=2)

    def tcp(query):
        (data,) = axfr_reply(query, rrsets)
        _, an, offset = axfr_mod._check_reply(data, query.id, wire.text_to_name(ZONE), 252, "t", False)
        rrs, _ = wire.read_rrs(data, offset, an)
        buf = bytearray(data)
        for rr in rrs[1:3]:  # NS → 2**31 (RFC 2181 §8: treat as zero); MX → 2**31 - 1 (kept)
            buf[rr.ttl_offset:rr.ttl_offset + 4] = (0x80000000 if rr.rtype == 2 else 0x7FFFFFFF).to_bytes(4, "big")
        return [bytes(buf)]

    records = run(transfer_with(tcp))
    assert (records[1].type, records[1].ttl) == ("NS", 0)
    assert (records[2].type, records[2].ttl) == ("MX", 0x7FFFFFFF)


def test_malformed_rdata_is_an_error():
    rrsets = zone_rrsets(hosts=1)

    def tcp(query):
        (data,) = axfr_reply(query, rrsets)
        # make the A record of ns1 claim 5 bytes: find its RDATA by re-parsing
        _, an, offset = axfr_mod._check_reply(data, query.id, wire.text_to_name(ZONE), 252, "t", False)
        rrs, _ = wire.read_rrs(data, offset, an)
        a = next(rr for rr in rrs if rr.rtype == 1)
        buf = bytearray(data)
        buf[a.rdata_offset - 2:a.rdata_offset] = (3).to_bytes(2, "big")
        del buf[a.rdata_offset + 3]
        return [bytes(buf)]

    with pytest.raises(AxfrError, match="bad A RDATA"):
        run(transfer_with(tcp))


# ---- SOA serial query ---------------------------------------------------------------------------

async def serial_from(udp=None, tcp=None, **kwargs):
    async with FakePrimary(udp=udp, tcp=tcp) as primary:
        serial = await query_soa_serial(ZONE, "127.0.0.1", primary.port, **kwargs)
        return serial, primary.queries


def test_soa_serial_over_udp():
    serial, queries = run(serial_from(udp=lambda q: [soa_answer(q, 2024010203)]))
    assert serial == 2024010203
    assert queries == [("udp", "SOA")]


def test_soa_serial_falls_back_to_tcp_when_truncated():
    serial, queries = run(serial_from(udp=lambda q: [soa_answer(q, 1, tc=True)],
                                      tcp=lambda q: [soa_answer(q, 99)]))
    assert serial == 99
    assert queries == [("udp", "SOA"), ("tcp", "SOA")]


def test_soa_serial_ignores_a_reply_with_a_foreign_id():
    def udp(query):
        forged = bytearray(soa_answer(query, 666))
        forged[0:2] = ((query.id + 1) % 65536).to_bytes(2, "big")
        return [bytes(forged), soa_answer(query, 5)]

    assert run(serial_from(udp=udp))[0] == 5


def test_soa_serial_requires_an_authoritative_answer():
    with pytest.raises(AxfrError, match="not authoritative"):
        run(serial_from(udp=lambda q: [soa_answer(q, 5, aa=False)]))


def test_soa_serial_refused():
    with pytest.raises(AxfrError, match="REFUSED"):
        run(serial_from(udp=lambda q: [soa_answer(q, 5, rcode=dns.rcode.REFUSED)]))


def test_soa_serial_without_soa_in_answer():
    def udp(query):
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        return [reply.to_wire()]

    with pytest.raises(AxfrError, match="no SOA"):
        run(serial_from(udp=udp))


def test_soa_serial_retransmits_then_times_out():
    start = time.monotonic()
    with pytest.raises(AxfrError, match="timed out"):
        serial, queries = run(serial_from(udp=lambda q: [], timeout=0.9))
    assert time.monotonic() - start < 5


def test_soa_serial_retransmits_over_udp():
    calls = []

    def udp(query):  # drop the first datagram, answer the second
        calls.append(query.id)
        return [] if len(calls) == 1 else [soa_answer(query, 8)]

    serial, queries = run(serial_from(udp=udp, timeout=3.0))  # re-sent after 1 s; 2 s to answer
    assert serial == 8
    assert queries == [("udp", "SOA"), ("udp", "SOA")]
    assert calls[0] == calls[1]


# ---- serial arithmetic ----------------------------------------------------------------------

@pytest.mark.parametrize("a, b, newer", [
    (2, 1, True), (1, 2, False), (5, 5, False),
    (0, 0xFFFFFFFF, True),  # wrapped past the top
    (0xFFFFFFFF, 0, False),
    (0x7FFFFFFF, 0, True),  # 2**31 - 1 ahead: still newer
    (0x80000000, 0, False), (0, 0x80000000, False),  # exactly 2**31 apart: undefined
    (100, 0x80000065, True),  # wrapped, distance 2**31 - 1
])
def test_serial_gt_rfc1982(a, b, newer):
    assert serial_gt(a, b) is newer


def test_serial_add_wraps_and_refuses_large_increments():
    assert serial_add(0xFFFFFFFF, 1) == 0
    assert serial_add(10, 0x7FFFFFFF) == (10 + 0x7FFFFFFF) & 0xFFFFFFFF
    assert serial_gt(serial_add(0xFFFFFFF0, 0x20), 0xFFFFFFF0)
    with pytest.raises(ValueError):
        serial_add(1, 0x80000000)


def test_soa_fields():
    assert soa_fields("a. b. 7 3600 600 86400 300") == ("a.", "b.", 7, 3600, 600, 86400, 300)
    with pytest.raises(ValueError):
        soa_fields("a. b. 7")


@pytest.mark.parametrize("text, parsed", [
    ("192.0.2.1", ("192.0.2.1", 53)), ("192.0.2.1:5353", ("192.0.2.1", 5353)),
    ("[::1]:5353", ("::1", 5353)), ("[2001:db8::1]", ("2001:db8::1", 53)), ("::1", ("::1", 53)),
    (" 10.0.0.1 ", ("10.0.0.1", 53)),
])
def test_parse_primary(text, parsed):
    assert parse_primary(text) == parsed


@pytest.mark.parametrize("text", ["ns1.example", "192.0.2.1:0", "192.0.2.1:70000", "[::1", "[::1]5353",
                                  "192.0.2.1:x", ""])
def test_parse_primary_rejects(text):
    with pytest.raises(ValueError):
        parse_primary(text)


# ---- schedule ---------------------------------------------------------------------------------

class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def soa_record(serial=1, refresh=3600, retry=600, expire=86400):
    return Record(ZONE, "SOA", 300, f"ns1.lab.test. hostmaster.lab.test. {serial} {refresh} {retry} {expire} 300")


def test_new_zone_is_due_now_and_expired_until_loaded():
    clock = Clock()
    z = SecondaryZone(ZONE, ["192.0.2.1"], clock=clock)
    assert z.due() and z.expired() and z.records is None
    assert z.should_transfer(0)


def test_schedule_refresh_retry_expire():
    clock = Clock(1000)
    z = SecondaryZone(ZONE, ["192.0.2.1"], clock=clock, min_interval=1)
    z.load([soa_record(serial=10)])
    assert (z.serial, z.refresh, z.retry, z.expire) == (10, 3600, 600, 86400)
    assert not z.due() and z.seconds_until_check() == 3600 and not z.expired()
    clock.t = 1000 + 3599
    assert not z.due()
    clock.t = 1000 + 3600
    assert z.due()
    z.failed("primary down")  # retry interval, expire deadline unchanged
    assert z.next_check == 4600 + 600 and z.expires_at == 1000 + 86400 and z.last_error == "primary down"
    clock.t = 5200
    z.checked()  # serial unchanged: refresh again, expire renewed
    assert z.next_check == 5200 + 3600 and z.expires_at == 5200 + 86400 and z.last_error is None
    clock.t = 5200 + 86399
    assert not z.expired()
    clock.t = 5200 + 86400
    assert z.expired()  # past EXPIRE: serve SERVFAIL
    assert z.should_transfer(10)  # expired: transfer again even though the serial is the same


def test_should_transfer_uses_rfc1982():
    clock = Clock()
    z = SecondaryZone(ZONE, ["192.0.2.1"], clock=clock)
    z.load([soa_record(serial=0xFFFFFFFE)])
    assert z.should_transfer(1)  # wrapped: newer
    assert not z.should_transfer(0xFFFFFFFE)
    assert not z.should_transfer(0xFFFFFFF0)  # older
    assert not z.should_transfer((0xFFFFFFFE + 0x80000000) & 0xFFFFFFFF)  # undefined distance


def test_timers_are_clamped():
    z = SecondaryZone(ZONE, ["192.0.2.1"], clock=Clock(), min_interval=30, max_interval=86400)
    z.load([soa_record(refresh=1, retry=0, expire=5)])
    assert (z.refresh, z.retry, z.expire) == (30, 30, 60)
    z.load([soa_record(refresh=10**9, retry=10**9, expire=10**9)])
    assert (z.refresh, z.retry) == (86400, 86400) and z.expire == 10**9


def test_first_attempt_failure_uses_first_retry():
    clock = Clock(50)
    z = SecondaryZone(ZONE, ["192.0.2.1"], clock=clock, first_retry=7)
    z.failed("x")
    assert z.next_check == 57 and z.expired()


def test_load_requires_the_zone_soa_first():
    z = SecondaryZone(ZONE, ["192.0.2.1"], clock=Clock())
    with pytest.raises(ValueError):
        z.load([Record("lab.test", "NS", 300, "ns1.lab.test.")])
    with pytest.raises(ValueError):
        z.load([])


def test_secondary_needs_primaries():
    with pytest.raises(ValueError):
        SecondaryZone(ZONE, [])


# ---- refresh_once against the fake primary -------------------------------------------------

class ZoneServer:
    """Serves a mutable zone: SOA over UDP (authoritative) and AXFR over TCP."""

    def __init__(self, serial=1, hosts=20):
        self.rrsets = zone_rrsets(serial, hosts)

    def serial(self, serial, extra=()):
        self.rrsets = zone_rrsets(serial, 20) + list(extra)

    def udp(self, query):
        return [soa_answer(query, soa_fields(self.rrsets[0][0].to_text())[2])]

    def tcp(self, query):
        return axfr_reply(query, self.rrsets, per_message=7)


def test_refresh_once_transfers_checks_and_picks_up_new_serial():
    zone = ZoneServer(serial=1)
    clock = Clock(0)

    async def go():
        async with FakePrimary(tcp=zone.tcp, udp=zone.udp) as primary:
            z = SecondaryZone(ZONE, [f"127.0.0.1:{primary.port}"], clock=clock, timeout=3, min_interval=1)
            first = await z.refresh_once()  # no data yet: straight to AXFR
            assert first == as_records(zone.rrsets) and z.serial == 1
            assert primary.queries == [("tcp", "AXFR")]
            assert z.next_check == 3600 and z.expires_at == 86400

            clock.t = 3600
            assert await z.refresh_once() is None  # same serial: no transfer
            assert primary.count("tcp", "AXFR") == 1 and primary.count("udp", "SOA") == 1
            assert z.next_check == 7200 and z.expires_at == 3600 + 86400

            new = rrset("new.lab.test", "A", "192.0.2.77")
            zone.serial(2, [new])
            clock.t = 7200
            second = await z.refresh_once()
            assert primary.count("tcp", "AXFR") == 2
            assert second is z.records and z.serial == 2
            assert Record("new.lab.test", "A", 300, "192.0.2.77") in second

            zone.serial(1)  # the primary went back: keep our newer copy
            assert await z.refresh_once() is None
            assert z.serial == 2 and primary.count("tcp", "AXFR") == 2

    run(go())


def test_refresh_once_tries_primaries_in_order():
    zone = ZoneServer(serial=3)

    async def go():
        async with FakePrimary(tcp=lambda q: reply_messages(q, [[]], rcode=dns.rcode.REFUSED),
                               udp=lambda q: [soa_answer(q, 0, rcode=dns.rcode.REFUSED)]) as refusing, \
                FakePrimary(tcp=zone.tcp, udp=zone.udp) as good:
            z = SecondaryZone(ZONE, [f"127.0.0.1:{closed_port()}", f"127.0.0.1:{refusing.port}",
                                     f"127.0.0.1:{good.port}"], clock=Clock(0), timeout=10)
            records = await z.refresh_once()
            assert z.serial == 3 and records[0].type == "SOA"
            assert refusing.queries == [("tcp", "AXFR")] and good.queries == [("tcp", "AXFR")]

    run(go())


def test_refresh_once_all_primaries_failing_schedules_retry_and_raises():
    clock = Clock(100)

    async def go():
        async with FakePrimary(tcp=lambda q: reply_messages(q, [[]], rcode=dns.rcode.NOTAUTH)) as p:
            z = SecondaryZone(ZONE, [f"127.0.0.1:{p.port}", f"127.0.0.1:{closed_port()}"], clock=clock,
                              timeout=2, first_retry=45)
            with pytest.raises(AxfrError, match="every primary failed.*NOTAUTH"):
                await z.refresh_once()
            assert z.next_check == 145 and z.expired() and "NOTAUTH" in z.last_error

    run(go())


def test_refresh_once_after_expiry_transfers_without_asking_the_serial():
    zone = ZoneServer(serial=4)
    clock = Clock(0)

    async def go():
        async with FakePrimary(tcp=zone.tcp, udp=zone.udp) as primary:
            z = SecondaryZone(ZONE, [f"127.0.0.1:{primary.port}"], clock=clock, timeout=10, min_interval=1)
            await z.refresh_once()
            clock.t = 86400  # expired
            assert z.expired()
            records = await z.refresh_once()
            assert records is not None and not z.expired()
            assert primary.queries == [("tcp", "AXFR"), ("tcp", "AXFR")]

    run(go())
