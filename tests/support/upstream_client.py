"""Start and script the test upstream (tests/support/upstream.py) from a test.

    with TestUpstream() as up:
        up.set_rule("slow.test", delay_ms=300)
        up.set_rule("bad.test", match="suffix", rcode="SERVFAIL")
        ... point the resolver under test at up.address ...
        assert [q["name"] for q in up.queries()] == ["slow.test"]

The upstream is a real separate process (``sys.executable -m tests.support.upstream``,
cwd = repo root), so tests exercise real sockets and real timing. See the docstring of
tests/support/upstream.py for every behaviour key ``set_rule`` accepts.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


class UpstreamError(RuntimeError):
    """The test upstream failed to start or refused a control request."""


class TestUpstream:
    """A scriptable upstream DNS server in its own process, on loopback.

    Attributes once started: ``host``, ``dns_port`` (UDP and TCP), ``control_port``,
    ``address`` ("127.0.0.1:PORT"), ``pid``.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, host: str = "127.0.0.1", *, startup_timeout: float = 30.0,
                 control_timeout: float = 30.0) -> None:  # bound failures only: generous
        self.host = host
        self.startup_timeout = startup_timeout
        self.control_timeout = control_timeout
        self.dns_port: int = 0
        self.control_port: int = 0
        self.pid: int = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None  # a temp file holding the child's stderr while it runs

    # -- lifecycle ------------------------------------------------------------
    @property
    def address(self) -> str:
        """``"host:port"`` of the DNS listener, as Burrow's upstream_dns_servers wants it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.dns_port}"

    def start(self) -> "TestUpstream":
        """Spawn the process and wait (bounded) for its ready line."""
        if self._proc is not None:
            return self
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.upstream", "--host", self.host,
             "--port", "0", "--control-port", "0"],
            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._stderr)
        try:
            ready = self._read_ready_line()
        except BaseException:
            self.stop()
            raise
        self.dns_port = int(ready["dns_port"])
        self.control_port = int(ready["control_port"])
        self.pid = int(ready["pid"])
        return self

    def _read_ready_line(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise UpstreamError(
                        f"test upstream not ready after {self.startup_timeout}s"
                        f"{self._stderr_tail()}")
                if not selector.select(timeout=remaining):
                    continue
                chunk = os.read(self._proc.stdout.fileno(), 4096)
                if not chunk:
                    raise UpstreamError(
                        f"test upstream exited (code {self._proc.poll()}) before it was "
                        f"ready{self._stderr_tail()}")
                buffer += chunk
        return json.loads(buffer.split(b"\n", 1)[0])

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read()[-2000:].decode(errors="replace")
        except (OSError, ValueError):
            return ""
        return f"; stderr:\n{text}" if text else ""

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> "TestUpstream":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- control --------------------------------------------------------------
    def _control(self, op: str, **fields: Any) -> dict[str, Any]:
        if not self.running:
            raise UpstreamError(f"test upstream is not running{self._stderr_tail()}")
        request = json.dumps({"op": op, **fields}).encode() + b"\n"
        with socket.create_connection((self.host, self.control_port),
                                      timeout=self.control_timeout) as sock:
            sock.sendall(request)
            buffer = b""
            deadline = time.monotonic() + self.control_timeout
            while not buffer.endswith(b"\n"):
                if time.monotonic() > deadline:
                    raise UpstreamError(f"control request {op!r} timed out")
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                buffer += chunk
        response = json.loads(buffer)
        if not response.get("ok"):
            raise UpstreamError(f"control request {op!r} failed: {response.get('error')}")
        return response

    def set_rule(self, name: str, **behaviour: Any) -> None:
        """Script the answers for ``name`` (see tests/support/upstream.py for the keys).

        ``match="suffix"`` makes the rule cover every name below ``name`` too; a second
        call for the same (name, match, qtype) replaces the earlier rule.
        """
        self._control("set_rule", name=name, **behaviour)

    def reset(self) -> None:
        """Drop every rule; the default answers apply again. The query log is kept."""
        self._control("reset")

    def queries(self) -> list[dict[str, Any]]:
        """The received queries, oldest first: dicts with name, type, transport, src,
        edns, edns_size, do, id, rd, time."""
        return self._control("queries")["queries"]

    def clear_log(self) -> None:
        """Forget the logged queries and zero the count."""
        self._control("clear_log")

    def query_count(self) -> int:
        """Queries received since start or the last clear_log()."""
        return int(self._control("count")["count"])

    def ping(self) -> None:
        self._control("ping")
