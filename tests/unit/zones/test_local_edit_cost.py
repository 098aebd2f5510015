"""Adding or removing one local record costs the same with 20 records stored as with 2,000
(issue 20, item 12: 9.5 ms with a few, 67 ms with 1,339 — the whole local data was re-read
and rebuilt for every edit).

No clock is read here: the work is counted as Python function calls (``sys.setprofile``) made
while a real App answers ``POST /api/localrecords`` and ``DELETE /api/localrecords/{id}``,
which is deterministic for a given code path. The figures are in docs/benchmarks.md
(scripts/bench-localrecords).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

import pytest
from microdot.test_client import TestClient

from burrow import config as config_mod
from burrow.api import create_api
from burrow.api.routes import WebSettings
from burrow.app import App
from burrow.zones.records import Record
from burrow.zones.store import ZoneStore

from tests.support.fakes import FakeAuth, FakePrincipal

ADMIN = {"Authorization": "Bearer admin"}
FEW, MANY = 20, 2000


def web_service(services):
    """The web service of the built services (it serves the API made from them)."""
    return next(s for s in services.lifecycle.services if s.name == "web")


def make_app(tmp_path, stored: int):
    """The built services (nothing started), authentication faked, ``stored`` local records."""
    tmp_path.mkdir()
    cfg = config_mod.load(None, environ={}).with_overrides(
        {"storage.data_dir": str(tmp_path), "upstream_dns_servers": ["192.0.2.1:53"]})
    app = App(cfg).build()
    app.auth.close()  # its password workers are not used: authentication is faked
    store = app.zones.store
    with app.settings.transaction() as conn:  # stored directly: filling is not what is measured
        for i in range(stored):
            ZoneStore._insert(conn, store.local_id,
                              Record(f"host-{i}.home.lan", "A", 300, f"10.0.{i >> 8}.{i & 255}"))
    app.zones.changed()
    assert app.resolver.local.data.stats()["records"] == stored
    return dataclasses.replace(app, auth=FakeAuth({"Bearer admin": FakePrincipal("ada", "admin")}))


def counted(client, method, path, body=None) -> tuple[int, int]:
    """(status, Python calls made while the request was answered)."""
    calls = 0

    def profile(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(profile)
    try:
        res = asyncio.run(client.request(method, path, headers={**ADMIN, "Content-Type": "application/json"},
                                         body=None if body is None else json.dumps(body).encode()))
    finally:
        sys.setprofile(None)
    return res.status_code, calls


def edit_costs(tmp_path, stored: int) -> dict[str, int]:
    app = make_app(tmp_path, stored)
    client = TestClient(create_api(app, web_service(app), WebSettings()).web)
    try:
        # a first add of each kind warms what is made once (imports, compiled patterns)
        assert counted(client, "POST", "/api/localrecords",
                       {"domain": "warm.home.lan", "type": "A", "ips": ["192.168.7.1"]})[0] == 200
        status, add = counted(client, "POST", "/api/localrecords",
                              {"domain": "nas.home.lan", "type": "A", "ips": ["192.168.7.2"]})
        assert status == 200
        status, delete = counted(client, "DELETE", "/api/localrecords/nas.home.lan.:A:0")
        assert status == 200
        data = app.resolver.local.data  # the snapshot DNS answers from followed both edits
        assert data.covers("warm.home.lan") and not data.covers("nas.home.lan")
        assert data.covers("2.7.168.192.in-addr.arpa") is False
        assert data.stats()["records"] == stored + 1
        return {"add": add, "delete": delete}
    finally:
        app.recorder._executor.shutdown(wait=True)
        app.settings.close()


@pytest.mark.parametrize("edit", ["add", "delete"])
def test_one_local_record_edit_costs_the_same_with_many_records_stored(tmp_path, edit):
    few = edit_costs(tmp_path / "few", FEW)[edit]
    many = edit_costs(tmp_path / "many", MANY)[edit]
    # 100× the records may cost a few calls more (a longer SQL IN list, say), never 100× the work
    assert many <= few * 1.2 + 50, (edit, few, many)
