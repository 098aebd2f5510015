"""/api/reports: streamed query-log export (CSV and JSON, bounded, windowed) and stats export."""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import json
import time

import pytest
from microdot.test_client import TestClient

from burrow.api import reports
from burrow.api.routes import Api
from burrow.dns.decision import Decision, QueryRecord
from burrow.storage.queryfilter import QueryFilter
from burrow.storage.querylog import QueryLogDB
from burrow.telemetry.recorder import Recorder, merged_page
from burrow.telemetry.stats import StatsBuckets

from tests.support.fakes import VIEWER, FakeAuth

T0 = 1_700_000_000.0


class FakeRecorder:
    """The Recorder's read side: ``query`` runs the function (here, inline) and ``stats``."""

    def __init__(self, db):
        self.db = db
        self.stats = StatsBuckets()
        self.calls = 0

    async def query(self, fn, *args, **kw):
        self.calls += 1
        return fn(*args, **kw)

    async def search(self, match=None, limit=100, offset=0):
        """``Recorder.search`` with nothing waiting in memory."""
        return await self.query(merged_page, self.db, [], self.db.next_id, match or QueryFilter(),
                                limit, offset)


class FakeApp:
    version = "test"

    def __init__(self, recorder):
        self.auth = FakeAuth({"Bearer viewer": VIEWER})
        self.recorder = recorder


def row(i, domain=None, blocked=False):
    decision = Decision.BLOCKED if blocked else Decision.RESOLVED
    return (T0 + i, "10.0.0.5", domain or f"d{i}.example", 1, 0, int(decision), int(blocked), 0,
            1.5, "9.9.9.9:53", None)


@pytest.fixture
def recorder(tmp_path):
    db = QueryLogDB(tmp_path / "q.db")
    yield FakeRecorder(db)
    db.close()


def get(recorder, path, token="Bearer viewer"):
    app = FakeApp(recorder)
    api = Api(app.auth)
    reports.register(api, recorder=app.recorder)
    headers = {"Authorization": token} if token else {}
    return asyncio.run(TestClient(api.web).get(path, headers=headers))


def test_csv_export_has_header_rows_newest_first_and_attachment(recorder):
    recorder.db.write([row(i) for i in range(5)])
    res = get(recorder, "/api/reports/queries?format=csv")
    assert res.status_code == 200, res.text
    assert res.headers["Content-Type"].startswith("text/csv")
    assert res.headers["Content-Disposition"].startswith('attachment; filename="burrow-queries-')
    assert res.headers["X-Total-Count"] == "5" and res.headers["X-Export-Truncated"] == "false"
    table = list(csv.reader(io.StringIO(res.text)))
    assert table[0] == list(reports.QUERY_COLUMNS)
    assert [r[3] for r in table[1:]] == [f"d{i}.example" for i in (4, 3, 2, 1, 0)]
    assert table[1][6] == "resolved" and table[1][7] == "false"


def test_export_pages_through_the_window_without_repeats(recorder, monkeypatch):
    monkeypatch.setattr(reports, "PAGE_ROWS", 7)
    recorder.db.write([row(i) for i in range(50)])
    res = get(recorder, f"/api/reports/queries?format=json&since={T0 + 10}&until={T0 + 40}")
    assert res.status_code == 200, res.text
    body = json.loads(res.text)
    assert body["total"] == 30 and body["truncated"] is False
    assert [q["domain"] for q in body["queries"]] == [f"d{i}.example" for i in range(39, 9, -1)]
    assert recorder.calls >= 5  # several pages: streamed, not one big read


def test_export_is_bounded_and_says_so(recorder, monkeypatch):
    monkeypatch.setattr(reports, "PAGE_ROWS", 4)
    recorder.db.write([row(i) for i in range(20)])
    res = get(recorder, "/api/reports/queries?format=json&limit=10")
    body = json.loads(res.text)
    assert len(body["queries"]) == 10 and body["total"] == 20 and body["truncated"] is True
    assert res.headers["X-Export-Rows"] == "10" and res.headers["X-Export-Truncated"] == "true"
    res = get(recorder, f"/api/reports/queries?limit={reports.MAX_EXPORT_ROWS + 1}")
    assert res.status_code == 400


def test_csv_neutralises_formulas_from_the_network(recorder):
    recorder.db.write([row(0, domain="=cmd|' /c calc'!a0"), row(1, domain="@sum(1)")])
    table = list(csv.reader(io.StringIO(get(recorder, "/api/reports/queries").text)))
    assert {r[3] for r in table[1:]} == {"'=cmd|' /c calc'!a0", "'@sum(1)"}


def test_empty_window_and_bad_parameters(recorder):
    res = get(recorder, "/api/reports/queries?format=json")
    assert json.loads(res.text)["queries"] == []
    assert get(recorder, "/api/reports/queries?format=xml").status_code == 400
    assert get(recorder, "/api/reports/queries?since=soon").status_code == 400
    assert get(recorder, f"/api/reports/queries?since={T0}&until={T0 - 1}").status_code == 400
    assert get(recorder, "/api/reports/queries", token=None).status_code == 401


def test_stats_export_csv_and_json(recorder):
    import time
    now = time.time()
    recorder.stats.add_many(now - 120, int(Decision.BLOCKED), 3, 0.01)
    recorder.stats.add_many(now - 120, int(Decision.RESOLVED), 4, 0.01)
    res = get(recorder, "/api/reports/stats?format=csv&since=1h&step=5m")
    assert res.status_code == 200, res.text
    assert res.headers["Content-Disposition"].startswith('attachment; filename="burrow-stats-')
    table = list(csv.reader(io.StringIO(res.text)))
    assert table[0] == ["timestamp", "total", "blocked", "cached"]
    assert 12 <= len(table) - 1 <= 14
    assert sum(int(r[1]) for r in table[1:]) == 7 and sum(int(r[2]) for r in table[1:]) == 3
    body = json.loads(get(recorder, "/api/reports/stats?format=json&since=1h&step=1h").text)
    assert body["step_seconds"] == 3600 and sum(p["total"] for p in body["points"]) == 7
    assert get(recorder, "/api/reports/stats?step=10s").status_code == 400
    assert get(recorder, "/api/reports/stats?since=7d&step=1m").status_code == 200
    assert get(recorder, "/api/reports/stats?since=30d&step=1m").status_code == 400


def stamp(q):
    return datetime.datetime.fromisoformat(q["timestamp"].replace("Z", "+00:00")).timestamp()


def test_export_reads_the_whole_log_archived_trimmed_and_unflushed_rows_too(tmp_path, monkeypatch):
    # The export is the query log as the recorder holds it: rows archived to flash and gone
    # from the hot tier, rows in the hot tier, and rows drained but not flushed yet. The
    # reference is the same rows written to one ordinary log.
    monkeypatch.setattr(reports, "PAGE_ROWS", 4)  # pages cross every boundary

    async def main():
        (tmp_path / "ref").mkdir()
        recorder = Recorder(QueryLogDB(tmp_path / "querylog.db", hot_seconds=0), flush_interval=3600)
        reference = QueryLogDB(tmp_path / "ref" / "querylog.db")
        n = 0

        def take(count):
            nonlocal n
            for _ in range(count):
                recorder.ring.append(QueryRecord(time.monotonic() - 100 + n, "10.0.0.5",
                                                 f"e{n}.example", 1, 0, Decision.RESOLVED, 0.002, "", ()))
                n += 1
            before = len(recorder._pending)
            recorder.drain()
            reference.write(list(recorder._pending)[before:])

        take(20)
        await recorder.flush()
        await recorder.persist()  # archived, and (hot_seconds=0) trimmed from the hot tier
        assert recorder.db.conn.execute("SELECT COUNT(*) FROM queries").fetchone()[0] == 0
        take(6)
        await recorder.flush()  # in the hot tier only
        take(5)  # in memory only
        stamps = [r[0] for r in reference.conn.execute("SELECT ts FROM queries ORDER BY id")]
        # Rows 3..27: archived, hot and unflushed ones. Edges between rows (a second apart), as
        # the archive keeps timestamps to the millisecond.
        since, until = stamps[3] - 0.5, stamps[28] - 0.5
        want, total = reference.fetch_matching(QueryFilter(since=since, until=until), 1000)
        assert total == 25
        app = FakeApp(recorder)
        api = Api(app.auth)
        reports.register(api, recorder=recorder)
        client = TestClient(api.web)
        auth = {"Authorization": "Bearer viewer"}
        res = await client.get(f"/api/reports/queries?format=json&since={since}&until={until}", headers=auth)
        assert res.status_code == 200, res.text
        assert res.headers["X-Total-Count"] == "25" and res.headers["X-Export-Rows"] == "25"
        body = json.loads(res.text)
        assert body["total"] == 25 and body["truncated"] is False
        # (archived timestamps are rounded to the millisecond: compare them to that)
        assert [{**q, "timestamp": None} for q in body["queries"]] == [{**q, "timestamp": None} for q in want]
        assert all(abs(stamp(a) - stamp(b)) <= 0.002 for a, b in zip(body["queries"], want, strict=True))
        res = await client.get(f"/api/reports/queries?format=csv&since={since}&until={until}&limit=10",
                               headers=auth)
        assert res.headers["X-Total-Count"] == "25" and res.headers["X-Export-Truncated"] == "true"
        table = list(csv.reader(io.StringIO(res.text)))
        assert [int(r[0]) for r in table[1:]] == [q["id"] for q in want[:10]]
        await recorder.stop()
        reference.close()

    asyncio.run(asyncio.wait_for(main(), 60))
