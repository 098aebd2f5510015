"""Panel button gestures on a mock pin: press, holds, guarded factory reset.

Every test runs on a virtual clock (tests.support.timing.run_virtual) and the button reads the
loop's clock unless a test gives it another, so a hold lasts exactly as long as the test sleeps
and the button's timers fire in order, however loaded the machine is.
"""

import asyncio

import pytest

from burrow.board.button import ACTIONS, ButtonTimings, PanelButton
from tests.support.timing import run_virtual

PIN = 3
FAST = ButtonTimings(restart_hold=0.05, arm_hold=0.15, confirm_window=0.1, pause_s=300)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def run(coro):
    return run_virtual(coro)


async def settle():
    # Let the call_soon_threadsafe callbacks run: mock pins call back on the thread that
    # drives them (here the loop's), so the hop is already queued; on the virtual clock one
    # millisecond passes exactly, after whatever is queued or due before it has run.
    await asyncio.sleep(0.001)


def make(factory, actions, **kw):
    kw.setdefault("bounce_time", None)
    kw.setdefault("clock", asyncio.get_running_loop().time)
    return PanelButton(PIN, lambda a, d: actions.append((a, d)), pin_factory=factory, **kw)


# --- classification with an injected clock (default 5 s / 15 s / 10 s) ---------


@pytest.mark.parametrize("held,action", [
    (0.1, "pause_toggle"),
    (4.9, "pause_toggle"),
    (5.0, "restart"),
    (14.9, "restart"),
])
def test_hold_length_picks_action(factory, held, action):
    clock = FakeClock()
    actions = []

    async def main():
        button = make(factory, actions, clock=clock)
        pin = factory.pin(PIN)
        pin.drive_low()
        await settle()
        clock.now += held
        pin.drive_high()
        await settle()
        button.close()

    run(main())
    assert [a for a, _ in actions] == [action]
    assert actions[0][1]["held_s"] == pytest.approx(held)
    if action == "pause_toggle":
        assert actions[0][1]["duration_s"] == 300


def test_15s_hold_arms_and_second_press_resets(factory):
    clock = FakeClock()
    actions = []

    async def main():
        button = make(factory, actions, clock=clock)
        pin = factory.pin(PIN)
        pin.drive_low()
        await settle()
        clock.now += 15.5
        pin.drive_high()  # release came before the loop's 15 s timer
        await settle()
        assert button.armed
        clock.now += 3
        pin.drive_low()
        await settle()
        assert not button.armed
        clock.now += 0.2
        pin.drive_high()  # the confirming press's release is not a gesture
        await settle()
        button.close()

    run(main())
    assert [a for a, _ in actions] == ["reset_armed", "factory_reset"]


# --- real (short) timings on the loop ----------------------------------------


def test_short_press_from_gpiozero_thread(factory):
    """Edges arrive on another thread, as gpiozero delivers them."""
    actions = []

    async def main():
        loop = asyncio.get_running_loop()
        button = make(factory, actions, timings=FAST)
        pin = factory.pin(PIN)
        await loop.run_in_executor(None, pin.drive_low)
        await asyncio.sleep(0.01)
        await loop.run_in_executor(None, pin.drive_high)
        await asyncio.sleep(0.01)
        button.close()

    run(main())
    # The virtual clock stands still while the executor drives the pin.
    assert actions == [("pause_toggle", {"held_s": 0.01, "duration_s": 300})]


def test_restart_hold(factory):
    actions = []

    async def main():
        button = make(factory, actions, timings=FAST)
        pin = factory.pin(PIN)
        pin.drive_low()
        await asyncio.sleep(0.08)
        assert actions == []  # nothing until release: it may yet become a reset
        pin.drive_high()
        await settle()
        button.close()

    run(main())
    assert [a for a, _ in actions] == ["restart"]


def test_arm_while_held_then_confirm(factory):
    actions = []

    async def main():
        button = make(factory, actions, timings=FAST)
        pin = factory.pin(PIN)
        pin.drive_low()
        await asyncio.sleep(0.2)
        # Armed while still held, so LEDs can warn before release.
        assert actions == [("reset_armed", {"held_s": 0.15})]
        assert button.armed
        pin.drive_high()
        await asyncio.sleep(0.02)
        pin.drive_low()
        await settle()
        pin.drive_high()
        await asyncio.sleep(0.15)  # past the window: nothing more happens
        button.close()

    run(main())
    assert [a for a, _ in actions] == ["reset_armed", "factory_reset"]


def test_no_second_press_disarms(factory):
    actions = []

    async def main():
        button = make(factory, actions, timings=FAST)
        pin = factory.pin(PIN)
        pin.drive_low()
        await asyncio.sleep(0.2)
        pin.drive_high()
        await asyncio.sleep(0.05)
        assert button.armed  # window runs from release
        await asyncio.sleep(0.1)
        assert not button.armed
        # After disarming, a press is an ordinary short press again.
        pin.drive_low()
        await settle()
        pin.drive_high()
        await settle()
        button.close()

    run(main())
    assert [a for a, _ in actions] == ["reset_armed", "reset_disarmed", "pause_toggle"]
    assert all(a in ACTIONS for a, _ in actions)


def test_handler_errors_are_contained(factory, caplog):
    async def main():
        def boom(action, detail):
            raise RuntimeError("app bug")

        button = PanelButton(PIN, boom, pin_factory=factory, timings=FAST, bounce_time=None,
                             clock=asyncio.get_running_loop().time)
        pin = factory.pin(PIN)
        pin.drive_low()
        await settle()
        pin.drive_high()
        await settle()
        button.close()

    run(main())
    assert "button action handler failed" in caplog.text


def test_close_cancels_pending_and_releases_pin(factory):
    actions = []

    async def main():
        button = make(factory, actions, timings=FAST)
        pin = factory.pin(PIN)
        pin.drive_low()
        await settle()
        button.close()
        await asyncio.sleep(0.2)  # the arm timer would have fired
        assert button.button.closed

    run(main())
    assert actions == []
