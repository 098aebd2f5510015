"""/api/threat-feeds through the running server: a feed blocks with EDE 17, each hit is
counted apart in /api/stats and /metrics, and reported as a security event in /api/events
and on /ws/events."""

import asyncio
import json

from websockets.asyncio.client import connect

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.timing import wait_for


def test_threat_feed_blocks_counts_and_reports(tmp_path, upstream):
    b = BurrowProcess(tmp_path, [upstream.address])
    b.data_dir.mkdir(parents=True)
    (b.data_dir / "lists").mkdir()
    (b.data_dir / "lists" / "c2.txt").write_text("c2.threat.test\nphish.threat.test\n")
    (b.data_dir / "lists" / "ads.txt").write_text("ads.threat.test\n")
    with b:
        token = admin_token(b)
        status, feed = authed(b, token, "POST", "/api/threat-feeds", {"name": "c2", "source": "c2.txt"})
        assert status == 201 and feed["kind"] == "threat" and feed["id"] >= 1
        status, bad = authed(b, token, "POST", "/api/threat-feeds", {"name": "x", "source": "c2.txt", "kind": "block"})
        assert status == 400 and bad["details"][0]["field"] == "kind"  # a feed is always a threat list
        status, ads = authed(b, token, "POST", "/api/lists", {"name": "ads", "source": "ads.txt"})
        assert authed(b, token, "GET", f"/api/threat-feeds/{ads['id']}")[0] == 404  # not a feed
        assert authed(b, token, "POST", f"/api/threat-feeds/{feed['id']}/update", timeout=60)[0] == 200
        assert authed(b, token, "POST", "/api/blocklist/reload", timeout=60)[0] == 200

        async def watch():
            auth = {"Authorization": f"Bearer {token}"}
            url = f"ws://127.0.0.1:{b.web_port}/ws/events"
            async with connect(url, additional_headers=auth) as ws:
                r = await asyncio.to_thread(b.query, "c2.threat.test", "A", source="127.0.0.2", use_edns=0)
                assert r.answer[0][0].address == "0.0.0.0"
                assert [(o.code, o.text.startswith("c2")) for o in r.options if o.otype == 15] == [(17, True)]
                for _ in range(50):  # bounded: other events may come first
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    data = msg.get("data") or {}
                    if data.get("type") == "security.threat" or msg.get("type") == "security.threat":
                        return msg
            raise AssertionError("no security event on /ws/events")

        msg = asyncio.run(asyncio.wait_for(watch(), 60))
        assert "127.0.0.2" in json.dumps(msg) and "c2.threat.test" in json.dumps(msg)
        for _ in range(5):  # repeats are counted, not each reported
            b.query("c2.threat.test", source="127.0.0.2")
        b.query("ads.threat.test")  # an ordinary block: not a threat
        events = authed(b, token, "GET", "/api/events?type=security.threat")[1]["events"]
        threat_events = [e for e in events if e["type"] == "security.threat"]
        assert len(threat_events) == 1 and threat_events[0]["severity"] == "warning"
        assert threat_events[0]["client_ip"] == "127.0.0.2"
        feeds = authed(b, token, "GET", "/api/threat-feeds")[1]
        assert [f["name"] for f in feeds["feeds"]] == ["c2"] and feeds["hits"]["hits"] == 6
        # The stats see a query once the telemetry ring is drained (every 0.25 s); a drain may
        # fall between the threats and the ordinary block, so wait for both.
        def counted():
            stats = authed(b, token, "GET", "/api/stats")[1]
            return stats["threats_blocked"] == 6 and stats["blocked_queries"] == 7

        wait_for(counted, what="7 blocked queries, 6 of them threats", interval=0.25)
        status, metrics = b.http("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and 'decision="threat"' in metrics
        assert authed(b, token, "DELETE", f"/api/threat-feeds/{feed['id']}")[0] == 200
        assert authed(b, token, "POST", "/api/blocklist/reload", timeout=60)[0] == 200
        assert b.query("c2.threat.test").answer[0][0].address != "0.0.0.0"
