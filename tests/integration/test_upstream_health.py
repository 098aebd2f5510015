"""Through the real burrow process: upstream health follows reachability, never an rcode.

An upstream that answers SERVFAIL or REFUSED to many questions is reachable: /readyz stays 200,
/api/system shows it healthy and the status never turns no_upstream (it used to flap with
every SERVFAIL). An upstream that stops answering does turn the status no_upstream, but only
after the sustained condition, and back to ready once it answers again.

Forwarding-loop detection catches loops, not bystanders: a loop is our own in-flight upstream
query arriving at our listener (same source port, ID and question). Another program on the box
that merely uses the port number of one of our upstream sockets is a client like any other and
must get its answer, and the upstream must stay in use (it used to be disabled until restart).
"""

from __future__ import annotations

import concurrent.futures
import socket
import time
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from burrow.dns.upstream import DOWN_AFTER_SECONDS
from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream import address_for
from tests.support.upstream_client import TestUpstream

RECOVERY_DEADLINE = 90.0  # generous: a state change needs sustained conditions plus a dwell
DEADLINE = 10.0


@pytest.fixture
def up():
    with TestUpstream() as u:
        yield u


def unique(suffix: str) -> str:
    return f"h-{uuid.uuid4().hex[:10]}.{suffix}"


def ede(msg) -> dict[int, str]:
    return {o.code: o.text for o in msg.options if o.otype == 15}


def system(b, token) -> dict:
    status, body = authed(b, token, "GET", "/api/system")
    assert status == 200, body
    return body


def full_log(b) -> str:
    b.log.flush()
    return Path(b.log.name).read_text(errors="replace")


def asked(up, name):
    return [q for q in up.queries() if q["name"].lower() == name.lower()]


def test_error_answers_keep_the_upstream_healthy(tmp_path, up):
    suffixes = {"sf.test": "SERVFAIL", "rf.test": "REFUSED", "ni.test": "NOTIMP", "fe.test": "FORMERR"}
    for suffix, rcode in suffixes.items():
        up.set_rule(suffix, match="suffix", rcode=rcode)
    with BurrowProcess(tmp_path, [up.address]) as b:
        token = admin_token(b)
        for i in range(60):
            suffix = list(suffixes)[i % len(suffixes)]
            name = unique(suffix)
            reply = b.query(name, use_edns=0, timeout=10)
            assert reply.rcode() == dns.rcode.SERVFAIL
            codes = ede(reply)
            assert 22 not in codes, codes  # the upstream was reached
            assert suffixes[suffix] in codes.get(0, ""), codes  # EDE 0 names what it answered
            assert len(asked(up, name)) == 1  # a server that said no is not asked again
            again = b.query(name, use_edns=0, timeout=10)  # from the brief failure memo
            assert again.rcode() == dns.rcode.SERVFAIL and ede(again) == codes
            status, ready = b.http("GET", "/readyz")
            assert status == 200 and ready["checks"]["upstreams"] == "ok", ready
            if i % 10 == 0:  # answers still flow in between
                ok = unique("ok.test")
                assert b.query(ok).answer[0][0].address == address_for(ok)
        body = system(b, token)
        (snap,) = body["upstreams"]
        assert snap["healthy"] and snap["consecutive_failures"] == 0 and snap["errors"] == 0
        assert snap["error_answers"] == 60
        assert body["status"]["state"] == "ready"
        assert "status: no_upstream" not in full_log(b)


def test_a_dead_upstream_turns_no_upstream_after_a_while_and_comes_back(tmp_path, up):
    with BurrowProcess(tmp_path, [up.address], {"upstream": {"timeout": 0.3, "max_attempts": 3}}) as b:
        token = admin_token(b)
        assert b.http("GET", "/readyz")[0] == 200
        up.set_rule(".", match="suffix", drop=True)
        dropped_at = time.monotonic()
        went_down = None
        deadline = dropped_at + RECOVERY_DEADLINE
        while time.monotonic() < deadline:
            reply = b.query(unique("dead.test"), use_edns=0, timeout=10)
            assert reply.rcode() == dns.rcode.SERVFAIL
            if system(b, token)["status"]["state"] == "no_upstream":
                went_down = time.monotonic()
                break
        assert went_down is not None, b.output()
        # Not on the first failures: the condition had to last.
        assert went_down - dropped_at >= DOWN_AFTER_SECONDS
        status, ready = b.http("GET", "/readyz")
        assert status == 503 and ready["checks"]["upstreams"] == "unavailable"
        assert not system(b, token)["upstreams"][0]["healthy"]

        up.reset()
        deadline = time.monotonic() + RECOVERY_DEADLINE
        while time.monotonic() < deadline:
            name = unique("back.test")
            b.query(name, timeout=10)
            if system(b, token)["status"]["state"] == "ready" and b.http("GET", "/readyz")[0] == 200:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"never back to ready:\n{b.output()}")
        assert system(b, token)["upstreams"][0]["healthy"]
        assert full_log(b).count("status: no_upstream") == 1  # one change each way, no flapping


# ---- forwarding loops ----------------------------------------------------------------------

def test_a_client_sharing_an_upstream_port_is_answered(tmp_path, up):
    slow = unique("slow.test")
    up.set_rule(slow, delay_ms=6000)  # in flight while the bystander asks (checked below)
    with BurrowProcess(tmp_path, [up.address], {"upstream": {"timeout": 10.0}}) as b, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        admin_token(b)
        waiting = pool.submit(b.query, slow, "A", timeout=20)
        deadline = time.monotonic() + DEADLINE
        seen = []
        while not seen and time.monotonic() < deadline:
            seen = [q for q in up.queries() if q["name"] == slow]
            time.sleep(0.02)
        assert seen, "burrow never asked the upstream"
        port = int(seen[0]["src"].rsplit(":", 1)[1])  # the source port of burrow's upstream socket

        # Another program on the box, on 127.0.0.2, happens to get that port number.
        other = unique("bystander.test")
        query = dns.message.make_query(other, "A")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.2", port))
            sock.settimeout(DEADLINE)
            sock.sendto(query.to_wire(), ("127.0.0.1", b.dns_port))
            reply = dns.message.from_wire(sock.recv(65535))
        assert reply.id == query.id and reply.rcode() == dns.rcode.NOERROR
        assert reply.answer[0][0].address == address_for(other)
        assert not waiting.done()  # the upstream query was still in flight all along

        assert waiting.result().answer[0][0].address == address_for(slow)
        (snap,) = system(b, admin_token(b))["upstreams"]
        assert snap["healthy"] and not snap["loop_detected"]
        assert "forwarding loop" not in full_log(b)


def test_burrow_asked_through_another_address_of_its_own_finds_the_loop(tmp_path):
    # The start-up check sees an upstream equal to a listener; an IPv4-mapped address of the
    # same listener slips past it, so only the runtime check can find this loop.
    proc = BurrowProcess(tmp_path, None)
    proc.config["upstream_dns_servers"] = [f"[::ffff:127.0.0.1]:{proc.dns_port}"]
    with proc as b:
        reply = b.query(unique("loop.test"), use_edns=0, timeout=10)
        assert reply.rcode() in (dns.rcode.SERVFAIL, dns.rcode.REFUSED)
        texts = [o.text for o in reply.options if o.otype == 15]
        assert any("forwarding loop" in t for t in texts), texts
        (snap,) = system(b, admin_token(b))["upstreams"]
        assert snap["loop_detected"] and not snap["healthy"]
        assert "forwarding loop" in full_log(b)
        status, ready = b.http("GET", "/readyz")
        assert status == 503 and ready["checks"]["upstreams"] == "unavailable"
