"""DnsServer.start with port 0: the number the kernel picks for UDP may be taken for TCP (a
busy machine has thousands of TCP connections on loopback ports); it picks again."""

from __future__ import annotations

import asyncio
import collections
import socket

import pytest

from burrow.config.schema import DEFAULT_ALLOWED_NETWORKS
from burrow.dns import server as server_module
from burrow.dns.access import AccessControl
from burrow.dns.chain import Chain
from burrow.dns.fastpath import FastPath
from burrow.dns.server import DnsServer


class Nothing:
    name = "nothing"

    async def resolve(self, query, next):
        return await next(query)


def make_server() -> DnsServer:
    return DnsServer(Chain([Nothing()]), FastPath(), AccessControl(DEFAULT_ALLOWED_NETWORKS), None,
                     collections.deque(maxlen=10))


def test_port_zero_picks_again_when_tcp_has_the_number(monkeypatch):
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # a TCP listener holds a number
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    real = server_module.UdpListener
    picks = []

    def first_the_busy_number(server, family, host, port, shared=False):
        # the kernel's first pick for UDP is the number TCP has; later picks are its own
        listener = real(server, family, host, busy if port == 0 and not picks else port, shared)
        picks.append(listener.port)
        return listener

    monkeypatch.setattr(server_module, "UdpListener", first_the_busy_number)

    async def main():
        server = make_server()
        await server.start([("127.0.0.1", 0)])
        try:
            return server.addresses[0][1]
        finally:
            await server.stop()

    try:
        port = asyncio.run(main())
    finally:
        taken.close()
    assert picks[0] == busy and len(picks) >= 2
    assert port != busy and port == picks[-1]


def test_a_fixed_port_taken_for_tcp_is_an_error():
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]

    async def main():
        server = make_server()
        try:
            await server.start([("127.0.0.1", busy)])
        finally:
            await server.stop()

    try:
        with pytest.raises(OSError):
            asyncio.run(main())
    finally:
        taken.close()
