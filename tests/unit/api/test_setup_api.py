"""GET /api/lists/catalogue and the setup check (POST /api/setup/check, GET /api/setup/check/<name>)
through the real route wrapper, a real AuthService, ListStore and Probes: roles, shapes, the
catalogue's contents and its "added" flag, expiry and bad names."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from burrow.api import setup_api
from burrow.dns import probes as probe_names
from burrow.dns.probes import Probes
from burrow.filtering import catalogue
from burrow.filtering.sources import ListStore

from tests.unit.api.test_api_auth import (VIEWER_PW, FakeApp, Http, assert_error, build_api,
                                          login, setup_admin)


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def env(tmp_path):
    app = FakeApp(tmp_path)
    api = build_api(app)
    store = ListStore(app.settings)
    clock = Clock()
    probes = Probes(clock)
    setup_api.register(api, probes=probes, list_store=store)
    http = Http(api)
    setup_admin(http)
    admin = login(http)["access_token"]
    res = http("POST", "/api/users", {"username": "vera", "password": VIEWER_PW, "role": "viewer"}, token=admin)
    assert res.status_code == 201
    viewer = login(http, "vera", VIEWER_PW)["access_token"]
    yield {"http": http, "admin": admin, "viewer": viewer, "store": store, "probes": probes, "clock": clock}
    app.settings.close()


def test_the_packaged_catalogue_is_valid_and_names_the_well_known_lists():
    entries = catalogue.entries()
    names = " ".join(e["name"] for e in entries)
    for expected in ("StevenBlack", "OISD small", "OISD big", "HaGeZi Multi light", "HaGeZi Multi normal",
                     "AdGuard DNS filter", "1Hosts Lite"):
        assert expected in names
    assert all(e["url"].startswith("https://") and e["approx_entries"] > 0 for e in entries)
    assert sum(e["recommended"] for e in entries) == 1


@pytest.mark.parametrize("change, message", [
    (lambda d: d["lists"][0].pop("url"), "exactly the fields"),
    (lambda d: d["lists"][0].update(url="http://example.org/hosts"), "https URL"),
    (lambda d: d["lists"][1].update(id=d["lists"][0]["id"]), "repeats"),
    (lambda d: d["lists"][0].update(approx_entries="many"), "must be a int"),
    (lambda d: d.update(lists=[]), "non-empty"),
])
def test_a_malformed_catalogue_is_refused(change, message):
    doc = json.loads(resources.files("burrow.filtering").joinpath("catalogue.json").read_text())
    change(doc)
    with pytest.raises(catalogue.CatalogueError, match=message):
        catalogue.parse(json.dumps(doc))


def test_catalogue_for_viewers_with_added_flags(env):
    http = env["http"]
    assert http("GET", "/api/lists/catalogue").status_code == 401
    res = http("GET", "/api/lists/catalogue", token=env["viewer"])
    assert res.status_code == 200 and res.json["total"] == len(res.json["lists"]) == len(catalogue.entries())
    assert not any(e["added"] for e in res.json["lists"])
    first = res.json["lists"][0]
    env["store"].create(first["name"], first["url"])  # what POST /api/lists does with the entry
    again = http("GET", "/api/lists/catalogue", token=env["admin"]).json["lists"]
    assert [e["id"] for e in again if e["added"]] == [first["id"]]


def test_check_name_unseen_then_seen_with_its_client(env):
    http = env["http"]
    res = http("POST", "/api/setup/check", token=env["viewer"])
    assert res.status_code == 201 and res.headers["Cache-Control"] == "no-store"
    name = res.json["name"]
    assert name.endswith(".check.burrow.test") and res.json["seen"] is False
    assert res.json["expires_in"] == int(probe_names.TTL) and res.json["client"] is None
    state = http("GET", f"/api/setup/check/{name}", token=env["viewer"])
    assert state.status_code == 200 and state.json["seen"] is False
    env["probes"].saw(name, "192.168.1.40")  # what the local stage does when the lookup arrives
    state = http("GET", f"/api/setup/check/{name.upper()}", token=env["viewer"]).json
    assert state["seen"] is True and state["client"] == "192.168.1.40" and state["lookups"] == 1


def test_check_names_expire_and_bad_names_are_refused(env):
    http = env["http"]
    name = http("POST", "/api/setup/check", token=env["admin"]).json["name"]
    env["clock"].now += probe_names.TTL
    assert_error(http("GET", f"/api/setup/check/{name}", token=env["admin"]), 404)
    assert_error(http("GET", "/api/setup/check/www.example.com", token=env["admin"]), 400, field="name")
    assert_error(http("GET", "/api/setup/check/zz%3Cb%3E.check.burrow.test", token=env["admin"]), 400, field="name")
    assert http("POST", "/api/setup/check").status_code == 401


def test_asking_for_many_names_keeps_at_most_the_cap(env):
    http = env["http"]
    for _ in range(probe_names.MAX_PENDING + 5):
        assert http("POST", "/api/setup/check", token=env["admin"]).status_code == 201
    assert len(env["probes"]) == probe_names.MAX_PENDING


