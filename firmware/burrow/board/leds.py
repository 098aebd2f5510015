"""Status LEDs: render a pattern from :data:`burrow.board.status.PATTERNS`.

The driver plays the current pattern on one or more outputs from an asyncio
task on the running loop (no threads of its own)::

    from burrow.board import leds

    outputs = leds.outputs_for_board(board)          # GPIO and/or onboard ACT
    driver = leds.LedDriver(outputs)
    driver.show("booting")                           # from the event loop
    ...
    driver.show(status.led)                          # whenever status changes
    driver.flicker()                                 # per blocked query; cheap
    driver.close()                                   # LEDs back as we found them

Outputs, one per kind of hardware:

* :class:`SysfsLed` – an onboard LED under ``ROOT/sys/class/leds/<name>``.
  On take-over its kernel trigger is set to ``none``; :meth:`SysfsLed.close`
  puts the brightness and trigger back (so ACT shows SD activity again).
* :class:`GpioLed` – one LED on a GPIO pin (gpiozero ``LED``).
* :class:`GpioRgy` – red, amber and green LEDs on three pins.
* :class:`GpioRgb` – a colour LED on three PWM pins (gpiozero ``RGBLED``).

GPIO outputs take ``pin_factory`` (a gpiozero pin factory); ``None`` means
gpiozero's default. Tests pass ``gpiozero.pins.mock.MockFactory()`` (with
``pin_class=MockPWMPin`` for RGB). gpiozero is imported only when a GPIO
output is built, which keeps ``import burrow`` fast on boards without LEDs.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Protocol

from burrow.board.status import PATTERNS, Pattern

if TYPE_CHECKING:
    from burrow.board.boards import Board, OnboardLed

log = logging.getLogger(__name__)

Frame = tuple[float, ...]
# Patterns on which activity flicker shows: the working states. On fault or
# link-down rhythms an extra blink would garble the code being shown.
FLICKER_PATTERNS = frozenset({"ready", "paused", "upstream_degraded"})


class LedOutput(Protocol):
    """What the driver needs from hardware: a kind, a setter and a close."""

    kind: str  # "single" | "rgy" | "rgb": which pattern column to play

    def set(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


# --- onboard LEDs through sysfs ------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _current_trigger(text: str) -> str:
    # The kernel lists every trigger and brackets the active one:
    # "none rc-feedback [mmc0] timer". A plain word (fake trees) is taken as is.
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text.strip() or "none"


def find_onboard(led: "OnboardLed", root: str | os.PathLike = "/") -> str | None:
    """The first of ``led.names`` present under ROOT/sys/class/leds, or None."""
    base = Path(root) / "sys/class/leds"
    for name in led.names:
        if (base / name / "brightness").exists():
            return name
    return None


class SysfsLed:
    """An onboard LED driven through ``ROOT/sys/class/leds/<name>``.

    Construction takes the LED over: it remembers the trigger and brightness,
    then sets the trigger to ``none`` so the kernel stops driving it.
    ``close()`` restores brightness, then trigger (in that order: writing a
    brightness of 0 clears a trigger on real sysfs). Writes happen only when
    the value changes. Raises ``OSError`` if the LED is missing or not
    writable (not root).
    """

    kind = "single"

    def __init__(self, name: str, root: str | os.PathLike = "/", *, take_over: bool = True):
        self.name = name
        self.path = Path(root) / "sys/class/leds" / name
        self._brightness = self.path / "brightness"
        if not self._brightness.exists():
            raise FileNotFoundError(f"no LED {self.path}")
        max_text = _read(self.path / "max_brightness")
        self._max = int(max_text) if max_text and max_text.isdigit() and int(max_text) > 0 else 1
        self._saved_brightness = _read(self._brightness) or "0"
        trigger_text = _read(self.path / "trigger")
        self._saved_trigger = (
            _current_trigger(trigger_text) if (take_over and trigger_text is not None) else None
        )
        self._last: int | None = None
        self._closed = False
        if self._saved_trigger is not None:
            self._write("trigger", "none")
        log.debug("took over %s (trigger was %s)", self.path, self._saved_trigger)

    def _write(self, attr: str, value: str) -> None:
        # One write() per value, as sysfs attributes expect.
        with open(self.path / attr, "w") as fh:
            fh.write(value)

    def set(self, frame: Frame) -> None:
        value = self._max if frame[0] >= 0.5 else 0
        if value != self._last and not self._closed:
            self._write("brightness", str(value))
            self._last = value

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._write("brightness", self._saved_brightness)
            if self._saved_trigger is not None:
                self._write("trigger", self._saved_trigger)
        except OSError:
            log.warning("could not restore %s", self.path, exc_info=True)


# --- GPIO LEDs through gpiozero -----------------------------------------------


class GpioLed:
    """One LED on a GPIO pin (BCM number). ``active_high=False`` when the pin
    sinks the LED's current (LED to 3V3)."""

    kind = "single"

    def __init__(self, pin: int, *, active_high: bool = True, pin_factory=None):
        from gpiozero import LED

        self.led = LED(pin, active_high=active_high, pin_factory=pin_factory)

    def set(self, frame: Frame) -> None:
        self.led.value = 1 if frame[0] >= 0.5 else 0

    def close(self) -> None:
        self.led.off()
        self.led.close()


class GpioRgy:
    """Red, amber and green LEDs on three GPIO pins; frames are (r, a, g)."""

    kind = "rgy"

    def __init__(self, red: int, amber: int, green: int, *, active_high: bool = True,
                 pin_factory=None):
        from gpiozero import LED

        self.leds = tuple(
            LED(pin, active_high=active_high, pin_factory=pin_factory)
            for pin in (red, amber, green)
        )

    def set(self, frame: Frame) -> None:
        for led, value in zip(self.leds, frame):
            led.value = 1 if value >= 0.5 else 0

    def close(self) -> None:
        for led in self.leds:
            led.off()
            led.close()


class GpioRgb:
    """A colour LED on three GPIO pins; frames are (r, g, b) in 0.0-1.0.

    ``pwm=True`` (default) mixes colours; with ``pwm=False`` each channel is
    on at 0.5 and above.
    """

    kind = "rgb"

    def __init__(self, red: int, green: int, blue: int, *, active_high: bool = True,
                 pwm: bool = True, pin_factory=None):
        from gpiozero import RGBLED

        self.pwm = pwm
        self.led = RGBLED(red, green, blue, active_high=active_high, pwm=pwm,
                          pin_factory=pin_factory)

    def set(self, frame: Frame) -> None:
        if self.pwm:
            self.led.value = tuple(float(v) for v in frame)
        else:
            self.led.value = tuple(1 if v >= 0.5 else 0 for v in frame)

    def close(self) -> None:
        self.led.off()
        self.led.close()


def outputs_for_board(board: "Board", root: str | os.PathLike = "/",
                      pin_factory=None) -> list[LedOutput]:
    """Every status output the board has: its external GPIO LEDs (if any)
    and its onboard status LED (if present and writable). May be empty."""
    outputs: list[LedOutput] = []
    ext = board.external_leds
    if ext.kind == "single":
        outputs.append(GpioLed(ext.pins["led"], active_high=ext.active_high,
                               pin_factory=pin_factory))
    elif ext.kind == "rgy":
        outputs.append(GpioRgy(ext.pins["red"], ext.pins["amber"], ext.pins["green"],
                               active_high=ext.active_high, pin_factory=pin_factory))
    elif ext.kind == "rgb":
        outputs.append(GpioRgb(ext.pins["red"], ext.pins["green"], ext.pins["blue"],
                               active_high=ext.active_high, pin_factory=pin_factory))
    onboard = board.status_led()
    if onboard is not None:
        name = find_onboard(onboard, root)
        if name is None:
            log.info("board %s: onboard LED %s not found", board.name, "/".join(onboard.names))
        else:
            try:
                outputs.append(SysfsLed(name, root, take_over=onboard.trigger))
            except OSError as exc:
                log.warning("cannot drive onboard LED %s: %s", name, exc)
    return outputs


# --- the driver -----------------------------------------------------------------


def _invert(kind: str, frame: Frame) -> Frame:
    """The frame shown during an activity flicker."""
    if kind == "rgy":
        # Green is the "working" light; blinking it reads as activity.
        return frame[:2] + ((0 if frame[2] >= 0.5 else 1),)
    if kind == "rgb":
        return (0.0, 0.0, 0.0) if any(v > 0 for v in frame) else (0.2, 0.2, 0.2)
    return tuple(0 if v >= 0.5 else 1 for v in frame)


class LedDriver:
    """Plays status patterns on LED outputs from the asyncio loop.

    :param outputs: the hardware to drive (see :func:`outputs_for_board`).
        Each plays the column of the pattern matching its ``kind``.
    :param patterns: name → :class:`~burrow.board.status.Pattern`.
    :param time_scale: multiplies every duration; tests use e.g. 0.05.
    :param flicker_rate: at most this many LED changes per second from
        :meth:`flicker` (a blip is two changes); 0 disables flicker.

    Call :meth:`show`, :meth:`flicker` and :meth:`close` from the event loop's
    thread. The driver owns the outputs and closes them.
    """

    def __init__(self, outputs: Iterable[LedOutput], *, patterns: dict[str, Pattern] = PATTERNS,
                 time_scale: float = 1.0, flicker_rate: float = 10.0,
                 flicker_patterns: Iterable[str] = FLICKER_PATTERNS):
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if flicker_rate < 0:
            raise ValueError("flicker_rate must be >= 0")
        self.outputs = list(outputs)
        self.patterns = patterns
        self.time_scale = time_scale
        self.flicker_rate = flicker_rate
        self.flicker_patterns = frozenset(flicker_patterns)
        self._pattern: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._base: list[Frame | None] = [None] * len(self.outputs)
        self._flickering = False
        self._flicker_handle: asyncio.Handle | None = None
        self._next_flicker_at = 0.0
        self._closed = False

    @property
    def pattern(self) -> str | None:
        """The pattern being shown, or None before the first :meth:`show`."""
        return self._pattern

    def show(self, name: str) -> None:
        """Switch to pattern ``name`` (restarting its sequence); no-op if it is
        already showing. Raises ``KeyError`` for an unknown name."""
        if self._closed:
            return
        pattern = self.patterns[name]
        if name == self._pattern:
            return
        self._pattern = name
        self._cancel_tasks()
        loop = asyncio.get_running_loop()
        for index, out in enumerate(self.outputs):
            steps = pattern.for_kind(out.kind)
            if len(steps) == 1:
                # Steady: no task needed, just set it.
                self._set_base(index, steps[0][0])
            else:
                self._tasks.append(loop.create_task(self._play(index, steps),
                                                    name=f"leds:{name}:{index}"))

    def flicker(self) -> None:
        """Blink the activity light once, if not blinked too recently.

        Safe to call for every blocked query: O(1), bursts coalesce into one
        blip, and at most ``flicker_rate`` LED changes per second result.
        """
        if (self._flicker_handle is not None or self._flickering or self._closed
                or not self.flicker_rate or self._pattern not in self.flicker_patterns):
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now >= self._next_flicker_at:
            self._flicker_begin()
        else:
            self._flicker_handle = loop.call_at(self._next_flicker_at, self._flicker_begin)

    def close(self) -> None:
        """Stop playing and give every LED back (off, or as found for sysfs)."""
        if self._closed:
            return
        self._closed = True
        self._cancel_tasks()
        if self._flicker_handle is not None:
            self._flicker_handle.cancel()
            self._flicker_handle = None
        for out in self.outputs:
            try:
                out.close()
            except Exception:  # one bad LED must not keep the others lit
                log.warning("closing LED output %r failed", out, exc_info=True)

    # -- internals --

    def _cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    def _render(self, index: int) -> None:
        frame = self._base[index]
        if frame is None or self._closed:
            return
        out = self.outputs[index]
        try:
            out.set(_invert(out.kind, frame) if self._flickering else frame)
        except Exception:
            log.warning("LED output %r failed", out, exc_info=True)

    def _set_base(self, index: int, frame: Frame) -> None:
        self._base[index] = frame
        self._render(index)

    async def _play(self, index: int, steps) -> None:
        # Loops until show() or close() cancels the task. Deadlines are
        # absolute so the rhythm does not drift with scheduling jitter.
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            for frame, seconds in steps:
                self._set_base(index, frame)
                deadline += seconds * self.time_scale
                now = loop.time()
                if deadline < now - 1.0:
                    deadline = now  # the loop was stalled; resync, don't burst
                await asyncio.sleep(max(0.0, deadline - now))

    def _flicker_begin(self) -> None:
        self._flicker_handle = None
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        period = self.time_scale / self.flicker_rate
        self._flickering = True
        for index in range(len(self.outputs)):
            self._render(index)
        # Two changes per blip: dark for one period, then a period before the
        # next blip may start.
        self._next_flicker_at = loop.time() + 2 * period
        self._flicker_handle = loop.call_later(period, self._flicker_end)

    def _flicker_end(self) -> None:
        self._flicker_handle = None
        self._flickering = False
        for index in range(len(self.outputs)):
            self._render(index)
