"""Run the real ``burrow`` process on loopback ports with a temporary data dir.

    with BurrowProcess(tmp_path, upstreams=[up.address]) as b:
        reply = b.query("www.example.com", "A")
        r = b.http("GET", "/healthz")
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import dns.message
import dns.query

REPO_ROOT = Path(__file__).resolve().parents[2]


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


_EPHEMERAL = _ephemeral_range()
_HANDED_OUT: set[int] = set()
_PORTS = random.Random(os.getpid() ^ time.monotonic_ns())


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP right now, for a server the test starts next.

    Taken below the kernel's ephemeral range (10000 up to it), at random, and never twice in
    one test run: a port the kernel picked (bind to 0) can be handed by the kernel to the next
    outgoing socket before the server binds it ("address already in use" on a busy machine);
    one below the range only collides with another process doing the same."""
    low = 10000
    high = _EPHEMERAL[0] - 1 if _EPHEMERAL[0] > low + 1000 else 65535
    for _ in range(200):
        port = _PORTS.randint(low, high)
        if port in _HANDED_OUT or _EPHEMERAL[0] <= port <= _EPHEMERAL[1]:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                u.bind((host, port))
                t.bind((host, port))
        except OSError:
            continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port found")


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def write_toml(path: Path, config: dict) -> None:
    lines = [f"{k} = {toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for section, table in config.items():
        if isinstance(table, dict):
            lines.append(f"\n[{section}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")


def _opener_from(source: str) -> urllib.request.OpenerDirector:
    """A urllib opener whose HTTP connections start from the local address ``source``."""

    class SourceHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(http.client.HTTPConnection, req, source_address=(source, 0))

    return urllib.request.build_opener(SourceHandler)


class _PortTaken(RuntimeError):
    """burrow exited at start: one of its ports was in use."""


class BurrowProcess:
    """The real ``burrow run`` in a subprocess. ``config`` tables merge over test defaults.
    ``command`` starts another installation (e.g. ``[venv/bin/burrow]``); by default this
    interpreter's ``python -m burrow``.

    The clients' default timeouts (start-up, ``query``, ``http``) bound calls that must succeed,
    so they are generous: a busy machine makes an answer late, not wrong. A test that expects
    silence passes its own short timeout."""

    __test__ = False

    def __init__(self, workdir: Path, upstreams: list[str] | None = None, config: dict | None = None,
                 startup_timeout: float = 60.0, command: list[str] | None = None):
        self.workdir = Path(workdir)
        self.command = list(command or [sys.executable, "-m", "burrow"])
        self.dns_port = free_port()
        self.web_port = free_port()
        while self.web_port == self.dns_port:  # each free_port() releases its socket: may repeat
            self.web_port = free_port()
        self.data_dir = self.workdir / "data"
        base = {
            "upstream_dns_servers": upstreams or ["127.0.0.1:9"],
            "server": {"listen_address": f"127.0.0.1:{self.dns_port}",
                       "web_ui_address": f"127.0.0.1:{self.web_port}"},
            "rate_limit": {"enabled": False},
            "compat": {"pihole_address": ""},  # the Pi-hole face's listener: off unless a test opens it
            "storage": {"data_dir": str(self.data_dir), "query_log_flush_interval": 1.0},
            "logging": {"level": "debug"},
            "upstream": {"timeout": 1.0},
            # The test upstream answers every name with 10.x / fd00:: addresses (private space):
            # rebinding protection is on by default and tested on its own (test_private_names).
            "local": {"rebind_protection": False},
        }
        for key, value in (config or {}).items():
            if isinstance(value, dict):
                base.setdefault(key, {}).update(value)
            else:
                base[key] = value
        self.config = base
        self.config_path = self.workdir / "burrow.toml"
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="burrow-log-", suffix=".txt", delete=False)

    def start(self) -> "BurrowProcess":
        """Start and wait until /healthz answers. If a port was taken meanwhile (by another
        test run on the machine: free_port's range is shared) and the ports are the ones we
        chose and nothing else in the config refers to them, start again on fresh ones."""
        for attempt in range(3):
            try:
                return self._start_once()
            except _PortTaken:
                if attempt == 2 or not self._may_move_ports():
                    raise
                self._move_ports()
        raise AssertionError("unreachable")

    def _addresses(self) -> tuple[str, str]:
        return f"127.0.0.1:{self.dns_port}", f"127.0.0.1:{self.web_port}"

    def _may_move_ports(self) -> bool:
        dns_address, web_address = self._addresses()
        text = json.dumps(self.config)
        server = self.config.get("server", {})
        return (server.get("listen_address") == dns_address and server.get("web_ui_address") == web_address
                and text.count(dns_address) == 1 and text.count(web_address) == 1)

    def _move_ports(self) -> None:
        self.dns_port, self.web_port = free_port(), free_port()
        self.config["server"]["listen_address"], self.config["server"]["web_ui_address"] = self._addresses()

    def _start_once(self) -> "BurrowProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_toml(self.config_path, self.config)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([*self.command, "run", "--config", str(self.config_path)],
                                     cwd=self.workdir, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self.output()
                kind = _PortTaken if "address already in use" in output else RuntimeError
                raise kind(f"burrow exited with {self.proc.returncode}:\n{output}")
            try:
                status, _ = self.http("GET", "/healthz", timeout=0.5)
                if status == 200 and self.proc.poll() is None:
                    self._wait_tls_listeners(deadline)
                    return self
            except (OSError, http.client.HTTPException):  # not up yet, or someone else's port
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"burrow did not become healthy:\n{self.output()}")

    def _tls_ports(self) -> list[int]:
        """The DoT and HTTPS ports the configuration opens at start: with a certificate from the
        start (manual or self-signed; an ACME mode opens them only once one is issued)."""
        tls = self.config.get("tls", {})
        if tls.get("mode") not in ("manual", "self_signed"):
            return []
        addresses = [tls.get("https_address") or ""]
        if tls.get("dot_enabled"):
            addresses.append(tls.get("dot_address") or "")
        return [int(a.rsplit(":", 1)[1]) for a in addresses if a.startswith("127.0.0.1:")]

    def _wait_tls_listeners(self, deadline: float) -> None:
        """/healthz answers once the web service is up; the TLS service starts after it (app.py
        START_ORDER), so its listeners may still be opening: wait for them too, as the tests use
        them at once (one was refused on a loaded machine)."""
        for port in self._tls_ports():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"burrow did not open its TLS listener on {port}:\n{self.output()}") \
                            from None
                    time.sleep(0.05)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-8000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> "BurrowProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    # ---- clients --------------------------------------------------------------------------------

    @property
    def dns_address(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    def query(self, name: str, rdtype: str = "A", tcp: bool = False, timeout: float = 10.0,
              source: str | None = None, **make_kw) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype, **make_kw)
        if tcp:
            return dns.query.tcp(q, "127.0.0.1", port=self.dns_port, timeout=timeout, source=source)
        return dns.query.udp(q, "127.0.0.1", port=self.dns_port, timeout=timeout, source=source)

    def send_raw(self, packet: bytes, timeout: float = 2.0, source: str = "127.0.0.1") -> bytes | None:
        """Send one UDP datagram; the reply bytes, or None when nothing came back in time."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((source, 0))
            s.settimeout(timeout)
            s.sendto(packet, ("127.0.0.1", self.dns_port))
            try:
                return s.recv(65535)
            except socket.timeout:
                return None

    def http(self, method: str, path: str, body: Any = None, timeout: float = 30.0,
             headers: dict | None = None, source: str | None = None) -> tuple[int, Any]:
        """(status, parsed JSON or text). ``source`` binds the client socket to that local
        address (e.g. "127.0.0.2") so a test can call from another loopback address."""
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(f"http://127.0.0.1:{self.web_port}{path}", data=data,
                                     method=method, headers=hdrs)
        opener = urllib.request.urlopen if source is None else _opener_from(source).open
        try:
            with opener(req, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")
