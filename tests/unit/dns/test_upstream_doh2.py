"""DoH upstreams over HTTP/2 (dns/upstream_doh2.py through DohTransport), against the test's own
HTTP/2 server on loopback (tests/support/encrypted_upstream.py, kind "h2") with certificates from
a CA the test makes.

Covers the stream bookkeeping: many queries at once are concurrent streams of one connection;
the server's stream limit is kept; a request body larger than the server's window waits for
its WINDOW_UPDATE; a refused stream is asked again; GOAWAY sends the streams still open to a
fresh connection, once; a connection lost after serving is replaced and its streams asked
again, one lost before any answer is a failure; another RST_STREAM is a failure, not retried;
a query whose timeout passes resets its stream and the connection goes on; a server that
closes before its SETTINGS fails the query after one handshake; an HTTP/1.1-only
server still gets HTTP/1.1; the h2 library is imported only when an h2 connection is made.
"""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys

import pytest

from burrow.config.schema import parse_upstream
from burrow.dns import wire
from burrow.dns.upstream_doh import DohTransport, Retry
from burrow.dns.upstream_tls import Encryption, TransportError
from tests.support import tlsca
from tests.support.encrypted_upstream import EncryptedUpstream

pytestmark = pytest.mark.skipif(not tlsca.available(), reason="openssl is not installed")
A = bytes([192, 0, 2, 53])


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = tlsca.TestCA(tmp_path_factory.mktemp("pki") / "ca")
    return {"ca": ca, "good": ca.issue("good", dns=["dns.test"], ips=["127.0.0.1"])}


def packet(name: str, qid: int = 0x1234) -> bytes:
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire.text_to_name(name) + struct.pack("!HH", 1, 1)


def transport(pki, up: EncryptedUpstream) -> DohTransport:
    spec = parse_upstream(f"https://127.0.0.1:{up.port}/dns-query#dns.test")
    t = Encryption(str(pki["ca"].cert)).transport(spec)
    assert isinstance(t, DohTransport)
    return t


def server(pki, kind: str = "h2", **kw) -> EncryptedUpstream:
    return EncryptedUpstream(kind, pki["good"].cert, pki["good"].key, **kw)


def test_queries_at_once_are_streams_of_one_connection(pki):
    with server(pki, slow_seconds=1.0) as up:
        async def main():
            t = transport(pki, up)
            try:
                assert (await t.exchange(packet("first.example"), 5))[-4:] == A
                replies = await asyncio.gather(*(t.exchange(packet(f"slow{i}.example", i), 10) for i in range(30)))
                assert all(r[-4:] == A and r[:2] == struct.pack("!H", i) for i, r in enumerate(replies))
                return t.snapshot()
            finally:
                t.close()
        snap = asyncio.run(main())
        assert up.connections == 1 and snap["connections_opened"] == 1 and snap["http_version"] == "h2"
        assert up.most_streams >= 2 and snap["most_streams"] >= 2  # held 1 s each: open together
        assert snap["in_flight"] == 0 and snap["retried"] == 0 and up.queries == 31


def test_the_servers_stream_limit_is_kept(pki):
    with server(pki, slow_seconds=0.3, h2_max_streams=3) as up:
        async def main():
            t = transport(pki, up)
            try:
                replies = await asyncio.gather(*(t.exchange(packet(f"slow{i}.example"), 20) for i in range(12)))
                assert all(r[-4:] == A for r in replies)
                return t.snapshot()
            finally:
                t.close()
        snap = asyncio.run(main())
        assert up.connections == 1 and 1 <= up.most_streams <= 3 and snap["most_streams"] <= 3


def test_a_body_over_the_servers_window_waits_for_window_update(pki):
    long_name = ".".join(["a" * 60] * 3) + ".example"  # a 200-byte question
    with server(pki, h2_window=64) as up:
        async def main():
            t = transport(pki, up)
            try:
                for _ in range(3):
                    assert (await t.exchange(packet(long_name), 5))[-4:] == A
            finally:
                t.close()
        asyncio.run(main())
        assert up.queries == 3 and up.connections == 1


def test_a_refused_stream_is_asked_again(pki):
    with server(pki) as up:
        async def main():
            t = transport(pki, up)
            try:
                assert (await t.exchange(packet("refuse1.example"), 5))[-4:] == A
                return t.snapshot()
            finally:
                t.close()
        snap = asyncio.run(main())
        assert snap["retried"] == 1 and up.queries == 1


def test_goaway_sends_open_streams_to_a_fresh_connection(pki):
    with server(pki, slow_seconds=1.0) as up:
        async def main():
            t = transport(pki, up)
            try:
                await t.exchange(packet("warm.example"), 5)
                slow = [asyncio.ensure_future(t.exchange(packet(f"slow{i}.example"), 10)) for i in range(3)]
                while t.snapshot()["in_flight"] < 3:  # all three are on the wire
                    await asyncio.sleep(0.01)
                assert (await t.exchange(packet("goaway1.example"), 10))[-4:] == A
                assert all(r[-4:] == A for r in await asyncio.gather(*slow))
                assert (await t.exchange(packet("after.example"), 5))[-4:] == A
                return t.snapshot()
            finally:
                t.close()
        snap = asyncio.run(main())
        # the GOAWAY's stream was never processed; the h2 state machine ends at GOAWAY, so the
        # slow ones still open are asked again too; every one once
        assert up.connections == 2 == snap["connections_opened"] and snap["retried"] == 4
        assert snap["connections"] == 1 and snap["http_version"] == "h2"


def test_a_connection_lost_after_serving_is_replaced(pki):
    with server(pki) as up:
        async def main():
            t = transport(pki, up)
            try:
                await t.exchange(packet("warm.example"), 5)
                assert (await t.exchange(packet("drop1.example"), 5))[-4:] == A
                return t.snapshot()
            finally:
                t.close()
        snap = asyncio.run(main())
        assert up.connections == 2 and snap["retried"] == 1 and snap["connections"] == 1


def test_a_connection_lost_before_any_answer_is_a_failure(pki):
    with server(pki) as up:
        async def main():
            t = transport(pki, up)
            try:
                with pytest.raises(TransportError, match="connection"):
                    await t.exchange(packet("drop2.example"), 5)
                assert (await t.exchange(packet("drop2.example"), 5))[-4:] == A  # a fresh connection
                return t.snapshot()
            finally:
                t.close()
        snap = asyncio.run(main())
        assert snap["retried"] == 0 and up.connections == 2


def test_a_reset_stream_is_a_failure_and_the_connection_goes_on(pki):
    with server(pki) as up:
        async def main():
            t = transport(pki, up)
            try:
                with pytest.raises(TransportError, match=r"stream reset by the server \(INTERNAL_ERROR\)"):
                    await t.exchange(packet("reset1.example"), 5)
                assert (await t.exchange(packet("fine.example"), 5))[-4:] == A
                return t.snapshot()
            finally:
                t.close()
        snap = asyncio.run(main())
        assert up.connections == 1 and snap["retried"] == 0


def test_a_timed_out_query_cancels_its_stream_only(pki):
    with server(pki, slow_seconds=5.0) as up:
        async def main():
            t = transport(pki, up)
            try:
                await t.exchange(packet("warm.example"), 5)
                with pytest.raises(TimeoutError):
                    await t.exchange(packet("slow1.example"), 0.3)
                assert (await t.exchange(packet("fine.example"), 5))[-4:] == A
                deadline = asyncio.get_running_loop().time() + 10
                while up.cancelled < 1 and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.01)
                return t.snapshot()
            finally:
                t.close()
        snap = asyncio.run(main())
        assert up.cancelled == 1 and up.connections == 1 and snap["in_flight"] == 0


def test_a_server_closing_before_its_settings_fails_the_query_once(pki):
    with server(pki, h2_mute=True) as up:
        async def main():
            t = transport(pki, up)
            try:
                with pytest.raises(TransportError, match="before its SETTINGS"):
                    await t.exchange(packet("mute.example"), 3)
                return t.snapshot()
            finally:
                t.close()
        snap = asyncio.run(main())
        assert up.connections == 1 == snap["connections_opened"]  # not a new handshake per turn
        assert snap["connections"] == 0 and snap["in_flight"] == 0


def test_an_http11_only_server_gets_http11(pki):
    with server(pki, "https") as up:
        async def main():
            t = transport(pki, up)
            try:
                assert (await t.exchange(packet("plain.example"), 5))[-4:] == A
                return t.snapshot()
            finally:
                t.close()
        assert asyncio.run(main())["http_version"] == "http/1.1"


def test_h2_is_imported_only_for_an_h2_connection():
    code = "import burrow.dns.upstream_doh, burrow.dns.upstream, sys; print('h2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_retry_is_what_the_h2_module_raises():
    from burrow.dns import upstream_doh2
    assert upstream_doh2.Retry is Retry
