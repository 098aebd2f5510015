"""The real App starts its services in the declared order and stops them in reverse
(burrow/app.py START_ORDER; the order's reasons are in docs/architecture.md too).

In-process, on loopback ports: the services are the real ones, each start and stop noted as
it happens.
"""

from __future__ import annotations

import asyncio
import gc
import re
import socket
from pathlib import Path

import pytest

from burrow import config as config_mod
from burrow.app import START_ORDER, App
from tests.support.burrow_proc import free_port

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
DECLARED = [name for name, _why in START_ORDER]


@pytest.fixture
def keep_gc():
    """App.start freezes the collector's generations and raises its threshold (for the
    appliance's lifetime); give this test process its own back afterwards."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def make_app(tmp_path) -> App:
    cfg = config_mod.load(None, environ={}).with_overrides({
        "storage.data_dir": str(tmp_path / "data"), "upstream_dns_servers": ["127.0.0.1:9"],
        "server.listen_address": f"127.0.0.1:{free_port()}", "server.web_ui_address": f"127.0.0.1:{free_port()}",
        "compat.pihole_address": f"127.0.0.1:{free_port()}"})
    return App(cfg)


def test_services_start_in_the_declared_order_and_stop_in_reverse(tmp_path, keep_gc):
    app = make_app(tmp_path)
    services = app.build()
    journal = []
    for service in services.lifecycle.services:
        def noted(method, what, name=service.name):
            async def run():
                journal.append(f"{what} {name}")
                await method()
            return run
        service.start = noted(service.start, "start")
        service.stop = noted(service.stop, "stop")

    async def main():
        await app.start()
        running = services.lifecycle.snapshot()
        ready = services.health.readiness()
        await app.stop()
        return running, ready

    running, (ready, checks) = asyncio.run(asyncio.wait_for(main(), 60))
    assert services.lifecycle.order == DECLARED
    assert journal == [f"start {n}" for n in DECLARED] + [f"stop {n}" for n in reversed(DECLARED)]
    assert running["phase"] == "running" and [s["state"] for s in running["services"]] == ["running"] * len(DECLARED)
    assert checks["tasks"] == "ok" and checks["storage"] == "ok"
    # Everything the services ran under the supervisor ended with them, and nothing died.
    assert services.supervisor.running() == [] and services.supervisor.deaths == {} and not services.faults
    assert services.lifecycle.snapshot()["phase"] == "stopped" and not services.health.ready


def test_a_service_that_cannot_start_stops_the_ones_before_it(tmp_path, keep_gc):
    app = make_app(tmp_path)
    services = app.build()
    dns = next(s for s in services.lifecycle.services if s.name == "dns")
    taken = dns.listen[0]
    blocker = socket.socket()
    blocker.bind(taken)  # the DNS port is taken (TCP): its start fails

    async def main():
        with pytest.raises(OSError):
            await app.start()
        return services.lifecycle.snapshot()

    try:
        snap = asyncio.run(asyncio.wait_for(main(), 60))
    finally:
        blocker.close()
    states = {s["name"]: s["state"] for s in snap["services"]}
    assert states["dns"] == "failed" and states["web"] == "stopped"
    assert all(states[n] == "stopped" for n in DECLARED[:DECLARED.index("dns")])
    assert snap["phase"] == "stopped" and services.supervisor.running() == []


def test_the_documented_order_is_the_declared_one():
    text = ARCHITECTURE.read_text()
    table = text[text.index("| # | service |"):]
    documented = re.findall(r"^\| \d+ \| `(\w+)` \|", table, re.M)
    assert documented == DECLARED
