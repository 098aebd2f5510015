"""DNS over TCP: per-client connection caps and the whole-message deadline (issue 20, item 6).

An in-process DnsServer on loopback with a one-stage chain that answers everything.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
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
from burrow.dns.server import DnsServer

DEADLINE = 0.5  # tcp_message_timeout in these tests


class Answers:
    name = "answers"

    async def resolve(self, query, next):
        return Answer(wire.NXDOMAIN, Decision.RESOLVED)


@contextlib.asynccontextmanager
async def serving(**kw):
    """A server on a free loopback port, and a connection to it: (server, reader, writer)."""
    server = DnsServer(Chain([Answers()]), FastPath(), AccessControl(DEFAULT_ALLOWED_NETWORKS), None,
                       collections.deque(maxlen=1000), **kw)
    await server.start([("127.0.0.1", 0)])
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


def test_a_pipelined_message_gets_its_own_deadline_from_its_first_byte():
    deadline = 3.0  # long: the sleeps below leave 1.2 s of slack either way on a loaded machine

    async def main():
        async with serving(tcp_message_timeout=deadline, tcp_idle_timeout=30) as (server, reader, writer):
            first, second = framed("one.test"), framed("two.test")
            writer.write(first[:3])
            await asyncio.sleep(deadline * 0.6)
            writer.write(first[3:] + second[:3])  # the first ends, the second begins
            assert await read_reply(reader)
            await asyncio.sleep(deadline * 0.6)  # past the first's deadline, not the second's
            writer.write(second[3:])
            assert await read_reply(reader)
            assert server.counters.tcp_deadline == 0

    asyncio.run(main())


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
