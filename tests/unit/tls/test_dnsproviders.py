"""The Cloudflare DNS-01 provider against a fake of Cloudflare's API on loopback
(tests/support/acme_lab.py): records made and deleted, the zone found by name, refusals in the
provider's words, and the token never in an error, a repr or a redirected request."""

from __future__ import annotations

import asyncio

import pytest

from burrow.tls.acme import DnsProviderError
from burrow.tls.dnsproviders import CloudflareDns, CloudflareRecord
from tests.support.acme_lab import FakeCloudflare

TOKEN = "Zq9-secret-token_value"
CHALLENGE = "_acme-challenge.burrow.test"


def with_fake(body, zones=None):
    async def main():
        fake = FakeCloudflare(TOKEN, zones if zones is not None else {"burrow.test": "zoneA"}, {})
        await fake.start()
        try:
            return await body(fake)
        finally:
            await fake.close()
    return asyncio.run(main())


def test_a_record_is_created_in_the_zone_found_by_name_and_deleted():
    async def body(fake):
        dns = CloudflareDns(TOKEN, api_base=fake.api)
        record = await dns.create_txt("_acme-challenge.www.burrow.test", "v4lue")
        made = {k: list(v) for k, v in fake.txt.items()}
        await dns.delete_txt(record)
        return record, made, fake

    record, made, fake = with_fake(body)
    assert record == CloudflareRecord("zoneA", record.record_id, "_acme-challenge.www.burrow.test")
    assert made == {"_acme-challenge.www.burrow.test": ["v4lue"]}
    assert not fake.records and fake.txt == {"_acme-challenge.www.burrow.test": []}
    assert [(m, p) for m, p, _ in fake.requests] == [
        ("GET", "/client/v4/zones"),  # _acme-challenge.www.burrow.test: not a zone
        ("GET", "/client/v4/zones"),  # www.burrow.test: not a zone
        ("GET", "/client/v4/zones"),  # burrow.test: zoneA
        ("POST", "/client/v4/zones/zoneA/dns_records"),
        ("DELETE", f"/client/v4/zones/zoneA/dns_records/{record.record_id}"),
    ]
    assert all(ok for *_, ok in fake.requests), "every request carried the Bearer token"


def test_a_given_zone_id_is_used_without_a_lookup():
    async def body(fake):
        await CloudflareDns(TOKEN, zone_id="zoneA", api_base=fake.api).create_txt(CHALLENGE, "v")
        return fake.requests

    assert [m for m, _, _ in with_fake(body)] == ["POST"]


def test_a_name_in_no_zone_of_the_token_is_refused():
    async def body(fake):
        with pytest.raises(DnsProviderError, match="no Cloudflare zone of this token holds _acme-challenge.other"):
            await CloudflareDns(TOKEN, api_base=fake.api).create_txt("_acme-challenge.other.example", "v")

    with_fake(body)


def test_a_wrong_token_is_refused_in_cloudflares_words_without_either_token():
    wrong = "wrong-token-42"

    async def body(fake):
        with pytest.raises(DnsProviderError) as e:
            await CloudflareDns(wrong, zone_id="zoneA", api_base=fake.api).create_txt(CHALLENGE, "v")
        return str(e.value)

    message = with_fake(body)
    assert "HTTP 403" in message and "Authentication error" in message
    assert wrong not in message and TOKEN not in message


def test_the_token_echoed_by_the_provider_is_scrubbed():
    async def body(fake):
        fake.refuse = f"bad content near {TOKEN}"
        with pytest.raises(DnsProviderError) as e:
            await CloudflareDns(TOKEN, zone_id="zoneA", api_base=fake.api).create_txt(CHALLENGE, "v")
        return str(e.value)

    message = with_fake(body)
    assert TOKEN not in message and "bad content near <token>" in message and "HTTP 400" in message


def test_an_unreachable_api_is_named_without_the_token():
    async def main():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(DnsProviderError, match=f"cannot reach http://127.0.0.1:{port}") as e:
            await CloudflareDns(TOKEN, zone_id="zoneA", api_base=f"http://127.0.0.1:{port}",
                                timeout=5).create_txt(CHALLENGE, "v")
        assert TOKEN not in str(e.value)

    asyncio.run(main())


def test_a_redirect_is_not_followed_with_the_token():
    async def main():
        seen = []

        async def elsewhere(reader, writer):
            seen.append(await reader.read(4096))
            writer.close()

        async def redirect(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(f"HTTP/1.1 307 X\r\nLocation: http://127.0.0.1:{other_port}/steal\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            writer.close()

        other = await asyncio.start_server(elsewhere, "127.0.0.1", 0)
        other_port = other.sockets[0].getsockname()[1]
        first = await asyncio.start_server(redirect, "127.0.0.1", 0)
        api = f"http://127.0.0.1:{first.sockets[0].getsockname()[1]}"
        try:
            with pytest.raises(DnsProviderError, match="HTTP 307"):
                await CloudflareDns(TOKEN, zone_id="zoneA", api_base=api).create_txt(CHALLENGE, "v")
        finally:
            first.close()
            other.close()
        assert not seen, "nothing reached the redirect's target"

    asyncio.run(main())


def test_the_token_is_not_in_the_repr_and_bad_settings_are_refused():
    assert TOKEN not in repr(CloudflareDns(TOKEN))
    with pytest.raises(ValueError, match="token"):
        CloudflareDns("two words")
    with pytest.raises(ValueError, match="token"):
        CloudflareDns("")
    with pytest.raises(ValueError, match="api_base"):
        CloudflareDns(TOKEN, api_base="file:///etc/passwd")
    with pytest.raises(ValueError, match="zone_id"):
        CloudflareDns(TOKEN, zone_id="../zones")
