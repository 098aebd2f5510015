"""Pi-hole v6 Teleporter archives: reading (hostile input included) and writing."""

from __future__ import annotations

import io
import sqlite3
import tomllib
import zipfile

import pytest

from burrow.filtering.groups import Groups
from burrow.filtering.sources import ListStore
from burrow.filtering.userlists import UserList
from burrow.forwarding import ForwardRules
from burrow.migrate import plan as planner
from burrow.migrate import teleporter
from burrow.migrate.model import MigrationError
from burrow.runtime_config import load_overrides
from burrow.zones.store import ZoneStore
from tests.support.teleporter import gravity_schema, pihole_import, teleporter_zip


def test_reads_what_pihole_writes():
    setup = teleporter.read_teleporter(teleporter_zip())
    assert setup.source == "pihole" and setup.version == "1"
    groups = {g.name: g for g in setup.groups}
    assert groups["Default"].is_default and not groups["Old Stuff"].enabled
    lists = {fl.url: fl for fl in setup.lists}
    assert lists["https://lists.example/ads.txt"].groups is None  # every enabled group
    assert lists["https://lists.example/kids.txt"].groups == ["Kids Devices"]
    assert lists["https://lists.example/kids.txt"].enabled is False
    assert lists["https://lists.example/allow.txt"].kind == "allow"
    entries = {e.value: e for e in setup.entries}
    assert entries["ads.example.com"].action == "deny" and entries["ads.example.com"].syntax == "exact"
    assert entries["good.example.org"].groups == ["Kids Devices"]
    assert entries["^ads[\\d]+\\."].syntax == "regex"  # POSIX class translated
    assert entries["off.example.com"].enabled is False
    assert entries["tracker.example"].syntax == "exact"  # Pi-hole's wildcard: the name and below
    assert entries["*.tracker.example"].syntax == "wildcard"
    assert entries["cdn\\.example\\.net$"].action == "allow"
    unmapped = {u.what: u.why for u in setup.unmapped}
    assert "querytype" in unmapped["video;querytype=AAAA"]
    assert "upstream docker-resolver" in unmapped
    assert "log-facility=/tmp/x" in unmapped
    assert "etc/hosts" in unmapped
    clients = {c.ids[0]: c for c in setup.clients}
    assert clients["192.168.1.20"].groups == ["Kids Devices"]
    records = {(r.name, r.type, r.value) for r in setup.records}
    assert ("nas.lan", "A", "192.168.1.5") in records and ("nas", "A", "192.168.1.5") in records
    assert ("nas.lan", "AAAA", "fd00::5") in records
    assert ("www.media.lan", "CNAME", "nas.lan") in records
    settings = {s.key: s.value for s in setup.settings}
    assert settings["upstream_dns_servers"] == ["1.1.1.1:53", "9.9.9.9:5353"]
    assert settings["filtering.blocking_mode"] == "nxdomain"
    assert settings["rate_limit.rps"] == 20 and settings["rate_limit.burst"] == 1200
    forwards = {f.name: f for f in setup.forwards}
    assert forwards["Pi-hole lan"].network == "192.168.1.0/24"
    assert forwards["Pi-hole corp.example"].servers == ["10.1.1.1:5353"]


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, content in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            zf.writestr(info, content)
    return buf.getvalue()


@pytest.mark.parametrize("data, message", [
    (b"hello", "not a zip"),
    (b"\x1f\x8b\x08\x00rest", "Pi-hole v5"),
    (_zip({"README": b"x"}), "not a Pi-hole v6 Teleporter"),
    (_zip({"/etc/pihole/pihole.toml": b""}), "refused member name"),
    (_zip({"etc/../../pihole.toml": b""}), "refused member name"),
    (_zip({"etc\\pihole\\pihole.toml": b""}), "refused member name"),
    (_zip({"etc/pihole/gravity.db": b"not sqlite"}), "not a SQLite database"),
    (_zip({"etc/pihole/pihole.toml": b"[dns\nbroken"}), "not valid TOML"),
    (_zip({f"etc/dnsmasq.d/{i}.conf": b"" for i in range(teleporter.MAX_MEMBERS + 1)}), "more than"),
])
def test_refuses_what_is_not_a_teleporter(data, message):
    with pytest.raises(MigrationError) as err:
        teleporter.read_teleporter(data)
    assert message in str(err.value)


def test_refuses_a_zip_bomb_while_inflating(monkeypatch):
    monkeypatch.setattr(teleporter, "MAX_MEMBER_BYTES", 1024 * 1024)
    bomb = _zip({"etc/pihole/pihole.toml": b"#" * (8 * 1024 * 1024)})
    assert len(bomb) < 64 * 1024
    with pytest.raises(MigrationError) as err:
        teleporter.read_teleporter(bomb)
    assert err.value.status == 413 and "zip bomb" in str(err.value)


def test_refuses_a_gravity_db_that_is_not_pihole(tmp_path):
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE unrelated (x)")
    with pytest.raises(MigrationError) as err:
        teleporter.read_teleporter(teleporter_zip(gravity=conn.serialize()))
    assert "not Pi-hole's gravity database" in str(err.value)


def test_a_view_in_place_of_a_table_is_refused():
    conn = sqlite3.connect(":memory:")
    conn.executescript('CREATE TABLE "group" (id, enabled, name, description); CREATE TABLE domainlist '
                       "(id, type, domain, enabled, comment); CREATE VIEW adlist AS WITH RECURSIVE c(x) AS "
                       "(SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x AS id, x AS address FROM c")
    with pytest.raises(MigrationError):
        teleporter.read_teleporter(teleporter_zip(gravity=conn.serialize()))


def _export(db, ctx):
    return teleporter.export_teleporter(
        groups=Groups(db), allow_list=UserList(db, "filtering.whitelist"),
        deny_list=UserList(db, "filtering.denylist"), list_store=ListStore(db, ctx.local_dirs),
        zone_store=ZoneStore(db), forwarding=ForwardRules(db), config=load_overrides(ctx.config, db), now=1.7e9)


def test_import_then_export_then_pihole_imports_it(db, ctx, tmp_path):
    planner.run_import(teleporter.read_teleporter(teleporter_zip()), db, ctx, dry_run=False)
    UserList(db, "filtering.denylist").add("*.wild.example")
    out = _export(db, ctx)
    assert out.filename == "pi-hole_burrow_teleporter_2023-11-14_22-13-20.zip"
    with zipfile.ZipFile(io.BytesIO(out.data)) as zf:
        assert sorted(zf.namelist()) == ["etc/pihole/gravity.db", "etc/pihole/pihole.toml"]
        toml = tomllib.loads(zf.read("etc/pihole/pihole.toml").decode())
    assert toml["dns"]["upstreams"] == ["1.1.1.1", "9.9.9.9#5353"]
    assert "192.168.1.5 nas.lan" in toml["dns"]["hosts"] and "fd00::5 nas.lan" in toml["dns"]["hosts"]
    assert any(c.startswith("files.lan,nas.lan") for c in toml["dns"]["cnameRecords"])
    assert toml["dns"]["blocking"]["mode"] == "NXDOMAIN"
    assert toml["dns"]["rateLimit"] == {"count": 1200, "interval": 60}
    assert "server=/corp.example/10.1.1.1#5353" in toml["misc"]["dnsmasq_lines"]

    live = tmp_path / "gravity.db"  # a Pi-hole's own database, with its own schema
    conn = sqlite3.connect(live)
    gravity_schema(conn)
    conn.commit()
    conn.close()
    pihole_import(out.data, str(live))
    conn = sqlite3.connect(live)
    groups = dict(conn.execute('SELECT name, id FROM "group"'))
    assert groups["Default"] == 0 and "kids-devices" in groups
    assert dict(conn.execute("SELECT address, type FROM adlist"))["https://lists.example/allow.txt"] == 1
    domains = {d: t for d, t in conn.execute("SELECT domain, type FROM domainlist")}
    assert domains["ads.example.com"] == 1 and domains["good.example.org"] == 0
    assert domains["\\.wild\\.example$"] == 3
    kids = {d for (d,) in conn.execute(
        "SELECT domain FROM domainlist JOIN domainlist_by_group ON domainlist_id = domainlist.id "
        "WHERE group_id = ?", (groups["kids-devices"],))}
    assert "good.example.org" in kids
    clients = dict(conn.execute("SELECT ip, comment FROM client"))
    assert clients == {"192.168.1.20": "tablet"}
    conn.close()

    # and Burrow reads back what it wrote: importing it changes nothing
    again = planner.run_import(teleporter.read_teleporter(out.data), db, ctx, dry_run=True)
    changed = [s for s in again.steps if s.action in ("create", "change")]
    assert all(s.area == "forward" for s in changed), changed


def test_export_keeps_pihole_unique_columns_unique(db, ctx, tmp_path):
    lists = ListStore(db, ctx.local_dirs)
    lists.create("one", "https://lists.example/same.txt")
    lists.create("two", "https://lists.example/same.txt")
    deny = UserList(db, "filtering.denylist")
    deny.add("*.dup.example")
    deny.add("\\.dup\\.example$")  # the regex the wildcard is written as
    out = _export(db, ctx)
    assert any("same source" in why for why in out.left_out)
    live = tmp_path / "gravity.db"
    conn = sqlite3.connect(live)
    gravity_schema(conn)
    conn.commit()
    conn.close()
    pihole_import(out.data, str(live))
    conn = sqlite3.connect(live)
    assert conn.execute("SELECT COUNT(*) FROM adlist").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM domainlist").fetchone()[0] == 1
    conn.close()
