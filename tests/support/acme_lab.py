"""A loopback lab for ACME tests: Debian's Pebble (a test ACME server) started on ports the test
picks, a DNS responder Pebble resolves through, and a fake of Cloudflare's DNS API whose TXT
records that responder serves.

* :func:`make_tls_ca` makes a CA and a certificate for ``127.0.0.1``/``localhost`` signed by it:
  Pebble's directory listens on TLS with them (Debian ships Pebble without its test certificates),
  and the ACME client is pointed at the CA file.
* :class:`Pebble` runs ``pebble -config <json> -dnsserver 127.0.0.1:<port>`` with
  ``PEBBLE_VA_NOSLEEP=1`` (validate at once), ``PEBBLE_WFE_NONCEREJECT=0`` (no random bad nonces)
  and ``PEBBLE_AUTHZREUSE=0`` (every order is validated afresh); ``intermediates()`` reads the
  chain it issues under from its management interface.
* :class:`DnsResponder` (UDP and TCP, dnslib) answers every A question with 127.0.0.1 (so Pebble's
  HTTP-01 check comes to the test's responder), no AAAA, and TXT from ``txt``.
* :class:`FakeCloudflare` speaks the part of Cloudflare's API v4 that DNS-01 uses (zones by name,
  create and delete DNS records, a Bearer token) and puts the TXT records into ``txt``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import ssl
import subprocess
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from tests.support.burrow_proc import free_port
from tests.support.timing import wait_for

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"


def make_tls_ca(folder: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server cert.pem, server key.pem) for 127.0.0.1 and localhost."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "burrow test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class Pebble:
    """Pebble on loopback; ``directory`` is its ACME directory URL, ``ca_file`` the CA of its TLS."""

    def __init__(self, workdir: Path, dns_port: int, http_port: int):
        self.workdir = workdir
        self.dns_port = dns_port
        self.http_port = http_port
        self.port = free_port()
        self.management_port = free_port()
        self.ca_file, cert, key = make_tls_ca(workdir / "pebble-tls")
        self.config = workdir / "pebble.json"
        self.config.write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(cert), "privateKey": str(key),
            "httpPort": http_port, "tlsPort": free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": False}}))
        self.directory = f"https://127.0.0.1:{self.port}/dir"
        self.log = workdir / "pebble.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Pebble:
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [PEBBLE, "-config", str(self.config), "-dnsserver", f"127.0.0.1:{self.dns_port}"],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        wait_for(self._answers, what=f"pebble's directory ({self.log})")
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"pebble exited: {self.log.read_text()[-2000:]}")
        try:
            self.get(self.directory)
            return True
        except OSError:
            return False

    def get(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(url, timeout=10, context=context) as answer:
            return bytes(answer.read())

    def intermediates(self) -> bytes:
        """The PEM of the intermediate Pebble issues under."""
        return self.get(f"https://127.0.0.1:{self.management_port}/intermediates/0")

    def roots(self) -> bytes:
        """The PEM of the root Pebble's chains end in (a client's trust anchor)."""
        return self.get(f"https://127.0.0.1:{self.management_port}/roots/0")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class DnsResponder:
    """Answers A with 127.0.0.1 for every name, TXT from ``txt`` (name without the trailing dot
    → values), anything else with no records."""

    def __init__(self, txt: dict[str, list[str]] | None = None):
        self.txt: dict[str, list[str]] = txt if txt is not None else {}
        self.questions: list[tuple[str, str]] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def answer(self, packet: bytes) -> bytes:
        from dnslib import QTYPE, RR, TXT, A, DNSRecord

        query = DNSRecord.parse(packet)
        reply = query.reply()
        name = str(query.q.qname).rstrip(".").lower()
        qtype = QTYPE[query.q.qtype]
        self.questions.append((name, qtype))
        if qtype == "A":
            reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A("127.0.0.1"), ttl=0))
        elif qtype == "TXT":
            for value in self.txt.get(name, []):
                reply.add_answer(RR(query.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=0))
        return bytes(reply.pack())

    async def start(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        responder = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport):  # type: ignore[no-untyped-def]
                self.transport = transport

            def datagram_received(self, data, addr):  # type: ignore[no-untyped-def]
                self.transport.sendto(responder.answer(data), addr)

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                size = int.from_bytes(await reader.readexactly(2), "big")
                out = responder.answer(await reader.readexactly(size))
                writer.write(len(out).to_bytes(2, "big") + out)
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self._udp, _ = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", port))
        self._tcp = await asyncio.start_server(tcp, "127.0.0.1", port)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()


class FakeCloudflare:
    """Cloudflare's API v4 as DNS-01 uses it, at ``http://127.0.0.1:<port>/client/v4``.

    ``zones`` maps a zone name to its id; records created go to ``records`` (id → (zone id,
    name, content)) and their TXT values to ``txt`` (shared with a DnsResponder). A request
    without ``Authorization: Bearer <token>`` gets Cloudflare's 403 answer; ``refuse`` set to a
    message makes record creation fail with a 400 carrying it (Cloudflare echoes input in its
    errors, so a test can put the token there). ``requests`` lists (method, path, authorized)."""

    def __init__(self, token: str, zones: dict[str, str], txt: dict[str, list[str]]):
        self.token = token
        self.zones = zones
        self.txt = txt
        self.records: dict[str, tuple[str, str, str]] = {}
        self.requests: list[tuple[str, str, bool]] = []
        self.refuse: str | None = None
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/v4"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:] if ":" in h)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status, answer = self.route(method, target, headers.get("authorization", ""), body)
            data = json.dumps(answer).encode()
            writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (status, len(data), data))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def route(self, method: str, target: str, authorization: str, body: bytes) -> tuple[int, dict]:
        url = urllib.parse.urlsplit(target)
        authorized = authorization == f"Bearer {self.token}"
        self.requests.append((method, url.path, authorized))
        if not authorized:
            return 403, {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}],
                         "messages": [], "result": None}
        parts = url.path.removeprefix("/client/v4/").split("/")
        if method == "GET" and parts == ["zones"]:
            name = urllib.parse.parse_qs(url.query).get("name", [""])[0]
            found = [{"id": self.zones[name], "name": name}] if name in self.zones else []
            return 200, {"success": True, "errors": [], "messages": [], "result": found}
        if len(parts) >= 3 and parts[0] == "zones" and parts[2] == "dns_records":
            zone_id = parts[1]
            if zone_id not in self.zones.values():
                return 404, {"success": False, "errors": [{"code": 7003, "message": "Could not route"}]}
            if method == "POST" and len(parts) == 3:
                if self.refuse is not None:
                    return 400, {"success": False, "errors": [{"code": 9005, "message": self.refuse}]}
                record = json.loads(body)
                record_id = uuid.uuid4().hex
                self.records[record_id] = (zone_id, record["name"], record["content"])
                self.txt.setdefault(record["name"].rstrip(".").lower(), []).append(record["content"])
                return 200, {"success": True, "errors": [], "messages": [],
                             "result": {"id": record_id, "type": "TXT", **record}}
            if method == "DELETE" and len(parts) == 4 and parts[3] in self.records:
                _, name, content = self.records.pop(parts[3])
                self.txt[name.rstrip(".").lower()].remove(content)
                return 200, {"success": True, "errors": [], "messages": [], "result": {"id": parts[3]}}
        return 404, {"success": False, "errors": [{"code": 7000, "message": "No route for that URI"}]}


class LabThread:
    """A DnsResponder (on ``dns_port``) and a FakeCloudflare on an event loop of their own in a
    thread, for tests whose ACME client is another process (the real burrow): Pebble resolves
    through the responder while the test goes on synchronously."""

    def __init__(self, dns_port: int, token: str, zones: dict[str, str]):
        import threading

        self.txt: dict[str, list[str]] = {}
        self.dns = DnsResponder(self.txt)
        self.cloudflare = FakeCloudflare(token, zones, self.txt)
        self.dns_port = dns_port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="acme-lab", daemon=True)

    def _run(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def start(self) -> LabThread:
        self.thread.start()
        self._run(self.dns.start(self.dns_port))
        self._run(self.cloudflare.start())
        return self

    def stop(self) -> None:
        self._run(self.dns.close())
        self._run(self.cloudflare.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
