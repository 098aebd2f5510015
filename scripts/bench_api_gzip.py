"""What gzip costs and saves on a large API answer: a ~100 KB ``/api/queries`` page at zlib
levels 1, 6 and 9.

    scripts/bench-api-gzip [--target-kb 100] [--repeat 50] [--cpu 0]

Starts the real ``burrow`` (this checkout's, as the tests do) with the test upstream on
127.0.0.1, sends DNS queries until the query log holds enough rows, fetches one
``/api/queries`` page of about ``--target-kb`` KB, then compresses that body ``--repeat`` times
at each level and prints the median CPU time (time.thread_time, so other load on the machine
counts less than with wall time) and the compressed size. It also times fetching the page
over one kept-alive connection plain and gzipped (the server's own level: GZIP_LEVEL), median
wall time of ``--repeat`` requests, paced under the API's rate limit. ``--cpu N`` pins this
process (and the server it starts) to one CPU. Everything is stopped when it ends; nothing
outside its temporary folder is touched.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import pathlib
import statistics
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "firmware"))
sys.path.insert(0, str(REPO))

from burrow.api import encoding  # noqa: E402
from tests.support.api_client import admin_token  # noqa: E402
from tests.support.burrow_proc import BurrowProcess  # noqa: E402
from tests.support.upstream_client import TestUpstream  # noqa: E402


PACE = 0.1  # seconds between timed requests: the API answers 429 past 20 a second per address
SITES = ("example.com", "cdn.example.net", "api.example.org", "static.example-cdn.com",
         "telemetry.example.io", "ads.example.biz", "img.example.co.uk", "push.example.app")


def fetch(conn: http.client.HTTPConnection, path: str, token: str, gz: bool) -> tuple[bytes, dict]:
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip" if gz else "identity"}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise SystemExit(f"{path}: {resp.status} {body[:200]!r}")
    return body, {k.lower(): v for k, v in resp.getheaders()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target-kb", type=int, default=100)
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--cpu", type=int, default=None)
    args = p.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})  # inherited by the server started below
    import dns.message
    import dns.query

    with tempfile.TemporaryDirectory(prefix="burrow-gzbench-") as tmp, TestUpstream() as up, \
            BurrowProcess(pathlib.Path(tmp), [up.address]) as b:
        token = admin_token(b)
        conn = http.client.HTTPConnection("127.0.0.1", b.web_port, timeout=60)
        n = 0
        rng = random.Random(15)
        body = b""
        deadline = time.monotonic() + 300
        while len(body) < args.target_kb * 1000 and time.monotonic() < deadline:
            for _ in range(200):
                # varied names, as a home network's log has (repeats would flatter gzip)
                q = dns.message.make_query(f"{rng.randbytes(rng.randint(3, 9)).hex()}."
                                           f"{rng.choice(SITES)}", rng.choice(("A", "AAAA", "HTTPS")))
                dns.query.udp(q, "127.0.0.1", port=b.dns_port, timeout=5)
                n += 1
            time.sleep(1.5)  # the recorder flushes each second
            body, _ = fetch(conn, "/api/queries?limit=1000", token, False)
        rows = json.loads(body)["queries"]
        limit = max(1, round(len(rows) * args.target_kb * 1000 / len(body)))
        path = f"/api/queries?limit={limit}"
        page, _ = fetch(conn, path, token, False)
        print(f"page: GET {path}: {len(page)} bytes, {limit} rows")
        print()
        print("| zlib level | size bytes | ratio | CPU ms (median) |")
        print("|---|---|---|---|")
        for level in (1, 6, 9):
            times = []
            for _ in range(args.repeat):
                t0 = time.thread_time()
                out = gzip.compress(page, compresslevel=level, mtime=0)
                times.append(time.thread_time() - t0)
            print(f"| {level} | {len(out)} | {len(out) / len(page):.3f} | {statistics.median(times) * 1000:.2f} |")
        print()
        print(f"| one kept-alive connection (server level {encoding.GZIP_LEVEL}) "
              "| bytes on the wire | wall ms (median) |")
        print("|---|---|---|")
        for gz in (False, True):
            times = []
            for _ in range(args.repeat):
                time.sleep(PACE)  # under the API's per-address rate limit (20/s), outside the timing
                t0 = time.perf_counter()
                got, headers = fetch(conn, path, token, gz)
                times.append(time.perf_counter() - t0)
            assert (headers.get("content-encoding") == "gzip") == gz, headers
            print(f"| {'gzip' if gz else 'plain'} | {len(got)} | {statistics.median(times) * 1000:.1f} |")
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
