"""DNS over TLS in the DnsServer (DotProtocol): its own connection cap and counters, the
transport recorded as "dot", and the handshake deadline; an in-process server on loopback with
a one-stage chain and a certificate made by the test."""

from __future__ import annotations

import asyncio
import collections
import ssl
import struct

import dns.message

from burrow.config.schema import DEFAULT_ALLOWED_NETWORKS
from burrow.dns import wire
from burrow.dns.access import AccessControl
from burrow.dns.chain import Chain
from burrow.dns.decision import Decision
from burrow.dns.fastpath import FastPath
from burrow.dns.message import Answer
from burrow.dns.server import DnsServer
from burrow.tls import certs
from tests.support.tlscerts import TestCA, write_pair


class Answers:
    name = "answers"

    def __init__(self):
        self.transports = []

    async def resolve(self, query, next):
        self.transports.append(query.transport)
        return Answer(wire.NXDOMAIN, Decision.RESOLVED)


def contexts(tmp_path):
    ca = TestCA()
    cert, key = write_pair(tmp_path, "s", ca.issue(["dns.test"]))
    server_ctx = certs.server_context(str(cert), str(key), ["dot"])
    client_ctx = ssl.create_default_context(cafile=str(ca.write(tmp_path / "ca.pem")))
    return server_ctx, client_ctx


def query(name: str) -> bytes:
    msg = dns.message.make_query(name, "A").to_wire()
    return struct.pack("!H", len(msg)) + msg


async def ask(reader, writer, name: str) -> bytes:
    writer.write(query(name))
    size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 10))[0]
    return await asyncio.wait_for(reader.readexactly(size), 10)


async def refused(reader) -> bool:
    try:  # over a cap: closed at once after the handshake
        return await asyncio.wait_for(reader.read(100), 10) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True


def test_dot_connections_have_their_own_caps_and_record_transport_dot(tmp_path):
    server_ctx, client_ctx = contexts(tmp_path)

    async def main():
        chain = Answers()
        server = DnsServer(Chain([chain]), FastPath(), AccessControl(DEFAULT_ALLOWED_NETWORKS), None,
                           collections.deque(maxlen=100), max_dot_connections=4, max_tcp_per_client=16)
        port = await server.start_tls("127.0.0.1", 0, server_ctx, 5.0)

        async def connect(source: str):
            return await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="dns.test",
                                                 local_addr=(source, 0))
        try:
            # one client: its fair share of 4 slots is 2
            mine = [await connect("127.0.0.1") for _ in range(2)]
            for reader, writer in mine:
                assert (await ask(reader, writer, "a.test"))[3] & 0x0F == wire.NXDOMAIN
            reader, writer = await connect("127.0.0.1")
            assert await refused(reader)
            writer.close()
            assert server.counters.dot_client_cap == 1 and server.dot_slots.used == 2
            assert server.tcp_slots.used == 0  # DoT does not take plain TCP's slots
            # two more clients fill the 4; a fifth is refused by the total cap
            others = [await connect(ip) for ip in ("127.0.0.2", "127.0.0.3")]
            for reader, writer in others:
                await ask(reader, writer, "b.test")
            reader, writer = await connect("127.0.0.4")
            assert await refused(reader)
            writer.close()
            assert server.counters.dot_refused == 1 and server.counters.dot == 4
            assert chain.transports == ["dot"] * 4
            for _, w in mine + others:
                w.close()
        finally:
            await server.stop()
        assert server.dot_servers == []

    asyncio.run(main())


def test_a_stalled_handshake_is_cut_at_the_deadline_and_holds_no_slot(tmp_path):
    server_ctx, _ = contexts(tmp_path)

    async def main():
        server = DnsServer(Chain([Answers()]), FastPath(), AccessControl(DEFAULT_ALLOWED_NETWORKS), None,
                           collections.deque(maxlen=100))
        port = await server.start_tls("127.0.0.1", 0, server_ctx, 0.5)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x16\x03\x01\x02\x00")  # a TLS record header, then silence
            assert server.dot_slots.used == 0
            try:
                assert await asyncio.wait_for(reader.read(100), 15) == b""
            except ConnectionResetError:
                pass
            writer.close()
        finally:
            await server.stop()

    asyncio.run(main())
