"""Faults, supervised background tasks, and the order services start and stop in.

- :class:`Faults` is what needs a person, as reasons by source: a background task that died,
  storage that cannot be written, stored settings moved to the quarantine. The status LED,
  ``/api/system`` and ``/readyz`` show it (``fault``).
- :class:`Supervisor` runs every long-lived background task. A task that dies (raises, or
  returns while it should run) is logged and counted (``/metrics``), then restarted when its
  :class:`Restart` policy says so, or else reported as a fault. Nothing is started with a bare
  ``ensure_future`` that nobody watches.
- :class:`Lifecycle` starts :class:`Service` objects in one declared order and stops them in
  the reverse order; ``snapshot()`` shows each one's state.

Used by the composition root (burrow/app.py); the order itself is declared there.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

MAX_FAULTS = 32  # sources held at once; past it new sources are counted, not listed (bounded status)
MAX_REASON = 300  # characters of one reason: a fault is read on a phone, not a traceback


@dataclass(frozen=True)
class Fault:
    """One reason Burrow needs a person.

    ``serving``: Burrow still answers as it should despite it (stored rows were moved aside,
    the rest is in use), so ``/readyz`` stays 200; otherwise the fault makes Burrow not ready.
    """

    source: str
    reason: str
    serving: bool = False


class Faults:
    """The fault status: reasons by source, in the order they arose. Listeners are called
    (synchronously, on the loop) whenever the set changes."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._listeners: list[Callable[[], object]] = []
        self.overflow = 0  # faults not listed because MAX_FAULTS were held

    def set(self, source: str, reason: str, *, serving: bool = False) -> None:
        """Report (or restate) the fault of ``source``."""
        reason = reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 1] + "…"
        fault = Fault(source, reason, serving)
        if self._faults.get(source) == fault:
            return
        if source not in self._faults and len(self._faults) >= MAX_FAULTS:
            self.overflow += 1
            return
        self._faults[source] = fault
        log.error("fault: %s", reason)
        self._changed()

    def clear(self, source: str) -> None:
        """``source`` is fine again (storage writable once more, say)."""
        fault = self._faults.pop(source, None)
        if fault is not None:
            log.warning("fault cleared: %s", fault.reason)
            self._changed()

    def get(self, source: str) -> Fault | None:
        return self._faults.get(source)

    def reasons(self) -> list[str]:
        """Every fault's reason, oldest first."""
        return [f.reason for f in self._faults.values()]

    def blocking(self) -> list[str]:
        """The reasons that make Burrow not ready (``/readyz`` 503)."""
        return [f.reason for f in self._faults.values() if not f.serving]

    def subscribe(self, listener: Callable[[], object]) -> None:
        self._listeners.append(listener)

    def __bool__(self) -> bool:
        return bool(self._faults)

    def __len__(self) -> int:
        return len(self._faults)

    def snapshot(self) -> list[dict]:
        return [{"source": f.source, "reason": f.reason, "serving": f.serving} for f in self._faults.values()]

    def _changed(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a listener (the LEDs) must not stop a fault being recorded
                log.exception("fault listener failed")


# ---- supervision --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Restart:
    """Policy: a task that dies is started again after a back-off that doubles from
    ``backoff`` to ``max_backoff`` seconds; dying more than ``max_restarts`` times within
    ``window`` seconds makes it a fault instead (a loop that always dies is a bug to report,
    not to spin on)."""

    max_restarts: int = 5
    window: float = 600.0
    backoff: float = 1.0
    max_backoff: float = 60.0


class Supervised:
    """A supervised task (and its restarts). ``cancel()`` ends it on purpose."""

    def __init__(self, name: str, factory: Callable[[], Awaitable[None]] | None, policy: Restart | None):
        self.name = name
        self.factory = factory
        self.policy = policy
        self.task: asyncio.Task | None = None
        self.deaths: list[float] = []  # monotonic times of recent deaths (within the policy window)
        self.cancelled = False
        self.timer: asyncio.TimerHandle | None = None  # a pending restart

    def cancel(self) -> None:
        self.cancelled = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def wait(self) -> None:
        """Until the current task has ended (after :meth:`cancel`)."""
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


class Supervisor:
    """Runs and watches the long-lived background tasks.

    ``spawn(name, factory, policy)`` starts ``factory()`` as a task; ``watch(name, task)`` takes
    a task a component started itself (its death is a fault: the component cannot be asked to
    start it again). A task that raises, or returns before :meth:`stop`, has died: logged,
    counted in ``deaths`` (``burrow_task_deaths_total``), then restarted per its policy
    (``restarts``) or reported to ``faults`` as ``task:<name>``.
    """

    def __init__(self, faults: Faults, clock: Callable[[], float] = time.monotonic):
        self.faults = faults
        self.clock = clock
        self.deaths: dict[str, int] = {}
        self.restarts: dict[str, int] = {}
        self._running: dict[int, Supervised] = {}
        self.stopping = False

    def spawn(self, name: str, factory: Callable[[], Awaitable[None]], policy: Restart | None = None) -> Supervised:
        """Start ``factory()`` under supervision. ``policy`` None: its death is a fault at once."""
        handle = Supervised(name, factory, policy)
        self._start(handle)
        return handle

    def watch(self, name: str, task: asyncio.Task) -> Supervised:
        """Supervise a task started elsewhere; its death is a fault."""
        handle = Supervised(name, None, None)
        self._attach(handle, task)
        return handle

    def _start(self, handle: Supervised) -> None:
        assert handle.factory is not None
        handle.timer = None
        self._attach(handle, asyncio.ensure_future(handle.factory()))

    def _attach(self, handle: Supervised, task: asyncio.Task) -> None:
        handle.task = task
        self._running[id(handle)] = handle
        task.add_done_callback(functools.partial(self._ended, handle))

    def _ended(self, handle: Supervised, task: asyncio.Task) -> None:
        if task is not handle.task:
            return
        if handle.cancelled or self.stopping or task.cancelled():
            self._running.pop(id(handle), None)
            return
        exc = task.exception()
        what = f"{type(exc).__name__}: {exc}" if exc is not None else "it returned while it should run"
        self.deaths[handle.name] = self.deaths.get(handle.name, 0) + 1
        if exc is not None:
            log.error("background task %s died", handle.name, exc_info=exc)
        else:
            log.error("background task %s ended by itself", handle.name)
        now = self.clock()
        policy = handle.policy
        if policy is not None and handle.factory is not None:
            handle.deaths = [t for t in handle.deaths if now - t < policy.window] + [now]
            if len(handle.deaths) <= policy.max_restarts:
                delay = min(policy.max_backoff, policy.backoff * 2 ** (len(handle.deaths) - 1))
                log.warning("restarting background task %s in %.0f s (policy: at most %d restarts in %.0f s)",
                            handle.name, delay, policy.max_restarts, policy.window)
                self.restarts[handle.name] = self.restarts.get(handle.name, 0) + 1
                handle.timer = asyncio.get_running_loop().call_later(delay, self._start, handle)
                return
            what += f" ({len(handle.deaths)} times in {policy.window:.0f} s; not restarted again)"
        self._running.pop(id(handle), None)
        self.faults.set(f"task:{handle.name}", f"background task {handle.name} died: {what}")

    def running(self) -> list[str]:
        """Names of the tasks alive (or waiting to restart)."""
        return sorted(h.name for h in self._running.values())

    async def stop(self) -> None:
        """Cancel every supervised task still running and wait for them; deaths from here on
        are not faults (the services are being stopped)."""
        self.stopping = True
        handles = list(self._running.values())
        for handle in handles:
            handle.cancel()
        await asyncio.gather(*(h.wait() for h in handles))
        self._running.clear()

    def snapshot(self) -> dict:
        return {"running": self.running(), "deaths": dict(self.deaths), "restarts": dict(self.restarts)}


# ---- services and their order -------------------------------------------------------------------

class Service(Protocol):
    """A subsystem with a lifecycle. ``start`` may wait for what it needs (sockets bound, the
    last index loaded); ``stop`` must be safe after a failed or partial start. ``snapshot``
    is a small dict for people (``/api/system`` ``services``). ``background_tasks`` are the
    loops it started itself, for the supervisor to watch (loops it spawns through the
    supervisor are watched already)."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def snapshot(self) -> dict: ...

    def background_tasks(self) -> list[asyncio.Task]: ...


class Lifecycle:
    """Starts ``services`` in the given order and stops them in reverse.

    A service that fails to start stops the ones already started (in reverse) and the error
    propagates: Burrow does not run half-built. Once a service has started, the loops it
    started itself are watched by the supervisor (their death is a fault). A service that fails to stop is logged and
    the rest still stop. ``phase`` is ``created``, ``starting``, ``running``, ``stopping`` or
    ``stopped``; listeners are told of every change (the status LED leaves "booting").
    """

    def __init__(self, services: Sequence[Service], supervisor: Supervisor):
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique: {names}")
        self.services = list(services)
        self.supervisor = supervisor
        self.phase = "created"
        self.states: dict[str, str] = {name: "stopped" for name in names}
        self._started: list[Service] = []
        self._listeners: list[Callable[[str], None]] = []

    @property
    def order(self) -> list[str]:
        return [s.name for s in self.services]

    def subscribe(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def _phase(self, phase: str) -> None:
        self.phase = phase
        for listener in list(self._listeners):
            try:
                listener(phase)
            except Exception:
                log.exception("lifecycle listener failed")

    async def start(self) -> None:
        self._phase("starting")
        for service in self.services:
            self.states[service.name] = "starting"
            self._started.append(service)  # a partial start is stopped too
            try:
                await service.start()
            except BaseException:
                self.states[service.name] = "failed"
                log.error("starting %s failed; stopping what was started", service.name)
                await self._shutdown()
                raise
            self.states[service.name] = "running"
            for task in service.background_tasks():
                self.supervisor.watch(task.get_name(), task)
        self._phase("running")

    async def stop(self) -> None:
        if self.phase in ("stopping", "stopped"):
            return
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._phase("stopping")
        self.supervisor.stopping = True  # tasks ending from here on are stopped, not dead
        while self._started:
            service = self._started.pop()
            failed = self.states[service.name] == "failed"
            self.states[service.name] = "stopping"
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %s failed", service.name)
            self.states[service.name] = "failed" if failed else "stopped"
        await self.supervisor.stop()
        self._phase("stopped")

    def snapshot(self) -> dict:
        """``{"phase", "services": [{"name", "state", ...its snapshot}]}`` in start order."""
        out = []
        for service in self.services:
            entry = {"name": service.name, "state": self.states[service.name]}
            try:
                entry.update(service.snapshot())
            except Exception as e:  # a snapshot is for people: never fail the whole answer
                entry["error"] = f"{type(e).__name__}: {e}"
            out.append(entry)
        return {"phase": self.phase, "services": out}
