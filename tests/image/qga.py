"""A small client for the QEMU guest agent (qemu-ga) over the unix socket qemu offers it on:
run a command in the booted image and read its exit status and output, or power it off.

The protocol is QMP-style JSON lines (https://www.qemu.org/docs/master/interop/qemu-ga-ref.html):
``guest-sync-delimited`` resynchronises after a reconnect (its answer is preceded by a 0xFF byte),
``guest-exec`` starts a program and returns a pid, ``guest-exec-status`` polls it until
``exited`` (output base64-encoded), ``guest-shutdown`` powers off (no answer comes back).
"""

from __future__ import annotations

import base64
import json
import random
import socket
import time
from dataclasses import dataclass


class AgentError(RuntimeError):
    pass


@dataclass
class Done:
    status: int
    out: str
    err: str


class GuestAgent:
    def __init__(self, path: str) -> None:
        self.path = path
        self.sock: socket.socket | None = None
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buf = b""

    def _send(self, message: dict) -> None:
        assert self.sock is not None
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def _line(self, deadline: float) -> bytes:
        assert self.sock is not None
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the guest agent did not answer")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the guest agent closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def connect(self, timeout: float) -> None:
        """Connect and synchronise; retried until ``timeout`` (the agent starts with the guest)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            self.close()
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(self.path)
                token = random.randrange(1, 2**31)
                self._send({"execute": "guest-sync-delimited", "arguments": {"id": token}})
                sync_deadline = min(deadline, time.monotonic() + 5)
                while True:
                    line = self._line(sync_deadline).lstrip(b"\xff").strip()
                    if line and json.loads(line).get("return") == token:
                        return
            except (OSError, TimeoutError, ConnectionError, ValueError) as e:
                last = e
                time.sleep(1)
        self.close()
        raise AgentError(f"no guest agent on {self.path} within {timeout:.0f} s ({last})")

    def call(self, command: str, arguments: dict | None = None, timeout: float = 30) -> object:
        message: dict = {"execute": command}
        if arguments is not None:
            message["arguments"] = arguments
        self._send(message)
        deadline = time.monotonic() + timeout
        while True:
            answer = json.loads(self._line(deadline).lstrip(b"\xff") or b"{}")
            if "error" in answer:
                raise AgentError(f"{command}: {answer['error']}")
            if "return" in answer:
                return answer["return"]

    def run(self, *argv: str, timeout: float = 60) -> Done:
        """Run ``argv`` in the guest (as root, no shell) and wait for it."""
        started = self.call("guest-exec", {"path": argv[0], "arg": list(argv[1:]), "capture-output": True})
        assert isinstance(started, dict), started
        pid = started["pid"]
        deadline = time.monotonic() + timeout
        while True:
            status = self.call("guest-exec-status", {"pid": pid})
            assert isinstance(status, dict), status
            if status.get("exited"):
                out = base64.b64decode(status.get("out-data", "")).decode(errors="replace")
                err = base64.b64decode(status.get("err-data", "")).decode(errors="replace")
                return Done(status.get("exitcode", -1), out, err)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{argv} still running after {timeout} s")
            time.sleep(0.2)

    def sh(self, script: str, timeout: float = 60) -> Done:
        return self.run("/bin/sh", "-c", script, timeout=timeout)

    def poweroff(self) -> None:
        """A clean poweroff (systemd stops every service, Burrow flushes its query log)."""
        self._send({"execute": "guest-shutdown", "arguments": {"mode": "powerdown"}})
