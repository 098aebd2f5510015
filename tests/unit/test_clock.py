"""burrow.clock: when the wall clock counts as synchronised, the upper bound on the wait, and the
gate telling its subscribers the moment it opens. The sync file is a real file in tmp_path;
adjtimex, the wall clock and the monotonic clock are fakes the tests set."""

from __future__ import annotations

import asyncio
import datetime

import pytest

import burrow
from burrow import clock as clockmod
from burrow.api.errors import from_exception
from burrow.clock import STA_UNSYNC, TIME_ERROR, ClockGate, ClockNotSet, kernel_synchronized
from tests.support.timing import until

RELEASE = datetime.datetime.fromisoformat(burrow.__release_date__).replace(
    tzinfo=datetime.timezone.utc).timestamp()
UNSYNC = (TIME_ERROR, STA_UNSYNC)  # what a freshly booted kernel answers


class Fake:
    """A settable value (the kernel's answer, or a clock)."""

    def __init__(self, value):
        self.value = value

    def __call__(self):
        return self.value


def gate(tmp_path, *, wait=True, kernel=UNSYNC, wall=1_800_000_000.0, sources=("timesyncd", "kernel"),
         max_wait=600.0, **kw):
    mono, wall_clock, adj = Fake(100.0), Fake(wall), Fake(kernel)
    g = ClockGate(wait=wait, sync_file=tmp_path / "timesync" / "synchronized", sources=sources,
                  max_wait=max_wait, adjtimex=adj, wall=wall_clock, monotonic=mono, **kw)
    return g, adj, wall_clock, mono


def sync_file(tmp_path):
    (tmp_path / "timesync").mkdir(exist_ok=True)
    (tmp_path / "timesync" / "synchronized").touch()


# ---- the kernel's word --------------------------------------------------------------------------

@pytest.mark.parametrize("answer,synced", [
    ((0, 0), True),  # TIME_OK, disciplined
    ((1, 0x2001), True),  # TIME_INS (a leap second pending) with PLL and NANO: still synchronised
    ((TIME_ERROR, STA_UNSYNC), False),  # fresh boot
    ((0, STA_UNSYNC), False),  # the flag alone is enough (timedated's test)
    ((TIME_ERROR, 0), False),  # the state alone is enough (time-wait-sync's test)
    (None, False),  # adjtimex not available
])
def test_kernel_answer(answer, synced):
    assert kernel_synchronized(answer) is synced


def test_the_real_adjtimex_answers_a_clock_state():
    answer = clockmod.read_adjtimex()
    assert answer is not None, "adjtimex(modes=0) should work unprivileged on Linux"
    state, status = answer
    assert 0 <= state <= TIME_ERROR
    assert isinstance(status, int)


# ---- the sources ---------------------------------------------------------------------------------

def test_timesyncd_file_opens_the_gate_and_is_latched(tmp_path):
    g, *_ = gate(tmp_path)
    assert not g.is_open() and g.waiting and g.check() is None
    sync_file(tmp_path)
    assert g.is_open() and g.source == "timesyncd"
    (tmp_path / "timesync" / "synchronized").unlink()  # timesyncd restarted, say
    assert g.is_open() and g.synchronized


def test_kernel_opens_the_gate_and_stays_open_when_it_loses_sync(tmp_path):
    g, adj, *_ = gate(tmp_path)
    assert not g.is_open()
    adj.value = (0, 0)
    assert g.is_open() and g.source == "kernel"
    adj.value = UNSYNC  # hours without NTP: the kernel says unsynchronised again
    assert g.is_open() and g.status()["synchronized"] is True


def test_only_the_configured_sources_count(tmp_path):
    g, adj, *_ = gate(tmp_path, sources=("timesyncd",))
    adj.value = (0, 0)
    assert not g.is_open() and g.status()["source"] == "none"
    g2, *_ = gate(tmp_path, sources=("kernel",))
    sync_file(tmp_path)
    assert not g2.is_open()


def test_unknown_or_no_source_is_refused(tmp_path):
    for sources in ((), ("ntp",), ("kernel", "gps")):
        with pytest.raises(ValueError):
            gate(tmp_path, sources=sources)


def test_without_wait_the_gate_is_open_but_the_status_tells_the_truth(tmp_path):
    g, adj, *_ = gate(tmp_path, wait=False)
    assert g.is_open() and not g.waiting
    status = g.status()
    assert status["synchronized"] is False and status["source"] == "none"
    assert status["waiting"] is False and status["waiting_since"] is None and status["wait_for_sync"] is False
    adj.value = (0, 0)
    assert g.status()["synchronized"] is True and g.status()["source"] == "kernel"


# ---- the upper bound -----------------------------------------------------------------------------

def test_goes_on_after_max_wait_with_a_plausible_clock(tmp_path):
    g, _, _, mono = gate(tmp_path, wall=RELEASE + 86400, max_wait=600)
    mono.value += 599
    assert not g.is_open()
    mono.value += 1
    assert g.is_open() and g.gave_up
    status = g.status()
    assert status["synchronized"] is False and status["gave_up"] is True and status["waiting"] is False


def test_keeps_waiting_past_max_wait_when_the_clock_is_before_the_release(tmp_path):
    g, adj, wall, mono = gate(tmp_path, wall=0.0, max_wait=600)  # 1970: a board without an RTC
    mono.value += 3600
    assert not g.is_open() and not g.gave_up
    status = g.status()
    assert status["waiting"] is True and status["waiting_since"] == "1970-01-01T00:00:00Z"
    assert status["waited_seconds"] == 3600
    wall.value = RELEASE - 1
    assert not g.is_open()
    adj.value = (0, 0)  # network time at last
    assert g.is_open() and not g.gave_up and g.source == "kernel"


def test_a_sync_after_going_on_is_still_reported(tmp_path):
    g, _, _, mono = gate(tmp_path, wall=RELEASE, max_wait=60)
    mono.value += 60
    assert g.is_open() and g.gave_up
    sync_file(tmp_path)
    status = g.status()
    assert status["synchronized"] is True and status["source"] == "timesyncd" and status["gave_up"] is False


# ---- the service ---------------------------------------------------------------------------------

def test_subscribers_hear_the_moment_it_opens(tmp_path):
    async def main():
        g, *_ = gate(tmp_path, check_interval=0.01)
        heard = []
        g.subscribe(lambda: heard.append("lists"))
        g.subscribe(lambda: 1 / 0)  # a failing listener does not stop the next
        g.subscribe(lambda: heard.append("health"))
        await g.start()
        [task] = g.background_tasks()
        assert not task.done() and heard == []
        sync_file(tmp_path)
        await until(lambda: heard, what="the listeners")
        assert heard == ["lists", "health"]
        await until(task.done, what="the watcher to end")
        assert task.exception() is None
        await g.stop()

    asyncio.run(main())


def test_no_watcher_when_nothing_waits(tmp_path):
    async def main():
        for wait, kernel in ((False, UNSYNC), (True, (0, 0))):
            g, *_ = gate(tmp_path, wait=wait, kernel=kernel)
            await g.start()
            assert g.background_tasks() == []
            await g.stop()

    asyncio.run(main())


def test_stop_ends_the_watcher(tmp_path):
    async def main():
        g, *_ = gate(tmp_path, check_interval=0.01)
        await g.start()
        [task] = g.background_tasks()
        await g.stop()
        assert task.cancelled()

    asyncio.run(main())


def test_clock_not_set_is_a_409_in_the_api_error_shape():
    status, body, _ = from_exception(ClockNotSet())
    assert status == 409 and body["code"] == 409 and body["error"] == "clock_not_set"
    assert "clock is not set" in body["message"]


def test_release_epoch_is_the_package_release_date():
    assert clockmod.RELEASE_EPOCH == RELEASE
    assert datetime.date.fromisoformat(burrow.__release_date__) >= datetime.date(2026, 12, 7)
