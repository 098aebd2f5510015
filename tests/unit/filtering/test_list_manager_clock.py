"""The list manager and the clock gate (burrow/clock.py): while the clock is not synchronised no
URL list is downloaded (local lists still are), a person's forced refresh is refused with
ClockNotSet, and the moment the gate opens the deferred downloads start. A real loopback list
server, the real compiler child, a real sync file."""

from __future__ import annotations

import asyncio

import pytest

from burrow.clock import ClockGate, ClockNotSet
from tests.support.timing import until
from tests.unit.filtering.test_list_manager import ADBLOCK, HOSTS_V1, Env, blocked
from tests.unit.filtering.test_download import ListServer, etag_route


class Clock:
    def __init__(self, tmp_path, kernel=(5, 0x40)):
        self.file = tmp_path / "timesync" / "synchronized"
        self.kernel = kernel
        self.gate = ClockGate(wait=True, sync_file=self.file, adjtimex=lambda: self.kernel,
                              check_interval=0.02)

    def sync(self):
        self.file.parent.mkdir(exist_ok=True)
        self.file.touch()


@pytest.fixture
def env(tmp_path):
    with ListServer() as server:
        e = Env(tmp_path, server)
        yield e
        e.close()


def test_scheduler_defers_url_lists_until_the_clock_is_set_then_downloads_at_once(env, tmp_path):
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V1)
    (env.lists_dir / "mine.txt").write_bytes(ADBLOCK)
    url_list = env.store.create("Hosts", env.server.url("/hosts.txt"))
    env.store.create("Mine", str(env.lists_dir / "mine.txt"), format="adblock")
    clock = Clock(tmp_path)

    async def main():
        # A long poll interval: only the gate's event can bring the download on in time.
        mgr = env.manager(clock_gate=clock.gate, poll_interval=3600)
        clock.gate.subscribe(mgr.wake)
        await clock.gate.start()
        await mgr.start()
        # The scheduler's first refresh compiles the local list alone...
        await until(lambda: env.swaps and not mgr.running, what="the local list's compile")
        assert blocked(mgr.index, "x.adblock-only.example") and not blocked(mgr.index, "ads.example")
        # ...and has not asked the list server anything.
        assert env.server.requests == [] and env.fetches == []
        assert mgr.last_report["lists"][url_list["id"]]["download"] == "waiting_for_clock"
        assert mgr.status()["waiting_for_clock"] is True
        assert env.store.get(url_list["id"])["last_error"] is None  # not a failure
        clock.sync()
        await until(lambda: blocked(mgr.index, "ads.example"), what="the deferred download and swap")
        assert len(env.server.requests) == 1 and mgr.status()["waiting_for_clock"] is False
        await mgr.stop()
        await clock.gate.stop()

    asyncio.run(main())


def test_a_forced_refresh_is_refused_while_the_clock_is_not_set(env, tmp_path):
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V1)
    (env.lists_dir / "mine.txt").write_bytes(ADBLOCK)
    url_list = env.store.create("Hosts", env.server.url("/hosts.txt"))
    local = env.store.create("Mine", str(env.lists_dir / "mine.txt"), format="adblock")
    clock = Clock(tmp_path)

    async def main():
        mgr = env.manager(clock_gate=clock.gate)
        with pytest.raises(ClockNotSet):
            await mgr.refresh(force=True)  # "reload every list"
        with pytest.raises(ClockNotSet):
            await mgr.refresh(url_list["id"], force=True)  # "update this list now"
        assert env.server.requests == [] and env.swaps == []
        # A local list needs no clock: updated on request.
        report = await mgr.refresh(local["id"], force=True)
        assert report["status"] == "ok" and blocked(mgr.index, "x.adblock-only.example")
        # An unforced refresh (the scheduler's) defers the URL list instead of refusing.
        report = await mgr.refresh()
        assert report["lists"][url_list["id"]]["download"] == "waiting_for_clock"
        assert env.server.requests == []
        clock.kernel = (0, 0)  # the kernel's word is enough
        report = await mgr.refresh(url_list["id"], force=True)
        assert report["status"] == "ok" and blocked(mgr.index, "ads.example")
        assert len(env.server.requests) == 1

    asyncio.run(main())


def test_a_disabled_url_list_does_not_block_a_forced_reload(env, tmp_path):
    (env.lists_dir / "mine.txt").write_bytes(ADBLOCK)
    env.store.create("Off", env.server.url("/hosts.txt"), enabled=False)
    env.store.create("Mine", str(env.lists_dir / "mine.txt"), format="adblock")
    clock = Clock(tmp_path)

    async def main():
        mgr = env.manager(clock_gate=clock.gate)
        report = await mgr.refresh(force=True)
        assert report["status"] == "ok" and env.server.requests == []

    asyncio.run(main())
