"""systemd integration without a dependency: sd_notify and the service watchdog.

Under a ``Type=notify`` unit systemd passes ``$NOTIFY_SOCKET`` (a datagram socket
path, or ``@name`` in the abstract namespace) and, with ``WatchdogSec=``,
``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``). Everything here is a quiet no-op when
those are absent, so the same code runs on a developer machine::

    from burrow import systemd

    systemd.ready()                      # once DNS answers
    watchdog = systemd.Watchdog()        # inside the event loop
    watchdog.start()                     # pings WATCHDOG=1 at half the interval
    ...
    systemd.stopping()                   # on SIGTERM, before the slow part of stopping
    await watchdog.stop()

The watchdog ping runs as a task on the asyncio loop, not in a thread: if the
loop hangs, pings stop and systemd kills and restarts the service. That is the
point, so never move it off the loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast
import os
import socket

log = logging.getLogger(__name__)

RESTART_EXIT_CODE = 75
"""Exit status meaning "restart me" (EX_TEMPFAIL); the unit restarts on it
(``RestartForceExitStatus=75``). Used by the button's restart gesture."""

# A ping interval shorter than this would be a misconfiguration (WatchdogSec=
# in microseconds by mistake); clamp rather than spin.
MIN_PING_INTERVAL_S = 0.05

_warned = False
FROM_ENVIRONMENT = object()  # Watchdog(interval=...) default: read $WATCHDOG_USEC


def _address(path: str) -> str | bytes:
    # "@name" is Linux's abstract namespace: the kernel wants a leading NUL.
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    return path


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``, ``"STATUS=..."``; several lines allowed)
    to systemd. Returns True if it was sent, False when not under systemd or the
    send failed (logged once at warning; never raises)."""
    global _warned
    path = os.environ.get("NOTIFY_SOCKET")
    if not path or len(path) < 2:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # A wedged receiver must not block the loop: datagrams to systemd
            # are tiny, but we still refuse to wait for one.
            sock.setblocking(False)
            sock.sendto(state.encode(), _address(path))
        return True
    except OSError as exc:
        if not _warned:
            _warned = True
            log.warning("sd_notify to %s failed: %s (further failures logged at debug)", path, exc)
        else:
            log.debug("sd_notify to %s failed: %s", path, exc)
        return False


def ready(status: str | None = None) -> bool:
    """Tell systemd start-up is complete (``READY=1``, plus ``MAINPID`` and an
    optional human ``STATUS``). Call once, when DNS answers."""
    lines = ["READY=1", f"MAINPID={os.getpid()}"]
    if status:
        lines.append(f"STATUS={status}")
    return notify("\n".join(lines))


def stopping(status: str | None = None) -> bool:
    """Tell systemd we are shutting down (``STOPPING=1``)."""
    return notify("STOPPING=1" + (f"\nSTATUS={status}" if status else ""))


def status(text: str) -> bool:
    """Set the one-line status ``systemctl status`` shows."""
    return notify(f"STATUS={text}")


def watchdog_interval() -> float | None:
    """The watchdog timeout in seconds that systemd expects pings within, or
    None when no watchdog applies to this process (``$WATCHDOG_USEC`` unset,
    invalid, zero, or ``$WATCHDOG_PID`` naming another process)."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None  # inherited by a child: the watchdog is our parent's
        except ValueError:
            return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None


class Watchdog:
    """Pings ``WATCHDOG=1`` from an asyncio task every ``interval / 2`` seconds.

    :param interval: the watchdog timeout in seconds; default
        :func:`watchdog_interval` (None: :meth:`start` does nothing).

    :attr:`pings` counts pings sent (for tests and diagnostics). Construct and
    start it inside the running loop; :meth:`stop` is idempotent.
    """

    def __init__(self, interval: float | None | object = FROM_ENVIRONMENT):
        self.interval: float | None = (watchdog_interval() if interval is FROM_ENVIRONMENT
                                       else cast("float | None", interval))
        self.pings = 0
        self._task: asyncio.Task | None = None

    @property
    def enabled(self) -> bool:
        return self.interval is not None

    def start(self) -> None:
        """Start pinging (no-op without a watchdog or when already started)."""
        if self.interval is None or self._task is not None:
            return
        period = max(MIN_PING_INTERVAL_S, self.interval / 2)
        self._task = asyncio.get_running_loop().create_task(self._run(period),
                                                            name="systemd-watchdog")
        log.info("systemd watchdog: pinging every %.1f s (timeout %.1f s)", period, self.interval)

    def background_tasks(self) -> list[asyncio.Task]:
        """The ping task, when there is a watchdog (for the supervisor)."""
        return [self._task] if self._task is not None else []

    async def stop(self) -> None:
        """Stop pinging and wait for the task to end."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    async def _run(self, period: float) -> None:
        # Runs for the life of the service; each round is one sleep and one
        # datagram. A ping right away covers a slow start after READY=1.
        while True:
            if notify("WATCHDOG=1"):
                self.pings += 1
            await asyncio.sleep(period)
