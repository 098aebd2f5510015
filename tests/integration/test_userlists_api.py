"""Seed 003 /api/whitelist examples replayed, /api/denylist, and their effect on answers."""

import dns.rcode

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess


def test_whitelist_seed_examples_and_denylist_effect(tmp_path, upstream):
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        for domain in ("analytics.google.com", "*.cdn.example.com", "^api\\d+\\.example\\.com$"):
            status, body = authed(b, token, "POST", "/api/whitelist", {"domain": domain})
            assert status == 200 and body["message"] == "Domain added to whitelist"
        assert body == {"message": "Domain added to whitelist", "total": 3, "exact": 1, "wildcard": 1, "regex": 1}
        status, body = authed(b, token, "GET", "/api/whitelist")
        assert body == {"total": 3, "exact": ["analytics.google.com"], "wildcard": ["*.cdn.example.com"],
                        "regex": ["^api\\d+\\.example\\.com$"]}
        assert authed(b, token, "POST", "/api/whitelist", {"domain": "analytics.google.com"})[0] == 409
        status, body = authed(b, token, "POST", "/api/whitelist", {})
        assert status == 400 and body["details"][0]["field"] == "domain"
        status, body = authed(b, token, "DELETE", "/api/whitelist/*.cdn.example.com")
        assert status == 200 and body["message"] == "Domain removed from whitelist" and body["total"] == 2
        assert authed(b, token, "DELETE", "/api/whitelist/%2A.cdn.example.com")[0] == 404

        assert b.query("tracker.example.test").answer  # resolves before it is denied
        assert authed(b, token, "POST", "/api/denylist", {"domain": "tracker.example.test"})[0] == 200
        r = b.query("tracker.example.test", use_edns=0)
        assert r.answer[0][0].address == "0.0.0.0"  # the fast path did not replay the old answer
        assert [o.code for o in r.options if o.otype == 15] == [15]
        authed(b, token, "POST", "/api/whitelist", {"domain": "tracker.example.test"})
        assert b.query("tracker.example.test").answer[0][0].address != "0.0.0.0"  # allow beats deny
        assert b.query("x.y.example.test").rcode() == dns.rcode.NOERROR


def test_the_entry_tester_says_what_the_deny_list_then_does(tmp_path, upstream):
    """GET /api/userlists/test through the running process: its verdict for each entry and name
    is what adding the entry to the deny list then does to the answers."""
    from urllib.parse import quote, urlencode

    cases = [(r"^tester\d+\.", "tester12.example.test"), (r"^tester\d+\.", "mytester12.example.test"),
             ("*.wild.example.test", "a.wild.example.test"), ("*.wild.example.test", "wild.example.test"),
             (r"(?P<x>dup)\.(?P=x)\.", "dup.dup.example.test"), ("Exact.Example.Test", "exact.example.test")]
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        for entry, name in cases:
            status, verdict = authed(b, token, "GET", "/api/userlists/test?" + urlencode({"pattern": entry,
                                                                                        "domain": name}))
            assert status == 200 and verdict["valid"], verdict
            assert b.query(name).answer[0][0].address != "0.0.0.0"
            assert authed(b, token, "POST", "/api/denylist", {"domain": entry})[0] == 200
            denied = b.query(name).answer[0][0].address == "0.0.0.0"
            assert denied == verdict["matches"], (entry, name, verdict)
            assert authed(b, token, "DELETE", "/api/denylist/" + quote(verdict["entry"], safe=""))[0] == 200
        status, bad = authed(b, token, "GET", "/api/userlists/test?" + urlencode({"pattern": "ok|(bad"}))
        assert status == 200 and bad["valid"] is False and bad["position"] == 3
        assert authed(b, token, "POST", "/api/denylist", {"domain": "ok|(bad"})[0] == 400
