"""What adding one local record costs with a few records and with many (issue 20, item 12).

    scripts/bench-localrecords [--runs 3] [--records 1300] [--samples 40]
                               [--endpoint localrecords|dns-records] [--out local.json]

Each run starts a fresh Burrow on 127.0.0.1 (``burrow run --config``: loopback ports, DNS rate
limiting off, a fresh data dir, upstream 127.0.0.1:9 — nothing upstream is asked), sets up
the first admin and then, through the API:

- "few": with 3 local records stored, times ``--samples`` adds of one new record each
  (``POST /api/localrecords {"domain": "few-N.bench.lan", "type": "A", "ips": [...]}``, or
  ``POST /api/dns-records {"zone": "local", ...}`` with ``--endpoint dns-records``);
- fills up to ``--records`` local records (not timed);
- "many": times ``--samples`` more adds the same way.

A sample is the client's round trip for one request on loopback (a new connection each, as
the admin page's are), in ms. Requests rotate over 16 loopback source addresses
(127.0.3.1-16), so the per-address API rate limit never answers. Printed per run: median,
p90 and range of each phase; at the end, the median [range] of the per-run medians. It
asserts nothing. Bounded: ``--records`` ≤ 5,000, ``--samples`` ≤ 200, ``--runs`` ≤ 10,
``--timeout`` (default 300 s) for everything; the Burrow it starts is stopped on exit.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (scripts/bench.py: processes, ports, config, timeouts, runs)
from bench import LOOPBACK, Proc, Skip  # noqa: E402

ADMIN = ("admin", "Bench-Owner-Passphrase-1")
SOURCES = [f"127.0.3.{i}" for i in range(1, 17)]  # 16 × 20 requests/s stays under the API limit
HTTP_TIMEOUT = 10.0
SEED_RECORDS = 3
MAX_RECORDS = 5000
MAX_SAMPLES = 200


class Client:
    """HTTP on loopback with the admin's token, each request from the next source address."""

    def __init__(self, web_port: int) -> None:
        self.web_port = web_port
        self.token: str | None = None
        self.turn = 0

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        """(status, parsed body, round trip in ms)."""
        source = SOURCES[self.turn % len(SOURCES)]
        self.turn += 1
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        started = time.perf_counter()
        conn = http.client.HTTPConnection(LOOPBACK, self.web_port, timeout=HTTP_TIMEOUT,
                                          source_address=(source, 0))
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        spent = (time.perf_counter() - started) * 1000
        try:
            return response.status, json.loads(raw) if raw else None, spent
        except ValueError:
            return response.status, raw.decode(errors="replace"), spent


def add_one(client: Client, endpoint: str, i: int, prefix: str) -> float:
    """Add the local record ``<prefix>-<i>.bench.lan A 10.x.y.z``; its round trip in ms."""
    name = f"{prefix}-{i}.bench.lan"
    address = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    if endpoint == "dns-records":
        body = {"zone": "local", "name": name, "type": "A", "value": address}
        want = 201
    else:
        body = {"domain": name, "type": "A", "ips": [address]}
        want = 200
    status, answer, spent = client.call("POST", f"/api/{endpoint}", body)
    if status != want:
        raise RuntimeError(f"adding {name}: {status} {answer}")
    return spent


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": statistics.median(ordered), "p90_ms": ordered[int(0.9 * (len(ordered) - 1))],
            "min_ms": ordered[0], "max_ms": ordered[-1]}


def run_once(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    command = bench.burrow_command()
    if command is None:
        raise Skip("no burrow executable (install the package: pip install -e .)")
    port, web_port = bench.free_port(), bench.free_port()
    config = {
        "upstream_dns_servers": [f"{LOOPBACK}:9"],
        "server": {"listen_address": f"{LOOPBACK}:{port}",
                   "web_ui_address": f"{LOOPBACK}:{web_port}"},
        "rate_limit": {"enabled": False},
        "storage": {"data_dir": str(workdir / "data")},
    }
    (workdir / "burrow.toml").write_text(bench.toml_dump(config))
    proc = Proc("burrow", bench.pinned(args.server_cpu, [command, "run", "--config",
                                                         str(workdir / "burrow.toml")]),
                workdir / "burrow.log")
    client = Client(web_port)
    try:
        deadline = time.monotonic() + bench.READY_TIMEOUT
        while True:
            try:
                if client.call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"burrow did not come up:\n{proc.log_tail()}")
            time.sleep(0.1)
        user = {"username": ADMIN[0], "password": ADMIN[1]}
        if client.call("POST", "/api/auth/setup", user)[0] != 201:
            raise RuntimeError("first-run setup failed")
        status, pair, _ = client.call("POST", "/api/auth/login", user)
        if status != 200:
            raise RuntimeError(f"login failed: {status} {pair}")
        client.token = pair["access_token"]
        for i in range(SEED_RECORDS):
            add_one(client, args.endpoint, i, "seed")
        few = [add_one(client, args.endpoint, i, "few") for i in range(args.samples)]
        stored = SEED_RECORDS + args.samples
        for i in range(max(0, args.records - stored)):
            add_one(client, args.endpoint, i, "fill")
        stored = max(stored, args.records)
        many = [add_one(client, args.endpoint, i, "many") for i in range(args.samples)]
        return {"few": {"stored_before": SEED_RECORDS, **summary(few)},
                "many": {"stored_before": stored, **summary(many)}}
    finally:
        proc.stop()


def line(result: dict[str, Any]) -> str:
    parts = []
    for phase in ("few", "many"):
        r = result[phase]
        parts.append(f"{phase} ({r['stored_before']}+ records): median {r['median_ms']:.2f} ms, "
                     f"p90 {r['p90_ms']:.2f}, range {r['min_ms']:.2f}-{r['max_ms']:.2f}")
    return "; ".join(parts)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh Burrow per run (1-10)")
    parser.add_argument("--records", type=int, default=1300,
                        help=f"local records stored before the 'many' samples (≤ {MAX_RECORDS})")
    parser.add_argument("--samples", type=int, default=40, help=f"timed adds per phase (≤ {MAX_SAMPLES})")
    parser.add_argument("--endpoint", choices=("localrecords", "dns-records"), default="localrecords")
    parser.add_argument("--server-cpu", type=int, default=None,
                        help="pin Burrow to this CPU with taskset (default: not pinned)")
    parser.add_argument("--out", help="also write the figures as JSON here")
    parser.add_argument("--timeout", type=float, default=300.0, help="for the whole bench")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 10 or not 1 <= args.samples <= MAX_SAMPLES \
            or not 0 <= args.records <= MAX_RECORDS:
        parser.error(f"--runs 1-10, --samples 1-{MAX_SAMPLES}, --records 0-{MAX_RECORDS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench.arm_timeout(args.timeout)
    results = bench.repeat_runs("bench-localrecords", args.runs, lambda tmp: run_once(args, tmp), line)
    if isinstance(results, int):
        return results
    medians = {phase: [r[phase]["median_ms"] for r in results] for phase in ("few", "many")}
    print("median [range] of the per-run medians over "
          f"{len(results)} runs: few {statistics.median(medians['few']):.2f} "
          f"[{min(medians['few']):.2f}-{max(medians['few']):.2f}] ms, many "
          f"{statistics.median(medians['many']):.2f} "
          f"[{min(medians['many']):.2f}-{max(medians['many']):.2f}] ms "
          f"({results[0]['many']['stored_before']} records, POST /api/{args.endpoint})")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
