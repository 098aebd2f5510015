"""ACME issuance against a real ACME server: Debian's Pebble, started on loopback by the test
(tests/support/acme_lab.py). Pebble validates HTTP-01 by fetching the token from the test's
Http01Responder (it resolves every name to 127.0.0.1 through the test's DNS responder) and
DNS-01 by asking that responder for the TXT record the fake Cloudflare API was told to create.

The issuer's blocking calls run in worker threads while these servers run on the test's event
loop: an issuer that blocked the loop would leave Pebble's validation unanswered and fail here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import shutil
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from burrow.tls.acme import (RETRY_BASE_S, RETRY_JITTER, AcmeFailure, AcmeIssuer, Http01Responder, Http01Tokens,
                             Renewer, renewal_due)
from burrow.tls.dnsproviders import CloudflareDns
from tests.support.acme_lab import PEBBLE, DnsResponder, FakeCloudflare, Pebble
from tests.support.burrow_proc import free_port

pytestmark = pytest.mark.skipif(shutil.which("pebble") is None and not os.path.exists(PEBBLE),
                                reason="pebble (Debian package 'pebble') is not installed")

TOKEN = "cf-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def pebble(tmp_path_factory):
    lab = Pebble(tmp_path_factory.mktemp("pebble"), dns_port=free_port(), http_port=free_port()).start()
    yield lab
    lab.stop()


class Lab:
    """The servers Pebble talks to, on this test's loop."""

    def __init__(self, pebble: Pebble):
        self.pebble = pebble
        self.txt: dict[str, list[str]] = {}
        self.dns = DnsResponder(self.txt)
        self.tokens = Http01Tokens()
        self.http = Http01Responder(self.tokens)
        self.cloudflare = FakeCloudflare(TOKEN, {"burrow.test": "zone0burrow"}, self.txt)

    async def __aenter__(self) -> Lab:
        await self.dns.start(self.pebble.dns_port)
        await self.http.start("127.0.0.1", self.pebble.http_port)
        await self.cloudflare.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.close()
        await self.dns.close()
        await self.cloudflare.close()


def issuer(pebble: Pebble, tmp_path, names, **kw) -> AcmeIssuer:
    args = dict(directory_url=pebble.directory, names=names, email="owner@burrow.test",
                account_key_path=tmp_path / "acme" / "account.key", cert_path=tmp_path / "tls" / "fullchain.pem",
                key_path=tmp_path / "tls" / "key.pem", ca_bundle=str(pebble.ca_file), network_timeout=20,
                order_timeout=60)
    args.update(kw)
    return AcmeIssuer(**args)


def chain_of(path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def check_pair(pebble: Pebble, cert_path, key_path, names) -> x509.Certificate:
    """The files hold a certificate for ``names`` issued by Pebble's intermediate, with its key."""
    leaf, *rest = chain_of(cert_path)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(names)
    intermediate = x509.load_pem_x509_certificates(pebble.intermediates())[0]
    assert rest and rest[0] == intermediate, "the full chain carries Pebble's intermediate"
    leaf.verify_directly_issued_by(intermediate)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key() == leaf.public_key(), "the key belongs to the certificate"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    return leaf


def test_http01_issues_a_certificate_chained_to_pebbles_intermediate(pebble, tmp_path):
    names = ["burrow.test", "www.burrow.test"]

    async def main():
        async with Lab(pebble) as lab:
            iss = issuer(pebble, tmp_path, names, http01=lab.tokens)
            info = await iss.issue()
            return lab, iss, info

    lab, iss, info = asyncio.run(main())
    leaf = check_pair(pebble, iss.cert_path, iss.key_path, names)
    assert info.serial == format(leaf.serial_number, "x")
    assert sorted(info.names) == sorted(names)
    assert lab.http.served >= 2, "Pebble fetched a key authorisation per name from the responder"
    assert len(lab.tokens) == 0, "the tokens are withdrawn after the order"
    assert stat.S_IMODE(iss.account_key_path.stat().st_mode) == 0o600
    assert not list(iss.cert_path.parent.glob("*.new"))


def test_renewal_reissues_with_a_fresh_key_on_the_same_account(pebble, tmp_path):
    names = ["renew.burrow.test"]
    failures = []
    issued = []

    async def main():
        async with Lab(pebble) as lab:
            iss = issuer(pebble, tmp_path, names, http01=lab.tokens)
            first = await iss.issue()
            account_key = iss.account_key_path.read_bytes()
            first_key = iss.key_path.read_bytes()
            clock = [dt.datetime.now(dt.timezone.utc)]
            renewer = Renewer(iss, on_failure=lambda *a: failures.append(a), on_issued=issued.append,
                              now=lambda: clock[0])
            wait = await renewer.step()
            assert wait > 0 and not issued, "a fresh certificate is not renewed"
            clock[0] = renewal_due(first.not_before, first.not_after) + dt.timedelta(seconds=1)
            assert await renewer.step() == 0.0
            return iss, first, first_key, account_key

    iss, first, first_key, account_key = asyncio.run(main())
    assert not failures
    assert len(issued) == 1 and issued[0].serial != first.serial
    leaf = check_pair(pebble, iss.cert_path, iss.key_path, names)
    assert format(leaf.serial_number, "x") == issued[0].serial
    assert iss.key_path.read_bytes() != first_key, "a renewal makes a fresh key"
    assert iss.account_key_path.read_bytes() == account_key, "the account key is reused"


def test_a_failed_challenge_reports_through_on_failure_and_keeps_the_old_files(pebble, tmp_path, caplog):
    names = ["keep.burrow.test"]
    failures = []

    async def main():
        async with Lab(pebble) as lab:
            await issuer(pebble, tmp_path, names, http01=lab.tokens).issue()
            before = {p: p.read_bytes() for p in (tmp_path / "tls").iterdir()}
            # The tokens this issuer publishes are served by nobody: Pebble gets a 404.
            unserved = issuer(pebble, tmp_path, names, http01=Http01Tokens())
            clock = [dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3650)]  # long past due
            renewer = Renewer(unserved, on_failure=lambda *a: failures.append(a), now=lambda: clock[0],
                              rng=lambda: 0.0)
            wait = await renewer.step()
            assert await renewer.step() > 0, "no new attempt before the back-off is over"
            return before, wait, renewer

    with caplog.at_level(logging.INFO):
        before, wait, renewer = asyncio.run(main())
    assert len(failures) == 1
    error, attempt, delay = failures[0]
    assert isinstance(error, AcmeFailure) and error.step == "challenge"
    assert "keep.burrow.test" in str(error) and "404" in str(error)
    assert attempt == 1 and delay == wait == RETRY_BASE_S and renewer.failures == 1
    assert RETRY_BASE_S * (1 - RETRY_JITTER) <= delay <= RETRY_BASE_S
    assert {p: p.read_bytes() for p in (tmp_path / "tls").iterdir()} == before, "the old pair is intact"


def test_dns01_through_the_cloudflare_api_issues_a_wildcard(pebble, tmp_path):
    names = ["burrow.test", "*.burrow.test"]

    async def main():
        async with Lab(pebble) as lab:
            provider = CloudflareDns(TOKEN, api_base=lab.cloudflare.api)
            iss = issuer(pebble, tmp_path, names, challenge="dns-01", dns01=provider, dns_propagation=0)
            await iss.issue()
            return lab, iss

    lab, iss = asyncio.run(main())
    check_pair(pebble, iss.cert_path, iss.key_path, names)
    made = [(m, p) for m, p, ok in lab.cloudflare.requests if m == "POST" and ok]
    gone = [(m, p) for m, p, ok in lab.cloudflare.requests if m == "DELETE" and ok]
    assert len(made) == 2 and len(gone) == 2, lab.cloudflare.requests  # one TXT per name, then deleted
    assert all(p.startswith("/client/v4/zones/zone0burrow/dns_records") for _, p in made + gone)
    assert not lab.cloudflare.records and not any(lab.txt.values())
    assert ("_acme-challenge.burrow.test", "TXT") in lab.dns.questions, "Pebble looked the TXT record up"


def test_dns01_refused_by_the_provider_reports_without_the_token(pebble, tmp_path, caplog):
    failures = []

    async def main():
        async with Lab(pebble) as lab:
            lab.cloudflare.refuse = f"Invalid request for token {TOKEN}"  # Cloudflare echoes input
            provider = CloudflareDns(TOKEN, zone_id="zone0burrow", api_base=lab.cloudflare.api)
            iss = issuer(pebble, tmp_path, ["refused.burrow.test"], challenge="dns-01", dns01=provider,
                         dns_propagation=0)
            await Renewer(iss, on_failure=lambda *a: failures.append(a)).step()
            return iss

    with caplog.at_level(logging.DEBUG):
        iss = asyncio.run(main())
    (error, attempt, _), = failures
    assert error.step == "dns" and "HTTP 400" in str(error) and "Invalid request" in str(error)
    assert TOKEN not in str(error) and TOKEN not in caplog.text
    assert not iss.cert_path.exists() and not iss.key_path.exists()
