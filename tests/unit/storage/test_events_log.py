"""EventLog: events from the bus land in the settings DB in batches, without secrets, capped,
and GET /api/events pages and filters them."""

from __future__ import annotations

import asyncio
import json

import pytest
from microdot.test_client import TestClient

from burrow.api import events_api
from burrow.api.routes import Api
from burrow.storage.events import EventLog, normalize, publish_event
from burrow.storage.settings import MIGRATIONS, SettingsDB
from burrow.telemetry.events import EventBus
from tests.support.timing import until

from tests.support.fakes import VIEWER, FakeAuth

ALL_MIGRATIONS = MIGRATIONS  # includes the events table (migration 3)


@pytest.fixture
def db(tmp_path):
    d = SettingsDB(tmp_path / "settings.db", migrations=ALL_MIGRATIONS)
    yield d
    d.close()


def run(coro):
    return asyncio.run(coro)


def test_migration_creates_table_and_ts_index(db):
    cols = [r[1] for r in db.conn.execute("PRAGMA table_info(events)")]
    assert cols == ["id", "ts", "type", "severity", "actor", "client_ip", "summary", "data"]
    indexes = [r[1] for r in db.conn.execute("PRAGMA index_list(events)")]
    assert "events_ts" in indexes


def test_record_flush_and_query_newest_first(db):
    log = EventLog(db)
    log.record({"type": "auth.login", "ts": 100.0, "username": "ann", "client_ip": "10.0.0.2"})
    log.record({"type": "config.changed", "ts": 101.0, "actor": "ann", "data": {"section": "cache"}})
    assert log.query()[1] == 0  # nothing written before a flush
    assert log.flush() == 2
    events, total = log.query()
    assert total == 2
    assert [e["type"] for e in events] == ["config.changed", "auth.login"]
    login = events[1]
    assert login["actor"] == "ann" and login["client_ip"] == "10.0.0.2"
    assert login["severity"] == "info"
    assert login["timestamp"] == "1970-01-01T00:01:40.000Z"
    assert events[0]["data"] == {"section": "cache"}


def test_secrets_are_stripped_at_every_depth(db):
    log = EventLog(db)
    log.record({"type": "auth.login_failed", "username": "bob", "password": "hunter2",
                "totp": "123456", "reason": "bad_password",
                "data": {"new_password": "x", "refresh_token": "r", "nested": {
                    "client_secret": "s", "recovery_code": "c", "kept": 1},
                    "list": [{"api_token": "t", "name": "ci"}]}})
    log.flush()
    stored = db.conn.execute("SELECT data, summary FROM events").fetchone()
    for secret in ("hunter2", "123456", '"x"', '"r"', '"s"', '"c"', '"t"', '"password"', '"totp"',
                   "new_password", "refresh_token", "client_secret", "recovery_code", "api_token"):
        assert secret not in stored[0], secret
    data = json.loads(stored[0])
    assert data == {"reason": "bad_password", "nested": {"kept": 1}, "list": [{"name": "ci"}]}
    event = log.query()[0][0]
    assert event["severity"] == "warning"  # failures default to warning
    assert event["actor"] == "bob"


def test_odd_payloads_do_not_raise():
    assert normalize("just text")["type"] == "events.message"
    assert normalize({"ts": "nope"})["type"] == "events.unknown"
    assert normalize({"type": "x", "data": [1, 2]})["data"] == {"value": [1, 2]}
    assert normalize({"type": "threat.hit"}, topic="security")["severity"] == "warning"
    assert len(normalize({"type": "a" * 500})["type"]) == 64


def test_keeps_at_most_max_rows(db):
    log = EventLog(db, max_rows=5)
    for i in range(4):
        log.record({"type": "t", "ts": float(i)})
    log.flush()
    for i in range(4, 12):
        log.record({"type": "t", "ts": float(i)})
    log.flush()
    events, total = log.query()
    assert total == 5
    assert [e["ts"] for e in events] == [11.0, 10.0, 9.0, 8.0, 7.0]


def test_filters_and_paging(db):
    log = EventLog(db)
    rows = [("auth.login", "ann", "info", 10), ("auth.login_failed", "bob", "warning", 20),
            ("authz.denied", "bob", "warning", 30), ("backup.restored", "ann", "warning", 40),
            ("auth", "sys", "info", 50)]
    for type_, actor, sev, ts in rows:
        log.record({"type": type_, "actor": actor, "severity": sev, "ts": float(ts)})
    log.flush()

    def types(**kw):
        return [e["type"] for e in log.query(**kw)[0]]

    assert types(type="auth.") == ["auth.login_failed", "auth.login"]
    assert types(type="auth") == ["auth", "auth.login_failed", "auth.login"]  # not authz.*
    assert types(type="auth.login") == ["auth.login"]
    assert types(type="auth_%") == []  # LIKE wildcards are literal
    assert types(actor="bob") == ["authz.denied", "auth.login_failed"]
    assert types(severity="warning", since=25) == ["backup.restored", "authz.denied"]
    assert types(until=20) == ["auth.login"]
    page, total = log.query(limit=2, offset=1)
    assert total == 5 and [e["ts"] for e in page] == [40.0, 30.0]


def test_bus_events_are_written_in_one_batch_then_at_most_once_per_interval(db):
    async def main():
        bus = EventBus()
        log = EventLog(db, flush_interval=3600)  # the second batch must wait for stop()
        await log.start(bus)
        for i in range(50):
            publish_event(bus, "config.changed", actor="ann", n=i)
        await until(lambda: log.written == 50, what="the first batch")
        assert log.written == 50 and log.flushes == 1
        bus.publish("security", {"type": "threat.blocked", "domain": "evil.example"})
        # The writer has taken the event and holds it: within the interval, not written yet.
        await until(lambda: log.snapshot()["pending"] == 1 or log.written > 50,
                    what="the writer to take the event")
        assert log.written == 50
        await log.stop()
        assert log.written == 51 and log.flushes == 2
        assert len(bus) == 0  # unsubscribed
        event = log.query(type="threat")[0][0]
        assert event["data"] == {"domain": "evil.example", "topic": "security"}
        await log.stop()  # twice is fine

    run(main())


def test_sync_makes_just_published_events_visible(db):
    async def main():
        bus = EventBus()
        log = EventLog(db, flush_interval=3600)
        await log.start(bus)
        publish_event(bus, "a.first")
        await until(lambda: log.written == 1, what="the first event")
        publish_event(bus, "a.second")
        await log.sync()
        assert [e["type"] for e in log.query()[0]] == ["a.second", "a.first"]
        await log.stop()

    run(main())


# ---- the API ----------------------------------------------------------------------------------

class FakeApp:
    version = "test"

    def __init__(self, eventlog):
        self.auth = FakeAuth({"Bearer viewer": VIEWER})
        self.eventlog = eventlog


def api_get(app, path, token="Bearer viewer"):
    api = Api(app.auth)
    events_api.register(api, eventlog=app.eventlog)
    headers = {"Authorization": token} if token else {}
    return asyncio.run(TestClient(api.web).get(path, headers=headers))


def test_api_lists_filters_and_pages(db):
    log = EventLog(db)
    for i in range(5):
        log.record({"type": "auth.login" if i % 2 else "config.changed", "actor": "ann",
                    "ts": 1_700_000_000.0 + i})
    log.flush()
    res = api_get(FakeApp(log), "/api/events?type=auth.&limit=1&offset=1")
    assert res.status_code == 200, res.text
    assert res.json["total"] == 2 and res.json["limit"] == 1 and res.json["offset"] == 1
    assert res.json["events"][0]["ts"] == 1_700_000_001.0
    res = api_get(FakeApp(log), "/api/events?since=2023-11-14T22:13:22Z&until=1700000004")
    assert [e["ts"] for e in res.json["events"]] == [1_700_000_003.0, 1_700_000_002.0]
    res = api_get(FakeApp(log), "/api/events?since=1h")
    assert res.json["total"] == 0  # all are from 2023


def test_api_validation_and_auth(db):
    app = FakeApp(EventLog(db))
    assert api_get(app, "/api/events", token=None).status_code == 401
    for bad in ("limit=0", "limit=1001", "severity=loud", "since=yesterday", "type=a%20b", "nope=1"):
        res = api_get(app, f"/api/events?{bad}")
        assert res.status_code == 400, bad
        assert res.json["code"] == 400 and res.json["details"]
