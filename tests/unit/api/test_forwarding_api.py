"""/api/conditionalforwarding (seed 003) and /api/forwarders (seed 000) over one real rule store:
the seed's requests replayed, 400 naming the field, 409, 404, ids percent-encoded, roles, the
global switch and the router preset. Only authentication and the app around the store are faked."""

import asyncio

import pytest
from microdot.test_client import TestClient

from burrow.api import forwarding_api, openapi
from burrow.api.routes import Api
from burrow.changes import Change
from burrow.forwarding import ForwardRules
from burrow.storage.settings import SettingsDB

from tests.support.fakes import FakeAuth, FakePrincipal

VIEWER = {"Authorization": "Bearer viewer"}
ADMIN = {"Authorization": "Bearer admin"}
BASE = "/api/conditionalforwarding"

SEED_POSTS = [
    {"name": "Local Network", "domains": ["*.local", "*.lan"], "upstreams": ["192.168.1.1:53"], "priority": 80},
    {"name": "Reverse DNS", "client_cidrs": ["10.0.0.0/8"], "query_types": ["PTR"], "upstreams": ["10.0.0.1:53"],
     "priority": 70, "timeout": "3s", "max_retries": 2, "failover": True},
    {"name": "VPN Network", "domains": ["*.vpn.corp"], "client_cidrs": ["172.16.0.0/12"], "query_types": ["A", "AAAA"],
     "upstreams": ["172.16.0.1:53", "172.16.0.2:53"], "priority": 90, "timeout": "5s", "max_retries": 3,
     "failover": True},
]


class Events:
    def __init__(self):
        self.published = []

    def publish(self, topic, payload):
        self.published.append((topic, payload))
        return 0


class Board:
    """The network snapshot the router preset reads (no netlink until told otherwise)."""

    net = {"available": False, "error": "not started"}

    def network(self):
        return self.net


class FakeApp:
    """What forwarding_api is given: the rules (announcing to ``changed``), the board, the bus."""

    def __init__(self, tmp_path):
        self.settings = SettingsDB(tmp_path / "settings.db")
        self.forwarding = ForwardRules(self.settings, on_change=self.changed)
        self.events = Events()
        self.auth = FakeAuth({"Bearer viewer": FakePrincipal("vera", "viewer", "read"),
                              "Bearer admin": FakePrincipal("ada", "admin")})
        self.board = Board()
        self.changes = 0

    def changed(self, change):
        assert change is Change.FORWARDING
        self.changes += 1


@pytest.fixture
def app(tmp_path):
    a = FakeApp(tmp_path)
    yield a
    a.settings.close()


@pytest.fixture
def call(app):
    api = Api(app.auth)
    forwarding_api.register(api, forwarding=app.forwarding, board=app.board, events=app.events)
    client = TestClient(api.web)

    def go(method, path, headers=None, body=None):
        return asyncio.run(client.request(method, path, headers=dict(headers or {}), body=body))

    return go


def fields_of(res):
    return {d["field"] for d in res.json.get("details") or []}


# ---- seed 003 ------------------------------------------------------------------------------------

def test_seed_example_requests_replayed(call, app):
    res = call("POST", BASE, ADMIN, SEED_POSTS[0])
    assert res.status_code == 200
    assert res.json == {"message": "Conditional forwarding rule added successfully", "rule": {
        "id": "Local Network:80:0", "name": "Local Network", "domains": ["*.local", "*.lan"],
        "client_cidrs": [], "query_types": [], "upstreams": ["192.168.1.1:53"], "priority": 80,
        "timeout": "", "max_retries": 0, "failover": False, "enabled": True}}
    for body in SEED_POSTS[1:]:
        assert call("POST", BASE, ADMIN, body).status_code == 200
    res = call("GET", BASE, VIEWER)
    assert res.status_code == 200
    body = res.json
    assert body["enabled"] is True and body["total"] == 3
    assert [r["id"] for r in body["rules"]] == ["VPN Network:90:0", "Local Network:80:1", "Reverse DNS:70:2"]
    vpn = body["rules"][0]
    assert vpn == {"id": "VPN Network:90:0", **SEED_POSTS[2], "enabled": True}
    assert app.changes == 3
    assert [p["type"] for _, p in app.events.published] == ["forwarding.added"] * 3
    assert app.events.published[0][1]["actor"] == "ada"

    res = call("DELETE", BASE + "/Local%20Network:80:1", ADMIN)
    assert res.status_code == 200
    assert res.json == {"message": "Conditional forwarding rule removed successfully", "total": 2}
    assert app.forwarding.match("nas.lan", "1.2.3.4", 1) is None
    assert app.changes == 4


@pytest.mark.parametrize("body,field", [
    ({"domains": ["*.lan"], "upstreams": ["10.0.0.1:53"]}, "name"),
    ({"name": "x", "upstreams": ["10.0.0.1:53"]}, "domains"),
    ({"name": "x", "domains": ["*.lan"]}, "upstreams"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": []}, "upstreams"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["nas:53"]}, "upstreams[0]"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1:53"], "priority": 0}, "priority"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1:53"], "priority": 101}, "priority"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1:53"], "timeout": "soon"}, "timeout"),
    ({"name": "x", "client_cidrs": ["10.0.0.0/40"], "upstreams": ["10.0.0.1:53"]}, "client_cidrs[0]"),
    ({"name": "x", "query_types": ["NOPE"], "upstreams": ["10.0.0.1:53"]}, "query_types[0]"),
    ({"name": "x", "domains": ["ev*il.lan"], "upstreams": ["10.0.0.1:53"]}, "domains[0]"),
    ({"name": "x", "domains": ["*.lan"], "upstreams": ["10.0.0.1:53"], "colour": "red"}, "colour"),
])
def test_invalid_requests_are_400_naming_the_field(call, app, body, field):
    res = call("POST", BASE, ADMIN, body)
    assert res.status_code == 400, res.json
    assert field in fields_of(res), res.json
    assert app.changes == 0 and len(app.forwarding) == 0


def test_duplicate_name_is_409(call):
    assert call("POST", BASE, ADMIN, SEED_POSTS[0]).status_code == 200
    res = call("POST", BASE, ADMIN, {**SEED_POSTS[1], "name": "Local Network"})
    assert res.status_code == 409 and "name" in fields_of(res)


def test_delete_errors(call):
    call("POST", BASE, ADMIN, SEED_POSTS[0])
    # not an id, so a name (Burrow takes either): one no rule has, 404 (issue 20, item 11)
    assert call("DELETE", BASE + "/garbage", ADMIN).status_code == 404
    assert call("DELETE", BASE + "/Local%20Network:80:x", ADMIN).status_code == 404
    assert call("DELETE", BASE + "/Nobody:80:0", ADMIN).status_code == 404
    assert call("DELETE", BASE + "/Local%20Network:81:0", ADMIN).status_code == 404
    assert call("DELETE", BASE + "/Local%20Network", ADMIN).status_code == 200  # an exact name works too


def test_names_with_slashes_and_colons_round_trip(call):
    body = {"name": "a/b: c", "domains": ["x.test"], "upstreams": ["10.0.0.1"]}
    rid = call("POST", BASE, ADMIN, body).json["rule"]["id"]
    assert rid == "a/b: c:50:0"
    assert call("GET", BASE + "/a%2Fb%3A%20c%3A50%3A0", VIEWER).json["name"] == "a/b: c"
    assert call("DELETE", BASE + "/a/b:%20c:50:0", ADMIN).status_code == 200


def test_put_changes_only_the_given_fields(call, app):
    call("POST", BASE, ADMIN, SEED_POSTS[1])
    res = call("PUT", BASE + "/Reverse%20DNS:70:0", ADMIN, {"priority": 20, "enabled": False})
    assert res.status_code == 200 and res.json["message"] == "Conditional forwarding rule updated successfully"
    rule = res.json["rule"]
    assert rule["id"] == "Reverse DNS:20:0" and rule["enabled"] is False and rule["timeout"] == "3s"
    assert call("PUT", BASE + "/Reverse%20DNS:70:0", ADMIN, {"priority": 30}).status_code == 404  # old id
    res = call("PUT", BASE + "/Reverse%20DNS", ADMIN, {"timeout": "2 minutes"})
    assert res.status_code == 400 and fields_of(res) == {"timeout"}
    # a GET object can be sent back as it is
    got = call("GET", BASE + "/Reverse%20DNS", VIEWER).json
    assert call("PUT", BASE + "/Reverse%20DNS", ADMIN, {**got, "enabled": True}).json["rule"]["enabled"]
    assert call("PUT", BASE + "/Reverse%20DNS", ADMIN, {}).status_code == 400


def test_global_switch(call, app):
    call("POST", BASE, ADMIN, SEED_POSTS[0])
    res = call("POST", BASE + "/enabled", ADMIN, {"enabled": False})
    assert res.status_code == 200 and res.json == {"message": "Conditional forwarding disabled", "enabled": False}
    assert call("GET", BASE, VIEWER).json["enabled"] is False
    assert app.forwarding.match("nas.lan", "1.2.3.4", 1) is None
    assert call("POST", BASE + "/enabled", ADMIN, {"enabled": True}).json["enabled"] is True
    assert app.forwarding.match("nas.lan", "1.2.3.4", 1).name == "Local Network"
    assert call("POST", BASE + "/enabled", ADMIN, {}).status_code == 400


def test_viewer_cannot_write(call):
    assert call("GET", BASE, VIEWER).status_code == 200
    for method, path, body in (("POST", BASE, SEED_POSTS[0]), ("DELETE", BASE + "/x:1:0", None),
                               ("PUT", BASE + "/x:1:0", {"priority": 2}),
                               ("POST", BASE + "/enabled", {"enabled": False}),
                               ("POST", BASE + "/preset/router", {"router": "192.168.1.1"}),
                               ("DELETE", BASE + "/preset/router", None), ("POST", "/api/forwarders", SEED_POSTS[0]),
                               ("PUT", "/api/forwarders/x", {"priority": 2}), ("DELETE", "/api/forwarders/x", None)):
        assert call(method, path, VIEWER, body).status_code == 403, (method, path)
    assert call("GET", BASE).status_code == 401


# ---- seed 000 face -------------------------------------------------------------------------------

def test_forwarders_are_the_same_rules(call, app):
    res = call("POST", "/api/forwarders", ADMIN, SEED_POSTS[0])
    assert res.status_code == 201 and res.json["id"] == "Local Network:80:0"
    call("POST", BASE, ADMIN, SEED_POSTS[2])
    listing = call("GET", "/api/forwarders", VIEWER).json
    assert listing["total"] == 2 and listing["forwarders"] == call("GET", BASE, VIEWER).json["rules"]
    assert call("GET", "/api/forwarders/VPN%20Network:90:0", VIEWER).json["name"] == "VPN Network"
    res = call("PUT", "/api/forwarders/Local%20Network:80:1", ADMIN, {"upstreams": ["192.168.1.2"]})
    assert res.status_code == 200 and res.json["upstreams"] == ["192.168.1.2"]
    assert call("POST", "/api/forwarders", ADMIN, SEED_POSTS[0]).status_code == 409
    res = call("DELETE", "/api/forwarders/Local%20Network:80:1", ADMIN)
    assert res.status_code == 200 and res.json["total"] == 1
    assert call("GET", "/api/forwarders/Local%20Network:80:1", VIEWER).status_code == 404


# ---- the router preset ---------------------------------------------------------------------------

def test_router_preset_is_one_call_and_one_toggle(call, app):
    res = call("GET", BASE + "/preset/router", VIEWER)
    assert res.status_code == 200 and res.json["enabled"] is False and res.json["rule"] is None
    res = call("POST", BASE + "/preset/router", ADMIN, {"router": "192.168.1.1", "domain": "lan"})
    assert res.status_code == 200 and res.json["message"] == "Router preset enabled"
    preset = res.json["preset"]
    assert preset["enabled"] and preset["network"] == "192.168.1.0/24"
    assert preset["rule"]["domains"] == ["lan", "1.168.192.in-addr.arpa"]
    assert app.forwarding.match("nas.lan", "1.2.3.4", 1).name == "Router"
    assert app.forwarding.match("5.1.168.192.in-addr.arpa", "1.2.3.4", 12).name == "Router"
    assert [r["name"] for r in call("GET", BASE, VIEWER).json["rules"]] == ["Router"]
    # again with other settings: still one rule
    res = call("POST", BASE + "/preset/router", ADMIN, {"router": "10.0.0.1", "network": "10.0.0.0/16"})
    assert res.json["preset"]["rule"]["domains"] == ["lan", "0.10.in-addr.arpa"]
    assert call("GET", BASE, VIEWER).json["total"] == 1
    res = call("DELETE", BASE + "/preset/router", ADMIN)
    assert res.status_code == 200 and res.json["preset"]["enabled"] is False
    assert res.json["preset"]["router"] == "10.0.0.1"  # remembered for switching back on
    assert call("GET", BASE, VIEWER).json["total"] == 0
    assert app.changes == 3


def test_router_preset_errors_and_gateway_default(call, app):
    res = call("POST", BASE + "/preset/router", ADMIN, {"domain": "lan"})
    assert res.status_code == 400 and fields_of(res) == {"router"}  # no gateway known
    assert fields_of(call("POST", BASE + "/preset/router", ADMIN, {"router": "my-router"})) == {"router"}
    assert fields_of(call("POST", BASE + "/preset/router", ADMIN,
                          {"router": "192.168.1.1", "network": "192.168.1.0/33"})) == {"network"}
    app.board.net = {"available": True, "default_v4": {"family": 4, "gateway": "192.168.178.1", "interface": "eth0"}}
    assert call("GET", BASE + "/preset/router", VIEWER).json["suggested_router"] == "192.168.178.1"
    res = call("POST", BASE + "/preset/router", ADMIN, {"domain": "fritz.box"})
    assert res.status_code == 200
    assert res.json["preset"]["rule"]["upstreams"] == ["192.168.178.1:53"]
    assert res.json["preset"]["rule"]["domains"] == ["fritz.box", "178.168.192.in-addr.arpa"]


# ---- registry ------------------------------------------------------------------------------------

def test_routes_document_themselves_and_touch_no_app_state_when_registered():
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"register touched app.{name}")

    api = Api()
    forwarding_api.register(api, forwarding=Untouchable(), board=Untouchable(),
                            events=Untouchable())
    doc = openapi.build(api, "test")
    assert "/api/conditionalforwarding/{id}" in doc["paths"] and "/api/forwarders/{id}" in doc["paths"]
    assert set(doc["paths"]["/api/conditionalforwarding"]) == {"get", "post"}
    assert all(r.role == "admin" for r in api.routes if r.mutating)

