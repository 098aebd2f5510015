"""The import planner and applier (burrow/migrate/plan.py) on a real settings database."""

from __future__ import annotations

import pytest

from burrow import runtime_config
from burrow.filtering.groups import Groups
from burrow.filtering.sources import ListStore
from burrow.filtering.userlists import UserList
from burrow.forwarding import ForwardRules
from burrow.migrate import plan as planner
from burrow.migrate.model import (
    Client, DomainEntry, FilterList, ForeignSetup, Forward, Group, LocalRecord, MigrationError, Setting,
    Unmapped,
)
from burrow.zones.store import ZoneStore


def setup() -> ForeignSetup:
    return ForeignSetup(
        source="pihole",
        groups=[Group("Default", is_default=True, origin="group 0"),
                Group("Kids Devices", "the children", origin="group 1"),
                Group("Old", enabled=False, origin="group 2")],
        clients=[Client(["192.168.1.20"], "tablet", ["Kids Devices"], "client 1"),
                 Client(["aa:bb:cc:dd:ee:ff"], "tv", ["Default"], "client 2"),
                 Client(["10.0.0.0/24"], "lab", ["Old"], "client 3")],
        lists=[FilterList("https://lists.example/ads.txt", "Ads", origin="adlist 1"),
               FilterList("https://lists.example/kids.txt", "", "block", False, ["Kids Devices"], "adlist 2"),
               FilterList("https://lists.example/allow.txt", "Allowed", "allow", origin="adlist 3")],
        entries=[DomainEntry("ads.example.com", "deny", origin="domain 1"),
                 DomainEntry("good.example.org", "allow", groups=["Kids Devices"], origin="domain 2"),
                 DomainEntry("ad.*tracker", "deny", "regex", origin="domain 3"),
                 DomainEntry("off.example.com", "deny", enabled=False, origin="domain 4"),
                 DomainEntry("||track.example.net^", "deny", "adblock", origin="rule 1"),
                 DomainEntry("example.org##.banner", "deny", "adblock", origin="rule 2")],
        records=[LocalRecord("nas.lan", "A", "192.168.1.5", origin="hosts 1"),
                 LocalRecord("nas.lan", "A", "192.168.1.6", origin="hosts 1"),
                 LocalRecord("files.lan", "CNAME", "nas.lan", origin="cname 1")],
        forwards=[Forward("Router", ["lan"], ["192.168.1.1"], "192.168.1.0/24", origin="revServers 1")],
        settings=[Setting("filtering.blocking_mode", "nxdomain", origin="dns.blocking.mode"),
                  Setting("upstream_dns_servers", ["1.1.1.1:53", "9.9.9.9:5353"], origin="dns.upstreams"),
                  Setting("rate_limit.rps", -3, origin="dns.rateLimit")],
        unmapped=[Unmapped("DHCP", "Burrow serves no DHCP", "dhcp")])


def by_key(plan):
    return {(s.area, s.key): s for s in plan.steps}


def test_dry_run_changes_nothing_and_says_why(db, ctx):
    before = planner._dump(db.conn)
    plan = planner.run_import(setup(), db, ctx, dry_run=True)
    assert planner._dump(db.conn) == before
    steps = by_key(plan)
    assert steps[("group", "kids-devices")].action == "create"
    assert "kids-devices" in steps[("group", "kids-devices")].why
    assert steps[("group", "Old")].action == "skipped"
    assert steps[("client", "aa:bb:cc:dd:ee:ff")].action == "skipped"
    assert steps[("client", "10.0.0.0/24")].action == "skipped"
    assert steps[("deny", "off.example.com")].action == "skipped"
    assert steps[("deny", "(?:ad.*tracker)")].action == "create"
    assert steps[("deny", "track.example.net")].action == "create"
    assert steps[("deny", "*.track.example.net")].action == "create"
    assert steps[("deny", "example.org##.banner")].action == "skipped"
    assert steps[("setting", "rate_limit.rps")].action == "skipped"
    assert steps[("other", "DHCP")].why == "Burrow serves no DHCP"
    assert plan.applied is False


def test_apply_lands_everything_and_twice_changes_nothing(db, ctx):
    plan = planner.run_import(setup(), db, ctx, dry_run=False)
    assert plan.applied and plan.counts()["create"] >= 10
    groups = Groups(db)
    assert [c["client"] for c in groups.clients] == ["192.168.1.20"]
    assert groups.clients[0]["groups"] == ["kids-devices"]
    lists = {row["source"]: row for row in ListStore(db, ctx.local_dirs).list()}
    assert lists["https://lists.example/kids.txt"]["groups"] == ["kids-devices"]
    assert lists["https://lists.example/kids.txt"]["enabled"] is False
    assert lists["https://lists.example/allow.txt"]["kind"] == "allow"
    deny = UserList(db, "filtering.denylist").summary()
    assert "ads.example.com" in deny["exact"] and "(?:ad.*tracker)" in deny["regex"]
    allow = UserList(db, "filtering.whitelist").summary()
    assert allow["groups"] == {"good.example.org": ["kids-devices"]}
    zones = ZoneStore(db)
    assert zones.local_entry("nas.lan", "A")["ips"] == ["192.168.1.5", "192.168.1.6"]
    assert zones.local_entry("files.lan", "CNAME")["target"].rstrip(".") == "nas.lan"
    rule = ForwardRules(db).by_name("Router")
    assert "lan" in rule.domains and "1.168.192.in-addr.arpa" in rule.domains
    stored = runtime_config.stored_overrides(db)
    assert stored["filtering.blocking_mode"] == "nxdomain"
    assert stored["upstream_dns_servers"] == ["1.1.1.1:53", "9.9.9.9:5353"]

    before = planner._dump(db.conn)
    again = planner.run_import(setup(), db, ctx, dry_run=False)
    assert planner._dump(db.conn) == before
    assert again.counts()["create"] == 0 and again.counts()["change"] == 0
    assert again.applied and not again.changes


def test_a_change_is_a_change(db, ctx):
    planner.run_import(setup(), db, ctx, dry_run=False)
    s = setup()
    s.lists[1].enabled = True
    s.records.append(LocalRecord("nas.lan", "A", "192.168.1.7"))
    plan = planner.run_import(s, db, ctx, dry_run=False)
    changed = {(st.area, st.key) for st in plan.steps if st.action == "change"}
    assert ("record", "nas.lan A") in changed
    assert any(area == "list" for area, _ in changed)
    assert ZoneStore(db).local_entry("nas.lan", "A")["ips"][-1] == "192.168.1.7"


def test_a_row_changed_meanwhile_refuses_the_whole_import(db, ctx):
    prepared = planner.prepare(setup(), db.path, ctx)
    db.set("filtering.denylist", ["other.example"])  # the service wrote while we planned
    before = planner._dump(db.conn)
    with pytest.raises(MigrationError) as err:
        planner.commit(prepared, db)
    assert err.value.status == 409
    assert planner._dump(db.conn) == before


def test_group_slug():
    assert planner.group_slug("Kids Devices") == "kids-devices"
    assert planner.group_slug("  ###  ") == "group"
    assert planner.group_slug("IoT_2") == "iot_2"


def test_many_entries_are_one_write_and_repeats_are_noted(db, ctx):
    from burrow.filtering.userlists import MAX_ENTRIES
    entries = [DomainEntry(f"host{i}.bulk.example", "deny", origin=f"rule {i}") for i in range(MAX_ENTRIES + 5)]
    entries.append(DomainEntry("host1.bulk.example", "deny", origin="again"))
    entries.append(DomainEntry("host1.bulk.example", "allow", origin="allow too"))
    plan = planner.run_import(ForeignSetup("adguard", entries=entries), db, ctx, dry_run=False)
    steps = by_key(plan)
    assert [s.action for s in plan.steps if s.origin == "rule 1"] == ["create"]
    assert [s.why for s in plan.steps if s.origin == "again"] == ["in the file a second time"]
    assert steps[("allow", "host1.bulk.example")].action == "create"
    full = [s for s in plan.steps if s.action == "skipped"]
    assert len(full) == 5 and "at most" in full[0].why
    assert UserList(db, "filtering.denylist").counts()["total"] == MAX_ENTRIES


def test_add_many_is_all_or_nothing(db):
    deny = UserList(db, "filtering.denylist")
    deny.add("one.example")
    assert deny.add_many([("two.example", None), ("*.three.example", ["kids"])]) == ["two.example", "*.three.example"]
    with pytest.raises(ValueError):
        deny.add_many([("four.example", None), ("bad name!.example", None)])
    with pytest.raises(KeyError):
        deny.add_many([("five.example", None), ("one.example", None)])
    assert deny.counts()["total"] == 3
