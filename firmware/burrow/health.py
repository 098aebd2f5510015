"""What ``/readyz``, ``/api/system`` and the status LED say, from what the subsystems publish.

Nothing here asks every second. Each source tells :class:`Health` when it changes: the
lifecycle (starting → running → stopping), the faults (burrow/lifecycle.py), storage
(storage/health.py), the upstream pool's reported healthy count (dns/upstream.py ``watch``),
the blocking pause (its ``Change.PAUSE``, through the app's one subscriber; the end of a
timed pause included) and the clock gate (burrow/clock.py: it opens once). Listeners —
the board's status LED — are called on every change and read :meth:`Health.state`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .board.status import AppState
from .clock import ClockGate
from .filtering.pause import BlockingPause
from .lifecycle import Faults
from .resolver import Resolver
from .storage.health import StorageHealth

log = logging.getLogger(__name__)


class Health:
    """Readiness and the status inputs, kept by the sources' own announcements."""

    def __init__(self, faults: Faults, storage: StorageHealth, resolver: Resolver, pause: BlockingPause,
                 monotonic: Callable[[], float] = time.monotonic, *, clock: ClockGate | None = None):
        self.faults = faults
        self.storage = storage
        self.resolver = resolver
        self.pause = pause
        self.monotonic = monotonic
        self.wall_clock = clock  # list downloads wait for it; DNS, so readiness, does not
        self.started = monotonic()
        self.phase = "created"  # the lifecycle's: created, starting, running, stopping, stopped
        self._listeners: list[Callable[[], object]] = []
        faults.subscribe(self.changed)
        resolver.upstreams.watch(self.changed)

    # ---- sources --------------------------------------------------------------------------------

    def phase_changed(self, phase: str) -> None:
        """The lifecycle's phase (Lifecycle.subscribe)."""
        self.phase = phase
        self.changed()

    def changed(self) -> None:
        """A source changed: tell the listeners."""
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # the LEDs must not take a source down with them
                log.exception("health listener failed")

    def subscribe(self, listener: Callable[[], object]) -> None:
        self._listeners.append(listener)

    # ---- what they say --------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Every service started and none stopping."""
        return self.phase == "running"

    def uptime_seconds(self) -> float:
        return self.monotonic() - self.started

    def reasons(self) -> list[str]:
        """What needs a person (the fault status), oldest first."""
        return self.faults.reasons()

    def readiness(self) -> tuple[bool, dict]:
        """(ready, checks) for /readyz: storage, upstreams, blocklist, policies, settings, tasks."""
        pool = self.resolver.upstreams
        healthy = pool.healthy_count
        sources = {f["source"] for f in self.faults.snapshot()}
        checks = {
            "storage": "ok" if self.storage.ok else "fault",
            "upstreams": "ok" if healthy == len(pool.servers) else ("degraded" if healthy else "unavailable"),
            "blocklist": "ok" if self.resolver.filter.index is not None else "not_configured",
            "policy_engine": "ok" if self.resolver.policy.engine.rules else "not_configured",
            "settings": "fault" if "settings" in sources else "ok",  # DNS works: still ready
            "tasks": "fault" if any(s.startswith("task:") for s in sources) else "ok",
        }
        ready = self.ready and self.storage.ok and healthy > 0 and not self.faults.blocking()
        return ready, checks

    def state(self) -> AppState:
        """The status reducer's input, as far as the app knows it (the board adds the network
        link and the button)."""
        pool = self.resolver.upstreams
        return AppState(
            booting=not self.ready,
            faults=tuple(self.faults.reasons()),
            upstreams_total=len(pool.servers),
            upstreams_healthy=pool.healthy_count,
            blocking_paused=self.pause.paused(),
            pause_remaining_s=self.pause.remaining(),
            clock_waiting=self.wall_clock is not None and self.wall_clock.waiting,
        )
