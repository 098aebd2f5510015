"""Forwarding to upstream resolvers: health, failover, TCP fallback, forgery resilience.

Every upstream query uses a fresh UDP socket connected to the server, so the kernel picks a
random source port and delivers only datagrams from that exact address and port (RFC 5452,
the DNSpooq lessons); the ID is random and the reply's question must match ours. Identical
questions in flight are coalesced into one upstream query, which also keeps a forwarding loop
from multiplying traffic.

Health follows the transport only. A server that answers is reachable, whatever the rcode:
its SERVFAIL or REFUSED is relayed as an error for that question (another server is asked
first, as dnsmasq and AdGuard Home do) but says nothing about the server. Timeouts, ICMP
errors and unusable replies are failures; a state change needs a sustained condition
(see DOWN_AFTER_FAILURES, UP_AFTER_ANSWERS), and the count people see changes at most once
per REPORT_MIN_DWELL, so the status LED and /readyz never flap.

Nobody can starve the others of upstream slots (issue 20): the in-flight budget is shared
per client (dns/fairshare.py: a client holds at most ``max_inflight_share`` of it, and less as
the pool fills), and a question that keeps timing out costs less each time (RFC 9520 §3):
a small memo of questions whose every attempt timed out gives the next query for one of them
a shorter timeout and one attempt per server, and after a second such failure answers it
SERVFAIL at once for a while that doubles with each further one (TIMEOUT_HOLD_*).

A server given as tls:// or https:// (config/upstream_spec.py) has a transport instead of its
UDP socket (dns/upstream_tls.py, dns/upstream_doh.py): persistent, checked TLS connections.
Everything above holds for it unchanged; its failures (a refused certificate, a pin mismatch,
an HTTP error) are transport failures like a timeout.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import random
import secrets
import socket
import struct
import time
from typing import Callable

from collections.abc import Sequence

from ..config.upstream_spec import HTTPS, PLAIN, TLS, UpstreamSpec
from . import wire
from .fairshare import FairShare, per_client_cap
from .upstream_tls import Encryption, Transport, TransportError
from dataclasses import dataclass

log = logging.getLogger(__name__)

_SYSRAND = random.SystemRandom()
TCP_MAX_MESSAGE = 65535
DOWN_AFTER_FAILURES = 3  # consecutive transport failures (timeouts, unreachable, bad replies) ...
DOWN_AFTER_SECONDS = 5.0  # ... spanning at least this long before a server is reported down
UP_AFTER_ANSWERS = 3  # consecutive answers (any rcode) before a down server is reported up again
DOWN_BACKOFF_MAX = 60.0  # seconds a failing server waits before it is preferred (or probed) again
REPORT_MIN_DWELL = 10.0  # seconds the reported healthy count holds before it may change again:
# the status LED, /readyz and /api/system follow it, and a person must be able to read an LED
LOOP_SUSPECT_S = 60.0  # seconds an upstream is left out after one of our own queries came back
ERROR_RCODES = {wire.SERVFAIL: "SERVFAIL", wire.REFUSED: "REFUSED", wire.NOTIMP: "NOTIMP",
                wire.FORMERR: "FORMERR"}  # answers that are no answer: try another server
MAX_INFLIGHT_SHARE = 0.25  # default share of max_inflight one client may hold (upstream.max_inflight_share)
TIMEOUT_MEMO_MAX = 1024  # questions whose every attempt timed out, remembered (oldest dropped past it)
TIMEOUT_MEMO_TTL = 60.0  # seconds a question's timeouts are remembered after the last one
TIMEOUT_HOLD_BASE = 2.0  # seconds a question is answered SERVFAIL at once after its second timeout ...
TIMEOUT_HOLD_MAX = 30.0  # ... doubling with each further one up to this (RFC 9520 §3.2: a backoff)
SHORT_TIMEOUT_MIN = 0.25  # floor of the shortened per-attempt timeout for such a question
PROTOCOLS = {PLAIN: "udp", TLS: "tls", HTTPS: "https"}  # as the health snapshot names them


@dataclass
class UpstreamSettings:
    timeout: float = 2.0  # seconds per attempt
    max_attempts: int = 3  # attempts per query, across servers
    max_inflight: int = 1024  # cap on concurrent upstream queries (sockets)
    failover: bool = True  # False: only the first configured server is asked (conditional rules)
    max_inflight_share: float = MAX_INFLIGHT_SHARE  # fraction of max_inflight one client may hold


class UpstreamError(Exception):
    """No usable answer. ``ede`` is the Extended DNS Error code to report, ``text`` its text
    (the upstream's own EDE text when it answered with one; else the message). ``busy``: not
    asked at all, for want of an in-flight slot; says nothing about the question."""

    def __init__(self, message: str, ede: int = wire.EDE_NETWORK_ERROR, text: str | None = None,
                 busy: bool = False):
        super().__init__(message)
        self.ede = ede
        self.text = message if text is None else text
        self.busy = busy


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


def reply_ede(reply: bytes, qend: int) -> tuple[int, str] | None:
    """The first Extended DNS Error (RFC 8914) in a reply's OPT record, or None.

    Read only for error answers, to relay the upstream's own reason instead of inventing one.
    """
    try:
        an, ns, ar = struct.unpack_from("!HHH", reply, 6)
        rrs, _ = wire.read_rrs(reply, qend, an + ns + ar)
    except (wire.WireError, struct.error):
        return None
    for rr in rrs[an + ns:]:
        if rr.rtype != wire.TYPE_OPT:
            continue
        i = rr.rdata_offset
        while i + 4 <= rr.end:
            code, size = struct.unpack_from("!HH", reply, i)
            if code == wire.OPT_EDE and size >= 2 and i + 4 + size <= rr.end:
                text = reply[i + 6:i + 4 + size].decode("utf-8", "replace").rstrip("\x00")
                return struct.unpack_from("!H", reply, i + 4)[0], text
            i += 4 + size
    return None


class Upstream:
    """One server and its health: smoothed RTT, failure streak, back-off, verdict.

    ``down`` is the reported verdict, with hysteresis: it turns on after DOWN_AFTER_FAILURES
    consecutive transport failures that span DOWN_AFTER_SECONDS, and off after UP_AFTER_ANSWERS
    consecutive answers. Routing reacts sooner: from DOWN_AFTER_FAILURES failures on, the
    server is tried last during a back-off that doubles up to DOWN_BACKOFF_MAX.
    """

    __slots__ = ("host", "port", "family", "label", "srtt", "failures", "first_failure", "answers",
                 "down", "down_until", "probing", "queries", "errors", "timeouts", "error_answers",
                 "last_error", "loop_until", "clock", "on_verdict", "spec", "transport")

    def __init__(self, host: str, port: int, clock: Callable[[], float] = time.monotonic,
                 spec: UpstreamSpec | None = None, transport: Transport | None = None):
        self.host = host
        self.port = port
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.spec = spec or UpstreamSpec(PLAIN, host, port, text=self.label)
        self.transport = transport  # DoT or DoH (dns/upstream_tls.py); None: UDP, TCP when truncated
        if transport is not None:
            self.label = self.spec.text  # the URL as configured, canonical
        self.clock = clock
        self.srtt = 0.05
        self.failures = 0  # consecutive transport failures
        self.first_failure = 0.0  # when the current streak of failures began
        self.answers = 0  # consecutive answers
        self.down = False
        self.down_until = 0.0
        self.probing = False
        self.queries = 0
        self.errors = 0
        self.timeouts = 0
        self.error_answers = 0  # SERVFAIL, REFUSED, ... answers: reachable, but no answer
        self.last_error = ""
        self.loop_until = 0.0  # a suspected forwarding loop leaves the server out until then
        self.on_verdict: Callable[[], None] | None = None  # ``healthy`` may have flipped (set by the pool)

    @property
    def healthy(self) -> bool:
        return not self.down and not self.loop_detected

    @property
    def loop_detected(self) -> bool:
        return self.loop_active(self.clock())

    @loop_detected.setter
    def loop_detected(self, value: bool) -> None:
        # Set at start-up when the configuration names one of our own listeners: that stays.
        self.loop_until = math.inf if value else 0.0

    def loop_active(self, now: float) -> bool:
        if not self.loop_until:
            return False
        if now < self.loop_until:
            return True
        self.loop_until = 0.0
        log.warning("upstream %s: no forwarding loop seen for %d s; using it again", self.label,
                    LOOP_SUSPECT_S)
        return False

    def suspect_loop(self) -> None:
        """One of our own queries to this server came back to us: leave it out for a while."""
        now = self.clock()
        started = not self.loop_active(now)
        if started:
            log.error("forwarding loop: upstream %s sent our own query back to us; not used for %d s",
                      self.label, LOOP_SUSPECT_S)
        self.loop_until = max(self.loop_until, now + LOOP_SUSPECT_S)
        if started:
            self._verdict()

    def answered(self, rtt: float, now: float) -> None:
        """A reply came back (any rcode): the server is reachable."""
        self.srtt = self.srtt * 0.7 + rtt * 0.3
        self.failures = 0
        self.down_until = 0.0
        self.answers += 1
        if self.down and self.answers >= UP_AFTER_ANSWERS:
            self.down = False
            log.warning("upstream %s answers again: healthy", self.label)
            self._verdict()

    def failed(self, reason: str, now: float) -> None:
        """A transport failure: timeout, ICMP error, unusable reply."""
        self.errors += 1
        self.last_error = reason
        self.answers = 0
        if not self.failures:
            self.first_failure = now
        self.failures += 1
        if self.failures >= DOWN_AFTER_FAILURES:
            self.down_until = now + min(DOWN_BACKOFF_MAX, 2.0 ** (self.failures - DOWN_AFTER_FAILURES))
            if not self.down and now - self.first_failure >= DOWN_AFTER_SECONDS:
                self.down = True
                log.warning("upstream %s is down: %d failures in a row over %.0f s (last: %s)",
                            self.label, self.failures, now - self.first_failure, reason)
                self._verdict()

    def _verdict(self) -> None:
        if self.on_verdict is not None:
            self.on_verdict()

    @property
    def key(self) -> str:
        """What identifies the server across configuration changes: its canonical text."""
        return self.spec.text

    def snapshot(self) -> dict[str, object]:
        snap: dict[str, object] = {
            "address": self.label, "protocol": PROTOCOLS[self.spec.scheme], "healthy": self.healthy,
            "srtt_ms": round(self.srtt * 1000, 2), "queries": self.queries, "errors": self.errors,
            "timeouts": self.timeouts, "error_answers": self.error_answers,
            "consecutive_failures": self.failures, "last_error": self.last_error,
            "loop_detected": self.loop_detected}
        if self.transport is not None:
            snap.update(self.transport.snapshot())
        return snap


class _Pending:
    """One UDP attempt in flight: the future and what a genuine reply must look like."""

    __slots__ = ("fut", "sock", "qid", "question", "timer", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, qid: int, question: bytes):
        self.loop = loop
        self.fut: asyncio.Future[bytes] = loop.create_future()
        self.sock = sock
        self.qid = qid
        self.question = question
        self.timer: asyncio.TimerHandle | None = None

    def on_readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(TCP_MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # ICMP port unreachable arrives here on a connected socket
                if not self.fut.done():
                    self.fut.set_exception(UpstreamError(f"{errno.errorcode.get(e.errno or 0, e)}"))
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
    """Sends questions to the best healthy server, failing over on timeouts and errors.

    ``local_ports`` maps the source port of each UDP query in flight to (ID, question,
    server): a query that arrives with exactly that triple is our own come back (a loop).
    ``slots`` shares the in-flight budget among clients; ``_timeouts`` maps a question whose
    every attempt timed out to (strikes, held until, forgotten at).
    """

    def __init__(self, servers: Sequence[tuple[str, int] | UpstreamSpec], settings: UpstreamSettings,
                 clock: Callable[[], float] = time.monotonic, encryption: Encryption | None = None):
        self.clock = clock
        self.encryption = encryption or Encryption()  # TLS context and bootstrap (upstream_tls.py)
        self._servers: list[Upstream] = []
        self._on_report: Callable[[], None] | None = None  # healthy_count changed (see watch)
        self._report_timer: asyncio.TimerHandle | None = None  # a held-back change: look again then
        self.servers = [self.make_server(s) for s in servers]
        self.settings = settings
        self.slots = FairShare()
        self._timeouts: dict[bytes, tuple[int, float, float]] = {}
        self.timeout_held = 0  # queries answered at once from the timeout memo
        self.local_ports: dict[int, tuple[int, bytes, Upstream]] = {}
        self.wrong_replies = 0
        self._reported = len(self.servers)  # healthy_count as shown (see REPORT_MIN_DWELL)
        self._reported_at = -math.inf
        self._probes: set[asyncio.Task[None]] = set()

    def make_server(self, server: tuple[str, int] | UpstreamSpec) -> Upstream:
        """An Upstream for ``server``: (host, port) or a parsed entry (an encrypted one gets its
        transport, which shares this pool's Encryption)."""
        if not isinstance(server, UpstreamSpec):
            return Upstream(server[0], server[1], self.clock)
        transport = self.encryption.transport(server) if server.encrypted else None
        return Upstream(server.host, server.port, self.clock, server, transport)

    def close(self) -> None:
        """Close the encrypted servers' connections (at shutdown; a server left out of a new
        configuration closes its own once idle)."""
        for server in self._servers:
            if server.transport is not None:
                server.transport.close()

    def order(self, now: float) -> list[Upstream]:
        """Servers to try, best first: healthy ones by smoothed RTT (with jitter), then the rest."""
        def score(s: Upstream) -> tuple[int, float]:
            if s.loop_active(now):
                penalty = 2
            elif s.down or now < s.down_until:
                penalty = 1
            else:
                penalty = 0
            return (penalty, s.srtt * (0.8 + 0.4 * _SYSRAND.random()))

        return sorted(self._servers, key=score)

    @property
    def inflight(self) -> int:
        return self.slots.used

    @property
    def servers(self) -> list[Upstream]:
        return self._servers

    @servers.setter
    def servers(self, servers: list[Upstream]) -> None:
        # Each server tells the pool when its verdict flips (see watch).
        self._servers = list(servers)
        for server in self._servers:
            server.on_verdict = self._verdict_changed
        if self._on_report is not None:
            self._verdict_changed()

    @property
    def healthy_count(self) -> int:
        """Healthy servers as people see them: the live count, changed at most once per
        REPORT_MIN_DWELL (the first change after a quiet spell shows at once)."""
        live = sum(1 for s in self._servers if s.healthy)
        if live != self._reported:
            now = self.clock()
            if now - self._reported_at >= REPORT_MIN_DWELL:
                self._reported, self._reported_at = live, now
                # Whoever looks first (/readyz, the dwell timer, a verdict) makes the change,
                # and the watcher hears of it then: a reader must not swallow it.
                if self._on_report is not None:
                    self._on_report()
        return self._reported

    def watch(self, on_report: Callable[[], None]) -> None:
        """Call ``on_report()`` whenever :attr:`healthy_count` changes, as it happens: a verdict
        flipped, a change held back by REPORT_MIN_DWELL became due, a loop's hold ended. The
        status LED and /readyz follow it without asking every second. Runs on the loop."""
        self._on_report = on_report

    def _verdict_changed(self) -> None:
        if self._on_report is None:
            return
        if self._report_timer is not None:
            self._report_timer.cancel()
            self._report_timer = None
        count = self.healthy_count  # tells the watcher if the shown count changed
        now = self.clock()
        due = [s.loop_until for s in self._servers if now < s.loop_until < math.inf]  # holds that end
        if sum(1 for s in self._servers if s.healthy) != count:
            due.append(self._reported_at + REPORT_MIN_DWELL)  # held back by the dwell
        if due:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._report_timer = loop.call_later(max(0.0, min(due) - now) + 0.01, self._verdict_changed)

    async def query(self, question: bytes, qflags: int, do: bool,
                    servers: list[Upstream] | None = None, client: str | None = None) -> tuple[bytes, Upstream]:
        """Ask upstream; returns (reply packet, server). Raises UpstreamError when all fail.

        ``question`` is the lower-case question (name + type + class) we expect echoed back.
        A server that answers SERVFAIL, REFUSED, NOTIMP or FORMERR is not asked again for this
        question; the next one is. When nobody gives a usable answer, the error carries the
        last such answer's own EDE (or EDE 0 naming the rcode), and EDE 22 "No Reachable
        Authority" only when no server answered at all.

        ``client`` (the asking client's address) is charged one slot of the in-flight budget
        while the query is out; over its share it gets an error at once. None (Burrow's own
        questions, e.g. a list server's name) is held to the pool's cap only.
        """
        now = self.clock()
        strikes = self._strikes(question, now)  # raises while the question is held back
        settings = self.settings
        total = settings.max_inflight
        if not self.slots.acquire(client, total, per_client_cap(total, settings.max_inflight_share)):
            if self.slots.used >= total:
                raise UpstreamError("too many upstream queries in flight", wire.EDE_OTHER, busy=True)
            raise UpstreamError("too many upstream queries in flight from this client", wire.EDE_OTHER,
                                busy=True)
        try:
            return await self._query(question, qflags, do, servers, now, strikes)
        finally:
            self.slots.release(client)

    async def _query(self, question: bytes, qflags: int, do: bool, servers: list[Upstream] | None,
                     now: float, strikes: int) -> tuple[bytes, Upstream]:
        if servers is not None:
            order = servers
        elif self.settings.failover:
            order = self.order(now)
            self._probe_down(order, question, qflags, do, now)
        else:
            order = self._servers[:1]  # retries only ever go to the first server
        if not order:
            raise UpstreamError("no upstream servers configured", wire.EDE_NO_REACHABLE_AUTHORITY)
        said_no: dict[Upstream, bytes] = {}  # server → its error answer; not asked again
        last: UpstreamError | None = None
        any_timeout = False
        only_timeouts = True
        timeout, attempts = self.settings.timeout, self.settings.max_attempts
        if strikes:  # this question timed out lately: ask each server once, for less long
            timeout = max(min(timeout, SHORT_TIMEOUT_MIN), timeout / 2 ** strikes)
            attempts = min(attempts, len(order))
        for i in range(attempts):
            server = order[i % len(order)]
            if server in said_no or (server.loop_detected and len(order) > 1):
                continue
            try:
                reply = await self._attempt(server, question, qflags, do, timeout)
            except asyncio.TimeoutError:
                any_timeout = True
                last = UpstreamError(f"{server.label} timed out", wire.EDE_NO_REACHABLE_AUTHORITY)
                continue
            except UpstreamError as e:
                only_timeouts = False
                last = e
                continue
            self._timeouts.pop(question, None)  # a server answered it: no longer suspect
            if reply[3] & 0xF in ERROR_RCODES:
                server.error_answers += 1
                said_no[server] = reply
                continue
            return reply, server
        if any_timeout and only_timeouts and not said_no:
            self._timed_out(question, self.clock())
        if said_no:
            server, reply = list(said_no.items())[-1]
            raise _error_answer(server, reply, 12 + len(question))
        if last is not None:
            if any_timeout:
                last.ede = wire.EDE_NO_REACHABLE_AUTHORITY
            raise last
        raise UpstreamError("no upstream servers available", wire.EDE_NO_REACHABLE_AUTHORITY)

    def _strikes(self, question: bytes, now: float) -> int:
        """How many times in a row ``question`` lately timed out at every server asked (0: not
        lately); raises UpstreamError while it is held back after repeated timeouts."""
        memo = self._timeouts.get(question)
        if memo is None:
            return 0
        strikes, held_until, forget_at = memo
        if now >= forget_at:
            del self._timeouts[question]
            return 0
        if now < held_until:
            self.timeout_held += 1
            raise UpstreamError(f"no upstream answered this question the last {strikes} times; "
                                f"not asked again for {held_until - now:.0f} s",
                                wire.EDE_NO_REACHABLE_AUTHORITY)
        return strikes

    def _timed_out(self, question: bytes, now: float) -> None:
        """Every attempt for ``question`` timed out: one more strike (RFC 9520 §3.2 backoff)."""
        memo = self._timeouts.pop(question, None)
        strikes = (memo[0] if memo is not None and now < memo[2] else 0) + 1
        hold = 0.0 if strikes < 2 else min(TIMEOUT_HOLD_MAX, TIMEOUT_HOLD_BASE * 2 ** (strikes - 2))
        if len(self._timeouts) >= TIMEOUT_MEMO_MAX:
            del self._timeouts[next(iter(self._timeouts))]  # the one that timed out longest ago
        self._timeouts[question] = (strikes, now + hold, now + TIMEOUT_MEMO_TTL)

    async def _attempt(self, server: Upstream, question: bytes, qflags: int, do: bool,
                       timeout: float | None = None) -> bytes:
        """One exchange with ``server`` (UDP, then TCP if truncated), each waiting ``timeout``
        (None: the settings'); records the outcome in its health. Raises asyncio.TimeoutError
        or UpstreamError on a transport failure."""
        server.queries += 1
        t0 = time.monotonic()
        if timeout is None:
            timeout = self.settings.timeout
        try:
            if server.transport is not None:
                reply = await self._encrypted(server.transport, question, qflags, do, timeout)
            else:
                reply = await self._udp(asyncio.get_running_loop(), server, question, qflags, do, timeout)
                if reply[2] & 0x02:  # TC: the answer did not fit; ask the same server over TCP
                    reply = await self._tcp(server, question, qflags, do, timeout)
            # A reply whose records cannot be walked is no answer (and may be the next server's
            # job); checked here once, so the failure counts against this server's health.
            wire.read_rrs(reply, 12 + len(question), sum(struct.unpack_from("!HHH", reply, 6)))
        except asyncio.TimeoutError:
            server.timeouts += 1
            server.failed("timeout", self.clock())
            raise
        except (UpstreamError, TransportError) as e:  # an ICMP error; a refused certificate, an HTTP error
            server.failed(str(e), self.clock())
            raise UpstreamError(f"{server.label}: {e}", e.ede) from None
        except (OSError, EOFError, wire.WireError) as e:  # TCP refused, reset or cut short; garbled
            reason = f"malformed reply: {e}" if isinstance(e, wire.WireError) else str(e) or type(e).__name__
            server.failed(reason, self.clock())
            raise UpstreamError(f"{server.label}: {reason}", wire.EDE_NETWORK_ERROR) from None
        server.answered(time.monotonic() - t0, self.clock())
        return reply

    def _probe_down(self, order: list[Upstream], question: bytes, qflags: int, do: bool,
                    now: float) -> None:
        """Ask down servers whose back-off is over the same question, on the side.

        They are tried last, so without this a server that recovered might never be asked
        again and would stay "down" for good. The client's answer does not wait for a probe.
        """
        for server in order[1:]:
            if server.down and not server.probing and now >= server.down_until \
                    and not server.loop_active(now):
                server.probing = True
                task = asyncio.ensure_future(self._probe(server, question, qflags, do))
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)

    async def _probe(self, server: Upstream, question: bytes, qflags: int, do: bool) -> None:
        try:
            await self._attempt(server, question, qflags, do)
        except (asyncio.TimeoutError, UpstreamError):
            pass  # recorded in the server's health
        finally:
            server.probing = False

    def _packet(self, question: bytes, qflags: int, do: bool) -> tuple[int, bytes]:
        qid = secrets.randbits(16)
        flags = wire.RD | wire.AD | (qflags & wire.CD)  # AD=1: we understand AD (RFC 6840 §5.7)
        return qid, (wire.header(qid, flags, 1, 0, 0, 1) + question + wire.opt_record(do))

    async def _udp(self, loop: asyncio.AbstractEventLoop, server: Upstream, question: bytes, qflags: int,
                   do: bool, timeout: float) -> bytes:
        qid, packet = self._packet(question, qflags, do)
        sock = socket.socket(server.family, socket.SOCK_DGRAM)
        port = 0
        try:
            sock.setblocking(False)
            sock.connect((server.host, server.port))  # kernel picks a random ephemeral port
            port = sock.getsockname()[1]
            self.local_ports[port] = (qid, question, server)
            pending = _Pending(loop, sock, qid, question)
            fd = sock.fileno()
            loop.add_reader(fd, pending.on_readable)
            try:
                sock.send(packet)
                pending.timer = loop.call_later(timeout, pending.on_timeout)
                return await pending.fut
            finally:
                if pending.timer is not None:
                    pending.timer.cancel()
                loop.remove_reader(fd)
        finally:
            self.local_ports.pop(port, None)
            sock.close()

    async def _encrypted(self, transport: Transport, question: bytes, qflags: int, do: bool,
                         timeout: float) -> bytes:
        """One exchange over DoT or DoH. The transport matches the reply to the ID; the question
        must match too: a reply for another question on our own connection is a bad server."""
        qid, packet = self._packet(question, qflags, do)
        # Its own task: the transport keeps time with asyncio.timeout, which needs one, and the
        # DNS server runs a query's first steps outside any (DnsServer.run_eagerly).
        exchange = asyncio.ensure_future(transport.exchange(packet, timeout))
        try:
            reply = await exchange
        finally:
            if not exchange.done():
                exchange.cancel()
        if not reply_matches(reply, qid, question):
            self.wrong_replies += 1
            raise TransportError("reply does not match the question asked")
        return reply

    async def _tcp(self, server: Upstream, question: bytes, qflags: int, do: bool,
                   timeout: float) -> bytes:
        qid, packet = self._packet(question, qflags, do)
        async with asyncio.timeout(timeout):
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


def _error_answer(server: Upstream, reply: bytes, qend: int) -> UpstreamError:
    """The error for a SERVFAIL (REFUSED, ...) answer: the upstream's own EDE if it sent one,
    else EDE 0 naming the rcode. Never EDE 22: the server was reached."""
    message = f"{server.label} answered {ERROR_RCODES[reply[3] & 0xF]}"
    ede = reply_ede(reply, qend)
    if ede is None:
        return UpstreamError(message, wire.EDE_OTHER)
    code, text = ede
    return UpstreamError(f"{message} (EDE {code}{': ' + text if text else ''})", code, text)
