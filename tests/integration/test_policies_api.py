"""Seed 003 /api/policies examples replayed against the running server, and the rules'
effect on real DNS answers (BLOCK, time window, REDIRECT, FORWARD, disable, delete)."""

import time

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream

VIEWER_PW = "Viewer-Passphrase-2024"

SEED_FIRST = {"name": "Block after hours", "logic": "Hour >= 22 || Hour < 6", "action": "BLOCK", "enabled": True}
SEED_GAMING = {"name": "Block gaming during work",
               "logic": "Hour >= 9 && Hour < 17 && (Weekday >= 1 && Weekday <= 5) && DomainMatches(Domain, 'steam')",
               "action": "BLOCK", "enabled": True}
SEED_PUT = {"name": "Updated rule name", "logic": "Hour >= 23", "action": "BLOCK", "enabled": True}


def window_around_now():
    """InTimeRange arguments for a window from 2 minutes ago to 3 minutes ahead (local time)."""
    now = time.time()
    a, b = time.localtime(now - 120), time.localtime(now + 180)
    return f"{a.tm_hour}, {a.tm_min}, {b.tm_hour}, {b.tm_min}"


def viewer_token(b, admin):
    status, body = authed(b, admin, "POST", "/api/users",
                          {"username": "vera", "password": VIEWER_PW, "role": "viewer"})
    assert status == 201, body
    status, body = b.http("POST", "/api/auth/login", {"username": "vera", "password": VIEWER_PW})
    assert status == 200, body
    return body["access_token"]


def ede(reply):
    return [(o.code, o.text) for o in reply.options if o.otype == 15]


def test_policies_seed_examples_and_dns_effect(tmp_path, upstream):
    with TestUpstream() as other, BurrowProcess(tmp_path, [upstream.address]) as b:
        admin = admin_token(b)
        assert authed(b, admin, "GET", "/api/policies") == (200, {"policies": [], "total": 0})

        # POST (seed example) → 201 with the id and the normalised rule
        status, body = authed(b, admin, "POST", "/api/policies", SEED_FIRST)
        assert status == 201, body
        assert body == {"id": 0, "name": "Block after hours", "logic": "Hour >= 22 || Hour < 6",
                        "action": "BLOCK", "action_data": "", "enabled": True}
        status, body = authed(b, admin, "POST", "/api/policies", SEED_GAMING)
        assert status == 201 and body["id"] == 1 and body["logic"] == SEED_GAMING["logic"]

        status, body = authed(b, admin, "GET", "/api/policies")
        assert status == 200 and body["total"] == 2
        assert [p["id"] for p in body["policies"]] == [0, 1]
        assert set(body["policies"][0]) == {"id", "name", "logic", "action", "action_data", "enabled"}
        status, body = authed(b, admin, "GET", "/api/policies/0")
        assert status == 200 and body["name"] == "Block after hours" and body["id"] == 0

        status, body = authed(b, admin, "GET", "/api/policies/abc")
        assert status == 400 and body["details"][0]["field"] == "pid"  # the route's declared pattern
        status, body = authed(b, admin, "GET", "/api/policies/99")
        assert status == 404 and body["message"] == "Policy not found"

        # PUT (seed example) → 200 with the updated rule, same id and place
        status, body = authed(b, admin, "PUT", "/api/policies/0", SEED_PUT)
        assert status == 200 and body == {"id": 0, "name": "Updated rule name", "logic": "Hour >= 23",
                                          "action": "BLOCK", "action_data": "", "enabled": True}
        assert authed(b, admin, "PUT", "/api/policies/42", SEED_PUT)[0] == 404

        # DELETE (seed example) → 200 with message, id, name
        status, body = authed(b, admin, "DELETE", "/api/policies/0")
        assert status == 200 and body == {"message": "Policy deleted successfully", "id": 0,
                                          "name": "Updated rule name"}
        assert authed(b, admin, "DELETE", "/api/policies/0")[0] == 404
        status, body = authed(b, admin, "DELETE", "/api/policies/1")
        assert status == 200 and body["id"] == 1

        # validation: a bad expression names its position; missing fields and bad actions are 400
        status, body = authed(b, admin, "POST", "/api/policies",
                              {"name": "bad", "logic": "Hour >= && Minute < 3", "action": "BLOCK"})
        assert status == 400, body
        detail = body["details"][0]
        assert detail["field"] == "logic" and detail["position"] == 8 and "position 8" in body["message"]
        status, body = authed(b, admin, "POST", "/api/policies", {"name": "x", "logic": "Hour > 1"})
        assert status == 400 and body["details"][0]["field"] == "action"
        status, body = authed(b, admin, "POST", "/api/policies",
                              {"name": "x", "logic": "Hour > 1", "action": "EXPLODE"})
        assert status == 400 and body["details"][0]["field"] == "action"
        status, body = authed(b, admin, "POST", "/api/policies",
                              {"name": "x", "logic": "Hour > 1", "action": "REDIRECT", "action_data": "nope"})
        assert status == 400 and body["details"][0]["field"] == "action_data"
        assert authed(b, admin, "GET", "/api/policies")[1]["total"] == 0

        # a BLOCK rule blocks (the fast path does not replay the answer from before)
        before = b.query("blocked.example.test")
        assert before.answer and before.answer[0][0].address != "0.0.0.0"
        status, rule = authed(b, admin, "POST", "/api/policies",
                              {"name": "No blocked.example", "logic": 'DomainMatches(Domain, ".blocked.example.test")',
                               "action": "BLOCK"})
        assert status == 201 and rule["id"] == 2  # ids are never reused
        r = b.query("blocked.example.test", use_edns=0)
        assert r.answer[0][0].address == "0.0.0.0"
        assert ede(r) == [(15, "policy: No blocked.example")]
        assert b.query("www.blocked.example.test").answer[0][0].address == "0.0.0.0"
        assert b.query("unblocked.example.test").answer[0][0].address != "0.0.0.0"
        deadline = time.monotonic() + 30  # the query log's trace, as the seed's block_trace shows it
        while True:
            status, body = authed(b, admin, "GET", "/api/queries?stage=policy&source=policy_engine"
                                                   "&rule=No+blocked.example")
            if status == 200 and body["queries"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 200 and body["queries"], body
        row = body["queries"][0]
        assert row["blocked"] is True and row["domain"].rstrip(".").endswith("blocked.example.test")
        trace = [t for t in row["block_trace"] if t["stage"] == "policy"][0]
        assert {k: trace[k] for k in ("stage", "action", "rule", "source")} == {
            "stage": "policy", "action": "BLOCK", "rule": "No blocked.example", "source": "policy_engine"}

        # PUT can disable it; DELETE removes it
        status, body = authed(b, admin, "PUT", f"/api/policies/{rule['id']}",
                              {**{k: rule[k] for k in ("name", "logic", "action")}, "enabled": False})
        assert status == 200 and body["enabled"] is False
        assert b.query("blocked.example.test").answer[0][0].address != "0.0.0.0"
        status, body = authed(b, admin, "DELETE", f"/api/policies/{rule['id']}")
        assert status == 200 and authed(b, admin, "GET", "/api/policies")[1]["total"] == 0

        # a time rule whose window includes now blocks
        status, body = authed(b, admin, "POST", "/api/policies",
                              {"name": "Homework time",
                               "logic": f'InTimeRange(Hour, Minute, {window_around_now()})'
                                        ' && Domain == "game.example.test"',
                               "action": "BLOCK"})
        assert status == 201, body
        assert b.query("game.example.test").answer[0][0].address == "0.0.0.0"
        assert b.query("game.example.test", "AAAA").answer[0][0].address == "::"

        # REDIRECT answers by family; ALLOW beats the owner's deny list
        assert authed(b, admin, "POST", "/api/policies",
                      {"name": "portal", "logic": 'Domain == "portal.example.test"', "action": "REDIRECT",
                       "action_data": "192.0.2.80"})[0] == 201
        assert b.query("portal.example.test").answer[0][0].address == "192.0.2.80"
        r6 = b.query("portal.example.test", "AAAA")
        assert r6.rcode() == 0 and not r6.answer
        assert authed(b, admin, "POST", "/api/denylist", {"domain": "kept.example.test"})[0] == 200
        assert b.query("kept.example.test").answer[0][0].address == "0.0.0.0"
        assert authed(b, admin, "POST", "/api/policies",
                      {"name": "keep", "logic": 'Domain == "kept.example.test"', "action": "ALLOW"})[0] == 201
        assert b.query("kept.example.test").answer[0][0].address != "0.0.0.0"

        # FORWARD sends the question to the rule's upstream, not the default one
        other.set_rule("corp.example.test", match="suffix", records={"A": ["198.51.100.9"]})
        assert authed(b, admin, "POST", "/api/policies",
                      {"name": "corp", "logic": 'DomainMatches(Domain, ".corp.example.test")', "action": "FORWARD",
                       "action_data": other.address})[0] == 201
        r = b.query("intranet.corp.example.test")
        assert r.answer[0][0].address == "198.51.100.9"
        assert any(q["name"].rstrip(".") == "intranet.corp.example.test" for q in other.queries())

        # viewers read, and only read
        viewer = viewer_token(b, admin)
        assert authed(b, viewer, "GET", "/api/policies")[0] == 200
        assert authed(b, viewer, "POST", "/api/policies", SEED_FIRST)[0] == 403
        assert authed(b, viewer, "PUT", "/api/policies/3", SEED_PUT)[0] == 403
        assert authed(b, viewer, "DELETE", "/api/policies/3")[0] == 403
        # the editor's check is a writer's; the sentences are everyone's
        assert authed(b, viewer, "POST", "/api/policies/validate", SEED_FIRST)[0] == 403
        status, checked = authed(b, admin, "POST", "/api/policies/validate", {**SEED_FIRST, "logic": "Hour >= "})
        assert status == 200 and checked["valid"] is False and checked["errors"][0]["position"] == 8
        status, said = authed(b, viewer, "GET", "/api/policies/summaries")
        rules = authed(b, admin, "GET", "/api/policies")[1]["policies"]
        assert status == 200 and [s["id"] for s in said["summaries"]] == [r["id"] for r in rules]
        assert said["summaries"][0]["summary"].startswith("Blocks ")

        status, events = authed(b, admin, "GET", "/api/events?type=policy.created&limit=50")
        if status != 503:
            assert status == 200 and len(events["events"]) >= 5
        final = authed(b, admin, "GET", "/api/policies")[1]

    # the rules survive a restart, in order
    with BurrowProcess(tmp_path, [upstream.address]) as b2:
        admin = admin_token(b2)
        assert authed(b2, admin, "GET", "/api/policies")[1] == final
        assert b2.query("portal.example.test").answer[0][0].address == "192.0.2.80"
