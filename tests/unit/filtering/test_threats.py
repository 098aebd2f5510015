"""Threat-feed hits: one security event per client and name per period, a global cap, counts;
and the filter stage marks threat blocks as Decision.THREAT with EDE 17."""

import asyncio

from burrow.dns import wire
from burrow.dns.decision import Decision
from burrow.dns.stages.filter import FilterStage
from burrow.filtering.compiler import Source, compile_index
from burrow.filtering.index import Index
from burrow.filtering.threats import ThreatReporter

from tests.support.dnsq import Next, make_query


def test_one_event_per_client_and_name_per_period_then_a_summary():
    events, t = [], [1000.0]
    r = ThreatReporter(events.append, clock=lambda: t[0], repeat_after=600)
    q = make_query("c2.evil.test", client="192.168.1.50")
    r(q, "urlhaus", "evil.test")
    assert len(events) == 1 and events[0]["type"] == "security.threat" and events[0]["severity"] == "warning"
    assert events[0]["client_ip"] == "192.168.1.50" and events[0]["data"]["feed"] == "urlhaus"
    for _ in range(99):
        t[0] += 1
        r(q, "urlhaus", "evil.test")
    assert len(events) == 1  # the same device hammering: no flood
    r(make_query("c2.evil.test", client="192.168.1.51"), "urlhaus", "evil.test")
    assert len(events) == 2  # another device is news
    t[0] += 600
    r(q, "urlhaus", "evil.test")
    assert len(events) == 3 and events[2]["data"]["queries"] == 100  # 99 unreported + this one
    assert r.status() == {"hits": 102, "events": 3, "by_feed": {"urlhaus": 102}}


def test_global_cap_per_minute_counts_what_it_suppressed():
    events, t = [], [60_000.0]
    r = ThreatReporter(events.append, clock=lambda: t[0], max_per_minute=3)
    for i in range(10):
        r(make_query(f"x{i}.evil.test", client="10.0.0.9"), "feed", "evil.test")
    assert len(events) == 3
    t[0] += 60
    r(make_query("y.evil.test", client="10.0.0.9"), "feed", "evil.test")
    assert len(events) == 4 and events[3]["data"]["suppressed_events"] == 7


def test_filter_marks_threat_blocks(tmp_path):
    (tmp_path / "feed.txt").write_text("malware.example\n")
    (tmp_path / "ads.txt").write_text("ads.example\n")
    report = compile_index([Source(0, str(tmp_path / "feed.txt"), "domains", "threat", name="feed"),
                            Source(1, str(tmp_path / "ads.txt"), "domains", "block", name="ads")],
                           tmp_path / "i.bin")
    assert report.ok
    idx = Index.open(tmp_path / "i.bin")
    try:
        s = FilterStage()
        s.set_index(idx)
        hits = []
        s.on_threat = lambda query, feed, entry: hits.append((query.name, feed, entry))
        ans = asyncio.run(s.resolve(make_query("malware.example"), Next()))
        assert ans.decision is Decision.THREAT and ans.ede[0] == wire.EDE_FILTERED
        assert hits == [("malware.example", "feed", "malware.example")]
        ans = asyncio.run(s.resolve(make_query("ads.example"), Next()))
        assert ans.decision is Decision.BLOCKED and ans.ede[0] == wire.EDE_BLOCKED and len(hits) == 1
    finally:
        idx.close()
