"""/api/blocking against the running process: pause with expiry, resume, restart, status."""

import time

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess


def test_pause_expires_resume_and_persist(tmp_path, upstream):
    b = BurrowProcess(tmp_path, [upstream.address])
    with b:
        token = admin_token(b)
        status, body = authed(b, token, "GET", "/api/blocking")
        assert status == 200 and body["enabled"] is True and body["remaining_seconds"] is None
        status, body = authed(b, token, "POST", "/api/blocking", {"enabled": False, "duration": 2})
        assert status == 200 and body["enabled"] is False and 1 <= body["remaining_seconds"] <= 2
        assert authed(b, token, "GET", "/api/system")[1]["status"]["state"] == "paused"
        time.sleep(2.5)
        assert authed(b, token, "GET", "/api/blocking")[1]["enabled"] is True
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
