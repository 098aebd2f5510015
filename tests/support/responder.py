"""A tiny in-process upstream for UpstreamPool tests: UDP and TCP on one loopback port.

It echoes each question with the name's letters in the opposite case (as a 0x20-randomising
server might) and the type and class bytes untouched, and answers from a small script:
``rcode``, an Extended DNS Error ``ede`` ((code, text)) in its OPT record, ``drop`` (never
answer), ``tc`` (UDP answers come back truncated, so the pool retries over TCP), ``mangle_type``
(the echoed type is changed, so the reply is not ours) or ``garble`` (the header promises an
answer record that is not there). ``port`` picks the port (default: any free one). Replies
are built byte by byte, so nothing between the test and the pool interprets the type.
"""

from __future__ import annotations

import asyncio
import struct

OPT_EDE = 15


class Responder:
    def __init__(self, rcode: int = 0, ede: tuple[int, str] | None = None, drop: bool = False,
                 tc: bool = False, mangle_type: bool = False, garble: bool = False, port: int = 0):
        self.rcode = rcode
        self.ede = ede
        self.drop = drop
        self.tc = tc
        self.mangle_type = mangle_type
        self.garble = garble
        self.want_port = port
        self.seen: list[tuple[str, bytes]] = []  # (transport, query packet)
        self.port = 0
        self._udp = None
        self._tcp = None

    async def __aenter__(self) -> "Responder":
        loop = asyncio.get_running_loop()
        for _ in range(50):  # UDP picks the port, TCP must get the same number
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=("127.0.0.1", self.want_port))
            self.port = self._udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", self.port)
                return self
            except OSError:
                self._udp.close()
                if self.want_port:
                    raise
        raise RuntimeError("no UDP+TCP port pair found")

    async def __aexit__(self, *exc) -> None:
        self._udp.close()
        self._tcp.close()
        await self._tcp.wait_closed()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def reply(self, query: bytes, transport: str) -> bytes | None:
        self.seen.append((transport, query))
        if self.drop or len(query) < 12:
            return None
        i = 12
        while query[i]:
            i += query[i] + 1
        name, tail = query[12:i + 1], bytearray(query[i + 1:i + 5])
        if self.mangle_type:
            tail[1] ^= 0x20  # e.g. 65 -> 97: what lower-casing the type byte would do
        flags = 0x8000 | (struct.unpack_from("!H", query, 2)[0] & 0x0100) | 0x0080 | self.rcode
        truncated = self.tc and transport == "udp"
        if truncated:
            flags |= 0x0200
        opt = b""
        if self.ede is not None:
            code, text = self.ede
            data = struct.pack("!H", code) + text.encode()
            rdata = struct.pack("!HH", OPT_EDE, len(data)) + data
            opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(rdata)) + rdata
        header = query[:2] + struct.pack("!HHHHH", flags, 1, 1 if self.garble else 0, 0, 1 if opt else 0)
        return header + name.swapcase() + bytes(tail) + opt

    async def _serve_tcp(self, reader, writer) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                reply = self.reply(await reader.readexactly(size), "tcp")
                if reply is not None:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: Responder):
        self.owner = owner
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        reply = self.owner.reply(data, "udp")
        if reply is not None:
            self.transport.sendto(reply, addr)
