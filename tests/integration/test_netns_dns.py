"""Multi-homed answers: a client in another network namespace gets each reply from the address
it asked, including an address added while Burrow runs (per-address sockets, bind-dynamic style).

Needs root and iproute2's ``ip``; skipped otherwise. Everything runs inside two namespaces this
test creates (TEST-NET-2 addresses that exist only there) and deletes in ``finally``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.burrow_proc import write_toml
from tests.support.timing import wait_for

pytestmark = pytest.mark.netns
IP = shutil.which("ip")
REPO = Path(__file__).resolve().parents[2]

CLIENT = r"""
import json, socket, sys, struct
target = sys.argv[1]
q = bytes.fromhex("beef01000001000000000000") + b"\x04test\x07example\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
s.sendto(q, (target, 5300))
try:
    data, src = s.recvfrom(2048)
    print(json.dumps({"src": src[0], "id": data[:2].hex(), "rcode": data[3] & 15}))
except socket.timeout:
    print(json.dumps({"src": None}))
"""


def ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def two_namespaces():
    if os.geteuid() != 0 or IP is None:
        pytest.skip("needs root and ip(8)")
    tag = secrets.token_hex(3)
    srv, cli = f"burrow-srv-{tag}", f"burrow-cli-{tag}"
    try:
        ip("netns", "add", srv)
        ip("netns", "add", cli)
    except (subprocess.CalledProcessError, OSError) as exc:
        subprocess.run([IP, "netns", "del", srv], capture_output=True)
        pytest.skip(f"cannot create network namespaces here: {exc}")
    try:
        ip("-n", srv, "link", "add", "s0", "type", "veth", "peer", "name", "c0", "netns", cli)
        for ns, dev, addrs in ((srv, "s0", ["198.51.100.1/24", "198.51.100.2/24"]),
                               (cli, "c0", ["198.51.100.10/24"])):
            ip("-n", ns, "link", "set", "lo", "up")
            for a in addrs:
                ip("-n", ns, "addr", "add", a, "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
        yield srv, cli
    finally:
        for ns in (srv, cli):
            subprocess.run([IP, "netns", "del", ns], capture_output=True, timeout=10)


def in_ns(ns: str, *argv: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([IP, "netns", "exec", ns, *argv], cwd=REPO, env=env, **kw)


def ask(cli: str, target: str) -> dict:
    out = subprocess.run([IP, "netns", "exec", cli, sys.executable, "-c", CLIENT, target],
                         capture_output=True, text=True, timeout=10).stdout
    return json.loads(out.strip().splitlines()[-1])


def ask_until(cli: str, target: str, want_src: str, timeout: float = 60.0) -> dict:  # covers the start
    deadline = time.monotonic() + timeout
    reply = {}
    while time.monotonic() < deadline:
        reply = ask(cli, target)
        if reply.get("src") == want_src:
            return reply
        time.sleep(0.2)
    return reply


def test_replies_leave_from_the_address_the_query_came_to(two_namespaces, tmp_path):
    srv, cli = two_namespaces
    upstream = in_ns(srv, sys.executable, "-m", "tests.support.upstream", "--host", "127.0.0.1",
                     "--port", "0", "--control-port", "0", stdout=subprocess.PIPE, text=True)
    burrow = None
    try:
        ready = json.loads(upstream.stdout.readline())
        config = tmp_path / "burrow.toml"
        write_toml(config, {
            "upstream_dns_servers": [f"127.0.0.1:{ready['dns_port']}"],
            "server": {"listen_address": "0.0.0.0:5300", "web_ui_address": "127.0.0.1:8099"},
            "access": {"allowed_networks": ["198.51.100.0/24", "127.0.0.0/8"]},
            "rate_limit": {"enabled": False},
            "storage": {"data_dir": str(tmp_path / "data")},
        })
        log = open(tmp_path / "burrow.log", "w")
        burrow = in_ns(srv, sys.executable, "-m", "burrow", "run", "--config", str(config),
                       stdout=log, stderr=subprocess.STDOUT)
        first = ask_until(cli, "198.51.100.1", "198.51.100.1")
        assert first.get("src") == "198.51.100.1" and first["rcode"] == 0, (tmp_path / "burrow.log").read_text()[-3000:]
        # the secondary address: a wildcard socket alone would answer from .1
        assert ask(cli, "198.51.100.2")["src"] == "198.51.100.2"
        # an address added while running gets its own socket from the network watcher
        ip("-n", srv, "addr", "add", "198.51.100.3/24", "dev", "s0")
        assert ask_until(cli, "198.51.100.3", "198.51.100.3")["src"] == "198.51.100.3"
        # and one removed stops being served from its own socket (no error, no crash)
        ip("-n", srv, "addr", "del", "198.51.100.2/24", "dev", "s0")
        wait_for(lambda: "address 198.51.100.2 gone" in (tmp_path / "burrow.log").read_text(),
                 what="burrow to close the removed address's socket")
        assert ask(cli, "198.51.100.1")["src"] == "198.51.100.1"
        assert burrow.poll() is None
    finally:
        for proc in (burrow, upstream):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
