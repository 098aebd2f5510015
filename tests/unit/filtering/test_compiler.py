"""The index compiler: child process, real parsers, .gz, failures, progress, timeout, cancel."""

from __future__ import annotations

import asyncio
import gzip
import os
import time

import pytest

from burrow.filtering.compiler import CompileReport, Source, compile_in_child, compile_index
from burrow.filtering.index import Index
from burrow.filtering.rules import Rule
from tests.support.timing import until

HOSTS = """\
# a hosts list
127.0.0.1 localhost
0.0.0.0 ads.example.com tracker.example.net  # two names
0.0.0.0 metrics.example.org
"""
DOMAINS_GZ = "# header one\n# header two\nzipped.example\nalso-zipped.example\n"
ADBLOCK = """\
! adblock
||adserver.test^
||ads.example.com^
@@||good.adserver.test^
/^banner[0-9]+\\./
||adserver.test^$badfilter
||keep.test^
"""


def slow_parser(path, fmt):
    """Stands in for a parser stuck on a huge list: records its pid, then sleeps."""
    with open(path, "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(60)
    return [Rule("never.example", "exact", "block")]


def gone(pid: int, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def lists(tmp_path):
    hosts = tmp_path / "hosts.txt"
    hosts.write_text(HOSTS)
    gz = tmp_path / "domains.txt.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(DOMAINS_GZ)
    adblock = tmp_path / "adblock.txt"
    adblock.write_text(ADBLOCK)
    return [
        Source(list_id=0, path=str(hosts), name="hosts"),
        Source(list_id=1, path=str(gz), format="domains", name="gz", mode="nxdomain"),
        Source(list_id=2, path=str(adblock), name="adblock"),
    ]


def test_compile_in_child_with_real_parsers_and_gz(tmp_path, lists):
    out = tmp_path / "index.bin"
    events = []
    report = asyncio.run(compile_in_child(lists, out, on_progress=events.append, timeout=60))
    assert report.ok, report.error
    assert report.lists[1].entries == 2 and report.lists[0].entries == 3
    assert report.peak_rss_bytes > 0 and report.file_bytes == out.stat().st_size
    with Index.open(out) as ix:
        assert ix.lookup("zipped.example")[0].mask == 1 << 1
        assert ix.lists[1]["mode"] == "nxdomain"
        # ads.example.com: hosts (exact) and adblock (subtree) — one match each.
        found = {(m.how, m.mask) for m in ix.lookup("ads.example.com")}
        assert found == {("exact", 1 << 0), ("subtree", 1 << 2)}
        # $badfilter removed ||adserver.test^; its exception and other rules stay.
        assert ix.lookup("x.adserver.test") is None
        assert ix.lookup("a.keep.test")[0].how == "subtree"
        assert ix.lookup("good.adserver.test", complete=True)[0].action == "allow"
        assert ix.lookup("banner12.example")[0].how == "regex"
    kinds = [e["event"] for e in events]
    assert kinds[0] == "list_started" and kinds[-1] == "finished"
    assert kinds.count("list_finished") == 3 and "writing" in kinds
    finished = [e for e in events if e["event"] == "list_finished"]
    assert [e["list_id"] for e in finished] == [0, 1, 2]


def test_in_process_compile_reports_parser_counters(tmp_path, lists):
    report = compile_index(lists, tmp_path / "i.bin")
    assert report.ok
    assert report.lists[0].skipped >= 1  # the localhost line
    assert report.rules == sum(lr.entries for lr in report.lists.values())


def test_failing_source_keeps_the_old_index(tmp_path, lists):
    out = tmp_path / "index.bin"
    assert asyncio.run(compile_in_child(lists, out, timeout=60)).ok
    before = out.read_bytes()
    broken = lists + [Source(list_id=9, path=str(tmp_path / "missing.txt"), name="gone")]
    report = asyncio.run(compile_in_child(broken, out, timeout=60))
    assert not report.ok
    assert "9" in report.error and "FileNotFoundError" in report.lists[9].error
    assert report.lists[0].error is None
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_bad_sources_are_reported_not_raised(tmp_path):
    report = compile_index([{"list_id": 64, "path": "x"}], tmp_path / "i.bin")
    assert not report.ok and "list_id" in report.error
    report = compile_index(
        [{"list_id": 1, "path": "x"}, {"list_id": 1, "path": "y"}], tmp_path / "i.bin"
    )
    assert not report.ok and "twice" in report.error
    assert not (tmp_path / "i.bin").exists()


def test_timeout_kills_the_child_and_keeps_the_old_index(tmp_path, monkeypatch):
    out = tmp_path / "index.bin"
    out.write_bytes(b"old")
    pidfile = tmp_path / "pid"
    children = []
    spawn = asyncio.create_subprocess_exec

    async def recording_spawn(*args, **kw):
        children.append(await spawn(*args, **kw))
        return children[-1]

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording_spawn)
    report = asyncio.run(
        compile_in_child(
            [Source(list_id=0, path=str(pidfile))],
            out,
            timeout=3,
            parser="tests.unit.filtering.test_compiler:slow_parser",
        )
    )
    assert not report.ok and "timed out" in report.error
    # The child is gone, whether it was in the slow parser by then (it sleeps a minute there)
    # or a busy machine had not even let the niced child start it within the 3 s.
    assert len(children) == 1 and gone(children[0].pid)
    if pidfile.exists() and pidfile.read_text():
        assert int(pidfile.read_text()) == children[0].pid
    assert out.read_bytes() == b"old"


def test_cancel_kills_the_child(tmp_path):
    pidfile = tmp_path / "pid"

    async def scenario():
        task = asyncio.ensure_future(
            compile_in_child(
                [Source(list_id=0, path=str(pidfile))],
                tmp_path / "index.bin",
                timeout=60,
                parser="tests.unit.filtering.test_compiler:slow_parser",
            )
        )
        await until(lambda: pidfile.exists() and pidfile.read_text(), what="the child in the parser")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert gone(int(pidfile.read_text()))
    assert not (tmp_path / "index.bin").exists()


def test_loop_stays_responsive_while_compiling(tmp_path, lists):
    async def scenario():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.ensure_future(ticker())
        report = await compile_in_child(lists, tmp_path / "index.bin", timeout=60)
        t.cancel()
        return report, ticks

    report, ticks = asyncio.run(scenario())
    assert report.ok and ticks > 0


def test_report_round_trips_through_json_shape(tmp_path, lists):
    report = compile_index(lists, tmp_path / "i.bin")
    again = CompileReport.from_dict(report.to_dict())
    assert again == report


def test_real_lists_compile_and_agree(shared_data, tmp_path):
    hz = shared_data / "hagezi"
    sources = [
        Source(list_id=0, path=str(hz / "light.domains.txt"), name="domains"),
        Source(list_id=1, path=str(hz / "light.adblock.txt"), name="adblock"),
        Source(list_id=2, path=str(hz / "light.rpz.txt"), name="rpz"),
    ]
    report = compile_index(sources, tmp_path / "i.bin")
    assert report.ok, report.error
    with Index.open(tmp_path / "i.bin") as ix:
        sample = [
            line.strip()
            for line in (hz / "light.domains.txt").read_text().splitlines()
            if line and not line.startswith("#")
        ][::997]
        for name in sample:
            found = ix.lookup(name)
            assert found is not None and masks_of(found) & 0b011 == 0b011, name


def masks_of(found) -> int:
    out = 0
    for m in found:
        out |= m.mask
    return out
