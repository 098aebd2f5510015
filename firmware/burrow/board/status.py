"""The appliance's one-word status, why it holds, and the LED pattern for it.

:func:`reduce` is a pure function from a small snapshot of the app
(:class:`AppState`) to a :class:`Status`. The LED driver only renders
``Status.led``; the API serves :meth:`Status.as_dict`.

States, most important first (the first that holds wins):

``fault``
    Something needs a person: a background task died, stored settings were
    moved to the quarantine, or storage is not writable (settings and the
    query log would be lost); one reason each (burrow/lifecycle.py Faults). Nothing else matters
    until it is fixed, and during boot a fault is still shown, because a
    boot that can never finish must not look like a slow one.
``booting``
    Start-up is not finished. Link, addresses and upstream health are not
    settled yet, so reporting them now would cry wolf for the first seconds
    of every boot. Also shown (the same "starting" LED) while Burrow waits
    for network time before downloading its lists (burrow/clock.py): DNS
    answers, but blocking is not complete yet. That one condition ranks
    below ``link_down`` and ``no_upstream``, which are usually why the
    clock is not set, so those show instead and its reason comes after
    theirs.
``link_down``
    No carrier or no usable address: no client can reach us, and upstream
    failures are only a consequence, so the root cause is shown instead.
``no_upstream``
    Reachable, but no upstream resolver is healthy (or none is configured):
    blocked and cached names still answer, everything else fails.
``upstream_degraded``
    Some upstreams are down; answers still flow through the others.
``paused``
    Blocking is paused on purpose (button or admin page). DNS works; it ranks
    below the failures because the person chose it and it ends by itself.
``ready``
    Resolving and blocking.

``Status.reasons`` lists human text for *every* condition that holds, in the
same order, so a degraded upstream behind a down link is still explained;
``ready`` has no reasons.

Patterns (``PATTERNS``) are data: for each status a timing sequence for
three kinds of hardware, so one board with just the onboard ACT LED and
another with a red/amber/green strip both show every state distinctly.
``reset_armed`` is an extra pattern that overrides the state's LED while a
factory reset waits for confirmation (see :mod:`burrow.board.button`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATES = (
    "fault",
    "booting",
    "link_down",
    "no_upstream",
    "upstream_degraded",
    "paused",
    "ready",
)
"""Every state, most important first: ``reduce`` picks the first that holds."""

RESET_ARMED = "reset_armed"
CLOCK_WAITING_REASON = "waiting for the clock to be set before downloading block lists"


@dataclass(frozen=True)
class AppState:
    """What the reducer needs to know about the app, as plain values.

    The app builds one whenever something changes; defaults describe a
    healthy, fully booted appliance so tests only set what they vary.
    """

    booting: bool = False
    faults: tuple[str, ...] = ()  # storage that cannot be written is one (storage/health.py)
    link_up: bool = True
    has_address: bool = True
    upstreams_total: int = 1
    upstreams_healthy: int = 1
    blocking_paused: bool = False
    pause_remaining_s: float | None = None
    reset_armed: bool = False
    clock_waiting: bool = False  # list downloads wait for the clock to be set (burrow/clock.py)


@dataclass(frozen=True)
class Status:
    """The reduced status. ``led`` is a key of :data:`PATTERNS`."""

    state: str
    reasons: list[str] = field(default_factory=list)
    led: str = "ready"

    def as_dict(self) -> dict:
        """``{"state", "reasons", "led"}`` for the API (a fresh, JSON-able dict)."""
        return {"state": self.state, "reasons": list(self.reasons), "led": self.led}


def _conditions(s: AppState) -> list[tuple[str, str]]:
    """Every (state, reason) that holds, in priority order."""
    held: list[tuple[str, str]] = []
    for reason in s.faults:
        held.append(("fault", f"fault: {reason}"))
    if s.booting:
        held.append(("booting", "starting up"))
    if not s.link_up:
        held.append(("link_down", "network link is down (no cable or no carrier)"))
    if not s.has_address:
        held.append(("link_down", "no IP address on the network"))
    no_upstream = s.upstreams_total <= 0 or s.upstreams_healthy <= 0
    if s.upstreams_total <= 0:
        held.append(("no_upstream", "no upstream DNS servers configured"))
    elif s.upstreams_healthy <= 0:
        held.append(
            ("no_upstream", f"every upstream DNS server is failing ({s.upstreams_total} configured)")
        )
    if s.clock_waiting:  # ranked here on purpose (see the module doc): below link and upstreams
        held.append(("booting", CLOCK_WAITING_REASON))
    if not no_upstream and s.upstreams_healthy < s.upstreams_total:
        down = s.upstreams_total - s.upstreams_healthy
        held.append(
            ("upstream_degraded", f"{down} of {s.upstreams_total} upstream DNS servers failing")
        )
    if s.blocking_paused:
        if s.pause_remaining_s is not None:
            mins = max(0, round(s.pause_remaining_s / 60))
            held.append(("paused", f"blocking paused ({mins} min left)"))
        else:
            held.append(("paused", "blocking paused"))
    return held


def reduce(state: AppState) -> Status:
    """The :class:`Status` for ``state``: the most important condition wins.

    Pure: same input, same output, no I/O; cheap enough to call on every
    change.
    """
    held = _conditions(state)
    # _conditions appends in STATES order (the clock's wait excepted, as documented), so the
    # first entry is the winner.
    name = held[0][0] if held else "ready"
    led = RESET_ARMED if state.reset_armed else name
    reasons = [text for _, text in held]
    if state.reset_armed:
        reasons.insert(0, "factory reset armed: press the button again to confirm")
    return Status(state=name, reasons=reasons, led=led)


# --- LED patterns -------------------------------------------------------------
#
# A pattern is a tuple of steps (frame, seconds), played in a loop. A frame is
# one value per channel:
#   single: (on,)                 the onboard ACT LED or one GPIO LED, 0/1
#   rgy:    (red, amber, green)   three LEDs, 0/1
#   rgb:    (red, green, blue)    one colour LED, 0.0-1.0 each
# A pattern with one step is steady. The vocabulary: green/steady = good,
# amber = attention, red = not working, fast = act now. On a single LED the
# states use rhythm: steady on is ready, evenly blinking is transitional,
# short blips count problems, fast is fault.

Step = tuple[tuple[float, ...], float]


@dataclass(frozen=True)
class Pattern:
    """Timing sequences of one status for each kind of LED hardware."""

    single: tuple[Step, ...]
    rgy: tuple[Step, ...]
    rgb: tuple[Step, ...]

    def for_kind(self, kind: str) -> tuple[Step, ...]:
        return getattr(self, kind)


def _blips(n: int, on: float = 0.15, gap: float = 0.25, rest: float = 1.5) -> tuple[Step, ...]:
    steps: list[Step] = []
    for i in range(n):
        steps.append(((1,), on))
        steps.append(((0,), rest if i == n - 1 else gap))
    return tuple(steps)


OFF3 = (0, 0, 0)
RED, AMBER, GREEN = (1, 0, 0), (0, 1, 0), (0, 0, 1)

PATTERNS: dict[str, Pattern] = {
    "ready": Pattern(
        single=(((1,), 1.0),),
        rgy=((GREEN, 1.0),),
        rgb=(((0.0, 1.0, 0.0), 1.0),),
    ),
    "booting": Pattern(
        single=(((1,), 1.0), ((0,), 1.0)),
        rgy=((AMBER, 1.0), (OFF3, 1.0)),
        rgb=(((0.6, 0.6, 0.6), 1.0), ((0.0, 0.0, 0.0), 1.0)),
    ),
    "link_down": Pattern(
        single=(((1,), 0.1), ((0,), 1.9)),
        rgy=((RED, 1.0), (OFF3, 1.0)),
        rgb=(((1.0, 0.0, 0.0), 1.0), ((0.0, 0.0, 0.0), 1.0)),
    ),
    "no_upstream": Pattern(
        single=_blips(3),
        rgy=((RED, 1.0),),
        rgb=(((1.0, 0.0, 0.0), 1.0),),
    ),
    "upstream_degraded": Pattern(
        single=_blips(2),
        rgy=(((0, 1, 1), 1.0),),
        rgb=(((1.0, 0.6, 0.0), 1.0),),
    ),
    "paused": Pattern(
        single=(((1,), 1.8), ((0,), 0.2)),
        rgy=((GREEN, 1.0), ((0, 1, 1), 1.0)),
        rgb=(((0.0, 0.0, 1.0), 1.0),),
    ),
    "fault": Pattern(
        single=(((1,), 0.1), ((0,), 0.1)),
        rgy=((RED, 0.1), (OFF3, 0.1)),
        rgb=(((1.0, 0.0, 0.0), 0.1), ((0.0, 0.0, 0.0), 0.1)),
    ),
    RESET_ARMED: Pattern(
        single=(((1,), 0.25), ((0,), 0.25)),
        rgy=((RED, 0.25), (AMBER, 0.25)),
        rgb=(((1.0, 0.0, 1.0), 0.25), ((0.0, 0.0, 0.0), 0.25)),
    ),
}
"""Pattern for every state in :data:`STATES` plus ``reset_armed``."""
