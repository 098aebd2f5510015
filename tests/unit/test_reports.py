"""/api/reports: streamed query-log export (CSV and JSON, bounded, windowed) and stats export."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest
from microdot.test_client import TestClient

from burrow.api import reports
from burrow.api.routes import Api
from burrow.dns.decision import Decision
from burrow.storage.querylog import QueryLogDB
from burrow.telemetry.stats import StatsBuckets

from .fakes import VIEWER, FakeAuth

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
    assert recorder.calls >= 5  # count + several pages: streamed, not one big read


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
