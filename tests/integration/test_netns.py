"""network.py against a real kernel: a private network namespace with a veth pair.

Needs root and iproute2's ``ip``; skipped otherwise. Every namespace made here
is deleted in ``finally``. Addresses are documentation ranges that exist only
inside the namespace; no packet leaves it.
"""

import asyncio
import os
import secrets
import shutil
import subprocess

import pytest

from burrow.board import network

pytestmark = pytest.mark.netns

IP = shutil.which("ip")


def ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def netns():
    if os.geteuid() != 0 or IP is None:
        pytest.skip("needs root and ip(8)")
    name = f"burrow-test-{secrets.token_hex(4)}"
    try:
        ip("netns", "add", name)
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"cannot create network namespaces here: {exc}")
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", "bt0", "type", "veth", "peer", "name", "bt1")
        yield name
    finally:
        subprocess.run([IP, "netns", "del", name], capture_output=True, timeout=10)


async def wait_for(published, predicate, since=0, timeout=30.0):  # bounds a failure only
    """The first snapshot published at index ``since`` or later that
    satisfies predicate (bounded wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for snap in published[since:]:
            if predicate(snap):
                return snap
        await asyncio.sleep(0.02)
    raise AssertionError(f"no snapshot matched; last: {published[-1] if published else None}")


def test_watcher_follows_link_address_and_route_changes(netns):
    async def main():
        published = []
        watcher = network.NetworkWatcher(published.append, netns=netns, debounce=0.05)
        first = await watcher.start()
        try:
            bt0 = first.interface("bt0")
            assert bt0 is not None and not bt0.up and not bt0.carrier
            assert bt0.mac and len(bt0.mac) == 17
            assert first.primary_v4 is None and not first.link_up
            assert first.interface("lo").loopback

            mark = len(published)
            ip("-n", netns, "link", "set", "bt0", "up")
            ip("-n", netns, "link", "set", "bt1", "up")
            snap = await wait_for(published, lambda s: s.interface("bt0").carrier, mark)
            assert snap.interface("bt0").up

            mark = len(published)
            ip("-n", netns, "addr", "add", "198.51.100.2/24", "dev", "bt0")
            ip("-n", netns, "route", "add", "default", "via", "198.51.100.1", "dev", "bt0")
            snap = await wait_for(published, lambda s: s.default_v4 is not None, mark)
            assert snap.default_v4.gateway == "198.51.100.1"
            assert snap.default_v4.interface == "bt0"
            assert snap.primary_interface().name == "bt0"
            assert snap.primary_v4 == "198.51.100.2"
            assert snap.link_up and snap.has_address

            mark = len(published)
            ip("-n", netns, "addr", "add", "fd42::2/64", "dev", "bt0", "nodad")
            ip("-n", netns, "-6", "route", "add", "default", "via", "fd42::1", "dev", "bt0")
            snap = await wait_for(published, lambda s: s.default_v6 is not None
                                  and s.primary_v6 is not None, mark)
            assert snap.primary_v6 == "fd42::2"
            assert snap.default_v6.gateway == "fd42::1"
            cidrs = {a.cidr for a in snap.interface("bt0").addresses}
            assert {"198.51.100.2/24", "fd42::2/64"} <= cidrs

            # Pulling the "cable": the peer goes down, bt0 loses carrier.
            mark = len(published)
            ip("-n", netns, "link", "set", "bt1", "down")
            snap = await wait_for(published, lambda s: not s.interface("bt0").carrier, mark)
            assert not snap.link_up

            mark = len(published)
            ip("-n", netns, "link", "set", "bt1", "up")
            ip("-n", netns, "addr", "del", "198.51.100.2/24", "dev", "bt0")
            snap = await wait_for(published, lambda s: s.interface("bt0").carrier
                                  and s.primary_v4 is None, mark)
            assert snap.default_v4 is None  # the route went with its address
            assert snap.primary_v6 == "fd42::2"

            # Only changes are published, and bursts are folded together.
            assert all(a != b for a, b in zip(published, published[1:]))
            assert len(published) <= watcher.events
            assert watcher.snapshot == published[-1]
            as_dict = watcher.snapshot.as_dict()
            assert as_dict["primary_v6"] == "fd42::2" and as_dict["link_up"]
        finally:
            watcher.close()
        return published

    asyncio.run(asyncio.wait_for(main(), 30))


def test_burst_is_debounced_into_few_snapshots(netns):
    async def main():
        published = []
        watcher = network.NetworkWatcher(published.append, netns=netns, debounce=0.3)
        await watcher.start()
        try:
            ip("-n", netns, "link", "set", "bt0", "up")
            ip("-n", netns, "link", "set", "bt1", "up")
            for i in range(10):
                ip("-n", netns, "addr", "add", f"198.51.100.{10 + i}/24", "dev", "bt0")
            snap = await wait_for(published, lambda s: len(
                [a for a in s.interface("bt0").addresses if a.family == 4]) == 10)
            await asyncio.sleep(0.4)
            assert watcher.events >= 10
            assert len(published) <= 3, [len(s.interface("bt0").addresses) for s in published]
            assert snap.primary_v4 == "198.51.100.10"
        finally:
            watcher.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_one_shot_snapshot_in_namespace(netns):
    ip("-n", netns, "link", "set", "bt0", "up")
    ip("-n", netns, "addr", "add", "192.0.2.7/24", "dev", "bt0")
    snap = network.snapshot(netns=netns)
    assert {i.name for i in snap.interfaces} == {"lo", "bt0", "bt1"}
    assert snap.interface("bt0").addresses[0].cidr == "192.0.2.7/24"
    # No default route: the primary is the first interface with an address
    # and carrier, and bt0 has no carrier while bt1 is down.
    assert snap.default_v4 is None
    assert snap.primary_v4 is None


def test_close_is_idempotent_and_unknown_netns_fails_cleanly():
    if os.geteuid() != 0:
        pytest.skip("needs root")

    async def main():
        watcher = network.NetworkWatcher(lambda s: None,
                                         netns=f"burrow-missing-{secrets.token_hex(4)}")
        with pytest.raises(OSError):  # pyroute2: the netns file is missing
            await watcher.start()
        watcher.close()
        watcher.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_snapshot_of_current_namespace_is_sane():
    """Read-only; runs without root."""
    snap = asyncio.run(network.read_snapshot())
    lo = next(i for i in snap.interfaces if i.loopback)
    assert lo.up and lo.mac is None
    assert any(a.address == "127.0.0.1" for a in lo.addresses)
    if snap.primary_v4 is not None:
        assert not snap.primary_v4.startswith("127.")
    assert set(snap.as_dict()) >= {"interfaces", "primary_v4", "primary_v6", "link_up"}


def test_watcher_runs_on_uvloop_like_burrow_does(netns):
    """burrow run uses uvloop, where pyroute2's asyncio client cannot open its socket."""
    import uvloop

    async def main():
        published = []
        watcher = network.NetworkWatcher(published.append, netns=netns, debounce=0.05)
        first = await watcher.start()
        try:
            assert first.interface("bt0") is not None
            ip("-n", netns, "addr", "add", "198.51.100.9/24", "dev", "bt0")
            ip("-n", netns, "link", "set", "bt0", "up")
            await wait_for(published, lambda s: any(
                a.address == "198.51.100.9" for a in s.interface("bt0").addresses))
        finally:
            watcher.close()

    uvloop.run(main())
