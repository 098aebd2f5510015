"""DNS over TCP: per-client connection caps and the whole-message deadline (issue 20, item 6).

An in-process DnsServer on loopback with a one-stage chain that answers everything.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import struct
import time

import dns.message

from burrow.config.schema import DEFAULT_ALLOWED_NETWORKS
from burrow.dns import wire
from burrow.dns.access import AccessControl
from burrow.dns.chain import Chain
from burrow.dns.decision import Decision
from burrow.dns.fastpath import FastPath
from burrow.dns.message import Answer
from burrow.dns.server import DnsServer, TcpProtocol
from tests.support.timing import run_virtual

DEADLINE = 0.5  # tcp_message_timeout in these tests


class Answers:
    name = "answers"

    async def resolve(self, query, next):
        return Answer(wire.NXDOMAIN, Decision.RESOLVED)


def make_server(**kw) -> DnsServer:
    return DnsServer(Chain([Answers()]), FastPath(), AccessControl(DEFAULT_ALLOWED_NETWORKS), None,
                     collections.deque(maxlen=1000), **kw)


@contextlib.asynccontextmanager
async def serving(**kw):
    """A server on a free loopback port, and a connection to it: (server, reader, writer)."""
    server = make_server(**kw)
    for attempt in range(20):
        try:
            await server.start([("127.0.0.1", 0)])
            break
        except OSError as e:
            # Port 0 picks a free UDP port; its TCP twin may be some client's ephemeral port
            # (a busy machine has many): pick again.
            if e.errno != errno.EADDRINUSE or attempt == 19:
                raise
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.addresses[0][1])
        yield server, reader, writer
        writer.close()
    finally:
        await server.stop()


def framed(name: str) -> bytes:
    msg = dns.message.make_query(name, "A").to_wire()
    return struct.pack("!H", len(msg)) + msg


async def read_reply(reader) -> bytes:
    size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 10))[0]
    return await asyncio.wait_for(reader.readexactly(size), 10)


async def closed_by_server(reader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(100), within) == b""
    except asyncio.TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_whole_messages_far_apart_are_answered_and_the_connection_kept():
    """The deadline runs from a message's first byte to its last, not between messages."""
    async def main():
        async with serving(tcp_message_timeout=DEADLINE, tcp_idle_timeout=30) as (server, reader, writer):
            for i in range(3):
                writer.write(framed(f"q{i}.test"))
                assert dns.message.from_wire(await read_reply(reader)).rcode() == wire.NXDOMAIN
                await asyncio.sleep(2 * DEADLINE)
            writer.write(framed("last.test"))
            assert await read_reply(reader)
            assert server.counters.tcp_deadline == 0

    asyncio.run(main())


def test_a_message_dribbled_byte_by_byte_is_cut_off_at_the_deadline():
    async def main():
        async with serving(tcp_message_timeout=DEADLINE, tcp_idle_timeout=30) as (server, reader, writer):
            data = framed("slow.test")
            writer.write(data[:1])
            start_t = time.monotonic()
            closed = False
            for byte in data[1:-1]:  # every byte well inside the idle timeout; never the last
                writer.write(bytes([byte]))
                if await closed_by_server(reader, DEADLINE / 5):
                    closed = True
                    break
            assert closed, "the connection outlived its message deadline"
            assert time.monotonic() - start_t >= DEADLINE
            assert server.counters.tcp_deadline == 1

    asyncio.run(main())


class FakeTransport:
    """What TcpProtocol uses of an asyncio transport; keeps what was written."""

    def __init__(self):
        self.written = bytearray()
        self.closed = False

    def get_extra_info(self, name):
        return ("127.0.0.1", 5353) if name == "peername" else None

    def write(self, data):
        self.written += data

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    write_eof = pause_reading = resume_reading = lambda self: None


def test_a_pipelined_message_gets_its_own_deadline_from_its_first_byte():
    """The protocol fed by hand on a virtual clock: the sleeps last exactly as long as they
    say, so the second part lands past the first message's deadline and inside the second's
    however loaded the machine is."""
    async def main():
        server = make_server(tcp_message_timeout=DEADLINE, tcp_idle_timeout=30)
        proto, transport = TcpProtocol(server), FakeTransport()
        proto.connection_made(transport)
        first, second = framed("one.test"), framed("two.test")
        proto.data_received(first[:3])
        await asyncio.sleep(DEADLINE * 0.6)
        proto.data_received(first[3:] + second[:3])  # the first ends, the second begins
        await asyncio.sleep(DEADLINE * 0.6)  # past the first's deadline, not the second's
        assert not transport.closed
        proto.data_received(second[3:])
        await asyncio.sleep(DEADLINE * 0.6)  # the replies are sent from tasks
        proto.connection_lost(None)
        return server, transport

    server, transport = run_virtual(main())
    assert server.counters.tcp_deadline == 0 and not transport.closed
    replies = []
    data = bytes(transport.written)
    while data:
        size = struct.unpack("!H", data[:2])[0]
        replies.append(dns.message.from_wire(data[2:2 + size]))
        data = data[2 + size:]
    assert [str(r.question[0].name) for r in replies] == ["one.test.", "two.test."]


def test_a_message_not_whole_by_its_deadline_is_cut_off_on_the_virtual_clock():
    """The check above can fail: the same protocol, with the second part late, is cut off."""
    async def main():
        server = make_server(tcp_message_timeout=DEADLINE, tcp_idle_timeout=30)
        proto, transport = TcpProtocol(server), FakeTransport()
        proto.connection_made(transport)
        proto.data_received(framed("one.test")[:3])
        await asyncio.sleep(DEADLINE * 0.99)
        assert not transport.closed
        await asyncio.sleep(DEADLINE * 0.02)
        assert transport.closed
        proto.connection_lost(None)
        return server

    assert run_virtual(main()).counters.tcp_deadline == 1


def test_over_a_clients_cap_the_connection_is_closed_cleanly_and_counted():
    async def main():
        async with serving(max_tcp_connections=100, max_tcp_per_client=2) as (server, first, _):
            port = server.addresses[0][1]
            second = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(framed("over.test"))  # even with a query waiting: a FIN, no reset
            assert await asyncio.wait_for(reader.read(100), 10) == b""
            assert server.counters.tcp_client_cap == 1 and server.counters.tcp_refused == 0
            assert server.tcp_connections == 2
            other, w2 = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
            w2.write(framed("other.test"))
            assert await read_reply(other)  # another client is not affected
            for w in (second[1], writer, w2):
                w.close()
            deadline = time.monotonic() + 10
            while server.tcp_connections > 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert server.tcp_connections == 1 and server.tcp_slots.held == {"127.0.0.1": 1}

    asyncio.run(main())
