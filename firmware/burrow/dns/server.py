"""UDP and TCP listeners on the asyncio loop, with the fast path in front of the chain.

Every packet is handled in isolation: whatever goes wrong answers SERVFAIL for that query
(or drops what cannot be parsed), is counted, and never reaches the listener.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import socket
import ssl
import struct
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from typing import Any, cast

from . import wire
from .access import AccessControl, RateLimiter
from .chain import Chain
from .decision import Decision, QueryRecord
from .fairshare import FairShare
from .fastpath import FastEntry, FastPath
from .message import DROP, RATE_LIMIT_DROP, Answer, Query, error_reply, render
from .upstream import Upstream

_monotonic = time.monotonic

# What the ring hands telemetry: a record per slow-path answer, (receipt, client, entry,
# elapsed) per fast-path hit (DnsServer.fast).
RingItem = QueryRecord | tuple[float, str, FastEntry, float]

log = logging.getLogger(__name__)

# Header bytes 4-11 (QDCOUNT=1, ANCOUNT=NSCOUNT=0, ARCOUNT 0 or 1) → the EDNS shape before the DO bit.
_SHAPES = {b"\x00\x01\x00\x00\x00\x00\x00\x00": 0, b"\x00\x01\x00\x00\x00\x00\x00\x01": 1}
WILDCARDS = ("0.0.0.0", "::")
PICK_PORT_ATTEMPTS = 20  # port 0: tries for a number free for both UDP and TCP
CLIENT_MEMO_MAX = 4096  # client IP → (allowed, view) remembered for the fast path
TCP_MAX_PENDING = 16  # queries in progress per TCP connection before we stop reading it
TCP_MAX_BUFFER = 2 * 65537  # bytes buffered per TCP connection (two maximal messages)
TCP_MAX_PER_CLIENT = 16  # default DNS-over-TCP connections one client may hold (server.max_tcp_per_client)
TCP_MESSAGE_TIMEOUT = 5.0  # default seconds from a message's first byte to its last (server.tcp_message_timeout)


class Counters:
    # tcp_refused: over server.max_tcp_connections; tcp_client_cap: over the client's share;
    # tcp_deadline: closed because a message did not arrive whole in time
    # dot*: the same for DNS over TLS; doh: messages answered for DNS over HTTPS (api/doh_api.py)
    __slots__ = ("udp", "tcp", "dropped", "formerr", "errors", "loops", "tcp_refused", "tcp_client_cap",
                 "tcp_deadline", "dot", "dot_refused", "dot_client_cap", "doh")
    udp: int
    tcp: int
    dropped: int
    formerr: int
    errors: int
    loops: int
    tcp_refused: int
    tcp_client_cap: int
    tcp_deadline: int
    dot: int
    dot_refused: int
    dot_client_cap: int
    doh: int

    def __init__(self) -> None:
        for s in self.__slots__:
            setattr(self, s, 0)

    def as_dict(self) -> dict[str, int]:
        return {s: getattr(self, s) for s in self.__slots__}


class DnsServer:
    """Owns the listeners. ``ring`` receives one QueryRecord per answered query."""

    def __init__(self, chain: Chain, fastpath: FastPath, acl: AccessControl,
                 limiter: RateLimiter | None, ring: deque[RingItem], *, decision_trace: bool = True,
                 tcp_idle_timeout: float = 10.0, max_tcp_connections: int = 128,
                 max_tcp_per_client: int = TCP_MAX_PER_CLIENT,
                 tcp_message_timeout: float = TCP_MESSAGE_TIMEOUT,
                 loop_ports: dict[int, tuple[int, bytes, Upstream]] | None = None,
                 view_of: Callable[[str], str] | None = None, dot_idle_timeout: float = 30.0,
                 max_dot_connections: int = 128):
        self.chain = chain
        self.fastpath = fastpath
        self.acl = acl
        self.limiter = limiter
        self.ring = ring
        self.decision_trace = decision_trace
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self.max_tcp_per_client = max_tcp_per_client
        self.tcp_message_timeout = tcp_message_timeout
        self.tcp_slots = FairShare()  # connections per client address (dns/fairshare.py)
        # DNS over TLS (RFC 7858): its own slots and idle time; each client's share as for TCP.
        self.dot_idle_timeout = dot_idle_timeout
        self.max_dot_connections = max_dot_connections
        self.dot_slots = FairShare()
        self.dot_servers: list[asyncio.Server] = []
        self.loop_ports = loop_ports if loop_ports is not None else {}
        self.view_of = view_of or (lambda ip: "default")
        self.counters = Counters()
        self.clients: dict[str, tuple[bool, str]] = {}
        self.transports: list[UdpListener] = []
        self.servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Future[None]] = set()
        self.addresses: list[tuple[str, int]] = []
        # Allowed client IP → its view's fast-path stores (FastPath empties them in place on
        # invalidation, so holding them here is safe); capped like ``clients``.
        self.fast_clients: dict[str, list[OrderedDict[bytes, FastEntry]]] = {}
        self.wildcard_ports: list[tuple[int, int]] = []  # (family, port) bound to 0.0.0.0 / ::
        self._per_address: dict[tuple[str, int], UdpListener] = {}  # see set_local_addresses

    @property
    def tcp_connections(self) -> int:
        return self.tcp_slots.used

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self, addresses: list[tuple[str, int]]) -> None:
        loop = asyncio.get_running_loop()
        for host, port in addresses:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            # One port for both: bind UDP first (port 0 picks one), then TCP on the same number.
            # The number the kernel picked for UDP may be a TCP connection's local port: with
            # port 0, pick again (a busy machine has thousands of those).
            for attempt in range(PICK_PORT_ATTEMPTS if port == 0 else 1):
                transport = UdpListener(self, family, host, port, shared=host in WILDCARDS)
                bound = transport.port
                try:
                    server = await loop.create_server(lambda: TcpProtocol(self), host, bound,
                                                      family=family, reuse_address=True, backlog=128)
                    break
                except OSError as e:
                    transport.close()
                    if port != 0 or e.errno != errno.EADDRINUSE or attempt == PICK_PORT_ATTEMPTS - 1:
                        raise
            self.transports.append(transport)
            self.servers.append(server)
            self.addresses.append((host, bound))
            if host in WILDCARDS:
                self.wildcard_ports.append((family, bound))
            log.info("DNS listening on %s port %d (UDP+TCP)", host, bound)

    def set_local_addresses(self, ips: list[str]) -> None:
        """Follow the machine's addresses for wildcard listeners (dnsmasq's bind-dynamic).

        A UDP reply leaves from the address its socket is bound to, and a wildcard socket lets
        the kernel pick one, which on a multi-homed board may not be the address the client
        asked. So each local address gets its own UDP socket on every wildcard port (the kernel
        delivers to the most specific socket), added and removed as addresses come and go;
        the wildcard socket stays as the catch-all for an address not seen yet. TCP needs none
        of this: a connection's replies always leave from the address it was made to.
        """
        for family, port in self.wildcard_ports:
            wanted = {ip for ip in ips if (":" in ip) == (family == socket.AF_INET6)
                      and not ip.lower().startswith("fe80:")}  # link-local needs a scope: skip
            have = {ip for (ip, p) in self._per_address if p == port}
            for ip in sorted(wanted - have):
                try:
                    self._per_address[(ip, port)] = UdpListener(self, family, ip, port, shared=True)
                    log.info("DNS: UDP socket for %s port %d", ip, port)
                except OSError as e:  # e.g. a tentative IPv6 address: the next change retries
                    log.debug("DNS: cannot bind %s port %d yet: %s", ip, port, e)
            for ip in sorted(have - wanted):
                self._per_address.pop((ip, port)).close()
                log.info("DNS: address %s gone; its UDP socket closed", ip)

    async def stop(self) -> None:
        for t in [*self.transports, *self._per_address.values()]:
            t.close()
        self._per_address.clear()
        for s in self.servers:
            s.close()
        for s in self.servers:
            try:
                await asyncio.wait_for(s.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass
        await self.stop_tls()
        for task in list(self._tasks):
            task.cancel()

    async def start_tls(self, host: str, port: int, context: ssl.SSLContext, handshake_timeout: float) -> int:
        """Listen for DNS over TLS (RFC 7858) on host:port (burrow/tls TlsService opens it);
        returns the bound port. A handshake not done within ``handshake_timeout`` is cut by the
        loop; only then does the connection take a slot (DotProtocol)."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server = await loop.create_server(lambda: DotProtocol(self), host, port, family=family,
                                          reuse_address=True, backlog=128, ssl=context,
                                          ssl_handshake_timeout=handshake_timeout)
        self.dot_servers.append(server)
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    async def stop_tls(self) -> None:
        """Close the DoT listeners and their connections."""
        servers, self.dot_servers = self.dot_servers, []
        for s in servers:
            s.close()
            close_clients = getattr(s, "close_clients", None)  # Python 3.13; uvloop closes them itself
            if close_clients is not None:
                close_clients()
        for s in servers:
            try:
                await asyncio.wait_for(s.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass

    async def answer(self, data: bytes, addr: tuple[Any, ...], transport: str) -> bytes | None:
        """The reply to one message that came by another way (DNS over HTTPS): the fast path,
        then the chain; None when the message is dropped (not a query, or over the rate limit)."""
        self.counters.doh += 1
        try:
            reply = self.fast(data, addr[0], False)
        except Exception:
            self.counters.errors += 1
            reply = None
        if reply is not None:
            return reply
        out: list[bytes] = []
        await self.handle(data, addr, transport, out.append)
        return out[0] if out else None

    def invalidate(self) -> None:
        """Forget per-client memos and fast-path answers (something that shapes answers changed)."""
        self.clients.clear()
        self.fast_clients.clear()
        self.fastpath.invalidate()

    # ---- the fast path ------------------------------------------------------------------------

    def fast(self, data: bytes, ip: str, udp: bool) -> bytes | None:
        """Reply bytes for a repeated question, or None to take the slow path.

        Over UDP the reply must fit the client's size (512, or its EDNS size capped at 1232);
        a larger stored answer goes the slow way, which sends TC=1.

        The end of the name is found with one C-level search for the root label's zero byte.
        A zero inside a label would mislead it, but then the bytes before it are no valid name
        and cannot equal a stored key (stored keys are names we parsed), so a hit proves the
        parse.
        """
        shape = _SHAPES.get(data[4:12])  # QD=1, AN=NS=0, AR 0 or 1 (the OPT record)
        if shape is None or data[2] & 0xF8:  # other counts, QR set, or an opcode other than QUERY
            return None
        stores = self.fast_clients.get(ip)  # only allowed clients are in it
        if stores is None:
            return None
        i = data.find(0, 12)
        if i < 0:
            return None
        qend = i + 5
        if shape:
            # The OPT record must directly follow the question and end the packet.
            n = len(data)
            if qend + 11 > n or data[qend] or data[qend + 1] or data[qend + 2] != 41 or data[qend + 6]:
                return None
            if qend + 11 + ((data[qend + 9] << 8) | data[qend + 10]) != n:
                return None
            if udp:
                max_size = (data[qend + 3] << 8) | data[qend + 4]
                if max_size < 512:
                    max_size = 512
                elif max_size > 1232:
                    max_size = 1232
            else:
                max_size = 65535
            if data[qend + 7] & 0x80:
                shape = 2
        elif qend != len(data):
            return None
        else:
            max_size = 512 if udp else 65535
        question = data[12:qend]
        entry = stores[shape].get(question.lower())
        if entry is None:
            return None
        now = _monotonic()
        if now >= entry.deadline:  # a second of age has passed, or the entry has ended
            if now >= entry.expires:
                return None
            entry.age_to(int(now - entry.stored))
        if entry.length > max_size or data[2] & 0x01 | data[3] & entry.mask != entry.flags:
            return None
        if question == entry.question:
            reply = data[:2] + entry.body
        elif data.startswith(entry.qtail, i + 1):  # a mixed-case name: the reply keeps its case
            body = entry.body
            reply = data[:2] + body[:10] + data[12:i + 1] + body[entry.qname_end - 2:]
        else:  # type or class bytes that lower() blurred
            return None
        limiter = self.limiter
        if limiter is not None and not limiter.admit(ip, now):
            return None
        # Telemetry gets (receipt time, client, entry, elapsed); it expands the entry when
        # draining, so a hit builds no record object here.
        self.ring.append((now, ip, entry, _monotonic() - now))
        return reply

    # ---- the slow path ------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def run_eagerly(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` at once, up to its first real wait; only then give it a Task.

        Most slow-path answers (blocked, local, cached, refused) never wait on anything, and a
        Task per query cost about a tenth of a fresh decision (py-spy, docs/benchmarks.md).
        Python 3.12's eager task factory does the same; 3.11 has none. Until the first wait the
        coroutine runs inside the caller (no current task), so code it reaches before waiting
        must not need one (``asyncio.timeout`` does; the chain reaches it only inside the
        cache stage's fetch task). UDP only: a TCP answer's completion reads the next pipelined
        message, which done eagerly would recurse once per message.
        """
        try:
            waiting = coro.send(None)
        except StopIteration:
            return
        task = asyncio.ensure_future(_finish(coro, waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(functools.partial(_unwind_if_cancelled, coro, waiting))

    async def handle(self, data: bytes, addr: tuple[Any, ...], transport: str,
                     send: Callable[[bytes], None]) -> None:
        """Answer one packet through the chain. Never raises."""
        mono = time.monotonic()
        ip, port = addr[0], addr[1]
        try:
            try:
                parsed = wire.parse_query(data)
            except wire.Drop:
                self.counters.dropped += 1
                return
            except wire.WireError as e:
                self.counters.formerr += 1
                reply = error_reply(data, e.rcode)
                if reply is not None:
                    send(reply)
                self._record_invalid(mono, ip, data, e.rcode)
                return
            info = self.clients.get(ip)
            if info is None:
                info = (self.acl.allowed(ip), self.view_of(ip))
                if len(self.clients) >= CLIENT_MEMO_MAX:
                    self.clients.clear()
                    self.fast_clients.clear()
                self.clients[ip] = info
                if info[0]:
                    self.fast_clients[ip] = self.fastpath.stores(info[1])
            query = Query(parsed, data, ip, port, transport, mono, info[1])
            max_size = query.max_udp if transport == "udp" else 65535
            sent = self.loop_ports.get(port) if transport == "udp" else None
            if sent is not None and sent[0] == parsed.id and sent[1] == query.qkey:
                # The very query one of our upstream sockets has in flight (its port, ID and
                # question): we are our own upstream. A stranger that merely shares the port
                # number gets an answer; the upstream is left out for a while (LOOP_SUSPECT_S).
                self.counters.loops += 1
                sent[2].suspect_loop()
                query.note("guard", "refused", source="loop_detector", detail="forwarding loop")
                answer = Answer(wire.REFUSED, Decision.REFUSED, ede=(wire.EDE_OTHER, "forwarding loop"))
            else:
                answer = await self.chain.resolve(query)
            if answer is DROP or answer is RATE_LIMIT_DROP:  # message.silent, inline
                self._record(query, answer, mono)
                return
            packet = render(query, answer, max_size)
            send(packet)
            self.remember(query, answer, packet, mono)
            self._record(query, answer, mono)
        except Exception:
            self.counters.errors += 1
            log.exception("error answering a query from %s", ip)
            try:
                reply = error_reply(data, wire.SERVFAIL)
                if reply is not None:
                    send(reply)
            except Exception:
                pass

    def remember(self, query: Query, answer: Answer, packet: bytes, mono: float) -> None:
        """Keep the reply ``packet`` just sent for ``query`` in the fast path, if replayable."""
        if answer.ttl is None or packet[2] & 0x02:  # never replay a truncated reply
            return
        shape = 0 if query.edns is None else (2 if query.edns.do else 1)
        base = 12 + len(query.question)
        self.fastpath.store(query.view, shape, packet[12:base].lower(), packet, 12 + len(query.qname),
                            tuple(map(base.__add__, answer.ttl_offsets)), answer.ttls, answer.ttl,
                            mono, query.name, query.qtype, answer.decision, answer.upstream,
                            tuple(query.trace), answer.ad and shape != 2)  # AD shown only to AD=1 then

    def _record(self, query: Query, answer: Answer, mono: float) -> None:
        self.ring.append(QueryRecord(mono, query.client_ip, query.name, query.qtype, answer.rcode,
                                     answer.decision, time.monotonic() - mono, answer.upstream,
                                     tuple(query.trace) if self.decision_trace else ()))

    def _record_invalid(self, mono: float, ip: str, data: bytes, rcode: int) -> None:
        name, qtype = "", 0
        try:
            end = wire.question_end(data, 12)
            name = wire.name_to_text(bytes(data[12:end]).lower())
            qtype = struct.unpack_from("!H", data, end)[0]
        except (wire.WireError, struct.error):
            pass
        self.ring.append(QueryRecord(mono, ip, name, qtype, rcode, Decision.INVALID,
                                     time.monotonic() - mono, "", ()))


async def _finish(coro: Coroutine[Any, Any, None], waiting: asyncio.Future[Any] | None) -> None:
    """Drive ``coro`` (started by DnsServer.run_eagerly) from its first wait to its end.

    What a coroutine yields to the loop is None (a bare yield, as in ``asyncio.sleep(0)``) or
    the future it waits on. Each is awaited here; then the coroutine is resumed as a Task
    would: the finished future's result or exception is read by the coroutine itself, and a
    cancellation of this task (server stop) is thrown into it.
    """
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                # The coroutine's await marked the future "blocking"; a Task clears the mark
                # when it takes the future over, and a future refuses a second await until then.
                waiting._asyncio_future_blocking = False
                await waiting
        except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, not swallowed
            ours = waiting is None or not waiting.done() or (
                isinstance(exc, asyncio.CancelledError) and not waiting.cancelled())
            if ours:
                try:
                    waiting = coro.throw(exc)
                except StopIteration:
                    return
                continue
        try:
            waiting = coro.send(None)
        except StopIteration:
            return


def _unwind_if_cancelled(coro: Coroutine[Any, Any, None], waiting: asyncio.Future[Any] | None,
                         task: asyncio.Future[None]) -> None:
    """A _finish task cancelled before its first step never resumed ``coro``: cancel what it
    waits on and the coroutine itself now, as a Task would, so its cleanup runs."""
    if not task.cancelled() or coro.cr_frame is None:  # type: ignore[attr-defined]  # a native coroutine
        return
    if waiting is not None:
        waiting.cancel()
    try:
        coro.throw(asyncio.CancelledError())
    except (StopIteration, asyncio.CancelledError):
        return
    except Exception:
        log.exception("error while cancelling a query in progress")
        return
    coro.close()  # it waits again while cancelled: the server is stopping, end it here


UDP_BATCH = 64  # datagrams read per wake-up before yielding to the loop (fairness vs. TCP, API)
UDP_MAX_QUERY = 4096  # bytes read per datagram; a longer "query" is junk and fails to parse


class UdpListener:
    """A UDP socket read directly from the loop's reader callback.

    Reading and replying with the socket's own recvfrom/sendto (instead of a transport) and
    draining up to UDP_BATCH datagrams per wake-up saves most of the per-packet loop overhead,
    which is what the fast path mostly costs. A reply that finds the send buffer full is
    dropped and counted: the client retries, as with any lost UDP datagram.
    """

    def __init__(self, server: DnsServer, family: int, host: str, port: int, shared: bool = False):
        self.server = server
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if shared:  # per-address sockets share a wildcard port (set_local_addresses); only
                # then, so a second server on the same specific address fails instead of sharing
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self.port = self.sock.getsockname()[1]
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.sock.fileno(), self._readable)
        self.send_errors = 0

    def _readable(self) -> None:
        server = self.server
        sock = self.sock
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        fast = server.fast
        received = 0
        try:
            for _ in range(UDP_BATCH):
                try:
                    data, addr = recvfrom(UDP_MAX_QUERY)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:  # e.g. an ICMP error queued on the socket: skip it, keep reading
                    server.counters.errors += 1
                    continue
                received += 1
                try:
                    reply = fast(data, addr[0], True)
                except Exception:  # the fast path must never take the listener down
                    server.counters.errors += 1
                    log.exception("fast path error")
                    reply = None
                if reply is None:
                    server.run_eagerly(server.handle(data, addr, "udp", functools.partial(self.send, addr=addr)))
                    continue
                try:
                    sendto(reply, addr)
                except OSError:  # full buffer or the client's address vanished: UDP may lose it
                    self.send_errors += 1
        finally:
            server.counters.udp += received

    def send(self, packet: bytes, addr: tuple[Any, ...]) -> None:
        try:
            self.sock.sendto(packet, addr)
        except OSError:  # full buffer or the client's address vanished: UDP may lose it
            self.send_errors += 1

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


class TcpProtocol(asyncio.Protocol):
    """DNS over TCP (RFC 7766): many queries per connection, pipelined, answered as ready.

    Slow clients cannot hold connections: the slots are shared per client address
    (dns/fairshare.py: at most ``max_tcp_per_client``, fewer as the slots run out), and a
    message must arrive whole within ``tcp_message_timeout`` of its first byte, whatever
    trickles in meanwhile (the idle timer alone restarted on every byte). A connection over a
    cap is accepted and closed at once (FIN), and counted.
    """

    def __init__(self, server: DnsServer):
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.pending = 0
        self.idle_timer: asyncio.TimerHandle | None = None
        self.message_timer: asyncio.TimerHandle | None = None  # armed while a message has begun but not ended
        self.counted = False
        self.peer: tuple[Any, ...] = ("", 0)  # the client's address, from connection_made on
        self.eof = False

    kind = "tcp"  # the transport a Query records ("dot" for DotProtocol)

    def _slots(self) -> tuple[FairShare, int]:
        """The slots this connection takes and their cap (per client: server.max_tcp_per_client)."""
        return self.server.tcp_slots, self.server.max_tcp_connections

    def _refused(self, full: bool) -> None:
        if full:
            self.server.counters.tcp_refused += 1
        else:
            self.server.counters.tcp_client_cap += 1

    def _idle_timeout(self) -> float:
        return self.server.tcp_idle_timeout

    def _count(self) -> None:
        self.server.counters.tcp += 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream server's transport (uvloop's is not an asyncio.Transport subclass, so no isinstance).
        self.transport = cast(asyncio.Transport, transport)
        server = self.server
        self.peer = transport.get_extra_info("peername")
        slots, cap = self._slots()
        if not slots.acquire(self.peer[0], cap, server.max_tcp_per_client):
            self._refused(slots.used >= cap)
            if self.transport.can_write_eof():  # TLS cannot half-close
                self.transport.write_eof()  # the FIN leaves first, even if a query is already waiting
            transport.close()
            return
        self.counted = True
        self._arm_idle()

    def _arm_idle(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        self.idle_timer = asyncio.get_running_loop().call_later(self._idle_timeout(), self._idle)

    def _idle(self) -> None:
        if self.pending == 0 and self.transport is not None:
            self.transport.close()
        else:
            self._arm_idle()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > TCP_MAX_BUFFER and self.pending >= TCP_MAX_PENDING:
            assert self.transport is not None  # data arrives only while connected
            self.transport.pause_reading()
        self._arm_idle()
        self._dispatch()

    def _dispatch(self) -> None:
        server = self.server
        while len(self.buffer) >= 2 and self.pending < TCP_MAX_PENDING:
            size = (self.buffer[0] << 8) | self.buffer[1]
            if len(self.buffer) < 2 + size:
                break
            msg = bytes(self.buffer[2:2 + size])
            del self.buffer[:2 + size]
            if self.message_timer is not None:  # that message came whole in time
                self.message_timer.cancel()
                self.message_timer = None
            self._count()
            try:
                reply = server.fast(msg, self.peer[0], False)
            except Exception:
                server.counters.errors += 1
                reply = None
            if reply is not None:
                self._send(reply)
                continue
            self.pending += 1
            server.spawn(self._slow(msg))
        if self.pending >= TCP_MAX_PENDING:
            assert self.transport is not None  # dispatched only while connected
            self.transport.pause_reading()
            if self.message_timer is not None:  # we stopped reading: the wait is ours, not theirs
                self.message_timer.cancel()
                self.message_timer = None
        elif self.buffer and self.message_timer is None:  # a message has begun: it has until then
            self.message_timer = asyncio.get_running_loop().call_later(server.tcp_message_timeout,
                                                                       self._too_slow)

    def _too_slow(self) -> None:
        self.message_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.server.counters.tcp_deadline += 1
            log.debug("DNS over TCP: %s did not send a whole message in %.1f s; closed",
                      self.peer[0], self.server.tcp_message_timeout)
            self.transport.close()

    async def _slow(self, msg: bytes) -> None:
        try:
            await self.server.handle(msg, self.peer, self.kind, self._send)
        finally:
            self.pending -= 1
            if self.transport is not None and not self.transport.is_closing():
                if self.eof and self.pending == 0:
                    self.transport.close()
                else:
                    self.transport.resume_reading()
                    self._dispatch()

    def _send(self, packet: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(struct.pack("!H", len(packet)) + packet)

    def eof_received(self) -> bool | None:
        # The client is done sending; finish the answers still in progress, then close.
        self.eof = True
        if self.pending == 0:
            return None
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self.message_timer is not None:
            self.message_timer.cancel()
            self.message_timer = None
        if self.counted:
            self._slots()[0].release(self.peer[0])
            self.counted = False
        self.transport = None


class DotProtocol(TcpProtocol):
    """DNS over TLS (RFC 7858): DNS over TCP inside TLS, so everything of TcpProtocol holds
    (pipelining, answers as ready, the message deadline, the per-client share), with its own
    slots (``tls.dot_max_connections``) and idle time (``tls.dot_idle_timeout``; RFC 7858 §3.4
    asks servers to let connections live longer than plain TCP's). The loop hands it the
    connection once the handshake is done; the client is the TLS peer's address."""

    kind = "dot"

    def _slots(self) -> tuple[FairShare, int]:
        return self.server.dot_slots, self.server.max_dot_connections

    def _refused(self, full: bool) -> None:
        if full:
            self.server.counters.dot_refused += 1
        else:
            self.server.counters.dot_client_cap += 1

    def _idle_timeout(self) -> float:
        return self.server.dot_idle_timeout

    def _count(self) -> None:
        self.server.counters.dot += 1
