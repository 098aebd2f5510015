"""The appliance: board, status LEDs, button, network watcher and system health.

The composition root builds one and the lifecycle starts it inside the running loop::

    appliance = Appliance(config, bus, health, actions, data_dir=...)   # root="/", pin_factory=None
    await appliance.start()                          # never raises for missing hardware
    appliance.status().as_dict()                     # {"state", "reasons", "led"}
    appliance.network()                              # snapshot dict for /api/system
    await appliance.system()                         # psutil + sysfs, off the loop
    await appliance.stop()                           # LEDs and pins given back

Missing hardware is normal (a PC, a VM, a board without wired LEDs): each
piece degrades on its own and says so once in the log. No GPIO pin factory
means no external LEDs and no button; onboard sysfs LEDs still work. No
netlink means no link-down detection (the status then assumes the link is up).

The status is recomputed when something it shows changes, never on a clock:
``health`` (burrow/health.py) calls back when a fault, the lifecycle, storage,
the upstreams' healthy count or the pause changes, the network watcher when
the link or the addresses change, the button when it is pressed; the only
timer is the next minute of a timed pause's "N min left". :meth:`activity`
(a blocked query: the recorder calls it) flickers the LED.

What it publishes on ``bus``:

* ``("health", Status.as_dict())`` whenever the status changes;
* ``("network", snapshot dict)`` whenever the network changes;
* ``("events", {"type": "button", "action": ..., "time": ..., ...})`` for every
  button gesture (the audit trail).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Protocol

from burrow.board import boards, leds, status as status_mod
from burrow.board.status import AppState, Status
from burrow.config import ConfigView

log = logging.getLogger(__name__)


class StatusSource(Protocol):
    """What the status needs from the app (burrow.health.Health)."""

    def state(self) -> AppState: ...

    def subscribe(self, listener: Callable[[], object]) -> None: ...


@dataclasses.dataclass(frozen=True)
class ButtonActions:
    """What the panel button's gestures do (wired by the composition root). Each may return
    an awaitable; it runs as a task."""

    toggle_pause: Callable[[float], Any]  # seconds
    factory_reset: Callable[[], Any]
    restart: Callable[[], Any]  # a clean stop, exit code 75: systemd starts Burrow again


class Appliance:
    """The board side of the running app.

    :param config: the configuration (``board.*`` keys).
    :param bus: the event bus (``publish(topic, payload)``).
    :param health: where the status comes from (:class:`StatusSource`).
    :param actions: what the button does (:class:`ButtonActions`).
    :param data_dir: the folder whose disk the system figures describe.
    :param root: prefix for /proc and /sys (tests pass a fake tree).
    :param pin_factory: gpiozero pin factory; None asks gpiozero for its
        default and, if there is none (a PC), runs without GPIO.
    :param board_name: board file name; None reads ``board.name`` from the
        config ("auto": detect from the device tree).
    :param board_dir: folder of board files (default: see
        :func:`burrow.board.boards.default_board_dir`).
    :param led_time_scale: multiplies LED pattern timings (tests shrink it).
    :param button_timings: :class:`burrow.board.button.ButtonTimings`.
    :param watcher_factory: ``factory(on_change)`` returning an object like
        :class:`burrow.board.network.NetworkWatcher`; None uses that class,
        and ``False`` disables network watching.
    """

    name = "board"

    def __init__(self, config: ConfigView, bus, health: StatusSource, actions: ButtonActions, *,
                 data_dir: str | os.PathLike = "/var/lib/burrow", root: str | os.PathLike = "/",
                 pin_factory=None, board_name: str | None = None,
                 board_dir: str | os.PathLike | None = None, led_time_scale: float = 1.0,
                 button_timings=None, watcher_factory: Callable | None | bool = None):
        self.config = config
        self.bus = bus
        self.health = health
        self.actions = actions
        self.data_dir = data_dir
        self.root = Path(root)
        self.pin_factory = pin_factory
        self.board_name = board_name or _cfg(config, "board.name", "auto")
        self.board_dir = board_dir
        self.led_time_scale = led_time_scale
        self.button_timings = button_timings
        self.watcher_factory = watcher_factory
        self.board: boards.Board | None = None
        self.driver: leds.LedDriver | None = None
        self.button = None
        self.watcher = None
        self.network_error: str | None = None
        self.gpio_error: str | None = None
        self._status: Status | None = None
        self._snapshot = None
        self._monitor = None
        self._monitor_lock = asyncio.Lock()
        self._pause_timer: asyncio.TimerHandle | None = None  # the next "N min left" change
        self._system_cache = None  # (monotonic time, snapshot) for system_recent()
        self._side_tasks: set[asyncio.Task] = set()
        self._stopped = True  # until start()

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the board, take over its LEDs and button, watch the network,
        show the first status. Hardware problems are logged, never raised."""
        self._stopped = False
        self.board = self._load_board()
        gpio_ok = self._gpio_available()
        if _cfg(self.config, "board.status_leds", True):
            self.driver = leds.LedDriver(self._outputs(gpio_ok), time_scale=self.led_time_scale)
        if gpio_ok and self.board.button is not None and _cfg(self.config, "board.button", True):
            self._start_button()
        await self._start_watcher()
        self.health.subscribe(self.refresh)  # a change shows at once; nothing polls
        self.refresh()

    async def stop(self) -> None:
        """Stop watching, release the button, give the LEDs back. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None
        tasks = list(self._side_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for part in (self.watcher, self.button, self.driver):
            if part is not None:
                try:
                    part.close()
                except Exception:
                    log.warning("closing %r failed", part, exc_info=True)

    def background_tasks(self) -> list[asyncio.Task]:
        return []  # nothing runs on a clock: see the module docstring

    def snapshot(self) -> dict:
        return {"board": self.board.name if self.board else None, "status": self.status().as_dict(),
                "network": self.network_error or "watching", "gpio": self.gpio_error or "ok"}

    # ---- state for the API --------------------------------------------------------------------

    def status(self) -> Status:
        """The current status (computed on demand before :meth:`start`)."""
        return self._status if self._status is not None else status_mod.reduce(self.app_state())

    def network(self) -> dict:
        """The network snapshot as a dict, with ``available`` telling whether
        netlink could be read (``error`` says why not)."""
        if self._snapshot is None:
            return {"available": False, "error": self.network_error or "not started"}
        return {"available": True, **self._snapshot.as_dict()}

    def local_addresses(self) -> list[str] | None:
        """Every usable address on the machine (loopback included), or None without netlink.

        The DNS server binds one UDP socket per address for wildcard listeners, so replies
        leave from the address each query came to.
        """
        if self._snapshot is None:
            return None
        return [a.address for iface in self._snapshot.interfaces for a in iface.addresses
                if not a.tentative]

    async def system_recent(self, max_age: float = 5.0) -> dict:
        """:meth:`system`, reused for ``max_age`` seconds: streams and scrapes that ask every
        second share one reading instead of each walking psutil and sysfs."""
        now = time.monotonic()
        cached = self._system_cache
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
        snap = await self.system()
        self._system_cache = (now, snap)
        return snap

    async def system(self) -> dict:
        """System health (:class:`burrow.board.system.SystemMonitor` snapshot),
        read on an executor thread since psutil and sysfs may block."""
        async with self._monitor_lock:  # one monitor, used by one thread at a time
            if self._monitor is None:
                from burrow.board.system import SystemMonitor

                self._monitor = SystemMonitor(self.root, self.data_dir)
            loop = asyncio.get_running_loop()
            snap = await loop.run_in_executor(None, self._monitor.snapshot)
        snap["board"] = self.board.name if self.board else None
        snap["status"] = self.status().as_dict()
        return snap

    def activity(self) -> None:
        """A blocked query happened: flicker the status LED (rate-limited, O(1))."""
        if self.driver is not None:
            self.driver.flicker()

    def app_state(self) -> AppState:
        """The reducer's input: what the app published, with the network and the button."""
        snap = self._snapshot
        return dataclasses.replace(
            self.health.state(),
            # Unknown (no netlink) counts as up: better silent than a false alarm.
            link_up=snap.link_up if snap is not None else True,
            has_address=snap.has_address if snap is not None else True,
            reset_armed=bool(self.button is not None and self.button.armed),
        )

    def refresh(self) -> Status:
        """Recompute the status; on a change show its pattern and publish it."""
        if self._stopped:
            return self.status()
        state = self.app_state()
        self._arm_pause_minute(state)
        new = status_mod.reduce(state)
        if self._status is None or new.as_dict() != self._status.as_dict():
            previous = self._status.state if self._status else None
            self._status = new
            if self.driver is not None:
                self.driver.show(new.led)
            if previous != new.state:
                log.info("status: %s%s", new.state,
                         f" ({'; '.join(new.reasons)})" if new.reasons else "")
            self._publish("health", new.as_dict())
        return new

    # ---- internals ----------------------------------------------------------------------------

    def _arm_pause_minute(self, state: AppState) -> None:
        """A timed pause says "N min left": recompute when N next changes (the reducer rounds
        to the nearest minute), and nothing else is on a clock."""
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None
        remaining = state.pause_remaining_s if state.blocking_paused else None
        if remaining is None or self._stopped:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        shown = max(0, round(remaining / 60))
        next_change = remaining - (shown - 0.5) * 60 if shown > 0 else remaining
        self._pause_timer = loop.call_later(max(0.05, next_change + 0.05), self._pause_minute)

    def _pause_minute(self) -> None:
        self._pause_timer = None
        self.refresh()

    def _load_board(self) -> boards.Board:
        try:
            if self.board_name == "auto":
                return boards.detect(self.root, self.board_dir)
            board = boards.load(self.board_name, self.board_dir)
            log.info("board %s (from configuration)", board.name)
            return board
        except boards.BoardError as exc:
            # A PC install without board files, or a typo in board.name: DNS must still run.
            log.warning("board: %s; running as %s", exc, boards.GENERIC)
            try:
                return boards.load(boards.GENERIC, self.board_dir)
            except boards.BoardError:
                return boards.Board(boards.GENERIC, "Generic Linux machine", (), False, (), (),
                                    boards.ExternalLeds("none"), None)

    def _gpio_available(self) -> bool:
        board = self.board
        wanted = board.gpio and (board.external_leds.kind != "none" or board.button is not None)
        if not wanted:
            return False
        if self.pin_factory is not None:
            return True
        try:
            from gpiozero import Device

            with warnings.catch_warnings():
                # gpiozero warns once per factory it falls back from; one line of ours is enough.
                warnings.simplefilter("ignore")
                Device.ensure_pin_factory()
            return True
        except Exception as exc:
            self.gpio_error = f"{type(exc).__name__}: {exc}"
            log.warning("no GPIO on this machine (%s): external LEDs and button disabled",
                        self.gpio_error)
            return False

    def _outputs(self, gpio_ok: bool) -> list:
        board = self.board
        if not gpio_ok and board.external_leds.kind != "none":
            board = dataclasses.replace(board, external_leds=boards.ExternalLeds("none"))
        try:
            outputs = leds.outputs_for_board(board, self.root, self.pin_factory)
        except Exception as exc:  # a pin in use or refused: keep the onboard LED at least
            log.warning("GPIO LEDs unavailable (%s); using onboard LEDs only", exc)
            board = dataclasses.replace(board, external_leds=boards.ExternalLeds("none"))
            outputs = leds.outputs_for_board(board, self.root, self.pin_factory)
        if not outputs:
            log.info("board %s: no status LEDs to drive", board.name)
        return outputs

    def _start_button(self) -> None:
        from burrow.board.button import ButtonTimings, PanelButton

        spec = self.board.button
        try:
            self.button = PanelButton(spec.pin, self._on_button, pull_up=spec.pull_up,
                                      timings=self.button_timings or ButtonTimings(),
                                      pin_factory=self.pin_factory)
        except Exception as exc:
            log.warning("button on GPIO %s unavailable: %s", spec.pin, exc)

    async def _start_watcher(self) -> None:
        if self.watcher_factory is False:
            self.network_error = "network watching disabled"
            return
        try:
            if self.watcher_factory is None:
                from burrow.board.network import NetworkWatcher

                self.watcher = NetworkWatcher(self._on_network)
            else:
                self.watcher = self.watcher_factory(self._on_network)
            self._snapshot = await self.watcher.start()
        except Exception as exc:  # no netlink (container, seccomp), no pyroute2
            self.network_error = f"{type(exc).__name__}: {exc}"
            log.warning("netlink unavailable (%s): link state is not monitored", self.network_error)
            if self.watcher is not None:
                try:
                    self.watcher.close()
                except Exception:
                    pass
            self.watcher = None
            return
        self._publish("network", self.network())

    def _on_network(self, snapshot) -> None:
        self._snapshot = snapshot
        self._publish("network", self.network())
        self.refresh()

    def _on_button(self, action: str, detail: dict) -> None:
        self._publish("events", {"type": "button", "action": action, "time": time.time(), **detail})
        if action == "pause_toggle":
            self._invoke("toggle_pause", self.actions.toggle_pause, detail.get("duration_s", 300))
        elif action == "restart":
            # Stop cleanly and exit with 75 so systemd starts us again (Restart=on-failure,
            # RestartForceExitStatus).
            self._invoke("restart", self.actions.restart)
        elif action == "factory_reset":
            self._invoke("factory_reset", self.actions.factory_reset)
        self.refresh()  # reset_armed / reset_disarmed change the LEDs at once

    def _invoke(self, name: str, fn: Callable, *args) -> None:
        try:
            result = fn(*args)
        except Exception:
            log.exception("button: %s failed", name)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._side_tasks.add(task)
            task.add_done_callback(self._side_done)

    def _side_done(self, task: asyncio.Task) -> None:
        self._side_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("button action failed", exc_info=task.exception())

    def _publish(self, topic: str, payload: Any) -> None:
        try:
            self.bus.publish(topic, payload)
        except Exception:
            log.warning("publishing %s failed", topic, exc_info=True)


def _cfg(config: ConfigView, key: str, default):
    try:
        return config[key]
    except KeyError:
        return default
