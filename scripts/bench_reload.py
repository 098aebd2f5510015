"""Reload a 1M-name block list under dnsperf load: no query may fail or be late.

    scripts/bench-reload [--duration 60] [--qps 5000] [--reloads 3] [--out reload.json]

Issue 4's budget: zero failed or late (> 100 ms) queries while a 1M list is reloaded under
dnsperf load. Setup (everything on 127.0.0.1, pinned like scripts/bench):

- the upstream: a dnsmasq answering every name locally (198.18.0.1, TTL 3600; see
  scripts/bench.py), on the client CPU;
- Burrow alone on the server CPU (``burrow run --config``: loopback ports, rate limiting
  off, a fresh data dir, otherwise defaults: query log and decision trace on), with
  ../shared/data/derived/union-1M.domains.txt.gz copied into its data dir's ``lists/``
  folder and added as a block list through the API (``POST /api/lists``, then waiting
  until ``GET /api/lists`` shows the compiled index live). The list
  compiler is Burrow's own child process; it inherits Burrow's CPU pinning, so the
  compile shares the server CPU with the resolver (niced, as Burrow starts it);
- dnsperf on the client CPU, at a fixed rate (``-Q``, default 5000 queries/s; ``--qps 0``:
  half the maximum measured in a 3-second saturation run first), over a mix of names
  that are answered from the cache (Umbrella top names that are not in the list, asked
  once before the load) and names from the list (answered 0.0.0.0), interleaved
  (``--blocked-share``, default 0.5). dnsperf runs with ``-v``: one line per query with
  its rcode and latency, or ``T`` when no answer came within its timeout (5 s).

During the load, after ``--lead`` seconds, the script triggers ``--reloads`` reloads one
after the other, ``--gap`` seconds apart: each one first appends a new name to the list
file (a second gzip member), so the list really changed; ``POST /api/blocklist/reload``
(force) copies the file into the list cache, recompiles all 1M names in the child,
opens and verifies the new index and swaps it in (dropping the fast path) before it
answers. ``reload`` forces a full recompile even when nothing changed (``--no-touch``
tests that case). After each reload the new name must be blocked and the list's index
must have been rebuilt (``index_created`` moved).

Counted from dnsperf's per-query lines: failed queries (timeouts ``T``, SERVFAIL or any
rcode other than NOERROR), late queries (answered after more than ``--late-ms``, default
100 ms), max latency, and, by the time each line was read, which of them fell inside a
reload (from the request until 1 s after its answer). Queries still outstanding when
dnsperf's time limit ends (``I``) are reported but not counted as failures.

Exit status: 0 when every reload succeeded and no query failed or was late; 1 otherwise;
0 with ``bench-reload skipped: <reason>`` when ../shared/data, dnsperf, dnsmasq or burrow
is absent.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (scripts/bench.py: processes, dnsperf, Burrow's API)
from bench import (  # noqa: E402
    LOOPBACK,
    NAME_RE,
    TOPSITES,
    UNION_1M,
    BenchTimeout,
    Proc,
    Skip,
    pinned,
)

DNSPERF_TIMEOUT = 5.0  # dnsperf -t: no answer within this = lost (failed)
RELOAD_WINDOW_AFTER = 1.0  # seconds after a reload's answer still counted as "during"
LATENCY_BUCKETS_MS = (1, 5, 10, 50, 100, 1000)


# -- the load ---------------------------------------------------------------------------

class VerboseDnsperf:
    """dnsperf -v in the background; a thread reads its per-query lines as they come and
    keeps each latency with the time the line was read."""

    def __init__(self, args: argparse.Namespace, port: int, query_file: Path,
                 duration: float, qps: int) -> None:
        argv = ["dnsperf", "-s", LOOPBACK, "-p", str(port), "-d", str(query_file),
                "-l", f"{duration:g}", "-c", str(args.clients), "-Q", str(qps),
                "-t", f"{DNSPERF_TIMEOUT:g}", "-v"]
        if shutil.which("stdbuf"):
            argv = ["stdbuf", "-oL", *argv]  # a line as soon as the answer is seen
        self.argv = pinned(args.client_cpu, argv)
        self.duration = duration
        self.started = time.monotonic()
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, bufsize=1 << 16,
                                      preexec_fn=bench._die_with_parent)
        self.rcodes: dict[str, int] = {}
        self.latency = array("d")  # seconds, one per answered query
        self.read_at = array("d")  # monotonic time each answer line was read
        self.failed: list[tuple[float, str]] = []  # (read time, line) of T / non-NOERROR
        self.interrupted = 0
        self.other: list[str] = []  # the summary and status lines
        self.thread = threading.Thread(target=self._read, name="dnsperf-reader", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            now = time.monotonic()
            if not line.startswith("> "):
                self.other.append(line)
                continue
            fields = line.split()
            code = fields[1]
            if code == "I":
                self.interrupted += 1
                continue
            self.rcodes[code] = self.rcodes.get(code, 0) + 1
            if code == "T":
                self.failed.append((now, line.strip()))
                continue
            if code != "NOERROR":
                self.failed.append((now, line.strip()))
            try:
                latency = float(fields[-1])
            except ValueError:
                continue
            self.latency.append(latency)
            self.read_at.append(now)

    def wait(self) -> dict[str, Any]:
        try:
            self.popen.wait(timeout=self.duration + DNSPERF_TIMEOUT + 30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise RuntimeError("dnsperf did not stop in time") from None
        self.thread.join(timeout=30)
        stderr = self.popen.stderr.read() if self.popen.stderr else ""
        if self.popen.returncode != 0:
            raise RuntimeError(f"dnsperf failed ({self.popen.returncode}): {stderr[-2000:]}")
        return bench.parse_dnsperf("".join(self.other))

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


# -- query files ------------------------------------------------------------------------

def write_mix(path: Path, listed: list[str], count_cached: int, count_blocked: int,
              seed: int) -> tuple[list[str], list[str]]:
    """Cached names (Umbrella top names not in the list) and listed names, interleaved
    evenly; returns both lists."""
    in_list = set(listed)
    cached: list[str] = []
    seen: set[str] = set()
    with open(TOPSITES, encoding="utf-8", errors="replace") as source:
        for line in source:
            name = line.strip().rstrip(".").lower()
            if name and name not in seen and name not in in_list and NAME_RE.match(name):
                seen.add(name)
                cached.append(name)
                if len(cached) >= count_cached:
                    break
    rng = random.Random(seed)
    blocked = rng.sample([n for n in listed if NAME_RE.match(n)], count_blocked)
    # Interleave by position so blocked names are spread evenly through the file.
    keyed = [((i + 0.5) / len(cached), n) for i, n in enumerate(cached)]
    keyed += [((i + 0.5) / len(blocked), n) for i, n in enumerate(blocked)]
    keyed.sort()
    with open(path, "w") as out:
        out.write("".join(f"{name} A\n" for _, name in keyed))
    return cached, blocked


def append_name(list_file: Path, name: str) -> None:
    """Append ``name`` to the gzip list as a second gzip member (readers see one stream)."""
    with open(list_file, "ab") as out:
        out.write(gzip.compress(f"{name}\n".encode()))


# -- the run ----------------------------------------------------------------------------

def index_created(api: bench.BurrowApi) -> float | None:
    status, body = api.call("GET", "/api/lists")
    if status != 200 or not isinstance(body, dict):
        return None
    return body.get("index", {}).get("index_created")


def last_refresh(api: bench.BurrowApi) -> dict[str, Any]:
    status, body = api.call("GET", "/api/lists")
    report = (body.get("index", {}).get("last_refresh") or {}) if status == 200 else {}
    return {"status": report.get("status"), "swapped": report.get("swapped"),
            "entries": report.get("entries"),
            "compile": {k: (report.get("compile") or {}).get(k)
                        for k in ("seconds", "peak_rss_bytes", "entries")}}


def run(args: argparse.Namespace, workdir: Path, report: dict[str, Any]) -> bool:
    """Everything between the upstream's start and the figures; True when within budget."""
    upstream, up_port = bench.start_upstream(args, workdir)
    burrow: Proc | None = None
    load: VerboseDnsperf | None = None
    try:
        print("reading the 1M list ...", file=sys.stderr, flush=True)
        listed = bench.read_list_names(UNION_1M)
        mix_file = workdir / "mix.txt"
        cached, blocked = write_mix(mix_file, listed, args.cached_names, args.blocked_names,
                                    args.seed)
        del listed
        report["meta"]["mix"] = {"cached_names": len(cached), "blocked_names": len(blocked),
                                 "file_lines": len(cached) + len(blocked)}

        server_dir = workdir / "burrow"
        lists_dir = server_dir / "burrow-data" / "lists"
        lists_dir.mkdir(parents=True)
        list_file = lists_dir / UNION_1M.name
        shutil.copyfile(UNION_1M, list_file)
        print("starting Burrow and loading the list ...", file=sys.stderr, flush=True)
        burrow, port = bench.start_burrow(args, server_dir, up_port)
        report["burrow"] = {"command": burrow.argv}
        bench.wait_ready(burrow, port)
        loaded, api = bench.burrow_add_list(burrow, list_file.name)
        report["burrow"]["list"] = loaded
        bench.verify_blocked(port, blocked[:10], "burrow")
        rcode, addresses = bench.dns_answer(port, cached[0])
        if rcode != 0 or addresses != [bench.UPSTREAM_ADDRESS]:
            raise RuntimeError(f"cached name {cached[0]} answered {rcode} {addresses}")

        warm = bench.run_dnsperf(args, port, mix_file, duration=60, runs=1, clients=1,
                                 outstanding=20)
        report["warm"] = {k: warm[k] for k in ("queries_completed", "queries_lost", "rcodes")}
        qps = args.qps
        if not qps:
            probe = bench.run_dnsperf(args, port, mix_file, duration=3)
            report["saturation_probe"] = {k: probe[k] for k in ("qps", "queries_lost")}
            qps = max(100, int((probe["qps"] or 0) / 2))
        report["meta"]["qps"] = qps
        time.sleep(bench.SETTLE)
        report["burrow"]["rss_before_kib"] = bench.status_kib(burrow.pid, "VmRSS")

        print(f"load: {qps} queries/s for {args.duration:g} s, {args.reloads} reloads ...",
              file=sys.stderr, flush=True)
        cpu_before = bench.cpu_seconds(burrow.pid)
        load = VerboseDnsperf(args, port, mix_file, args.duration, qps)
        report["dnsperf_command"] = load.argv
        reloads: list[dict[str, Any]] = []
        end_at = load.started + args.duration
        next_at = load.started + args.lead
        for i in range(args.reloads):
            time.sleep(max(0.0, next_at - time.monotonic()))
            expected = max([r["seconds"] for r in reloads] or [loaded["seconds"]])
            if time.monotonic() + expected + args.tail > end_at:
                print(f"reload {i + 1}: not enough time left in --duration",
                      file=sys.stderr)
                break
            entry: dict[str, Any] = {"n": i + 1}
            before = index_created(api)
            marker = f"reload-{i + 1}.{report['meta']['run_token']}.bench.test"
            if args.touch:
                append_name(list_file, marker)
            started = time.monotonic()
            entry["start_s"] = round(started - load.started, 3)
            try:
                entry["answer"] = api.reload()
            except (RuntimeError, OSError) as exc:
                entry["error"] = str(exc)
            ended = time.monotonic()
            entry.update(seconds=round(ended - started, 3), end_s=round(ended - load.started, 3),
                         _start=started, _end=ended)
            entry["refresh"] = last_refresh(api)
            entry["rebuilt"] = index_created(api) != before
            if args.touch:
                rcode, addresses = bench.dns_answer(port, marker)
                entry["new_name_blocked"] = rcode == 0 and addresses == [bench.BLOCK_ADDRESS]
            reloads.append(entry)
            print(f"reload {i + 1}: {entry['seconds']:.2f} s "
                  f"{'ok' if 'error' not in entry else entry['error']}",
                  file=sys.stderr, flush=True)
            next_at = ended + args.gap
        perf = load.wait()
        cpu = sum(bench.cpu_seconds(burrow.pid)) - sum(cpu_before)
        if not burrow.alive():
            raise RuntimeError(f"burrow died under load:\n{burrow.log_tail()}")
        report["burrow"]["rss_after_kib"] = bench.status_kib(burrow.pid, "VmRSS")
        report["burrow"]["peak_rss_kib"] = bench.status_kib(burrow.pid, "VmHWM")
        report["burrow"]["cpu_s"] = round(cpu, 2)
        return summarise(args, report, load, perf, reloads)
    finally:
        if load is not None:
            load.stop()
        if burrow is not None:
            burrow.stop()
            report.setdefault("burrow", {})["log"] = str(burrow.log_path)
        upstream.stop()


def summarise(args: argparse.Namespace, report: dict[str, Any], load: VerboseDnsperf,
              perf: dict[str, Any], reloads: list[dict[str, Any]]) -> bool:
    late_s = args.late_ms / 1000
    latency, read_at = load.latency, load.read_at
    windows = [(r["_start"], r["_end"] + RELOAD_WINDOW_AFTER) for r in reloads]

    def window_of(t: float) -> int | None:
        for n, (start, end) in enumerate(windows):
            if start <= t <= end:
                return n
        return None

    in_window = [0] * len(windows)
    max_in_window = [0.0] * len(windows)
    late_lines: list[dict[str, Any]] = []
    for lat, at in zip(latency, read_at):
        n = window_of(at)
        if n is not None:
            in_window[n] += 1
            max_in_window[n] = max(max_in_window[n], lat)
        if lat > late_s:
            late_lines.append({"latency_ms": round(lat * 1000, 2),
                               "at_s": round(at - load.started, 3), "reload": None
                               if n is None else n + 1})
    ordered = sorted(latency)

    def pct(q: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    buckets: dict[str, int] = {}
    lower = 0.0
    for edge in LATENCY_BUCKETS_MS:
        count = bisect.bisect_right(ordered, edge / 1000) - bisect.bisect_right(ordered, lower)
        buckets[f"<= {edge} ms"] = count
        lower = edge / 1000
    buckets[f"> {LATENCY_BUCKETS_MS[-1]} ms"] = len(ordered) - bisect.bisect_right(ordered, lower)

    timeouts = load.rcodes.get("T", 0)
    servfail = load.rcodes.get("SERVFAIL", 0)
    other_bad = sum(c for code, c in load.rcodes.items()
                    if code not in ("NOERROR", "T", "SERVFAIL"))
    failed = timeouts + servfail + other_bad
    for n, r in enumerate(reloads):
        r["queries_answered_during"] = in_window[n]
        r["max_latency_during_ms"] = round(max_in_window[n] * 1000, 2)
        r.pop("_start"), r.pop("_end")
    reload_ok = (len(reloads) == args.reloads
                 and all("error" not in r and r["rebuilt"] and r.get("new_name_blocked", True)
                         for r in reloads))
    report["result"] = {
        "queries_sent": perf["queries_sent"], "queries_completed": perf["queries_completed"],
        "queries_lost": perf["queries_lost"], "timeouts": timeouts, "servfail": servfail,
        "other_failed_rcodes": other_bad, "failed": failed,
        "interrupted_at_end": load.interrupted,
        "late": len(late_lines), "late_threshold_ms": args.late_ms,
        "max_latency_ms": round(max(latency) * 1000, 2) if latency else None,
        "avg_latency_ms": perf["avg_latency_ms"],
        "p50_latency_ms": pct(0.50), "p99_latency_ms": pct(0.99),
        "p999_latency_ms": pct(0.999), "latency_buckets": buckets,
        "qps": perf["qps"], "run_time_s": perf["run_time_s"], "rcodes": load.rcodes,
        "reloads_requested": args.reloads, "reloads_done": len(reloads),
        "reloads_ok": reload_ok,
        "within_budget": failed == 0 and not late_lines and reload_ok,
    }
    report["reloads"] = reloads
    late_by: dict[str, int] = {}
    for late in late_lines:
        key = "outside a reload" if late["reload"] is None else f"reload {late['reload']}"
        late_by[key] = late_by.get(key, 0) + 1
    report["result"]["late_by_reload"] = late_by
    report["late_queries"] = late_lines[:200]
    report["failed_queries"] = [{"at_s": round(t - load.started, 3), "line": line}
                                for t, line in load.failed[:200]]
    return report["result"]["within_budget"]


def markdown(report: dict[str, Any]) -> str:
    meta, res = report["meta"], report["result"]
    burrow = report["burrow"]
    lines = [
        f"Burrow, 1M list reloaded under load — {meta['date']}, {meta['versions']['cpu']} "
        f"({meta['versions']['cpus']} CPUs), {meta['duration_s']:g} s at {meta['qps']:,} "
        f"queries/s ({meta['mix']['cached_names']:,} cached + {meta['mix']['blocked_names']:,} "
        f"blocked names, {meta['clients']} dnsperf clients), Burrow on CPU "
        f"{meta['server_cpu']}, dnsperf + upstream on CPU {meta['client_cpu']}",
        "",
        "| queries sent | completed | lost | SERVFAIL | other failed | late > "
        f"{res['late_threshold_ms']:g} ms | max latency ms | p99 ms | p99.9 ms | reloads |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {res['queries_sent']:,} | {res['queries_completed']:,} | {res['timeouts']:,} | "
        f"{res['servfail']:,} | {res['other_failed_rcodes']:,} | {res['late']:,} | "
        f"{res['max_latency_ms']:.2f} | {res['p99_latency_ms']:.3f} | "
        f"{res['p999_latency_ms']:.3f} | {res['reloads_done']} of {res['reloads_requested']} |",
        "",
        "| reload | started at s | took s | compile s | index rebuilt | new name blocked | "
        "answers during | max latency during ms |",
        "|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in report["reloads"]:
        compile_s = (r.get("refresh") or {}).get("compile", {}).get("seconds")
        lines.append(
            f"| {r['n']} | {r['start_s']:.1f} | {r['seconds']:.2f} | "
            f"{'–' if compile_s is None else format(compile_s, '.2f')} | "
            f"{'yes' if r['rebuilt'] else 'NO'} | "
            f"{ {True: 'yes', False: 'NO', None: '–'}[r.get('new_name_blocked')] } | "
            f"{r['queries_answered_during']:,} | {r['max_latency_during_ms']:.2f} |"
            + (f" error: {r['error']}" if "error" in r else ""))
    buckets = ", ".join(f"{k}: {v:,}" for k, v in res["latency_buckets"].items())
    lines += ["", f"Latency buckets: {buckets}."]
    mib = {k: (burrow.get(k) or 0) / 1024 for k in ("rss_before_kib", "rss_after_kib",
                                                    "peak_rss_kib")}
    lines.append(f"Burrow RSS: {mib['rss_before_kib']:.1f} MiB before the load, "
                 f"{mib['rss_after_kib']:.1f} MiB after, peak {mib['peak_rss_kib']:.1f} MiB; "
                 f"CPU {burrow.get('cpu_s')} s during the load.")
    if res["interrupted_at_end"]:
        lines.append(f"{res['interrupted_at_end']} queries were in flight when dnsperf's "
                     "time limit ended (not counted as failed).")
    if res["late_by_reload"]:
        lines.append("Late queries by when they were answered: "
                     + ", ".join(f"{k}: {v:,}" for k, v in res["late_by_reload"].items()) + ".")
    verdict = ("within budget: no failed or late query"
               if res["within_budget"] else
               f"BUDGET MISSED: {res['failed']} failed, {res['late']} late"
               + ("" if res["reloads_ok"] else ", and not every reload succeeded"))
    lines += ["", f"Verdict: {verdict}."]
    return "\n".join(lines) + "\n"


# -- entry ------------------------------------------------------------------------------

def preflight(args: argparse.Namespace) -> None:
    for path in (TOPSITES, UNION_1M):
        if not path.exists():
            raise Skip(f"{path} is missing (the shared data folder {bench.DATA_DIR})")
    for tool in ("dnsperf", "dnsmasq"):
        if shutil.which(tool) is None:
            raise Skip(f"{tool} is not installed (apt-get install dnsmasq-base dnsperf)")
    if bench.burrow_command() is None:
        raise Skip("no burrow executable (pip install -e . in the repo)")
    if shutil.which("taskset") is None:
        print("warning: taskset missing, processes are not pinned", file=sys.stderr)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench-reload",
        description="Reload a 1M-name block list in Burrow under dnsperf load and count "
                    "failed and late queries (loopback only). Exits 1 if any.")
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of dnsperf load (default 60)")
    parser.add_argument("--qps", type=int, default=5000,
                        help="dnsperf -Q: offered queries per second (default 5000; 0: half "
                             "the maximum measured in a 3-second saturation run)")
    parser.add_argument("--clients", type=int, default=4, help="dnsperf -c (default 4)")
    parser.add_argument("--reloads", type=int, default=3, help="reloads to trigger (default 3)")
    parser.add_argument("--lead", type=float, default=5.0,
                        help="seconds of load before the first reload (default 5)")
    parser.add_argument("--gap", type=float, default=5.0,
                        help="seconds between one reload's answer and the next request "
                             "(default 5)")
    parser.add_argument("--tail", type=float, default=5.0,
                        help="seconds of load kept after the last reload (default 5)")
    parser.add_argument("--late-ms", type=float, default=100.0,
                        help="an answer slower than this is late (default 100)")
    parser.add_argument("--cached-names", type=int, default=1000,
                        help="Umbrella top names not in the list, answered from the cache "
                             "(default 1000)")
    parser.add_argument("--blocked-names", type=int, default=1000,
                        help="names drawn from the list (default 1000)")
    parser.add_argument("--no-touch", dest="touch", action="store_false",
                        help="do not append a name to the list before each reload (the "
                             "reload still recompiles everything)")
    parser.add_argument("--seed", type=int, default=4, help="random seed (default 4)")
    parser.add_argument("--burrow-config-extra", dest="extra_toml", default="",
                        help="TOML merged into Burrow's generated config "
                             "(a string, or @path to read a file)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the work dir (config, Burrow's log, query file)")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU for Burrow (0)")
    parser.add_argument("--client-cpu", type=int, default=1,
                        help="CPU for dnsperf, the upstream and this script (1)")
    parser.add_argument("--timeout", type=float, default=0,
                        help="overall limit in seconds (default: --duration + 240)")
    args = parser.parse_args(argv)
    if not 5 <= args.duration <= 600:
        parser.error("--duration must be within [5, 600] seconds")
    if not 0 <= args.qps <= 1_000_000:
        parser.error("--qps must be within 0..1000000")
    if not 0 < args.clients <= 1000:
        parser.error("--clients must be within 1..1000")
    if not 1 <= args.reloads <= 100:
        parser.error("--reloads must be within 1..100")
    if not (1 <= args.cached_names <= 100_000 and 1 <= args.blocked_names <= 500_000):
        parser.error("--cached-names must be within 1..100000, --blocked-names 1..500000")
    args.upstream_cpu = args.client_cpu
    if (os.cpu_count() or 1) < 2:
        print("warning: one CPU only; Burrow and dnsperf share it", file=sys.stderr)
        args.server_cpu = args.client_cpu = args.upstream_cpu = 0
    bench.load_extra_toml(args, parser)
    if not args.timeout:
        args.timeout = args.duration + 240
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        preflight(args)
    except Skip as exc:
        print(f"bench-reload skipped: {exc}")
        return 0
    try:  # this script reads dnsperf's lines: keep it off the server's CPU
        os.sched_setaffinity(0, {args.client_cpu})
    except (AttributeError, OSError):
        pass

    bench.arm_timeout(args.timeout)
    workdir = Path(tempfile.mkdtemp(prefix="burrow-bench-reload-"))
    ok = False
    report: dict[str, Any] = {"meta": {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": bench.versions(), "duration_s": args.duration, "clients": args.clients,
        "qps_requested": args.qps or "auto (half of max)", "reloads": args.reloads,
        "lead_s": args.lead, "gap_s": args.gap, "late_ms": args.late_ms,
        "touch": args.touch, "list": str(UNION_1M), "seed": args.seed,
        "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
        "run_token": f"r{random.randrange(16**6):06x}",
        "burrow_config_extra": args.extra_toml or None,
        "dnsperf_timeout_s": DNSPERF_TIMEOUT,
    }}
    try:
        ok = run(args, workdir, report)
        print(markdown(report))
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")
            print(f"figures written to {args.out}", file=sys.stderr)
    except (BenchTimeout, RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"bench-reload failed: {exc}", file=sys.stderr)
        ok = False
    finally:
        signal.alarm(0)
        if args.keep_logs:
            print(f"logs, config and query file kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
