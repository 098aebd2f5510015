"""Faults, the task supervisor and the service lifecycle (burrow/lifecycle.py)."""

from __future__ import annotations

import asyncio

import pytest

from burrow.lifecycle import Faults, Lifecycle, Restart, Supervisor
from tests.support.timing import until


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# ---- faults -------------------------------------------------------------------------------------

def test_faults_are_reasons_by_source_and_tell_listeners():
    faults = Faults()
    seen = []
    faults.subscribe(lambda: seen.append(faults.reasons()))
    faults.set("settings", "2 rows moved to quarantine", serving=True)
    faults.set("storage", "storage is not writable")
    faults.set("storage", "storage is not writable")  # the same again: no news
    assert faults.reasons() == ["2 rows moved to quarantine", "storage is not writable"]
    assert faults.blocking() == ["storage is not writable"]  # the quarantine still serves
    faults.clear("storage")
    faults.clear("storage")
    assert seen == [["2 rows moved to quarantine"],
                    ["2 rows moved to quarantine", "storage is not writable"],
                    ["2 rows moved to quarantine"]]
    assert bool(faults) and len(faults) == 1


def test_faults_are_bounded_and_reasons_short():
    faults = Faults()
    for i in range(100):
        faults.set(f"task:{i}", "x" * 1000)
    assert len(faults) == 32 and faults.overflow == 68
    assert all(len(r) <= 300 for r in faults.reasons())


# ---- supervision --------------------------------------------------------------------------------

def test_a_task_that_dies_is_logged_counted_and_a_fault(caplog):
    faults = Faults()

    async def main():
        sup = Supervisor(faults)
        started = asyncio.Event()

        async def doomed():
            started.set()
            await asyncio.sleep(0)
            raise KeyError("lost")

        sup.spawn("flusher", doomed)
        await until(lambda: bool(faults))
        assert started.is_set()
        await sup.stop()
        return sup

    sup = run(main())
    assert sup.deaths == {"flusher": 1} and sup.restarts == {}
    assert faults.reasons() == ["background task flusher died: KeyError: 'lost'"]
    assert faults.blocking() == faults.reasons()
    assert "background task flusher died" in caplog.text


def test_a_task_that_returns_while_it_should_run_has_died():
    faults = Faults()

    async def main():
        sup = Supervisor(faults)

        async def quits():
            return None

        sup.spawn("follower", quits)
        await until(lambda: bool(faults))
        await sup.stop()

    run(main())
    assert faults.reasons() == ["background task follower died: it returned while it should run"]


def test_the_restart_policy_starts_it_again_then_gives_up_as_a_fault():
    faults = Faults()
    clock = Clock()
    runs = []

    async def main():
        sup = Supervisor(faults, clock=clock)

        async def flaky():
            runs.append(clock.now)
            raise RuntimeError("boom")

        policy = Restart(max_restarts=2, window=60.0, backoff=0.001, max_backoff=0.002)
        sup.spawn("sweeper", flaky, policy)
        await until(lambda: bool(faults))
        await sup.stop()
        return sup

    sup = run(main())
    assert len(runs) == 3  # the first run and two restarts
    assert sup.deaths == {"sweeper": 3} and sup.restarts == {"sweeper": 2}
    assert faults.reasons() == ["background task sweeper died: RuntimeError: boom "
                                "(3 times in 60 s; not restarted again)"]


def test_deaths_outside_the_window_do_not_add_up():
    faults = Faults()
    clock = Clock()
    runs = []

    async def main():
        sup = Supervisor(faults, clock=clock)
        go = asyncio.Event()

        async def rarely_fails():
            runs.append(1)
            clock.now += 100.0  # each death comes long after the last one
            if len(runs) >= 5:
                await go.wait()  # then it keeps running
            raise RuntimeError("once in a while")

        sup.spawn("refresh", rarely_fails, Restart(max_restarts=1, window=60.0, backoff=0.001))
        await until(lambda: len(runs) >= 5)
        assert not faults
        await sup.stop()
        return sup

    sup = run(main())
    assert sup.restarts == {"refresh": 4} and not faults


def test_cancelled_and_stopped_tasks_are_not_deaths():
    faults = Faults()

    async def main():
        sup = Supervisor(faults)

        async def forever():
            await asyncio.Event().wait()

        handle = sup.spawn("one", forever)
        sup.spawn("two", forever)
        sup.spawn("three", forever)
        await asyncio.sleep(0)
        handle.cancel()
        await handle.wait()
        assert sup.running() == ["three", "two"]
        await sup.stop()
        assert sup.running() == []

    run(main())
    assert not faults


def test_a_watched_task_started_elsewhere_is_a_fault_when_it_dies():
    faults = Faults()

    async def main():
        sup = Supervisor(faults)

        async def writer():
            raise OSError(30, "Read-only file system")

        sup.watch("eventlog-writer", asyncio.get_running_loop().create_task(writer()))
        await until(lambda: bool(faults))

    run(main())
    assert faults.reasons() == ["background task eventlog-writer died: OSError: [Errno 30] Read-only file system"]


# ---- lifecycle ----------------------------------------------------------------------------------

class Recorded:
    """A service that notes when it starts and stops."""

    def __init__(self, name, journal, fail_start=False, fail_stop=False):
        self.name = name
        self.journal = journal
        self.fail_start = fail_start
        self.fail_stop = fail_stop

    async def start(self):
        self.journal.append(f"start {self.name}")
        if self.fail_start:
            raise OSError("address in use")

    async def stop(self):
        self.journal.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError("stuck")

    def snapshot(self):
        return {"detail": self.name.upper()}

    def background_tasks(self):
        return []


def test_services_start_in_the_declared_order_and_stop_in_reverse():
    journal = []
    faults = Faults()
    services = [Recorded(n, journal) for n in ("storage", "eventlog", "querylog", "dns", "web")]

    async def main():
        life = Lifecycle(services, Supervisor(faults))
        phases = []
        life.subscribe(phases.append)
        assert life.order == ["storage", "eventlog", "querylog", "dns", "web"]
        await life.start()
        snap = life.snapshot()
        await life.stop()
        await life.stop()  # twice is harmless
        return phases, snap, life.snapshot()

    phases, running, stopped = run(main())
    assert journal == ["start storage", "start eventlog", "start querylog", "start dns", "start web",
                       "stop web", "stop dns", "stop querylog", "stop eventlog", "stop storage"]
    assert phases == ["starting", "running", "stopping", "stopped"]
    names = ("storage", "eventlog", "querylog", "dns", "web")
    assert running == {"phase": "running",
                       "services": [{"name": n, "state": "running", "detail": n.upper()} for n in names]}
    assert [s["state"] for s in stopped["services"]] == ["stopped"] * 5


def test_a_service_that_fails_to_start_stops_what_was_started():
    journal = []

    async def main():
        services = [Recorded("storage", journal), Recorded("lists", journal, fail_stop=True),
                    Recorded("dns", journal, fail_start=True), Recorded("web", journal)]
        life = Lifecycle(services, Supervisor(Faults()))
        with pytest.raises(OSError):
            await life.start()
        return life.snapshot()

    snap = run(main())
    # dns failed half-way: stopped too; a failing stop does not keep the others running
    assert journal == ["start storage", "start lists", "start dns",
                       "stop dns", "stop lists", "stop storage"]
    assert [s["state"] for s in snap["services"]] == ["stopped", "stopped", "failed", "stopped"]
    assert snap["phase"] == "stopped"


def test_service_names_are_unique():
    with pytest.raises(ValueError):
        Lifecycle([Recorded("dns", []), Recorded("dns", [])], Supervisor(Faults()))


def test_stopping_the_lifecycle_ends_supervised_tasks_without_faults():
    faults = Faults()

    async def main():
        sup = Supervisor(faults)

        class Looping(Recorded):
            async def start(self):
                await super().start()

                async def loop():
                    await asyncio.Event().wait()
                self.handle = sup.spawn("loop", loop)

        life = Lifecycle([Looping("zones", [])], sup)
        await life.start()
        assert sup.running() == ["loop"]
        await life.stop()
        assert sup.running() == []

    run(main())
    assert not faults
