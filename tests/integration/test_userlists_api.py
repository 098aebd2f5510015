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
