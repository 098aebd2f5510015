"""Lists through the running process: add local and HTTP lists, reload, and see DNS answers change."""

from __future__ import annotations

import http.server
import threading

import dns.rcode

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess


def serve_directory(directory):
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_local_and_http_lists_block_after_reload_and_survive_restart(tmp_path, upstream):
    web = tmp_path / "web"
    web.mkdir()
    (web / "ads.txt").write_text("||ads.remote.test^\n@@||ok.ads.remote.test^\n")
    server = serve_directory(web)
    b = BurrowProcess(tmp_path / "b", [upstream.address], {"upstream": {"timeout": 0.5}})
    b.data_dir.mkdir(parents=True)
    (b.data_dir / "lists").mkdir()
    (b.data_dir / "lists" / "mine.hosts").write_text("0.0.0.0 tracker.local.test\n0.0.0.0 pixel.local.test\n")
    try:
        with b:
            token = admin_token(b)
            assert b.query("tracker.local.test").answer[0][0].address != "0.0.0.0"
            status, local = authed(b, token, "POST", "/api/lists",
                                   {"name": "mine", "source": "mine.hosts", "kind": "block"})
            assert status == 201 and local["id"] >= 1, local
            status, remote = authed(b, token, "POST", "/api/lists",
                                    {"name": "remote", "source": f"http://127.0.0.1:{server.server_port}/ads.txt",
                                     "format": "adblock"})
            assert status == 201, remote
            status, outside = authed(b, token, "POST", "/api/lists", {"name": "etc", "source": "/etc/passwd"})
            assert status == 400 and outside["details"][0]["field"] == "source"
            assert authed(b, token, "POST", "/api/lists", {"name": "mine", "source": "mine.hosts"})[0] == 409

            status, body = authed(b, token, "POST", "/api/blocklist/reload", timeout=60)
            assert status == 200 and body == {"status": "ok", "domains": body["domains"],
                                              "message": "Blocklists reloaded successfully"}
            assert body["domains"] >= 3
            r = b.query("tracker.local.test", use_edns=0)
            assert r.answer[0][0].address == "0.0.0.0"  # the cached upstream answer is not replayed
            assert [o.code for o in r.options if o.otype == 15] == [15]
            assert b.query("x.ads.remote.test").answer[0][0].address == "0.0.0.0"
            assert b.query("ok.ads.remote.test").answer[0][0].address != "0.0.0.0"  # @@ exception
            assert b.query("clean.remote.test").rcode() == dns.rcode.NOERROR
            _, ready = b.http("GET", "/readyz")
            assert ready["checks"]["blocklist"] == "ok"
            status, lists = authed(b, token, "GET", "/api/lists")
            assert {l["name"]: l["entries"] for l in lists["lists"]}["mine"] == 2
            # disable a list: it stops blocking after the next reload
            authed(b, token, "PUT", f"/api/lists/{local['id']}", {"enabled": False})
            authed(b, token, "POST", "/api/blocklist/reload", timeout=60)
            assert b.query("pixel.local.test").answer[0][0].address != "0.0.0.0"
            authed(b, token, "PUT", f"/api/lists/{local['id']}", {"enabled": True})
            authed(b, token, "POST", "/api/blocklist/reload", timeout=60)
        server.shutdown()  # the lists' source is gone: boot must use the last good index
        b2 = BurrowProcess(tmp_path / "b2", [upstream.address])
        b2.config["storage"]["data_dir"] = str(b.data_dir)
        with b2:
            assert b2.query("x.ads.remote.test").answer[0][0].address == "0.0.0.0"
            assert b2.query("pixel.local.test").answer[0][0].address == "0.0.0.0"
    finally:
        server.server_close()


def test_explain_endpoint_reports_stage_rule_and_answer(tmp_path, upstream):
    b = BurrowProcess(tmp_path / "e", [upstream.address])
    b.data_dir.mkdir(parents=True)
    (b.data_dir / "lists").mkdir()
    (b.data_dir / "lists" / "ads.txt").write_text("||ads.explain.test^\n/^tracker[0-9]+\\./\n")
    with b:
        token = admin_token(b)
        authed(b, token, "POST", "/api/lists", {"name": "ads", "source": "ads.txt", "format": "adblock"})
        assert authed(b, token, "POST", "/api/blocklist/reload", timeout=60)[1]["status"] == "ok"
        status, body = authed(b, token, "GET", "/api/blocklists/check?domain=x.ads.explain.test&client=192.168.1.9")
        assert status == 200 and body["decision"] == "blocked" and body["stage"] == "blocklist"
        assert body["rule"] == "ads" and body["answer"] == "0.0.0.0"
        assert body["matches"][0]["how"] == "subtree" and body["matches"][0]["entry"] == "ads.explain.test"
        body = authed(b, token, "GET", "/api/blocklists/check?domain=tracker7.example.org&type=AAAA")[1]
        assert body["decision"] == "blocked" and body["matches"][0]["how"] == "regex" and body["answer"] == "::"
        authed(b, token, "POST", "/api/whitelist", {"domain": "x.ads.explain.test"})
        body = authed(b, token, "GET", "/api/blocklists/check?domain=x.ads.explain.test")[1]
        assert body["decision"] == "allowed" and body["stage"] == "whitelist"
        assert {m["list"] for m in body["matches"]} == {"ads", "whitelist"}
        body = authed(b, token, "GET", "/api/blocklists/check?domain=clean.example.org")[1]
        assert body["decision"] == "forwarded" and body["matches"] == []
        assert authed(b, token, "GET", "/api/blocklists/check?domain=x.test&client=nope")[0] == 400
        assert authed(b, token, "GET", "/api/blocklists/check?domain=x.test&type=BOGUS")[0] == 400
