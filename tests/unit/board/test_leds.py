"""LED driver: patterns on mock GPIO pins, onboard LEDs in a fake sysfs, flicker.

The driver keeps time with the loop's clock only, so every test runs on a virtual clock
(tests.support.timing.run_virtual): each sleep advances it exactly, and a step, a gap or the
state at an instant can be asserted however loaded the machine is.
"""

import asyncio
import re
import time
from pathlib import Path

import gpiozero.pins.mock
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from burrow.board import boards, leds
from burrow.board.status import PATTERNS
from tests.support.timing import run_virtual

SCALE = 0.05  # booting's 1.0 s on / 1.0 s off plays as 50 ms / 50 ms
REPO_BOARD_DIR = Path(__file__).resolve().parents[3] / "board"


class Recorder:
    """An output that notes (loop time, frame) for every change."""

    def __init__(self, kind="single"):
        self.kind = kind
        self.frames: list[tuple[float, tuple]] = []
        self.closed = False

    def set(self, frame):
        if not self.frames or self.frames[-1][1] != tuple(frame):
            self.frames.append((asyncio.get_running_loop().time(), tuple(frame)))

    def close(self):
        self.closed = True


def run(coro):
    return run_virtual(coro)


@pytest.fixture
def pwm_factory():
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.close()


# --- timing and sequences -----------------------------------------------------


def test_blink_pattern_timing_on_recorder():
    rec = Recorder()

    async def main():
        driver = leds.LedDriver([rec], time_scale=SCALE)
        driver.show("booting")
        await asyncio.sleep(0.42)
        driver.close()

    run(main())
    values = [f[1][0] for f in rec.frames]
    assert values == [1, 0, 1, 0, 1, 0, 1, 0, 1]  # a step at 0, 50, ... 400 ms
    gaps = [b[0] - a[0] for a, b in zip(rec.frames, rec.frames[1:])]
    assert gaps == pytest.approx([1.0 * SCALE] * 8)
    assert rec.closed


def test_count_pattern_plays_its_table():
    rec = Recorder()
    steps = PATTERNS["no_upstream"].single

    async def main():
        driver = leds.LedDriver([rec], time_scale=SCALE)
        driver.show("no_upstream")
        cycle = sum(s for _, s in steps) * SCALE
        await asyncio.sleep(cycle * 1.5)
        driver.close()

    run(main())
    seen = [f[1] for f in rec.frames]
    expected = [frame for frame, _ in steps]
    assert seen[: len(expected)] == expected
    gaps = [b[0] - a[0] for a, b in zip(rec.frames, rec.frames[1:])]
    for gap, (_, seconds) in zip(gaps, steps):
        assert gap == pytest.approx(seconds * SCALE)


def test_single_gpio_led_states_and_times(factory, monkeypatch):
    def now():  # mock pins stamp their changes with the (virtual) loop clock
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:  # the factory closes its pins after the loop
            return time.monotonic()

    monkeypatch.setattr(gpiozero.pins.mock, "monotonic", now)

    async def main():
        out = leds.GpioLed(17, pin_factory=factory)
        driver = leds.LedDriver([out], time_scale=SCALE)
        driver.show("booting")
        await asyncio.sleep(0.23)
        driver.close()

    run(main())
    pin = factory.pin(17)
    states = [s.state for s in pin.states]
    # initial off, then on/off every 50 ms, and off after close.
    assert states[:5] == [False, True, False, True, False]
    assert states[-1] is False
    for s in pin.states[2:5]:
        assert s.timestamp == pytest.approx(SCALE)


def test_active_low_gpio_led(factory):
    async def main():
        out = leds.GpioLed(5, active_high=False, pin_factory=factory)
        driver = leds.LedDriver([out])
        driver.show("ready")
        await asyncio.sleep(0)
        assert factory.pin(5).state is False  # lit: pin sinks current
        driver.close()

    run(main())


def test_rgy_paused_blinks_amber_over_steady_green(factory):
    async def main():
        out = leds.GpioRgy(17, 27, 22, pin_factory=factory)
        driver = leds.LedDriver([out], time_scale=SCALE)
        driver.show("paused")
        await asyncio.sleep(0.23)
        red, amber, green = (factory.pin(p) for p in (17, 27, 22))
        assert [s.state for s in red.states] == [False]
        assert [s.state for s in green.states] == [False, True]
        assert [s.state for s in amber.states][:4] == [False, True, False, True]
        driver.show("ready")
        await asyncio.sleep(0.1)
        assert (red.state, amber.state, green.state) == (False, False, True)
        driver.close()
        assert (red.state, amber.state, green.state) == (False, False, False)

    run(main())


def test_rgb_colours_with_pwm(pwm_factory):
    async def main():
        out = leds.GpioRgb(17, 27, 22, pin_factory=pwm_factory)
        driver = leds.LedDriver([out], time_scale=SCALE)
        driver.show("upstream_degraded")
        await asyncio.sleep(0)
        r, g, b = (pwm_factory.pin(p).state for p in (17, 27, 22))
        assert (r, g, b) == pytest.approx((1.0, 0.6, 0.0))
        driver.show("fault")
        await asyncio.sleep(0.13)
        red_states = [s.state for s in pwm_factory.pin(17).states]
        assert red_states.count(0) >= 2  # blinking, not steady
        driver.close()
        assert [pwm_factory.pin(p).state for p in (17, 27, 22)] == [0, 0, 0]

    run(main())


def test_every_pattern_renders_on_every_kind(factory, pwm_factory):
    async def main():
        outs = [leds.GpioLed(4, pin_factory=factory),
                leds.GpioRgy(17, 27, 22, pin_factory=factory),
                leds.GpioRgb(5, 6, 13, pin_factory=pwm_factory)]
        driver = leds.LedDriver(outs, time_scale=SCALE)
        for name in PATTERNS:
            driver.show(name)
            assert driver.pattern == name
            await asyncio.sleep(0.02)
        driver.close()

    run(main())


def test_steady_pattern_needs_no_task_and_show_is_idempotent():
    rec = Recorder()

    async def main():
        driver = leds.LedDriver([rec], time_scale=SCALE)
        driver.show("ready")
        assert driver._tasks == []
        driver.show("booting")
        tasks = list(driver._tasks)
        driver.show("booting")  # same pattern: keeps playing, no restart
        assert driver._tasks == tasks
        with pytest.raises(KeyError):
            driver.show("disco")
        driver.close()
        driver.show("ready")  # after close: ignored
        await asyncio.sleep(0.01)
        assert all(t.cancelled() or t.done() for t in tasks)

    run(main())
    assert rec.frames[0][1] == (1,)


def test_switching_pattern_stops_the_old_one():
    rec = Recorder()

    async def main():
        driver = leds.LedDriver([rec], time_scale=SCALE)
        driver.show("fault")
        await asyncio.sleep(0.05)
        driver.show("ready")
        n = len(rec.frames)
        await asyncio.sleep(0.1)
        assert len(rec.frames) == n and rec.frames[-1][1] == (1,)
        driver.close()

    run(main())


# --- onboard LEDs through sysfs --------------------------------------------------


def make_led(root: Path, name: str, *, brightness="0", max_brightness="1",
             trigger="none rc-feedback kbd-scrolllock [mmc0] timer heartbeat"):
    d = root / "sys/class/leds" / name
    d.mkdir(parents=True)
    (d / "brightness").write_text(brightness + "\n")
    (d / "max_brightness").write_text(max_brightness + "\n")
    if trigger is not None:
        (d / "trigger").write_text(trigger + "\n")
    return d


def test_sysfs_take_over_and_restore(tmp_path):
    d = make_led(tmp_path, "ACT", max_brightness="255")
    led = leds.SysfsLed("ACT", tmp_path)
    assert (d / "trigger").read_text() == "none"
    led.set((1,))
    assert (d / "brightness").read_text() == "255"
    led.set((0,))
    assert (d / "brightness").read_text() == "0"
    led.close()
    assert (d / "trigger").read_text() == "mmc0"
    assert (d / "brightness").read_text() == "0"
    led.close()  # idempotent


def test_sysfs_restores_brightness_when_trigger_was_none(tmp_path):
    d = make_led(tmp_path, "PWR", brightness="1", trigger="[none] default-on")
    led = leds.SysfsLed("PWR", tmp_path)
    led.set((0,))
    led.close()
    assert (d / "brightness").read_text() == "1"
    assert (d / "trigger").read_text() == "none"


def test_sysfs_writes_only_changes(tmp_path, monkeypatch):
    make_led(tmp_path, "ACT")
    led = leds.SysfsLed("ACT", tmp_path)
    writes = []
    real = led._write
    monkeypatch.setattr(led, "_write", lambda a, v: (writes.append((a, v)), real(a, v)))
    for frame in [(1,), (1,), (0,), (0,), (1,)]:
        led.set(frame)
    assert writes == [("brightness", "1"), ("brightness", "0"), ("brightness", "1")]


def test_sysfs_missing_led(tmp_path):
    with pytest.raises(FileNotFoundError):
        leds.SysfsLed("ACT", tmp_path)


def test_find_onboard_prefers_new_name_falls_back_to_old(tmp_path):
    act = boards.load("rpi-4", REPO_BOARD_DIR).status_led()
    assert leds.find_onboard(act, tmp_path) is None
    make_led(tmp_path, "led0")
    assert leds.find_onboard(act, tmp_path) == "led0"
    make_led(tmp_path, "ACT")
    assert leds.find_onboard(act, tmp_path) == "ACT"


def test_driver_on_sysfs_act_with_pattern(tmp_path):
    d = make_led(tmp_path, "ACT")
    board = boards.load("rpi-4", REPO_BOARD_DIR)
    outputs = leds.outputs_for_board(board, tmp_path)
    assert [type(o) for o in outputs] == [leds.SysfsLed]
    assert (d / "trigger").read_text() == "none"

    async def main():
        driver = leds.LedDriver(outputs, time_scale=0.5)
        driver.show("ready")
        await asyncio.sleep(0)
        assert (d / "brightness").read_text() == "1"
        driver.show("fault")
        await asyncio.sleep(0.075)
        assert (d / "brightness").read_text() == "0"  # second step of 50 ms on / 50 ms off
        driver.close()

    run(main())
    assert (d / "trigger").read_text() == "mmc0"
    assert (d / "brightness").read_text() == "0"


def test_outputs_for_board_with_external_leds(tmp_path, factory):
    make_led(tmp_path, "ACT")
    board_dir = tmp_path / "b"
    board_dir.mkdir()
    text = re.sub(r'(?m)^kind = "none"$', 'kind = "rgy"\npins = { red = 17, amber = 27, green = 22 }',
                  (REPO_BOARD_DIR / "rpi-4.toml").read_text())
    (board_dir / "rpi-4.toml").write_text(text)
    board = boards.load("rpi-4", board_dir)
    outputs = leds.outputs_for_board(board, tmp_path, pin_factory=factory)
    assert [type(o) for o in outputs] == [leds.GpioRgy, leds.SysfsLed]
    for o in outputs:
        o.close()


def test_generic_board_has_no_outputs(tmp_path):
    board = boards.load("generic", REPO_BOARD_DIR)
    assert leds.outputs_for_board(board, tmp_path) == []


# --- flicker ---------------------------------------------------------------------


def changes_per_window(frames, window=1.0):
    # Half-open windows [t, t + window); the epsilon keeps a change that lands exactly on the
    # edge (0.1 added ten times is 0.9999999999999999 on the virtual clock) outside.
    times = [t for t, _ in frames]
    return max(sum(1 for u in times if t <= u < t + window - 1e-9) for t in times)


def test_flicker_is_rate_limited_and_cheap():
    rec = Recorder()
    rate = 10

    async def main():
        driver = leds.LedDriver([rec], flicker_rate=rate)
        driver.show("ready")
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.2
        calls = 0
        while loop.time() < end and calls < 10_000_000:  # bounded either way
            for _ in range(2000):
                driver.flicker()
            calls += 2000
            await asyncio.sleep(0.001)  # let the blip timers run, like a busy DNS path
        driver.close()
        return calls

    calls = run(main())
    changes = rec.frames[1:]  # after the initial "on"
    assert calls >= 2000
    assert 4 <= len(changes) <= rate * 1.2 + 2
    assert changes_per_window(changes) <= rate
    # Each blip is off then back on.
    assert [f for _, f in changes[:4]] == [(0,), (1,), (0,), (1,)]


def test_single_flicker_blips_once():
    rec = Recorder()

    async def main():
        driver = leds.LedDriver([rec], time_scale=SCALE, flicker_rate=10)
        driver.show("ready")
        driver.flicker()
        await asyncio.sleep(0.05)
        driver.close()

    run(main())
    assert [f for _, f in rec.frames] == [(1,), (0,), (1,)]
    assert rec.frames[2][0] - rec.frames[1][0] == pytest.approx(SCALE / 10, abs=0.01)


def test_flicker_on_rgy_blinks_green_only():
    rec = Recorder("rgy")

    async def main():
        driver = leds.LedDriver([rec], time_scale=SCALE)
        driver.show("upstream_degraded")
        driver.flicker()
        await asyncio.sleep(0.02)
        driver.close()

    run(main())
    assert [f for _, f in rec.frames] == [(0, 1, 1), (0, 1, 0), (0, 1, 1)]


@pytest.mark.parametrize("pattern,rate", [("fault", 10), ("link_down", 10), ("ready", 0)])
def test_flicker_suppressed(pattern, rate):
    rec = Recorder()

    async def main():
        driver = leds.LedDriver([rec], time_scale=SCALE, flicker_rate=rate)
        driver.show(pattern)
        await asyncio.sleep(0)
        n = len(rec.frames)
        driver.flicker()
        assert driver._flicker_handle is None and not driver._flickering
        driver.close()
        return n

    run(main())


def test_failing_output_does_not_stop_others():
    class Broken(Recorder):
        def set(self, frame):
            raise OSError("gone")

        def close(self):
            raise OSError("gone")

    good = Recorder()

    async def main():
        driver = leds.LedDriver([Broken(), good], time_scale=SCALE)
        driver.show("booting")
        await asyncio.sleep(0.12)
        driver.close()

    run(main())
    assert [f for _, f in good.frames] == [(1,), (0,), (1,)] and good.closed  # 0, 50, 100 ms
