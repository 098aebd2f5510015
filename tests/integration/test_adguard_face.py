"""The AdGuard Home face (/control/ on the main listener) against the running process, through
the client library Home Assistant's adguard integration uses (``adguardhome``, pinned as its
manifest pins it) and plain HTTP for what the library does not touch.

The calls are Home Assistant's: the config flow's version check (``status().supported``), the
state coordinator's gather every 10 s (status, filtering config, parental, query log config,
safe browsing, safe search), the statistics coordinator's (stats, block lists), the update
coordinator's (version.json), the switches, and the services add_url / remove_url /
enable_url / disable_url / refresh. Then what adguardhome-sync asks of a replica.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import itertools
import json
from datetime import timedelta

import aiohttp
import pytest

adguardhome = pytest.importorskip("adguardhome")
from adguardhome import AdGuardHome, AdGuardHomeAuthenticationError, AdGuardHomeResponseError  # noqa: E402

from tests.support.api_client import ADMIN_PASSWORD, admin_token, authed  # noqa: E402
from tests.support.burrow_proc import BurrowProcess  # noqa: E402
from tests.support.timing import wait_for  # noqa: E402


@pytest.fixture(scope="module")
def burrow(up, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("adguard")
    lists = workdir / "data" / "lists"
    lists.mkdir(parents=True)
    (lists / "ads.txt").write_text("0.0.0.0 ads.face.test\n0.0.0.0 tracker.face.test\n")
    (lists / "ok.txt").write_text("good.face.test\n")
    with BurrowProcess(workdir, [up.address]) as b:
        b.token = admin_token(b)
        yield b


_addresses = itertools.count(2)


@pytest.fixture
def source():
    """A loopback address of the test's own: each address has its own budget under the
    listener's request limiter, which this module's many calls would otherwise exhaust."""
    return f"127.0.0.{next(_addresses)}"


@contextlib.asynccontextmanager
async def client(b, source, username="admin", password=ADMIN_PASSWORD):
    """The library's client as Home Assistant makes it (its own aiohttp session), from ``source``."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0))) as session:
        yield AdGuardHome(f"http://127.0.0.1:{b.web_port}", username=username, password=password, session=session)


def run(coro):
    return asyncio.run(coro)


def raw(b, source, method, path, body=None, headers=None, auth=("admin", ADMIN_PASSWORD)):
    """(status, headers, body bytes) of one plain HTTP request from ``source``."""
    conn = http.client.HTTPConnection("127.0.0.1", b.web_port, timeout=30, source_address=(source, 0))
    hdrs = dict(headers or {})
    if auth is not None:
        hdrs["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=hdrs)
    res = conn.getresponse()
    out = res.status, dict(res.getheaders()), res.read()
    conn.close()
    return out


def test_home_assistant_setup_and_polling(burrow, source):
    for name in ("one.face.test", "two.face.test", "two.face.test"):
        assert burrow.query(name).rcode() == 0

    async def flow():
        async with client(burrow, source) as adguard:
            status = await adguard.status()
            # the config flow's check: a version the library supports
            assert status.supported and str(status.version).startswith("v0.107.79+burrow.")
            assert status.protection_enabled is True and status.protection_resumes_in is None
            assert status.dns_port == burrow.dns_port and status.http_port == burrow.web_port
            assert status.dns_addresses == ("127.0.0.1",) and status.running is True
            # the state coordinator, all at once as Home Assistant gathers them
            _, filtering, parental, query_log, safe_browsing, safe_search = await asyncio.gather(
                adguard.status(), adguard.filtering.config(), adguard.parental.enabled(),
                adguard.querylog.config(), adguard.safebrowsing.enabled(), adguard.safesearch.config())
            assert filtering.enabled is True and filtering.update_interval == timedelta(hours=24)
            assert parental is False and safe_browsing is False and safe_search.enabled is False
            assert query_log.enabled is True and query_log.retention == timedelta(days=7)
            assert query_log.anonymize_client_ip is False
            update = await adguard.update.get()
            assert update.disabled is True and update.new_version is None

            async def counted():
                stats = await adguard.stats.get()
                # the counts are live; the top lists read the query log, written every second
                return stats if stats.top_queried_domains.get("two.face.test") == 2 else None

            deadline = asyncio.get_running_loop().time() + 30
            while (stats := await counted()) is None:
                assert asyncio.get_running_loop().time() < deadline, "the queries never reached the stats"
                await asyncio.sleep(0.25)
            assert stats.time_unit == "hours" and len(stats.dns_queries_history) == 24
            assert sum(stats.dns_queries_history) >= 3
            assert stats.top_queried_domains.get("two.face.test") == 2
            assert stats.top_clients.get("127.0.0.1", 0) >= 3
            assert stats.blocked_safebrowsing == stats.blocked_parental == stats.enforced_safesearch == 0
            assert stats.avg_processing_time < timedelta(seconds=10)
            assert await adguard.filtering.blocklists.list() == ()

            log = await adguard.querylog.get(limit=10)
            names = [e.question.name for e in log.entries]
            assert "two.face.test" in names and log.entries[0].client_ip == "127.0.0.1"
            assert all(e.reason == "NotFilteredNotFound" for e in log.entries)

    run(flow())


def test_home_assistant_switches(burrow, source):
    async def flow():
        async with client(burrow, source) as adguard:
            await adguard.disable_protection(timedelta(minutes=10))
            status = await adguard.status()
            assert status.protection_enabled is False
            assert timedelta(minutes=9) < status.protection_resumes_in <= timedelta(minutes=10)
            blocking = authed(burrow, burrow.token, "GET", "/api/blocking")[1]
            assert blocking["enabled"] is False and 540 < blocking["remaining_seconds"] <= 600
            await adguard.enable_protection()
            assert (await adguard.status()).protection_enabled is True
            await adguard.disable_protection()  # until turned on again
            assert authed(burrow, burrow.token, "GET", "/api/blocking")[1]["remaining_seconds"] is None
            await adguard.enable_protection()
            assert authed(burrow, burrow.token, "GET", "/api/blocking")[1]["enabled"] is True

            # what Burrow does not have is refused, saying so, and stays off
            for feature in (adguard.parental, adguard.safebrowsing, adguard.safesearch):
                with pytest.raises(AdGuardHomeResponseError) as refused:
                    await feature.enable()
                assert refused.value.status == 501 and "Burrow has no" in refused.value.body
                await feature.disable()
            assert await adguard.parental.enabled() is False
            assert (await adguard.safesearch.config()).enabled is False
            with pytest.raises(AdGuardHomeResponseError) as refused:
                await adguard.filtering.disable()
            assert refused.value.status == 501
            await adguard.filtering.enable()
            assert (await adguard.filtering.config()).enabled is True
            with pytest.raises(AdGuardHomeResponseError) as refused:
                await adguard.querylog.disable()
            assert refused.value.status == 501
            await adguard.querylog.enable()
            assert (await adguard.querylog.config()).enabled is True

    run(flow())


def test_home_assistant_list_services(burrow, source):
    async def flow():
        async with client(burrow, source) as adguard:
            lists = adguard.filtering.blocklists
            await lists.add("ads.txt", name="Face ads")
            added = await lists.get("ads.txt")
            assert added is not None and added.name == "Face ads" and added.enabled
            rows = authed(burrow, burrow.token, "GET", "/api/lists")[1]["lists"]
            burrow_row = next(r for r in rows if r["source"] == "ads.txt")
            assert burrow_row["kind"] == "block" and burrow_row["id"] == added.id
            # the list is downloaded (copied) and compiled: its rules count, and it blocks
            def blocked() -> bool:
                answer = burrow.query("ads.face.test")
                return answer.rcode() == 3 or any(getattr(rr, "address", "") == "0.0.0.0"
                                                  for rrset in answer.answer for rr in rrset)

            wait_for(blocked, what="the added list to block")

            async def rules():
                return (await lists.get("ads.txt")).rules_count

            deadline = asyncio.get_running_loop().time() + 30
            while await rules() != 2:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.25)
            await lists.disable("ads.txt")
            assert (await lists.get("ads.txt")).enabled is False
            assert authed(burrow, burrow.token, "GET", f"/api/lists/{added.id}")[1]["enabled"] is False
            await lists.enable("ads.txt")
            assert (await lists.get("ads.txt")).enabled is True
            assert await lists.refresh() >= 0
            # allow lists are AdGuard's whitelist filters
            await adguard.filtering.allowlists.add("ok.txt", name="Face allow")
            assert [a.url for a in await adguard.filtering.allowlists.list()] == ["ok.txt"]
            assert all(b.url != "ok.txt" for b in await lists.list())
            await adguard.filtering.allowlists.remove("ok.txt")
            await lists.remove("ads.txt")
            assert await lists.get("ads.txt") is None
            assert all(r["source"] != "ads.txt" for r in authed(burrow, burrow.token, "GET", "/api/lists")[1]["lists"])
            with pytest.raises(AdGuardHomeResponseError) as refused:
                await lists.remove("ads.txt")
            assert refused.value.status == 400

    run(flow())


def test_query_log_retention_follows_privacy_setting(burrow, source):
    async def flow():
        async with client(burrow, source) as adguard:
            config = await adguard.querylog.config()
            from dataclasses import replace
            await adguard.querylog.set_config(replace(config, retention=timedelta(days=30)))
            assert (await adguard.querylog.config()).retention == timedelta(days=30)
            assert authed(burrow, burrow.token, "GET", "/api/config")[1]["storage"]["query_log_retention_days"] == 30
            with pytest.raises(AdGuardHomeResponseError) as refused:  # 6 hours: not whole days
                await adguard.querylog.set_config(replace(config, retention=timedelta(hours=6)))
            assert refused.value.status == 400
            with pytest.raises(AdGuardHomeResponseError):
                await adguard.querylog.set_config(replace(config, anonymize_client_ip=True))
            assert (await adguard.querylog.config()).retention == timedelta(days=30)  # nothing changed
            await adguard.querylog.set_config(replace(config, retention=timedelta(days=7)))

    run(flow())
    status, _, body = raw(burrow, source, "GET", "/control/querylog_info")
    assert status == 200 and json.loads(body) == {"enabled": True, "interval": 7, "anonymize_client_ip": False}
    assert raw(burrow, source, "POST", "/control/querylog_config", {"interval": 90})[0] == 200
    assert json.loads(raw(burrow, source, "GET", "/control/querylog_info")[2])["interval"] == 90
    assert raw(burrow, source, "POST", "/control/querylog_config", {"interval": 0.25})[0] == 400
    assert raw(burrow, source, "POST", "/control/querylog_config", {"interval": 7})[0] == 200


def test_rewrites_are_local_records(burrow, source):
    async def flow():
        async with client(burrow, source) as adguard:
            await adguard.rewrite.add("nas.face.test", "192.168.1.50")
            await adguard.rewrite.add("nas.face.test", "192.168.1.51")
            await adguard.rewrite.add("alias.face.test", "nas.face.test")
            rules = {(r.domain, r.answer) for r in await adguard.rewrite.get()}
            assert {("nas.face.test", "192.168.1.50"), ("nas.face.test", "192.168.1.51"),
                    ("alias.face.test", "nas.face.test")} <= rules
            answer = burrow.query("nas.face.test")
            assert sorted(r.address for r in answer.answer[0]) == ["192.168.1.50", "192.168.1.51"]
            await adguard.rewrite.remove("nas.face.test", "192.168.1.50")
            records = authed(burrow, burrow.token, "GET", "/api/localrecords")[1]["records"]
            nas = next(r for r in records if r["domain"] == "nas.face.test.")
            assert nas["ips"] == ["192.168.1.51"]
            with pytest.raises(AdGuardHomeResponseError) as refused:
                await adguard.rewrite.add("off.face.test", "192.168.1.9", enabled=False)
            assert refused.value.status == 501
            await adguard.rewrite.remove("nas.face.test", "192.168.1.51")
            await adguard.rewrite.remove("alias.face.test", "nas.face.test")
            assert await adguard.rewrite.get() == ()

    run(flow())


def test_clients_are_burrows_client_entries(burrow, source):
    from dataclasses import replace

    from adguardhome.clients import Client

    async def flow():
        async with client(burrow, source) as adguard:
            await adguard.clients.add(Client(name="laptop", ids=("192.168.7.10", "192.168.7.0/28")))
            entries = authed(burrow, burrow.token, "GET", "/api/clients")[1]["clients"]
            mine = [(c["client"], c["name"], c["groups"]) for c in entries if c["name"] == "laptop"]
            assert mine == [("192.168.7.10", "laptop", ["default"]), ("192.168.7.0/28", "laptop", ["default"])]
            laptop = next(c for c in (await adguard.clients.get()).configured if c.name == "laptop")
            assert laptop.ids == ("192.168.7.10", "192.168.7.0/28") and laptop.use_global_settings
            # renamed, one id dropped and one added: the kept entry keeps its id and groups
            kept = next(c["id"] for c in entries if c["client"] == "192.168.7.10")
            await adguard.clients.update("laptop", replace(laptop, name="work laptop", ids=("192.168.7.10", "fd00::7")))
            entries = authed(burrow, burrow.token, "GET", "/api/clients")[1]["clients"]
            mine = sorted((c["client"], c["name"]) for c in entries if c["name"] == "work laptop")
            assert mine == [("192.168.7.10", "work laptop"), ("fd00::7", "work laptop")]
            assert any(c["id"] == kept for c in entries)
            for bad, status in ((Client(name="phone", ids=("aa:bb:cc:dd:ee:ff",)), 400),
                                (Client(name="phone", ids=("192.168.7.10",)), 400),  # another client's
                                (Client(name="phone", ids=("192.168.7.20",), upstreams=("9.9.9.9",)), 501),
                                (Client(name="work laptop", ids=("192.168.7.21",)), 400)):  # the name exists
                with pytest.raises(AdGuardHomeResponseError) as refused:
                    await adguard.clients.add(bad)
                assert refused.value.status == status
            await adguard.clients.remove("work laptop")
            assert all(c.name != "work laptop" for c in (await adguard.clients.get()).configured)
            entries = authed(burrow, burrow.token, "GET", "/api/clients")[1]["clients"]
            assert all(not c["client"].startswith(("192.168.7.", "fd00::7")) for c in entries)

    run(flow())


def test_basic_auth_and_roles(burrow, source):
    # a wrong password, no credentials, a Bearer token: a bare 401 and never a Basic challenge
    for auth in (("admin", "wrong-password"), None):
        status, headers, body = raw(burrow, source, "GET", "/control/status", auth=auth)
        assert status == 401 and body == b"" and "WWW-Authenticate" not in headers
    status, headers, _ = raw(burrow, source, "GET", "/control/status", auth=None,
                             headers={"Authorization": f"Bearer {burrow.token}"})
    assert status == 401 and "WWW-Authenticate" not in headers

    async def wrong():
        async with client(burrow, source, password="not-it") as adguard:
            await adguard.status()

    with pytest.raises(AdGuardHomeAuthenticationError):
        run(wrong())
    # any name with an API token as the password; a read-scoped token only reads
    status, made = authed(burrow, burrow.token, "POST", "/api/tokens", {"name": "ha-face-read", "scope": "read"})
    assert status == 201
    assert raw(burrow, source, "GET", "/control/status", auth=("homeassistant", made["token"]))[0] == 200
    status, _, body = raw(burrow, source, "POST", "/control/protection", {"enabled": False},
                          auth=("homeassistant", made["token"]))
    assert status == 403
    assert authed(burrow, burrow.token, "GET", "/api/blocking")[1]["enabled"] is True
    status, made = authed(burrow, burrow.token, "POST", "/api/tokens", {"name": "ha-face-admin", "scope": "admin"})
    assert raw(burrow, source, "POST", "/control/dns_config", {"protection_enabled": False},
               auth=("x", made["token"]))[0] == 200
    assert authed(burrow, burrow.token, "GET", "/api/blocking")[1]["enabled"] is False
    assert raw(burrow, source, "POST", "/control/dns_config", {"protection_enabled": True, "ratelimit": 5},
               auth=("x", made["token"]))[0] == 400  # what does not map changes nothing
    assert authed(burrow, burrow.token, "GET", "/api/blocking")[1]["enabled"] is False
    assert raw(burrow, source, "POST", "/control/dns_config", {"protection_enabled": True},
               auth=("x", made["token"]))[0] == 200


def test_cross_site_writes_are_refused(burrow, source):
    # a write from another web page: refused before anything runs, credentials or not
    status, _, _ = raw(burrow, source, "POST", "/control/protection", {"enabled": False},
                       headers={"Origin": "http://evil.example"})
    assert status == 403
    # the page's session cookie is not a credential here
    status, _, _ = raw(burrow, source, "POST", "/control/protection", {"enabled": False}, auth=None,
                       headers={"Cookie": f"burrow_session={burrow.token}"})
    assert status == 401
    assert authed(burrow, burrow.token, "GET", "/api/blocking")[1]["enabled"] is True
    # a request naming another host (DNS rebinding) gets the listener's 421
    assert raw(burrow, source, "GET", "/control/status", headers={"Host": "evil.example"})[0] == 421


def test_face_is_not_in_burrows_openapi(burrow, source):
    status, document = burrow.http("GET", "/openapi.json")
    assert status == 200 and not [p for p in document["paths"] if p.startswith("/control")]


def test_adguardhome_sync_replica_calls(burrow, source):
    """What adguardhome-sync (bakito/adguardhome-sync, pkg/client) reads and writes on a replica,
    as far as it maps: status, filtering, rewrites, clients, query log config, protection."""
    def call(*args, **kw):
        return raw(burrow, source, *args, **kw)

    def ok(answer) -> bool:
        return answer[0] == 200

    status, _, body = call("GET", "/control/status")
    assert status == 200 and json.loads(body)["version"].startswith("v0.107.79+burrow.")
    assert json.loads(call("GET", "/control/filtering/status")[2])["user_rules"] == []
    assert ok(call("POST", "/control/filtering/add_url", {"name": "sync", "url": "ads.txt", "whitelist": False}))
    renamed = {"name": "sync 2", "url": "ads.txt", "enabled": True}
    assert ok(call("POST", "/control/filtering/set_url", {"url": "ads.txt", "whitelist": False, "data": renamed}))
    filters = json.loads(call("GET", "/control/filtering/status")[2])["filters"]
    assert [(f["name"], f["url"]) for f in filters] == [("sync 2", "ads.txt")]
    assert ok(call("POST", "/control/filtering/config", {"enabled": True, "interval": 12}))
    assert json.loads(call("GET", "/control/filtering/status")[2])["interval"] == 12
    assert authed(burrow, burrow.token, "GET", f"/api/lists/{filters[0]['id']}")[1]["update_interval"] == 12 * 3600
    assert call("POST", "/control/filtering/config", {"enabled": True, "interval": 0})[0] == 400
    assert ok(call("POST", "/control/filtering/remove_url", {"url": "ads.txt", "whitelist": False}))
    # the user rules show Burrow's allow and deny lists
    for path, entry in (("/api/denylist", "deny.face.test"), ("/api/denylist", "*.ads.face.test"),
                        ("/api/whitelist", "ok.face.test")):
        assert authed(burrow, burrow.token, "POST", path, {"domain": entry})[0] in (200, 201)
    rules = json.loads(call("GET", "/control/filtering/status")[2])["user_rules"]
    assert rules == ["|deny.face.test^", "/\\.ads\\.face\\.test$/", "@@|ok.face.test^"]
    # clients: Burrow's client entries
    assert authed(burrow, burrow.token, "POST", "/api/groups", {"name": "kids"})[0] in (200, 201)
    assert authed(burrow, burrow.token, "POST", "/api/clients",
                  {"client": "192.168.1.77", "groups": ["kids"], "name": "tablet"})[0] in (200, 201)
    clients = json.loads(call("GET", "/control/clients")[2])["clients"]
    assert [(c["name"], c["ids"]) for c in clients] == [("tablet", ["192.168.1.77"])]
    # the query log's config, the protection, the rewrite settings
    status, _, body = call("GET", "/control/querylog/config")
    assert status == 200 and json.loads(body)["interval"] == 7 * 86_400_000
    assert ok(call("PUT", "/control/querylog/config/update", json.loads(body)))
    assert ok(call("POST", "/control/protection", {"enabled": True}))
    assert json.loads(call("GET", "/control/rewrite/settings")[2]) == {"enabled": True}
    assert ok(call("PUT", "/control/rewrite/settings/update", {"enabled": True}))
    assert call("PUT", "/control/rewrite/settings/update", {"enabled": False})[0] == 501
    # a rewrite changed in place (the sync's "update"): the old answer goes, the new one comes
    assert ok(call("POST", "/control/rewrite/add", {"domain": "tv.face.test", "answer": "192.168.1.60"}))
    assert ok(call("PUT", "/control/rewrite/update",
                  {"target": {"domain": "tv.face.test", "answer": "192.168.1.60"},
                   "update": {"domain": "tv.face.test", "answer": "192.168.1.61", "enabled": True}}))
    assert [r.address for r in burrow.query("tv.face.test").answer[0]] == ["192.168.1.61"]
    status, _, body = call("PUT", "/control/rewrite/update",
                          {"target": {"domain": "tv.face.test", "answer": "192.168.1.60"},
                           "update": {"answer": "192.168.1.62"}})
    assert status == 400 and b"no rewrite" in body
    assert ok(call("POST", "/control/rewrite/delete", {"domain": "tv.face.test", "answer": "192.168.1.61"}))
    # the profile (the sync's general settings) and the statistics' config, which Burrow fixes
    status, _, body = call("GET", "/control/profile")
    assert status == 200 and json.loads(body) == {"name": "admin", "language": "en", "theme": "auto"}
    assert ok(call("PUT", "/control/profile/update", {"name": "admin", "language": "en", "theme": "auto"}))
    assert call("PUT", "/control/profile/update", {"language": "de", "theme": "dark"})[0] == 501
    status, _, body = call("GET", "/control/stats/config")
    assert status == 200 and json.loads(body)["interval"] == 7 * 86_400_000
    assert ok(call("PUT", "/control/stats/config/update", json.loads(body)))
    assert call("PUT", "/control/stats/config/update", {"enabled": False, "interval": 86_400_000})[0] == 501
    # the safe browsing, parental and safe search state the sync reads and sets: off, and off it stays
    for feature in ("parental", "safebrowsing"):
        assert json.loads(call("GET", f"/control/{feature}/status")[2]) == {"enabled": False}
        assert ok(call("POST", f"/control/{feature}/disable"))
    settings = json.loads(call("GET", "/control/safesearch/status")[2])
    assert ok(call("PUT", "/control/safesearch/settings", settings))
    assert call("PUT", "/control/safesearch/settings", {**settings, "youtube": True})[0] == 501
    # what Burrow does not serve is a 404, which the clients read as "not supported"
    assert call("GET", "/control/dhcp/status")[0] == 404
