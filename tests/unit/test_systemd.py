"""sd_notify and the watchdog against a real AF_UNIX datagram socket."""

import asyncio
import os
import socket
import uuid

import pytest

from burrow import systemd
from tests.support.timing import run_virtual


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """A bound datagram socket set as $NOTIFY_SOCKET; yields a reader of what arrived."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def drain(sock, limit=100):
    got = []
    sock.setblocking(False)
    try:
        for _ in range(limit):
            got.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)
    return got


def test_no_notify_socket_is_a_quiet_noop(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
    assert systemd.ready() is False
    assert systemd.stopping() is False


def test_ready_sends_ready_and_mainpid(notify_socket):
    assert systemd.ready("answering DNS") is True
    msg = notify_socket.recv(4096).decode().split("\n")
    assert msg[0] == "READY=1"
    assert f"MAINPID={os.getpid()}" in msg
    assert "STATUS=answering DNS" in msg


def test_stopping_and_status(notify_socket):
    systemd.stopping()
    systemd.status("flushing")
    assert notify_socket.recv(4096) == b"STOPPING=1"
    assert notify_socket.recv(4096) == b"STATUS=flushing"


def test_abstract_namespace_address(monkeypatch):
    name = f"burrow-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2.0)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.notify("READY=1") is True
        assert sock.recv(4096) == b"READY=1"


def test_missing_socket_fails_without_raising(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert systemd.notify("READY=1") is False


@pytest.mark.parametrize("usec,pid,expected", [
    (None, None, None),
    ("30000000", None, 30.0),
    ("30000000", "self", 30.0),
    ("30000000", "1", None),        # someone else's watchdog (inherited environment)
    ("0", None, None),
    ("junk", None, None),
    ("30000000", "junk", None),
])
def test_watchdog_interval(monkeypatch, usec, pid, expected):
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(os.getpid()) if value == "self" else value)
    assert systemd.watchdog_interval() == expected


def test_watchdog_pings_at_half_the_interval(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # 0.2 s -> a ping every 0.1 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

    async def main():
        dog = systemd.Watchdog()
        assert dog.enabled and dog.interval == pytest.approx(0.2)
        dog.start()
        await asyncio.sleep(0.45)
        await dog.stop()
        await dog.stop()  # idempotent
        return dog.pings

    pings = run_virtual(main())  # on a virtual clock: exactly 0.45 s, however slow the machine
    got = drain(notify_socket)
    assert set(got) == {"WATCHDOG=1"}
    assert len(got) == pings
    assert pings == 5  # at 0, 0.1, 0.2, 0.3 and 0.4 s


def test_a_hung_loop_stops_the_pings(notify_socket):
    import time

    async def main():
        dog = systemd.Watchdog(0.1)
        dog.start()
        await asyncio.sleep(0.01)
        before = dog.pings
        time.sleep(0.3)  # the loop is blocked: no ping may be sent meanwhile
        during = dog.pings
        await dog.stop()
        return before, during

    before, during = asyncio.run(asyncio.wait_for(main(), 10))
    # The first ping goes out at once; the next is due 50 ms after it, later than the test's
    # 10 ms sleep, so timers (run in deadline order) wake the test first however late.
    assert before == during == 1


def test_watchdog_without_environment_does_nothing(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)

    async def main():
        dog = systemd.Watchdog()
        dog.start()
        await asyncio.sleep(0.01)
        await dog.stop()
        return dog

    dog = asyncio.run(main())
    assert not dog.enabled and dog.pings == 0
