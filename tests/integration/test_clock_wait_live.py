"""The real ``burrow`` process with ``clock.wait_for_sync`` on (issue 16: a board without a
real-time clock waits for network time before its first list download). The timesyncd file is in
a temporary folder; the list server on 127.0.0.1 records every request. While the clock is not
synchronised Burrow answers DNS and is ready, blocks from local lists, downloads nothing, refuses
an owner's "update now" with 409 and says why in /api/system and the dashboard; once the file
appears the download happens by itself and the status flips."""

from __future__ import annotations

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.timing import wait_for
from tests.unit.filtering.test_download import ListServer, etag_route

HOSTS = b"0.0.0.0 ads.clock.test\n"
WAITING = "waiting for the clock to be set before downloading block lists"


def blocked(b: BurrowProcess, name: str) -> bool:
    answer = b.query(name, use_edns=0).answer
    return bool(answer) and answer[0][0].address == "0.0.0.0"


def test_lists_wait_for_the_clock_then_download_at_once(tmp_path, upstream):
    sync_dir = tmp_path / "timesync"
    sync_dir.mkdir()
    sync_file = sync_dir / "synchronized"
    with ListServer() as lists_server:
        lists_server.routes["/hosts.txt"] = etag_route(HOSTS)
        b = BurrowProcess(tmp_path / "b", [upstream.address], {
            # The kernel's word is left out: this machine's kernel clock may well be synchronised.
            "clock": {"wait_for_sync": True, "sync_file": str(sync_file), "sync_sources": ["timesyncd"]},
        })
        b.data_dir.mkdir(parents=True)
        (b.data_dir / "lists").mkdir()
        (b.data_dir / "lists" / "mine.hosts").write_text("0.0.0.0 tracker.clock.test\n")
        with b:
            token = admin_token(b)
            status, remote = authed(b, token, "POST", "/api/lists",
                                    {"name": "remote", "source": lists_server.url("/hosts.txt"), "format": "hosts"})
            assert status == 201, remote
            status, local = authed(b, token, "POST", "/api/lists", {"name": "mine", "source": "mine.hosts"})
            assert status == 201, local

            # The scheduler ran (the local list, added after the remote one, blocks now)...
            wait_for(lambda: blocked(b, "tracker.clock.test"), what="the local list to be compiled")
            # ...and left the remote list alone.
            assert lists_server.requests == []
            assert not blocked(b, "ads.clock.test")
            status, system = authed(b, token, "GET", "/api/system")
            assert status == 200
            clock = system["clock"]
            assert clock["synchronized"] is False and clock["source"] == "none"
            assert clock["waiting"] is True and clock["wait_for_sync"] is True and clock["waiting_since"]
            assert WAITING in system["status"]["reasons"] and system["status"]["led"] == "booting"
            status, dashboard = authed(b, token, "GET", "/api/dashboard")
            assert WAITING in dashboard["status"]["reasons"]
            assert dashboard["lists"]["index"]["waiting_for_clock"] is True
            status, ready = b.http("GET", "/readyz")
            assert status == 200, ready  # DNS works without the clock

            # An owner's "update now" gets a clear refusal, not a TLS failure.
            for path in ("/api/blocklist/reload", f"/api/lists/{remote['id']}/update"):
                status, body = authed(b, token, "POST", path)
                assert status == 409, (path, body)
                assert body["error"] == "clock_not_set" and body["code"] == 409
                assert "clock is not set" in body["message"]
            assert lists_server.requests == []

            sync_file.touch()  # systemd-timesyncd's first synchronisation
            wait_for(lambda: blocked(b, "ads.clock.test"), what="the deferred download")
            assert [path for path, _ in lists_server.requests] == ["/hosts.txt"]
            status, system = authed(b, token, "GET", "/api/system")
            clock = system["clock"]
            assert clock["synchronized"] is True and clock["source"] == "timesyncd"
            assert clock["waiting"] is False and clock["waiting_since"] is None
            assert WAITING not in system["status"]["reasons"]
            status, body = authed(b, token, "POST", f"/api/lists/{remote['id']}/update", timeout=60)
            assert status == 200 and body["status"] == "ok", body
