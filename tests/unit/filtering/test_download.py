"""burrow.filtering.download: a real HTTP(S) server on loopback, in a thread."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import threading
import zlib
from pathlib import Path

import pytest

from burrow.filtering import download
from burrow.filtering.download import FetchError, TooLarge, TooManyRedirects, fetch


class ListServer:
    """A tiny scriptable HTTP/1.1 server: ``routes[path] = callable(handler)``.

    Every request's path and headers are recorded in ``requests``. Optionally TLS.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self.routes: dict = {}
        self.requests: list[tuple[str, dict]] = []
        self.sni: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if ssl_context is not None:
            def sni_cb(sock, name, ctx):
                server.sni.append(name)
            ssl_context.sni_callback = sni_cb
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def send_body(h, body: bytes, status: int = 200, headers: dict | None = None,
              chunked: bool = False, length: bool = True) -> None:
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    if chunked:
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for i in range(0, len(body), 700):
            part = body[i:i + 700]
            h.wfile.write(b"%x;ext=1\r\n" % len(part) + part + b"\r\n")
        h.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        h.wfile.flush()
        return
    if length:
        h.send_header("Content-Length", str(len(body)))
    else:
        h.send_header("Connection", "close")
        h.close_connection = True
    h.end_headers()
    h.wfile.write(body)
    h.wfile.flush()


def etag_route(body: bytes, etag: str = '"v1"', last_modified: str = "Mon, 01 Jan 2024 00:00:00 GMT"):
    def route(h):
        inm = h.headers.get("If-None-Match")  # takes precedence (RFC 9110 13.2.2)
        if inm == etag or (inm is None and h.headers.get("If-Modified-Since") == last_modified):
            h.send_response(304)
            h.send_header("ETag", etag)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        send_body(h, body, headers={"ETag": etag, "Last-Modified": last_modified})
    return route


def resolver(mapping=None):
    calls = []

    async def resolve(host):
        calls.append(host)
        await asyncio.sleep(0)
        return (mapping or {}).get(host, ["127.0.0.1"])

    resolve.calls = calls
    return resolve


LIST = b"# test list\n0.0.0.0 ads.example\n0.0.0.0 tracker.example\n"


@pytest.fixture
def server():
    with ListServer() as s:
        yield s


def run(coro):
    return asyncio.run(coro)


def test_download_then_conditional_304(server, tmp_path):
    server.routes["/hosts.txt"] = etag_route(LIST)
    dest = tmp_path / "list.txt"
    res = run(fetch(server.url("/hosts.txt"), dest))
    assert res.status == "updated" and res.bytes == len(LIST) and res.http_status == 200
    assert res.etag == '"v1"' and res.last_modified.startswith("Mon, 01 Jan 2024")
    assert dest.read_bytes() == LIST
    path, headers = server.requests[-1]
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert "if-none-match" not in headers and "gzip" in headers["accept-encoding"]

    dest.write_bytes(b"previous copy\n")
    res2 = run(fetch(server.url("/hosts.txt"), dest, etag=res.etag, last_modified=res.last_modified))
    assert res2.status == "not_modified" and res2.bytes == 0 and res2.etag == '"v1"'
    _, headers = server.requests[-1]
    assert headers["if-none-match"] == '"v1"'
    assert headers["if-modified-since"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert dest.read_bytes() == b"previous copy\n"  # untouched on 304
    # Only If-Modified-Since known: still conditional.
    res3 = run(fetch(server.url("/hosts.txt"), dest, last_modified=res.last_modified))
    assert res3.status == "not_modified"


def test_validators_with_newlines_are_not_sent(server, tmp_path):
    server.routes["/l"] = etag_route(LIST)
    res = run(fetch(server.url("/l"), tmp_path / "x", etag='"v1"\r\nX-Evil: 1'))
    assert res.status == "updated"
    _, headers = server.requests[-1]
    assert "x-evil" not in headers and "if-none-match" not in headers


def test_size_cap_from_content_length_and_while_streaming(server, tmp_path):
    big = b"0.0.0.0 a.example\n" * 10000  # 180 kB
    server.routes["/len"] = lambda h: send_body(h, big)
    server.routes["/eof"] = lambda h: send_body(h, big, length=False)
    server.routes["/chunked"] = lambda h: send_body(h, big, chunked=True)
    gz = gzip.compress(b"\0" * (5 * 1024 * 1024))  # 5 MB of zeros, ~5 kB compressed
    server.routes["/bomb"] = lambda h: send_body(h, gz, headers={"Content-Encoding": "gzip"})
    dest = tmp_path / "list.txt"
    dest.write_bytes(b"old\n")
    for path in ("/len", "/eof", "/chunked", "/bomb"):
        with pytest.raises(TooLarge, match="cap"):
            run(fetch(server.url(path), dest, max_bytes=64 * 1024))
        assert dest.read_bytes() == b"old\n", path  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["list.txt"]  # no temporary file left behind
    # Under the cap: fine.
    assert run(fetch(server.url("/chunked"), dest, max_bytes=len(big))).bytes == len(big)


def test_redirects_followed_and_capped(server, tmp_path):
    for i in range(1, 8):
        server.routes[f"/r{i}"] = (lambda n: lambda h: send_body(
            h, b"", status=302, headers={"Location": f"/r{n - 1}"}))(i)
    server.routes["/r0"] = lambda h: send_body(h, LIST)
    server.routes["/loop"] = lambda h: send_body(h, b"", status=301, headers={"Location": "/loop"})
    dest = tmp_path / "l"
    res = run(fetch(server.url("/r3"), dest, max_redirects=5))
    assert res.status == "updated" and res.url.endswith("/r0") and dest.read_bytes() == LIST
    with pytest.raises(TooManyRedirects):
        run(fetch(server.url("/r7"), dest, max_redirects=5))
    n = len(server.requests)
    with pytest.raises(TooManyRedirects):
        run(fetch(server.url("/loop"), dest, max_redirects=2))
    assert len(server.requests) - n == 3  # the first request + 2 redirects, then stop


def test_chunked_gzip_and_deflate(server, tmp_path):
    body = b"".join(b"||ad%d.example^\n" % i for i in range(3000))
    server.routes["/gz"] = lambda h: send_body(h, gzip.compress(body), chunked=True,
                                               headers={"Content-Encoding": "gzip"})
    server.routes["/zlib"] = lambda h: send_body(h, zlib.compress(body),
                                                 headers={"Content-Encoding": "deflate"})
    raw = zlib.compressobj(wbits=-15)
    raw_body = raw.compress(body) + raw.flush()
    server.routes["/raw"] = lambda h: send_body(h, raw_body, headers={"Content-Encoding": "deflate"})
    server.routes["/plainchunk"] = lambda h: send_body(h, body, chunked=True)
    # A .gz file served as a file (no Content-Encoding) is saved as is.
    server.routes["/file.gz"] = lambda h: send_body(h, gzip.compress(body),
                                                    headers={"Content-Type": "application/gzip"})
    for path in ("/gz", "/zlib", "/raw", "/plainchunk"):
        dest = tmp_path / path.strip("/")
        res = run(fetch(server.url(path), dest))
        assert dest.read_bytes() == body, path
        assert res.bytes == len(body)
    dest = tmp_path / "file.gz"
    run(fetch(server.url("/file.gz"), dest))
    assert gzip.decompress(dest.read_bytes()) == body


def test_truncated_and_error_bodies_fail_cleanly(server, tmp_path):
    def short(h):
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b"only a bit")
        h.close_connection = True
    server.routes["/short"] = short
    server.routes["/500"] = lambda h: send_body(h, b"oops", status=500)
    server.routes["/badgz"] = lambda h: send_body(h, b"not gzip at all", headers={"Content-Encoding": "gzip"})
    dest = tmp_path / "l"
    with pytest.raises(FetchError, match="connection closed"):
        run(fetch(server.url("/short"), dest))
    with pytest.raises(download.HTTPStatusError, match="HTTP 500"):
        run(fetch(server.url("/500"), dest))
    with pytest.raises(FetchError, match="gzip"):
        run(fetch(server.url("/badgz"), dest))
    with pytest.raises(FetchError, match="HTTP 404"):
        run(fetch(server.url("/missing"), dest))
    assert not dest.exists() and os.listdir(tmp_path) == []


def test_timeout_bounds_the_whole_fetch(tmp_path):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(5)  # accepts (kernel backlog) but never answers
    try:
        port = lsock.getsockname()[1]
        with pytest.raises(FetchError, match="timed out"):
            run(fetch(f"http://127.0.0.1:{port}/x", tmp_path / "l", timeout=0.5))
    finally:
        lsock.close()


def test_resolution_goes_through_resolve_callable(server, tmp_path):
    server.routes["/l"] = lambda h: send_body(h, LIST)
    resolve = resolver({"lists.burrow.invalid": ["127.0.0.1"]})
    res = run(fetch(f"http://lists.burrow.invalid:{server.port}/l", tmp_path / "l", resolve=resolve))
    assert res.status == "updated" and resolve.calls == ["lists.burrow.invalid"]
    assert server.requests[-1][1]["host"] == f"lists.burrow.invalid:{server.port}"
    # A sync resolver, and a failing one.
    res = run(fetch(f"http://x.invalid:{server.port}/l", tmp_path / "l", resolve=lambda h: ["127.0.0.1"]))
    assert res.status == "updated"

    async def broken(host):
        raise RuntimeError("no upstream")
    with pytest.raises(FetchError, match="cannot resolve x.invalid"):
        run(fetch(f"http://x.invalid:{server.port}/l", tmp_path / "l", resolve=broken))
    # The first address refuses the connection: the next one is tried.
    res = run(fetch(f"http://x.invalid:{server.port}/l", tmp_path / "l",
                    resolve=lambda h: ["127.0.0.3", "127.0.0.1"]))
    assert res.status == "updated"


def test_bad_urls(tmp_path):
    with pytest.raises(FetchError, match="scheme"):
        run(fetch("ftp://example.com/x", tmp_path / "l"))
    with pytest.raises(FetchError, match="spaces"):
        run(fetch("http://127.0.0.1:1/a b", tmp_path / "l"))


def test_redirect_to_another_scheme_refused(server, tmp_path):
    server.routes["/up"] = lambda h: send_body(h, b"", status=302,
                                               headers={"Location": "gopher://x/"})
    with pytest.raises(FetchError, match="unsupported URL"):
        run(fetch(server.url("/up"), tmp_path / "l"))


# ---------------------------------------------------------------------------- HTTPS


def _make_cert(tmp: Path, name: str) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not available to make a test certificate")
    key, crt = tmp / f"{name}.key", tmp / f"{name}.crt"
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
           "-out", str(crt), "-days", "2", "-subj", f"/CN={name}",
           "-addext", f"subjectAltName=DNS:{name}"]
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    if proc.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {proc.stderr[-200:]!r}")
    return str(crt), str(key)


@pytest.fixture
def tls_server(tmp_path):
    crt, key = _make_cert(tmp_path, "lists.burrow.test")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    with ListServer(ctx) as s:
        s.cafile = crt
        yield s


def test_https_verifies_the_hostname_while_connecting_to_the_resolved_ip(tls_server, tmp_path):
    tls_server.routes["/l"] = lambda h: send_body(h, LIST, headers={"ETag": '"t"'})
    client = ssl.create_default_context(cafile=tls_server.cafile)
    resolve = resolver({"lists.burrow.test": ["127.0.0.1"]})
    res = run(fetch(f"https://lists.burrow.test:{tls_server.port}/l", tmp_path / "l",
                    resolve=resolve, ssl_context=client))
    assert res.status == "updated" and (tmp_path / "l").read_bytes() == LIST
    assert resolve.calls == ["lists.burrow.test"]
    assert tls_server.sni[-1] == "lists.burrow.test"  # SNI carries the name, not the IP

    # The same server under another name: the certificate does not match → refused.
    with pytest.raises(FetchError, match="(?i)certificate|TLS"):
        run(fetch(f"https://other.burrow.test:{tls_server.port}/l", tmp_path / "m",
                  resolve=resolver(), ssl_context=client))
    # Without trusting the test CA (default context): refused too.
    with pytest.raises(FetchError, match="(?i)certificate|TLS"):
        run(fetch(f"https://lists.burrow.test:{tls_server.port}/l", tmp_path / "m",
                  resolve=resolver()))
    assert not (tmp_path / "m").exists()


def test_https_to_http_redirect_refused(tls_server, tmp_path):
    tls_server.routes["/down"] = lambda h: send_body(
        h, b"", status=302, headers={"Location": "http://127.0.0.1:1/plain"})
    client = ssl.create_default_context(cafile=tls_server.cafile)
    with pytest.raises(FetchError, match="https to http"):
        run(fetch(f"https://lists.burrow.test:{tls_server.port}/down", tmp_path / "l",
                  resolve=resolver(), ssl_context=client))


# ---------------------------------------------------------------------------- bootstrap


class FakeDNS(asyncio.DatagramProtocol):
    """Answers A/AAAA from a table, with a CNAME hop for names in ``cnames``."""

    def __init__(self, table, cnames=None):
        self.table = table
        self.cnames = cnames or {}
        self.questions = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        from dnslib import AAAA, CNAME, QTYPE, RR, A, DNSRecord

        q = DNSRecord.parse(data)
        name = str(q.q.qname).rstrip(".")
        qtype = QTYPE[q.q.qtype]
        self.questions.append((name, qtype))
        reply = q.reply()
        target = name
        if name in self.cnames:
            target = self.cnames[name]
            reply.add_answer(RR(name, QTYPE.CNAME, rdata=CNAME(target), ttl=60))
        for value in self.table.get((target, qtype), []):
            rdata = A(value) if qtype == "A" else AAAA(value)
            reply.add_answer(RR(target, getattr(QTYPE, qtype), rdata=rdata, ttl=60))
        # An unrelated record must not be taken as an address for the name.
        if qtype == "A":
            reply.add_answer(RR("unrelated.example", QTYPE.A, rdata=A("10.9.9.9"), ttl=60))
        self.transport.sendto(reply.pack(), addr)


def test_upstream_resolver_uses_the_pool(tmp_path, server):
    from burrow.dns.upstream import UpstreamPool, UpstreamSettings

    server.routes["/l"] = lambda h: send_body(h, LIST)

    async def scenario():
        loop = asyncio.get_running_loop()
        proto = FakeDNS({("edge.cdn.test", "A"): ["127.0.0.1"],
                         ("edge.cdn.test", "AAAA"): ["::1"]},
                        cnames={"lists.example.test": "edge.cdn.test"})
        transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        try:
            pool = UpstreamPool([("127.0.0.1", port)], UpstreamSettings(timeout=1.0, max_attempts=2))
            resolve = download.upstream_resolver(pool)
            addrs = await resolve("Lists.Example.Test")
            assert addrs == ["127.0.0.1", "::1"]
            assert await resolve("127.0.0.1") == ["127.0.0.1"]
            with pytest.raises(FetchError, match="cannot resolve nothing.test"):
                await resolve("nothing.test")
            res = await fetch(f"http://lists.example.test:{server.port}/l", tmp_path / "l",
                              resolve=resolve)
            assert res.status == "updated"
            return proto.questions
        finally:
            transport.close()

    questions = run(scenario())
    assert ("lists.example.test", "A") in questions and ("lists.example.test", "AAAA") in questions
