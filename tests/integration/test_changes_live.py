"""A change made through the API is never answered around by the fast path: each name is
asked twice first (the second answer comes from the fast path), then changed through the API,
then asked again the same way. The stores announce their changes; the app's one subscriber
moves the fast path's generation (burrow/changes.py, burrow/app.py ``answers_changed``)."""

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream

KID = "127.0.0.2"


def addr(b, name, source="127.0.0.1"):
    r = b.query(name, source=source)
    return r.answer[0][0].address if r.answer else None


def asked_twice(b, name, source="127.0.0.1"):
    """The answer, once the fast path holds it (the second ask is the same question)."""
    first = addr(b, name, source)
    assert addr(b, name, source) == first
    return first


def test_allow_and_deny_lists(tmp_path, upstream):
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        assert asked_twice(b, "deny.changes.test") not in (None, "0.0.0.0")
        assert authed(b, token, "POST", "/api/denylist", {"domain": "deny.changes.test"})[0] == 200
        assert addr(b, "deny.changes.test") == "0.0.0.0"
        assert asked_twice(b, "deny.changes.test") == "0.0.0.0"
        assert authed(b, token, "POST", "/api/whitelist", {"domain": "deny.changes.test"})[0] == 200
        assert addr(b, "deny.changes.test") not in (None, "0.0.0.0")  # allow beats deny


def test_group_membership(tmp_path, upstream):
    """A deny entry for kids applies to a client once it joins the group."""
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        assert authed(b, token, "POST", "/api/groups", {"name": "kids"})[0] == 201
        assert authed(b, token, "POST", "/api/denylist", {"domain": "kid.changes.test", "groups": ["kids"]})[0] == 200
        assert asked_twice(b, "kid.changes.test", KID) not in (None, "0.0.0.0")
        assert authed(b, token, "POST", "/api/clients", {"client": KID, "groups": ["kids"]})[0] == 201
        assert addr(b, "kid.changes.test", KID) == "0.0.0.0"


def test_policy_rule(tmp_path, upstream):
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        assert asked_twice(b, "policy.changes.test") not in (None, "0.0.0.0")
        status, _ = authed(b, token, "POST", "/api/policies",
                           {"name": "no policy.changes", "logic": 'DomainMatches(Domain, "policy.changes.test")',
                            "action": "BLOCK"})
        assert status == 201
        assert addr(b, "policy.changes.test") == "0.0.0.0"


def test_forwarding_rule(tmp_path, upstream):
    with TestUpstream() as router, BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        router.set_rule("fwd.changes.test", match="suffix", records={"A": ["192.0.2.10"]})
        assert asked_twice(b, "fwd.changes.test") not in (None, "192.0.2.10")
        status, _ = authed(b, token, "POST", "/api/conditionalforwarding",
                           {"name": "router", "domains": ["fwd.changes.test"], "upstreams": [router.address]})
        assert status == 200
        assert addr(b, "fwd.changes.test") == "192.0.2.10"
