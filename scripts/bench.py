"""Benchmark Burrow against Debian's dnsmasq: pairs of measurements, in one run.

    scripts/bench [--pairs 5] [--duration 8] [--rates max,2000,20000] [--clients 4] [--only S]
                  [--phases hit,miss,blocked,blocked-cold,mixed] [--out bench.json]

Setup (everything on 127.0.0.1):

- one *upstream*: a separate dnsmasq that answers every name locally
  (``--address=/#/198.18.0.1 --local-ttl=3600``), pinned to the client core, so the upstream
  never limits the servers under test. The address is in 198.18.0.0/15 (RFC 2544, set
  aside for benchmarks): public as far as Burrow's DNS-rebinding protection is concerned,
  so answers are passed on (a private address such as 10.x would be blocked as rebinding);
- the two servers under test, both running at once, both pinned to the server core:
  ``burrow run --config`` (a generated TOML: the upstream above, rate limiting off, a fresh
  data dir) and ``dnsmasq --cache-size=N --dns-forward-max=1000`` forwarding to the same
  upstream (no query logging; N = 1100 for hit and miss, 100000 with the list: see
  dnsmasq_cache_size). Only one of them is under load at a time; the other is idle;
- dnsperf pinned to the client core.

Method. Each phase is measured at each load of ``--rates``: ``max`` (saturation: dnsperf as
fast as it goes, 100 queries outstanding) and fixed offered rates (dnsperf ``-Q``). For
each phase and load the bench runs ``--pairs`` pairs, Burrow then dnsmasq, one after the
other (A B A B ...), with the same query file for both members of a pair. A pair gives one
ratio Burrow/dnsmasq per figure; the report gives each ratio as the median over the pairs
with its min-max, so one lucky or unlucky run cannot make the figure.

Figures per measurement:

- CPU per query: the server process's utime + stime (all threads, /proc/PID/stat) over
  the dnsperf run, divided by the queries dnsperf saw answered; user and system apart;
- at a fixed rate, p50 and p99 latency from dnsperf ``-v``'s per-query lines (this dnsperf,
  2.10, has no latency histogram): nearest-rank percentiles over every query sent, a lost
  query (no answer within dnsperf's timeout, or still outstanding at the end) ranked
  slowest, so a p99 exists only while at most 1% were lost. At saturation the latency is
  queueing (~ outstanding / QPS), so only dnsperf's average is kept;
- QPS achieved, queries lost, and the queries that reached the upstream (its SIGUSR1
  statistics).

Phases:

- ``hit``: the top --hit-names valid names of the Umbrella popularity list, each asked
  once to warm the cache, then looped over: every answer comes from cache;
- ``miss``: unique, never-repeated names (``<n>.<token>.miss.bench.test``), a new token
  per pair: every query is forwarded to the upstream;
- ``blocked``: both servers hold the same 1M-name block list
  (../shared/data/derived/union-1M.domains.txt.gz). Burrow gets the file in its data dir's
  ``lists/`` folder, added as a block list through the API (``POST /api/lists``; the bench
  waits until ``GET /api/lists`` shows the compiled index live); dnsmasq gets a generated
  ``--conf-file`` with one ``address=/<name>/0.0.0.0`` line per name. dnsperf loops over
  --blocked-names names drawn at random from the list (each asked once first, as in
  ``hit``): every answer is a block (0.0.0.0), checked on a sample before the load;
- ``blocked-cold``: never-repeated names from the rest of the list, each asked once; every
  measurement gets a slice of the list of its own (the same slice for both members of a
  pair), so no server sees a name twice; a measurement ends when its slice runs out;
- ``mixed``: home traffic. A stream drawn from the Umbrella top-100k with the repetition of
  real traffic: the name of rank r is asked with probability proportional to 1/r (Zipf,
  the shape of DNS popularity), a new stream per pair (one more, first, to warm the
  caches). About 16% of the Umbrella names are in the 1M list: blocked; the rest are
  forwarded the first time and answered from cache after.

The list phases run on a second start of both servers (with the list loaded), so the hit and
miss figures stay those of servers without lists.

Output: one Markdown table per phase (a row per load) on stdout; with --out, a JSON file
with every measurement of every pair (``measurements``), the summaries, the versions and the
command, so a figure in docs/benchmarks.md can be traced to its raw pairs.

The bench skips (exit 0, with the reason) when ../shared/data (or, for the list phases, the
1M list in it), dnsperf or dnsmasq is absent.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import gzip
import itertools
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
TOPSITES = DATA_DIR / "topsites" / "umbrella-top-100k.txt"
UNION_1M = DATA_DIR / "derived" / "union-1M.domains.txt.gz"
PHASES = ("hit", "miss", "blocked", "blocked-cold", "mixed")
LIST_PHASES = ("blocked", "blocked-cold", "mixed")  # run with the 1M list loaded
SERVERS = ("burrow", "dnsmasq")  # A and B of every pair, in this order
DEFAULT_RATES = "max,2000,20000"
BLOCK_ADDRESS = "0.0.0.0"
LOOPBACK = "127.0.0.1"
UPSTREAM_ADDRESS = "198.18.0.1"  # RFC 2544 benchmark net: not private (rebind protection)
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT = 30.0  # seconds a server may take to answer its first query
SETTLE = 1.0  # seconds of quiet after start before idle RSS is read
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
LIST_TIMEOUT = 300.0  # seconds a server may take to load the 1M list and answer
VERIFY_SAMPLE = 20  # blocked names checked for a 0.0.0.0 answer before the load
SATURATION_QPS = 150_000  # sizes the name files of a `max` load: above either server's rate
MIN_TICKS = 100  # CPU ticks under which a measurement's CPU figure is flagged (±1% or worse)
RATE_SHORTFALL = 0.95  # achieved / offered under which a fixed rate counts as not reached
DNSMASQ_CACHE_LISTS = 100_000  # with the list: every forwarded Umbrella name (mixed) fits
DNSMASQ_CACHE_MARGIN = 1.1  # without: the hit names and 10%; a full cache costs dnsmasq
# per insertion in proportion to its size (docs/benchmarks.md), which the miss phase fills
DNSMASQ_FORWARD_MAX = 1000  # above dnsperf's 100 outstanding: no query refused for a slot
ADMIN_USER, ADMIN_PASSWORD = "operator", "Loopback-Bench-Passphrase-2024"
NAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                     r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


class Skip(Exception):
    """The bench cannot run here; not a failure."""


class BenchTimeout(Exception):
    """The overall --timeout ran out."""


# -- processes --------------------------------------------------------------------------

def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: if this script is killed outright, its servers die with it.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


class Proc:
    """A child process with its log file; stop() always ends it (TERM, then KILL)."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                      stderr=subprocess.STDOUT, cwd=log_path.parent,
                                      preexec_fn=_die_with_parent)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=STOP_TIMEOUT)
        self.log.close()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(cpu), *argv]


def free_port() -> int:
    """A port free for both UDP and TCP on loopback (bounded attempts)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOPBACK, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port for UDP+TCP")


def dns_query(name: str, qid: int) -> bytes:
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p)
    return header + labels + b"\x00" + struct.pack("!HH", 1, 1)


def wait_ready(proc: Proc, port: int, timeout: float = READY_TIMEOUT) -> float:
    """Ask for ready.bench.test until an answer comes; return seconds taken."""
    started = time.monotonic()
    deadline = started + timeout
    qid = random.randrange(1, 0xFFFF)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.05)
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited (code {proc.popen.returncode}) "
                                   f"before answering:\n{proc.log_tail()}")
            sock.sendto(dns_query("ready.bench.test", qid), (LOOPBACK, port))
            try:
                while True:
                    data = sock.recv(4096)
                    if data[:2] == struct.pack("!H", qid):
                        return time.monotonic() - started
            except (socket.timeout, ConnectionRefusedError):
                continue
    raise RuntimeError(f"{proc.name} did not answer within {timeout}s:\n{proc.log_tail()}")


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        length = data[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length == 0:
            return pos + 1
        pos += 1 + length


def dns_answer(port: int, name: str, timeout: float = 2.0) -> tuple[int, list[str]]:
    """Ask ``name`` A once over UDP; (rcode, the A addresses in the answer section)."""
    qid = random.randrange(1, 0xFFFF)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(dns_query(name, qid), (LOOPBACK, port))
        while True:
            data = sock.recv(4096)
            if data[:2] == struct.pack("!H", qid):
                break
    flags, qdcount, ancount = struct.unpack("!HHH", data[2:8])
    pos = 12
    for _ in range(qdcount):
        pos = _skip_name(data, pos) + 4
    addresses = []
    for _ in range(ancount):
        pos = _skip_name(data, pos)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            addresses.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return flags & 0x000F, addresses


def verify_blocked(port: int, names: list[str], server: str) -> dict[str, Any]:
    """Every name in ``names`` must be answered NOERROR with exactly A 0.0.0.0."""
    for name in names:
        try:
            rcode, addresses = dns_answer(port, name)
        except (socket.timeout, OSError) as exc:
            raise RuntimeError(f"{server}: no answer for listed name {name}: {exc}") from None
        if rcode != 0 or addresses != [BLOCK_ADDRESS]:
            raise RuntimeError(f"{server} does not block {name}: rcode {rcode}, A {addresses}")
    return {"checked": len(names), "example": f"{names[0]} A -> {BLOCK_ADDRESS}"}


# -- Burrow's API -----------------------------------------------------------------------

class BurrowApi:
    """Just enough of Burrow's REST API on loopback: first-run setup, login, lists."""

    def __init__(self, web_port: int) -> None:
        self.base = f"http://{LOOPBACK}:{web_port}"
        self.token: str | None = None

    def call(self, method: str, path: str, body: Any = None,
             timeout: float = 10.0) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def sign_in(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:  # the admin page may come up a moment after DNS
            try:
                if self.call("GET", "/healthz", timeout=1.0)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Burrow's API did not answer /healthz")
            time.sleep(0.1)
        status, body = self.call("POST", "/api/auth/setup",
                                 {"username": ADMIN_USER, "password": ADMIN_PASSWORD})
        if status not in (201, 409):
            raise RuntimeError(f"Burrow first-run setup failed: {status} {body}")
        status, body = self.call("POST", "/api/auth/login",
                                 {"username": ADMIN_USER, "password": ADMIN_PASSWORD})
        if status != 200:
            raise RuntimeError(f"Burrow login failed: {status} {body}")
        self.token = body["access_token"]

    def reload(self, timeout: float = LIST_TIMEOUT) -> dict[str, Any]:
        """POST /api/blocklist/reload (answers once the new index is live)."""
        status, body = self.call("POST", "/api/blocklist/reload", {}, timeout=timeout)
        if status != 200 or not isinstance(body, dict) or body.get("status") != "ok":
            raise RuntimeError(f"blocklist reload failed: {status} {body}")
        return body


def burrow_add_list(proc: Proc, list_file: str,
                    timeout: float = LIST_TIMEOUT) -> tuple[dict[str, Any], BurrowApi]:
    """Sign in, add ``lists/<list_file>`` as a block list and wait until the index that
    holds it is live (the list manager compiles a new list at once; ``POST
    /api/blocklist/reload`` right after the add would queue a second, forced compile
    behind that one). Returns (the API's answers, the seconds taken and the RSS before
    and after signing in, the signed-in client). Signing in costs RSS of its own (each
    scrypt call takes a 16 MiB work area), so the index's share is the list-loaded RSS
    minus the signed-in one."""
    api = BurrowApi(proc.web_port)  # type: ignore[attr-defined]
    time.sleep(SETTLE)
    rss_started = status_kib(proc.pid, "VmRSS")
    api.sign_in()
    time.sleep(SETTLE)
    rss_signed_in = status_kib(proc.pid, "VmRSS")
    started = time.monotonic()
    status, created = api.call("POST", "/api/lists", {
        "name": "union-1M", "source": list_file, "kind": "block", "format": "domains"})
    if status != 201:
        raise RuntimeError(f"adding the list failed: {status} {created}")
    deadline = started + timeout
    while True:
        status, lists = api.call("GET", "/api/lists")
        index = lists.get("index", {}) if isinstance(lists, dict) else {}
        refresh = index.get("last_refresh") or {}
        if index.get("lists_in_index") and index.get("domains") and not index.get("running"):
            break
        if refresh.get("status") == "failed":
            raise RuntimeError(f"Burrow could not compile the list: {refresh.get('error')}")
        if time.monotonic() > deadline or not proc.alive():
            raise RuntimeError(f"the list was not live within {timeout:g}s: {index}")
        time.sleep(0.1)
    seconds = time.monotonic() - started
    return ({"list": {k: created.get(k) for k in ("id", "name", "source", "kind", "format")},
             "refresh": {"status": refresh.get("status"),
                         "compile": {k: (refresh.get("compile") or {}).get(k)
                                     for k in ("seconds", "peak_rss_bytes", "entries")}},
             "seconds": round(seconds, 2),
             "rss_started_kib": rss_started, "rss_signed_in_kib": rss_signed_in,
             "index": {k: index.get(k) for k in ("domains", "lists_in_index")}}, api)


# -- /proc ------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of the process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def status_kib(pid: int, key: str) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


# -- dnsmasq statistics (SIGUSR1) ------------------------------------------------------

STATS_RE = re.compile(r"queries forwarded (\d+), queries answered locally (\d+)")


def dnsmasq_stats(proc: Proc, timeout: float = 3.0) -> tuple[int, int] | None:
    """(forwarded, answered locally) from dnsmasq's SIGUSR1 dump into its log."""
    before = len(STATS_RE.findall(proc.log_tail(10**9)))
    os.kill(proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = STATS_RE.findall(proc.log_tail(10**9))
        if len(found) > before:
            return int(found[-1][0]), int(found[-1][1])
        time.sleep(0.05)
    return None


# -- dnsperf ----------------------------------------------------------------------------

def run_dnsperf(args: argparse.Namespace, port: int, query_file: Path, *,
                duration: float, runs: int | None = None, clients: int | None = None,
                outstanding: int | None = None, max_qps: int | None = None,
                verbose_to: Path | None = None) -> dict[str, Any]:
    """One dnsperf run; its summary figures. With ``verbose_to``, dnsperf runs with ``-v``
    and its output goes to that file (one line per query), whose latencies are added."""
    argv = ["dnsperf", "-s", LOOPBACK, "-p", str(port), "-d", str(query_file),
            "-l", f"{duration:g}", "-c", str(clients or args.clients)]
    if runs is not None:
        argv += ["-n", str(runs)]
    if outstanding is not None:
        argv += ["-q", str(outstanding)]
    if max_qps:
        argv += ["-Q", str(max_qps)]
    if verbose_to is None:
        result = subprocess.run(pinned(args.client_cpu, argv), capture_output=True, text=True,
                                timeout=duration + 30, preexec_fn=_die_with_parent)
        stdout = result.stdout
    else:
        with open(verbose_to, "w") as out:
            result = subprocess.run(pinned(args.client_cpu, [*argv, "-v"]), stdout=out,
                                    stderr=subprocess.PIPE, text=True, timeout=duration + 30,
                                    preexec_fn=_die_with_parent)
    if result.returncode != 0:
        raise RuntimeError(f"dnsperf failed ({result.returncode}): {result.stderr[-2000:]}")
    if verbose_to is None:
        return parse_dnsperf(stdout)
    with open(verbose_to) as lines:
        return parse_dnsperf_verbose(lines)


def parse_dnsperf(text: str) -> dict[str, Any]:
    def number(pattern: str, cast: Any = float) -> Any:
        match = re.search(pattern, text)
        return cast(match.group(1)) if match else None

    latency = re.search(r"Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)",
                        text)
    rcodes = {}
    codes = re.search(r"Response codes:\s+(.*)", text)
    if codes:
        for code, count in re.findall(r"([A-Z]+) (\d+) \(", codes.group(1)):
            rcodes[code] = int(count)
    ended = re.search(r"Testing complete \(([^)]*)\)", text)
    return {
        "queries_sent": number(r"Queries sent:\s+(\d+)", int),
        "queries_completed": number(r"Queries completed:\s+(\d+)", int),
        "queries_lost": number(r"Queries lost:\s+(\d+)", int),
        "rcodes": rcodes,
        "run_time_s": number(r"Run time \(s\):\s+([\d.]+)"),
        "qps": number(r"Queries per second:\s+([\d.]+)"),
        "avg_latency_ms": float(latency.group(1)) * 1000 if latency else None,
        "min_latency_ms": float(latency.group(2)) * 1000 if latency else None,
        "max_latency_ms": float(latency.group(3)) * 1000 if latency else None,
        "latency_stddev_ms": (number(r"Latency StdDev \(s\):\s+([\d.]+)") or 0) * 1000,
        "ended_by": ended.group(1) if ended else None,
    }


def verbose_line(line: str) -> tuple[str, float | None] | None:
    """One ``dnsperf -v`` query line: ``> NOERROR name A 0.000169`` gives ("NOERROR",
    0.000169); a timeout, ``> T name A``, gives ("T", None). None for other lines."""
    if not line.startswith("> "):
        return None
    fields = line.split()
    if len(fields) < 2:
        return None
    if fields[1] == "T":
        return "T", None
    try:
        return fields[1], float(fields[-1])
    except ValueError:
        return fields[1], None


def parse_dnsperf_verbose(lines: Iterable[str]) -> dict[str, Any]:
    """dnsperf ``-v`` output: the summary figures (parse_dnsperf) plus the per-query latency
    percentiles (latency_percentiles) of its ``>`` lines."""
    latencies: list[float] = []
    timeouts = 0
    rest: list[str] = []
    for line in lines:
        query = verbose_line(line)
        if query is None:
            rest.append(line)
        elif query[0] == "T":
            timeouts += 1
        elif query[1] is not None:
            latencies.append(query[1])
    result = parse_dnsperf("".join(rest))
    result.update(latency_percentiles(latencies, lost=timeouts))
    return result


def percentile(ordered: list[float], q: float, lost: int = 0) -> float | None:
    """Nearest-rank percentile ``q`` (0 < q <= 1) of the answered latencies ``ordered``
    (sorted) with ``lost`` more queries ranked slowest: None when the rank falls on a lost
    query, or when there is no query."""
    total = len(ordered) + lost
    if not total:
        return None
    rank = max(1, math.ceil(q * total))  # 1-based
    return ordered[rank - 1] if rank <= len(ordered) else None


def latency_percentiles(latencies: list[float], lost: int = 0) -> dict[str, Any]:
    """p50 and p99 in ms over every query (answered latencies in seconds, plus ``lost``)."""
    ordered = sorted(latencies)
    p50, p99 = percentile(ordered, 0.50, lost), percentile(ordered, 0.99, lost)
    return {"latency_samples": len(ordered), "latency_lost": lost,
            "p50_ms": round(p50 * 1000, 3) if p50 is not None else None,
            "p99_ms": round(p99 * 1000, 3) if p99 is not None else None}


# -- statistics over pairs --------------------------------------------------------------

def spread(values: Iterable[float | None], digits: int = 3) -> dict[str, Any] | None:
    """Median with min and max (and how many values) of the measured values; None when no
    value was measured."""
    kept = [v for v in values if v is not None]
    if not kept:
        return None
    return {"median": round(statistics.median(kept), digits), "min": round(min(kept), digits),
            "max": round(max(kept), digits), "n": len(kept)}


def pair_ratios(measurements: list[dict[str, Any]], key: str) -> list[float | None]:
    """Burrow / dnsmasq of ``key`` within each pair, in pair order (None where either is
    missing or dnsmasq's is 0)."""
    by_pair: dict[int, dict[str, Any]] = {}
    for m in measurements:
        by_pair.setdefault(m["pair"], {})[m["server"]] = m.get(key)
    out: list[float | None] = []
    for pair in sorted(by_pair):
        a, b = by_pair[pair].get(SERVERS[0]), by_pair[pair].get(SERVERS[1])
        out.append(a / b if a is not None and b else None)
    return out


def summarise(measurements: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase and load: each server's figures and the Burrow/dnsmasq ratios, each as the
    median with min-max over the pairs."""
    figures = ("cpu_us_per_query", "cpu_user_us_per_query", "cpu_system_us_per_query", "qps",
               "avg_latency_ms", "p50_ms", "p99_ms", "queries_lost", "upstream_queries")
    out: dict[str, Any] = {}

    def key(m: dict[str, Any]) -> tuple[str, str]:
        return m["phase"], m["load"]

    for (phase, load), group in itertools.groupby(sorted(measurements, key=key), key=key):
        rows = list(group)
        entry: dict[str, Any] = {"pairs": len({m["pair"] for m in rows}), "servers": {},
                                 "ratios": {}}
        for server in SERVERS:
            mine = [m for m in rows if m["server"] == server]
            entry["servers"][server] = {f: spread(m.get(f) for m in mine) for f in figures}
            entry["servers"][server]["min_cpu_ticks"] = min(
                (m["cpu_ticks"] for m in mine if m.get("cpu_ticks") is not None), default=None)
            entry["servers"][server]["rate_not_reached"] = sum(
                1 for m in mine if m.get("rate_not_reached"))
        for figure in ("cpu_us_per_query", "cpu_user_us_per_query", "cpu_system_us_per_query",
                       "p50_ms", "p99_ms"):
            entry["ratios"][figure] = spread(pair_ratios(rows, figure))
        out.setdefault(phase, {})[load] = entry
    return out


# -- query files ------------------------------------------------------------------------

def umbrella_names(limit: int | None = None) -> list[str]:
    """The valid names of the Umbrella list in rank order (its junk lines skipped)."""
    names: list[str] = []
    seen: set[str] = set()
    with open(TOPSITES, encoding="utf-8", errors="replace") as source:
        for line in source:
            name = line.strip().rstrip(".").lower()
            if name and name not in seen and NAME_RE.match(name):
                seen.add(name)
                names.append(name)
                if limit is not None and len(names) >= limit:
                    break
    return names


def write_hit_file(path: Path, count: int) -> int:
    return write_names(path, umbrella_names(count))


def write_miss_file(path: Path, count: int, run_token: str) -> int:
    with open(path, "w") as out:
        chunk = 100_000
        for start in range(0, count, chunk):
            out.write("".join(f"{i}.{run_token}.miss.bench.test A\n"
                              for i in range(start, min(count, start + chunk))))
    return count


def read_list_names(path: Path = UNION_1M) -> list[str]:
    """The names of a plain domains list (gzip or not), comments and blank lines skipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as source:
        return [line for line in (raw.strip().lower() for raw in source)
                if line and not line.startswith("#")]


def write_names(path: Path, names: list[str]) -> int:
    with open(path, "w") as out:
        for start in range(0, len(names), 100_000):
            out.write("".join(f"{name} A\n" for name in names[start:start + 100_000]))
    return len(names)


def write_dnsmasq_block_conf(path: Path, names: list[str]) -> int:
    """One ``address=/<name>/0.0.0.0`` line per name (what dnsmasq users load lists as)."""
    with open(path, "w") as out:
        for start in range(0, len(names), 100_000):
            out.write("".join(f"address=/{name}/{BLOCK_ADDRESS}\n"
                              for name in names[start:start + 100_000]))
    return len(names)


def zipf_stream(names: list[str], count: int, rng: random.Random) -> list[str]:
    """``count`` draws from ``names`` (in rank order), rank r with weight 1/r."""
    weights = list(itertools.accumulate(1 / rank for rank in range(1, len(names) + 1)))
    return rng.choices(names, cum_weights=weights, k=count)


def load_queries(args: argparse.Namespace, rate: int | None) -> int:
    """How many queries one measurement at ``rate`` (None: saturation) can send."""
    return int((rate or SATURATION_QPS) * args.duration * 1.1) + 1000


def cold_slices(pool: int, needs: list[int], pairs: int) -> list[int]:
    """Names per ``blocked-cold`` measurement at each load, so that ``pairs`` measurements
    of every load fit in a pool of ``pool`` names without sharing one: each load gets what
    it needs (``needs``) if the pool allows, the smallest needs served first, and the loads
    that need more than is left share the rest equally."""
    sizes = [0] * len(needs)
    left = pool // max(1, pairs)  # names per pair, over all loads
    order = sorted(range(len(needs)), key=lambda i: needs[i])
    for served, i in enumerate(order):
        sizes[i] = min(needs[i], left // (len(order) - served))
        left -= sizes[i]
    return sizes


def prepare_lists(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """What the list phases need from the 1M list: dnsmasq's conf, the ``blocked`` sample,
    the pool that ``blocked-cold`` slices, and the Umbrella names that ``mixed`` draws."""
    names = read_list_names(UNION_1M)
    valid = [n for n in names if NAME_RE.match(n)]
    rng = random.Random(args.seed)
    rng.shuffle(valid)
    umbrella = umbrella_names()
    sample = valid[:args.blocked_names]
    in_umbrella = set(umbrella)  # mixed asks these: kept out of the never-repeated names
    cold_pool = [n for n in valid[args.blocked_names:] if n not in in_umbrella]
    files = {"blocked": workdir / "blocked.txt", "dnsmasq_conf": workdir / "dnsmasq-block.conf"}
    write_names(files["blocked"], sample)
    write_dnsmasq_block_conf(files["dnsmasq_conf"], names)
    sizes = cold_slices(len(cold_pool) - VERIFY_SAMPLE // 2,
                        [load_queries(args, rate) for rate in args.rates], args.pairs)
    return {"files": files, "list_names": len(names), "invalid_names": len(names) - len(valid),
            "blocked_names": len(sample), "cold_pool": cold_pool,
            "cold_slices": sizes,
            "umbrella": umbrella,
            "umbrella_listed_share": round(sum(1 for n in names if n in in_umbrella)
                                           / max(1, len(umbrella)), 3),
            "verify": sample[:VERIFY_SAMPLE // 2] + cold_pool[-(VERIFY_SAMPLE // 2):]}


def query_file(args: argparse.Namespace, phase: str, rate: int | None, pair: int,
               workdir: Path, shared: dict[str, Any]) -> tuple[Path, int | None]:
    """The query file of one pair (both servers get the same) and dnsperf's ``-n``: None to
    loop over the file for --duration, 1 to ask each line once."""
    load_index = args.rates.index(rate)
    path = workdir / f"{phase}-{rate or 'max'}-{pair}.txt"
    if phase == "hit":
        return shared["hit_file"], None
    if phase == "blocked":
        return shared["lists"]["files"]["blocked"], None
    if phase == "miss":
        write_miss_file(path, load_queries(args, rate), f"{shared['token']}-{load_index}-{pair}")
        return path, 1
    lists = shared["lists"]
    if phase == "blocked-cold":  # a slice of its own per measurement: no name asked twice
        sizes = lists["cold_slices"]
        start = args.pairs * sum(sizes[:load_index]) + pair * sizes[load_index]
        write_names(path, lists["cold_pool"][start:start + sizes[load_index]])
        return path, 1
    if phase == "mixed":
        rng = random.Random(f"{args.seed}-mixed-{load_index}-{pair}")
        write_names(path, zipf_stream(lists["umbrella"], load_queries(args, rate), rng))
        return path, 1
    raise ValueError(phase)


# -- servers ----------------------------------------------------------------------------

def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for everything we write
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def toml_dump(data: dict[str, Any], prefix: str = "") -> str:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    lines = [f"{json.dumps(k) if not re.match(r'^[A-Za-z0-9_-]+$', k) else k} = "
             f"{toml_value(v)}" for k, v in scalars.items()]
    text = ""
    if prefix and (scalars or not tables):
        text += f"[{prefix}]\n"
    text += "".join(line + "\n" for line in lines)
    for key, table in tables.items():
        text += "\n" + toml_dump(table, f"{prefix}.{key}" if prefix else key)
    return text


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def burrow_config(workdir: Path, up_port: int, port: int, web_port: int,
                  extra: str) -> str:
    config: dict[str, Any] = {
        "upstream_dns_servers": [f"{LOOPBACK}:{up_port}"],
        "server": {"listen_address": f"{LOOPBACK}:{port}",
                   "web_ui_address": f"{LOOPBACK}:{web_port}"},
        "rate_limit": {"enabled": False},
        "storage": {"data_dir": str(workdir / "burrow-data")},
    }
    if extra:
        config = deep_merge(config, tomllib.loads(extra))
    return toml_dump(config)


def burrow_command() -> str | None:
    beside = Path(sys.executable).parent / "burrow"
    if beside.exists():
        return str(beside)
    venv = REPO_ROOT / ".venv" / "bin" / "burrow"
    if venv.exists():
        return str(venv)
    return shutil.which("burrow")


def start_burrow(args: argparse.Namespace, workdir: Path, up_port: int) -> tuple[Proc, int]:
    command = burrow_command()
    if command is None:
        raise Skip("no burrow executable (install the package: pip install -e .)")
    port, web_port = free_port(), free_port()
    config_path = workdir / "burrow.toml"
    config_path.write_text(burrow_config(workdir, up_port, port, web_port, args.extra_toml))
    argv = pinned(args.server_cpu, [command, "run", "--config", str(config_path)])
    proc = Proc("burrow", argv, workdir / "burrow.log")
    proc.web_port = web_port  # type: ignore[attr-defined]
    return proc, port


def dnsmasq_cache_size(args: argparse.Namespace, with_list: bool) -> int:
    """--dnsmasq-cache-size, or its best setting for the phases of this start: without the
    list (hit, miss) just above the hit names, with it (mixed) the whole Umbrella set."""
    if args.dnsmasq_cache_size:
        return int(args.dnsmasq_cache_size)
    if with_list:
        return DNSMASQ_CACHE_LISTS
    return int(max(150, args.hit_names * DNSMASQ_CACHE_MARGIN))


def start_dnsmasq(args: argparse.Namespace, workdir: Path, up_port: int,
                  conf_file: Path | None = None) -> tuple[Proc, int]:
    port = free_port()
    argv = pinned(args.server_cpu, [
        "dnsmasq", "-k", f"--conf-file={conf_file or '/dev/null'}", "--no-resolv",
        f"--server={LOOPBACK}#{up_port}", f"--port={port}", f"--listen-address={LOOPBACK}",
        "--bind-interfaces", f"--cache-size={dnsmasq_cache_size(args, conf_file is not None)}",
        f"--dns-forward-max={args.dnsmasq_forward_max}", "--no-hosts", "--log-facility=-",
        f"--pid-file={workdir / 'dnsmasq.pid'}", "--user=root",
    ])
    return Proc("dnsmasq", argv, workdir / "dnsmasq.log"), port


def start_upstream(args: argparse.Namespace, workdir: Path) -> tuple[Proc, int]:
    port = free_port()
    argv = pinned(args.upstream_cpu, [
        "dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv",
        f"--address=/#/{UPSTREAM_ADDRESS}", "--local-ttl=3600", f"--port={port}",
        f"--listen-address={LOOPBACK}", "--bind-interfaces", "--no-hosts",
        "--log-facility=-", f"--pid-file={workdir / 'upstream.pid'}", "--user=root",
    ])
    proc = Proc("upstream", argv, workdir / "upstream.log")
    wait_ready(proc, port)
    return proc, port



# -- the bench --------------------------------------------------------------------------

def start_servers(args: argparse.Namespace, workdir: Path, up_port: int,
                  lists: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Both servers, started one after the other and left running side by side (with the
    1M list when ``lists``); per server its process, port and start figures."""
    servers: dict[str, dict[str, Any]] = {}
    try:
        for name in args.servers:
            server_dir = workdir / name
            server_dir.mkdir()
            if name == "burrow":
                if lists:
                    lists_dir = server_dir / "burrow-data" / "lists"
                    lists_dir.mkdir(parents=True)
                    shutil.copyfile(UNION_1M, lists_dir / UNION_1M.name)
                proc, port = start_burrow(args, server_dir, up_port)
            else:
                proc, port = start_dnsmasq(args, server_dir, up_port,
                                           conf_file=lists["files"]["dnsmasq_conf"] if lists else None)
            info: dict[str, Any] = {"command": proc.argv, "log": str(proc.log_path)}
            servers[name] = {"proc": proc, "port": port, "info": info}
            info["startup_s"] = round(wait_ready(proc, port, LIST_TIMEOUT if lists else READY_TIMEOUT), 3)
            if lists:
                info["list_loaded_s"] = info["startup_s"]  # dnsmasq reads its list at start
                if name == "burrow":  # + adding the list until its index is live
                    info["list"], _api = burrow_add_list(proc, UNION_1M.name)
                    info["list_loaded_s"] = round(info["startup_s"] + info["list"]["seconds"], 2)
                info["verified"] = verify_blocked(port, lists["verify"], name)
            time.sleep(SETTLE)
            info["idle_rss_kib"] = status_kib(proc.pid, "VmRSS")
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def stop_servers(servers: dict[str, dict[str, Any]]) -> None:
    for server in servers.values():
        proc = server["proc"]
        if proc.alive():
            server["info"]["rss_after_kib"] = status_kib(proc.pid, "VmRSS")
            server["info"]["peak_rss_kib"] = status_kib(proc.pid, "VmHWM")
        proc.stop()


def warm_up(args: argparse.Namespace, port: int, query_file: Path) -> dict[str, Any]:
    """Ask each name of ``query_file`` once, gently (one client, 20 outstanding)."""
    warm = run_dnsperf(args, port, query_file, duration=60, runs=1, clients=1,
                       outstanding=20)
    return {k: warm[k] for k in ("queries_completed", "queries_lost", "rcodes")}


def warm_phase(args: argparse.Namespace, phase: str, servers: dict[str, dict[str, Any]],
               workdir: Path, shared: dict[str, Any], warnings: list[str]) -> None:
    """Before a phase's pairs: hit and blocked ask each of their names once; mixed asks one
    stream of its own (--mixed-warm draws) so the caches hold the popular names."""
    if phase == "hit":
        path = shared["hit_file"]
    elif phase == "blocked":
        path = shared["lists"]["files"]["blocked"]
    elif phase == "mixed":
        path = workdir / "mixed-warm.txt"
        write_names(path, zipf_stream(shared["lists"]["umbrella"], args.mixed_warm,
                                      random.Random(f"{args.seed}-mixed-warm")))
    else:
        return
    for name, server in servers.items():
        server["info"].setdefault("warm", {})[phase] = warm_up(args, server["port"], path)
        if phase == "hit":
            first = path.read_text().split(None, 1)[0]
            rcode, addresses = dns_answer(server["port"], first)
            if rcode != 0 or addresses != [UPSTREAM_ADDRESS]:  # e.g. blocked on the way
                warnings.append(f"{name} answered {first} with rcode {rcode}, A {addresses}, "
                                f"not the upstream's {UPSTREAM_ADDRESS}")
    time.sleep(0.5)


def measure(args: argparse.Namespace, server: dict[str, Any], upstream: Proc,
            query_file: Path, runs: int | None, rate: int | None,
            verbose_to: Path) -> dict[str, Any]:
    """One dnsperf run against one server: its figures and the server's CPU over it."""
    proc = server["proc"]
    up_before = dnsmasq_stats(upstream)
    cpu_before = cpu_seconds(proc.pid)
    perf = run_dnsperf(args, server["port"], query_file, duration=args.duration, runs=runs,
                       max_qps=rate, verbose_to=verbose_to if rate else None)
    cpu_after = cpu_seconds(proc.pid)
    up_after = dnsmasq_stats(upstream)
    if not proc.alive():
        raise RuntimeError(f"{proc.name} died under load:\n{proc.log_tail()}")
    perf.update(cpu_figures(cpu_before, cpu_after, perf["queries_completed"] or 0,
                            perf["run_time_s"]))
    perf["upstream_queries"] = (up_after[1] - up_before[1]
                                if up_before and up_after else None)
    perf["offered_qps"] = rate
    perf["rate_not_reached"] = bool(rate and (perf["qps"] or 0) < RATE_SHORTFALL * rate)
    return perf


def cpu_figures(before: tuple[float, float], after: tuple[float, float], completed: int,
                run_time: float | None) -> dict[str, Any]:
    """CPU per answered query from two (utime, stime) readings, user and system apart. The
    split: user time is the server's own code (for Burrow, Python); system time is the
    kernel's work for it, mostly receiving and sending the datagrams."""
    user, system = after[0] - before[0], after[1] - before[1]
    cpu = user + system

    def per_query(seconds: float) -> float | None:
        return round(seconds * 1e6 / completed, 3) if completed else None

    return {"server_cpu_s": round(cpu, 3), "cpu_ticks": round(cpu * CLK_TCK),
            "cpu_us_per_query": per_query(cpu), "cpu_user_us_per_query": per_query(user),
            "cpu_system_us_per_query": per_query(system),
            "server_cpu_utilisation": round(cpu / run_time, 3) if run_time else None}


def run_phase(args: argparse.Namespace, phase: str, servers: dict[str, dict[str, Any]],
              upstream: Proc, workdir: Path, shared: dict[str, Any],
              measurements: list[dict[str, Any]], warnings: list[str]) -> None:
    """Every load of --rates, --pairs pairs each: Burrow, then dnsmasq, on the same file."""
    warm_phase(args, phase, servers, workdir, shared, warnings)
    verbose = workdir / "dnsperf-v.txt"
    for rate in args.rates:
        load = str(rate or "max")
        for pair in range(args.pairs):
            path, runs = query_file(args, phase, rate, pair, workdir, shared)
            line = []
            for name in args.servers:
                started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
                result = measure(args, servers[name], upstream, path, runs, rate, verbose)
                verbose.unlink(missing_ok=True)
                measurements.append({"phase": phase, "load": load, "pair": pair + 1,
                                     "server": name, "order": len(measurements) + 1,
                                     "started": started, **result})
                line.append(f"{name} {result['cpu_us_per_query']} µs/q")
                unexpected = result["rcodes"].keys() - {"NOERROR"}
                if unexpected:
                    warnings.append(f"{name} {phase} {load} pair {pair + 1}: not every answer "
                                    f"was NOERROR: {result['rcodes']}")
                if phase.startswith("blocked") and result["upstream_queries"]:
                    warnings.append(f"{name} {phase} {load} pair {pair + 1}: "
                                    f"{result['upstream_queries']} blocked queries forwarded")
                time.sleep(0.3)
            if path.name == f"{phase}-{load}-{pair}.txt":
                path.unlink()  # a pair's own file (miss, blocked-cold, mixed)
            ratio = pair_ratios(measurements[-2:], "cpu_us_per_query")[0]
            print(f"{phase} {load} pair {pair + 1}/{args.pairs}: {', '.join(line)}, "
                  f"×{'–' if ratio is None else f'{ratio:.2f}'}", file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            lines = (out.stdout or out.stderr).strip().splitlines()
            return next((ln for ln in lines if ln.strip()), "")
        except (OSError, subprocess.TimeoutExpired):
            return ""

    command = burrow_command()
    dnsperf_version = ""
    try:
        help_text = subprocess.run(["dnsperf", "-h"], capture_output=True, text=True,
                                   timeout=10)
        match = re.search(r"Version (\S+)", help_text.stdout + help_text.stderr)
        dnsperf_version = match.group(1) if match else ""
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "burrow": first_line([command, "--version"]) if command else "",
        "dnsmasq": first_line(["dnsmasq", "--version"]),
        "dnsperf": dnsperf_version,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpu": next((ln.split(":", 1)[1].strip() for ln in
                     Path("/proc/cpuinfo").read_text().splitlines()
                     if ln.startswith("model name")), platform.machine()),
        "cpus": str(os.cpu_count()),
    }




def fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def cell(s: dict[str, Any] | None, spec: str = ".2f", prefix: str = "") -> str:
    """``median (min–max)`` of a spread, or – when nothing was measured."""
    if s is None:
        return "–"
    return (f"{prefix}{format(s['median'], spec)} "
            f"({format(s['min'], spec)}–{format(s['max'], spec)})")


def load_label(load: str) -> str:
    return "max (saturation)" if load == "max" else f"{int(load):,} q/s"


def median_of(server: dict[str, Any], figure: str) -> float | None:
    return (server.get(figure) or {}).get("median")


def cpu_cell(server: dict[str, Any]) -> str:
    """µs/query median (min–max), then the medians of user + system time."""
    return (cell(server["cpu_us_per_query"]) +
            f" ({fmt(median_of(server, 'cpu_user_us_per_query'), '.2f')} + "
            f"{fmt(median_of(server, 'cpu_system_us_per_query'), '.2f')})")


def medians(burrow: dict[str, Any], dnsmasq: dict[str, Any], figure: str, spec: str) -> str:
    return f"{fmt(median_of(burrow, figure), spec)} / {fmt(median_of(dnsmasq, figure), spec)}"


def phase_table(phase: str, loads: dict[str, Any], order: list[str]) -> list[str]:
    lines = [f"### {phase}", "",
             "| load | pairs | CPU/query Burrow/dnsmasq | Burrow µs/query (user + sys) | "
             "dnsmasq µs/query (user + sys) | QPS Burrow / dnsmasq | p50 ms Burrow / dnsmasq | "
             "p99 ms Burrow / dnsmasq | p99 Burrow/dnsmasq | lost Burrow / dnsmasq | "
             "upstream queries Burrow / dnsmasq |",
             "|---|---:|---|---|---|---|---|---|---|---|---|"]
    for load in order:
        entry = loads.get(load)
        if entry is None:
            continue
        b, d = entry["servers"]["burrow"], entry["servers"]["dnsmasq"]
        lines.append(
            f"| {load_label(load)} | {entry['pairs']} | "
            f"{cell(entry['ratios']['cpu_us_per_query'], '.2f', '×')} | {cpu_cell(b)} | "
            f"{cpu_cell(d)} | {medians(b, d, 'qps', ',.0f')} | {medians(b, d, 'p50_ms', '.3f')} | "
            f"{medians(b, d, 'p99_ms', '.3f')} | {cell(entry['ratios']['p99_ms'], '.2f', '×')} | "
            f"{medians(b, d, 'queries_lost', ',.0f')} | "
            f"{medians(b, d, 'upstream_queries', ',.0f')} |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"Burrow vs dnsmasq — {meta['date']}, {meta['versions']['cpu']} "
        f"({meta['versions']['cpus']} CPUs); {meta['pairs']} pairs per phase and load, "
        f"{meta['duration_s']:g} s per measurement, {meta['clients']} dnsperf clients; servers "
        f"on CPU {meta['server_cpu']}, dnsperf + upstream on CPU {meta['client_cpu']}",
        f"command: {meta['command']}",
        "",
        "Each cell: median (min–max) over the pairs; a ratio is Burrow / dnsmasq within one "
        "pair. After the medians of µs/query, the medians of user + system time. Medians "
        "only for QPS, latency, lost and upstream queries (every pair: --out). p50/p99: at "
        "fixed rates only (at saturation latency is queueing).",
    ]
    order = [str(rate or "max") for rate in meta["rates"]]
    for phase in PHASES:
        if phase in report["summary"]:
            lines += [""] + phase_table(phase, report["summary"][phase], order)
    short, coarse = [], []
    for phase in PHASES:
        for load in order:
            entry = report["summary"].get(phase, {}).get(load)
            if entry is None:
                continue
            where = f"{phase} {load_label(load)}"
            missed = [f"{name} {s['rate_not_reached']}/{entry['pairs']}"
                      for name, s in entry["servers"].items() if s["rate_not_reached"]]
            if missed:
                short.append(f"{where} ({', '.join(missed)})")
            ticks = [f"{name} {s['min_cpu_ticks']}" for name, s in entry["servers"].items()
                     if s["min_cpu_ticks"] is not None and s["min_cpu_ticks"] < MIN_TICKS]
            if ticks:
                coarse.append(f"{where} ({', '.join(ticks)})")
    notes = []
    if short:
        notes.append("offered rate not reached (under 95%) in: " + "; ".join(short))
    if coarse:
        notes.append(f"server CPU under {MIN_TICKS} ticks of {1000 // CLK_TCK} ms in a "
                     "measurement, so its µs/query is coarse (±1% or worse; fewest ticks "
                     "given; a longer --duration helps): " + "; ".join(coarse))
    lines += [""] + [f"note: {n}" for n in notes]
    lines += memory_lines(report)
    lines += [f"\nwarning: {w}" for w in report["warnings"]]
    if meta["pairs"] < 5:
        lines.append(f"\nwarning: {meta['pairs']} pairs; a figure for docs/benchmarks.md takes "
                     "at least 5")
    return "\n".join(lines) + "\n"


def memory_lines(report: dict[str, Any]) -> list[str]:
    rows = []
    for setup, servers in report["starts"].items():
        for name, info in servers.items():
            if "idle_rss_kib" not in info:
                continue
            label = name if setup == "plain" else f"{name} + 1M list"
            loaded = info.get("list_loaded_s", info.get("startup_s"))
            mib = [fmt(info.get(k) / 1024 if info.get(k) else None, ".1f")
                   for k in ("idle_rss_kib", "rss_after_kib", "peak_rss_kib")]
            rows.append(f"| {label} | {fmt(loaded, '.2f')} | " + " | ".join(mib) + " |")
    if not rows:
        return []
    return ["", "| server | answering after s | RSS before load MiB | RSS after MiB | "
                "peak RSS MiB |", "|---|---:|---:|---:|---:|", *rows,
            "", "(+ 1M list: start until answering, plus for Burrow POST /api/lists until its "
                "index is live; RSS before load: with the list loaded)"]


def preflight(args: argparse.Namespace) -> None:
    if not TOPSITES.exists():
        raise Skip(f"{TOPSITES} is missing (the shared data folder {DATA_DIR} is absent)")
    for tool in ("dnsperf", "dnsmasq"):
        if shutil.which(tool) is None:
            raise Skip(f"{tool} is not installed "
                       "(apt-get install dnsmasq-base dnsperf dnsutils)")
    if burrow_command() is None:
        raise Skip("no burrow executable (pip install -e . in the repo)")
    if set(LIST_PHASES) & set(args.phases) and not UNION_1M.exists():
        raise Skip(f"{UNION_1M} is missing (needed by the list phases)")
    if shutil.which("taskset") is None:
        print("warning: taskset missing, processes are not pinned", file=sys.stderr)


def parse_rates(text: str) -> list[int | None]:
    """``max,2000,20000`` → [None, 2000, 20000]: None is saturation (no -Q)."""
    rates: list[int | None] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        rate = None if part == "max" else int(part.replace("_", ""))
        if rate is not None and not 1 <= rate <= 1_000_000:
            raise ValueError(f"rate {rate} outside 1..1000000")
        if rate in rates:
            raise ValueError(f"rate {part} given twice")
        rates.append(rate)
    if not rates:
        raise ValueError("no rate")
    return rates


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description="Benchmark Burrow against dnsmasq (loopback only), "
                                          "in pairs; see docs/benchmarks.md.")
    parser.add_argument("--pairs", type=int, default=5,
                        help="pairs (Burrow, then dnsmasq) per phase and load (default 5; "
                             "a figure for the docs takes at least 5)")
    parser.add_argument("--duration", type=float, default=8.0,
                        help="seconds of dnsperf load per measurement (default 8)")
    parser.add_argument("--rates", default=DEFAULT_RATES,
                        help="loads: 'max' for saturation and offered rates in queries per "
                             f"second (dnsperf -Q), comma-separated (default {DEFAULT_RATES})")
    parser.add_argument("--clients", type=int, default=4, help="dnsperf -c (default 4)")
    parser.add_argument("--only", choices=SERVERS,
                        help="measure one server only, e.g. to profile it (no ratios)")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help="comma-separated phases to run, from "
                             f"{','.join(PHASES)} (default: all)")
    parser.add_argument("--hit-names", type=int, default=1000,
                        help="popular names in the cache-hit phase (default 1000)")
    parser.add_argument("--blocked-names", type=int, default=10_000,
                        help="names drawn from the 1M list that the blocked phase loops "
                             "over (default 10000)")
    parser.add_argument("--mixed-warm", type=int, default=100_000,
                        help="queries of the stream that warms the caches before the mixed "
                             "phase (default 100000)")
    parser.add_argument("--seed", type=int, default=4,
                        help="random seed for drawing names (default 4)")
    parser.add_argument("--dnsmasq-cache-size", type=int, default=0,
                        help="dnsmasq --cache-size (default: 1.1 x --hit-names without the "
                             f"list, {DNSMASQ_CACHE_LISTS} with it)")
    parser.add_argument("--dnsmasq-forward-max", type=int, default=DNSMASQ_FORWARD_MAX,
                        help=f"dnsmasq --dns-forward-max (default {DNSMASQ_FORWARD_MAX})")
    parser.add_argument("--burrow-config-extra", dest="extra_toml", default="",
                        help="TOML merged into Burrow's generated config "
                             "(a string, or @path to read a file)")
    parser.add_argument("--out", type=Path,
                        help="write every pair's measurements and the summaries as JSON here")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the work dir (configs, server logs, query files)")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU for the servers (0)")
    parser.add_argument("--client-cpu", type=int, default=1,
                        help="CPU for dnsperf (1)")
    parser.add_argument("--upstream-cpu", type=int, default=None,
                        help="CPU for the upstream dnsmasq (default: the client CPU)")
    parser.add_argument("--timeout", type=float, default=0,
                        help="overall limit in seconds (default: 12 s + --duration per "
                             "measurement, + 600)")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 300:
        parser.error("--duration must be within (0, 300] seconds")
    if not 1 <= args.pairs <= 50:
        parser.error("--pairs must be within 1..50")
    if not 0 < args.clients <= 1000:
        parser.error("--clients must be within 1..1000")
    try:
        args.rates = parse_rates(args.rates)
    except ValueError as exc:
        parser.error(f"--rates: {exc}")
    if args.upstream_cpu is None:
        args.upstream_cpu = args.client_cpu
    if (os.cpu_count() or 1) < 2:
        print("warning: one CPU only; server and dnsperf share it", file=sys.stderr)
        args.server_cpu = args.client_cpu = args.upstream_cpu = 0
    args.servers = [args.only] if args.only else list(SERVERS)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown or not args.phases:
        parser.error(f"--phases: choose from {','.join(PHASES)} (got {sorted(unknown)})")
    args.phases = [p for p in PHASES if p in args.phases]
    if not 1 <= args.blocked_names <= 500_000:
        parser.error("--blocked-names must be within 1..500000")
    load_extra_toml(args, parser)
    if not args.timeout:
        count = len(args.phases) * len(args.rates) * args.pairs * len(args.servers)
        args.timeout = count * (args.duration + 12) + 600
    return args


def load_extra_toml(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """--burrow-config-extra: TOML text, or @file; refused at once when it is not valid TOML."""
    if args.extra_toml.startswith("@"):
        args.extra_toml = Path(args.extra_toml[1:]).read_text()
    if args.extra_toml:
        try:
            tomllib.loads(args.extra_toml)
        except tomllib.TOMLDecodeError as exc:
            parser.error(f"--burrow-config-extra is not valid TOML: {exc}")


def arm_timeout(seconds: float) -> None:
    """End the whole run with BenchTimeout after ``seconds``; SIGTERM exits 143 (cleanups run)."""
    def on_alarm(_signum: int, _frame: Any) -> None:
        raise BenchTimeout(f"overall timeout of {seconds:g}s reached")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.alarm(int(seconds))


def repeat_runs(name: str, runs: int, run_once: Callable[[Path], Any],
                line: Callable[[Any], str]) -> list[Any] | int:
    """``runs`` results of ``run_once(fresh temporary folder)``, each printed as it comes with
    ``line(result)``; or the exit code when the bench was skipped (0) or timed out (1)."""
    results = []
    try:
        for i in range(runs):
            with tempfile.TemporaryDirectory(prefix=f"burrow-{name}-") as tmp:
                result = run_once(Path(tmp))
            results.append(result)
            print(f"run {i + 1}: {line(result)}", flush=True)
    except Skip as exc:
        print(f"{name} skipped: {exc}")
        return 0
    except BenchTimeout as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    return results




def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        preflight(args)
    except Skip as exc:
        print(f"bench skipped: {exc}")
        return 0

    arm_timeout(args.timeout)
    workdir = Path(tempfile.mkdtemp(prefix="burrow-bench-"))
    upstream: Proc | None = None
    failed = False
    report: dict[str, Any] = {"meta": {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["scripts/bench", *(sys.argv[1:] if argv is None else argv)]),
        "versions": versions(), "pairs": args.pairs, "duration_s": args.duration,
        "rates": args.rates, "clients": args.clients, "phases": args.phases,
        "servers": args.servers,
        "order": "per phase and load, pairs in turn; in a pair Burrow first, then dnsmasq",
        "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
        "upstream_cpu": args.upstream_cpu,
        "upstream": f"dnsmasq --address=/#/{UPSTREAM_ADDRESS} --local-ttl=3600",
        "dnsmasq": {"cache_size": dnsmasq_cache_size(args, False),
                    "cache_size_with_list": dnsmasq_cache_size(args, True),
                    "dns_forward_max": args.dnsmasq_forward_max},
        "burrow_config_extra": args.extra_toml or None,
        "seed": args.seed,
        "notes": "dnsmasq under test runs without query logging; Burrow runs its default "
                 "configuration plus burrow_config_extra.",
    }, "starts": {}, "measurements": [], "warnings": []}
    measurements, warnings = report["measurements"], report["warnings"]
    servers: dict[str, dict[str, Any]] = {}
    try:
        shared: dict[str, Any] = {"token": f"r{random.randrange(16**6):06x}",
                                  "hit_file": workdir / "hit.txt"}
        if "hit" in args.phases:
            report["meta"]["hit_names"] = write_hit_file(shared["hit_file"], args.hit_names)
        upstream, up_port = start_upstream(args, workdir)
        for setup, phases in (("plain", [p for p in args.phases if p not in LIST_PHASES]),
                              ("list", [p for p in args.phases if p in LIST_PHASES])):
            if not phases:
                continue
            if setup == "list":
                print("preparing the 1M list ...", file=sys.stderr, flush=True)
                shared["lists"] = prepare_lists(args, workdir)
                report["meta"]["block_list"] = {
                    k: v for k, v in shared["lists"].items()
                    if k not in ("files", "verify", "cold_pool", "umbrella")} | {
                    "file": str(UNION_1M), "cold_pool": len(shared["lists"]["cold_pool"]),
                    "dnsmasq": f"--conf-file with address=/<name>/{BLOCK_ADDRESS} per name"}
            setup_dir = workdir / setup
            setup_dir.mkdir()
            print(f"starting both servers ({setup}) ...", file=sys.stderr, flush=True)
            try:
                servers = start_servers(args, setup_dir, up_port,
                                        shared.get("lists") if setup == "list" else None)
                for phase in phases:
                    run_phase(args, phase, servers, upstream, setup_dir, shared, measurements,
                              warnings)
            except (RuntimeError, Skip, subprocess.TimeoutExpired, OSError) as exc:
                failed = True
                warnings.append(f"{setup} servers failed: {exc}")
                print(f"{setup} servers failed: {exc}", file=sys.stderr)
            finally:
                stop_servers(servers)
                report["starts"][setup] = {name: s["info"] for name, s in servers.items()}
                servers = {}
    except BenchTimeout as exc:
        print(f"bench aborted: {exc}", file=sys.stderr)
        warnings.append(f"aborted: {exc}")
        failed = True
    finally:
        signal.alarm(0)
        stop_servers(servers)
        if upstream is not None:
            upstream.stop()
        report["summary"] = summarise(measurements)
        print(markdown(report))
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")
            print(f"figures written to {args.out}", file=sys.stderr)
        if args.keep_logs:
            print(f"logs, configs and query files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
