"""Backup and restore: round trip, users only when asked, and every malicious or broken archive
refused with 400 while the database stays byte-for-byte the same."""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import io
import json
import tarfile
import time

import pytest
from microdot.test_client import TestClient

from burrow import backup, state_check
from burrow.api import backup as backup_api
from burrow.api.routes import Api
from burrow.config import load as load_config
from burrow.storage.settings import MIGRATIONS, SettingsDB
from burrow.telemetry.events import EventBus

from tests.support.fakes import FakeAuth, FakePrincipal

ALL_MIGRATIONS = MIGRATIONS  # includes the events table (migration 3)
HASH = "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5"  # the stored shape (no real password behind it)


def make_db(path):
    db = SettingsDB(path, migrations=ALL_MIGRATIONS)
    db.set("cache.max_ttl", 3600)
    db.set("upstreams", ["9.9.9.9", "1.1.1.1"])
    now = time.time()
    with db.transaction() as conn:
        conn.execute("INSERT INTO auth_users (id, username, password_hash, role, created_at, "
                     "password_changed_at) VALUES (1, 'ann', ?, 'admin', ?, ?)", (HASH, now, now))
        conn.execute("INSERT INTO auth_sessions (id, user_id, family_id, created_at, expires_at) "
                     "VALUES ('s1', 1, 'f1', ?, ?)", (now, now + 60))
        conn.execute("INSERT INTO events (ts, type, severity) VALUES (?, 'auth.login', 'info')", (now,))
    return db


@pytest.fixture
def db(tmp_path):
    d = make_db(tmp_path / "settings.db")
    yield d
    d.close()


def dump(db) -> list[str]:
    return list(db.conn.iterdump())


def members_of(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def pack(files: dict[str, bytes], *, fix_manifest=True, kinds=None) -> bytes:
    """A .tar.gz of ``files``; the manifest's checksums are recomputed unless told not to."""
    files = dict(files)
    if fix_manifest and "manifest.json" in files:
        manifest = json.loads(files["manifest.json"])
        for entry in manifest["tables"]:
            if entry["file"] in files:
                entry["sha256"] = hashlib.sha256(files[entry["file"]]).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in kinds or []:
            tar.addfile(info)
    return gzip.compress(raw.getvalue())


def restore_bytes(db, archive, *, include_users=False, dry_run=False):
    plan = backup.validate_backup(archive, db, include_users=include_users)
    changes = backup.diff(plan, db)
    backup.apply(plan, db, dry_run=dry_run)
    return changes


# ---- the service ------------------------------------------------------------------------------

def test_archive_has_manifest_checksums_and_no_user_tables_by_default(db):
    archive = backup.create_backup(db, version="9.9")
    files = members_of(archive)
    manifest = json.loads(files["manifest.json"])
    assert manifest["format"] == "burrow-backup" and manifest["format_version"] == 1
    assert manifest["burrow_version"] == "9.9"
    assert manifest["schema_version"] == len(ALL_MIGRATIONS)
    assert manifest["created_at"].endswith("Z") and manifest["include_users"] is False
    names = [t["name"] for t in manifest["tables"]]
    assert "settings" in names
    assert not any(n.startswith("auth_") or n == "events" for n in names)  # no users, no audit log
    for t in manifest["tables"]:
        assert hashlib.sha256(files[t["file"]]).hexdigest() == t["sha256"]
    assert set(files) == {"manifest.json"} | {t["file"] for t in manifest["tables"]}
    assert b"scrypt" not in b"".join(files.values())


def test_include_users_adds_auth_tables_never_the_jwt_key(db, tmp_path):
    (tmp_path / "jwt.key").write_bytes(b"k" * 32)
    files = members_of(backup.create_backup(db, version="9.9", include_users=True))
    assert "tables/auth_users.json" in files and "tables/auth_sessions.json" in files
    assert "tables/events.json" not in files
    assert not any("jwt" in name for name in files)
    assert b"k" * 32 not in b"".join(files.values())


def test_round_trip_restores_changed_rows(db):
    archive = backup.create_backup(db, version="9.9")
    before = dump(db)
    db.set("cache.max_ttl", 60)
    db.set("new.key", True)
    db.delete("upstreams")
    changes = restore_bytes(db, archive, dry_run=True)
    assert changes["tables"]["settings"] == {"rows": 2, "added": 1, "removed": 1, "changed": 1,
                                             "unchanged": 0}
    assert db.get("cache.max_ttl") == 60  # dry run changed nothing
    restore_bytes(db, archive)
    assert dump(db) == before


def test_diff_names_the_rows_that_would_change(db):
    archive = backup.create_backup(db, version="9.9")
    db.set("cache.max_ttl", 60)
    db.set("new.key", True)
    db.delete("upstreams")
    changes = restore_bytes(db, archive, dry_run=True)
    assert changes["items"] == {"settings": {"added": ["upstreams"], "removed": ["new.key"],
                                             "changed": ["cache.max_ttl"]}}
    restore_bytes(db, archive)
    assert restore_bytes(db, archive, dry_run=True)["items"] == {}  # nothing left to change


def test_diff_lists_at_most_max_items_per_kind(db):
    archive = backup.create_backup(db, version="9.9")
    for i in range(backup.MAX_DIFF_ITEMS + 5):
        db.set(f"extra.{i:03d}", i)
    changes = restore_bytes(db, archive, dry_run=True)
    assert changes["tables"]["settings"]["removed"] == backup.MAX_DIFF_ITEMS + 5  # the count is whole
    assert changes["items"]["settings"]["removed"] == [f"extra.{i:03d}" for i in range(backup.MAX_DIFF_ITEMS)]


def test_users_restored_only_when_asked(db):
    archive = backup.create_backup(db, version="9.9", include_users=True)
    db.conn.execute("UPDATE auth_users SET role = 'viewer' WHERE id = 1")
    changes = restore_bytes(db, archive)
    assert "auth_users" in changes["skipped"]
    assert db.conn.execute("SELECT role FROM auth_users").fetchone()[0] == "viewer"
    changes = restore_bytes(db, archive, include_users=True)
    assert changes["tables"]["auth_users"]["changed"] == 1
    assert db.conn.execute("SELECT role FROM auth_users").fetchone()[0] == "admin"
    assert db.conn.execute("SELECT COUNT(*) FROM auth_sessions").fetchone()[0] == 1


def good_files(db):
    return members_of(backup.create_backup(db, version="9.9"))


@functools.lru_cache(maxsize=1)
def _bomb():
    # 100 MB of zeros in one member: ~100 KB compressed, refused while expanding.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w|") as tar:
        info = tarfile.TarInfo("tables/settings.json")
        info.size = 100 * 1024 * 1024

        class Zeros(io.RawIOBase):
            left = info.size

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n

        tar.addfile(info, io.BufferedReader(Zeros()))
    return gzip.compress(raw.getvalue(), 9)


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _mutations(db):
    files = good_files(db)
    manifest = json.loads(files["manifest.json"])
    settings = json.loads(files["tables/settings.json"])

    def with_manifest(**changes):
        m = dict(manifest, **changes)
        return pack({**files, "manifest.json": json.dumps(m).encode()})

    def with_settings(doc):
        return pack({**files, "tables/settings.json": json.dumps(doc).encode()})

    good = pack(files)
    tampered = dict(files)
    tampered["tables/settings.json"] = files["tables/settings.json"].replace(b"3600", b"3601")
    return {
        "traversal": pack({**files, "../../etc/cron.d/x": b"boom"}),
        "absolute": pack({**files, "/etc/passwd": b"boom"}),
        "dotdot_inside": pack({**files, "tables/../settings.json": b"{}"}),
        "unexpected_name": pack({**files, "tables/settings.json.sh": b"x"}),
        "symlink": pack(files, kinds=[_link("tables/x.json", "/etc/passwd")]),
        "hardlink": pack(files, kinds=[_link("tables/y.json", "manifest.json", tarfile.LNKTYPE)]),
        "device": pack(files, kinds=[_link("tables/z.json", "", tarfile.CHRTYPE)]),
        "bomb": _bomb(),
        "wrong_schema": with_manifest(schema_version=manifest["schema_version"] + 1),
        "old_schema": with_manifest(schema_version=1),
        "wrong_format": with_manifest(format="something-else"),
        "checksum_mismatch": pack(tampered, fix_manifest=False),
        "truncated": good[: len(good) // 2],
        "not_gzip": b"PK\x03\x04 this is a zip",
        "trailing_garbage": good + b"garbage",
        "no_manifest": pack({"tables/settings.json": files["tables/settings.json"]}),
        "unlisted_file": pack({**files, "tables/auth_users.json": b"[]"}),
        "unknown_table": pack({**files, "manifest.json": json.dumps(dict(manifest, tables=manifest["tables"] + [
            {"name": "nope", "file": "tables/nope.json", "sha256": ""}])).encode(),
            "tables/nope.json": json.dumps({"table": "nope", "columns": ["a"], "rows": []}).encode()}),
        "unknown_column": with_settings(dict(settings, columns=["key", "value", "evil"],
                                             rows=[["a", "1", 2]])),
        "missing_required_column": with_settings(dict(settings, columns=["key"], rows=[["a"]])),
        "null_in_not_null": with_settings(dict(settings, rows=[["a", None, 1.0]])),
        "wrong_type": with_settings(dict(settings, rows=[["a", "1", "yesterday"]])),
        "short_row": with_settings(dict(settings, rows=[["a", "1"]])),
        "nested_value": with_settings(dict(settings, rows=[["a", {"x": 1}, 1.0]])),
        "duplicate_key": with_settings(dict(settings, rows=[["a", "1", 1.0], ["a", "2", 1.0]])),
        "not_json": pack({**files, "tables/settings.json": b"{nope"}),
    }


@pytest.mark.parametrize("case", [
    "traversal", "absolute", "dotdot_inside", "unexpected_name", "symlink", "hardlink", "device",
    "bomb", "wrong_schema", "old_schema", "wrong_format", "checksum_mismatch", "truncated",
    "not_gzip", "trailing_garbage", "no_manifest", "unlisted_file", "unknown_table",
    "unknown_column", "missing_required_column", "null_in_not_null", "wrong_type", "short_row",
    "nested_value", "duplicate_key", "not_json"])
def test_bad_archives_are_refused_and_change_nothing(db, case):
    archive = _mutations(db)[case]
    db.set("cache.max_ttl", 1)  # differs from the backup, so a partial restore would show
    before = dump(db)
    with pytest.raises(backup.BackupError) as err:
        restore_bytes(db, archive)
    assert err.value.status == 400, str(err.value)
    assert dump(db) == before
    if case in ("wrong_schema", "old_schema"):
        assert "schema version" in str(err.value)


def test_oversized_upload_is_413(db):
    with pytest.raises(backup.BackupError) as err:
        backup.validate_backup(b"\x1f\x8b" + bytes(backup.MAX_ARCHIVE_BYTES), db)
    assert err.value.status == 413


# ---- the API ----------------------------------------------------------------------------------

class FakeApp:
    version = "9.9"

    def __init__(self, settings):
        self.auth = FakeAuth({"Bearer admin": FakePrincipal("ann", "admin"),
                              "Bearer viewer": FakePrincipal("vera", "viewer")})
        self.settings = settings
        self.events = EventBus()
        self.reloads = 0  # App.reload_settings calls: the restored settings applied live

    def reload_settings(self):
        self.reloads += 1


def client(app):
    api = Api(app.auth)
    backup_api.register(api, settings=app.settings, state=state_check.context(load_config(None, environ={}), None),
                        reload_settings=app.reload_settings, events=app.events, version=app.version)
    return TestClient(api.web)


def call(app, method, path, body=None, token="Bearer admin"):
    headers = {"Authorization": token} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/gzip"
    return asyncio.run(client(app).request(method, path, headers=headers, body=body))


def test_api_download_and_restore_round_trip(db):
    app = FakeApp(db)
    audit = app.events.subscribe("events")
    res = call(app, "GET", "/api/backup")
    assert res.status_code == 200, res.text
    assert res.headers["Content-Type"] == "application/gzip"
    assert res.headers["Content-Disposition"].startswith('attachment; filename="burrow-backup-')
    archive = res.body
    assert "tables/auth_users.json" not in members_of(archive)
    assert "tables/auth_users.json" in members_of(call(app, "GET", "/api/backup?include_users=true").body)
    before = dump(db)
    db.set("cache.max_ttl", 5)
    changed = dump(db)

    res = call(app, "POST", "/api/backup/restore?dry_run=true", archive)
    assert res.status_code == 200, res.text
    assert res.json["status"] == "dry_run"
    assert res.json["tables"]["settings"]["changed"] == 1
    assert dump(db) == changed and app.reloads == 0

    res = call(app, "POST", "/api/backup/restore", archive)
    assert res.status_code == 200, res.text
    assert res.json["status"] == "ok" and res.json["schema_version"] == len(ALL_MIGRATIONS)
    assert dump(db) == before
    assert app.reloads == 1
    types = []
    while audit.pending():
        types.append(asyncio.run(audit.get()).payload["type"])
    assert types == ["backup.downloaded", "backup.downloaded", "backup.restored"]


def test_api_big_upload_streams_and_bad_ones_are_refused(db):
    app = FakeApp(db)
    # A valid archive larger than the JSON body cap is read from the stream.
    db.set("big", "x" * 200_000 + "".join(str(i) for i in range(50_000)))
    archive = call(app, "GET", "/api/backup").body
    assert len(archive) > 64 * 1024
    res = call(app, "POST", "/api/backup/restore?dry_run=true", archive)
    assert res.status_code == 200, res.text

    before = dump(db)
    for case in ("traversal", "bomb", "wrong_schema", "checksum_mismatch", "truncated"):
        res = call(app, "POST", "/api/backup/restore", _mutations(db)[case])
        assert res.status_code == 400, (case, res.text)
        assert res.json["code"] == 400 and res.json["message"]
        assert dump(db) == before
    too_big = b"\x1f\x8b" + bytes(backup.MAX_ARCHIVE_BYTES)
    assert call(app, "POST", "/api/backup/restore", too_big).status_code == 413
    assert call(app, "POST", "/api/backup/restore", b"").status_code in (400, 411)
    assert dump(db) == before


def test_api_needs_admin(db):
    app = FakeApp(db)
    assert call(app, "GET", "/api/backup", token="Bearer viewer").status_code == 403
    assert call(app, "POST", "/api/backup/restore", b"x", token="Bearer viewer").status_code == 403
    assert call(app, "GET", "/api/backup", token=None).status_code == 401


def _with_settings_row(archive: bytes, key: str, text: str) -> bytes:
    files = members_of(archive)
    doc = json.loads(files["tables/settings.json"])
    doc["rows"].append([key, text, 0.0])
    files["tables/settings.json"] = json.dumps(doc).encode()
    return pack(files)


def test_api_refuses_content_the_api_would_refuse_dry_run_alike(db):
    """Issue 20: rows are checked with the API's validators on a scratch copy; a dry run runs
    the same check; nothing changes."""
    app = FakeApp(db)
    good = call(app, "GET", "/api/backup").body
    before = dump(db)
    for key, text, field in (("groups", "{not json", "value"),
                             ("clients", json.dumps([{"id": 1, "client": "not-an-ip", "groups": []}]),
                              "[0].client"),
                             ("filtering.denylist", json.dumps(["(unclosed"]), "[0].domain")):
        archive = _with_settings_row(good, key, text)
        answers = [call(app, "POST", f"/api/backup/restore?dry_run={d}", archive) for d in ("true", "false")]
        for res in answers:
            assert res.status_code == 400, res.text
            assert res.json["error"] == "invalid_backup"
            assert {"table": "settings", "row": key, "field": field} == {
                k: res.json["details"][0][k] for k in ("table", "row", "field")}, res.json
        assert answers[0].json["message"] == answers[1].json["message"]
        assert dump(db) == before and app.reloads == 0


def test_api_refuses_users_without_an_enabled_admin(db):
    app = FakeApp(db)
    good = call(app, "GET", "/api/backup?include_users=true").body
    assert call(app, "POST", "/api/backup/restore?dry_run=true&include_users=true", good).status_code == 200
    files = members_of(good)
    doc = json.loads(files["tables/auth_users.json"])
    doc["rows"][0][doc["columns"].index("disabled")] = 1
    files["tables/auth_users.json"] = json.dumps(doc).encode()
    before = dump(db)
    for dry in ("true", "false"):
        res = call(app, "POST", f"/api/backup/restore?dry_run={dry}&include_users=true", pack(files))
        assert res.status_code == 400 and "no enabled admin" in res.json["message"], res.text
    assert dump(db) == before


def test_deeply_nested_json_is_a_400(db):
    good = good_files(db)
    nested = b"[" * 100_000 + b"]" * 100_000
    for member, data in (("manifest.json", b'{"format": "burrow-backup", "x": ' + nested + b"}"),
                         ("tables/settings.json", b'{"rows": ' + nested + b"}")):
        with pytest.raises(backup.BackupError, match="nested too deeply") as err:
            backup.validate_backup(pack({**good, member: data}, fix_manifest=member != "manifest.json"), db)
        assert err.value.status == 400


def test_a_secret_option_is_never_in_a_backup_and_a_restore_keeps_the_one_in_force(db):
    """The DNS provider's token (tls.acme.cloudflare.api_token) stored by PUT /api/config/tls
    is left out of the archive; restoring keeps the token the box has now, not none."""
    token = "cf-backup-token-0123456789"
    db.set("config.overrides", {"tls.mode": "acme", "tls.acme.hosts": ["dns.example.org"],
                                "tls.acme.cloudflare.api_token": token})
    archive = backup.create_backup(db, version="9.9")
    assert token.encode() not in b"".join(members_of(archive).values())
    stored = json.loads(members_of(archive)["tables/settings.json"])
    overrides = next(json.loads(row[1]) for row in stored["rows"] if row[0] == "config.overrides")
    assert overrides == {"tls.mode": "acme", "tls.acme.hosts": ["dns.example.org"]}
    db.set("config.overrides", {"tls.mode": "off", "tls.acme.cloudflare.api_token": token + "new"})
    restore_bytes(db, archive)
    assert db.get("config.overrides") == {"tls.mode": "acme", "tls.acme.hosts": ["dns.example.org"],
                                          "tls.acme.cloudflare.api_token": token + "new"}
