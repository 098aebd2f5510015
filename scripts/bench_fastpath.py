"""Python CPU per fast-path hit: DnsServer.fast() alone, and with the telemetry drain.

    scripts/bench-fastpath [--names 10000] [--queries 300000]

1. fast      one stored blocked answer asked again and again: ns per DnsServer.fast() call
             (best of 5), the part of a repeated query that runs in Python before sendto.
2. pipeline  --names distinct blocked answers (as the `blocked` phase of scripts/bench
             asks them: in a fixed order, over and over) through fast(), with the
             Recorder draining the ring every 32,000 hits as the running server does
             every 0.25 s: ns per query (best of 3). The query log is not written (its
             flush is scripts/bench-querylog's figure).

Entries are made the way the server makes them: the filter stage's null-IP answer,
rendered for the query, stored in the FastPath. No sockets: the receive/send pair is
scripts/bench's figure. Touches nothing but a temporary folder.
"""

from __future__ import annotations

import argparse
import collections
import logging
import pathlib
import shutil
import struct
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "firmware"))

from burrow.config.schema import DEFAULT_ALLOWED_NETWORKS  # noqa: E402
from burrow.dns import wire  # noqa: E402
from burrow.dns.access import AccessControl  # noqa: E402
from burrow.dns.fastpath import FastPath  # noqa: E402
from burrow.dns.message import Query, render  # noqa: E402
from burrow.dns.server import DnsServer  # noqa: E402
from burrow.dns.blocking import BlockingSettings, blocked_answer  # noqa: E402
from burrow.storage.querylog import QueryLogDB  # noqa: E402
from burrow.telemetry.recorder import Recorder  # noqa: E402

CLIENT = "192.168.1.2"
DRAIN_EVERY = 32_000  # hits between drains: ~0.25 s at the rates scripts/bench reaches


def query_packet(qid: int, name: str) -> bytes:
    """An A query with RD set and no EDNS, as dnsperf sends by default."""
    return struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0) + wire.text_to_name(name) + b"\x00\x01\x00\x01"


def store_blocked(server: DnsServer, packet: bytes) -> None:
    """Store the filter stage's null-IP answer for ``packet`` as the server does after the chain."""
    query = Query(wire.parse_query(packet), packet, CLIENT, 5353, "udp", time.monotonic())
    answer = blocked_answer(1, "null", BlockingSettings(), None)
    server.remember(query, answer, render(query, answer, 512), time.monotonic())


def new_server(ring: collections.deque) -> DnsServer:
    server = DnsServer(None, FastPath(), AccessControl(DEFAULT_ALLOWED_NETWORKS), None, ring)
    server.fast_clients[CLIENT] = server.fastpath.stores("default")
    return server


def bench_fast(calls: int) -> float:
    server = new_server(collections.deque(maxlen=1000))
    packet = query_packet(0x1234, "ads.tracker.example")
    store_blocked(server, packet)
    fast = server.fast
    if fast(packet, CLIENT, True) is None:
        raise SystemExit("the stored answer did not hit")
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            fast(packet, CLIENT, True)
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def bench_pipeline(names: int, queries: int, folder: pathlib.Path) -> float:
    recorder = Recorder(QueryLogDB(folder / "querylog.db"))
    server = new_server(recorder.ring)
    packets = [query_packet(i & 0xFFFF, f"host{i}.tracker{i % 97}.example") for i in range(names)]
    for packet in packets:
        store_blocked(server, packet)
    fast = server.fast
    if any(fast(p, CLIENT, True) is None for p in packets):
        raise SystemExit("a stored answer did not hit (raise FAST_MAX_ENTRIES or lower --names)")
    recorder.drain()
    best = float("inf")
    for _ in range(3):
        received = recorder.received
        started = time.perf_counter()
        done = 0
        while done < queries:
            for packet in packets:
                fast(packet, CLIENT, True)
                done += 1
                if done % DRAIN_EVERY == 0:
                    recorder.drain()
        recorder.drain()
        best = min(best, (time.perf_counter() - started) / done)
        if recorder.received - received != done:
            raise SystemExit("the drain missed records")
    recorder.db.close()
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--names", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=300_000)
    args = p.parse_args(argv)
    if not 1 <= args.names <= 20_000 or not 1 <= args.queries <= 10_000_000:
        p.error("--names 1..20,000 (the fast path's entry cap) and --queries 1..10,000,000")
    # Rows beyond the pending cap are dropped (and counted), as under load; no warning here.
    logging.getLogger("burrow.telemetry.recorder").setLevel(logging.ERROR)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="burrow-fastbench-"))
    try:
        fast_ns = bench_fast(min(args.queries, 1_000_000)) * 1e9
        pipe_ns = bench_pipeline(args.names, args.queries, folder) * 1e9
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"DnsServer.fast(), one name: {fast_ns:.0f} ns per hit")
    print(f"fast() + telemetry drain, {args.names:,} names: {pipe_ns:.0f} ns per query")
    return 0


if __name__ == "__main__":
    sys.exit(main())
