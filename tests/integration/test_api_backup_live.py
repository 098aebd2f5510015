"""GET /api/backup and POST /api/backup/restore against the real ``burrow`` process.

A round trip brings back what was changed after the backup (a user, the cache settings), with a
dry run first that reports and changes nothing. Malicious or broken archives — path traversal,
absolute paths, links, a gzip bomb, over the byte cap, another schema version, a checksum
mismatch, truncation, junk — are refused with 400/413 in the one error shape, and afterwards
the settings tables (compared member by member, byte for byte), the users and /api/config are
exactly what they were.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import select
import tarfile
import zlib

import dns.flags
import pytest

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream

VIEWER_PW = "Viewer-backup-pass-42"
ERROR_KEYS = {"error", "code", "message", "timestamp"}
MAX_ARCHIVE_BYTES = 8 * 1024 * 1024  # burrow.backup.MAX_ARCHIVE_BYTES


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("backup"), [up.address]) as b:
        yield b


@pytest.fixture(scope="module")
def admin(srv):
    return admin_token(srv)


def raw(srv, token, method, path, body: bytes | None = None, ctype: str | None = None,
        answer_before_body: bool = False, source: str = "127.0.0.40"):
    """(status, headers, bytes). ``answer_before_body``: send the headers, and if the server
    answers before the body was sent (413 from Content-Length alone), read that answer."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.web_port, timeout=30, source_address=(source, 0))
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {token}")
        if ctype:
            conn.putheader("Content-Type", ctype)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body is not None:
            early = answer_before_body and select.select([conn.sock], [], [], 5.0)[0]
            if not early:
                conn.sock.sendall(body)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def download(srv, token, include_users=False) -> bytes:
    status, headers, data = raw(srv, token, "GET", f"/api/backup?include_users={str(include_users).lower()}")
    assert status == 200, data[:500]
    assert headers["Content-Type"] == "application/gzip" and data[:2] == b"\x1f\x8b"
    return data


def restore(srv, token, archive: bytes, *, dry_run=False, include_users=False, **kw):
    query = f"?dry_run={str(dry_run).lower()}&include_users={str(include_users).lower()}"
    status, _, data = raw(srv, token, "POST", "/api/backup/restore" + query, archive,
                          "application/gzip", **kw)
    return status, json.loads(data) if data else None


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}


def tables(archive: bytes) -> dict[str, bytes]:
    """The table members (the manifest has a creation time, so it is left out)."""
    return {k: v for k, v in members(archive).items() if k != "manifest.json"}


def pack(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    """A .tar.gz of ``(name, data)`` regular files and ready-made TarInfo (links etc.)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue())


def repack(archive: bytes, change) -> bytes:
    """The archive with ``change(members dict)`` applied (manifest checksums NOT updated)."""
    files = members(archive)
    change(files)
    return pack(sorted(files.items(), key=lambda kv: kv[0] != "manifest.json"))


def manifest_of(files: dict) -> dict:
    return json.loads(files["manifest.json"])


def check_error(status, body, allowed=(400,)):
    assert status in allowed, (status, body)
    assert isinstance(body, dict) and ERROR_KEYS <= set(body), body
    assert body["code"] == status, body


def user_names(srv, admin) -> set[str]:
    status, body = authed(srv, admin, "GET", "/api/users")
    assert status == 200, body
    return {u["username"] for u in body["users"]}


def max_ttl(srv, admin) -> int:
    status, config = authed(srv, admin, "GET", "/api/config")
    assert status == 200, config
    return config["cache"]["max_ttl"]


# ---- the round trip ------------------------------------------------------------------------------

def test_backup_then_restore_brings_the_state_back(srv, admin):
    status, vera = authed(srv, admin, "POST", "/api/users",
                          {"username": "bvera", "password": VIEWER_PW, "role": "viewer"})
    assert status == 201, vera
    status, body = authed(srv, admin, "PUT", "/api/config/cache", {"max_ttl": 3600})
    assert status == 200, body
    assert max_ttl(srv, admin) == 3600

    archive = download(srv, admin, include_users=True)
    files = members(archive)
    manifest = manifest_of(files)
    assert manifest["format"] == "burrow-backup" and manifest["include_users"] is True
    for entry in manifest["tables"]:
        assert hashlib.sha256(files[entry["file"]]).hexdigest() == entry["sha256"]
    assert "bvera" in json.dumps(json.loads(files["tables/auth_users.json"]))
    assert b"jwt" not in b"".join(n.encode() for n in files)  # the signing key is a file, never in it
    # Without include_users, no account table is in the archive.
    plain = members(download(srv, admin))
    assert not any("auth_" in name for name in plain)

    # Change what the backup holds.
    assert authed(srv, admin, "DELETE", f"/api/users/{vera['id']}")[0] == 200
    assert authed(srv, admin, "PUT", "/api/config/cache", {"max_ttl": 7200})[0] == 200
    assert "bvera" not in user_names(srv, admin) and max_ttl(srv, admin) == 7200

    # Dry run: reports the difference, changes nothing.
    status, report = restore(srv, admin, archive, dry_run=True, include_users=True)
    assert status == 200, report
    assert report["status"] == "dry_run" and report["dry_run"] is True
    assert report["tables"]["auth_users"]["added"] == 1
    assert sum(t["changed"] + t["added"] + t["removed"] for name, t in report["tables"].items()
               if not name.startswith("auth_")) >= 1  # the cache setting
    assert "bvera" not in user_names(srv, admin) and max_ttl(srv, admin) == 7200

    # The real thing.
    status, report = restore(srv, admin, archive, include_users=True)
    assert status == 200, report
    assert report["status"] == "ok" and report["dry_run"] is False and report["skipped"] == []
    assert "bvera" in user_names(srv, admin)
    status, body = srv.http("POST", "/api/auth/login", {"username": "bvera", "password": VIEWER_PW},
                            source="127.0.0.41")
    assert status == 200, body
    assert authed(srv, admin, "GET", "/api/auth/me")[0] == 200  # the admin's session survived
    assert tables(download(srv, admin)) == tables(archive_without_users(archive))
    srv.restored_archive = archive  # for the next test


def test_restored_settings_are_live_without_a_restart(srv, admin):
    """The restore lands in the settings DB (previous test); the running resolver and GET
    /api/config must show it at once, as they do after PUT /api/config/*."""
    if getattr(srv, "restored_archive", None) is None:
        pytest.skip("the round trip did not run")
    assert max_ttl(srv, admin) == 3600, "restore wrote the settings DB but did not apply it live"


def test_restored_settings_survive_a_restart(srv, admin):
    if getattr(srv, "restored_archive", None) is None:
        pytest.skip("the round trip did not run")
    srv.stop()
    srv.start()
    srv.__dict__.pop("_api_tokens", None)
    token = admin_token(srv)
    assert max_ttl(srv, token) == 3600
    assert "bvera" in user_names(srv, token)


def archive_without_users(archive: bytes) -> bytes:
    """The archive as a backup without accounts has it: every table backup.py counts as holding
    accounts or credentials left out (auth_*, and e.g. the Pi-hole face's pihole_sessions)."""
    from burrow.backup import is_user_table
    files = {k: v for k, v in members(archive).items()
             if not (k.startswith("tables/") and is_user_table(k[len("tables/"):-len(".json")]))}
    return pack(sorted(files.items(), key=lambda kv: kv[0] != "manifest.json"))


# ---- malicious and broken archives ---------------------------------------------------------------

def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _bomb() -> bytes:
    """gzip of 96 MiB of zeros (about 100 KB): expands past the 64 MiB limit."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1024 * 1024)
    out = [c.compress(chunk) for _ in range(96)]
    out.append(c.flush())
    return b"".join(out)


def _tar_bomb(valid: bytes) -> bytes:
    """A well-formed archive whose table member is 80 MiB of spaces (valid JSON padding)."""
    files = members(valid)
    name = next(k for k in files if k != "manifest.json")

    class Spaces(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = b" " * n
            self.left -= n
            return n

    buf = io.BytesIO()
    size = 80 * 1024 * 1024
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(files["manifest.json"])
        tar.addfile(info, io.BytesIO(files["manifest.json"]))
        info = tarfile.TarInfo(name)
        info.size = size
        tar.addfile(info, io.BufferedReader(Spaces(size)))
    return gzip.compress(buf.getvalue(), compresslevel=9)


def malicious_archives(valid: bytes) -> dict[str, tuple[bytes, tuple[int, ...]]]:
    files = members(valid)
    manifest = files["manifest.json"]
    a_table = next(k for k in files if k != "manifest.json")

    def wrong_schema(f):
        m = manifest_of(f)
        m["schema_version"] += 1
        f["manifest.json"] = json.dumps(m).encode()

    def wrong_format(f):
        m = manifest_of(f)
        m["format_version"] = 99
        f["manifest.json"] = json.dumps(m).encode()

    def tampered(f):
        doc = json.loads(f[a_table])
        doc["rows"] = doc["rows"] + doc["rows"][:1] if doc["rows"] else [[None] * len(doc["columns"])]
        f[a_table] = json.dumps(doc).encode()

    def unknown_table(f):
        m = manifest_of(f)
        data = json.dumps({"table": "sqlite_master", "columns": ["x"], "rows": []}).encode()
        m["tables"].append({"name": "evil", "file": "tables/evil.json", "rows": 0,
                            "sha256": hashlib.sha256(data).hexdigest()})
        f["manifest.json"] = json.dumps(m).encode()
        f["tables/evil.json"] = data

    bad = {
        "traversal": pack([("manifest.json", manifest), ("../../etc/burrow-evil.json", b"{}")]),
        "traversal_inside": pack([("manifest.json", manifest), ("tables/../../evil.json", b"{}")]),
        "absolute": pack([("manifest.json", manifest), ("/etc/burrow-evil.json", b"{}")]),
        "symlink": pack([("manifest.json", manifest), _link(a_table, "/etc/passwd")]),
        "hardlink": pack([("manifest.json", manifest), _link(a_table, "manifest.json", tarfile.LNKTYPE)]),
        "device": pack([("manifest.json", manifest), _link("tables/dev.json", "", tarfile.CHRTYPE)]),
        "unexpected_file": pack([("manifest.json", manifest), ("run.sh", b"#!/bin/sh\n")]),
        "no_manifest": pack([(a_table, files[a_table])]),
        "gzip_bomb": _bomb(),
        "tar_bomb": _tar_bomb(valid),
        "wrong_schema_version": repack(valid, wrong_schema),
        "wrong_format_version": repack(valid, wrong_format),
        "checksum_mismatch": repack(valid, tampered),
        "unknown_table": repack(valid, unknown_table),
        "truncated": valid[: len(valid) // 2],
        "truncated_tail": valid[:-9],
        "trailing_garbage": valid + b"garbage",
        "not_gzip": b"PK\x03\x04 this is a zip, not a tar.gz" * 10,
        "junk_gzip": b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4,
        "empty_tar": gzip.compress(b"\0" * 1024),
    }
    return {name: (data, (400,)) for name, data in bad.items()}


def snapshot(srv, admin) -> tuple[dict, set, dict]:
    status, config = authed(srv, admin, "GET", "/api/config")
    assert status == 200, config
    return tables(download(srv, admin)), user_names(srv, admin), config


def test_malicious_archives_are_refused_and_change_nothing(srv, admin):
    # Some state worth protecting, then the "before" picture.
    authed(srv, admin, "POST", "/api/users", {"username": "bkeep", "password": VIEWER_PW, "role": "viewer"})
    assert authed(srv, admin, "PUT", "/api/config/cache", {"max_ttl": 4321})[0] == 200
    valid = download(srv, admin, include_users=True)
    before = snapshot(srv, admin)

    for name, (archive, allowed) in malicious_archives(valid).items():
        for dry_run in (True, False):
            status, body = restore(srv, admin, archive, dry_run=dry_run, include_users=True)
            check_error(status, body, allowed)
            assert body["error"] == "invalid_backup" or status != 400, (name, body)

    # Over the byte cap: refused from Content-Length alone (413), without reading it all.
    huge = b"\x1f\x8b" + b"\0" * (MAX_ARCHIVE_BYTES + 1024)
    status, body = restore(srv, admin, huge, answer_before_body=True)
    check_error(status, body, (413,))
    # No body at all.
    status, _, data = raw(srv, admin, "POST", "/api/backup/restore", b"", "application/gzip")
    check_error(status, json.loads(data), (400, 411))

    after = snapshot(srv, admin)
    assert after[0] == before[0], "a refused restore changed the settings tables"
    assert after[1] == before[1] and after[2] == before[2]
    assert authed(srv, admin, "GET", "/api/auth/me")[0] == 200
    assert srv.http("GET", "/healthz")[0] == 200


def test_restore_needs_an_admin(srv, admin):
    status, _ = authed(srv, admin, "POST", "/api/users",
                       {"username": "bview", "password": VIEWER_PW, "role": "viewer"})
    assert status in (201, 409)
    status, body = srv.http("POST", "/api/auth/login", {"username": "bview", "password": VIEWER_PW},
                            source="127.0.0.42")
    assert status == 200, body
    viewer = body["access_token"]
    archive = download(srv, admin)
    status, body = restore(srv, viewer, archive)
    check_error(status, body, (403,))
    status, _, data = raw(srv, viewer, "GET", "/api/backup")
    check_error(status, json.loads(data), (403,))
    status, _, data = raw(srv, "not-a-token", "POST", "/api/backup/restore", archive, "application/gzip")
    check_error(status, json.loads(data), (401,))


def test_restore_brings_back_local_dns_groups_and_forwarding_live(srv, admin):
    """Local records, zones, client groups and conditional forwarding rules are settings too:
    a restore brings them back and the resolver answers from them at once."""
    authed(srv, admin, "POST", "/api/localrecords", {"domain": "nas.backup.lan", "type": "A", "ips": ["192.168.7.7"]})
    authed(srv, admin, "POST", "/api/zones", {"name": "zone.backup.test", "type": "master"})
    authed(srv, admin, "POST", "/api/dns-records",
           {"zone": "zone.backup.test", "name": "www", "type": "A", "value": "192.0.2.77"})
    authed(srv, admin, "POST", "/api/groups", {"name": "backupkids"})
    archive = download(srv, admin)
    assert authed(srv, admin, "DELETE", "/api/localrecords/nas.backup.lan.:A:0")[0] == 200
    assert authed(srv, admin, "DELETE", "/api/zones/zone.backup.test")[0] == 200
    assert authed(srv, admin, "DELETE", "/api/groups/backupkids")[0] == 200
    assert srv.query("www.zone.backup.test").flags & dns.flags.AA == 0
    status, report = restore(srv, admin, archive)
    assert status == 200 and report["status"] == "ok", report
    assert srv.query("nas.backup.lan").answer[0][0].address == "192.168.7.7"
    r = srv.query("www.zone.backup.test")
    assert r.answer[0][0].address == "192.0.2.77" and r.flags & dns.flags.AA
    assert "backupkids" in [g["name"] for g in authed(srv, admin, "GET", "/api/groups")[1]["groups"]]
