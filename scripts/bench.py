"""Benchmark Burrow against Debian's dnsmasq, side by side, in one run.

    scripts/bench [--duration 10] [--clients 4] [--only burrow|dnsmasq]
                  [--phases hit,miss,blocked,blocked-cold] [--out bench.json]

Setup (everything on 127.0.0.1):

- one *upstream*: a separate dnsmasq that answers every name locally
  (``--address=/#/198.18.0.1 --local-ttl=3600``), pinned to the client core, so the upstream
  never limits the servers under test. The address is in 198.18.0.0/15 (RFC 2544, set
  aside for benchmarks): public as far as Burrow's DNS-rebinding protection is concerned,
  so answers are passed on (a private address such as 10.x would be blocked as rebinding);
- the servers under test, one after the other, each pinned alone to the server core:
  ``burrow run --config`` (a generated TOML: the upstream above, rate limiting off, a fresh
  data dir) and ``dnsmasq --cache-size=10000`` forwarding to the same upstream (no query
  logging);
- dnsperf pinned to the client core.

Per server, up to four phases (``--phases``, default all):

- ``hit``: the top N names of the Umbrella popularity list, each asked once to warm the
  cache, then dnsperf loops over them for --duration seconds: every answer comes from cache;
- ``miss``: unique, never-repeated names (``<n>.<run>.miss.bench.test``): every query is
  forwarded to the upstream;
- ``blocked``: both servers hold the same 1M-name block list
  (../shared/data/derived/union-1M.domains.txt.gz). Burrow gets the file in its data dir's
  ``lists/`` folder, added as a block list through the API (``POST /api/lists``; the
  bench waits until ``GET /api/lists`` shows the compiled index live); dnsmasq gets a
  generated ``--conf-file`` with one ``address=/<name>/0.0.0.0`` line per name. dnsperf
  loops over --blocked-names names drawn at random from the list (each asked once first,
  as in ``hit``): every answer is a block (0.0.0.0), checked on a sample before the load;
- ``blocked-cold``: the same servers, never-repeated names from the rest of the list,
  each asked once: every answer is a block decided by the index lookup (Burrow's fast path
  has not seen the name).

The blocked phases run on a second start of each server (with the list loaded), so the hit
and miss figures stay those of a server without lists.

Figures per server and phase: dnsperf's QPS and average / max latency, queries lost, server
CPU (utime+stime from /proc/PID/stat) per completed query, queries that reached the
upstream (dnsmasq's SIGUSR1 statistics), and the server's idle RSS (VmRSS after start,
before any load; for the blocked phases, VmRSS with the 1M list loaded, before any load).
The Burrow/dnsmasq ratios come last. Output: a Markdown table on stdout and, with --out,
the same figures as JSON.

The bench skips (exit 0, with the reason) when ../shared/data (or, for the blocked phases,
the 1M list in it), dnsperf or dnsmasq is absent.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import gzip
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
TOPSITES = DATA_DIR / "topsites" / "umbrella-top-100k.txt"
UNION_1M = DATA_DIR / "derived" / "union-1M.domains.txt.gz"
PHASES = ("hit", "miss", "blocked", "blocked-cold")
BLOCK_ADDRESS = "0.0.0.0"
LOOPBACK = "127.0.0.1"
UPSTREAM_ADDRESS = "198.18.0.1"  # RFC 2544 benchmark net: not private (rebind protection)
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT = 30.0  # seconds a server may take to answer its first query
SETTLE = 1.0  # seconds of quiet after start before idle RSS is read
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
LIST_TIMEOUT = 300.0  # seconds a server may take to load the 1M list and answer
VERIFY_SAMPLE = 20  # blocked names checked for a 0.0.0.0 answer before the load
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
                outstanding: int | None = None, max_qps: int | None = None) -> dict[str, Any]:
    argv = ["dnsperf", "-s", LOOPBACK, "-p", str(port), "-d", str(query_file),
            "-l", f"{duration:g}", "-c", str(clients or args.clients)]
    if runs is not None:
        argv += ["-n", str(runs)]
    if outstanding is not None:
        argv += ["-q", str(outstanding)]
    if max_qps:
        argv += ["-Q", str(max_qps)]
    result = subprocess.run(pinned(args.client_cpu, argv), capture_output=True, text=True,
                            timeout=duration + 30, preexec_fn=_die_with_parent)
    if result.returncode != 0:
        raise RuntimeError(f"dnsperf failed ({result.returncode}): {result.stderr[-2000:]}")
    return parse_dnsperf(result.stdout)


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


# -- query files ------------------------------------------------------------------------

def write_hit_file(path: Path, count: int) -> int:
    names: list[str] = []
    seen: set[str] = set()
    with open(TOPSITES, encoding="utf-8", errors="replace") as source:
        for line in source:
            name = line.strip().rstrip(".").lower()
            if name and name not in seen and NAME_RE.match(name):  # skip the junk lines
                seen.add(name)
                names.append(name)
                if len(names) >= count:
                    break
    path.write_text("".join(f"{name} A\n" for name in names))
    return len(names)


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
    with opener(path, "rt", encoding="utf-8", errors="replace") as source:  # type: ignore[operator]
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


def prepare_blocked(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Query files and dnsmasq's conf for the blocked phases, from the 1M list."""
    names = read_list_names(UNION_1M)
    valid = [n for n in names if NAME_RE.match(n)]
    rng = random.Random(args.seed)
    order = list(range(len(valid)))
    rng.shuffle(order)
    sample = [valid[i] for i in order[:args.blocked_names]]
    cold = [valid[i] for i in order[args.blocked_names:args.blocked_names + args.cold_names]]
    files = {"blocked": workdir / "blocked.txt", "blocked-cold": workdir / "blocked-cold.txt",
             "dnsmasq_conf": workdir / "dnsmasq-block.conf"}
    write_names(files["blocked"], sample)
    write_names(files["blocked-cold"], cold)
    write_dnsmasq_block_conf(files["dnsmasq_conf"], names)
    return {"files": files, "list_names": len(names), "invalid_names": len(names) - len(valid),
            "blocked_names": len(sample), "cold_names": len(cold),
            "verify": sample[:VERIFY_SAMPLE // 2] + cold[-(VERIFY_SAMPLE - VERIFY_SAMPLE // 2):]}


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


def start_dnsmasq(args: argparse.Namespace, workdir: Path, up_port: int,
                  conf_file: Path | None = None) -> tuple[Proc, int]:
    port = free_port()
    argv = pinned(args.server_cpu, [
        "dnsmasq", "-k", f"--conf-file={conf_file or '/dev/null'}", "--no-resolv",
        f"--server={LOOPBACK}#{up_port}", f"--port={port}", f"--listen-address={LOOPBACK}",
        "--bind-interfaces", "--cache-size=10000", "--no-hosts", "--log-facility=-",
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

def bench_server(args: argparse.Namespace, name: str, workdir: Path, upstream: Proc,
                 up_port: int, hit_file: Path, miss_file: Path) -> dict[str, Any]:
    starter = start_burrow if name == "burrow" else start_dnsmasq
    proc, port = starter(args, workdir, up_port)
    result: dict[str, Any] = {"command": proc.argv}
    try:
        result["startup_s"] = round(wait_ready(proc, port), 3)
        time.sleep(SETTLE)
        result["idle_rss_kib"] = status_kib(proc.pid, "VmRSS")
        result["phases"] = {}

        if "hit" in args.phases:
            # hit: warm each name once (gently), then loop over them
            result["warm"] = warm_up(args, port, hit_file)
            first = hit_file.read_text().split(None, 1)[0]
            rcode, addresses = dns_answer(port, first)
            if rcode != 0 or addresses != [UPSTREAM_ADDRESS]:  # e.g. blocked on the way
                result.setdefault("warnings", []).append(
                    f"{name} answered {first} with rcode {rcode}, A {addresses}, not the "
                    f"upstream's {UPSTREAM_ADDRESS}")
            time.sleep(0.5)
            result["phases"]["hit"] = measure(args, proc, upstream, port, hit_file, runs=None)
            time.sleep(SETTLE)
        if "miss" in args.phases:
            result["phases"]["miss"] = measure(args, proc, upstream, port, miss_file, runs=1)
        result["rss_after_kib"] = status_kib(proc.pid, "VmRSS")
        result["peak_rss_kib"] = status_kib(proc.pid, "VmHWM")
        if name == "dnsmasq":
            stats = dnsmasq_stats(proc)
            if stats:
                result["dnsmasq_forwarded_total"] = stats[0]
    finally:
        proc.stop()
        result["log"] = str(proc.log_path)
    return result


def warm_up(args: argparse.Namespace, port: int, query_file: Path) -> dict[str, Any]:
    """Ask each name of ``query_file`` once, gently (one client, 20 outstanding)."""
    warm = run_dnsperf(args, port, query_file, duration=60, runs=1, clients=1,
                       outstanding=20)
    return {k: warm[k] for k in ("queries_completed", "queries_lost", "rcodes")}


def bench_blocked(args: argparse.Namespace, name: str, workdir: Path, upstream: Proc,
                  up_port: int, blocked: dict[str, Any]) -> dict[str, Any]:
    """A second start of the server, with the 1M list loaded: the blocked phases."""
    files = blocked["files"]
    if name == "burrow":
        lists_dir = workdir / "burrow-data" / "lists"
        lists_dir.mkdir(parents=True)
        shutil.copyfile(UNION_1M, lists_dir / UNION_1M.name)
        proc, port = start_burrow(args, workdir, up_port)
    else:
        proc, port = start_dnsmasq(args, workdir, up_port, conf_file=files["dnsmasq_conf"])
    result: dict[str, Any] = {"command": proc.argv}
    try:
        result["startup_s"] = round(wait_ready(proc, port, timeout=LIST_TIMEOUT), 3)
        result["list_loaded_s"] = result["startup_s"]  # dnsmasq reads its list at start
        if name == "burrow":  # + adding the list until its index is live (not signing in)
            result["list"], _api = burrow_add_list(proc, UNION_1M.name)
            result["list_loaded_s"] = round(result["startup_s"] + result["list"]["seconds"], 2)
        result["verified"] = verify_blocked(port, blocked["verify"], name)
        time.sleep(SETTLE)
        result["list_rss_kib"] = status_kib(proc.pid, "VmRSS")
        if name == "burrow" and result["list"]["rss_signed_in_kib"]:
            result["list_rss_growth_kib"] = (result["list_rss_kib"]
                                             - result["list"]["rss_signed_in_kib"])
        result["phases"] = {}
        if "blocked" in args.phases:
            result["warm"] = warm_up(args, port, files["blocked"])
            time.sleep(0.5)
            result["phases"]["blocked"] = measure(args, proc, upstream, port,
                                                  files["blocked"], runs=None)
            time.sleep(SETTLE)
        if "blocked-cold" in args.phases:
            result["phases"]["blocked-cold"] = measure(args, proc, upstream, port,
                                                       files["blocked-cold"], runs=1)
        for phase_name, phase in result["phases"].items():
            phase["rss_kib"] = result["list_rss_kib"]
            if phase["rcodes"].keys() - {"NOERROR"}:  # a block is NOERROR + 0.0.0.0
                result.setdefault("warnings", []).append(
                    f"{name} {phase_name}: not every answer was NOERROR: {phase['rcodes']}")
        result["rss_after_kib"] = status_kib(proc.pid, "VmRSS")
        result["peak_rss_kib"] = status_kib(proc.pid, "VmHWM")
    finally:
        proc.stop()
        result["log"] = str(proc.log_path)
    return result


def measure(args: argparse.Namespace, proc: Proc, upstream: Proc, port: int,
            query_file: Path, runs: int | None) -> dict[str, Any]:
    up_before = dnsmasq_stats(upstream)
    cpu_before = cpu_seconds(proc.pid)
    perf = run_dnsperf(args, port, query_file, duration=args.duration, runs=runs,
                       max_qps=args.max_qps)
    cpu_after = cpu_seconds(proc.pid)
    up_after = dnsmasq_stats(upstream)
    if not proc.alive():
        raise RuntimeError(f"{proc.name} died under load:\n{proc.log_tail()}")
    user = cpu_after[0] - cpu_before[0]
    system = cpu_after[1] - cpu_before[1]
    cpu = user + system
    completed = perf["queries_completed"] or 0
    perf["server_cpu_s"] = round(cpu, 3)
    perf["cpu_us_per_query"] = round(cpu * 1e6 / completed, 3) if completed else None
    # The split: user time is the server's own code (for Burrow, Python); system time is the
    # kernel's work for it, mostly receiving and sending the datagrams.
    perf["cpu_user_us_per_query"] = round(user * 1e6 / completed, 3) if completed else None
    perf["cpu_system_us_per_query"] = round(system * 1e6 / completed, 3) if completed else None
    perf["server_cpu_utilisation"] = (round(cpu / perf["run_time_s"], 3)
                                      if perf["run_time_s"] else None)
    perf["upstream_queries"] = (up_after[1] - up_before[1]
                                if up_before and up_after else None)
    return perf


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


def ratios(servers: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    burrow, dnsmasq = servers.get("burrow", {}), servers.get("dnsmasq", {})
    if "phases" not in burrow or "phases" not in dnsmasq:
        return out
    for phase in PHASES:
        b, d = burrow["phases"].get(phase), dnsmasq["phases"].get(phase)
        if not b or not d:
            continue
        out[phase] = {
            "cpu_us_per_query": _ratio(b["cpu_us_per_query"], d["cpu_us_per_query"]),
            "qps": _ratio(b["qps"], d["qps"]),
            "avg_latency": _ratio(b["avg_latency_ms"], d["avg_latency_ms"]),
        }
    out["idle_rss"] = _ratio(burrow.get("idle_rss_kib"), dnsmasq.get("idle_rss_kib"))
    b_list, d_list = burrow.get("with_list", {}), dnsmasq.get("with_list", {})
    out["list_rss"] = _ratio(b_list.get("list_rss_kib"), d_list.get("list_rss_kib"))
    return {k: v for k, v in out.items() if v is not None}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"Burrow vs dnsmasq — {meta['date']}, {meta['versions']['cpu']} "
        f"({meta['versions']['cpus']} CPUs), {meta['duration_s']:g} s per phase, "
        f"{meta['clients']} dnsperf clients, server on CPU {meta['server_cpu']}, "
        f"dnsperf + upstream on CPU {meta['client_cpu']}",
        "",
        "| server | phase | QPS | avg latency ms | max latency ms | lost | "
        "CPU µs/query | user + sys µs | server CPU % | upstream queries | idle RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def fmt(value: Any, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    for name, server in report["servers"].items():
        for failed in (server, server.get("with_list", {})):
            if "error" in failed:
                lines.append(f"| {name} | – | failed: {failed['error'].splitlines()[0]} "
                             "| | | | | | | | |")
        for phase, p in server.get("phases", {}).items():
            rss = p.get("rss_kib", server.get("idle_rss_kib"))
            util = p.get("server_cpu_utilisation")
            lines.append(
                f"| {name} | {phase} | {fmt(p['qps'], ',.0f')} | "
                f"{fmt(p['avg_latency_ms'], '.3f')} | {fmt(p['max_latency_ms'], '.2f')} | "
                f"{fmt(p['queries_lost'], ',')} | {fmt(p['cpu_us_per_query'], '.1f')} | "
                f"{fmt(p.get('cpu_user_us_per_query'), '.1f')} + "
                f"{fmt(p.get('cpu_system_us_per_query'), '.1f')} | "
                f"{fmt(util * 100 if util is not None else None, '.0f')} | "
                f"{fmt(p['upstream_queries'], ',')} | "
                f"{fmt(rss / 1024 if rss else None, '.1f')} |")
    # (label, startup seconds, RSS before load, after load, peak) per server start
    memory = [(name, s.get("startup_s"), s["idle_rss_kib"], s.get("rss_after_kib"),
               s.get("peak_rss_kib"))
              for name, s in report["servers"].items() if "idle_rss_kib" in s]
    memory += [(f"{name} + 1M list", w.get("list_loaded_s"), w["list_rss_kib"],
                w.get("rss_after_kib"), w.get("peak_rss_kib"))
               for name, s in report["servers"].items()
               for w in [s.get("with_list", {})] if "list_rss_kib" in w]
    if memory:
        lines += ["", "| server | startup s | idle RSS MiB | RSS after load MiB | peak RSS MiB |",
                  "|---|---:|---:|---:|---:|"]
        for label, startup, *kib in memory:
            mib = [fmt(k / 1024 if k else None, ".1f") for k in kib]
            lines.append(f"| {label} | {fmt(startup, '.2f')} | " + " | ".join(mib) + " |")
        if any(label.endswith("list") for label, *_ in memory):
            lines.append("\n(+ 1M list: startup = start until answering, plus for Burrow "
                         "POST /api/lists until its index is live; idle RSS = with the list "
                         "loaded, before the load)")
    if report["ratios"]:
        lines += ["", "Burrow / dnsmasq:", ""]
        for phase in PHASES:
            r = report["ratios"].get(phase)
            if r:
                lines.append(f"- {phase}: CPU per query ×{fmt(r['cpu_us_per_query'], '.2f')}, "
                             f"QPS ×{fmt(r['qps'], '.2f')}, "
                             f"avg latency ×{fmt(r['avg_latency'], '.2f')}")
        if report["ratios"].get("idle_rss") is not None:
            lines.append(f"- idle RSS ×{fmt(report['ratios'].get('idle_rss'), '.2f')}")
        if report["ratios"].get("list_rss") is not None:
            lines.append(f"- RSS with the 1M list ×{fmt(report['ratios']['list_rss'], '.2f')}")
    for name, server in report["servers"].items():
        with_list = server.get("with_list", {})
        if "list_loaded_s" in with_list:
            lines.append(f"\n{name}: 1M list loaded and answering after "
                         f"{with_list['list_loaded_s']:.1f} s; checked "
                         f"{with_list['verified']['example']} on "
                         f"{with_list['verified']['checked']} names")
            if "list_rss_growth_kib" in with_list:
                lst = with_list["list"]
                lines.append(f"(RSS {lst['rss_started_kib'] / 1024:.1f} MiB started, "
                             f"{lst['rss_signed_in_kib'] / 1024:.1f} MiB signed in to the API, "
                             f"{with_list['list_rss_kib'] / 1024:.1f} MiB with the list: "
                             f"+{with_list['list_rss_growth_kib'] / 1024:.1f} MiB for the "
                             "list and its index)")
        for warning in server.get("warnings", []) + with_list.get("warnings", []):
            lines.append(f"\nwarning: {warning}")
    return "\n".join(lines) + "\n"


def preflight(args: argparse.Namespace) -> None:
    if not TOPSITES.exists():
        raise Skip(f"{TOPSITES} is missing (the shared data folder {DATA_DIR} is absent)")
    for tool in ("dnsperf", "dnsmasq"):
        if shutil.which(tool) is None:
            raise Skip(f"{tool} is not installed "
                       "(apt-get install dnsmasq-base dnsperf dnsutils)")
    if "burrow" in args.servers and burrow_command() is None:
        raise Skip("no burrow executable (pip install -e . in the repo)")
    if {"blocked", "blocked-cold"} & set(args.phases) and not UNION_1M.exists():
        raise Skip(f"{UNION_1M} is missing (needed by the blocked phases)")
    if shutil.which("taskset") is None:
        print("warning: taskset missing, processes are not pinned", file=sys.stderr)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description="Benchmark Burrow against dnsmasq (loopback only).")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of dnsperf load per server and phase (default 10)")
    parser.add_argument("--clients", type=int, default=4, help="dnsperf -c (default 4)")
    parser.add_argument("--max-qps", type=int, default=0,
                        help="dnsperf -Q: cap the offered load (default: as fast as it goes)")
    parser.add_argument("--only", choices=("burrow", "dnsmasq"),
                        help="bench one server (ratios need both)")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help="comma-separated phases to run, from "
                             f"{','.join(PHASES)} (default: all)")
    parser.add_argument("--hit-names", type=int, default=1000,
                        help="popular names in the cache-hit phase (default 1000)")
    parser.add_argument("--miss-names", type=int, default=0,
                        help="unique names in the miss file (default 80k per second of "
                             "--duration, at most 3M); dnsperf stops early if they run out")
    parser.add_argument("--blocked-names", type=int, default=10_000,
                        help="names drawn from the 1M list that the blocked phase loops "
                             "over (default 10000)")
    parser.add_argument("--cold-names", type=int, default=0,
                        help="names of the blocked-cold phase, each asked once (default 80k "
                             "per second of --duration, at most the rest of the list)")
    parser.add_argument("--seed", type=int, default=4,
                        help="random seed for drawing names from the list (default 4)")
    parser.add_argument("--burrow-config-extra", dest="extra_toml", default="",
                        help="TOML merged into Burrow's generated config "
                             "(a string, or @path to read a file)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the work dir (configs, server logs, query files)")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU for the server (0)")
    parser.add_argument("--client-cpu", type=int, default=1,
                        help="CPU for dnsperf (1)")
    parser.add_argument("--upstream-cpu", type=int, default=None,
                        help="CPU for the upstream dnsmasq (default: the client CPU)")
    parser.add_argument("--timeout", type=float, default=0,
                        help="overall limit in seconds (default: 300, or 4x duration per "
                             "phase + 120, + 180 with the blocked phases)")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 300:
        parser.error("--duration must be within (0, 300] seconds")
    if not 0 < args.clients <= 1000:
        parser.error("--clients must be within 1..1000")
    if args.upstream_cpu is None:
        args.upstream_cpu = args.client_cpu
    if (os.cpu_count() or 1) < 2:
        print("warning: one CPU only; server and dnsperf share it", file=sys.stderr)
        args.server_cpu = args.client_cpu = args.upstream_cpu = 0
    if not args.miss_names:
        args.miss_names = int(min(3_000_000, 80_000 * args.duration))
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown or not args.phases:
        parser.error(f"--phases: choose from {','.join(PHASES)} (got {sorted(unknown)})")
    args.phases = [p for p in PHASES if p in args.phases]
    if not 1 <= args.blocked_names <= 500_000:
        parser.error("--blocked-names must be within 1..500000")
    if not args.cold_names:
        args.cold_names = int(80_000 * args.duration)
    args.blocked_phases = [p for p in args.phases if p.startswith("blocked")]
    load_extra_toml(args, parser)
    if not args.timeout:
        args.timeout = max(300.0, 4 * args.duration * len(args.phases) + 120
                           + (180 if args.blocked_phases else 0))
    args.servers = [args.only] if args.only else ["burrow", "dnsmasq"]
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
    try:
        run_token = f"r{random.randrange(16**6):06x}"
        hit_file, miss_file = workdir / "hit.txt", workdir / "miss.txt"
        hit_count = write_hit_file(hit_file, args.hit_names) if "hit" in args.phases else 0
        if "miss" in args.phases:
            write_miss_file(miss_file, args.miss_names, run_token)
        blocked: dict[str, Any] | None = None
        if args.blocked_phases:
            print("preparing the 1M list ...", file=sys.stderr, flush=True)
            blocked = prepare_blocked(args, workdir)
        upstream, up_port = start_upstream(args, workdir)
        report: dict[str, Any] = {
            "meta": {
                "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "versions": versions(),
                "duration_s": args.duration, "clients": args.clients,
                "max_qps": args.max_qps or None,
                "phases": args.phases,
                "hit_names": hit_count,
                "miss_names": args.miss_names if "miss" in args.phases else 0,
                "block_list": ({k: v for k, v in blocked.items()
                                if k not in ("files", "verify")}
                               | {"file": str(UNION_1M), "seed": args.seed,
                                  "dnsmasq": f"--conf-file with address=/<name>/"
                                             f"{BLOCK_ADDRESS} per name"}
                               if blocked else None),
                "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
                "upstream_cpu": args.upstream_cpu,
                "upstream": f"dnsmasq --address=/#/{UPSTREAM_ADDRESS} --local-ttl=3600",
                "burrow_config_extra": args.extra_toml or None,
                "notes": "dnsmasq under test runs without query logging; Burrow runs its "
                         "default configuration plus burrow_config_extra.",
            },
            "servers": {},
        }
        for name in args.servers:
            server_dir = workdir / name
            server_dir.mkdir()
            server: dict[str, Any] = {"phases": {}}
            if {"hit", "miss"} & set(args.phases):
                print(f"benching {name} ...", file=sys.stderr, flush=True)
                try:
                    server = bench_server(args, name, server_dir, upstream, up_port,
                                          hit_file, miss_file)
                except (RuntimeError, Skip, subprocess.TimeoutExpired, OSError) as exc:
                    failed = True
                    server = {"error": str(exc), "phases": {}}
                    print(f"{name} failed: {exc}", file=sys.stderr)
            if blocked is not None:
                print(f"benching {name} with the 1M list ...", file=sys.stderr, flush=True)
                list_dir = server_dir / "with-list"
                list_dir.mkdir()
                try:
                    with_list = bench_blocked(args, name, list_dir, upstream, up_port, blocked)
                    server["phases"].update(with_list.pop("phases"))
                    server["with_list"] = with_list
                except (RuntimeError, Skip, subprocess.TimeoutExpired, OSError) as exc:
                    failed = True
                    server["with_list"] = {"error": str(exc)}
                    print(f"{name} with the list failed: {exc}", file=sys.stderr)
            report["servers"][name] = server
        report["ratios"] = ratios(report["servers"])
        print(markdown(report))
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")
            print(f"figures written to {args.out}", file=sys.stderr)
    except BenchTimeout as exc:
        print(f"bench aborted: {exc}", file=sys.stderr)
        failed = True
    finally:
        signal.alarm(0)
        if upstream is not None:
            upstream.stop()
        if args.keep_logs:
            print(f"logs, configs and query files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
