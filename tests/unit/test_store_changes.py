"""Every store whose content shapes answers announces its own changes (burrow/changes.py):
once the change is committed, and after a reload (a restore replaced its rows). A refused
change announces nothing."""

from __future__ import annotations

import asyncio

import pytest

from burrow import config as config_mod
from burrow.changes import Change, Changes
from burrow.dns.stages.policy import PolicyStage
from burrow.filtering.groups import Groups
from burrow.filtering.manager import ListManager
from burrow.filtering.pause import BlockingPause
from burrow.filtering.rpz import HandZones
from burrow.filtering.sources import ListConflictError, ListStore
from burrow.filtering.userlists import UserList
from burrow.forwarding.rules import ForwardRuleError, ForwardRules
from burrow.lifecycle import Faults, Supervisor
from burrow.policy import PolicyError
from burrow.policy.store import PolicyStore
from burrow.runtime_config import LiveConfig
from burrow.zones.service import ZoneService
from burrow.zones.store import ZoneStore

RULE = {"trigger": "nx.example", "action": "nxdomain", "data": ""}


@pytest.fixture
def seen():
    return []


def test_the_announcer_tells_its_one_subscriber_and_nobody_before():
    changes, heard = Changes(), []
    changes.announce(Change.GROUPS)  # nothing answers yet: nobody to tell
    changes.subscribe(heard.append)
    changes.announce(Change.PAUSE)
    assert heard == [Change.PAUSE]


def test_allow_and_deny_lists(db, seen):
    allow = UserList(db, "filtering.whitelist", on_change=seen.append)
    allow.add("ads.example")
    assert seen == [Change.USER_LIST]
    with pytest.raises(KeyError):
        allow.add("ads.example")  # there already: nothing changed
    assert seen == [Change.USER_LIST]
    allow.remove("ads.example")
    allow.reload()
    assert seen == [Change.USER_LIST] * 3


def test_groups_and_clients(db, seen):
    groups = Groups(db, on_change=seen.append)
    groups.add_group("kids")
    client = groups.add_client("192.0.2.7", ["kids"])
    groups.update_client(client["id"], {"groups": ["default"]})
    groups.delete_client(client["id"])
    groups.delete_group("kids")
    groups.reload()
    assert seen == [Change.GROUPS] * 6


def test_the_list_store(db, tmp_path, seen):
    store = ListStore(db, [tmp_path], on_change=seen.append)
    row = store.create("ads", "https://lists.example/ads.txt")
    with pytest.raises(ListConflictError):
        store.create("ads", "https://lists.example/other.txt")
    store.update(row["id"], {"groups": ["kids"]})
    store.update(row["id"], {"enabled": False})
    store.record_result(row["id"], ok=True)  # a download's status is no change of answers
    store.delete(row["id"])
    assert seen == [Change.LISTS] * 4


def test_the_list_index_swap(db, tmp_path, seen):
    swapped = []
    manager = ListManager(ListStore(db, [tmp_path]), tmp_path / "cache", tmp_path / "index.bin",
                          on_swap=swapped.append, on_change=seen.append)
    index = object()
    asyncio.run(manager._swap(index))  # type: ignore[arg-type]
    assert swapped == [index] and seen == [Change.LIST_INDEX]  # the index is live before the announcement


def test_hand_made_rpz_zones(db, tmp_path, seen):
    zones = HandZones(db, str(tmp_path), on_change=seen.append)
    zones.save(3, "rpz.home", [{"id": 1, **RULE}])
    assert seen == [Change.RPZ]
    zones.sync([3])  # the file is as stored: nothing to do
    (tmp_path / "rpz-3.zone").unlink()
    zones.sync([3])  # rewritten from the stored rules (a restore, a power cut)
    zones.forget(3)
    assert seen == [Change.RPZ] * 3


def test_forwarding_rules(db, seen):
    rules = ForwardRules(db, on_change=seen.append)
    rules.add({"name": "corp", "domains": ["corp.test"], "upstreams": ["192.0.2.53"]})
    with pytest.raises(ForwardRuleError):
        rules.add({"name": "no matcher", "upstreams": ["192.0.2.53"]})
    rules.set_enabled(False)
    rules.remove("corp")
    rules.reload()
    assert seen == [Change.FORWARDING] * 4


def test_zones_and_local_records(db, seen):
    store = ZoneStore(db)
    zones = ZoneService(store, lambda data: None, seen.append, Supervisor(Faults()))
    zones.rebuild()
    store.add_local("nas.lan", "A", ips=["192.0.2.9"])
    zones.edited()
    zones.changed()  # a restore, the CLI's SIGHUP
    assert seen == [Change.ZONES] * 2


def test_pause(db, seen):
    pause = BlockingPause(db, on_change=seen.append)
    pause.pause(60)
    pause.resume()
    pause.reload()
    assert seen == [Change.PAUSE] * 3


def test_policies(db, seen):
    audit: list[dict] = []
    stage = PolicyStage()
    store = PolicyStore(db, stage, on_change=seen.append, audit=audit.append)
    rule = store.create({"name": "late", "logic": "Hour >= 22", "action": "BLOCK"}, actor="ada")
    assert seen == [Change.POLICIES] and stage.engine.rules == (rule,)
    with pytest.raises(PolicyError):
        store.create({"name": "bad", "logic": "Hour >= &&", "action": "BLOCK"}, actor="ada")
    assert seen == [Change.POLICIES]
    store.update(rule.id, {"name": "later", "logic": "Hour >= 23", "action": "BLOCK"}, actor="ada")
    store.delete(rule.id, actor="ada")
    assert db.get("policies") == [] and stage.engine.rules == ()
    db.set("policies", [{"id": 4, "name": "restored", "logic": "Hour >= 1", "action": "BLOCK"}])
    store.reload()
    assert [r.name for r in stage.engine.rules] == ["restored"]
    assert seen == [Change.POLICIES] * 4
    assert [e["type"] for e in audit] == ["policy.created", "policy.updated", "policy.deleted"]


class Reconfigured:
    """The part of the DNS core a settings change reconfigures."""

    def __init__(self):
        self.configured = 0
        self.cache_stage = self

    def configure(self, cfg, upstreams_changed=False):
        self.configured += 1

    def purge(self):
        return 0


def test_runtime_settings(db, seen):
    base = config_mod.load(None, environ={})
    live = LiveConfig(base, base, db, Reconfigured(), on_change=seen.append)  # type: ignore[arg-type]
    live.update("cache", {"cache.max_ttl": base["cache.max_ttl"] + 60})
    assert seen == [Change.CONFIG]
    live.update("cache", {"cache.max_ttl": base["cache.max_ttl"] + 60})  # the value in force: no change
    assert seen == [Change.CONFIG]
    db.set("config.overrides", {})  # a restore took the override away
    live.reload()
    assert seen == [Change.CONFIG] * 2 and live["cache.max_ttl"] == base["cache.max_ttl"]
