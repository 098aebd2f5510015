"""DNS over HTTPS over HTTP/2 against HTTP/1.1 on the HTTPS listener: the burrow process's CPU
per query and the rate, one client connection (h2) or keep-alive connections (HTTP/1.1), one
query at a time and 8 at once. The answer comes from Burrow's cache (the test upstream answers
the first one), so what is measured is the HTTPS path, not forwarding. docs/benchmarks.md,
"DoH over HTTP/2 and HTTP/1.1 (issue 17)"."""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import ssl
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "firmware"))
sys.path.insert(0, str(REPO))

import dns.message  # noqa: E402
import httpx  # noqa: E402

from tests.support.burrow_proc import BurrowProcess, free_port  # noqa: E402
from tests.support.tlscerts import TestCA, write_pair  # noqa: E402
from tests.support.upstream_client import TestUpstream  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(port: int, ca: pathlib.Path, http2: bool, n: int, pid: int) -> tuple[tuple, tuple]:
    q = dns.message.make_query("www.example.com", "A")
    q.id = 0
    wire = q.to_wire()
    headers = {"Content-Type": "application/dns-message"}
    ctx = ssl.create_default_context(cafile=str(ca))
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=ctx, http2=http2, timeout=30) as c:
        assert (await c.post("/dns-query", content=wire, headers=headers)).status_code == 200  # cached now
        c0, t0 = cpu_seconds(pid), time.monotonic()
        for _ in range(n):
            assert (await c.post("/dns-query", content=wire, headers=headers)).status_code == 200
        one = (cpu_seconds(pid) - c0, time.monotonic() - t0)
        c0, t0 = cpu_seconds(pid), time.monotonic()
        for _ in range(n // 8):
            answers = await asyncio.gather(*(c.post("/dns-query", content=wire, headers=headers) for _ in range(8)))
            assert all(a.status_code == 200 for a in answers)
        eight = (cpu_seconds(pid) - c0, time.monotonic() - t0)
    return one, eight


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=400, help="per round and kind (default 400)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each protocol, interleaved")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, TestUpstream() as up:
        d = pathlib.Path(tmp)
        ca = TestCA()
        cert, key = write_pair(d, "server", ca.issue(["dns.test"], ["127.0.0.1"]))
        ca_file = ca.write(d / "ca.pem")
        port = free_port()
        with BurrowProcess(d / "burrow", [up.address], config={
                "logging": {"level": "info"},
                "tls": {"mode": "manual", "cert_file": str(cert), "key_file": str(key),
                        "https_address": f"127.0.0.1:{port}"}}) as b:
            assert b.proc is not None
            for _ in range(args.rounds):
                for http2 in (False, True):
                    one, eight = asyncio.run(measure(port, ca_file, http2, args.queries, b.proc.pid))
                    n = args.queries
                    print(f"{'HTTP/2  ' if http2 else 'HTTP/1.1'}  one at a time: {one[0] * 1e6 / n:6.0f} µs CPU/query "
                          f"{n / one[1]:5.0f} q/s   8 at once: {eight[0] * 1e6 / n:6.0f} µs CPU/query "
                          f"{n / eight[1]:5.0f} q/s", flush=True)


if __name__ == "__main__":
    main()
