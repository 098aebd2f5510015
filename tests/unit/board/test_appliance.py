"""The appliance against a fake app, a fake sysfs tree and gpiozero's MockFactory."""

import asyncio
import dataclasses
import logging
import time

import pytest

from burrow.board.appliance import Appliance, ButtonActions
from burrow.board.button import ButtonTimings
from burrow.board.network import Address, DefaultRoute, Interface, NetworkSnapshot
from burrow.board.status import AppState
from burrow.dns.decision import Decision, QueryRecord
from burrow.lifecycle import Faults
from burrow.storage.querylog import QueryLogDB
from burrow.systemd import RESTART_EXIT_CODE
from burrow.telemetry.recorder import Recorder

from tests.support.timing import run_virtual, until

# Every test runs on a virtual clock (run_virtual): the LED patterns and the button's timers and
# hold measurement use the loop's clock, so a press lasts exactly as long as the test sleeps and
# the LEDs can be read at an instant, however busy the machine is. Hence the real timings.
BUTTON = ButtonTimings()  # restart after a 5 s hold, arm at 15 s, confirm within 10 s, pause 300 s
RED, AMBER, GREEN, BUTTON_PIN = 17, 27, 22, 3

BOARD_TOML = f"""
name = "testpi"
description = "A test board with ACT, three LEDs and a button"
model_match = ["Test Pi Model T"]
gpio = true
config_txt = []

[onboard_leds.act]
names = ["ACT", "led0"]
colour = "green"
trigger = true
role = "status"

[external_leds]
kind = "rgy"
pins = {{ red = {RED}, amber = {AMBER}, green = {GREEN} }}

[button]
pin = {BUTTON_PIN}
pull_up = true
"""

GENERIC_TOML = """
name = "generic"
description = "Generic"
model_match = []
gpio = false
config_txt = []
[external_leds]
kind = "none"
"""


# ---- fakes ------------------------------------------------------------------------------------


class FakeBus:
    def __init__(self):
        self.published = []

    def publish(self, topic, payload):
        self.published.append((topic, payload))
        return 1

    def topic(self, name):
        return [p for t, p in self.published if t == name]


class Published:
    """Announces every change of its attributes to ``owner`` (as the real sources do)."""

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        owner = self.__dict__.get("owner")
        if owner is not None:
            owner.changed()


class FakePool(Published):
    def __init__(self, owner, total=2):
        self.servers = [object() for _ in range(total)]
        self.healthy_count = total
        self.owner = owner


class FakeApp(Published):
    """What the appliance is given: the status source (burrow.health.Health's part), which
    announces each change, the button's actions, the bus and the config."""

    def __init__(self, config=None):
        self._listeners = []
        self.config = {"board.name": "auto", **(config or {})}
        self.events = FakeBus()
        self.upstreams = FakePool(self)
        self.ready = False
        self.faults = Faults()
        self.faults.subscribe(self.changed)
        self.paused = False
        self.pause_remaining = None
        self.data_dir = "/var/lib/burrow"
        self.calls = []
        self.owner = self

    # ---- the status source ----

    def subscribe(self, listener):
        self._listeners.append(listener)

    def changed(self):
        for listener in list(self.__dict__.get("_listeners", ())):
            listener()

    def state(self):
        return AppState(booting=not self.ready, faults=tuple(self.faults.reasons()),
                        upstreams_total=len(self.upstreams.servers), upstreams_healthy=self.upstreams.healthy_count,
                        blocking_paused=self.paused, pause_remaining_s=self.pause_remaining)

    # ---- the button's actions ----

    def actions(self):
        return ButtonActions(toggle_pause=self.toggle_pause, factory_reset=self.factory_reset,
                             restart=lambda: self.request_stop(RESTART_EXIT_CODE))

    def toggle_pause(self, seconds):
        self.calls.append(("toggle_pause", seconds))
        self.paused = not self.paused

    async def factory_reset(self):
        self.calls.append(("factory_reset",))

    def request_stop(self, exit_code):
        self.calls.append(("request_stop", exit_code))


class FakeWatcher:
    def __init__(self, on_change, first):
        self.on_change = on_change
        self.first = first
        self.closed = False

    async def start(self):
        return self.first

    def close(self):
        self.closed = True


def snapshot(carrier=True, address="192.168.1.23"):
    addrs = (Address(address, 24, 4, "global"),) if address else ()
    eth = Interface(2, "eth0", up=True, carrier=carrier, loopback=False,
                    mac="dc:a6:32:00:00:01", addresses=addrs)
    lo = Interface(1, "lo", up=True, carrier=True, loopback=True, mac=None,
                   addresses=(Address("127.0.0.1", 8, 4, "host"),))
    route = DefaultRoute(4, "192.168.1.1", "eth0") if address else None
    return NetworkSnapshot((lo, eth), route, None)


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path):
    """A fake ROOT: device-tree model of the test board and an ACT LED in sysfs."""
    r = tmp_path / "root"
    (r / "proc/device-tree").mkdir(parents=True)
    (r / "proc/device-tree/model").write_bytes(b"Test Pi Model T Rev 1.0\0")
    act = r / "sys/class/leds/ACT"
    act.mkdir(parents=True)
    (act / "brightness").write_text("0\n")
    (act / "max_brightness").write_text("1\n")
    (act / "trigger").write_text("none timer [mmc0] heartbeat\n")
    return r


@pytest.fixture
def board_dir(tmp_path):
    d = tmp_path / "boards"
    d.mkdir()
    (d / "testpi.toml").write_text(BOARD_TOML)
    (d / "generic.toml").write_text(GENERIC_TOML)
    return d


def act(root):
    return (root / "sys/class/leds/ACT/brightness").read_text().strip()


def rgy(factory):
    return tuple(int(factory.pin(p).state) for p in (RED, AMBER, GREEN))


def states(app):
    return [h["state"] for h in app.events.topic("health")]


def run(coro):
    return run_virtual(coro, timeout=120)


def make(app, root, board_dir, factory=None, snap=None, **kw):
    holder = {}

    def watcher_factory(on_change):
        holder["w"] = FakeWatcher(on_change, snap if snap is not None else snapshot())
        return holder["w"]

    kw.setdefault("watcher_factory", watcher_factory)
    appliance = Appliance(app.config, app.events, app, app.actions(), data_dir=app.data_dir, root=root,
                          pin_factory=factory, board_dir=board_dir, led_time_scale=0.05,
                          button_timings=BUTTON, **kw)
    return appliance, holder


# ---- status transitions -----------------------------------------------------------------------


def test_boot_then_ready_on_every_light(root, board_dir, factory):
    app = FakeApp()

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        assert appliance.board.name == "testpi"
        assert appliance.status().state == "booting"
        assert (root / "sys/class/leds/ACT/trigger").read_text() == "none"  # taken over
        # booting blinks: amber on the strip, ACT on and off
        seen_act, seen_amber = set(), set()
        for _ in range(30):
            seen_act.add(act(root))
            seen_amber.add(rgy(factory)[1])
            await asyncio.sleep(0.01)
        assert seen_act == {"0", "1"} and seen_amber == {0, 1}
        app.ready = True
        await until(lambda: appliance.status().state == "ready")
        await asyncio.sleep(0.05)
        assert rgy(factory) == (0, 0, 1)
        assert act(root) == "1"
        await appliance.stop()
        await appliance.stop()  # idempotent

    run(main())
    assert states(app) == ["booting", "ready"]
    assert app.events.topic("health")[-1] == {"state": "ready", "reasons": [], "led": "ready"}
    # The ACT LED is handed back to the kernel's trigger.
    assert (root / "sys/class/leds/ACT/trigger").read_text() == "mmc0"


def test_upstream_and_storage_and_fault_transitions(root, board_dir, factory):
    app = FakeApp()
    app.ready = True

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        steps = [
            (lambda: setattr(app.upstreams, "healthy_count", 1), "upstream_degraded"),
            (lambda: setattr(app.upstreams, "healthy_count", 0), "no_upstream"),
            (lambda: setattr(app.upstreams, "healthy_count", 2), "ready"),
            (lambda: setattr(app, "paused", True), "paused"),
            (lambda: app.faults.set("storage", "storage is not writable"), "fault"),
            (lambda: app.faults.clear("storage"), "paused"),
            (lambda: app.faults.set("task:querylog-flush", "query log writer died"), "fault"),
        ]
        for change, expected in steps:
            change()
            await until(lambda: appliance.status().state == expected)  # noqa: B023 - called within this iteration
        await asyncio.sleep(0.05)
        assert rgy(factory)[1:] == (0, 0)  # fault: red blinks, nothing else lit
        await appliance.stop()

    run(main())
    assert states(app) == ["ready", "upstream_degraded", "no_upstream", "ready", "paused",
                           "fault", "paused", "fault"]
    assert app.events.topic("health")[-1]["reasons"][0] == "fault: query log writer died"


def test_network_changes_drive_link_down(root, board_dir, factory):
    app = FakeApp()
    app.ready = True

    async def main():
        appliance, holder = make(app, root, board_dir, factory)
        await appliance.start()
        assert appliance.status().state == "ready"
        assert appliance.network()["primary_v4"] == "192.168.1.23"
        assert appliance.network()["available"] is True
        holder["w"].on_change(snapshot(carrier=False))
        assert appliance.status().state == "link_down"  # at once
        holder["w"].on_change(snapshot(address=None))
        assert appliance.status().reasons == ["no IP address on the network"]
        holder["w"].on_change(snapshot())
        assert appliance.status().state == "ready"
        await appliance.stop()
        assert holder["w"].closed

    run(main())
    assert states(app) == ["ready", "link_down", "link_down", "ready"]
    nets = app.events.topic("network")
    assert [n["link_up"] for n in nets] == [True, False, True, True]


def test_no_netlink_degrades_and_says_so(root, board_dir, factory, caplog):
    app = FakeApp()
    app.ready = True

    def broken(on_change):
        raise OSError(93, "Protocol not supported")

    async def main():
        appliance, _ = make(app, root, board_dir, factory, watcher_factory=broken)
        await appliance.start()
        # Unknown link state is not reported as link down.
        assert appliance.status().state == "ready"
        net = appliance.network()
        assert net["available"] is False and "Protocol not supported" in net["error"]
        await appliance.stop()

    with caplog.at_level(logging.WARNING, logger="burrow.board.appliance"):
        run(main())
    assert sum("netlink unavailable" in r.message for r in caplog.records) == 1


def test_without_gpio_only_the_onboard_led_is_used(root, board_dir, monkeypatch, caplog):
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    def no_factory():
        raise BadPinFactory("Unable to load any default pin factory!")

    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(no_factory))
    app = FakeApp()
    app.ready = True

    async def main():
        appliance, _ = make(app, root, board_dir, None)
        await appliance.start()
        assert appliance.button is None
        assert [type(o).__name__ for o in appliance.driver.outputs] == ["SysfsLed"]
        assert "BadPinFactory" in appliance.gpio_error
        assert act(root) == "1"
        await appliance.stop()

    with caplog.at_level(logging.WARNING, logger="burrow.board.appliance"):
        run(main())
    assert sum("no GPIO" in r.message for r in caplog.records) == 1


def test_generic_machine_runs_without_any_leds(tmp_path, board_dir):
    app = FakeApp()
    app.ready = True

    async def main():
        appliance, _ = make(app, tmp_path / "empty-root", board_dir)
        await appliance.start()
        assert appliance.board.name == "generic"
        assert appliance.driver.outputs == [] and appliance.button is None
        assert appliance.status().state == "ready"
        await appliance.stop()

    run(main())


def test_configured_board_name_and_bad_name(root, board_dir, factory):
    async def main(name):
        app = FakeApp({"board.name": name})
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        await appliance.stop()
        return appliance.board.name

    assert run(main("generic")) == "generic"
    assert run(main("no-such-board")) == "generic"


def test_leds_can_be_turned_off_in_config(root, board_dir, factory):
    app = FakeApp({"board.status_leds": False, "board.button": False})

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        assert appliance.driver is None and appliance.button is None
        await appliance.stop()

    run(main())
    assert (root / "sys/class/leds/ACT/trigger").read_text().strip() == "none timer [mmc0] heartbeat"


# ---- the button -------------------------------------------------------------------------------


async def press(factory, hold):
    pin = factory.pin(BUTTON_PIN)
    pin.drive_low()
    await asyncio.sleep(hold)
    pin.drive_high()
    await asyncio.sleep(0.06)


def buttons(app):
    return [e for e in app.events.topic("events") if e["type"] == "button"]


def test_short_press_toggles_pause_and_is_audited(root, board_dir, factory):
    app = FakeApp()
    app.ready = True

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        await press(factory, 0.1)
        await until(lambda: appliance.status().state == "paused")
        await until(lambda: rgy(factory)[2] == 1)  # paused: green stays on (amber blinks over it)
        await press(factory, 0.1)
        await until(lambda: appliance.status().state == "ready")
        await appliance.stop()

    run(main())
    assert app.calls == [("toggle_pause", 300), ("toggle_pause", 300)]
    events = buttons(app)
    assert [e["action"] for e in events] == ["pause_toggle", "pause_toggle"]
    assert all(isinstance(e["time"], float) and e["duration_s"] == 300 for e in events)
    assert states(app) == ["ready", "paused", "ready"]


def test_hold_restarts_with_the_restart_exit_code(root, board_dir, factory):
    app = FakeApp()
    app.ready = True

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        await press(factory, 6)  # between restart_hold and arm_hold
        await until(lambda: app.calls)
        await appliance.stop()

    run(main())
    assert app.calls == [("request_stop", RESTART_EXIT_CODE)]
    assert [e["action"] for e in buttons(app)] == ["restart"]


def test_two_step_factory_reset_shows_warning_then_resets(root, board_dir, factory):
    app = FakeApp()
    app.ready = True

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        pin = factory.pin(BUTTON_PIN)
        pin.drive_low()
        await until(lambda: appliance.status().led == "reset_armed")
        assert appliance.status().reasons[0].startswith("factory reset armed")
        pin.drive_high()
        await asyncio.sleep(0.05)
        assert appliance.status().led == "reset_armed"  # still waiting for confirmation
        await press(factory, 0.1)
        await until(lambda: ("factory_reset",) in app.calls)
        assert appliance.status().led == "ready"
        await appliance.stop()

    run(main())
    assert [e["action"] for e in buttons(app)] == ["reset_armed", "factory_reset"]
    assert [h["led"] for h in app.events.topic("health")] == ["ready", "reset_armed", "ready"]


def test_armed_reset_times_out(root, board_dir, factory):
    app = FakeApp()
    app.ready = True

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        await press(factory, 16)  # past arm_hold
        await until(lambda: any(e["action"] == "reset_disarmed" for e in buttons(app)))
        assert appliance.status().led == "ready"
        await appliance.stop()

    run(main())
    assert [e["action"] for e in buttons(app)] == ["reset_armed", "reset_disarmed"]
    assert app.calls == []


def test_a_failing_button_action_is_logged_not_raised(root, board_dir, factory, caplog):
    class Failing(FakeApp):
        def toggle_pause(self, seconds):
            raise RuntimeError("settings database is read-only")

    app = Failing()
    app.ready = True

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        await press(factory, 0.1)
        await until(lambda: buttons(app))
        assert appliance.status().state == "ready"
        await appliance.stop()

    run(main())
    assert [e["action"] for e in buttons(app)] == ["pause_toggle"]
    assert "button: toggle_pause failed" in caplog.text


# ---- system health ----------------------------------------------------------------------------


def test_system_snapshot_off_the_loop(root, board_dir, factory, tmp_path):
    app = FakeApp()
    app.ready = True
    app.data_dir = tmp_path
    (root / "proc/loadavg").write_text("0.10 0.20 0.30 1/100 4242\n")

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        snap = await appliance.system()
        await appliance.stop()
        return snap

    snap = run(main())
    assert snap["board"] == "testpi"
    assert snap["status"]["state"] == "ready"
    assert snap["cpu"]["load"] == [0.1, 0.2, 0.3]
    assert snap["memory"]["total"] > 0
    assert snap["disk"]["path"] == str(tmp_path)


def test_activity_flickers_only_with_a_driver(root, board_dir, factory):
    app = FakeApp({"board.status_leds": False})
    app.ready = True

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        appliance.activity()  # no driver: nothing happens, nothing raises
        await appliance.stop()

    run(main())


def test_the_recorder_tells_of_blocked_queries_once_per_drain(tmp_path):
    """The LED flickers when the recorder's drain saw blocked queries (it calls on_blocked:
    burrow/app.py wires it to Appliance.activity); nothing polls the counts."""
    flickers = []
    recorder = Recorder(QueryLogDB(tmp_path / "q.db"))
    recorder.on_blocked = lambda: flickers.append(recorder.blocked_total)
    try:
        def record(decision):
            return QueryRecord(time.monotonic(), "10.0.0.1", "x.example", 1, 0, decision, 0.001, "", ())
        recorder.ring.extend([record(Decision.BLOCKED), record(Decision.BLOCKED), record(Decision.CACHED)])
        recorder.drain()
        recorder.ring.append(record(Decision.CACHED))
        recorder.drain()  # nothing blocked: no flicker
        recorder.ring.append(record(Decision.BLOCKED))
        recorder.drain()
    finally:
        recorder._executor.shutdown(wait=True)
    assert flickers == [2, 3]


def test_the_status_follows_what_is_published_not_a_clock(root, board_dir, factory):
    """Each announced change shows at once (no tick to wait for), and the board runs no loop."""
    app = FakeApp()
    app.ready = True

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        assert appliance.background_tasks() == []
        assert appliance.status().state == "ready"
        app.upstreams.healthy_count = 1  # the pool announces it (dns/upstream.py watch)
        assert appliance.status().state == "upstream_degraded"
        app.faults.set("task:housekeeping", "background task housekeeping died: KeyError: 'x'")
        assert appliance.status().reasons[0] == "fault: background task housekeeping died: KeyError: 'x'"
        app.faults.clear("task:housekeeping")
        assert appliance.status().state == "upstream_degraded"
        await appliance.stop()

    run(main())
    assert states(app) == ["ready", "upstream_degraded", "fault", "upstream_degraded"]


def test_a_timed_pause_counts_its_minutes_down_by_itself(root, board_dir, factory):
    """"N min left" changes with time: the one timer the board keeps, for the next change."""
    clock = {"left": 150.0}  # 2.5 min: shown as "2 min left" until 90 s are left

    class Paused(FakeApp):
        def state(self):
            return dataclasses.replace(super().state(), pause_remaining_s=clock["left"])

    app = Paused()
    app.ready = True

    async def main():
        appliance, _ = make(app, root, board_dir, factory)
        await appliance.start()
        app.paused = True
        assert appliance.status().reasons == ["blocking paused (2 min left)"]
        timer = appliance._pause_timer
        assert timer is not None and 60.0 < timer.when() - asyncio.get_running_loop().time() <= 60.1
        clock["left"] = 89.9  # the moment the timer fires: what it calls
        appliance._pause_minute()
        assert appliance.status().reasons == ["blocking paused (1 min left)"]
        app.paused = False
        assert appliance._pause_timer is None
        await appliance.stop()

    run(main())
