"""The HTTP-01 tokens and the small responder that serves them, over a real socket."""

from __future__ import annotations

import asyncio

import pytest

from burrow.tls.acme import AcmeFailure, Http01Responder, Http01Tokens


async def ask(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def test_the_responder_serves_published_tokens_only():
    tokens = Http01Tokens()
    tokens.publish("tok_1-A", "tok_1-A.thumbprint")

    async def main():
        responder = Http01Responder(tokens)
        port = await responder.start("127.0.0.1", 0)
        try:
            found = await ask(port, b"GET /.well-known/acme-challenge/tok_1-A HTTP/1.1\r\nHost: burrow.test\r\n\r\n")
            unknown = await ask(port, b"GET /.well-known/acme-challenge/other HTTP/1.1\r\n\r\n")
            elsewhere = await ask(port, b"GET /admin HTTP/1.1\r\n\r\n")
            post = await ask(port, b"POST /.well-known/acme-challenge/tok_1-A HTTP/1.1\r\n\r\n")
            tokens.withdraw("tok_1-A")
            withdrawn = await ask(port, b"GET /.well-known/acme-challenge/tok_1-A HTTP/1.1\r\n\r\n")
            oversized = await ask(port, b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n")
            return found, unknown, elsewhere, post, withdrawn, oversized, responder.served
        finally:
            await responder.close()

    found, unknown, elsewhere, post, withdrawn, oversized, served = asyncio.run(main())
    assert found.startswith(b"HTTP/1.1 200 OK\r\n") and found.endswith(b"\r\n\r\ntok_1-A.thumbprint")
    assert b"Content-Length: 18\r\n" in found
    for answer in (unknown, elsewhere, withdrawn):
        assert answer.startswith(b"HTTP/1.1 404 ")
    assert post.startswith(b"HTTP/1.1 405 ")
    assert oversized == b"", "a head over the cap is closed unanswered"
    assert served == 1


def test_tokens_have_a_cap():
    tokens = Http01Tokens(cap=2)
    tokens.publish("a", "a.x")
    tokens.publish("b", "b.x")
    tokens.publish("a", "a.y")  # replacing one is fine
    with pytest.raises(AcmeFailure, match="more than 2"):
        tokens.publish("c", "c.x")
    assert tokens.challenge_response("a") == "a.y" and tokens.challenge_response("c") is None
