"""Is the wall clock right yet? The gate that holds back what needs a true time.

A board without a real-time clock boots with whatever time it last saved, or 1970. Until the
clock is synchronised, TLS certificates look "not yet valid" or "expired", a session's expiry
means nothing and an age cutoff can delete the wrong rows. With ``clock.wait_for_sync`` on (the
image's burrow.toml) Burrow answers DNS at once, but holds back the list downloads it starts by
itself and the query log's age pruning until the clock is synchronised; an owner's explicit
download is refused with :class:`ClockNotSet` (409) rather than failing on TLS.

The clock counts as synchronised when any enabled source says so (``clock.sync_sources``):

``timesyncd``
    the file systemd-timesyncd creates on its first synchronisation,
    ``/run/systemd/timesync/synchronized`` (``clock.sync_file``). systemd's own
    ``systemd-time-wait-sync`` treats its presence as sufficient too: timesyncd may set the clock
    without the kernel ever being told it is disciplined.
``kernel``
    ``adjtimex(2)`` with ``modes = 0`` (read only): the kernel's clock state is not
    ``TIME_ERROR`` (5) and ``STA_UNSYNC`` (0x0040) is clear in ``status``. That is what
    systemd-time-wait-sync (the return value) and timedated (the flag) read; an NTP daemon that
    disciplines the clock (chrony, ntpd, timesyncd) clears the flag. The kernel sets it again on
    its own after hours without an update (its maximum error grows past 16 s); the gate does not
    close again then: a clock that was once set does not fall back to 1970.

Once synchronised, the answer is latched. While waiting, :meth:`ClockGate.start` checks every
``CHECK_INTERVAL`` seconds (a stat and a system call), and the listeners (the list scheduler,
the status) are told the moment it opens: deferred downloads start at once.

An upper bound: after ``clock.max_wait_minutes`` without a synchronisation, Burrow goes on if
the clock reads at least :data:`RELEASE_EPOCH` (this release's date: a clock before it is
certainly wrong, so it keeps waiting and keeps saying so). Then the status says the clock is
*not* synchronised and that Burrow went on without it (``gave_up``).

With ``clock.wait_for_sync`` off (the development default: CI machines and containers often
have an unsynchronised kernel clock) the gate is always open; the status still reports what
the sources say.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import datetime
import logging
import os
import time
from collections.abc import Callable, Sequence

from . import __release_date__
from .errors import Conflict

log = logging.getLogger(__name__)

TIMESYNCD_FILE = "/run/systemd/timesync/synchronized"
SOURCES = ("timesyncd", "kernel")
CHECK_INTERVAL = 2.0  # seconds between checks while waiting (a stat and one system call)
DEFAULT_MAX_WAIT = 600.0  # seconds without a sync before going on with a plausible clock

# adjtimex(2): the clock state it returns, and the status flag (linux/timex.h).
TIME_ERROR = 5
STA_UNSYNC = 0x0040

# This release's date (burrow/__init__.py), as unix seconds: the earliest a right clock can read.
RELEASE_EPOCH = datetime.datetime.fromisoformat(__release_date__).replace(
    tzinfo=datetime.timezone.utc).timestamp()

WAITING_MESSAGE = "waiting for the clock to be set before downloading block lists"
NOT_SET_MESSAGE = ("The clock is not set yet (no network time so far): lists cannot be downloaded "
                   "until it is. Burrow downloads them by itself as soon as the time is known.")


class ClockNotSet(Conflict):
    """A download a person asked for while the clock is not synchronised (409)."""

    error = "clock_not_set"

    def __init__(self, message: str = NOT_SET_MESSAGE):
        super().__init__(message)


# ---- the kernel's word ------------------------------------------------------------------------

class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex (sys/timex.h), as glibc and musl declare it."""

    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time", _Timeval), ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long), ("shift", ctypes.c_int), ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long), ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int), ("_padding", ctypes.c_int * 11),
    ]


_adjtimex_fn: Callable | None | bool = False  # False: not looked up yet; None: not available


def read_adjtimex() -> tuple[int, int] | None:
    """``adjtimex(2)`` with ``modes = 0`` (reads, changes nothing; needs no privilege):
    ``(clock state, status flags)``, or None where the call is not available or fails."""
    global _adjtimex_fn
    if _adjtimex_fn is False:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            fn = libc.adjtimex
            fn.argtypes = [ctypes.POINTER(_Timex)]
            fn.restype = ctypes.c_int
            _adjtimex_fn = fn
        except (OSError, AttributeError):
            _adjtimex_fn = None
    if _adjtimex_fn is None:
        return None
    tx = _Timex()  # modes = 0: read only
    state = _adjtimex_fn(ctypes.byref(tx))  # type: ignore[operator]
    if state < 0:
        log.debug("adjtimex failed: %s", os.strerror(ctypes.get_errno()))
        return None
    return int(state), int(tx.status)


def kernel_synchronized(answer: tuple[int, int] | None) -> bool:
    """Whether an adjtimex answer says the kernel clock is synchronised."""
    if answer is None:
        return False
    state, status = answer
    return state != TIME_ERROR and not status & STA_UNSYNC


# ---- the gate ---------------------------------------------------------------------------------

def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ClockGate:
    """Whether what needs a true time may run, and the clock's status for people.

    ``wait``: hold things back until the clock is synchronised (``clock.wait_for_sync``).
    ``sync_file``, ``sources``, ``max_wait`` (seconds) and ``floor`` (unix seconds) are the
    options above; ``adjtimex``, ``wall`` and ``monotonic`` are the system's (inject fakes in
    tests). :meth:`is_open` is the question every user asks; :meth:`subscribe` tells a listener
    (on the loop) the moment the gate opens.
    """

    name = "clock"

    def __init__(self, *, wait: bool, sync_file: str | os.PathLike[str] = TIMESYNCD_FILE,
                 sources: Sequence[str] = SOURCES, max_wait: float = DEFAULT_MAX_WAIT,
                 floor: float = RELEASE_EPOCH,
                 adjtimex: Callable[[], tuple[int, int] | None] = read_adjtimex,
                 wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 check_interval: float = CHECK_INTERVAL):
        unknown = set(sources) - set(SOURCES)
        if unknown or not sources:
            raise ValueError(f"clock sources must be some of {', '.join(SOURCES)}, got {list(sources)}")
        self.wait = bool(wait)
        self.sync_file = os.fspath(sync_file)
        self.sources = tuple(sources)
        self.max_wait = float(max_wait)
        self.floor = float(floor)
        self._adjtimex = adjtimex
        self._wall = wall
        self._monotonic = monotonic
        self.check_interval = check_interval
        self.source: str | None = None  # the source that first said "synchronised" (latched)
        self.synchronized_at: float | None = None  # wall time then (after the step)
        self.gave_up = False  # went on after max_wait with a plausible but unsynchronised clock
        self._started_mono = monotonic()
        self._started_wall = wall()
        self._listeners: list[Callable[[], object]] = []
        self._task: asyncio.Task[None] | None = None
        self._warned_floor = False

    # ---- what the sources say ---------------------------------------------------------------

    def check(self) -> str | None:
        """Ask the sources now; the first that says "synchronised", or None. Latches."""
        if self.source is not None:
            return self.source
        for source in self.sources:
            if source == "timesyncd":
                found = os.path.exists(self.sync_file)
            else:
                found = kernel_synchronized(self._adjtimex())
            if found:
                self.source = source
                self.synchronized_at = self._wall()
                waited = self._monotonic() - self._started_mono
                log.info("the clock is synchronised (%s) after %.0f s: %s", source, waited,
                         _iso(self.synchronized_at))
                return source
        return None

    @property
    def synchronized(self) -> bool:
        return self.check() is not None

    def is_open(self) -> bool:
        """Whether what needs a true time may run now: the gate does not wait, or the clock is
        synchronised, or Burrow went on after ``max_wait`` with a clock past :data:`RELEASE_EPOCH`."""
        if not self.wait or self.gave_up or self.check() is not None:
            return True
        if self._monotonic() - self._started_mono >= self.max_wait:
            now = self._wall()
            if now >= self.floor:
                self.gave_up = True
                log.warning("no clock synchronisation after %.0f min; going on with the clock as it "
                            "is (%s), which is not before this release", self.max_wait / 60, _iso(now))
                return True
            if not self._warned_floor:
                self._warned_floor = True
                log.warning("no clock synchronisation after %.0f min and the clock reads %s, before "
                            "this release (%s): still waiting", self.max_wait / 60, _iso(now),
                            __release_date__)
        return False

    @property
    def waiting(self) -> bool:
        """Something is being held back for the clock."""
        return not self.is_open()

    def subscribe(self, listener: Callable[[], object]) -> None:
        """``listener()`` is called once, on the loop, when the gate opens."""
        self._listeners.append(listener)

    # ---- the service ------------------------------------------------------------------------

    async def start(self) -> None:
        """Watch the sources while the gate is closed (every ``check_interval`` seconds)."""
        if self.wait and not self.is_open():
            log.warning("the clock is not synchronised (%s): list downloads wait for it",
                        _iso(self._wall()))
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="clock-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def background_tasks(self) -> list[asyncio.Task[None]]:
        return [self._task] if self._task is not None else []

    async def _watch(self) -> None:
        while not self.is_open():
            await asyncio.sleep(self.check_interval)
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a listener must not keep the others from hearing it
                log.exception("clock listener failed")

    def snapshot(self) -> dict:
        return {"synchronized": self.synchronized, "waiting": self.waiting}

    def status(self) -> dict:
        """The clock for ``/api/system``: ``synchronized``; ``source`` (timesyncd, kernel or
        none); ``waiting`` (something is held back); ``waiting_since`` (when the wait began, by
        the unsynchronised clock) and ``waited_seconds``, both None when not waiting;
        ``wait_for_sync`` (the option); ``gave_up``; ``time`` (what the clock reads now)."""
        source = self.check()
        waiting = self.waiting
        return {
            "synchronized": source is not None,
            "source": source or "none",
            "waiting": waiting,
            "waiting_since": _iso(self._started_wall) if waiting else None,
            "waited_seconds": int(self._monotonic() - self._started_mono) if waiting else None,
            "wait_for_sync": self.wait,
            "gave_up": self.gave_up and source is None,
            "time": _iso(self._wall()),
        }
