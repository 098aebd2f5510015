"""The store methods the Pi-hole face's PATCH /api/config uses: ZoneStore.replace_local and
ForwardRules.replace_where each validate everything before one write, and a refusal changes
nothing."""

from __future__ import annotations

import pytest

from burrow.forwarding.rules import DuplicateRule, ForwardRuleError, ForwardRules
from burrow.zones.store import ZoneStore
from burrow.zones.validate import RecordError


def entries(store: ZoneStore) -> list[tuple]:
    return [(e["domain"], e["type"], tuple(e["ips"]), e["target"], e["ttl"]) for e in store.local_entries()]


def test_replace_local_makes_the_types_exactly_so(db):
    store = ZoneStore(db)
    store.add_local("keep.lan", "CNAME", target="nas.lan")
    store.add_local("old.lan", "A", ips=["192.168.1.2"])
    assert store.replace_local({"A", "AAAA"}, [("nas.lan", "A", "192.168.1.5", None),
                                               ("nas.lan", "AAAA", "fd00::5", 600)]) is True
    assert entries(store) == [("keep.lan.", "CNAME", (), "nas.lan.", 300),
                              ("nas.lan.", "A", ("192.168.1.5",), "", 300),
                              ("nas.lan.", "AAAA", ("fd00::5",), "", 600)]
    assert store.replace_local({"A", "AAAA"}, [("nas.lan", "A", "192.168.1.5", None),
                                               ("nas.lan", "AAAA", "fd00::5", 600)]) is False  # the same: no write


@pytest.mark.parametrize("records", [
    [("ok.lan", "A", "192.168.1.9", None), ("bad..lan", "A", "192.168.1.9", None)],
    [("ok.lan", "A", "not an address", None)],
    [("ok.lan", "CNAME", "x.lan", None)],  # a type not being replaced
])
def test_replace_local_refuses_and_changes_nothing(db, records):
    store = ZoneStore(db)
    store.add_local("old.lan", "A", ips=["192.168.1.2"])
    before = entries(store)
    with pytest.raises(RecordError):
        store.replace_local({"A"}, records)
    assert entries(store) == before


def test_replace_where_keeps_the_rules_it_does_not_own(db):
    rules = ForwardRules(db)
    rules.add({"name": "office", "domains": ["corp.example"], "upstreams": ["10.0.0.53"]})
    owned = lambda r: r.name.startswith("revServer ")  # noqa: E731
    rules.replace_where(owned, [{"name": "revServer 192.168.1.0/24", "domains": ["lan", "1.168.192.in-addr.arpa"],
                                 "upstreams": ["192.168.1.1"]}])
    assert sorted(r.name for r in rules.list()) == ["office", "revServer 192.168.1.0/24"]
    rules.replace_where(owned, [])
    assert [r.name for r in rules.list()] == ["office"]
    with pytest.raises(DuplicateRule):
        rules.replace_where(owned, [{"name": "office", "domains": ["x.example"], "upstreams": ["10.0.0.1"]}])
    with pytest.raises(ForwardRuleError):
        rules.replace_where(owned, [{"name": "revServer a", "domains": ["a.lan"], "upstreams": ["10.0.0.1"]},
                                    {"name": "revServer b", "domains": ["b.lan"], "upstreams": []}])
    assert [r.name for r in rules.list()] == ["office"]
    assert ForwardRules(db).list()[0].name == "office"  # what was stored
