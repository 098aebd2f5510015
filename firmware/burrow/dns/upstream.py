"""Forwarding to upstream resolvers: health, failover, TCP fallback, forgery resilience.

Every upstream query uses a fresh UDP socket connected to the server, so the kernel picks a
random source port and delivers only datagrams from that exact address and port (RFC 5452,
the DNSpooq lessons); the ID is random and the reply's question must match ours. Identical
questions in flight are coalesced into one upstream query, which also keeps a forwarding loop
from multiplying traffic.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import secrets
import socket
import struct
import time

from . import wire
from dataclasses import dataclass

log = logging.getLogger(__name__)

_SYSRAND = random.SystemRandom()
TCP_MAX_MESSAGE = 65535
DOWN_AFTER_FAILURES = 3  # consecutive failures before a server is tried last
DOWN_BACKOFF_MAX = 60.0  # seconds a failing server waits before it is preferred again


@dataclass
class UpstreamSettings:
    timeout: float = 2.0  # seconds per attempt
    max_attempts: int = 3  # attempts per query, across servers
    max_inflight: int = 1024  # cap on concurrent upstream queries (sockets)
    failover: bool = True  # False: only the first configured server is asked (conditional rules)


class UpstreamError(Exception):
    """No upstream answered. ``ede`` is the Extended DNS Error code to report."""

    def __init__(self, message: str, ede: int = wire.EDE_NETWORK_ERROR):
        super().__init__(message)
        self.ede = ede


class Upstream:
    """One server and its health: smoothed RTT, consecutive failures, back-off."""

    __slots__ = ("host", "port", "family", "label", "srtt", "failures", "down_until", "queries",
                 "errors", "timeouts", "last_error", "loop_detected")

    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.srtt = 0.05
        self.failures = 0
        self.down_until = 0.0
        self.queries = 0
        self.errors = 0
        self.timeouts = 0
        self.last_error = ""
        self.loop_detected = False

    @property
    def healthy(self) -> bool:
        return self.failures < DOWN_AFTER_FAILURES and not self.loop_detected

    def ok(self, rtt: float) -> None:
        self.srtt = self.srtt * 0.7 + rtt * 0.3
        self.failures = 0
        self.down_until = 0.0

    def failed(self, reason: str, now: float) -> None:
        self.errors += 1
        self.failures += 1
        self.last_error = reason
        if self.failures >= DOWN_AFTER_FAILURES:
            self.down_until = now + min(DOWN_BACKOFF_MAX, 2.0 ** (self.failures - DOWN_AFTER_FAILURES))

    def snapshot(self) -> dict:
        return {"address": self.label, "healthy": self.healthy, "srtt_ms": round(self.srtt * 1000, 2),
                "queries": self.queries, "errors": self.errors, "timeouts": self.timeouts,
                "consecutive_failures": self.failures, "last_error": self.last_error,
                "loop_detected": self.loop_detected}


def reply_matches(data: bytes, qid: int, question: bytes) -> bool:
    """Whether ``data`` is the reply to our query ``qid`` for ``question``.

    ``question`` is the lower-case name + type + class we sent. The name compares without
    regard to case (RFC 4343: an upstream may echo it in any case); the type and class are
    numbers and compare exactly (lower-casing them turned type 65, HTTPS, whose low byte is
    "A", into 97, so no HTTPS reply ever matched). A label length is at most 63, never a
    letter, so bytes equal after lower() also have the same label structure.
    """
    end = 12 + len(question)
    if len(data) < end or data[0] != qid >> 8 or data[1] != qid & 0xFF or not data[2] & 0x80 \
            or data[4:6] != b"\x00\x01":
        return False
    return data[end - 4:end] == question[-4:] and data[12:end - 4].lower() == question[:-4]


class _Pending:
    """One UDP attempt in flight: the future and what a genuine reply must look like."""

    __slots__ = ("fut", "sock", "qid", "question", "timer", "loop")

    def __init__(self, loop, sock, qid, question):
        self.loop = loop
        self.fut = loop.create_future()
        self.sock = sock
        self.qid = qid
        self.question = question
        self.timer = None

    def on_readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(TCP_MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # ICMP port unreachable arrives here on a connected socket
                if not self.fut.done():
                    self.fut.set_exception(UpstreamError(f"{errno.errorcode.get(e.errno, e)}"))
                return
            if self.fut.done():
                return
            if not reply_matches(data, self.qid, self.question):
                continue  # not our reply (another ID or question): ignore, keep waiting
            self.fut.set_result(data)
            return

    def on_timeout(self) -> None:
        if not self.fut.done():
            self.fut.set_exception(asyncio.TimeoutError())


class UpstreamPool:
    """Sends questions to the best healthy server, failing over on timeouts and errors."""

    def __init__(self, servers: list[tuple[str, int]], settings: UpstreamSettings):
        self.servers = [Upstream(h, p) for h, p in servers]
        self.settings = settings
        self.inflight = 0
        self.local_ports: dict[int, Upstream] = {}  # source port of each live upstream socket (loop check)
        self.wrong_replies = 0

    def order(self, now: float) -> list[Upstream]:
        """Servers to try, best first: healthy ones by smoothed RTT (with jitter), then the rest."""
        def score(s: Upstream):
            penalty = 0 if (s.healthy or now >= s.down_until) else 1
            if s.loop_detected:
                penalty = 2
            return (penalty, s.srtt * (0.8 + 0.4 * _SYSRAND.random()))

        return sorted(self.servers, key=score)

    @property
    def healthy_count(self) -> int:
        return sum(1 for s in self.servers if s.healthy)

    async def query(self, question: bytes, qflags: int, do: bool,
                    servers: list[Upstream] | None = None) -> tuple[bytes, Upstream]:
        """Ask upstream; returns (reply packet, server). Raises UpstreamError when all fail.

        ``question`` is the lower-case question (name + type + class) we expect echoed back.
        """
        if self.inflight >= self.settings.max_inflight:
            raise UpstreamError("too many upstream queries in flight", wire.EDE_OTHER)
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        if servers is not None:
            order = servers
        elif self.settings.failover:
            order = self.order(now)
        else:
            order = self.servers[:1]  # retries only ever go to the first server
        if not order:
            raise UpstreamError("no upstream servers configured", wire.EDE_NO_REACHABLE_AUTHORITY)
        attempts = self.settings.max_attempts
        last: Exception | None = None
        any_timeout = False
        self.inflight += 1
        try:
            for i in range(attempts):
                server = order[i % len(order)]
                if server.loop_detected and len(order) > 1:
                    continue
                server.queries += 1
                t0 = time.monotonic()
                try:
                    reply = await self._udp(loop, server, question, qflags, do)
                    if reply[2] & 0x02:  # TC: the answer did not fit; ask the same server over TCP
                        reply = await self._tcp(server, question, qflags, do)
                    rcode = reply[3] & 0xF
                    if rcode in (wire.SERVFAIL, wire.REFUSED, wire.NOTIMP, wire.FORMERR):
                        raise UpstreamError(f"upstream answered rcode {rcode}", wire.EDE_NO_REACHABLE_AUTHORITY)
                    server.ok(time.monotonic() - t0)
                    return reply, server
                except asyncio.TimeoutError:
                    any_timeout = True
                    server.timeouts += 1
                    server.failed("timeout", time.monotonic())
                    last = UpstreamError(f"{server.label} timed out", wire.EDE_NO_REACHABLE_AUTHORITY)
                except UpstreamError as e:
                    server.failed(str(e), time.monotonic())
                    last = e
                except OSError as e:
                    server.failed(str(e), time.monotonic())
                    last = UpstreamError(f"{server.label}: {e}", wire.EDE_NETWORK_ERROR)
        finally:
            self.inflight -= 1
        if isinstance(last, UpstreamError):
            if any_timeout:
                last.ede = wire.EDE_NO_REACHABLE_AUTHORITY
            raise last
        raise UpstreamError("no upstream servers available", wire.EDE_NO_REACHABLE_AUTHORITY)

    def _packet(self, question: bytes, qflags: int, do: bool) -> tuple[int, bytes]:
        qid = secrets.randbits(16)
        flags = wire.RD | wire.AD | (qflags & wire.CD)  # AD=1: we understand AD (RFC 6840 §5.7)
        return qid, (wire.header(qid, flags, 1, 0, 0, 1) + question + wire.opt_record(do))

    async def _udp(self, loop, server: Upstream, question: bytes, qflags: int, do: bool) -> bytes:
        qid, packet = self._packet(question, qflags, do)
        sock = socket.socket(server.family, socket.SOCK_DGRAM)
        port = 0
        try:
            sock.setblocking(False)
            sock.connect((server.host, server.port))  # kernel picks a random ephemeral port
            port = sock.getsockname()[1]
            self.local_ports[port] = server
            pending = _Pending(loop, sock, qid, question)
            fd = sock.fileno()
            loop.add_reader(fd, pending.on_readable)
            try:
                sock.send(packet)
                pending.timer = loop.call_later(self.settings.timeout, pending.on_timeout)
                return await pending.fut
            finally:
                if pending.timer is not None:
                    pending.timer.cancel()
                loop.remove_reader(fd)
        finally:
            self.local_ports.pop(port, None)
            sock.close()

    async def _tcp(self, server: Upstream, question: bytes, qflags: int, do: bool) -> bytes:
        qid, packet = self._packet(question, qflags, do)
        async with asyncio.timeout(self.settings.timeout):
            reader, writer = await asyncio.open_connection(server.host, server.port)
            try:
                writer.write(struct.pack("!H", len(packet)) + packet)
                await writer.drain()
                while True:
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    data = await reader.readexactly(size)
                    if reply_matches(data, qid, question):
                        return data
                    self.wrong_replies += 1
            finally:
                writer.close()
