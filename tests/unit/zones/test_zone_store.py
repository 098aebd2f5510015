"""The zone store: zones and records in the settings DB, validated per zone, serial bumped on
every change, zone files imported all-or-nothing and exported so named-checkzone accepts them,
and the seed 003 local records as one implicit zone."""

from __future__ import annotations

import datetime
import shutil
import subprocess

import pytest

from burrow.storage.settings import SettingsDB
from burrow.zones.records import Record
from burrow.zones.store import LOCAL_NAME, StoreError, ZoneStore
from burrow.zones.validate import RecordError
from burrow.zones.zonefile import ZoneFileError, parse_zone

NAMED_CHECKZONE = shutil.which("named-checkzone") or "/usr/bin/named-checkzone"
TODAY = datetime.date(2024, 5, 6)


@pytest.fixture
def store(db):
    return ZoneStore(db, today=lambda: TODAY)


def serial(store, zone="lab.test") -> int:
    soa = [r for r in store.zone_records(zone) if r.type == "SOA"][0]
    assert int(soa.value.split()[2]) == store.zone(zone)["serial"]
    return int(soa.value.split()[2])


def field_of(exc_info) -> str:
    return exc_info.value.field


def named_checkzone(origin: str, text: str, tmp_path) -> subprocess.CompletedProcess:
    if not shutil.which(NAMED_CHECKZONE):
        pytest.skip("named-checkzone (Debian bind9utils) is not installed")
    path = tmp_path / "zone.db"
    path.write_text(text)
    strict = ["-k", "fail", "-n", "fail", "-m", "fail", "-M", "fail", "-S", "fail", "-r", "fail"]
    return subprocess.run([NAMED_CHECKZONE, "-i", "local", *strict, origin, str(path)], capture_output=True,
                          text=True, timeout=30)


# ---- zones ------------------------------------------------------------------------------------

def test_the_local_zone_always_exists(store):
    zones = store.zones()
    assert [(z["name"], z["type"]) for z in zones] == [(LOCAL_NAME, "local")]
    assert store.zone("local")["id"] == store.local_id == store.zone(store.local_id)["id"]


def test_new_master_zone_has_default_soa_and_ns(store, tmp_path):
    zone = store.create_zone("Lab.Test.")
    assert zone["name"] == "lab.test" and zone["type"] == "master" and zone["record_count"] == 2
    assert zone["serial"] == 2024050600
    recs = {r.type: r for r in store.zone_records("lab.test")}
    assert recs["SOA"].value == "localhost. hostmaster.lab.test. 2024050600 3600 900 604800 300"
    assert recs["NS"].value == "localhost."
    done = named_checkzone("lab.test", store.export_zone("lab.test"), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_reverse_zone_default_exports_cleanly(store, tmp_path):
    store.create_zone("1.168.192.in-addr.arpa")
    store.add_record("1.168.192.in-addr.arpa", "20", "PTR", "nas.home.lan.")
    text = store.export_zone("1.168.192.in-addr.arpa")
    done = named_checkzone("1.168.192.in-addr.arpa", text, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zone_refs_by_id_and_name(store):
    zone = store.create_zone("lab.test")
    assert store.zone(zone["id"])["name"] == "lab.test"
    assert store.zone(str(zone["id"]))["name"] == "lab.test"
    assert store.zone("LAB.test.")["id"] == zone["id"]
    assert store.zone("nope.test") is None and store.zone("bad..name") is None and store.zone(True) is None
    # ids SQLite cannot hold name no zone (found by the API fuzz: they raised OverflowError → 500)
    assert store.zone(2 ** 63) is None and store.zone(-(2 ** 63) - 1) is None
    with pytest.raises(StoreError) as e:
        store.add_record(2 ** 63, "www", "A", "192.0.2.1")
    assert e.value.status == 404
    assert store.record(2 ** 63) is None


def test_zone_creation_errors(store):
    store.create_zone("lab.test")
    with pytest.raises(StoreError) as e:
        store.create_zone("lab.test.")
    assert e.value.status == 409 and e.value.field == "name"
    with pytest.raises(RecordError) as e:
        store.create_zone("bad_label!.test")
    assert e.value.field == "name"
    with pytest.raises(StoreError) as e:
        store.create_zone("local")
    assert e.value.field == "name"
    with pytest.raises(StoreError) as e:
        store.create_zone("x.test", "slave")
    assert e.value.field == "primaries"
    with pytest.raises(StoreError) as e:
        store.create_zone("x.test", "slave", ["192.0.2.1", "not-an-ip"])
    assert e.value.field == "primaries[1]"
    with pytest.raises(StoreError) as e:
        store.create_zone("x.test", "master", ["192.0.2.1"])
    assert e.value.field == "primaries"
    with pytest.raises(StoreError) as e:
        store.create_zone("x.test", "local")
    assert e.value.field == "type"


def test_slave_zone_primaries_normalised(store):
    zone = store.create_zone("sec.test", "slave", ["192.0.2.1", "192.0.2.2:5353", "[2001:db8::1]:53"])
    assert zone["primaries"] == ["192.0.2.1", "192.0.2.2:5353", "[2001:db8::1]"]
    assert zone["record_count"] == 0


def test_delete_zone_cascades_and_local_zone_stays(store, db):
    store.create_zone("lab.test")
    store.add_record("lab.test", "www", "A", "192.0.2.10")
    gone = store.delete_zone("lab.test")
    assert gone["name"] == "lab.test"
    assert db.conn.execute("SELECT COUNT(*) FROM zone_records").fetchone()[0] == 0
    with pytest.raises(StoreError) as e:
        store.delete_zone("local")
    assert e.value.status == 400
    with pytest.raises(StoreError) as e:
        store.delete_zone("lab.test")
    assert e.value.status == 404


def test_data_survives_reopening(tmp_path):
    db = SettingsDB(tmp_path / "s.db")
    store = ZoneStore(db)
    store.create_zone("lab.test")
    store.add_record("lab.test", "www", "A", "192.0.2.10")
    store.add_local("nas.lan", "A", ["192.168.1.5"])
    db.close()
    db = SettingsDB(tmp_path / "s.db")
    again = ZoneStore(db)
    assert again.local_id == store.local_id
    assert [r["name"] for r in again.records("lab.test") if r["type"] == "A"] == ["www.lab.test"]
    assert again.local_entries()[0]["ips"] == ["192.168.1.5"]
    db.close()


# ---- records in master zones ------------------------------------------------------------------

def test_records_of_every_type(store, tmp_path):
    store.create_zone("lab.test")
    store.add_record("lab.test", "www", "A", "192.0.2.10")
    store.add_record("lab.test", "www.lab.test", "AAAA", "2001:db8::10")
    store.add_record("lab.test", "alias", "CNAME", "www")
    store.add_record("lab.test", "@", "MX", "mail", priority=10)
    store.add_record("lab.test", "mail", "A", "192.0.2.25")
    store.add_record("lab.test", "@", "TXT", "v=spf1 -all")
    store.add_record("lab.test", "_sip._tcp", "SRV", "0 5060 www", priority=10)
    store.add_record("lab.test", "ptr", "PTR", "www.lab.test.")
    store.add_record("lab.test", "@", "CAA", '0 issue "letsencrypt.org"')
    store.add_record("lab.test", "ns.sub", "A", "192.0.2.53")  # glue first: named needs it
    store.add_record("lab.test", "sub", "NS", "ns.sub")
    store.add_record("lab.test", "*.apps", "A", "192.0.2.80")
    rows = store.records("lab.test")
    assert {r["type"] for r in rows} == {"SOA", "NS", "A", "AAAA", "CNAME", "MX", "TXT", "SRV", "PTR", "CAA"}
    mx = next(r for r in rows if r["type"] == "MX")
    assert mx["value"] == "10 mail.lab.test." and mx["priority"] == 10 and mx["name"] == "lab.test"
    srv = next(r for r in rows if r["type"] == "SRV")
    assert srv["value"] == "10 0 5060 www.lab.test." and srv["priority"] == 10
    assert next(r for r in rows if r["type"] == "TXT")["value"] == '"v=spf1 -all"'
    done = named_checkzone("lab.test", store.export_zone("lab.test"), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_serial_bumped_on_every_change(store):
    store.create_zone("lab.test")
    assert serial(store) == 2024050600
    rec = store.add_record("lab.test", "www", "A", "192.0.2.10")
    assert serial(store) == 2024050601
    store.update_record(rec["id"], {"value": "192.0.2.11"})
    assert serial(store) == 2024050602
    store.delete_record(rec["id"])
    assert serial(store) == 2024050603
    store.today = lambda: datetime.date(2024, 5, 7)
    store.add_record("lab.test", "www", "A", "192.0.2.12")
    assert serial(store) == 2024050700


def test_owner_may_raise_the_serial_through_the_soa(store):
    store.create_zone("lab.test")
    soa = next(r for r in store.records("lab.test") if r["type"] == "SOA")
    store.update_record(soa["id"], {"value": "localhost. hostmaster.lab.test. 2030010100 1h 15m 1w 5m"})
    assert serial(store) == 2030010100
    assert next(r for r in store.records("lab.test") if r["type"] == "SOA")["value"].endswith(
        "3600 900 604800 300")
    store.update_record(soa["id"], {"value": "localhost. hostmaster.lab.test. 1 1h 15m 1w 5m"})
    assert serial(store) == 2030010101  # going back is never allowed: the next serial instead


@pytest.mark.parametrize("args,field", [
    (("bad name!", "A", "192.0.2.1"), "name"),
    (("www", "A", "300.1.1.1"), "value"),
    (("www", "AAAA", "192.0.2.1"), "value"),
    (("www", "NAPTR", "x"), "type"),
    (("www.other.test.", "A", "192.0.2.1"), "name"),
    (("@", "MX", "mail"), "priority"),
    (("www", "TXT", "x" * 5000), "value"),
])
def test_record_validation_names_the_field(store, args, field):
    store.create_zone("lab.test")
    with pytest.raises(RecordError) as e:
        store.add_record("lab.test", *args)
    assert e.value.field == field


def test_bad_ttl_and_priority_fields(store):
    store.create_zone("lab.test")
    with pytest.raises(RecordError) as e:
        store.add_record("lab.test", "www", "A", "192.0.2.1", ttl=-5)
    assert e.value.field == "ttl"
    with pytest.raises(RecordError) as e:
        store.add_record("lab.test", "www", "A", "192.0.2.1", priority=10)
    assert e.value.field == "priority"


def test_cname_exclusivity(store):
    store.create_zone("lab.test")
    store.add_record("lab.test", "www", "A", "192.0.2.10")
    with pytest.raises(RecordError) as e:
        store.add_record("lab.test", "www", "CNAME", "other.example.")
    assert "CNAME" in str(e.value)
    store.add_record("lab.test", "alias", "CNAME", "www")
    with pytest.raises(RecordError):
        store.add_record("lab.test", "alias", "TXT", "hello")
    with pytest.raises(RecordError):
        store.add_record("lab.test", "alias", "CNAME", "other.example.")
    with pytest.raises(RecordError):
        store.add_record("lab.test", "@", "CNAME", "other.example.")


def test_zone_structure_is_kept(store):
    store.create_zone("lab.test")
    rows = store.records("lab.test")
    soa = next(r for r in rows if r["type"] == "SOA")
    ns = next(r for r in rows if r["type"] == "NS")
    with pytest.raises(RecordError):
        store.delete_record(soa["id"])
    with pytest.raises(RecordError):
        store.delete_record(ns["id"])
    with pytest.raises(StoreError) as e:
        store.add_record("lab.test", "@", "SOA", "a. b. 1 1 1 1 1")
    assert e.value.field == "type"
    with pytest.raises(StoreError):
        store.update_record(ns["id"], {"type": "SOA", "value": "a. b. 1 1 1 1 1"})
    with pytest.raises(RecordError) as e:  # an in-zone NS needs its address first (named refuses it)
        store.add_record("lab.test", "@", "NS", "ns1")
    assert e.value.field == "value"
    store.add_record("lab.test", "ns1", "A", "192.0.2.53")
    store.add_record("lab.test", "@", "NS", "ns1")
    store.delete_record(ns["id"])  # another NS remains
    assert [r.value for r in store.zone_records("lab.test") if r.type == "NS"] == ["ns1.lab.test."]


def test_duplicates_conflict(store):
    store.create_zone("lab.test")
    store.add_record("lab.test", "www", "A", "192.0.2.10")
    with pytest.raises(StoreError) as e:
        store.add_record("lab.test", "www.lab.test.", "A", "192.0.2.10", ttl=60)
    assert e.value.status == 409


def test_update_record_keeps_what_is_not_given(store):
    store.create_zone("lab.test")
    mx = store.add_record("lab.test", "@", "MX", "mail.example.", priority=10, ttl=600)
    assert store.update_record(mx["id"], {"priority": 20})["value"] == "20 mail.example."
    out = store.update_record(mx["id"], {"value": "mx2.example."})
    assert out["value"] == "20 mx2.example." and out["ttl"] == 600
    out = store.update_record(mx["id"], {"value": "5 mx3.example.", "ttl": "1h"})
    assert out["value"] == "5 mx3.example." and out["ttl"] == 3600 and out["id"] == mx["id"]
    with pytest.raises(StoreError) as e:
        store.update_record(mx["id"], {"zone": "local"})
    assert e.value.field == "zone"
    with pytest.raises(StoreError) as e:
        store.update_record(99999, {"ttl": 5})
    assert e.value.status == 404


# ---- import and export ------------------------------------------------------------------------

ZONE_FILE = """\
$ORIGIN lab.test.
$TTL 1h
@   IN SOA ns1 hostmaster (
        2024010101 ; serial
        1d 2h 4w 5m )
    IN NS ns1
ns1 IN A 192.0.2.53
www 300 IN A 192.0.2.10
    IN AAAA 2001:db8::10
alias IN CNAME www ; in-zone alias
"""


def test_import_replaces_everything(store, tmp_path):
    store.create_zone("lab.test")
    old = store.add_record("lab.test", "old", "A", "192.0.2.99")
    result = store.import_zone("lab.test", ZONE_FILE)
    assert result["records"] == 6 and result["zone"]["serial"] == 2024050602  # ours is newer: bumped
    recs = store.zone_records("lab.test")
    assert Record("www.lab.test", "A", 300, "192.0.2.10") in recs
    assert not any(r.name == "old.lab.test" for r in recs) and store.record(old["id"]) is None
    assert [r.value for r in recs if r.type == "NS"] == ["ns1.lab.test."]
    done = named_checkzone("lab.test", store.export_zone("lab.test"), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    again = parse_zone(store.export_zone("lab.test"), "lab.test").records
    assert sorted(again) == sorted(recs)


def test_import_takes_a_newer_serial_from_the_file(store):
    store.create_zone("lab.test")
    store.import_zone("lab.test", ZONE_FILE.replace("2024010101", "2099010100"))
    assert serial(store) == 2099010100


def test_import_is_all_or_nothing_and_names_the_line(store):
    store.create_zone("lab.test")
    before = store.zone_records("lab.test")
    with pytest.raises(ZoneFileError) as e:
        store.import_zone("lab.test", ZONE_FILE + "bad IN A 999.1.1.1\n")
    assert e.value.line == 11
    with pytest.raises(RecordError):  # valid lines, invalid zone: CNAME beside other data
        store.import_zone("lab.test", ZONE_FILE + "alias IN TXT \"x\"\n")
    assert store.zone_records("lab.test") == before


def test_import_of_plain_host_lines_keeps_soa_and_ns(store):
    store.create_zone("lab.test")
    store.import_zone("lab.test", "nas 300 IN A 192.168.1.5\nprinter IN A 192.168.1.6\n")
    types = sorted(r.type for r in store.zone_records("lab.test"))
    assert types == ["A", "A", "NS", "SOA"] and serial(store) == 2024050601


def test_import_and_export_refused_where_they_make_no_sense(store):
    store.create_zone("sec.test", "slave", ["192.0.2.1"])
    with pytest.raises(StoreError):
        store.import_zone("local", "x 1 IN A 192.0.2.1\n")
    with pytest.raises(StoreError):
        store.import_zone("sec.test", "x 1 IN A 192.0.2.1\n")
    with pytest.raises(StoreError):
        store.export_zone("local")
    with pytest.raises(StoreError) as e:
        store.export_zone("sec.test")
    assert e.value.status == 409


# ---- slave zones ------------------------------------------------------------------------------

SLAVE_DATA = [Record("sec.test", "SOA", 3600, "ns.sec.test. h.sec.test. 7 3600 600 86400 60"),
              Record("sec.test", "NS", 3600, "ns.sec.test."),
              Record("ns.sec.test", "A", 3600, "192.0.2.53"),
              Record("www.sec.test", "A", 60, "192.0.2.80")]


def test_transfers_replace_slave_data_which_the_api_cannot_edit(store):
    store.create_zone("sec.test", "slave", ["192.0.2.1"])
    store.store_transfer("sec.test", SLAVE_DATA, at=1000.0)
    zone = store.zone("sec.test")
    assert zone["serial"] == 7 and zone["last_transfer"] == 1000.0 and zone["record_count"] == 4
    with pytest.raises(StoreError) as e:
        store.add_record("sec.test", "x", "A", "192.0.2.1")
    assert e.value.field == "zone"
    store.transfer_failed("sec.test", "refused")
    assert store.zone("sec.test")["last_error"] == "refused"
    store.transfer_checked("sec.test", at=2000.0)
    assert store.zone("sec.test")["last_error"] is None and store.zone("sec.test")["last_transfer"] == 2000.0
    with pytest.raises(StoreError):
        store.store_transfer("local", SLAVE_DATA)


def test_slave_promoted_to_master_becomes_editable(store):
    store.create_zone("sec.test", "slave", ["192.0.2.1"])
    store.store_transfer("sec.test", SLAVE_DATA)
    zone = store.update_zone("sec.test", {"type": "master"})
    assert zone["type"] == "master" and zone["primaries"] == [] and zone["serial"] == 8
    store.add_record("sec.test", "new", "A", "192.0.2.9")
    assert serial(store, "sec.test") == 9
    with pytest.raises(StoreError) as e:
        store.update_zone("sec.test", {"name": "other.test"})
    assert e.value.field == "name"
    zone = store.update_zone("sec.test", {"type": "slave", "primaries": ["192.0.2.7"]})
    assert zone["type"] == "slave" and zone["primaries"] == ["192.0.2.7"]
    with pytest.raises(StoreError):
        store.update_zone("local", {"type": "master"})


# ---- local records (seed 003) -----------------------------------------------------------------

def test_local_records_seed_shape_and_ids(store):
    store.add_local("router.local", "A", ["192.168.1.1"])
    store.add_local("mail.local.", "AAAA", ["2001:db8::1"], ttl=600)
    store.add_local("www.local", "CNAME", target="router.local")
    assert store.local_entries() == [
        {"id": "mail.local.:AAAA:0", "domain": "mail.local.", "type": "AAAA", "ips": ["2001:db8::1"],
         "target": "", "ttl": 600, "wildcard": False},
        {"id": "router.local.:A:0", "domain": "router.local.", "type": "A", "ips": ["192.168.1.1"],
         "target": "", "ttl": 300, "wildcard": False},
        {"id": "www.local.:CNAME:0", "domain": "www.local.", "type": "CNAME", "ips": [],
         "target": "router.local.", "ttl": 300, "wildcard": False},
    ]


def test_local_records_are_records_of_the_local_zone(store):
    store.add_local("web.local", "A", ["192.168.1.10", "192.168.1.11"])
    rows = store.records("local")
    assert [(r["name"], r["value"], r["zone"]) for r in rows] == [
        ("web.local", "192.168.1.10", "local"), ("web.local", "192.168.1.11", "local")]
    store.add_record("local", "web.local", "A", "192.168.1.12")
    assert store.local_entries()[0]["ips"] == ["192.168.1.10", "192.168.1.11", "192.168.1.12"]
    with pytest.raises(RecordError) as e:
        store.add_record("local", "web.local", "MX", "10 mx.example.")
    assert e.value.field == "type"
    assert store.zone("local")["serial"] == 2


def test_local_addresses_join_the_set_and_take_the_new_ttl(store):
    store.add_local("web.local", "A", ["192.168.1.10"])
    entry = store.add_local("web.local", "A", ["192.168.1.11", "192.168.1.10"], ttl=60)
    assert entry["ips"] == ["192.168.1.10", "192.168.1.11"] and entry["ttl"] == 60
    assert {r.ttl for r in store.zone_records("local")} == {60}


def test_local_wildcards(store):
    a = store.add_local("home.lan", "A", ["192.168.1.2"], wildcard=True)
    b = store.add_local("*.apps.lan", "A", ["192.168.1.3"])
    assert a["domain"] == "*.home.lan." and a["wildcard"] and a["id"] == "*.home.lan.:A:0"
    assert b["wildcard"]


@pytest.mark.parametrize("kw,field", [
    ({"domain": "", "type": "A", "ips": ["192.168.1.1"]}, "domain"),
    ({"domain": "bad name", "type": "A", "ips": ["192.168.1.1"]}, "domain"),
    ({"domain": "*", "type": "A", "ips": ["192.168.1.1"]}, "domain"),
    ({"domain": "x.lan", "type": "MX", "ips": ["192.168.1.1"]}, "type"),
    ({"domain": "x.lan", "type": "A"}, "ips"),
    ({"domain": "x.lan", "type": "A", "ips": []}, "ips"),
    ({"domain": "x.lan", "type": "A", "ips": ["192.168.1.1", "nope"]}, "ips[1]"),
    ({"domain": "x.lan", "type": "A", "ips": ["2001:db8::1"]}, "ips[0]"),
    ({"domain": "x.lan", "type": "AAAA", "ips": ["192.168.1.1"]}, "ips[0]"),
    ({"domain": "x.lan", "type": "CNAME"}, "target"),
    ({"domain": "x.lan", "type": "CNAME", "target": "bad target!"}, "target"),
    ({"domain": "x.lan", "type": "CNAME", "target": "y.lan", "ips": ["192.168.1.1"]}, "ips"),
    ({"domain": "x.lan", "type": "A", "ips": ["192.168.1.1"], "ttl": 0}, "ttl"),
    ({"domain": "x.lan", "type": "A", "ips": ["192.168.1.1"], "ttl": -1}, "ttl"),
])
def test_local_validation_names_the_seed_field(store, kw, field):
    with pytest.raises(RecordError) as e:
        store.add_local(**kw)
    assert e.value.field == field


def test_local_cname_exclusivity(store):
    store.add_local("nas.lan", "A", ["192.168.1.5"])
    with pytest.raises(RecordError):
        store.add_local("nas.lan", "CNAME", target="other.lan")
    store.add_local("alias.lan", "CNAME", target="nas.lan")
    store.add_local("alias.lan", "CNAME", target="nas.lan.", ttl=60)  # same target: only the TTL changes
    with pytest.raises(RecordError) as e:
        store.add_local("alias.lan", "CNAME", target="other.lan")
    assert e.value.field == "domain"
    with pytest.raises(RecordError):
        store.add_local("alias.lan", "A", ["192.168.1.6"])


def test_delete_local_by_seed_id(store):
    store.add_local("nas.local", "A", ["192.168.1.100", "192.168.1.101"])
    store.add_local("www.local", "CNAME", target="nas.local")
    removed = store.delete_local("nas.local.:A:0")
    assert removed["ips"] == ["192.168.1.100", "192.168.1.101"]
    assert [e["id"] for e in store.local_entries()] == ["www.local.:CNAME:0"]
    for bad in ("nas.local", "nas.local.:A", "nas.local.:MX:0", ":A:0", "nas.local.:A:x"):
        with pytest.raises(StoreError) as e:
            store.delete_local(bad)
        assert e.value.status == 400, bad
    for absent in ("nas.local.:A:0", "www.local.:CNAME:1", "nope.local:A:0"):
        with pytest.raises(StoreError) as e:
            store.delete_local(absent)
        assert e.value.status == 404, absent


def test_the_store_notes_which_local_owners_its_writes_changed(store):
    """Issue 20, item 12: the caller updates the DNS snapshot for these owners only."""
    assert store.take_changes() == frozenset()
    store.add_local("nas.lan", "A", ["192.168.1.5"])
    store.add_local("*.home.lan", "A", ["192.168.1.2"])
    assert store.take_changes() == {"nas.lan", "*.home.lan"}
    assert store.take_changes() == frozenset()  # taken once
    rid = store.add_record("local", "tv.lan", "A", "192.168.1.7")["id"]
    store.update_record(rid, {"name": "tv2.lan"})  # the old owner and the new one
    assert store.take_changes() == {"tv.lan", "tv2.lan"}
    store.delete_local("nas.lan.:A:0")
    assert store.take_changes() == {"nas.lan"}
    assert store.local_records(["nas.lan", "tv2.lan"]) == {
        "nas.lan": [], "tv2.lan": [Record("tv2.lan", "A", 300, "192.168.1.7")]}
    with pytest.raises(StoreError):
        store.add_record("local", "tv2.lan", "A", "192.168.1.7")  # 409: it exists
    assert store.take_changes() == frozenset()  # a refused write changes nothing
    store.create_zone("lab.test")  # anything but local records: only a full rebuild is right
    store.add_local("nas.lan", "A", ["192.168.1.5"])
    assert store.take_changes() is None
    store.add_record("lab.test", "www", "A", "192.0.2.10")
    assert store.take_changes() is None


def test_a_local_edit_is_checked_against_its_owner_only_and_counts_the_whole_zone(store, monkeypatch):
    import burrow.zones.store as store_mod
    store.add_local("a.lan", "A", ["192.168.1.1"])
    store.add_local("b.lan", "CNAME", target="a.lan")
    with pytest.raises(RecordError):
        store.add_record("local", "b.lan", "A", "192.168.1.2")  # CNAME exclusivity, per owner
    with pytest.raises(StoreError) as e:
        store.add_record("local", "a.lan", "A", "192.168.1.1")
    assert e.value.status == 409
    monkeypatch.setattr(store_mod, "MAX_ZONE_RECORDS", 3)
    store.add_local("c.lan", "A", ["192.168.1.3"])
    with pytest.raises(StoreError) as e:
        store.add_local("d.lan", "A", ["192.168.1.4"])  # other owners' rows still count
    assert "at most 3" in e.value.message
