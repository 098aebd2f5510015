"""The front-panel button: press, hold, and a guarded factory reset.

Gestures, measured from press to release:

* short press (released before ``restart_hold``) → ``"pause_toggle"``:
  the app toggles "pause blocking for ``pause_s`` seconds" (5 minutes).
* hold ``restart_hold`` (5 s) and release before ``arm_hold`` →
  ``"restart"``: the app restarts the service.
* hold ``arm_hold`` (15 s) → ``"reset_armed"`` as soon as the mark is
  reached (so the LEDs can switch to the warning pattern while the finger is
  still down). After release, a second press within ``confirm_window``
  (10 s) → ``"factory_reset"``; no press in time → ``"reset_disarmed"``.

Every action goes to one callback, ``on_action(action, detail)``, on the
event loop; the app turns each into an audit event and does the work. The
button never acts by itself. While :attr:`PanelButton.armed` is true the app
sets ``AppState.reset_armed`` so the LEDs show the ``reset_armed`` warning::

    from burrow.board.button import PanelButton

    def on_action(action: str, detail: dict) -> None:
        audit.record("button", action, detail)
        ...

    button = PanelButton(3, on_action, pull_up=True)   # BCM 3, inside the loop
    ...
    button.close()

gpiozero calls back from its own threads; the callbacks only note the edge
time and hop onto the loop with ``loop.call_soon_threadsafe``. All timing is
done on the loop. ``pin_factory`` is injected (tests use gpiozero's
``MockFactory``), and so are the timings and the monotonic ``clock`` (by default the
loop's, the clock its timers run on).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)

ACTIONS = ("pause_toggle", "restart", "reset_armed", "factory_reset", "reset_disarmed")

ActionCallback = Callable[[str, dict], None]


@dataclass(frozen=True)
class ButtonTimings:
    """Gesture thresholds in seconds; tests shrink them."""

    restart_hold: float = 5.0
    arm_hold: float = 15.0
    confirm_window: float = 10.0
    pause_s: float = 300.0


class PanelButton:
    """Turns presses on one GPIO pin into app actions.

    :param pin: BCM pin number (or any gpiozero pin spec).
    :param on_action: called on the loop as ``on_action(action, detail)``
        with ``action`` in :data:`ACTIONS` and a JSON-able ``detail``
        (``held_s`` where a hold was measured, ``duration_s`` for a pause).
    :param pull_up: True when the button shorts the pin to GND.
    :param bounce_time: gpiozero debounce in seconds (None: none).
    :param timings: :class:`ButtonTimings`.
    :param clock: monotonic clock in seconds (default the loop's ``time``: the hold is
        measured on the clock the arm and disarm timers run on).
    :param loop: the event loop; default the running loop (construct it
        inside the loop).
    :param pin_factory: gpiozero pin factory; None means gpiozero's default.
    """

    def __init__(self, pin, on_action: ActionCallback, *, pull_up: bool = True,
                 bounce_time: float | None = 0.02, timings: ButtonTimings = ButtonTimings(),
                 clock: Callable[[], float] | None = None,
                 loop: asyncio.AbstractEventLoop | None = None, pin_factory=None):
        from gpiozero import Button

        self.on_action = on_action
        self.timings = timings
        self.loop = loop or asyncio.get_running_loop()
        self.clock = clock or self.loop.time
        self._pressed_at: float | None = None
        self._armed = False
        self._swallow_release = False
        self._arm_timer: asyncio.TimerHandle | None = None
        self._disarm_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.button = Button(pin, pull_up=pull_up, bounce_time=bounce_time,
                             pin_factory=pin_factory)
        # Runs on gpiozero's thread: stamp the edge, then hand it to the loop.
        self.button.when_pressed = lambda: self._hop(self._on_press, self.clock())
        self.button.when_released = lambda: self._hop(self._on_release, self.clock())

    @property
    def armed(self) -> bool:
        """True while a factory reset waits for its confirming press."""
        return self._armed

    def close(self) -> None:
        """Release the pin and cancel pending timers; an armed reset is
        dropped silently (the app is shutting down)."""
        self._closed = True
        for timer in (self._arm_timer, self._disarm_timer):
            if timer is not None:
                timer.cancel()
        self._arm_timer = self._disarm_timer = None
        self.button.when_pressed = None
        self.button.when_released = None
        self.button.close()

    # -- internals (all but _hop run on the loop) --

    def _hop(self, handler: Callable[[float], None], stamp: float) -> None:
        try:
            self.loop.call_soon_threadsafe(handler, stamp)
        except RuntimeError:  # loop closed during shutdown: nothing to tell
            pass

    def _emit(self, action: str, **detail) -> None:
        log.info("button: %s %s", action, detail)
        try:
            self.on_action(action, detail)
        except Exception:
            log.exception("button action handler failed for %s", action)

    def _on_press(self, stamp: float) -> None:
        if self._closed:
            return
        if self._armed:
            # The confirming press acts at once; its release is not a gesture.
            self._armed = False
            if self._disarm_timer is not None:
                self._disarm_timer.cancel()
                self._disarm_timer = None
            self._swallow_release = True
            self._emit("factory_reset")
            return
        self._pressed_at = stamp
        self._arm_timer = self.loop.call_later(self.timings.arm_hold, self._arm_while_held)

    def _arm_while_held(self) -> None:
        self._arm_timer = None
        if self._closed or self._pressed_at is None or self._armed:
            return
        self._arm(self.clock() - self._pressed_at)

    def _arm(self, held: float) -> None:
        self._armed = True
        self._emit("reset_armed", held_s=round(held, 3))

    def _on_release(self, stamp: float) -> None:
        if self._closed:
            return
        if self._swallow_release:
            self._swallow_release = False
            return
        if self._pressed_at is None:
            return  # release without a press we saw (started while held)
        held = max(0.0, stamp - self._pressed_at)
        self._pressed_at = None
        if self._arm_timer is not None:
            self._arm_timer.cancel()
            self._arm_timer = None
        t = self.timings
        if held >= t.arm_hold and not self._armed:
            self._arm(held)  # the timer lost the race with the release
        if self._armed:
            # The confirm window starts at release, so a long hold does not
            # eat into the time left for the second press.
            self._disarm_timer = self.loop.call_later(t.confirm_window, self._disarm)
        elif held >= t.restart_hold:
            self._emit("restart", held_s=round(held, 3))
        else:
            self._emit("pause_toggle", held_s=round(held, 3), duration_s=t.pause_s)

    def _disarm(self) -> None:
        self._disarm_timer = None
        if self._closed or not self._armed:
            return
        self._armed = False
        self._emit("reset_disarmed", window_s=self.timings.confirm_window)
