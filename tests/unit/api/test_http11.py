"""The HTTP/1.1 pieces on their own (issue 15): Accept-Encoding negotiation (RFC 9110 §12.5.3),
the keep-alive decision (RFC 9112 §9.3) and what write_response puts on the wire for each kind
of body. Through the running server: tests/integration/test_http_keepalive.py."""

from __future__ import annotations

import asyncio
import gzip

import pytest
from microdot import Response
from microdot.microdot import NoCaseDict

from burrow.api import encoding, routes


# ---- Accept-Encoding -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (None, None),
    ("", {}),
    ("gzip", {"gzip": 1.0}),
    ("GZip ; Q=0.5", {"gzip": 0.5}),
    ("x-gzip", {"gzip": 1.0}),
    ("gzip, deflate, br, zstd", {"gzip": 1.0, "deflate": 1.0, "br": 1.0, "zstd": 1.0}),
    ("br;q=1.0, gzip;q=0.8, *;q=0.1", {"br": 1.0, "gzip": 0.8, "*": 0.1}),
    ("gzip;q=0", {"gzip": 0.0}),
    ("gzip;q=0.000", {"gzip": 0.0}),
    ("gzip;q=1.001", {}),  # over 1: malformed, skipped
    ("gzip;q=0.1234", {}),  # four decimals: malformed
    ("gzip;q=", {}),
    ("gzip;q", {}),
    ("gzip;q=-1", {}),
    ("gzip;q=abc, identity", {"identity": 1.0}),
    ("gzip;level=9", {"gzip": 1.0}),  # other parameters ignored
    (" , ,gzip,", {"gzip": 1.0}),
    ("gzip, gzip;q=0", {"gzip": 0.0}),  # listed twice: the lower weight
])
def test_parse_accept_encoding(value, expected):
    assert encoding.parse_accept_encoding(value) == expected


@pytest.mark.parametrize("value, gzip_ok", [
    (None, False),  # not asked: plain
    ("", False),
    ("identity", False),
    ("deflate, br", False),
    ("gzip", True),
    ("x-gzip", True),
    ("gzip, deflate, br", True),
    ("*", True),
    ("*;q=0.3", True),
    ("*;q=0", False),
    ("*, gzip;q=0", False),  # gzip named: its own weight counts, not the wildcard's
    ("gzip;q=0", False),
    ("gzip;q=0.001", True),
    ("gzip;q=0.5, identity", False),  # identity preferred
    ("gzip;q=0.5, identity;q=0.5", True),
    ("gzip, identity;q=0", True),
    ("gzip;q=bad", False),
])
def test_accepts_gzip(value, gzip_ok):
    assert encoding.accepts_gzip(value) is gzip_ok


def test_a_very_long_accept_encoding_is_cut_at_the_cap():
    value = ", ".join(f"c{i}" for i in range(1000)) + ", gzip"
    assert len(encoding.parse_accept_encoding(value)) == encoding.MAX_CODINGS
    assert encoding.accepts_gzip(value) is False  # gzip was past the cap


def test_gzip_is_deterministic_and_round_trips():
    data = b'{"queries": [' + b'{"domain": "a.example"},' * 500 + b"{}]}"
    assert encoding.gzip_bytes(data) == encoding.gzip_bytes(data)
    assert gzip.decompress(encoding.gzip_bytes(data)) == data
    big = data * 20
    assert len(big) >= encoding.GZIP_THREAD_BYTES
    assert gzip.decompress(asyncio.run(encoding.gzip_body(big))) == big


# ---- keep-alive ----------------------------------------------------------------------------------

class Req:
    def __init__(self, version="1.1", connection=None, method="GET"):
        self.http_version = version
        self.method = method
        self.path = "/x"
        self.headers = NoCaseDict({"Connection": connection} if connection is not None else {})


@pytest.mark.parametrize("version, connection, keep", [
    ("1.1", None, True),
    ("1.1", "close", False),
    ("1.1", "Keep-Alive, Close", False),
    ("1.1", "Upgrade", True),
    ("1.0", None, False),
    ("1.0", "keep-alive", True),
    ("1.0", "Keep-Alive", True),
    ("1.0", "keep-alive, close", False),
])
def test_wants_keep_alive(version, connection, keep):
    assert routes.wants_keep_alive(Req(version, connection)) is keep


# ---- write_response ------------------------------------------------------------------------------

class Writer:
    def __init__(self):
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        pass


def send(res: Response, req: Req | None = None, keep: bool = True) -> tuple[bool, str, bytes]:
    writer = Writer()
    kept = asyncio.run(routes.write_response(writer, req or Req(), res, keep))
    head, _, body = writer.data.partition(b"\r\n\r\n")
    return kept, head.decode(), body


def test_status_lines_carry_reason_phrases():
    for status, phrase in ((200, "OK"), (201, "Created"), (404, "Not Found"), (418, "I'm a Teapot"),
                           (503, "Service Unavailable"), (599, "Error")):
        _, head, _ = send(Response(b"x", status))
        assert head.split("\r\n")[0] == f"HTTP/1.1 {status} {phrase}"
        assert "N/A" not in head


def test_a_bytes_body_has_its_length_and_the_connection_stays():
    kept, head, body = send(Response(b"hello", 200, {"Content-Type": "text/plain"}))
    assert kept and body == b"hello"
    assert "Content-Length: 5" in head and "Connection" not in head and "Transfer-Encoding" not in head


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body_no_length_and_no_made_up_type(status):
    res = Response(b"", status, {"ETag": '"abc"'})
    res.headers["Content-Length"] = "0"
    kept, head, body = send(res)
    assert kept and body == b""
    assert head.startswith(f"HTTP/1.1 {status} ")
    assert "Content-Length" not in head and "Content-Type" not in head and 'ETag: "abc"' in head


async def _rows(*chunks):
    for chunk in chunks:
        yield chunk


def test_a_generator_goes_chunked_to_http11_skipping_empty_chunks():
    kept, head, body = send(Response(_rows("ab", "", b"cde")))
    assert kept and "Transfer-Encoding: chunked" in head and "Content-Length" not in head
    assert body == b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"


def test_a_generator_to_http10_is_close_delimited():
    kept, head, body = send(Response(_rows("ab", "cd")), Req("1.0", "keep-alive"))
    assert not kept and "Connection: close" in head and "Transfer-Encoding" not in head
    assert body == b"abcd"


def test_http10_keep_alive_is_said_so():
    kept, head, _ = send(Response(b"x"), Req("1.0", "keep-alive"))
    assert kept and "Connection: keep-alive" in head


def test_head_sends_the_headers_only_and_closes_the_generator():
    gen = _rows("never sent")
    kept, head, body = send(Response(gen), Req(method="HEAD"))
    assert kept and body == b"" and "Transfer-Encoding: chunked" in head
    with pytest.raises(StopAsyncIteration):  # closed: a query-log read would not stay pending
        asyncio.run(anext(gen))
    kept, head, body = send(Response(b"12345"), Req(method="HEAD"))
    assert kept and body == b"" and "Content-Length: 5" in head


def test_a_handlers_connection_close_and_a_close_by_the_server_are_said():
    kept, head, _ = send(Response(b"x", 200, {"Connection": "close"}))
    assert not kept and "Connection: close" in head
    kept, head, _ = send(Response(b"x"), keep=False)
    assert not kept and "Connection: close" in head


def test_a_body_failing_half_way_ends_without_the_last_chunk():
    async def rows():
        yield "first"
        raise RuntimeError("the log went away")

    kept, head, body = send(Response(rows()))
    assert not kept
    assert body == b"5\r\nfirst\r\n"  # no "0\r\n\r\n": the client sees a cut answer


# ---- idle connections at a full cap --------------------------------------------------------------

class Closable:
    def __init__(self):
        self.closed = False

    def close(self) -> None:
        self.closed = True


def full_server():
    """Two slots in all, one per client: "a" busy, "b" idle."""
    web = routes.BurrowWeb()
    web.max_connections, web.max_per_client = 2, 1
    web.active_connections, web.per_client = 2, {"a": 1, "b": 1}
    idle_b = Closable()
    web.idle = {idle_b: "b"}
    return web, idle_b


def test_a_client_at_its_own_cap_closes_nobody_elses_idle_connection():
    web, idle_b = full_server()
    web._make_room("a")  # "a" holds its one slot busy: it will be refused, "b" keeps its connection
    assert not idle_b.closed and web.idle == {idle_b: "b"} and web.active_connections == 2


def test_a_new_client_at_the_total_cap_takes_the_oldest_idle_slot():
    web, idle_b = full_server()
    web._make_room("c")
    assert idle_b.closed and web.idle == {} and web.idle_closes == 1
    assert web.active_connections == 1 and web.per_client == {"a": 1}


def test_a_client_at_its_cap_takes_its_own_idle_slot():
    web, idle_b = full_server()
    web._make_room("b")
    assert idle_b.closed and web.per_client == {"a": 1} and web.active_connections == 1
