"""The Pi-hole v6 face (burrow/faces/pihole) through the running process: Home Assistant's
sequence with the client library it uses (``hole``, at the pin of HA's pi_hole manifest), and
plain HTTP for the shapes and rules hole does not touch (api/auth.yaml, common.yaml, dns.yaml,
config.yaml of Pi-hole FTL's OpenAPI specification)."""

from __future__ import annotations

import asyncio
import http.client
import http.server
import io
import json
import socket
import threading
import urllib.parse
import zipfile

import aiohttp
import dns.rcode
import pyotp
import pytest
from hole import HoleV6
from hole.exceptions import HoleError

from tests.support.api_client import ADMIN_PASSWORD, admin_token, authed
from tests.support.burrow_proc import BurrowProcess, free_port
from tests.support.timing import wait_for

UNAUTHORIZED = {"key": "unauthorized", "message": "Unauthorized", "hint": None}


class Face:
    """Plain HTTP to the face's own listener."""

    def __init__(self, port: int):
        self.port = port

    def call(self, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None):
        """(status, headers, parsed JSON or text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return resp.status, resp.headers, parsed

    def login(self, password: str = ADMIN_PASSWORD, **extra) -> dict:
        status, _, body = self.call("POST", "/api/auth", {"password": password, **extra})
        assert status == 200, (status, body)
        return body["session"]


def wait_logged(b: BurrowProcess, face: Face, n: int) -> None:
    """Until the live counters and the query log (where tops and types are read) hold n queries."""
    token = admin_token(b)
    wait_for(lambda: authed(b, token, "GET", "/api/stats")[1]["total_queries"] >= n, what="queries counted")
    sid = face.login()["sid"]
    wait_for(lambda: sum(face.call("GET", "/api/stats/query_types", headers={"sid": sid})[2]["types"].values()) >= n,
             what="queries in the query log")
    face.call("DELETE", "/api/auth", headers={"sid": sid})


def made(tmp_path, upstream, name: str = "b", data_dir=None) -> tuple[BurrowProcess, Face]:
    """A Burrow with the face on a free port, not started yet (``with b:`` starts and stops it)."""
    port = free_port()
    b = BurrowProcess(tmp_path / name, [upstream.address], {"compat": {"pihole_address": f"127.0.0.1:{port}"}})
    if data_dir is not None:
        b.config["storage"]["data_dir"] = str(data_dir)
    return b, Face(port)


@pytest.fixture
def pihole(tmp_path, upstream):
    b, face = made(tmp_path, upstream)
    with b:
        admin_token(b)  # the owner's admin account: its password is Pi-hole's
        yield b, face


def test_home_assistant_sequence_with_hole(pihole):
    """What Home Assistant's pi_hole integration does, in its order: the unauthenticated version
    probe, sign-in, the polling calls, the switch off (timer true, then a duration), on, sign-out."""
    b, face = pihole
    token = admin_token(b)
    assert authed(b, token, "POST", "/api/denylist", {"domain": "ads.example.net"})[0] == 200
    for name in ("www.example.com", "ads.example.net", "www.example.com"):
        b.query(name)
    wait_logged(b, face, 3)

    async def sequence():
        async with aiohttp.ClientSession() as session:
            # The version probe of HA's determine_api_version: no session, 401 "unauthorized".
            async with session.get(f"http://127.0.0.1:{face.port}/api/info/version") as r:
                assert r.status == 401
                assert (await r.json())["error"]["key"] == "unauthorized"
            wrong = HoleV6("127.0.0.1", session, protocol="http", password="wrong_password", port=face.port)
            with pytest.raises(HoleError, match="Invalid password"):
                await wrong.authenticate()

            api = HoleV6("127.0.0.1", session, protocol="http", password=ADMIN_PASSWORD, port=face.port)
            await api.authenticate()
            await api.get_data()
            assert api.status == "enabled"
            assert api.dns_queries_today >= 3 and api.ads_blocked_today >= 1
            assert api.ads_percentage_today > 0 and api.unique_domains >= 2
            assert api.unique_clients >= 1 and api.clients_ever_seen >= 1
            assert api.queries_forwarded >= 1
            assert "ads.example.net" in [d["domain"] for d in api.top_ads]
            assert "www.example.com" in [d["domain"] for d in api.top_queries]
            assert api.core_current and not (api.core_update or api.web_update or api.ftl_update)
            assert any(u["count"] >= 1 for u in api.forward_destinations if u["port"] != -1)

            await api.disable(True)  # HA's switch without a duration: {"blocking": false, "timer": true}
            assert api.status == "disabled" and api.blocking_status["timer"] is None
            await api.disable(60)
            assert api.status == "disabled" and 50 <= api.blocking_status["timer"] <= 60
            await api.enable()
            assert api.status == "enabled" and api.blocking_status["timer"] is None
            sid = api._session_id
            await api.logout()
            async with session.get(f"http://127.0.0.1:{face.port}/api/stats/summary",
                                   headers={"X-FTL-SID": sid}) as r:
                assert r.status == 401 and (await r.json())["error"] == UNAUTHORIZED

    asyncio.run(sequence())
    events = authed(b, token, "GET", "/api/events?limit=50")[1]
    kinds = [e["type"] for e in events.get("events", events.get("items", []))]
    assert "blocking.paused" in kinds and "blocking.resumed" in kinds


def test_auth_shapes_and_where_a_session_id_may_come_from(pihole):
    b, face = pihole
    # Every unauthenticated call: 401, Pi-hole's error, and took.
    for method, path in (("GET", "/api/stats/summary"), ("GET", "/api/dns/blocking"), ("GET", "/api/history"),
                         ("POST", "/api/dns/blocking"), ("GET", "/api/config"), ("PATCH", "/api/config"),
                         ("POST", "/api/action/gravity"), ("DELETE", "/api/auth")):
        status, _, body = face.call(method, path)
        assert status == 401 and body["error"] == UNAUTHORIZED and isinstance(body["took"], float), (method, path)
    status, _, body = face.call("GET", "/api/auth")
    assert status == 401 and body["session"]["valid"] is False and body["session"]["sid"] is None

    # Login: the body is JSON whatever the Content-Type says.
    status, headers, body = face.call("POST", "/api/auth", raw=json.dumps({"password": ADMIN_PASSWORD}).encode(),
                                      headers={"Content-Type": "text/plain"})
    assert status == 200, body
    session = body["session"]
    assert session["valid"] is True and session["totp"] is False and session["sid"] and session["csrf"]
    assert 1700 <= session["validity"] <= 1800 and "took" in body
    assert f"sid={session['sid']}" in headers["Set-Cookie"]
    sid, csrf = session["sid"], session["csrf"]

    # Wrong password: 401 with valid false; no payload / no password / not a string: 400.
    status, _, body = face.call("POST", "/api/auth", {"password": "not it"})
    assert status == 401 and body["session"]["valid"] is False and body["session"]["sid"] is None
    assert face.call("POST", "/api/auth", raw=b"{oops")[2]["error"]["message"] == "No valid JSON payload found"
    assert face.call("POST", "/api/auth", {"pass": "x"})[2]["error"]["message"] == "No password found in JSON payload"
    assert face.call("POST", "/api/auth", {"password": 5})[0] == 400

    path = "/api/dns/blocking"
    for headers, target, raw in (
            ({"X-FTL-SID": sid}, path, None),
            ({"sid": sid}, path, None),
            ({"SID": sid}, path, None),
            ({}, f"{path}?sid={urllib.parse.quote(sid)}", None),
            ({"Cookie": f"sid={sid}", "X-CSRF-TOKEN": csrf}, path, None),
            ({"Cookie": f"sid={sid}", "X-FTL-CSRF": csrf}, path, None)):
        status, _, body = face.call("GET", target, headers=headers, raw=raw)
        assert status == 200 and body["blocking"] == "enabled", (headers, target, body)
    # The id in a body field (JSON or form) of a POST:
    status, _, body = face.call("POST", path, {"blocking": True, "sid": sid})
    assert status == 200 and body["blocking"] == "enabled"
    form = urllib.parse.urlencode({"sid": sid}).encode()
    status, _, body = face.call("GET", path, raw=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    # A cookie without its CSRF token (or a wrong one) is no session.
    assert face.call("GET", path, headers={"Cookie": f"sid={sid}"})[0] == 401
    assert face.call("GET", path, headers={"Cookie": f"sid={sid}", "X-CSRF-TOKEN": "nope"})[0] == 401

    status, _, body = face.call("GET", "/api/auth", headers={"sid": sid})
    assert status == 200 and body["session"]["valid"] is True and body["session"]["csrf"] == csrf

    # Blocking: bad bodies are refused and change nothing.
    hdr = {"X-FTL-SID": sid}
    assert face.call("POST", path, {"timer": 5}, headers=hdr)[0] == 400
    assert face.call("POST", path, {"blocking": False, "timer": "soon"}, headers=hdr)[0] == 400
    assert face.call("POST", path, {"blocking": True, "timer": 30}, headers=hdr)[0] == 400
    assert face.call("GET", path, headers=hdr)[2]["blocking"] == "enabled"
    body = face.call("POST", path, {"blocking": False, "timer": -5}, headers=hdr)[2]
    assert body == {"blocking": "disabled", "timer": None, "took": body["took"]}  # non-positive: no timer
    assert face.call("POST", path, {"blocking": True}, headers=hdr)[2]["blocking"] == "enabled"

    status, _, body = face.call("DELETE", "/api/auth", headers=hdr)
    assert status == 204 and body is None
    assert face.call("GET", path, headers=hdr)[0] == 401
    assert face.call("GET", "/api/nothing/here", headers=hdr)[2]["error"]["key"] == "not_found"


def test_sessions_survive_a_restart_slide_and_are_capped(tmp_path, upstream):
    b, face = made(tmp_path, upstream)
    with b:
        admin_token(b)
        session = face.login()
        sid = session["sid"]
        # Pi-hole's webserver.api.max_sessions (16): the 17th sign-in is refused as Pi-hole does.
        for _ in range(15):
            face.login()
        status, _, body = face.call("POST", "/api/auth", {"password": ADMIN_PASSWORD})
        assert status == 429 and body["error"]["key"] == "api_seats_exceeded"
    b2, face2 = made(tmp_path, upstream, name="again", data_dir=b.data_dir)
    with b2:
        status, _, body = face2.call("GET", "/api/auth", headers={"X-FTL-SID": sid})
        assert status == 200 and body["session"]["valid"] is True and body["session"]["validity"] > 1700
        assert face2.call("GET", "/api/stats/summary", headers={"X-FTL-SID": sid})[0] == 200
        assert face2.call("DELETE", "/api/auth", headers={"sid": sid})[0] == 204
        face2.login()  # a seat is free again


def test_app_passwords_are_api_tokens_with_their_scope(pihole):
    b, face = pihole
    token = admin_token(b)
    read = authed(b, token, "POST", "/api/tokens", {"name": "ha", "scope": "read"})[1]["token"]
    admin = authed(b, token, "POST", "/api/tokens", {"name": "sync", "scope": "admin"})[1]["token"]
    session = face.login(read)
    hdr = {"X-FTL-SID": session["sid"]}
    assert face.call("GET", "/api/stats/summary", headers=hdr)[0] == 200
    assert face.call("POST", "/api/dns/blocking", {"blocking": False, "timer": 30}, headers=hdr)[0] == 200
    assert face.call("POST", "/api/dns/blocking", {"blocking": True}, headers=hdr)[0] == 200
    status, _, body = face.call("PATCH", "/api/config", {"config": {"dns": {"upstreams": ["9.9.9.9"]}}}, headers=hdr)
    assert status == 403 and body["error"]["key"] == "forbidden"
    assert face.call("POST", "/api/action/gravity", headers=hdr)[0] == 403
    hdr_admin = {"X-FTL-SID": face.login(admin)["sid"]}
    status, _, body = face.call("PATCH", "/api/config", {"config": {"dns": {"blocking": {"mode": "NX"}}}},
                                headers=hdr_admin)
    assert status == 200 and body["config"]["dns"]["blocking"]["mode"] == "NX"
    # A revoked token's sessions end with it.
    token_id = [t for t in authed(b, token, "GET", "/api/tokens")[1]["tokens"] if t["name"] == "ha"][0]["id"]
    assert authed(b, token, "DELETE", f"/api/tokens/{token_id}")[0] in (200, 204)
    assert face.call("GET", "/api/stats/summary", headers=hdr)[0] == 401


def test_stats_history_info_and_v5_summary(pihole):
    b, face = pihole
    token = admin_token(b)
    authed(b, token, "POST", "/api/denylist", {"domain": "tracker.example.org"})
    for name in ("a.example.com", "tracker.example.org", "a.example.com"):
        b.query(name)
    b.query("a.example.com", "AAAA")
    wait_logged(b, face, 4)
    hdr = {"X-FTL-SID": face.login()["sid"]}

    body = face.call("GET", "/api/stats/summary", headers=hdr)[2]
    q = body["queries"]
    assert q["total"] >= 4 and q["blocked"] >= 1 and q["types"]["A"] >= 3 and q["types"]["AAAA"] >= 1
    assert q["status"]["GRAVITY"] == q["blocked"] and sum(q["status"].values()) == q["total"]
    assert body["gravity"]["domains_being_blocked"] == 0  # no lists yet: the deny list is not gravity
    body = face.call("GET", "/api/stats/top_domains?blocked=true&count=1", headers=hdr)[2]
    assert body["domains"] == [{"domain": "tracker.example.org", "count": 1}]
    body = face.call("GET", "/api/stats/top_clients?count=5", headers=hdr)[2]
    assert body["clients"][0]["ip"] == "127.0.0.1" and body["clients"][0]["count"] >= 4
    assert face.call("GET", "/api/stats/top_domains?count=zero", headers=hdr)[0] == 400
    body = face.call("GET", "/api/stats/recent_blocked", headers=hdr)[2]
    assert body["blocked"] == ["tracker.example.org"]
    body = face.call("GET", "/api/stats/query_types", headers=hdr)[2]
    assert body["types"]["A"] >= 3
    history = face.call("GET", "/api/history", headers=hdr)[2]["history"]
    assert len(history) >= 144 and sum(h["total"] for h in history) >= 4
    assert sum(h["blocked"] for h in history) >= 1
    ftl = face.call("GET", "/api/info/ftl", headers=hdr)[2]["ftl"]
    assert ftl["database"]["domains"]["denied"]["total"] == 1 and ftl["pid"] > 0
    padd = face.call("GET", "/api/padd", headers=hdr)[2]
    assert padd["top_blocked"] == "tracker.example.org" and padd["blocking"] == "enabled"
    version = face.call("GET", "/api/info/version", headers=hdr)[2]["version"]
    for part in ("core", "web", "ftl"):
        assert version[part]["remote"]["hash"] is None and version[part]["local"]["version"]

    # v5: flat fields with an API token as auth, [] without.
    api_token = authed(b, token, "POST", "/api/tokens", {"name": "v5", "scope": "read"})[1]["token"]
    status, _, body = face.call("GET", f"/admin/api.php?summaryRaw&auth={api_token}")
    assert status == 200 and body["dns_queries_today"] >= 4 and body["ads_blocked_today"] >= 1
    assert body["status"] == "enabled" and body["unique_clients"] >= 1
    assert face.call("GET", "/admin/api.php?summaryRaw")[2] == []
    assert face.call("GET", "/admin/api.php?summaryRaw&auth=brw_wrong")[2] == []
    assert face.call("GET", f"/admin/api.php?disable=30&auth={api_token}")[2] == {"status": "disabled"}
    assert face.call("GET", f"/admin/api.php?status&auth={api_token}")[2] == {"status": "disabled"}
    assert face.call("GET", f"/admin/api.php?enable&auth={api_token}")[2] == {"status": "enabled"}


def test_config_patch_applies_what_burrow_has(pihole):
    b, face = pihole
    hdr = {"X-FTL-SID": face.login()["sid"]}
    config = face.call("GET", "/api/config", headers=hdr)[2]["config"]
    assert config["dns"]["hosts"] == [] and config["dns"]["blocking"] == {"active": True, "mode": "NULL"}
    dns_patch = {
        "hosts": ["192.168.1.20 nas.lan printer.lan", "fd00::20 nas.lan"],
        "cnameRecords": ["music.lan,nas.lan,600"],
        "revServers": ["true,192.168.1.0/24,192.168.1.1#5353,lan"],
        "blocking": {"mode": "NODATA"},
        "unknownToBurrow": True,
    }
    status, _, body = face.call("PATCH", "/api/config", {"config": {"dns": dns_patch, "dhcp": None, "ntp": None}},
                                headers=hdr)
    assert status == 200, body
    got = body["config"]["dns"]
    assert sorted(got["hosts"]) == ["192.168.1.20 nas.lan", "192.168.1.20 printer.lan", "fd00::20 nas.lan"]
    assert got["cnameRecords"] == ["music.lan,nas.lan,600"]
    assert got["revServers"] == ["true,192.168.1.0/24,192.168.1.1#5353,lan"]
    assert got["blocking"]["mode"] == "NODATA"
    assert b.query("printer.lan").answer[0][0].address == "192.168.1.20"
    assert b.query("nas.lan", "AAAA").answer[0][0].address == "fd00::20"
    assert str(b.query("music.lan").answer[0][0].target) == "nas.lan."
    assert face.call("GET", "/api/config/dns/revServers", headers=hdr)[2]["config"] == \
        {"dns": {"revServers": got["revServers"]}}

    # A bad entry anywhere: 400 naming it, and nothing changes.
    for bad in ({"hosts": ["300.1.1.1 x.lan"]}, {"cnameRecords": ["only-one-part"]},
                {"revServers": ["true,10.0.0.0/13,10.0.0.1,corp"]}, {"blocking": {"mode": "IP_NODATA_AAAA"}},
                {"upstreams": ["not an address"]}, {"hosts": "192.168.1.2 x.lan"},
                {"hosts": ["192.168.1.30 new.lan"], "cnameRecords": ["a.lan,,x"]}):
        status, _, body = face.call("PATCH", "/api/config", {"config": {"dns": bad}}, headers=hdr)
        assert status == 400 and body["error"]["key"] == "bad_request" and body["error"]["hint"], (bad, body)
    assert face.call("GET", "/api/config", headers=hdr)[2]["config"]["dns"] == got

    # Replacing with fewer entries removes the rest; blocking.active pauses.
    status, _, body = face.call("PATCH", "/api/config", {"config": {"dns": {
        "hosts": ["192.168.1.21 nas.lan"], "cnameRecords": [], "revServers": [],
        "blocking": {"active": False}}}}, headers=hdr)
    assert status == 200
    got = body["config"]["dns"]
    assert got["hosts"] == ["192.168.1.21 nas.lan"] and got["cnameRecords"] == [] and got["revServers"] == []
    assert got["blocking"]["active"] is False
    assert face.call("GET", "/api/dns/blocking", headers=hdr)[2]["blocking"] == "disabled"
    assert b.query("printer.lan").rcode() != 0 or not b.query("printer.lan").answer


def test_gravity_updates_the_lists(pihole):
    b, face = pihole
    hdr = {"X-FTL-SID": face.login()["sid"]}
    status, headers, text = face.call("POST", "/api/action/gravity", headers=hdr)
    assert status == 200 and headers["Content-Type"].startswith("text/plain") and "gravity domains" in text


def test_wrong_passwords_count_toward_the_lockout(tmp_path, upstream):
    b, face = made(tmp_path, upstream)
    with b:
        admin_token(b)
        statuses = [face.call("POST", "/api/auth", {"password": f"wrong {i}"})[0] for i in range(6)]
        assert statuses[:5] == [401] * 5 and statuses[5] == 429
        status, headers, body = face.call("POST", "/api/auth", {"password": ADMIN_PASSWORD})
        assert status == 429 and body["error"]["key"] == "rate_limiting" and int(headers["Retry-After"]) > 0


def test_teleporter_round_trip_in_nebula_sync_order(tmp_path, upstream):
    """Two Burrows synced as nebula-sync does (its internal/sync/sync.go order): sign in to the
    primary and the replica, GET the primary's /api/teleporter, POST it to the replica (multipart
    "file" and an "import" selection), GET the primary's /api/config and PATCH its dns part into
    the replica (other sections null), POST /api/action/gravity, DELETE both sessions with the
    "sid" header. The replica then answers as the primary does."""
    web = tmp_path / "lists-web"
    web.mkdir()
    (web / "ads.txt").write_text("0.0.0.0 listed.sync.test\n0.0.0.0 excused.sync.test\n")
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(web), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    primary, pface = made(tmp_path, upstream, name="primary")
    replica, rface = made(tmp_path, upstream, name="replica")
    primary.start()
    replica.start()
    try:
        token = admin_token(primary)
        for path, body in (
                ("/api/groups", {"name": "kids", "description": "tablets"}),
                ("/api/clients", {"client": "127.0.0.7", "name": "tablet", "groups": ["kids"]}),
                ("/api/lists", {"name": "Ads", "source": f"http://127.0.0.1:{server.server_port}/ads.txt"}),
                ("/api/denylist", {"domain": "denied.sync.test"}),
                ("/api/whitelist", {"domain": "excused.sync.test"}),
                ("/api/localrecords", {"domain": "nas.sync.test", "type": "A", "ips": ["192.168.1.5"]}),
                ("/api/localrecords", {"domain": "files.sync.test", "type": "CNAME", "target": "nas.sync.test"})):
            status, answer = authed(primary, token, "POST", path, body)
            assert status in (200, 201), (path, answer)
        assert authed(primary, token, "POST", "/api/blocklist/reload")[1]["status"] == "ok"
        admin_token(replica)
        names = [("listed.sync.test", "A"), ("excused.sync.test", "A"), ("denied.sync.test", "A"),
                 ("nas.sync.test", "A"), ("files.sync.test", "A"), ("www.example.com", "A")]

        def answers(b: BurrowProcess) -> list:
            out = []
            for name, rdtype in names:
                reply = b.query(name, rdtype)
                out.append((name, dns.rcode.to_text(reply.rcode()),
                            sorted(rr.to_text() for rrset in reply.answer for rr in rrset)))
            return out

        expected = answers(primary)
        assert expected != answers(replica)  # they differ before the sync
        assert expected[0][2] == ["0.0.0.0"] and expected[2][2] == ["0.0.0.0"]  # listed, denied
        assert expected[1][2] and expected[1][2] != ["0.0.0.0"]  # listed but allowed
        assert expected[3][2] == ["192.168.1.5"]

        psid, rsid = pface.login()["sid"], rface.login()["sid"]
        conn = http.client.HTTPConnection("127.0.0.1", pface.port, timeout=30)
        conn.request("GET", "/api/teleporter", headers={"sid": psid})
        resp = conn.getresponse()
        archive = resp.read()
        conn.close()
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/zip"
        assert zipfile.ZipFile(io.BytesIO(archive)).namelist()

        selection = {"config": True, "dhcp_leases": False,
                     "gravity": {t: True for t in ("group", "adlist", "adlist_by_group", "domainlist",
                                                   "domainlist_by_group", "client", "client_by_group")}}
        boundary = "nebulasyncboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"config.zip\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + archive + \
               (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"import\"\r\n\r\n"
                f"{json.dumps(selection)}\r\n--{boundary}--\r\n").encode()
        multipart = f"multipart/form-data; boundary={boundary}"
        status, _, result = rface.call("POST", "/api/teleporter", raw=body,
                                       headers={"sid": rsid, "Content-Type": multipart})
        assert status == 200, result
        assert {"etc/pihole/pihole.toml", "etc/pihole/gravity.db->adlist"} <= set(result["processed"])

        config = pface.call("GET", "/api/config", headers={"sid": psid})[2]["config"]
        patch = {"config": {"dns": config["dns"], "dhcp": None, "ntp": None, "resolver": None, "database": None,
                            "misc": None, "debug": None}}
        status, _, body = rface.call("PATCH", "/api/config", patch, headers={"sid": rsid})
        assert status == 200, body
        status, _, text = rface.call("POST", "/api/action/gravity", headers={"sid": rsid})
        assert status == 200, text
        assert pface.call("DELETE", "/api/auth", headers={"sid": psid})[0] == 204
        assert rface.call("DELETE", "/api/auth", headers={"sid": rsid})[0] == 204

        wait_for(lambda: answers(replica) == expected, what="the replica to answer as the primary")
        rtoken = admin_token(replica)
        groups = {g["name"] for g in authed(replica, rtoken, "GET", "/api/groups")[1]["groups"]}
        assert "kids" in groups
        clients = authed(replica, rtoken, "GET", "/api/clients")[1]["clients"]
        assert any(c["client"] == "127.0.0.7" and "kids" in c["groups"] for c in clients)

        # A broken archive: Pi-hole's invalid_zip, and nothing changes.
        bad = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.zip\"\r\n\r\n"
               f"not a zip\r\n--{boundary}--\r\n").encode()
        rsid = rface.login()["sid"]
        status, _, body = rface.call("POST", "/api/teleporter", raw=bad,
                                     headers={"sid": rsid, "Content-Type": multipart})
        assert status == 400 and body["error"]["key"] == "invalid_zip"
        assert answers(replica) == expected
    finally:
        primary.stop()
        replica.stop()
        server.shutdown()
        server.server_close()


def test_an_admin_with_2fa_signs_in_with_a_code(pihole):
    b, face = pihole
    token = admin_token(b)
    status, enrolment = authed(b, token, "POST", "/api/auth/2fa/enrol")
    assert status == 200, enrolment
    status, body = authed(b, token, "POST", "/api/auth/2fa/confirm",
                          {"code": pyotp.TOTP(enrolment["secret"]).now()})
    assert status == 200, body
    recovery = body["recovery_codes"]
    status, _, body = face.call("GET", "/api/auth")
    assert status == 401 and body["session"]["totp"] is True
    status, _, body = face.call("POST", "/api/auth", {"password": ADMIN_PASSWORD})
    assert status == 400 and body["error"]["message"] == "No 2FA token found in JSON payload"
    status, _, body = face.call("POST", "/api/auth", {"password": ADMIN_PASSWORD, "totp": "zzzzz-zzzzz"})
    assert status == 401 and body["error"] == {"key": "unauthorized", "message": "Invalid 2FA token", "hint": None}
    session = face.login(totp=recovery[0])  # a recovery code stands for a code, as on Burrow's own sign-in
    assert session["valid"] is True and session["totp"] is True


def test_a_large_config_patch_is_read_whole(pihole):
    """More than the 64 KiB read with the request head: 3000 host lines."""
    b, face = pihole
    hdr = {"X-FTL-SID": face.login()["sid"]}
    hosts = [f"10.1.{i // 250}.{i % 250 + 1} host{i}.big.lan" for i in range(3000)]
    raw = json.dumps({"config": {"dns": {"hosts": hosts}}}).encode()
    assert len(raw) > 64 * 1024
    status, _, body = face.call("PATCH", "/api/config", raw=raw, headers={**hdr, "Content-Type": "application/json"})
    assert status == 200, body
    assert len(body["config"]["dns"]["hosts"]) == 3000
    assert b.query("host2999.big.lan").answer[0][0].address == "10.1.11.250"


def test_a_port_it_cannot_bind_is_a_fault_not_a_failed_start(tmp_path, upstream):
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        b = BurrowProcess(tmp_path, [upstream.address], {"compat": {"pihole_address": f"127.0.0.1:{port}"}})
        with b:
            token = admin_token(b)
            system = authed(b, token, "GET", "/api/system")[1]
            reasons = " ".join(system["status"]["reasons"])
            assert f"127.0.0.1:{port}" in reasons and "compat.pihole_address" in reasons
            assert b.query("www.example.com").rcode() == 0  # DNS and the admin page carry on
            assert b.http("GET", "/readyz")[0] == 200
    finally:
        taken.close()


def test_other_names_and_other_pages_are_refused(pihole):
    """As on Burrow's own API (docs/security.md): a Host that is not Burrow's (DNS rebinding) gets
    421; a write from another web page (an Origin not this one) gets 403, so a page cannot spend
    the owner's sign-in attempts."""
    b, face = pihole
    status, _, body = face.call("GET", "/api/auth", headers={"Host": "rebind.example:8081"})
    assert status == 421
    status, _, body = face.call("POST", "/api/auth", {"password": "guess"},
                                headers={"Origin": "http://ads.example", "Content-Type": "application/json"})
    assert status == 403
    status, _, body = face.call("POST", "/api/auth", {"password": ADMIN_PASSWORD},
                                headers={"Origin": f"http://127.0.0.1:{face.port}"})
    assert status == 200 and body["session"]["valid"] is True
