"""Encrypted upstreams, the common part and DNS over TLS (RFC 7858).

``Encryption`` is what every pool's encrypted servers share: the TLS client context (the
system's CA store, or ``upstream.ca_file``), the bootstrap resolver that finds a host name's
addresses, and a generation that moves when either changes (connections of an older one are
not reused). ``transport(spec)`` makes a server's transport: :class:`DotTransport` here,
``DohTransport`` in upstream_doh.py. Both have ``exchange(packet, question, timeout)`` → the
reply whose ID is the packet's (the pool then checks the question, as for UDP) and raise
``asyncio.TimeoutError``, ``OSError`` (refused, reset, a certificate that fails the check:
``ssl.SSLError`` is one) or :class:`TransportError`; the pool counts each as a transport
failure of that server, as it does for plain ones.

DoT keeps up to DOT_MAX_CONNECTIONS connections per server, each carrying up to
DOT_MAX_INFLIGHT queries at once (pipelined, answered in any order, matched by ID; an ID is
never used twice at once on one connection). A query takes the least busy connection with room
and a new one opens only when all are full; past both caps it waits for room within its
timeout. A connection nobody used for IDLE_TIMEOUT is closed (before a typical server's 30 s),
and one the server closed is replaced by the next query. A query lost because the server
closed a connection that had served earlier queries (its idle close racing our send) is sent
again once on a fresh connection: that is the server's housekeeping, not a failure.

Certificates are checked (``ssl.create_default_context``: chain to a trusted CA, the name or
address, the dates); a ``?pin=`` also needs the leaf certificate's SubjectPublicKeyInfo to hash
to the pin (SHA-256), compared after the handshake, before any query is sent.

The bootstrap (:class:`Bootstrap`) asks plain servers (``upstream.bootstrap``, else the plain
entries of ``upstream_dns_servers``) for A, then AAAA, and keeps the addresses for their TTL
(BOOTSTRAP_MIN_TTL..BOOTSTRAP_MAX_TTL); when it cannot ask, addresses it had are used again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from ..config.upstream_spec import HTTPS, TLS, UpstreamSpec
from . import wire

log = logging.getLogger(__name__)

DOT_MAX_CONNECTIONS = 2  # TLS connections per DoT upstream
DOT_MAX_INFLIGHT = 64  # queries in flight on one DoT connection
IDLE_TIMEOUT = 25.0  # seconds an unused encrypted connection stays open
BOOTSTRAP_MIN_TTL = 60.0  # seconds a bootstrap answer is kept at least ...
BOOTSTRAP_MAX_TTL = 3600.0  # ... and at most
BOOTSTRAP_MAX_NAMES = 64  # host names remembered by the bootstrap
MAX_ADDRESSES = 4  # addresses of one host name tried per connection attempt


class TransportError(Exception):
    """The server was reached but the exchange failed (a pin mismatch, an HTTP error, a closed
    connection); ``ede`` is the Extended DNS Error to report."""

    def __init__(self, message: str, ede: int = wire.EDE_NETWORK_ERROR):
        super().__init__(message)
        self.ede = ede


class Transport(Protocol):
    spec: UpstreamSpec

    async def exchange(self, packet: bytes, timeout: float) -> bytes: ...

    def snapshot(self) -> dict[str, object]: ...

    def close(self) -> None: ...


# ---- certificates -------------------------------------------------------------------------------

def _der_item(data: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of contents, end) of the DER item at ``i``."""
    if i + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[i], data[i + 1]
    i += 2
    if length & 0x80:
        n = length & 0x7F
        if not 0 < n <= 4 or i + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[i:i + n], "big")
        i += n
    if i + length > len(data):
        raise ValueError("DER item runs past its end")
    return tag, i, i + length


def spki_der(cert_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo of a DER certificate (RFC 5280 §4.1): Certificate → tbsCertificate
    → [0] version (optional), serial, signature, issuer, validity, subject, subjectPublicKeyInfo."""
    tag, start, _ = _der_item(cert_der, 0)
    if tag != 0x30:
        raise ValueError("not a certificate")
    tag, i, _ = _der_item(cert_der, start)
    if tag != 0x30:
        raise ValueError("no tbsCertificate")
    tag, _, end = _der_item(cert_der, i)
    if tag == 0xA0:  # explicit version
        i = end
    for _ in range(5):  # serial, signature, issuer, validity, subject
        _, _, i = _der_item(cert_der, i)
    tag, _, end = _der_item(cert_der, i)
    if tag != 0x30:
        raise ValueError("no subjectPublicKeyInfo")
    return cert_der[i:end]


def spki_sha256(cert_der: bytes) -> bytes:
    """The pin of a certificate: SHA-256 of its SubjectPublicKeyInfo (RFC 7469 §2.4)."""
    return hashlib.sha256(spki_der(cert_der)).digest()


def check_pin(spec: UpstreamSpec, ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> None:
    """Raise TransportError unless the peer's certificate matches ``spec.pin`` (if it has one)."""
    if spec.pin is None:
        return
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    try:
        got = spki_sha256(der) if der else b""
    except ValueError:
        got = b""
    if not hmac.compare_digest(got, spec.pin):
        raise TransportError(f"certificate key does not match the pin (got {got.hex()[:16] or 'none'}...)")


# ---- bootstrap ----------------------------------------------------------------------------------

Ask = Callable[[bytes], Awaitable[bytes]]  # a question (name + type + class) → the reply


class Bootstrap:
    """Host names of encrypted upstreams → addresses, through plain servers (module doc)."""

    def __init__(self, ask: Ask | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.ask = ask
        self.clock = clock
        self._known: dict[str, tuple[list[str], float]] = {}  # name → (addresses, fresh until)
        self._asking: dict[str, asyncio.Future[list[str]]] = {}

    async def addresses(self, host: str) -> list[str]:
        known = self._known.get(host)
        if known is not None and self.clock() < known[1]:
            return known[0]
        fut = self._asking.get(host)
        if fut is None:
            fut = asyncio.ensure_future(self._resolve(host))
            self._asking[host] = fut
            fut.add_done_callback(lambda _f: self._asking.pop(host, None))
        return await asyncio.shield(fut)

    async def _resolve(self, host: str) -> list[str]:
        stale = self._known.get(host)
        try:
            if self.ask is None:
                raise TransportError(f"no bootstrap resolver to find {host} (set upstream.bootstrap)",
                                     wire.EDE_NO_REACHABLE_AUTHORITY)
            found: list[str] = []
            ttl = BOOTSTRAP_MAX_TTL
            for rtype, size, family in ((1, 4, socket.AF_INET), (28, 16, socket.AF_INET6)):
                question = wire.text_to_name(host) + struct.pack("!HH", rtype, 1)
                reply = await self.ask(question)
                an = struct.unpack_from("!H", reply, 6)[0]
                rrs, _ = wire.read_rrs(reply, 12 + len(question), an)
                for rr in rrs:
                    if rr.rtype == rtype and rr.rdlen == size:
                        found.append(socket.inet_ntop(family, reply[rr.rdata_offset:rr.end]))
                        ttl = min(ttl, rr.ttl)
                if found:
                    break
            if not found:
                raise TransportError(f"the bootstrap found no address for {host}", wire.EDE_NO_REACHABLE_AUTHORITY)
        except Exception as e:  # noqa: BLE001 - any failure: the addresses we had, if any
            if stale is not None:
                log.warning("bootstrap: cannot resolve %s (%s); using its last addresses", host, e)
                return stale[0]
            if isinstance(e, (TransportError, asyncio.TimeoutError)):
                raise
            raise TransportError(f"bootstrap for {host} failed: {e}", getattr(e, "ede", wire.EDE_NETWORK_ERROR)) \
                from None
        if len(self._known) >= BOOTSTRAP_MAX_NAMES and host not in self._known:
            del self._known[next(iter(self._known))]
        self._known[host] = (found, self.clock() + min(BOOTSTRAP_MAX_TTL, max(BOOTSTRAP_MIN_TTL, ttl)))
        return found


# ---- what every encrypted server shares ------------------------------------------------------------

class Encryption:
    """TLS context, bootstrap and generation shared by every pool's encrypted servers."""

    def __init__(self, ca_file: str = "", bootstrap: Bootstrap | None = None) -> None:
        self.ca_file = ca_file
        self.bootstrap = bootstrap or Bootstrap()
        self.generation = 0
        self._contexts: dict[str, ssl.SSLContext] = {}

    def configure(self, ca_file: str, ask: Ask | None) -> None:
        if ca_file != self.ca_file:
            self.ca_file = ca_file
            self._contexts.clear()
            self.generation += 1  # connections checked against the old CAs are not reused
        self.bootstrap.ask = ask

    def context(self, scheme: str) -> ssl.SSLContext:
        ctx = self._contexts.get(scheme)
        if ctx is None:
            ctx = ssl.create_default_context(cafile=self.ca_file or None)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if scheme == HTTPS:
                ctx.set_alpn_protocols(["h2", "http/1.1"])  # upstream_doh.py speaks both
            self._contexts[scheme] = ctx
        return ctx

    async def addresses(self, spec: UpstreamSpec) -> list[str]:
        if spec.host_is_address:
            return [spec.host]
        return (await self.bootstrap.addresses(spec.host))[:MAX_ADDRESSES]

    async def connect(self, spec: UpstreamSpec, limit: int = 65536) -> tuple[asyncio.StreamReader,
                                                                             asyncio.StreamWriter]:
        """A checked TLS connection to ``spec`` (its addresses in turn); the caller's timeout
        bounds it. Raises OSError (ssl.SSLError included) or TransportError."""
        last: Exception | None = None
        context = self.context(spec.scheme)
        for address in await self.addresses(spec):
            try:
                reader, writer = await asyncio.open_connection(
                    address, spec.port, ssl=context, server_hostname=spec.server_name or address, limit=limit)
            except ssl.SSLCertVerificationError as e:
                raise TransportError(f"certificate refused: {e.verify_message or e.reason}") from None
            except OSError as e:
                last = e
                continue
            try:
                check_pin(spec, writer.get_extra_info("ssl_object"))
            except TransportError:
                writer.close()
                raise
            return reader, writer
        raise last if last is not None else TransportError(f"no address for {spec.host}")

    def transport(self, spec: UpstreamSpec) -> Transport:
        if spec.scheme == TLS:
            return DotTransport(spec, self)
        from .upstream_doh import DohTransport
        return DohTransport(spec, self)


# ---- DNS over TLS ---------------------------------------------------------------------------------

class _Closed(Exception):
    """The connection ended before the answer came."""


class _DotConnection:
    __slots__ = ("transport", "reader", "writer", "pending", "served", "closed", "generation", "idle",
                 "reader_task")

    def __init__(self, transport: DotTransport, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 generation: int) -> None:
        self.transport = transport
        self.reader = reader
        self.writer = writer
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.served = 0  # answers received
        self.closed = False
        self.generation = generation
        self.idle: asyncio.TimerHandle | None = None
        self.reader_task = asyncio.ensure_future(self._read())
        self._idle_later()

    async def ask(self, packet: bytes) -> bytes:
        qid = struct.unpack_from("!H", packet)[0]
        while qid in self.pending:  # one ID once at a time on a connection
            qid = secrets.randbits(16)
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending[qid] = fut
        try:
            self.writer.write(struct.pack("!HH", len(packet), qid) + packet[2:])
            await self.writer.drain()
            reply = await fut
        finally:
            if self.pending.get(qid) is fut:
                del self.pending[qid]
            if not self.pending:
                self._idle_later()
            self.transport.room.set()
        return struct.pack("!H", struct.unpack_from("!H", packet)[0]) + reply[2:]

    async def _read(self) -> None:
        reason: BaseException = _Closed("connection closed by the server")
        try:
            while True:
                size = struct.unpack("!H", await self.reader.readexactly(2))[0]
                data = await self.reader.readexactly(size)
                if size < 12:
                    continue
                fut = self.pending.pop(struct.unpack_from("!H", data)[0], None)
                if fut is None or fut.done():
                    self.transport.stray += 1  # an ID we are not waiting for
                    continue
                self.served += 1
                fut.set_result(data)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError) as e:
            if not isinstance(e, asyncio.IncompleteReadError) or e.partial:
                reason = _Closed(f"connection lost: {e}")
        except asyncio.CancelledError:
            reason = _Closed("connection closed")
        finally:
            self.close(reason)

    def _idle_later(self) -> None:
        if not self.closed:
            self.idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self.close)

    def close(self, reason: BaseException | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        if self.idle is not None:
            self.idle.cancel()
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(reason or _Closed("connection closed"))
        self.pending.clear()
        self.writer.close()
        if not self.reader_task.done() and self.reader_task is not asyncio.current_task():
            self.reader_task.cancel()
        self.transport.forget(self)


class DotTransport:
    """DNS over TLS to one server: persistent, pipelined connections (module doc)."""

    def __init__(self, spec: UpstreamSpec, encryption: Encryption) -> None:
        self.spec = spec
        self.encryption = encryption
        self.connections: list[_DotConnection] = []
        self.room = asyncio.Event()  # set whenever a query ends or a connection goes
        self._connecting: asyncio.Future[None] | None = None
        self.opened = 0  # connections opened, ever
        self.stray = 0  # replies with an ID nobody waited for

    async def exchange(self, packet: bytes, timeout: float) -> bytes:
        async with asyncio.timeout(timeout):
            for retry in (False, True):
                conn = await self._connection()
                reused = conn.served > 0
                try:
                    return await conn.ask(packet)
                except _Closed as e:
                    if retry or not reused:
                        raise TransportError(str(e)) from None
                except (ConnectionError, OSError):  # the send failed: it went, or is going
                    conn.close()
                    if retry or not reused:
                        raise
        raise AssertionError("unreachable")

    async def _connection(self) -> _DotConnection:
        """The least busy connection with room; a new one only when every one is full."""
        while True:
            generation = self.encryption.generation
            best: _DotConnection | None = None
            current = 0
            for conn in list(self.connections):
                if conn.generation != generation:  # checked against other CAs: not reused
                    if not conn.pending:
                        conn.close()
                    continue
                current += 1
                if len(conn.pending) < DOT_MAX_INFLIGHT and (best is None or len(conn.pending) < len(best.pending)):
                    best = conn
            if best is not None:
                return best
            if self._connecting is not None:
                await asyncio.shield(self._connecting)
            elif current < DOT_MAX_CONNECTIONS:
                await self._open()
            else:
                self.room.clear()
                await self.room.wait()

    async def _open(self) -> None:
        """Open one connection; queries waiting meanwhile share its outcome (a server that
        cannot be reached fails them all at once, not one connection attempt each)."""
        fut = self._connecting = asyncio.get_running_loop().create_future()
        try:
            reader, writer = await self.encryption.connect(self.spec)
            self.connections.append(_DotConnection(self, reader, writer, self.encryption.generation))
            self.opened += 1
        except BaseException as e:
            if not isinstance(e, asyncio.CancelledError):
                fut.set_exception(e)
                fut.exception()  # retrieved: nobody need be waiting
            raise
        finally:
            self._connecting = None
            if not fut.done():
                fut.set_result(None)

    def forget(self, conn: _DotConnection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
        self.room.set()

    def snapshot(self) -> dict[str, object]:
        return {"connections": len(self.connections), "connections_opened": self.opened,
                "in_flight": sum(len(c.pending) for c in self.connections)}

    def close(self) -> None:
        for conn in list(self.connections):
            conn.close()
