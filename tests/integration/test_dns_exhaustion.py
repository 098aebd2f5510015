"""Through the real burrow process: one client, or a few, cannot starve the others (issue 20).

Upstream in-flight exhaustion (item 5): eight LAN clients, each under the per-client rate
limit, ask for names the upstream never answers. Each such question holds an upstream slot
for the whole timeout, so together they used to hold every slot, and another client's cache
misses got SERVFAIL "too many upstream queries in flight" (27% answered in the report). The
in-flight budget is now shared per client, so the other client keeps being answered.

DNS-over-TCP exhaustion (item 6): one client used to hold every TCP slot by sending one byte
now and then (each byte restarted the idle timer). Now a client has its own connection cap,
a message must arrive whole within a deadline whatever trickles in, and a connection over a
cap is accepted and closed cleanly (FIN), not reset.
"""

from __future__ import annotations

import select
import socket
import threading
import time
import uuid

import dns.exception
import dns.message
import dns.rcode
import pytest

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.timing import wait_for
from tests.support.upstream_client import TestUpstream

ATTACKERS = [f"127.0.0.{i}" for i in range(2, 10)]  # eight LAN clients
VICTIM = "127.0.0.10"
MAX_INFLIGHT = 32  # small, so the attack fills it quickly
ATTACK_RATE = 25.0  # queries per second per attacker: well under rate_limit.rps (100)
ATTACK_CAP_S = 90.0  # no attacker ever runs longer than this
VICTIM_QUERIES = 40
DEADLINE = 30.0


@pytest.fixture
def up():
    with TestUpstream() as u:
        yield u


def _attack(b: BurrowProcess, source: str, stop: threading.Event, tag: str) -> None:
    """Send never-answered questions (each a new name) at ATTACK_RATE until told to stop."""
    end = time.monotonic() + ATTACK_CAP_S
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.setblocking(False)
        i = 0
        due = time.monotonic()
        while not stop.is_set() and time.monotonic() < end:
            name = f"a{i}-{tag}-{source.replace('.', '-')}.dead.test"
            try:
                s.sendto(dns.message.make_query(name, "A").to_wire(), ("127.0.0.1", b.dns_port))
            except OSError:
                pass
            while True:  # replies (SERVFAIL) are of no interest; keep the buffer empty
                try:
                    s.recv(4096)
                except OSError:
                    break
            i += 1
            due += 1.0 / ATTACK_RATE
            stop.wait(max(0.0, due - time.monotonic()))


def test_never_answered_names_from_eight_clients_do_not_starve_another(tmp_path, up):
    up.set_rule("dead.test", match="suffix", drop=True)
    config = {"rate_limit": {"enabled": True},  # defaults: each attacker stays under it
              "upstream": {"max_inflight": MAX_INFLIGHT, "timeout": 1.0, "max_attempts": 3}}
    with BurrowProcess(tmp_path, [up.address], config) as b:
        tag = uuid.uuid4().hex[:8]
        stop = threading.Event()
        attackers = [threading.Thread(target=_attack, args=(b, ip, stop, tag), daemon=True)
                     for ip in ATTACKERS]
        for t in attackers:
            t.start()
        try:
            # The attack is under way once the upstream has been asked twice the budget.
            wait_for(lambda: sum(q["name"].endswith(".dead.test") for q in up.queries())
                     >= 2 * MAX_INFLIGHT, DEADLINE, "the attack to reach the upstream")
            answered = 0
            for i in range(VICTIM_QUERIES):  # each a new name: a cache miss
                name = f"v{i}-{tag}.ok.test"
                try:
                    # Generous: a starved client is told SERVFAIL at once, it does not wait.
                    reply = b.query(name, timeout=10.0, source=VICTIM)
                except dns.exception.Timeout:
                    continue
                if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                    answered += 1
            still_attacking = all(t.is_alive() for t in attackers)
        finally:
            stop.set()
            for t in attackers:
                t.join(10)
        assert still_attacking, "the attack ended before the victim's queries did"
        ratio = answered / VICTIM_QUERIES
        print(f"\nbenchmark: victim cache-miss success under in-flight attack: {ratio:.0%} "
              f"({answered}/{VICTIM_QUERIES}), max_inflight={MAX_INFLIGHT}, {len(ATTACKERS)} attackers")
        assert ratio >= 0.9, f"only {answered}/{VICTIM_QUERIES} of the victim's questions answered"


# ---- DNS over TCP ------------------------------------------------------------------------------

DRIBBLER = "127.0.0.2"
TCP_VICTIM = "127.0.0.3"
DRIBBLE_CONNECTIONS = 140  # more than the whole default cap (server.max_tcp_connections, 128)
DRIBBLE_EVERY = 1.0  # seconds between bytes: far below the idle timeout (10 s)
MESSAGE_DEADLINE = 5.0  # server.tcp_message_timeout's default
MARGIN = 7.0  # for a loaded machine


def _closed(sock: socket.socket) -> str | None:
    """"eof" or "reset" if the server has closed ``sock``, None while it is open."""
    if not select.select([sock], [], [], 0)[0]:
        return None
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        return "reset"
    except BlockingIOError:
        return None
    return "eof" if data == b"" else None


def test_one_client_cannot_hold_every_tcp_slot_by_dribbling(tmp_path, up):
    with BurrowProcess(tmp_path, [up.address]) as b:
        conns: list[tuple[socket.socket, float]] = []
        closed: dict[int, float] = {}
        try:
            for _ in range(DRIBBLE_CONNECTIONS):
                s = socket.create_connection(("127.0.0.1", b.dns_port), timeout=5,
                                             source_address=(DRIBBLER, 0))
                s.setblocking(False)
                try:
                    s.send(b"\x00\x40\x12")  # a 64-byte message is coming: here is its first byte
                except OSError:
                    pass
                conns.append((s, time.monotonic()))

            # Another client is answered over TCP while the dribbler holds what it can.
            for i in range(5):
                reply = b.query(f"tcp{i}-{uuid.uuid4().hex[:8]}.ok.test", tcp=True, timeout=5,
                                source=TCP_VICTIM)
                assert reply.rcode() == dns.rcode.NOERROR and reply.answer

            # A connection over the cap is accepted and closed cleanly: end of stream, no reset.
            with socket.create_connection(("127.0.0.1", b.dns_port), timeout=5,
                                          source_address=(DRIBBLER, 0)) as extra:
                assert extra.recv(10) == b""

            # Every dribbling connection is closed within the message deadline, although a
            # byte arrives every DRIBBLE_EVERY seconds.
            last_start = conns[-1][1]
            give_up = last_start + MESSAGE_DEADLINE + MARGIN
            while len(closed) < len(conns) and time.monotonic() < give_up:
                for k, (s, _) in enumerate(conns):
                    if k in closed:
                        continue
                    if _closed(s):
                        closed[k] = time.monotonic()
                        continue
                    try:
                        s.send(b"\x00")
                    except OSError:
                        closed[k] = time.monotonic()
                time.sleep(DRIBBLE_EVERY)
            open_left = len(conns) - len(closed)
            assert open_left == 0, f"{open_left} dribbling connections still open after the deadline"
            late = [closed[k] - start for k, (_, start) in enumerate(conns)
                    if closed[k] - start > MESSAGE_DEADLINE + MARGIN]
            assert not late, f"closed {max(late):.1f} s after their first byte"

            token = admin_token(b)
            status, text = authed(b, token, "GET", "/metrics")
            assert status == 200
            assert 'burrow_dns_problems_total{kind="tcp_client_cap"}' in text
            assert 'burrow_dns_problems_total{kind="tcp_deadline"}' in text
        finally:
            for s, _ in conns:
                s.close()
