"""Client groups through the running server: clients bound to 127.0.0.2 and 127.0.0.3 get
their own groups' lists, deny entries, policy rules and pauses; the fast path never hands
one group's answer to another."""

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.timing import wait_for

KID, ADULT = "127.0.0.2", "127.0.0.3"


def addr(b, name, source):
    r = b.query(name, source=source)
    return r.answer[0][0].address if r.answer else None


def test_groups_decide_per_client(tmp_path, upstream):
    b = BurrowProcess(tmp_path, [upstream.address])
    b.data_dir.mkdir(parents=True)
    (b.data_dir / "lists").mkdir()
    (b.data_dir / "lists" / "games.txt").write_text("games.group.test\n")
    (b.data_dir / "lists" / "ads.txt").write_text("ads.group.test\n")
    with b:
        token = admin_token(b)
        status, body = authed(b, token, "GET", "/api/groups")
        assert status == 200 and [g["name"] for g in body["groups"]] == ["default"]
        status, kids = authed(b, token, "POST", "/api/groups", {"name": "kids", "description": "tablets"})
        assert status == 201 and kids["name"] == "kids" and kids["builtin"] is False
        assert authed(b, token, "POST", "/api/groups", {"name": "kids"})[0] == 409
        status, bad = authed(b, token, "POST", "/api/groups", {"name": "No Spaces"})
        assert status == 400 and bad["details"][0]["field"] == "name"
        assert authed(b, token, "DELETE", "/api/groups/default")[0] == 400
        status, kids = authed(b, token, "PUT", "/api/groups/kids", {"description": "tablets and the console"})
        assert status == 200 and kids["description"] == "tablets and the console"

        # the same names, asked first by both clients: cached in both views before any change
        for ip in (KID, ADULT):
            assert addr(b, "games.group.test", ip) not in (None, "0.0.0.0")
            assert addr(b, "chat.group.test", ip) not in (None, "0.0.0.0")

        status, client = authed(b, token, "POST", "/api/clients", {"client": KID, "groups": ["kids"], "name": "tablet"})
        assert status == 201 and client["id"] >= 1 and client["groups"] == ["kids"]
        status, bad = authed(b, token, "POST", "/api/clients", {"client": "127.0.0.300", "groups": ["kids"]})
        assert status == 400 and bad["details"][0]["field"] == "client"
        status, bad = authed(b, token, "POST", "/api/clients", {"client": ADULT, "groups": ["nope"]})
        assert status == 400 and bad["details"][0]["field"] == "groups"
        status, body = authed(b, token, "GET", f"/api/clients?ip={KID}")
        assert body["lookup"] == {"ip": KID, "groups": ["kids"]} and body["total"] == 1
        assert authed(b, token, "GET", f"/api/clients?ip={ADULT}")[1]["lookup"]["groups"] == ["default"]

        # a list for kids only, a list for everyone, a deny entry for kids only
        status, games = authed(b, token, "POST", "/api/lists",
                               {"name": "games", "source": "games.txt", "kind": "block", "groups": ["kids"]})
        assert status == 201 and games["groups"] == ["kids"]
        assert authed(b, token, "POST", "/api/lists", {"name": "x", "source": "ads.txt",
                                                       "groups": ["nobody"]})[0] == 400
        assert authed(b, token, "POST", "/api/lists", {"name": "ads", "source": "ads.txt"})[0] == 201
        assert authed(b, token, "POST", "/api/blocklist/reload", timeout=60)[0] == 200
        assert authed(b, token, "POST", "/api/denylist", {"domain": "chat.group.test", "groups": ["kids"]})[0] == 200
        assert addr(b, "games.group.test", KID) == "0.0.0.0"
        assert addr(b, "games.group.test", ADULT) not in (None, "0.0.0.0")
        assert addr(b, "chat.group.test", KID) == "0.0.0.0"
        assert addr(b, "chat.group.test", ADULT) not in (None, "0.0.0.0")
        for ip in (KID, ADULT):
            assert addr(b, "ads.group.test", ip) == "0.0.0.0"
        explained = authed(b, token, "GET", f"/api/blocklists/check?domain=games.group.test&client={ADULT}")[1]
        # asked above, so the chain answers it from the cache (read, not touched, by the dry run)
        assert explained["groups"] == ["default"] and explained["decision"] == "cached"
        explained = authed(b, token, "GET", f"/api/blocklists/check?domain=games.group.test&client={KID}")[1]
        assert explained["groups"] == ["kids"] and explained["decision"] == "blocked"

        # a policy rule by group
        rule = {"name": "kids bedtime", "logic": "InClientGroup(ClientIP, 'kids') && DomainMatches(Domain, 'video')",
                "action": "BLOCK", "enabled": True}
        assert authed(b, token, "POST", "/api/policies", rule)[0] == 201
        assert addr(b, "video.group.test", KID) == "0.0.0.0"
        assert addr(b, "video.group.test", ADULT) not in (None, "0.0.0.0")

        # moving the list to another group applies at once, no recompile
        authed(b, token, "POST", "/api/groups", {"name": "guests"})
        assert authed(b, token, "PUT", f"/api/lists/{games['id']}", {"groups": ["guests"]})[0] == 200
        assert addr(b, "games.group.test", KID) not in (None, "0.0.0.0")
        authed(b, token, "PUT", f"/api/lists/{games['id']}", {"groups": ["kids"]})
        assert addr(b, "games.group.test", KID) == "0.0.0.0"

        # pause for one group, with expiry (5 s: a busy machine still sees the pause before it ends)
        status, state = authed(b, token, "POST", "/api/blocking", {"enabled": False, "duration": 5, "group": "kids"})
        assert status == 200 and state["enabled"] is False and state["group"] == "kids"
        assert addr(b, "ads.group.test", KID) not in (None, "0.0.0.0")
        assert addr(b, "ads.group.test", ADULT) == "0.0.0.0"
        whole = authed(b, token, "GET", "/api/blocking")[1]
        assert whole["enabled"] is True and whole["groups"]["kids"]["enabled"] is False
        assert authed(b, token, "GET", "/api/blocking?group=kids")[1]["enabled"] is False
        wait_for(lambda: addr(b, "ads.group.test", KID) == "0.0.0.0", what="the pause to end",
                 interval=0.25)  # resumed by itself
        assert authed(b, token, "GET", "/api/blocking")[1]["groups"] == {}

        # the client leaves the group: it gets default's answers again
        assert authed(b, token, "DELETE", f"/api/clients/{client['id']}")[0] == 200
        assert addr(b, "games.group.test", KID) not in (None, "0.0.0.0")
        # group deletion takes it off lists
        authed(b, token, "POST", "/api/clients", {"client": "127.0.0.0/29", "groups": ["kids"]})
        assert addr(b, "games.group.test", KID) == "0.0.0.0"
        assert authed(b, token, "DELETE", "/api/groups/kids")[0] == 200
        assert authed(b, token, "GET", f"/api/lists/{games['id']}")[1]["groups"] == []
        assert authed(b, token, "GET", "/api/clients")[1]["clients"] == []
        events = authed(b, token, "GET", "/api/events?limit=100")[1]
        kinds = {e["type"] for e in events["events"]}
        assert {"group.created", "group.updated", "client.created", "group.deleted", "client.deleted"} <= kinds


def test_viewer_reads_groups_but_cannot_change(tmp_path, upstream):
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        authed(b, token, "POST", "/api/users", {"username": "v", "password": "viewer-pass-123", "role": "viewer"})
        status, body = b.http("POST", "/api/auth/login", {"username": "v", "password": "viewer-pass-123"})
        viewer = body["access_token"]
        assert authed(b, viewer, "GET", "/api/groups")[0] == 200
        assert authed(b, viewer, "GET", "/api/clients")[0] == 200
        assert authed(b, viewer, "POST", "/api/groups", {"name": "kids"})[0] == 403
        assert authed(b, viewer, "POST", "/api/clients", {"client": KID, "groups": ["default"]})[0] == 403
