"""Issue 20, items 1, 8 and 10 (part) against the real ``burrow`` process.

An archive that passes every structural check but carries content the API would refuse — a
settings value that is not JSON, a client that is not an IP, a regex that does not compile, an
RPZ zone file outside Burrow's folder, a record that is not a record, accounts with no enabled
admin, JSON nested too deeply — is refused with 400 naming the table, row and field, by the
dry run exactly as by the restore, and changes nothing; Burrow restarts cleanly afterwards.
Before the fix these were committed (500 or 200) and the next start failed: DNS down for the
house.

And Burrow never refuses to start over bad stored state: rows written straight into the
settings DB of a stopped Burrow are moved to the quarantine table (the good rest stays in
use), the fault shows in /api/system and /readyz, an event is logged, and DNS answers.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time

import pytest

from tests.integration.test_api_backup_live import download, members, pack, restore, tables
from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream


def seed(srv, token) -> None:
    """One of everything the settings hold, made through the API."""
    calls = [
        ("POST", "/api/groups", {"name": "kids"}),
        ("POST", "/api/clients", {"client": "192.168.1.50", "groups": ["kids"], "name": "tablet"}),
        ("POST", "/api/clients", {"client": "192.168.2.0/24", "groups": ["kids"], "name": "guests"}),
        ("POST", "/api/whitelist", {"domain": "good.example"}),
        ("POST", "/api/denylist", {"domain": "bad.example"}),
        ("POST", "/api/policies", {"name": "late", "logic": "Hour >= 22", "action": "BLOCK"}),
        ("POST", "/api/conditionalforwarding", {"name": "corp", "domains": ["corp.example"],
                                                 "upstreams": ["192.0.2.53"]}),
        ("POST", "/api/rpz", {"name": "rpz.home", "rules": [{"trigger": "ads.example", "action": "nxdomain"}]}),
        ("POST", "/api/localrecords", {"domain": "nas.lan", "type": "A", "ips": ["192.168.7.7"]}),
        ("POST", "/api/zones", {"name": "zone.test", "type": "master"}),
        ("POST", "/api/dns-records", {"zone": "zone.test", "name": "www", "type": "A", "value": "192.0.2.77"}),
        ("PUT", "/api/config/cache", {"max_ttl": 3600}),
        ("POST", "/api/blocking", {"enabled": False, "duration": 3600, "group": "kids"}),
    ]
    for method, path, body in calls:
        status, answer = authed(srv, token, method, path, body)
        assert status < 300, (path, status, answer)


# ---- crafting archives ---------------------------------------------------------------------------

def retable(files: dict, name: str, change) -> None:
    """Edit table ``name`` (its JSON document) and fix the manifest's checksum, so only the
    content is wrong."""
    doc = json.loads(files[f"tables/{name}.json"])
    change(doc)
    data = json.dumps(doc).encode()
    files[f"tables/{name}.json"] = data
    manifest = json.loads(files["manifest.json"])
    for entry in manifest["tables"]:
        if entry["name"] == name:
            entry["sha256"], entry["rows"] = hashlib.sha256(data).hexdigest(), len(doc["rows"])
    files["manifest.json"] = json.dumps(manifest).encode()


def setting_text(key: str, text: str):
    def change(files):
        def edit(doc):
            k, v = doc["columns"].index("key"), doc["columns"].index("value")
            for row in doc["rows"]:
                if row[k] == key:
                    row[v] = text
                    return
            row = [None] * len(doc["columns"])
            row[k], row[v], row[doc["columns"].index("updated_at")] = key, text, time.time()
            doc["rows"].append(row)
        retable(files, "settings", edit)
    return change


def setting(key: str, mutate):
    """Change the decoded value of settings row ``key`` (``mutate`` edits it in place or returns
    a new one); ``key`` may end in '*' to take the first key with that prefix."""
    def change(files):
        doc = json.loads(files["tables/settings.json"])
        k, v = doc["columns"].index("key"), doc["columns"].index("value")
        row = next(r for r in doc["rows"] if r[k] == key or (key.endswith("*") and r[k].startswith(key[:-1])))
        value = json.loads(row[v])
        new = mutate(value)
        setting_text(row[k], json.dumps(value if new is None else new))(files)
    return change


def column(table: str, name: str, value, where=lambda row: True):
    def change(files):
        def edit(doc):
            cols = doc["columns"]
            row = next(r for r in doc["rows"] if where(dict(zip(cols, r))))
            row[cols.index(name)] = value
        retable(files, table, edit)
    return change


def users(kind: str):
    def change(files):
        if kind == "none":  # every account and what hangs off them
            for name in [n for n in files if n.startswith("tables/auth_")]:
                retable(files, name[len("tables/"):-len(".json")], lambda doc: doc["rows"].clear())
        else:
            def disable(doc):
                for row in doc["rows"]:
                    row[doc["columns"].index("disabled")] = 1
            retable(files, "auth_users", disable)
    return change


def deep(files, member):
    nested = b"[" * 100_000 + b"]" * 100_000
    if member == "manifest.json":
        files[member] = b'{"format": "burrow-backup", "format_version": 1, "x": ' + nested + b"}"
    else:
        retable(files, "settings", lambda doc: None)
        files[member] = b'{"table": "settings", "columns": ["key", "value", "updated_at"], "rows": ' + nested + b"}"
        manifest = json.loads(files["manifest.json"])
        for entry in manifest["tables"]:
            if entry["name"] == "settings":
                entry["sha256"] = hashlib.sha256(files[member]).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()


PWNED = {}  # the file a hostile archive would have Burrow write (set by the fixture)


def _add(item):
    return lambda v: v + [item]


# name → (change the member files, (table, row, field) the answer must name; None: not a row)
CASES = {
    "settings value not JSON": (setting_text("groups", "{not json"), ("settings", "groups", "value")),
    "settings value nested deeply": (setting_text("clients", "[" * 100_000 + "]" * 100_000),
                                     ("settings", "clients", "value")),
    "client not an IP": (setting("clients", lambda v: v[0].update(client="not-an-ip")),
                         ("settings", "clients", "[0].client")),
    "client in an unknown group": (setting("clients", lambda v: v[1].update(groups=["nosuch"])),
                                   ("settings", "clients", "[1].groups")),
    "group name": (setting("groups", lambda v: v[0].update(name="Bad Name!")), ("settings", "groups", "[0].name")),
    "allow-list regex": (setting("filtering.whitelist", _add("(unclosed")),
                         ("settings", "filtering.whitelist", "[1].domain")),
    "deny list not a list": (setting_text("filtering.denylist", '{"a": 1}'),
                             ("settings", "filtering.denylist", "value")),
    "runtime option value": (setting("config.overrides", lambda v: v.update({"cache.max_ttl": "soon"})),
                             ("settings", "config.overrides", "cache.max_ttl")),
    "runtime option not runtime": (setting("config.overrides", lambda v: v.update({"storage.data_dir": "/"})),
                                   ("settings", "config.overrides", "storage.data_dir")),
    "policy logic": (setting("policies", lambda v: v[0].update(logic="Hour >>> (")),
                     ("settings", "policies", "[0].logic")),
    "forwarding upstream": (setting("forwarding.rules", lambda v: v[0].update(upstreams=["not-an-ip"])),
                            ("settings", "forwarding.rules", "[0].upstreams[0]")),
    "pause not an object": (setting_text("blocking.pause", "[1]"), ("settings", "blocking.pause", "value")),
    "RPZ zone file outside Burrow's folder": (setting("rpz.rules.*", lambda v: v.update(file=PWNED["file"])),
                                              ("settings", None, "file")),
    "list source outside the list folders": (column("lists", "source", "/etc/passwd"), ("lists", "id=1", "source")),
    "list groups not JSON": (column("lists", "groups", "{oops"), ("lists", "id=1", "groups")),
    "record value": (column("zone_records", "value", "not-an-ip", lambda r: r["name"] == "www.zone.test"),
                     ("zone_records", None, "value")),
    "record type": (column("zone_records", "type", "BOGUS", lambda r: r["name"] == "nas.lan"),
                    ("zone_records", None, "type")),
    "zone primaries not JSON": (column("zones", "primaries", "{oops", lambda r: r["name"] == "zone.test"),
                                ("zones", None, "primaries")),
    "no account left": (users("none"), ("auth_users", None, None)),
    "every admin disabled": (users("disabled"), ("auth_users", None, None)),
    "manifest nested deeply": (lambda f: deep(f, "manifest.json"), None),
    "table nested deeply": (lambda f: deep(f, "tables/settings.json"), None),
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("restorecheck"), [up.address]) as b:
        b.admin = admin_token(b)
        PWNED["file"] = str(b.workdir / "pwned.zone")  # outside the lists folder
        seed(b, b.admin)
        b.valid = download(b, b.admin, include_users=True)
        b.before = tables(download(b, b.admin, include_users=True))
        yield b


def crafted(valid: bytes, change) -> bytes:
    files = members(valid)
    change(files)
    return pack(sorted(files.items(), key=lambda kv: kv[0] != "manifest.json"))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_content_is_refused_by_dry_run_and_restore_alike(srv, case):
    change, where = CASES[case]
    archive = crafted(srv.valid, change)
    # Both sent before judging either (before the fix the dry run said 200 and the restore
    # committed: the restart test below then met what it left).
    answers = [restore(srv, srv.admin, archive, dry_run=dry_run, include_users=True) for dry_run in (True, False)]
    for dry_run, (status, body) in zip((True, False), answers):
        assert status == 400, (case, dry_run, status, body)
        assert body["error"] == "invalid_backup" and body["message"], body
    answers = [body for _, body in answers]
    assert answers[0]["message"] == answers[1]["message"] and answers[0].get("details") == answers[1].get("details")
    if where is None:
        assert "nested too deeply" in answers[0]["message"], answers[0]
    else:
        table, row, field = where
        named = [d for d in answers[0]["details"] if d["table"] == table and (row is None or d["row"] == row)
                 and d["field"] == field]
        assert named, answers[0]["details"]
        assert f"table {table}" in answers[0]["message"]
    # Nothing changed: every table, the users included, byte for byte.
    assert tables(download(srv, srv.admin, include_users=True)) == srv.before


def test_burrow_starts_cleanly_after_the_refused_archives(srv):
    """Before the fix the last archive committed (every admin disabled) was live and others
    had written a zone file outside Burrow's folder; now nothing of them is."""
    srv.stop()
    srv.start()
    srv.__dict__.pop("_api_tokens", None)
    token = admin_token(srv)
    assert srv.query("nas.lan").answer[0][0].address == "192.168.7.7"
    status, system = authed(srv, token, "GET", "/api/system")
    assert status == 200 and system["status"]["state"] != "fault", system["status"]
    assert not os.path.exists(PWNED["file"])
    srv.admin = token


def test_the_untouched_archive_still_restores(srv):
    status, report = restore(srv, srv.admin, srv.valid, dry_run=True, include_users=True)
    assert status == 200 and report["status"] == "dry_run", report
    status, report = restore(srv, srv.admin, srv.valid, include_users=True)
    assert status == 200 and report["status"] == "ok", report


# ---- bad state already stored: the start moves it aside ------------------------------------------

def write_bad_rows(settings_db) -> int:
    """What a restore from before the fix, a hand edit or a bug could leave behind; returns the
    id of the zone broken."""
    conn = sqlite3.connect(settings_db)
    try:
        def put(key, text):
            conn.execute("INSERT INTO settings (key, value, updated_at) VALUES (?, ?, 0) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, text))

        def value(key):
            return json.loads(conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0])

        clients = value("clients")
        clients.insert(1, {"id": 99, "client": "not-an-ip", "name": "typo", "groups": ["kids"], "created_at": 0})
        put("clients", json.dumps(clients))
        put("filtering.whitelist", json.dumps(value("filtering.whitelist") + ["(unclosed"]))
        put("blocking.pause", "[1]")
        put("policies", "{not json")
        put("groups", json.dumps(value("groups")))  # unchanged: the kids group stays valid
        conn.execute("UPDATE zones SET primaries = '{oops' WHERE name = 'zone.test'")
        conn.commit()
        return conn.execute("SELECT id FROM zones WHERE name = 'zone.test'").fetchone()[0]
    finally:
        conn.close()


def quarantine_rows(settings_db) -> list[tuple]:
    conn = sqlite3.connect(settings_db)
    try:
        return conn.execute("SELECT source, row_key, entry, content, reason FROM quarantine ORDER BY id").fetchall()
    finally:
        conn.close()


def test_bad_stored_rows_are_quarantined_and_dns_comes_up(tmp_path):
    with TestUpstream() as up:
        b = BurrowProcess(tmp_path / "b", [up.address])
        b.start()
        try:
            seed(b, admin_token(b))
        finally:
            b.stop()
        zone_id = write_bad_rows(b.data_dir / "settings.db")
        b.__dict__.pop("_api_tokens", None)

        b.start()  # before the fix: "burrow exited with 1" (GroupError, JSONDecodeError, ...)
        try:
            assert b.query("nas.lan").answer[0][0].address == "192.168.7.7"  # local records
            assert b.query("www.example.com").rcode() == 0  # forwarded
            token = admin_token(b)
            status, system = authed(b, token, "GET", "/api/system")
            assert status == 200 and system["status"]["state"] == "fault", system["status"]
            assert "quarantine" in " ".join(system["status"]["reasons"])
            status, ready = b.http("GET", "/readyz")
            assert status == 200 and ready["checks"]["settings"] == "fault", ready  # still serving
            # The good entries stayed in use: the other clients, the allow-list entry.
            status, clients = authed(b, token, "GET", "/api/clients")
            assert [c["client"] for c in clients["clients"]] == ["192.168.1.50", "192.168.2.0/24"]
            status, allow = authed(b, token, "GET", "/api/whitelist")
            assert allow["exact"] == ["good.example"], allow
            # Each one was logged (the event log is written in batches: wait for it).
            deadline = time.monotonic() + 30  # bounds a failure only
            while True:
                status, events = authed(b, token, "GET", "/api/events?type=settings.quarantined")
                found = {(e["data"]["table"], e["data"]["row"]) for e in events.get("events", [])}
                if len(found) >= 5 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert found == {("settings", "clients"), ("settings", "filtering.whitelist"),
                             ("settings", "blocking.pause"), ("settings", "policies"),
                             ("zones", f"id={zone_id}")}, events
        finally:
            b.stop()

        # Nothing a person saved is lost: each bad row or entry is in the quarantine as it was.
        rows = {(r[0], r[1], r[2]): r for r in quarantine_rows(b.data_dir / "settings.db")}
        assert json.loads(rows[("settings", "clients", "[1]")][3])["client"] == "not-an-ip"
        assert json.loads(rows[("settings", "filtering.whitelist", "[1]")][3]) == "(unclosed"
        assert json.loads(rows[("settings", "policies", None)][3])["value"] == "{not json"
        zone = json.loads(rows[("zones", f"id={zone_id}", None)][3])
        assert zone["name"] == "zone.test" and any(r["value"] == "192.0.2.77" for r in zone["records"])
        assert "not an IP address" in rows[("settings", "clients", "[1]")][4]

        # The next start has nothing left to move: no fault.
        b.start()
        try:
            token = admin_token(b)
            status, system = authed(b, token, "GET", "/api/system")
            assert system["status"]["state"] != "fault", system["status"]
            assert len(quarantine_rows(b.data_dir / "settings.db")) == len(rows)
        finally:
            b.__exit__(None, None, None)
