"""/api/rpz through the running server: a zone made by hand (rules CRUD, every action), one
from zone text, one from a URL; answers through dnspython; the export checked by Debian's
named-checkzone and loaded by a real Unbound, which then answers by its policy."""

import shutil
import subprocess
import time

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.integration.test_lists_live import serve_directory
from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess, free_port
from tests.support.timing import wait_for


def rules_of(b, token, zone_id):
    return {r["trigger"]: r for r in authed(b, token, "GET", f"/api/rpz/{zone_id}/rules")[1]["rules"]}


def test_hand_made_zone_rules_and_actions(tmp_path, upstream):
    b = BurrowProcess(tmp_path, [upstream.address])
    b.data_dir.mkdir(parents=True)
    (b.data_dir / "lists").mkdir()
    (b.data_dir / "lists" / "block.txt").write_text("passed.rpz.test\n")
    with b:
        token = admin_token(b)
        assert authed(b, token, "POST", "/api/lists", {"name": "plain", "source": "block.txt"})[0] == 201
        rules = [{"trigger": "nx.rpz.test", "action": "nxdomain"},
                 {"trigger": "*.nodata.rpz.test", "action": "nodata"},
                 {"trigger": "passed.rpz.test", "action": "passthru"},
                 {"trigger": "dropped.rpz.test", "action": "drop"},
                 {"trigger": "moved.rpz.test", "action": "redirect", "data": "192.0.2.7,2001:db8::7"},
                 {"trigger": "alias.rpz.test", "action": "redirect", "data": "www.elsewhere.test"}]
        status, zone = authed(b, token, "POST", "/api/rpz", {"name": "rpz.home", "rules": rules}, timeout=60)
        assert status == 201, zone
        assert zone["source_type"] == "hand" and zone["rules"] == 6 and zone["reload"]["status"] == "ok"
        zid = zone["id"]
        assert b.query("nx.rpz.test").rcode() == dns.rcode.NXDOMAIN
        r = b.query("a.nodata.rpz.test")
        assert r.rcode() == dns.rcode.NOERROR and not r.answer
        assert b.query("nodata.rpz.test").answer  # *. is below only
        assert b.query("passed.rpz.test").answer[0][0].address != "0.0.0.0"  # passthru beats the list
        with pytest.raises(dns.exception.Timeout):
            b.query("dropped.rpz.test", timeout=1.0)
        assert b.query("moved.rpz.test").answer[0][0].address == "192.0.2.7"
        assert b.query("moved.rpz.test", "AAAA").answer[0][0].address == "2001:db8::7"
        assert str(b.query("alias.rpz.test").answer[0][0].target) == "www.elsewhere.test."
        assert [z["name"] for z in authed(b, token, "GET", "/api/rpz")[1]["zones"]] == ["rpz.home"]

        # rules CRUD: each change is live when the call returns
        status, rule = authed(b, token, "POST", f"/api/rpz/{zid}/rules",
                              {"trigger": "later.rpz.test", "action": "nxdomain"}, timeout=60)
        assert status == 201 and rule["id"] == 7
        assert b.query("later.rpz.test").rcode() == dns.rcode.NXDOMAIN
        assert authed(b, token, "POST", f"/api/rpz/{zid}/rules",
                      {"trigger": "later.rpz.test", "action": "drop"})[0] == 409
        status, bad = authed(b, token, "POST", f"/api/rpz/{zid}/rules", {"trigger": "x.test", "action": "block"})
        assert status == 400 and bad["details"][0]["field"] == "action"
        status, bad = authed(b, token, "POST", f"/api/rpz/{zid}/rules",
                             {"trigger": "x.test", "action": "redirect", "data": "1.2.3.4,y.test"})
        assert status == 400 and bad["details"][0]["field"] == "data"
        status, bad = authed(b, token, "POST", f"/api/rpz/{zid}/rules", {"trigger": "a*b.test", "action": "drop"})
        assert status == 400 and bad["details"][0]["field"] == "trigger"
        status, changed = authed(b, token, "PUT", f"/api/rpz/{zid}/rules/{rule['id']}",
                                 {"trigger": "later.rpz.test", "action": "redirect", "data": "192.0.2.9"}, timeout=60)
        assert status == 200 and b.query("later.rpz.test").answer[0][0].address == "192.0.2.9"
        assert authed(b, token, "DELETE", f"/api/rpz/{zid}/rules/{rule['id']}", timeout=60)[0] == 200
        assert b.query("later.rpz.test").answer[0][0].address not in ("0.0.0.0", "192.0.2.9")
        assert authed(b, token, "DELETE", f"/api/rpz/{zid}/rules/999")[0] == 404
        assert "later.rpz.test" not in rules_of(b, token, zid)

        # export: loadable by BIND's checker and by a real Unbound
        status, text = b.http("GET", f"/api/rpz/{zid}/export", headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and "nx.rpz.test IN CNAME ." in text
        zonefile = tmp_path / "rpz.home.zone"
        zonefile.write_text(text)
        checker = shutil.which("named-checkzone")
        if checker:
            done = subprocess.run([checker, "-i", "local", "rpz.home", str(zonefile)], capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
        check_with_unbound(tmp_path, zonefile)

        # a zone from zone text
        text2 = "$TTL 60\n@ SOA l. h. 1 1 1 1 1\n@ NS l.\nfromtext.rpz.test CNAME .\n"
        status, z2 = authed(b, token, "POST", "/api/rpz", {"name": "rpz.text", "zone": text2}, timeout=60)
        assert status == 201 and z2["rules"] == 1
        assert b.query("fromtext.rpz.test").rcode() == dns.rcode.NXDOMAIN
        status, bad = authed(b, token, "POST", "/api/rpz", {"name": "bad name!", "rules": []})
        assert status == 400 and bad["details"][0]["field"] == "name"
        assert authed(b, token, "POST", "/api/rpz", {"name": "rpz.home", "rules": []})[0] == 409
        assert authed(b, token, "DELETE", f"/api/rpz/{z2['id']}")[0] == 200
        authed(b, token, "POST", "/api/blocklist/reload", timeout=60)
        assert b.query("fromtext.rpz.test").rcode() == dns.rcode.NOERROR
    # the rules survive a restart
    b2 = BurrowProcess(tmp_path / "again", [upstream.address])
    b2.config["storage"]["data_dir"] = str(b.data_dir)
    with b2:
        assert b2.query("nx.rpz.test").rcode() == dns.rcode.NXDOMAIN


def test_zone_from_url_is_read_only_and_exports(tmp_path, upstream):
    web = tmp_path / "web"
    web.mkdir()
    (web / "feed.rpz").write_text("$ORIGIN feed.rpz.\n@ SOA l. h. 1 1 1 1 1\n@ NS l.\n"
                                  "bad.url.test CNAME .\n*.wild.url.test CNAME rpz-drop.\n")
    server = serve_directory(web)
    try:
        with BurrowProcess(tmp_path / "b", [upstream.address]) as b:
            token = admin_token(b)
            status, zone = authed(b, token, "POST", "/api/rpz",
                                  {"name": "feed", "source": f"http://127.0.0.1:{server.server_port}/feed.rpz"})
            assert status == 201 and zone["source_type"] == "url"
            authed(b, token, "POST", "/api/blocklist/reload", timeout=60)
            assert b.query("bad.url.test").rcode() == dns.rcode.NXDOMAIN
            rules = rules_of(b, token, zone["id"])
            assert rules["*.wild.url.test"]["action"] == "drop" and rules["bad.url.test"]["action"] == "nxdomain"
            assert authed(b, token, "POST", f"/api/rpz/{zone['id']}/rules",
                          {"trigger": "x.test", "action": "drop"})[0] == 409
            status, text = b.http("GET", f"/api/rpz/{zone['id']}/export", headers={"Authorization": f"Bearer {token}"})
            assert "*.wild.url.test IN CNAME rpz-drop." in text
            status, viewer = authed(b, token, "POST", "/api/users",
                                    {"username": "v", "password": "viewer-pass-123", "role": "viewer"})
            login = b.http("POST", "/api/auth/login", {"username": "v", "password": "viewer-pass-123"})
            vtok = login[1]["access_token"]
            assert authed(b, vtok, "GET", "/api/rpz")[0] == 200
            assert authed(b, vtok, "POST", "/api/rpz", {"name": "x", "rules": []})[0] == 403
            assert authed(b, vtok, "DELETE", f"/api/rpz/{zone['id']}")[0] == 403
    finally:
        server.shutdown()


def check_with_unbound(tmp_path, zonefile):
    exe = shutil.which("unbound") or "/usr/sbin/unbound"
    if not shutil.which(exe):
        return  # scripts/test installs unbound; named-checkzone above still checked the file
    port = free_port()
    conf = tmp_path / "unbound-rpz.conf"
    conf.write_text(f"""server:
  interface: 127.0.0.1
  port: {port}
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "{tmp_path}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  module-config: "respip iterator"
  local-zone: "test." nodefault
  domain-insecure: "test."
rpz:
  name: rpz.home
  zonefile: "{zonefile}"
remote-control:
  control-enable: no
""")
    proc = subprocess.Popen([exe, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30  # bounds unbound's start on a busy machine; polled
        reply = None
        while time.monotonic() < deadline and reply is None:
            try:
                reply = dns.query.udp(dns.message.make_query("nx.rpz.test", "A"), "127.0.0.1", port=port, timeout=0.5)
            except Exception:
                if proc.poll() is not None:
                    raise AssertionError("unbound refused the exported zone: "
                                         + proc.stderr.read().decode()) from None
                time.sleep(0.2)
        assert reply is not None and reply.rcode() == dns.rcode.NXDOMAIN
        moved = dns.query.udp(dns.message.make_query("moved.rpz.test", "A"), "127.0.0.1", port=port, timeout=10)
        assert moved.answer and moved.answer[0][0].address == "192.0.2.7", moved.to_text()
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_dropped_query_is_its_own_decision_everywhere(tmp_path, upstream):
    """An RPZ rpz-drop. rule sends no answer, and the query shows as blocked by a drop
    (decision "dropped"), not as rate-limited: in the query log, the trace breakdown, the
    statistics and the metrics."""
    zone = "$TTL 60\n@ SOA l. h. 1 1 1 1 1\n@ NS l.\ngone.rpz.test CNAME rpz-drop.\n"
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        status, made = authed(b, token, "POST", "/api/rpz", {"name": "rpz.drop", "zone": zone}, timeout=60)
        assert status == 201 and made["rules"] == 1, made
        with pytest.raises(dns.exception.Timeout):
            b.query("gone.rpz.test", timeout=1.0)

        def logged():
            rows = authed(b, token, "GET", "/api/queries?domain=gone.rpz.test")[1]["queries"]
            return rows[0] if rows else None

        row = wait_for(logged, what="the dropped query in the query log")
        assert row["decision"] == "dropped" and row["blocked"] is True, row
        assert row["block_trace"][-1]["action"] == "drop", row
        assert authed(b, token, "GET", "/api/queries?blocked=true&domain=gone.rpz.test")[1]["total"] == 1

        traces = authed(b, token, "GET", "/api/traces/stats?since=1h")[1]
        assert traces["total_blocked"] == 1 and traces["by_action"] == {"drop": 1}, traces
        stats = authed(b, token, "GET", "/api/stats?since=1h")[1]
        assert stats["blocked_queries"] == 1 and stats["dropped_queries"] == 1, stats
        realtime = authed(b, token, "GET", "/api/realtime")[1]
        assert realtime["decisions"].get("dropped") == 1 and "rate_limited" not in realtime["decisions"]
        status, metrics = b.http("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
        assert status == 200
        assert 'burrow_queries_total{decision="dropped",qtype="A",rcode="0"} 1' in metrics, metrics
        assert 'decision="rate_limited"' not in metrics

