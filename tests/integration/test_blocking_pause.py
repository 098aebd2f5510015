"""/api/blocking against the running process: pause with expiry, resume, restart, status."""

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.timing import wait_for


def test_pause_expires_resume_and_persist(tmp_path, upstream):
    b = BurrowProcess(tmp_path, [upstream.address])
    with b:
        token = admin_token(b)
        status, body = authed(b, token, "GET", "/api/blocking")
        assert status == 200 and body["enabled"] is True and body["remaining_seconds"] is None
        # 5 s: long enough that a busy machine still sees the pause before it ends
        status, body = authed(b, token, "POST", "/api/blocking", {"enabled": False, "duration": 5})
        assert status == 200 and body["enabled"] is False and 4 <= body["remaining_seconds"] <= 5
        assert authed(b, token, "GET", "/api/system")[1]["status"]["state"] == "paused"
        wait_for(lambda: authed(b, token, "GET", "/api/blocking")[1]["enabled"] is True,
                 what="the pause to expire", interval=0.25)
        assert authed(b, token, "POST", "/api/blocking", {"enabled": False})[1]["enabled"] is False
        assert authed(b, token, "POST", "/api/blocking", {"enabled": True})[1]["enabled"] is True
        status, body = authed(b, token, "POST", "/api/blocking", {"enabled": True, "duration": 5})
        assert status == 400 and body["details"][0]["field"] == "duration"
        assert authed(b, token, "POST", "/api/blocking", {"enabled": False, "group": "kids"})[0] == 404
        authed(b, token, "POST", "/api/blocking", {"enabled": False, "duration": 600})
    b2 = BurrowProcess(tmp_path / "again", [upstream.address])
    b2.config["storage"]["data_dir"] = str(b.data_dir)
    with b2:
        token = admin_token(b2)
        body = authed(b2, token, "GET", "/api/blocking")[1]
        assert body["enabled"] is False and 500 < body["remaining_seconds"] <= 600  # survived the restart
