"""burrow.filtering.manager: download → compile in the child → atomic swap, with real files,
a real loopback HTTP server and the real compiler child (fakes only to inject failures)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random

import pytest

from burrow.filtering import download
from burrow.filtering.compiler import CompileReport, ListReport, compile_in_child
from burrow.filtering.index import Index
from burrow.filtering.manager import ListManager
from burrow.filtering.sources import ListStore
from burrow.storage.settings import SettingsDB
from tests.support.timing import until
from tests.unit.filtering.test_download import ListServer, etag_route, send_body

HOSTS_V1 = b"# v1\n127.0.0.1 localhost\n0.0.0.0 ads.example tracker.example # inline\n"
HOSTS_V2 = b"# v2\n0.0.0.0 new.example\n"
ADBLOCK = b"! adblock\n||adblock-only.example^\n@@||good.ads.example^\n"


class Clock:
    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def blocked(index: Index | None, name: str) -> bool:
    if index is None:
        return False
    return any(not m.allows for m in index.lookup(name) or ())


class Env:
    """A settings DB, a list store, a list server and a manager factory."""

    def __init__(self, tmp_path, server):
        self.tmp = tmp_path
        self.db = SettingsDB(tmp_path / "settings.db")
        self.lists_dir = tmp_path / "lists"
        self.lists_dir.mkdir()
        self.clock = Clock()
        self.store = ListStore(self.db, [self.lists_dir], clock=self.clock)
        self.server = server
        self.cache = tmp_path / "cache"
        self.index_path = tmp_path / "index" / "blocklist.idx"
        self.events: list[dict] = []
        self.swaps: list[Index] = []
        self.fetches: list[str] = []

    def manager(self, *, compile=None, fetch=None, **kw) -> ListManager:
        real_fetch = fetch or download.fetch

        async def counting_fetch(url, dest, **kwargs):
            self.fetches.append(url)
            return await real_fetch(url, dest, **kwargs)

        kw.setdefault("poll_interval", 0.05)
        return ListManager(
            self.store, self.cache, self.index_path,
            compile=compile or functools.partial(compile_in_child, timeout=60),
            fetch=counting_fetch, on_swap=self.swaps.append, on_event=self.events.append,
            clock=self.clock, rng=random.Random(1), **kw)

    def event_names(self) -> list[str]:
        return [e["event"] for e in self.events]

    def close(self):
        self.db.close()


@pytest.fixture
def env(tmp_path):
    with ListServer() as server:
        e = Env(tmp_path, server)
        yield e
        e.close()


def run(coro):
    return asyncio.run(coro)


def test_successful_refresh_swaps_and_events_arrive(env):
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V1)
    (env.lists_dir / "mine.txt").write_bytes(ADBLOCK)
    a = env.store.create("Hosts", env.server.url("/hosts.txt"))
    b = env.store.create("Mine", str(env.lists_dir / "mine.txt"), format="adblock")
    mgr = env.manager()

    report = run(mgr.refresh())
    assert report["status"] == "ok" and report["swapped"] is True
    assert len(env.swaps) == 1 and mgr.index is env.swaps[0]
    idx = mgr.index
    assert blocked(idx, "ads.example") and blocked(idx, "x.adblock-only.example")
    assert not blocked(idx, "localhost") and not blocked(idx, "example.com")
    assert os.path.exists(env.index_path) and not os.path.exists(str(env.index_path) + ".next")
    assert idx.path == str(env.index_path)
    assert mgr.reload_report() == {"status": "ok", "domains": idx.entries,
                                   "message": "Blocklists reloaded successfully"}
    assert idx.entries > 0 and report["entries"] == idx.entries

    names = env.event_names()
    for ev in ("refresh_started", "download_started", "download_finished", "compile_started",
               "compile_progress", "index_swapped", "refresh_finished"):
        assert ev in names, ev
    assert names.index("download_finished") < names.index("compile_started") \
        < names.index("index_swapped") < names.index("refresh_finished")
    phases = {e["phase"] for e in env.events if e["event"] == "compile_progress"}
    assert {"list_started", "list_finished", "finished"} <= phases
    assert all(e["topic"] == "lists" for e in env.events)
    assert str(env.cache) not in json.dumps(env.events)  # no internal path in any event

    ra, rb = env.store.get(a["id"]), env.store.get(b["id"])
    assert ra["last_success"] == env.clock.t and ra["last_error"] is None
    assert ra["entries"] == 2 and ra["etag"] == '"v1"' and ra["bytes"] == len(HOSTS_V1)
    assert rb["last_success"] == env.clock.t and rb["entries"] == 2
    assert rb["etag"].startswith("local:")
    assert str(env.cache) not in json.dumps([ra, rb])  # public dicts: no cache paths
    # Exactly one cached copy per list.
    assert len([n for n in os.listdir(env.cache) if n.startswith("list-")]) == 2


def test_conditional_requests_and_no_recompile_when_nothing_changed(env):
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V1)
    env.store.create("Hosts", env.server.url("/hosts.txt"))
    mgr = env.manager()
    run(mgr.refresh())
    assert "if-none-match" not in env.server.requests[-1][1]
    env.clock.t += 3 * 86400  # due again
    report = run(mgr.refresh())
    assert env.server.requests[-1][1]["if-none-match"] == '"v1"'
    assert report["status"] == "unchanged" and report["lists"][1]["download"] == "not_modified"
    assert len(env.swaps) == 1  # no recompile for a 304
    assert env.store.get(1)["last_success"] == env.clock.t
    # Not due: no request at all.
    n = len(env.server.requests)
    assert run(mgr.refresh())["status"] == "unchanged"
    assert len(env.server.requests) == n
    # force: downloads (conditional) and recompiles.
    report = run(mgr.refresh(force=True))
    assert report["status"] == "ok" and len(env.swaps) == 2 and len(env.server.requests) == n + 1
    assert env.server.requests[-1][1]["if-none-match"] == '"v1"'


def test_boot_uses_last_good_index_before_any_download(env):
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V1)
    env.store.create("Hosts", env.server.url("/hosts.txt"))
    first = env.manager()
    run(first.refresh())
    first.index.close()

    # Reboot: the list server now has new content, and is slow.
    order: list = []
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V2, etag='"v2"')

    async def slow_fetch(url, dest, **kw):
        order.append("fetch")
        await asyncio.sleep(0.2)
        return await download.fetch(url, dest, **kw)

    def on_swap(index):
        order.append(("swap", blocked(index, "ads.example"), blocked(index, "new.example")))

    async def scenario():
        mgr = ListManager(env.store, env.cache, env.index_path, fetch=slow_fetch,
                          compile=functools.partial(compile_in_child, timeout=60),
                          on_swap=on_swap, on_event=env.events.append, clock=env.clock,
                          poll_interval=0.05)
        await mgr.start()
        # Right after start, before any download: the old index answers.
        assert order == [("swap", True, False)]
        assert blocked(mgr.index, "ads.example")
        # Not due yet (attempted just now on the fake clock): the scheduler leaves it.
        await asyncio.sleep(0.3)
        assert order == [("swap", True, False)]
        report = await mgr.refresh(force=True)
        await mgr.stop()
        return report

    report = run(scenario())
    assert report["status"] == "ok"
    assert order == [("swap", True, False), "fetch", ("swap", False, True)]
    assert "index_loaded" in env.event_names()


def test_boot_without_index_then_scheduler_downloads(env):
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V1)
    env.store.create("Hosts", env.server.url("/hosts.txt"))

    async def scenario():
        mgr = env.manager()
        await mgr.start()
        assert env.swaps == []  # nothing on disk: nothing to load
        await until(lambda: env.swaps, what="the scheduler's first refresh")
        assert env.swaps and blocked(mgr.index, "ads.example")
        swaps = len(env.swaps)
        # Due again a day later (jitter ±10 %): the scheduler asks conditionally, no recompile.
        n = len(env.server.requests)
        env.clock.t += 86400 * 1.2
        mgr.wake()
        await until(lambda: len(env.server.requests) > n and not mgr.running,
                    what="the conditional refresh")
        assert env.server.requests[-1][1].get("if-none-match") == '"v1"'
        assert len(env.swaps) == swaps
        # Deleting the list: the scheduler notices the index is stale and recompiles.
        env.store.delete(1)
        mgr.wake()
        await until(lambda: len(env.swaps) > swaps and not mgr.running, what="the recompile")
        assert len(env.swaps) == swaps + 1 and not blocked(mgr.index, "ads.example")
        assert mgr.index.lists == {}
        await mgr.stop()
        # Its cached copy is gone with it.
        assert [n for n in os.listdir(env.cache) if n.startswith("list-")] == []

    run(scenario())


def test_failed_download_keeps_old_index_and_records_error(env):
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V1)
    env.store.create("Hosts", env.server.url("/hosts.txt"))
    mgr = env.manager()
    run(mgr.refresh())
    good = mgr.index
    success_at = env.store.get(1)["last_success"]

    env.server.routes["/hosts.txt"] = lambda h: send_body(h, b"down", status=500)
    env.clock.t += 2 * 86400
    report = run(mgr.refresh())
    assert report["lists"][1]["download"] == "failed" and "HTTP 500" in report["lists"][1]["error"]
    assert mgr.index is good and len(env.swaps) == 1 and blocked(mgr.index, "ads.example")
    row = env.store.get(1)
    assert "HTTP 500" in row["last_error"] and row["last_success"] == success_at
    assert row["last_attempt"] == env.clock.t and row["etag"] == '"v1"'
    fin = [e for e in env.events if e["event"] == "download_finished"][-1]
    assert fin["status"] == "failed" and "HTTP 500" in fin["error"]

    # Forced: recompiles from the previous copy; the list keeps blocking, the error stays.
    report = run(mgr.refresh(force=True))
    assert report["status"] == "ok" and blocked(mgr.index, "ads.example")
    assert "HTTP 500" in env.store.get(1)["last_error"]

    # A second list that never downloads does not stop the first one.
    env.store.create("Broken", env.server.url("/missing.txt"))
    report = run(mgr.refresh())
    assert report["status"] == "unchanged" and blocked(mgr.index, "ads.example")
    assert "HTTP 404" in env.store.get(2)["last_error"]
    report = run(mgr.refresh(force=True))
    assert report["status"] == "ok" and blocked(mgr.index, "ads.example")
    assert set(mgr.index.lists) == {0}  # list 2 has nothing to compile yet
    assert report["lists"][2]["download"] == "failed"


def test_failed_compile_keeps_old_index(env):
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V1)
    env.store.create("Hosts", env.server.url("/hosts.txt"))
    fail = {"on": False, "report": None}

    async def compile(sources, out, on_progress=None):
        if fail["on"]:
            return fail["report"] or CompileReport(ok=False, path=str(out), error="boom")
        return await compile_in_child(sources, out, on_progress, timeout=60)

    mgr = env.manager(compile=compile)
    run(mgr.refresh())
    good = mgr.index
    on_disk = env.index_path.read_bytes()
    copies = sorted(os.listdir(env.cache))

    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V2, etag='"v2"')
    fail["on"] = True
    report = run(mgr.refresh(force=True))
    assert report["status"] == "failed" and "boom" in report["error"]
    assert mgr.index is good and len(env.swaps) == 1 and blocked(good, "ads.example")
    assert env.index_path.read_bytes() == on_disk  # the last good index stays on disk
    assert sorted(os.listdir(env.cache)) == copies  # the new download was discarded
    row = env.store.get(1)
    assert "boom" in row["last_error"] and row["etag"] == '"v1"'  # validators of the live copy
    assert env.event_names()[-1] == "refresh_finished" and env.events[-1]["status"] == "failed"
    assert mgr.reload_report(report)["status"] == "error"

    # A list that failed as a whole gets its own reason.
    fail["report"] = CompileReport(
        ok=False, path="x", error="list(s) failed",
        lists={0: ListReport(list_id=0, error=f"ValueError: bad line in {mgr.cache_dir}/list-1.txt")})
    report = run(mgr.refresh(force=True))
    err = env.store.get(1)["last_error"]
    assert "ValueError: bad line in <list cache>/list-1.txt" in err
    assert mgr.cache_dir not in json.dumps([report, env.events, env.store.list()])

    # The compiler "succeeds" but writes garbage: the new file fails to open; old index stays.
    async def garbage(sources, out, on_progress=None):
        with open(out, "wb") as f:
            f.write(b"not an index")
        return CompileReport(ok=True, path=str(out))

    mgr._compile = garbage
    report = run(mgr.refresh(force=True))
    assert report["status"] == "failed" and mgr.index is good
    assert not os.path.exists(str(env.index_path) + ".next")
    assert env.index_path.read_bytes() == on_disk

    # Fixed: the next refresh goes through.
    fail["on"] = False
    mgr._compile = compile
    report = run(mgr.refresh(force=True))
    assert report["status"] == "ok" and blocked(mgr.index, "new.example")
    assert not blocked(mgr.index, "ads.example") and env.store.get(1)["etag"] == '"v2"'
    assert env.store.get(1)["last_error"] is None


def test_concurrent_refresh_calls_join(env):
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V1)
    env.server.routes["/b.txt"] = lambda h: send_body(h, b"0.0.0.0 b.example\n")
    env.store.create("Hosts", env.server.url("/hosts.txt"))
    env.store.create("B", env.server.url("/b.txt"))

    async def scenario():
        opened = asyncio.Event()
        calls = []

        async def gated_fetch(url, dest, **kw):
            calls.append(url)
            await opened.wait()
            return await download.fetch(url, dest, **kw)

        mgr = env.manager(fetch=gated_fetch)
        t1 = asyncio.ensure_future(mgr.refresh())
        # Both downloads reach the gate (a timer could wake this test before on a busy machine).
        await until(lambda: len(calls) == 2, what="both downloads to start")
        assert mgr.running
        t2 = asyncio.ensure_future(mgr.refresh())  # covered: joins
        t3 = asyncio.ensure_future(mgr.refresh(list_id=2))  # covered too
        t4 = asyncio.ensure_future(mgr.refresh(list_id=1, force=True))  # stronger: follow-up
        t5 = asyncio.ensure_future(mgr.refresh(list_id=2, force=True))  # joins the follow-up
        await asyncio.sleep(0.05)  # a silence check: a busy machine can only make it weaker
        assert len(calls) == 2  # only the first refresh is downloading
        opened.set()
        r1, r2, r3, r4, r5 = await asyncio.wait_for(asyncio.gather(t1, t2, t3, t4, t5), 60)
        return mgr, calls, (r1, r2, r3, r4, r5)

    mgr, calls, (r1, r2, r3, r4, r5) = run(scenario())
    assert r1 is r2 is r3 and r1["status"] == "ok"
    assert r4 is r5 and r4 is not r1
    assert len(calls) == 4  # 2 lists, then the one follow-up for lists 1 and 2 (forced)
    assert len([e for e in env.events if e["event"] == "refresh_started"]) == 2


def test_refresh_unknown_list_and_stop_cancels(env):
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V1)
    env.store.create("Hosts", env.server.url("/hosts.txt"))

    async def scenario():
        never = asyncio.Event()

        async def hanging_fetch(url, dest, **kw):
            await never.wait()

        mgr = env.manager(fetch=hanging_fetch)
        assert (await mgr.refresh(list_id=9))["status"] == "error"
        await mgr.start()
        await until(lambda: mgr.running, what="the scheduler's refresh")
        await asyncio.wait_for(mgr.stop(), 10)
        assert not mgr.running

    run(scenario())


def test_local_list_rechecked_at_read_time(env, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("0.0.0.0 secret.example\n")
    (env.lists_dir / "ok.txt").write_text("0.0.0.0 ok.example\n")
    os.symlink(env.lists_dir / "ok.txt", env.lists_dir / "link.txt")
    env.store.create("Local", str(env.lists_dir / "link.txt"))
    mgr = env.manager()
    assert run(mgr.refresh())["status"] == "ok" and blocked(mgr.index, "ok.example")

    # Unchanged local file: "not modified" (no copy, no recompile).
    env.clock.t += 2 * 86400
    report = run(mgr.refresh())
    assert report["status"] == "unchanged" and report["lists"][1]["download"] == "not_modified"

    # The symlink now points outside the allowed directory: refused, old copy kept.
    os.unlink(env.lists_dir / "link.txt")
    os.symlink(secret, env.lists_dir / "link.txt")
    env.clock.t += 2 * 86400
    report = run(mgr.refresh(force=True))
    assert "source:" in env.store.get(1)["last_error"]
    assert blocked(mgr.index, "ok.example") and not blocked(mgr.index, "secret.example")

    # A local file larger than the cap is refused.
    (env.lists_dir / "big.txt").write_bytes(b"0.0.0.0 big.example\n" * 1000)
    env.store.create("Big", str(env.lists_dir / "big.txt"))
    mgr2 = env.manager(max_bytes=1000)
    mgr2.index = mgr.index
    run(mgr2.refresh(list_id=2))
    assert "cap" in env.store.get(2)["last_error"]


def test_jittered_schedule(env):
    env.store.create("Hosts", "https://x.example/l", update_interval=86400)
    mgr = env.manager()
    row = env.store.get(1)
    assert mgr._due_at(row, {}) == float("-inf")  # never attempted: due now
    env.store.record_result(1, ok=True, at=1000.0)
    row = env.store.get(1)
    due = mgr._due_at(row, {1: "copy"})
    assert 1000 + 0.9 * 86400 <= due <= 1000 + 1.1 * 86400
    assert mgr._due_at(row, {1: "copy"}) == due  # stable until the next attempt
    env.store.record_result(1, ok=False, at=2000.0, error="x")
    row = env.store.get(1)
    assert 2000 + 0.9 * 1800 <= mgr._due_at(row, {1: "copy"}) <= 2000 + 1.1 * 1800  # retry sooner
    factors = set()
    for i in range(50):
        env.store.record_result(1, ok=True, at=3000.0 + i)
        factors.add(round(mgr._due_at(env.store.get(1), {1: "c"}) - 3000.0 - i))
    assert len(factors) > 10  # jitter differs per attempt


def test_an_async_event_listener_is_held_and_its_failure_logged(env, caplog):
    """An ``on_event`` that returns a coroutine runs as a task the manager holds (a task nobody
    references may be collected before it finishes), and its failure is logged like a sync
    listener's instead of surfacing, if ever, as "Task exception was never retrieved"."""
    env.server.routes["/hosts.txt"] = etag_route(HOSTS_V1)
    env.store.create("Hosts", env.server.url("/hosts.txt"))
    seen: list[str] = []

    async def listener(event):
        await asyncio.sleep(0)
        seen.append(event["event"])
        if event["event"] == "refresh_started":
            raise RuntimeError("listener broke")

    async def main():
        mgr = ListManager(env.store, env.cache, env.index_path,
                          compile=functools.partial(compile_in_child, timeout=60), on_event=listener,
                          clock=env.clock, rng=random.Random(1))
        report = await mgr.refresh()
        assert report["status"] == "ok"  # the listener's failure does not break the update
        deadline = asyncio.get_running_loop().time() + 5
        while not any(r.getMessage() == "list event listener failed" for r in caplog.records):
            assert asyncio.get_running_loop().time() < deadline, "the listener's failure was not logged"
            await asyncio.sleep(0.01)
        await mgr.stop()

    with caplog.at_level("ERROR", logger="burrow.filtering.manager"):
        run(main())
    assert "refresh_started" in seen and "refresh_finished" in seen
    failed = [r for r in caplog.records if r.getMessage() == "list event listener failed"]
    assert len(failed) == 1 and "listener broke" in str(failed[0].exc_info[1])
