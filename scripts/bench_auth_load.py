"""DNS latency while Burrow checks passwords: a burst of wrong-password 2FA-disable calls.

    scripts/bench-auth-load [--runs 5] [--accounts 20] [--rate 20] [--duration 5]
                            [--probe-interval 0.005] [--out auth-load.json]

Issue 20 item 2: a signed-in viewer posting wrong passwords to ``POST /api/auth/2fa/disable``
(20 a second, inside the API rate limit) made every check run scrypt on the event loop and
DNS stalled. This bench measures it, and prints figures; it asserts nothing.

Each run (``--runs``, fresh Burrow and data dir each time; the median and range are printed
at the end):

- Burrow on 127.0.0.1 as scripts/bench starts it (``burrow run --config``: loopback ports,
  DNS rate limiting off, a fresh data dir; upstream 127.0.0.1:9 — nothing upstream is
  asked), first admin set up, a local record ``bench.lan A 192.0.2.1`` added (answered by
  Burrow itself);
- ``--accounts`` viewers, each signed in from its own loopback address (127.0.1.N) with 2FA
  turned on (pyotp), so each one's 2FA-disable really checks the password;
- "before": a probe process asks ``bench.lan A`` over UDP one query at a time, every
  ``--probe-interval`` seconds, for ``--probe-seconds`` (each query waits up to 1 s; no
  answer counts as lost), and prints every round-trip time;
- "during": the same probe while the burst runs: ``--rate`` requests a second for
  ``--duration`` seconds, round-robin over the viewers (each from its own address, so the
  per-address API rate limit is never what refuses them), each with a wrong password; at
  most ``MAX_IN_FLIGHT`` requests are outstanding (a request waits up to 10 s).

Printed per run: DNS p50/p99/max and lost queries before and during, and how the burst was
answered (400 = password checked and wrong, 429 locked_out = counted by the lockout, 429
busy = refused by the bounded password queue, 429 other = the API rate limit). Bounded:
``--accounts`` ≤ 60, ``--rate`` × ``--duration`` ≤ 2000 requests, ``--timeout`` (default
300 s) for everything; every process it starts is stopped on exit.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (scripts/bench.py: processes, ports, config, timeouts)
from bench import LOOPBACK  # noqa: E402

DISCARD_PORT = 9  # Burrow's upstream: nothing is asked upstream
VIEWER_PASSWORD = "Bench-Reader-Passphrase-2"
WRONG_PASSWORD = "not the password, 42"  # not 6 digits: checked as a password, not a code
PROBE_NAME = "bench.lan"
PROBE_ADDRESS = "192.0.2.1"
PROBE_TIMEOUT = 1.0
MAX_IN_FLIGHT = 32
MAX_REQUESTS = 2000
HTTP_TIMEOUT = 10.0


# -- the DNS probe (a separate process: the burst's threads must not delay its clock) -----

def probe(port: int, seconds: float, interval: float) -> dict[str, Any]:
    """Ask PROBE_NAME one query at a time for ``seconds``; the round trips in ms and losses."""
    rtts: list[float] = []
    lost = 0
    deadline = time.monotonic() + seconds
    qid = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((LOOPBACK, port))
        while time.monotonic() < deadline:
            qid = (qid + 1) & 0xFFFF
            sent = time.perf_counter()
            sock.send(bench.dns_query(PROBE_NAME, qid))
            sock.settimeout(PROBE_TIMEOUT)
            try:
                while True:
                    data = sock.recv(4096)
                    if data[:2] == struct.pack("!H", qid):
                        break
                rtts.append((time.perf_counter() - sent) * 1000)
            except (socket.timeout, ConnectionRefusedError):
                lost += 1
            pause = interval - (time.perf_counter() - sent)
            if pause > 0:
                time.sleep(pause)
    return {"rtts_ms": rtts, "lost": lost}


def start_probe(port: int, seconds: float, interval: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--probe", str(port), str(seconds),
                             str(interval)], stdout=subprocess.PIPE, text=True)


def probe_result(proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"the DNS probe failed (exit {proc.returncode})")
    return json.loads(out)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(result: dict[str, Any]) -> dict[str, Any]:
    rtts = result["rtts_ms"]
    return {"queries": len(rtts) + result["lost"], "lost": result["lost"],
            "p50_ms": percentile(rtts, 0.50), "p99_ms": percentile(rtts, 0.99),
            "max_ms": max(rtts) if rtts else None}


# -- HTTP from a chosen loopback address ------------------------------------------------

def call(web_port: int, method: str, path: str, body: Any = None, token: str | None = None,
         source: str = LOOPBACK) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(LOOPBACK, web_port, timeout=HTTP_TIMEOUT,
                                      source_address=(source, 0))
    try:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")
    finally:
        conn.close()


def expect(result: tuple[int, Any], status: int, what: str) -> Any:
    if result[0] != status:
        raise RuntimeError(f"{what}: expected {status}, got {result[0]} {result[1]}")
    return result[1]


def viewer_address(i: int) -> str:
    return f"127.0.1.{i + 1}"


def prepare(web_port: int, token: str, accounts: int) -> list[tuple[str, str]]:
    """With the admin's ``token``: the probe's local record, and ``accounts`` viewers with
    2FA on, each signed in from its own address: [(token, address)]."""
    import pyotp
    expect(call(web_port, "POST", "/api/localrecords",
                {"domain": PROBE_NAME, "type": "A", "ips": [PROBE_ADDRESS]}, token), 200,
           "local record")
    sessions = []
    for i in range(accounts):
        name, source = f"viewer{i}", viewer_address(i)
        expect(call(web_port, "POST", "/api/users", {"username": name, "password":
                                                    VIEWER_PASSWORD, "role": "viewer"}, token),
               201, "create viewer")
        pair = expect(call(web_port, "POST", "/api/auth/login",
                           {"username": name, "password": VIEWER_PASSWORD}, source=source),
                      200, "viewer login")
        enrol = expect(call(web_port, "POST", "/api/auth/2fa/enrol", {}, pair["access_token"],
                            source), 200, "2FA enrol")
        expect(call(web_port, "POST", "/api/auth/2fa/confirm",
                    {"code": pyotp.TOTP(enrol["secret"]).now()}, pair["access_token"], source),
               200, "2FA confirm")
        sessions.append((pair["access_token"], source))
    return sessions


def outcome(status: int, body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if status == 429:
        return f"429 {error}" if error in ("locked_out", "busy") else "429 other"
    return str(status)


def burst(web_port: int, sessions: list[tuple[str, str]], rate: float,
          seconds: float) -> dict[str, int]:
    """``rate`` wrong-password 2FA-disable calls a second for ``seconds``, round-robin."""
    counts: dict[str, int] = {}
    lock = threading.Lock()
    total = min(MAX_REQUESTS, int(rate * seconds))

    def one(i: int) -> None:
        token, source = sessions[i % len(sessions)]
        try:
            status, body = call(web_port, "POST", "/api/auth/2fa/disable",
                                {"code_or_password": WRONG_PASSWORD}, token, source)
            key = outcome(status, body)
        except OSError as exc:
            key = f"error {type(exc).__name__}"
        with lock:
            counts[key] = counts.get(key, 0) + 1

    started = time.monotonic()
    with ThreadPoolExecutor(MAX_IN_FLIGHT) as pool:
        for i in range(total):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
    return dict(sorted(counts.items()))


# -- one run ----------------------------------------------------------------------------

def run_once(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    # scripts/bench's Burrow (loopback ports, DNS rate limiting off, a fresh data dir), with
    # the discard port as its upstream: the probe's name is answered by Burrow itself.
    proc, port = bench.start_burrow(args, workdir, DISCARD_PORT)
    web_port = proc.web_port
    try:
        api = bench.BurrowApi(web_port)
        api.sign_in()  # the first admin (bench.ADMIN_USER), signed in from 127.0.0.1
        sessions = prepare(web_port, api.token, args.accounts)
        before = probe_result(start_probe(port, args.probe_seconds, args.probe_interval),
                              args.probe_seconds + 30)
        during_probe = start_probe(port, args.duration, args.probe_interval)
        answers = burst(web_port, sessions, args.rate, args.duration)
        during = probe_result(during_probe, args.duration + 30)
        return {"before": latency(before), "during": latency(during), "burst": answers}
    finally:
        proc.stop()


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def line(result: dict[str, Any]) -> str:
    b, d = result["before"], result["during"]
    return (f"DNS p50 {fmt(b['p50_ms'])} -> {fmt(d['p50_ms'])} ms, "
            f"p99 {fmt(b['p99_ms'])} -> {fmt(d['p99_ms'])} ms, "
            f"max {fmt(b['max_ms'])} -> {fmt(d['max_ms'])} ms, "
            f"lost {b['lost']}/{b['queries']} -> {d['lost']}/{d['queries']}; "
            f"burst answers {result['burst']}")


def spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh Burrow per run (1-20)")
    parser.add_argument("--accounts", type=int, default=20, help="viewers in the burst (1-60)")
    parser.add_argument("--rate", type=float, default=20.0, help="burst requests per second")
    parser.add_argument("--duration", type=float, default=5.0, help="burst seconds")
    parser.add_argument("--probe-seconds", type=float, default=3.0,
                        help="seconds of the 'before' probe")
    parser.add_argument("--probe-interval", type=float, default=0.005,
                        help="seconds between probe queries")
    parser.add_argument("--server-cpu", type=int, default=None,
                        help="pin Burrow to this CPU with taskset (default: not pinned)")
    parser.add_argument("--out", help="also write the figures as JSON here")
    parser.add_argument("--timeout", type=float, default=300.0, help="for the whole bench")
    args = parser.parse_args(argv)
    args.extra_toml = ""  # bench.start_burrow's --burrow-config-extra: none here
    if not 1 <= args.runs <= 20 or not 1 <= args.accounts <= 60:
        parser.error("--runs must be 1-20 and --accounts 1-60")
    if args.rate <= 0 or args.duration <= 0 or args.rate * args.duration > MAX_REQUESTS:
        parser.error(f"--rate x --duration must be positive and at most {MAX_REQUESTS}")
    if not 0 < args.probe_seconds <= 60 or not 0.001 <= args.probe_interval <= 1:
        parser.error("--probe-seconds must be in (0, 60], --probe-interval in [0.001, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 5 and sys.argv[1] == "--probe":
        print(json.dumps(probe(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))))
        return 0
    args = parse_args(argv)
    bench.arm_timeout(args.timeout)
    results = bench.repeat_runs("bench-auth-load", args.runs,
                                lambda workdir: run_once(args, workdir), line)
    if isinstance(results, int):  # skipped or timed out
        return results
    summary = {phase: {key: spread([r[phase][key] for r in results])
                       for key in ("p50_ms", "p99_ms", "max_ms")}
               for phase in ("before", "during")}
    print(f"median [range] over {len(results)} runs: "
          f"DNS p50 {summary['before']['p50_ms']} -> {summary['during']['p50_ms']} ms; "
          f"p99 {summary['before']['p99_ms']} -> {summary['during']['p99_ms']} ms; "
          f"max {summary['before']['max_ms']} -> {summary['during']['max_ms']} ms")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "runs": results,
                                              "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
