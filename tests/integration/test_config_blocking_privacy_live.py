"""PUT /api/config/blocking and /api/config/privacy against the real burrow process: the DNS
answer and the query log follow at once, bad values change nothing, and the settings survive a
restart."""

from __future__ import annotations

import dns.rcode

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.timing import wait_for
from tests.support.upstream_client import TestUpstream


def test_blocking_mode_and_privacy_apply_live_and_survive_a_restart(tmp_path):
    with TestUpstream() as up:
        b = BurrowProcess(tmp_path, [up.address])
        with b:
            token = admin_token(b)
            assert authed(b, token, "POST", "/api/denylist", {"domain": "ads.example.org"})[0] == 200
            reply = b.query("ads.example.org")
            assert reply.rcode() == dns.rcode.NOERROR and "0.0.0.0" in reply.answer[0].to_text()

            status, body = authed(b, token, "PUT", "/api/config/blocking",
                                  {"blocking_mode": "custom", "custom_ipv4": "192.0.2.99", "blocked_ttl": 45})
            assert status == 200, body
            reply = b.query("ads.example.org")
            assert reply.answer[0].ttl == 45 and "192.0.2.99" in reply.answer[0].to_text()

            status, body = authed(b, token, "PUT", "/api/config/blocking", {"blocking_mode": "sinkhole",
                                                                           "blocked_ttl": -5})
            assert status == 400 and {d["field"] for d in body["details"]} == {"blocking_mode", "blocked_ttl"}
            assert "192.0.2.99" in b.query("ads.example.org").answer[0].to_text()  # nothing changed

            # The decision trace: kept by default, not kept from the change on.
            def row(name):
                def listed():
                    _, page = authed(b, token, "GET", f"/api/queries?domain={name}")
                    return page["queries"]
                return wait_for(listed, what=f"{name} in the query log")[0]

            assert b.query("before.example.org").rcode() == 0
            assert row("before.example.org").get("block_trace")
            status, body = authed(b, token, "PUT", "/api/config/privacy", {"decision_trace": False,
                                                                          "query_log_retention_days": 2})
            assert status == 200, body
            assert b.query("after.example.org").rcode() == 0
            assert not row("after.example.org").get("block_trace")

        with b:  # restarted: the stored overrides are in force again
            token = admin_token(b)
            _, config = authed(b, token, "GET", "/api/config")
            assert config["filtering"]["blocking_mode"] == "custom" and config["filtering"]["blocked_ttl"] == 45
            assert config["server"]["decision_trace"] is False and config["storage"]["query_log_retention_days"] == 2
            assert "192.0.2.99" in b.query("ads.example.org").answer[0].to_text()
