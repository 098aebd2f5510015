"""status.reduce: every state, every combination of conditions, and patterns."""

import itertools
import json

import pytest

from burrow.board.status import PATTERNS, RESET_ARMED, STATES, AppState, Status, reduce

# Each knob that can make a condition hold, with its "bad" value and the
# state that condition stands for.
CONDITIONS = {
    "fault": ("fault", "sd card gone"),
    "storage": ("fault", None),
    "booting": ("booting", None),
    "link": ("link_down", None),
    "address": ("link_down", None),
    "no_upstream": ("no_upstream", None),
    "degraded": ("upstream_degraded", None),
    "paused": ("paused", None),
}


def build(flags: dict[str, bool]) -> AppState:
    kw = {}
    faults = []
    if flags["fault"]:
        faults.append("sd card gone")
    if flags["storage"]:  # storage/health.py reports it as one more fault
        faults.append("storage is not writable, settings and the query log cannot be saved: /data: "
                      "read-only file system")
    kw["faults"] = tuple(faults)
    if flags["booting"]:
        kw["booting"] = True
    if flags["link"]:
        kw["link_up"] = False
    if flags["address"]:
        kw["has_address"] = False
    # no_upstream and degraded are exclusive readings of one pair of numbers;
    # no_upstream wins when both flags are set.
    if flags["no_upstream"]:
        kw.update(upstreams_total=3, upstreams_healthy=0)
    elif flags["degraded"]:
        kw.update(upstreams_total=3, upstreams_healthy=1)
    else:
        kw.update(upstreams_total=3, upstreams_healthy=3)
    if flags["paused"]:
        kw["blocking_paused"] = True
    return AppState(**kw)


def expected_states(flags: dict[str, bool]) -> list[str]:
    held = {CONDITIONS[k][0] for k, v in flags.items() if v}
    if flags["no_upstream"]:
        held.discard("upstream_degraded")
    return [s for s in STATES if s in held]


def test_default_is_ready_without_reasons():
    status = reduce(AppState())
    assert status == Status(state="ready", reasons=[], led="ready")
    assert status.as_dict() == {"state": "ready", "reasons": [], "led": "ready"}


def test_priority_order_is_documented():
    assert STATES == ("fault", "booting", "link_down", "no_upstream",
                      "upstream_degraded", "paused", "ready")
    import burrow.board.status as mod

    doc = mod.__doc__
    positions = [doc.index(f"``{s}``") for s in STATES]
    assert positions == sorted(positions), "docstring lists states out of order"


@pytest.mark.parametrize(
    "values",
    list(itertools.product([False, True], repeat=len(CONDITIONS))),
    ids=lambda v: "".join("1" if x else "0" for x in v),
)
def test_every_combination_follows_priority(values):
    flags = dict(zip(CONDITIONS, values))
    status = reduce(build(flags))
    held = expected_states(flags)
    assert status.state == (held[0] if held else "ready")
    assert status.led == status.state
    # One reason per condition that holds, grouped in priority order.
    n_reasons = sum(values) - (1 if flags["no_upstream"] and flags["degraded"] else 0)
    assert len(status.reasons) == n_reasons
    assert all(isinstance(r, str) and r for r in status.reasons)
    if held:
        # The first reason explains the winning state.
        first = status.reasons[0]
        keyword = {"fault": ("fault", "storage"), "booting": ("starting",),
                   "link_down": ("link", "address"), "no_upstream": ("upstream",),
                   "upstream_degraded": ("upstream",), "paused": ("paused",)}[held[0]]
        assert any(k in first for k in keyword), (held[0], first)


# no_upstream vs degraded is one pair of numbers: see test_upstream_counts.
@pytest.mark.parametrize("higher,lower", [
    pair for pair in itertools.combinations(
        ["fault", "booting", "link", "no_upstream", "degraded", "paused"], 2)
    if set(pair) != {"no_upstream", "degraded"}
])
def test_each_pair_higher_wins(higher, lower):
    flags = dict.fromkeys(CONDITIONS, False)
    flags[higher] = flags[lower] = True
    assert reduce(build(flags)).state == CONDITIONS[higher][0]


@pytest.mark.parametrize("total,healthy,state", [
    (0, 0, "no_upstream"),
    (2, 0, "no_upstream"),
    (2, 1, "upstream_degraded"),
    (2, 2, "ready"),
    (1, 1, "ready"),
])
def test_upstream_counts(total, healthy, state):
    assert reduce(AppState(upstreams_total=total, upstreams_healthy=healthy)).state == state


def test_each_state_reachable():
    examples = {
        "fault": AppState(faults=("x",)),
        "booting": AppState(booting=True),
        "link_down": AppState(link_up=False),
        "no_upstream": AppState(upstreams_healthy=0),
        "upstream_degraded": AppState(upstreams_total=2, upstreams_healthy=1),
        "paused": AppState(blocking_paused=True, pause_remaining_s=299),
        "ready": AppState(),
    }
    assert set(examples) == set(STATES)
    for state, app in examples.items():
        assert reduce(app).state == state


def test_every_fault_is_a_reason_in_the_order_it_arose():
    status = reduce(AppState(faults=("background task housekeeping died: KeyError: 'x'",
                                     "2 invalid stored setting(s) moved to quarantine at start"),
                             upstreams_total=2, upstreams_healthy=1))
    assert status.state == "fault" and status.led == "fault"
    assert status.reasons == ["fault: background task housekeeping died: KeyError: 'x'",
                              "fault: 2 invalid stored setting(s) moved to quarantine at start",
                              "1 of 2 upstream DNS servers failing"]


def test_storage_failure_is_fault_and_explained():
    status = reduce(AppState(faults=("storage is not writable, settings and the query log cannot be saved: "
                                     "/var/lib/burrow: read-only file system",)))
    assert status.state == "fault"
    assert "storage" in status.reasons[0]


def test_pause_reason_shows_minutes():
    status = reduce(AppState(blocking_paused=True, pause_remaining_s=240))
    assert status.reasons == ["blocking paused (4 min left)"]


def test_reset_armed_overrides_led_not_state():
    status = reduce(AppState(reset_armed=True, upstreams_total=2, upstreams_healthy=1))
    assert status.state == "upstream_degraded"
    assert status.led == RESET_ARMED
    assert "factory reset" in status.reasons[0]


def test_as_dict_is_json_and_a_copy():
    status = reduce(AppState(booting=True, link_up=False))
    d = status.as_dict()
    assert json.loads(json.dumps(d)) == d
    d["reasons"].append("mutated")
    assert "mutated" not in status.reasons


def test_reduce_is_pure():
    app = AppState(link_up=False, blocking_paused=True)
    assert reduce(app) == reduce(app)


# --- patterns -------------------------------------------------------------------

KINDS = {"single": 1, "rgy": 3, "rgb": 3}


def test_every_state_has_a_pattern():
    assert set(PATTERNS) == set(STATES) | {RESET_ARMED}


@pytest.mark.parametrize("kind", KINDS)
def test_patterns_are_well_formed_and_distinct(kind):
    seen = {}
    for name, pattern in PATTERNS.items():
        steps = pattern.for_kind(kind)
        assert steps, name
        for frame, seconds in steps:
            assert len(frame) == KINDS[kind]
            assert all(0 <= v <= 1 for v in frame)
            assert seconds > 0
        assert steps not in seen, f"{name} looks like {seen.get(steps)} on {kind}"
        seen[steps] = name


def test_single_led_patterns_use_binary_values():
    for pattern in PATTERNS.values():
        for frame, _ in pattern.single + pattern.rgy:
            assert all(v in (0, 1) for v in frame)


# --- waiting for the clock (burrow/clock.py) ------------------------------------------------------

def test_waiting_for_the_clock_shows_the_starting_light_and_says_why():
    status = reduce(AppState(clock_waiting=True))
    assert status.state == "booting" and status.led == "booting"
    assert status.reasons == ["waiting for the clock to be set before downloading block lists"]


@pytest.mark.parametrize("state,app", [
    ("fault", AppState(clock_waiting=True, faults=("x",))),
    ("link_down", AppState(clock_waiting=True, link_up=False)),
    ("no_upstream", AppState(clock_waiting=True, upstreams_healthy=0)),
    ("booting", AppState(clock_waiting=True, upstreams_total=2, upstreams_healthy=1)),
    ("booting", AppState(clock_waiting=True, blocking_paused=True)),
])
def test_the_clock_wait_ranks_below_link_and_upstreams(state, app):
    status = reduce(app)
    assert status.state == state
    assert "waiting for the clock to be set before downloading block lists" in status.reasons
    # Its reason follows the reasons of what outranks it.
    wait_at = status.reasons.index("waiting for the clock to be set before downloading block lists")
    assert wait_at == (0 if state == "booting" else 1)
