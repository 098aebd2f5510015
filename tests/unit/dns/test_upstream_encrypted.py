"""UpstreamPool over DNS over TLS and DNS over HTTPS, against a real TLS server on loopback
(tests/support/encrypted_upstream.py) with certificates from a CA the test makes.

Covers: answers come back through both; one connection carries many queries (reuse) and answers
out of order (pipelining); a certificate from another CA, an expired one, one for another name
and a key that does not match the pin are each refused, counted against the server's health,
and the pool fails over to a good server; the SPKI pin we compute equals openssl's; the
bootstrap resolves a host name through the ask function and keeps the address.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time

import dns.message
import dns.rrset
import pytest

from burrow.config.schema import parse_upstream
from burrow.dns import wire
from burrow.dns.upstream import UpstreamError, UpstreamPool, UpstreamSettings
from burrow.dns.upstream_tls import Bootstrap, Encryption, spki_sha256
from tests.support import tlsca
from tests.support.encrypted_upstream import EncryptedUpstream

pytestmark = pytest.mark.skipif(not tlsca.available(), reason="openssl is not installed")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = tlsca.TestCA(folder / "ca")
    other = tlsca.TestCA(folder / "other", "Some other CA")
    return {
        "ca": ca,
        "good": ca.issue("good", dns=["dns.test"], ips=["127.0.0.1"]),
        "expired": ca.issue("expired", dns=["dns.test"], ips=["127.0.0.1"], expired=True),
        "wrong_name": ca.issue("wrong", dns=["elsewhere.test"]),
        "other_ca": other.issue("other", dns=["dns.test"], ips=["127.0.0.1"]),
    }


def question(name: str, rtype: int = 1) -> bytes:
    return wire.text_to_name(name) + struct.pack("!HH", rtype, 1)


def pool_for(pki, *urls: str, timeout: float = 5.0, attempts: int = 3) -> UpstreamPool:
    encryption = Encryption(str(pki["ca"].cert))
    return UpstreamPool([parse_upstream(u) for u in urls], UpstreamSettings(timeout=timeout, max_attempts=attempts),
                        encryption=encryption)


def a_of(reply: bytes) -> bytes:
    return reply[-4:]


@pytest.mark.parametrize("kind, url", [("tls", "tls://127.0.0.1:{port}#dns.test"),
                                       ("https", "https://127.0.0.1:{port}/dns-query#dns.test")])
def test_many_queries_share_one_connection(pki, kind, url):
    with EncryptedUpstream(kind, pki["good"].cert, pki["good"].key) as up:
        async def main():
            pool = pool_for(pki, url.format(port=up.port))
            try:
                for i in range(50):
                    reply, server = await pool.query(question(f"n{i}.example"), 0, False)
                    assert a_of(reply) == bytes([192, 0, 2, 53])
                # at once: DoT pipelines on its connection, DoH opens at most its cap
                replies = await asyncio.gather(*(pool.query(question(f"m{i}.example"), 0, False)
                                                 for i in range(50)))
                assert all(a_of(r) == bytes([192, 0, 2, 53]) for r, _ in replies)
                snap = server.snapshot()
                assert snap["protocol"] == kind and snap["address"] == url.format(port=up.port)
                assert snap["healthy"] and snap["errors"] == 0 and snap["queries"] == 100
                return snap
            finally:
                pool.close()
        snap = asyncio.run(main())
        assert up.queries == 100
        if kind == "tls":
            assert up.connections == 1 and snap["connections_opened"] == 1  # all 100 on one connection
        else:
            assert 1 <= up.connections <= 4 and snap["connections_opened"] == up.connections


def test_dot_answers_out_of_order_on_one_connection(pki):
    with EncryptedUpstream("tls", pki["good"].cert, pki["good"].key, slow_seconds=1.0) as up:
        async def main():
            pool = pool_for(pki, f"tls://127.0.0.1:{up.port}#dns.test")
            try:
                await pool.query(question("warm.example"), 0, False)  # the connection is up
                slow = asyncio.ensure_future(pool.query(question("slow.example"), 0, False))
                await asyncio.sleep(0)
                t0 = time.monotonic()
                fast, _ = await pool.query(question("fast.example"), 0, False)
                fast_took = time.monotonic() - t0
                assert not slow.done()  # the fast answer overtook the slow one on the same connection
                await slow
                return fast_took
            finally:
                pool.close()
        asyncio.run(main())
        assert up.connections == 1


@pytest.mark.parametrize("kind", ["tls", "https"])
@pytest.mark.parametrize("cert, says", [("expired", "expired"), ("wrong_name", "mismatch"),
                                        ("other_ca", "unable to get local issuer")])
def test_a_bad_certificate_is_refused_and_the_pool_fails_over(pki, kind, cert, says):
    leaf = pki[cert]
    path = "/dns-query" if kind == "https" else ""
    with EncryptedUpstream(kind, leaf.cert, leaf.key) as bad, \
            EncryptedUpstream(kind, pki["good"].cert, pki["good"].key) as good:
        async def main():
            bad_url = f"{kind}://127.0.0.1:{bad.port}{path}#dns.test"
            pool = pool_for(pki, bad_url, f"{kind}://127.0.0.1:{good.port}{path}#dns.test")
            try:
                for i in range(6):
                    reply, server = await pool.query(question(f"f{i}.example"), 0, False, servers=pool.servers)
                    assert server.label != bad_url and a_of(reply) == bytes([192, 0, 2, 53])
                broken = pool.servers[0]
                assert broken.errors == 6 and says in broken.last_error, broken.last_error
                # alone, it fails the query: EDE 23 (network error) with the reason
                alone = pool_for(pki, bad_url)
                with pytest.raises(UpstreamError) as e:
                    await alone.query(question("alone.example"), 0, False)
                assert e.value.ede == wire.EDE_NETWORK_ERROR and "certificate refused" in str(e.value)
            finally:
                pool.close()
        asyncio.run(main())
        assert bad.queries == 0  # nothing was ever sent to it


@pytest.mark.parametrize("kind", ["tls", "https"])
def test_a_pin_must_match_the_servers_key(pki, kind):
    path = "/dns-query" if kind == "https" else ""
    wrong = base64.b64encode(bytes(32)).decode()
    with EncryptedUpstream(kind, pki["good"].cert, pki["good"].key) as up:
        async def main():
            right = pool_for(pki, f"{kind}://127.0.0.1:{up.port}{path}?pin={pki['good'].pin}#dns.test")
            reply, _ = await right.query(question("pinned.example"), 0, False)
            assert a_of(reply) == bytes([192, 0, 2, 53])
            right.close()
            bad = pool_for(pki, f"{kind}://127.0.0.1:{up.port}{path}?pin={wrong}#dns.test", attempts=1)
            with pytest.raises(UpstreamError) as e:
                await bad.query(question("mispinned.example"), 0, False)
            assert "does not match the pin" in str(e.value)
            assert bad.servers[0].errors == 1
        asyncio.run(main())
        assert up.queries == 1


def test_our_spki_hash_is_openssls(pki):
    import ssl
    der = ssl.PEM_cert_to_DER_cert(pki["good"].cert.read_text())
    assert base64.b64encode(spki_sha256(der)).decode() == pki["good"].pin
    ca_der = ssl.PEM_cert_to_DER_cert(pki["ca"].cert.read_text())
    assert spki_sha256(ca_der) != spki_sha256(der)


def test_a_host_name_is_found_through_the_bootstrap_and_kept(pki):
    asked: list[bytes] = []

    async def ask(q: bytes) -> bytes:
        asked.append(q)
        query = dns.message.make_query(wire.name_to_text(q[:-4]), struct.unpack("!H", q[-4:-2])[0])
        response = dns.message.make_response(query)
        if q[-4:-2] == b"\x00\x01":
            response.answer.append(dns.rrset.from_text(query.question[0].name, 300, "IN", "A", "127.0.0.1"))
        return response.to_wire()

    with EncryptedUpstream("tls", pki["good"].cert, pki["good"].key) as up:
        async def main():
            encryption = Encryption(str(pki["ca"].cert), Bootstrap(ask))
            pool = UpstreamPool([parse_upstream(f"tls://dns.test:{up.port}")], UpstreamSettings(timeout=5),
                                encryption=encryption)
            try:
                for i in range(5):
                    reply, _ = await pool.query(question(f"b{i}.example"), 0, False)
                    assert a_of(reply) == bytes([192, 0, 2, 53])
            finally:
                pool.close()
        asyncio.run(main())
    assert asked == [question("dns.test")]  # A found: no AAAA asked, and kept for its TTL


def test_without_a_bootstrap_a_host_name_fails_clearly(pki):
    async def main():
        pool = UpstreamPool([parse_upstream("tls://dns.test:1")], UpstreamSettings(timeout=2, max_attempts=1),
                            encryption=Encryption(str(pki["ca"].cert)))
        with pytest.raises(UpstreamError) as e:
            await pool.query(question("x.example"), 0, False)
        assert "bootstrap" in str(e.value)
    asyncio.run(main())
