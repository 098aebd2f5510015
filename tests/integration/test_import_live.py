"""POST /api/import/pihole and ``burrow import pihole`` against the real ``burrow`` process.

A Pi-hole v6 Teleporter archive the test makes (tests/support/teleporter.py, Pi-hole's format)
is planned with a dry run (the plan says what and why; nothing changes), then imported: dnspython
then gets the imported answers (a deny entry blocked with the imported blocking mode, a local
record, a CNAME, a name from the imported list after a list reload). A second import changes
nothing; a broken archive gets a clear error and changes nothing; each real import is one
``import.applied`` audit event. The command line does the same on the data folder of the running
process, which re-reads its settings on SIGHUP.
"""

from __future__ import annotations

import http.client
import http.server
import json
import sqlite3
import subprocess
import sys
import threading
import time

import dns.rcode
import pytest

from tests.support.api_client import admin_token, authed, user_token
from tests.support.teleporter import gravity_schema, reduced_gravity, teleporter_zip
from tests.support.upstream_client import REPO_ROOT

DEADLINE = 30.0


@pytest.fixture(scope="module")
def lists_server(tmp_path_factory):
    web = tmp_path_factory.mktemp("lists-web")
    (web / "ads.txt").write_text("0.0.0.0 listed.import.test\n")
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(web), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def archive(up, lists_server, *, deny="denied.import.test", host="192.168.1.5 nas.import.test") -> bytes:
    full = sqlite3.connect(":memory:")
    gravity_schema(full)
    full.executescript(f"""
        INSERT INTO "group" (id, enabled, name, description) VALUES (1, 1, 'Kids', 'the children');
        INSERT INTO adlist (id, address, enabled, comment) VALUES
            (1, 'http://127.0.0.1:{lists_server.server_port}/ads.txt', 1, 'Local ads');
        INSERT INTO adlist_by_group VALUES (1, 0), (1, 1);
        INSERT INTO domainlist (id, type, domain, enabled) VALUES (1, 1, '{deny}', 1),
            (2, 0, 'allowed.import.test', 1);
        INSERT INTO domainlist_by_group VALUES (1, 0), (1, 1), (2, 1);
        INSERT INTO client (id, ip, comment) VALUES (1, '127.0.0.77', 'tablet'), (2, '00:11:22:33:44:55', 'tv');
        INSERT INTO client_by_group VALUES (1, 1), (2, 0);
    """)
    gravity = reduced_gravity(full)
    toml = f"""
[dns]
upstreams = ["127.0.0.1#{up.dns_port}"]
hosts = ["{host}"]
cnameRecords = ["files.import.test,nas.import.test"]

[dns.blocking]
mode = "NXDOMAIN"

[dns.rateLimit]
count = 0
interval = 0
"""
    return teleporter_zip(toml, gravity)


def post(srv, token, path: str, body: bytes, ctype: str = "application/zip") -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.web_port, timeout=60)
    try:
        conn.request("POST", path, body, {"Authorization": f"Bearer {token}", "Content-Type": ctype})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def eventually(check, what: str):
    deadline = time.monotonic() + DEADLINE
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE} s: {what}")
        time.sleep(0.2)


def state(srv, token) -> dict:
    out = {}
    for path in ("/api/whitelist", "/api/denylist", "/api/lists", "/api/groups", "/api/localrecords",
                 "/api/config", "/api/conditionalforwarding"):
        status, body = authed(srv, token, "GET", path)
        assert status == 200, (path, body)
        if path == "/api/lists":
            body = [{k: v for k, v in row.items() if k in ("name", "source", "kind", "enabled", "groups")}
                    for row in body["lists"]]
        out[path] = body
    return out


def steps(plan: dict, action: str) -> set[tuple[str, str]]:
    return {(s["area"], s["key"]) for s in plan["steps"] if s["action"] == action}


def test_dry_run_then_import_then_again(srv, up, lists_server):
    token = admin_token(srv)
    data = archive(up, lists_server)
    before = state(srv, token)
    assert srv.query("denied.import.test").rcode() == dns.rcode.NOERROR

    status, plan = post(srv, token, "/api/import/pihole?dry_run=true", data)
    assert status == 200, plan
    assert plan["dry_run"] is True and plan["applied"] is False
    created = steps(plan, "create")
    assert {("group", "kids"), ("deny", "denied.import.test"), ("allow", "allowed.import.test"),
            ("client", "127.0.0.77"), ("record", "nas.import.test A"),
            ("record", "files.import.test CNAME"), ("list", "Local ads")} <= created
    assert ("setting", "filtering.blocking_mode") in steps(plan, "change")
    assert ("client", "00:11:22:33:44:55") in steps(plan, "skipped")
    assert all(s["why"] for s in plan["steps"] if s["action"] == "skipped")
    assert state(srv, token) == before
    assert srv.query("denied.import.test").rcode() == dns.rcode.NOERROR

    status, plan = post(srv, token, "/api/import/pihole", data)
    assert status == 200, plan
    assert plan["applied"] is True and plan["counts"]["create"] >= 7
    eventually(lambda: srv.query("denied.import.test").rcode() == dns.rcode.NXDOMAIN, "the deny entry blocks")
    answer = srv.query("nas.import.test")
    assert [rr.address for rr in answer.answer[-1]] == ["192.168.1.5"]
    cname = srv.query("files.import.test")
    assert any(rr.rdtype == 5 for rrset in cname.answer for rr in rrset)
    status, kids = authed(srv, token, "GET", "/api/groups")
    assert "kids" in json.dumps(kids)
    status, lists = authed(srv, token, "GET", "/api/lists")
    assert any(row["name"] == "Local ads" for row in lists["lists"])
    status, body = authed(srv, token, "POST", "/api/blocklist/reload", timeout=60)
    assert status == 200, body
    eventually(lambda: srv.query("listed.import.test").rcode() == dns.rcode.NXDOMAIN, "the imported list blocks")

    after = state(srv, token)
    status, again = post(srv, token, "/api/import/pihole", data)
    assert status == 200, again
    assert again["counts"]["create"] == 0 and again["counts"]["change"] == 0, again
    assert state(srv, token) == after

    status, events = authed(srv, token, "GET", "/api/events?type=import.applied")
    assert status == 200 and events["total"] == 2, events
    assert events["events"][-1]["actor"] == "admin" or events["events"][0]["actor"] == "admin"


def test_broken_or_foreign_files_change_nothing(srv, up, lists_server):
    token = admin_token(srv)
    before = state(srv, token)
    good = archive(up, lists_server, deny="other.import.test")
    for body, words in ((b"not a zip at all", "not a zip"), (good[: len(good) // 2], "zip"),
                        (b"\x1f\x8b\x08\x00" + b"\x00" * 40, "Pi-hole v5")):
        status, err = post(srv, token, "/api/import/pihole", body)
        assert status == 400, err
        assert {"error", "code", "message"} <= set(err) and words in err["message"], err
    # a gravity database whose rows a store refuses as a whole: a CNAME beside an address
    status, plan = post(srv, token, "/api/import/pihole?dry_run=true",
                        archive(up, lists_server, host="192.168.1.9 files.import.test"))
    assert status == 200, plan
    assert ("record", "files.import.test A") in steps(plan, "skipped")
    assert state(srv, token) == before


def test_a_viewer_cannot_import(srv, up, lists_server):
    admin = admin_token(srv)
    viewer = user_token(srv, admin, "importviewer", "Viewer-import-pass-42")
    status, err = post(srv, viewer, "/api/import/pihole?dry_run=true", archive(up, lists_server))
    assert status == 403, err


def test_the_command_line_imports_into_a_running_burrow(srv, up, lists_server, tmp_path):
    path = tmp_path / "pi-hole_teleporter.zip"
    path.write_bytes(archive(up, lists_server, deny="cli.import.test", host="192.168.7.7 cli-host.import.test"))
    command = [sys.executable, "-m", "burrow", "import", "--config", str(srv.config_path), "pihole", str(path)]
    dry = subprocess.run(command + ["--dry-run"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing changed" in dry.stdout and "create    deny    cli.import.test" in dry.stdout
    assert srv.query("cli.import.test").rcode() == dns.rcode.NOERROR

    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "running Burrow told to re-read its settings" in done.stdout
    eventually(lambda: srv.query("cli.import.test").rcode() == dns.rcode.NXDOMAIN, "SIGHUP re-read the deny list")
    eventually(lambda: [rr.address for rr in srv.query("cli-host.import.test").answer[-1]] == ["192.168.7.7"]
               if srv.query("cli-host.import.test").answer else False, "SIGHUP re-read the local records")

    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 broken")
    refused = subprocess.run(command[:-1] + [str(bad)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "nothing was imported" in refused.stderr
    token = admin_token(srv)
    status, events = authed(srv, token, "GET", "/api/events?type=import.applied&actor=command%20line")
    assert status == 200 and events["total"] == 1, events
