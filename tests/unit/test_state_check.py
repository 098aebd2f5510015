"""burrow.state_check: stored state judged by the API's own validators, and bad rows moved
aside (never deleted) so a start always succeeds.

State is made through the real components (the API's own code paths), then broken by writing
the settings DB directly, as a restore, a hand edit or a bug would.
"""

from __future__ import annotations

import json

import pytest

from burrow import state_check
from burrow.config import load as load_config
from burrow.filtering.groups import Groups
from burrow.filtering.rpz import HandZones
from burrow.filtering.sources import ListStore
from burrow.filtering.userlists import UserList
from burrow.forwarding import ForwardRules
from burrow.policy import PolicyRule
from burrow.storage.settings import SettingsDB
from burrow.zones.store import ZoneStore


@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "lists").mkdir()
    return state_check.Context(load_config(None, environ={}), tmp_path, [str(tmp_path / "lists")])


@pytest.fixture
def db(tmp_path, ctx):
    """A settings DB holding one of everything, made the way the API makes it."""
    d = SettingsDB(tmp_path / "settings.db")
    groups = Groups(d)
    groups.add_group("kids")
    groups.add_client("192.168.1.50", ["kids"], "tablet")
    groups.add_client("192.168.2.0/24", ["kids"], "guest wifi")
    groups.add_client("10.0.0.7", ["kids"])
    UserList(d, "filtering.whitelist").add("good.example")
    UserList(d, "filtering.denylist").add("*.ads.example", ["kids"])
    d.set("policies", [PolicyRule.from_dict({"name": "late", "logic": "Hour >= 22", "action": "BLOCK"},
                                            id=0).to_dict()])
    d.set("policies.next_id", 1)
    ForwardRules(d).add({"name": "corp", "domains": ["corp.example"], "upstreams": ["192.0.2.53"]})
    d.set("config.overrides", {"cache.max_ttl": 3600})
    d.set("blocking.pause", {"until": None, "indefinite": False, "groups": {"kids": {"until": 1e10,
                                                                                      "indefinite": False}}})
    zones = ZoneStore(d)
    zones.create_zone("zone.test")
    zones.add_record("zone.test", "www", "A", "192.0.2.77")
    zones.add_local("nas.lan", "A", ips=["192.168.7.7"])
    store = ListStore(d, ctx.local_dirs)
    hand = HandZones(d, str(ctx.lists_dir))
    file = hand.new_file()
    row = store.create("rpz.home", file, "block", "rpz")
    hand.save(row["id"], "rpz.home", [{"id": 1, "trigger": "ads.example", "action": "nxdomain", "data": ""}],
              file=file)
    store.create("a list", "https://lists.example/hosts.txt", groups=["kids"])
    yield d
    d.close()


def raw_set(db, key, text):
    db.conn.execute("INSERT INTO settings (key, value, updated_at) VALUES (?, ?, 0) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, text))


def change(db, key, fn):
    value = db.get(key)
    db.set(key, fn(value) or value)


def test_state_made_through_the_api_passes(db, ctx):
    assert state_check.check(db, ctx, users=False) == []
    assert state_check.load(db, ctx) == []


# (name, how to break the db, expected (table, row, field))
CASES = [
    ("value not JSON", lambda db: raw_set(db, "groups", "{not json"), ("settings", "groups", "value")),
    ("value nested too deep", lambda db: raw_set(db, "clients", "[" * 5000 + "]" * 5000),
     ("settings", "clients", "value")),
    ("client not an IP", lambda db: change(db, "clients", lambda v: v[1].update(client="not-an-ip")),
     ("settings", "clients", "[1].client")),
    ("client CIDR with host bits", lambda db: change(db, "clients", lambda v: v[1].update(client="10.1.2.3/8")),
     ("settings", "clients", "[1].client")),
    ("client in no known group", lambda db: change(db, "clients", lambda v: v[0].update(groups=["nosuch"])),
     ("settings", "clients", "[0].groups")),
    ("client id twice", lambda db: change(db, "clients", lambda v: v[2].update(id=v[0]["id"])),
     ("settings", "clients", "[2].id")),
    ("group name", lambda db: change(db, "groups", lambda v: v[0].update(name="Bad Name!")),
     ("settings", "groups", "[0].name")),
    ("allow-list regex", lambda db: change(db, "filtering.whitelist", lambda v: v + ["(unclosed"]),
     ("settings", "filtering.whitelist", "[1].domain")),
    ("deny list not a list", lambda db: db.set("filtering.denylist", {"a": 1}),
     ("settings", "filtering.denylist", "value")),
    ("override value", lambda db: db.set("config.overrides", {"cache.max_ttl": "soon"}),
     ("settings", "config.overrides", "cache.max_ttl")),
    ("override not runtime", lambda db: db.set("config.overrides", {"storage.data_dir": "/"}),
     ("settings", "config.overrides", "storage.data_dir")),
    ("policy logic", lambda db: change(db, "policies", lambda v: v[0].update(logic="Hour >>> (")),
     ("settings", "policies", "[0].logic")),
    ("policy name too long", lambda db: change(db, "policies", lambda v: v[0].update(name="n" * 201)),
     ("settings", "policies", "[0].name")),
    ("policy next id", lambda db: db.set("policies.next_id", "x"), ("settings", "policies.next_id", "value")),
    ("forward upstream", lambda db: change(db, "forwarding.rules", lambda v: v[0].update(upstreams=["nope"])),
     ("settings", "forwarding.rules", "[0].upstreams[0]")),
    ("pause not an object", lambda db: db.set("blocking.pause", [1]), ("settings", "blocking.pause", "value")),
    ("pause of no group", lambda db: change(db, "blocking.pause", lambda v: v["groups"].update(ghosts={})),
     ("settings", "blocking.pause", "groups.ghosts")),
    ("RPZ file outside the lists folder", lambda db: change(db, "rpz.rules.1", lambda v: v.update(file="/etc/passwd")),
     ("settings", "rpz.rules.1", "file")),
    ("RPZ rule trigger", lambda db: change(db, "rpz.rules.1", lambda v: v["rules"][0].update(trigger="a b")),
     ("settings", "rpz.rules.1", "rules[0].trigger")),
    ("list groups not JSON", lambda db: db.conn.execute("UPDATE lists SET groups = '{x' WHERE id = 2"),
     ("lists", "id=2", "groups")),
    ("list interval", lambda db: db.conn.execute("UPDATE lists SET update_interval = 5 WHERE id = 2"),
     ("lists", "id=2", "update_interval")),
    ("list source outside", lambda db: db.conn.execute("UPDATE lists SET source = '/etc/shadow' WHERE id = 2"),
     ("lists", "id=2", "source")),
    ("record value", lambda db: db.conn.execute("UPDATE zone_records SET value = 'not-an-ip' WHERE type = 'A' "
                                                "AND name = 'www.zone.test'"), ("zone_records", None, "value")),
    ("record type", lambda db: db.conn.execute("UPDATE zone_records SET type = 'BOGUS' WHERE name = 'nas.lan'"),
     ("zone_records", None, "type")),
    ("record outside its zone", lambda db: db.conn.execute("UPDATE zone_records SET name = 'www.other.test' "
                                                           "WHERE name = 'www.zone.test'"),
     ("zone_records", None, "name")),
    ("zone primaries not JSON",
     lambda db: db.conn.execute("UPDATE zones SET primaries = '{x' WHERE name = 'zone.test'"),
     ("zones", None, "primaries")),
    ("master zone without SOA", lambda db: db.conn.execute("DELETE FROM zone_records WHERE type = 'SOA'"),
     ("zones", None, "type")),
]


@pytest.mark.parametrize("name,breaker,where", CASES, ids=[c[0] for c in CASES])
def test_each_bad_row_is_named(db, ctx, name, breaker, where):
    breaker(db)
    problems = state_check.check(db, ctx)
    assert problems, f"{name}: not found"
    table, row, field = where
    assert any(p.table == table and (row is None or p.row == row) and p.field == field for p in problems), \
        [str(p) for p in problems]
    assert all(p.message for p in problems)


def test_deep_json_is_a_value_error_not_recursion():
    with pytest.raises(ValueError, match="nested deeper"):
        state_check.decode("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested deeper"):
        state_check.decode("[" * 40 + "]" * 40)
    assert state_check.decode('{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}


def quarantined(db) -> list[dict]:
    cur = db.conn.execute("SELECT source, row_key, entry, content, reason FROM quarantine ORDER BY id")
    return [dict(zip(("source", "row_key", "entry", "content", "reason"), r)) for r in cur.fetchall()]


def test_bad_entries_are_moved_aside_and_the_rest_kept(db, ctx):
    clients = db.get("clients")
    clients[0]["client"] = "not-an-ip"
    clients[2]["client"] = "also bad"
    db.set("clients", clients)
    db.set("config.overrides", {"cache.max_ttl": "soon", "cache.min_ttl": 5})
    raw_set(db, "policies", "{not json")
    moved, reported = state_check.repair(db, ctx)
    assert len(moved) == 4 and reported == []
    assert [c["client"] for c in db.get("clients")] == ["192.168.2.0/24"]  # the good one stays
    assert db.get("config.overrides") == {"cache.min_ttl": 5}
    assert db.get("policies") is None
    rows = quarantined(db)
    by_entry = {(r["row_key"], r["entry"]): r for r in rows}
    assert json.loads(by_entry[("clients", "[0]")]["content"])["client"] == "not-an-ip"
    assert json.loads(by_entry[("clients", "[2]")]["content"])["client"] == "also bad"
    assert json.loads(by_entry[("config.overrides", '["cache.max_ttl"]')]["content"]) == "soon"
    whole = by_entry[("policies", None)]
    assert json.loads(whole["content"])["value"] == "{not json"  # the text exactly as it was
    assert "not valid JSON" in whole["reason"]
    assert state_check.check(db, ctx) == [] and state_check.load(db, ctx) == []
    assert Groups(db).groups_of("192.168.2.9") == {"kids"}


def test_a_zone_moved_aside_keeps_its_records(db, ctx):
    db.conn.execute("UPDATE zones SET primaries = '{x' WHERE name = 'zone.test'")
    moved, _ = state_check.repair(db, ctx)
    assert [p.table for p, _ in moved] == ["zones"]
    (row,) = quarantined(db)
    content = json.loads(row["content"])
    assert content["name"] == "zone.test" and {r["type"] for r in content["records"]} == {"SOA", "NS", "A"}
    assert ZoneStore(db).zone("zone.test") is None and ZoneStore(db).zone("local") is not None


def test_a_list_moved_aside_takes_its_rpz_rules_with_it(db, ctx):
    db.conn.execute("UPDATE lists SET groups = '{x' WHERE id = 1")
    moved, _ = state_check.repair(db, ctx)
    assert {(p.table, p.row) for p, _ in moved} == {("lists", "id=1"), ("settings", "rpz.rules.1")}
    assert db.get("rpz.rules.1") is None and state_check.check(db, ctx) == []


def test_only_reported_at_start(db, ctx):
    """Things a person may have caused elsewhere (the lists folder in burrow.toml, a zone
    edited into an incomplete one) stay in place and are only reported."""
    db.conn.execute("UPDATE lists SET source = '/etc/shadow' WHERE id = 2")
    db.conn.execute("DELETE FROM zone_records WHERE type = 'SOA'")
    moved, reported = state_check.repair(db, ctx)
    assert moved == []
    assert {(p.table, p.field) for p in reported} == {("lists", "source"), ("zones", "type")}


def test_a_loader_that_still_fails_gets_its_rows_moved(db, ctx, monkeypatch):
    """The last resort when the row checks miss something: the rows the failing loader reads."""
    real = state_check._loaders

    def loaders(c):
        def picky(d):
            if d.get("forwarding.rules"):
                raise RuntimeError("unexpected")
        return real(c) + [("picky", [("settings", "forwarding.rules")], picky)]

    monkeypatch.setattr(state_check, "_loaders", loaders)
    moved, reported = state_check.repair(db, ctx)
    assert [(p.table, p.row) for p, _ in moved] == [("settings", "forwarding.rules")]
    assert "cannot load the picky" in moved[0][0].message and reported == []
    assert db.get("forwarding.rules") is None


def test_accounts_need_an_enabled_admin(db, ctx):
    from burrow.auth.passwords import hash_password
    h = hash_password("Long-enough-pass-42")
    db.conn.execute("INSERT INTO auth_users (username, password_hash, role, disabled, created_at, "
                    "password_changed_at) VALUES ('ann', ?, 'admin', 1, 0, 0), ('vic', ?, 'viewer', 0, 0, 0)",
                    (h, h))
    (p,) = state_check.check(db, ctx, users=True)
    assert p.table == "auth_users" and "no enabled admin" in p.message and not p.movable
    db.conn.execute("DELETE FROM auth_users")
    (p,) = state_check.check(db, ctx, users=True)
    assert "no account at all" in p.message
    db.conn.execute("INSERT INTO auth_users (username, password_hash, role, created_at, password_changed_at) "
                    "VALUES ('ann', ?, 'admin', 0, 0), ('bad name!', ?, 'viewer', 0, 0), "
                    "('carl', '$scrypt$junk', 'viewer', 0, 0)", (h, h))
    assert {(p.row, p.field) for p in state_check.check(db, ctx, users=True)} == {
        ("id=2", "username"), ("id=3", "password_hash")}
    assert state_check.check(db, ctx) == []  # accounts only when asked (never moved at start)


def test_a_transferred_zone_keeps_every_type_its_primary_serves(db, ctx):
    """A slave zone holds what the primary sent (DNSKEY, RFC 3597 data): no API wrote it, and a
    start must not move it aside."""
    from burrow.zones.records import Record
    zones = ZoneStore(db)
    zones.create_zone("sec.test", "slave", ["192.0.2.1"])
    zones.store_transfer("sec.test", [
        Record("sec.test", "SOA", 3600, "ns.sec.test. host.sec.test. 7 3600 600 86400 300"),
        Record("sec.test", "NS", 3600, "ns.sec.test."),
        Record("sec.test", "DNSKEY", 3600,
               "257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="),
        Record("x.sec.test", "TYPE65534", 60, "\\# 2 ABCD"),
    ])
    assert state_check.check(db, ctx) == [] and state_check.load(db, ctx) == []
    db.conn.execute("UPDATE zone_records SET name = 'x.elsewhere.test' WHERE type = 'TYPE65534'")
    (p,) = state_check.check(db, ctx)
    assert (p.table, p.field, p.movable) == ("zone_records", "name", True)
