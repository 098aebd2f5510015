"""CPU per query of Burrow's encrypted DNS (DoT, DoH) beside its plain UDP, and beside Unbound's DoT.

    scripts/bench-encrypted [--pairs 5] [--rate 2000] [--duration 8] [--names 1000] [--out x.json]

Everything on 127.0.0.1. One upstream (a dnsmasq answering every name with 198.18.0.1, as in
scripts/bench.py); Burrow with plain DNS, DoT (``[tls] dot_enabled``) and DoH (``/dns-query`` on
its HTTPS listener), and Unbound serving DoT (``tls-service-key``/``tls-service-pem``), both
forwarding to that upstream, with a certificate for 127.0.0.1 made by this script (openssl).
Every answer is a cache hit: each name is asked once first.

Each round measures, at the same offered rate (``--rate`` queries per second for
``--duration`` seconds), in an order that alternates round by round:

- ``burrow-udp``: dnsperf ``-m udp -c 1``;
- ``burrow-dot``: dnsperf ``-m dot -c 1`` (one TLS connection, reused for every query);
- ``burrow-doh``: this script's own HTTP/1.1 client, one TLS connection kept alive, one POST
  ``application/dns-message`` after the other, paced to the rate (dnsperf's DoH speaks HTTP/2
  only, and Burrow's web server speaks HTTP/1.1);
- ``unbound-dot``: dnsperf ``-m dot -c 1`` against Unbound.

The figure for each is the server's CPU (utime + stime from /proc) per completed query, and
the mean latency; the report gives the median with min-max over ``--pairs`` rounds, and the
ratios DoT/UDP and DoH/UDP for Burrow and Burrow DoT / Unbound DoT, each taken within a round
and then summarised the same way. Skips (exit 0, with the reason) when dnsperf, dnsmasq,
unbound or openssl is absent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (scripts/bench.py: processes, dnsperf, /proc readers)

LOOPBACK = bench.LOOPBACK
KINDS = ("burrow-udp", "burrow-dot", "burrow-doh", "unbound-dot")
READY_TIMEOUT = 30.0
DOH_TIMEOUT = 5.0  # seconds one DoH answer may take before the client gives up on the run


def make_certificate(workdir: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1 (openssl), valid two days."""
    cert, key = workdir / "bench-cert.pem", workdir / "bench-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=bench.test", "-addext", "subjectAltName=DNS:bench.test,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def wait_tcp(proc: bench.Proc, port: int, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited before listening:\n{proc.log_tail()}")
        try:
            socket.create_connection((LOOPBACK, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not listen on {port} within {timeout}s:\n{proc.log_tail()}")


def start_burrow(args: argparse.Namespace, workdir: Path, up_port: int, cert: Path,
                 key: Path) -> tuple[bench.Proc, dict[str, int]]:
    command = bench.burrow_command()
    if command is None:
        raise bench.Skip("no burrow executable (install the package: pip install -e .)")
    ports: dict[str, int] = {}
    for kind in ("udp", "web", "dot", "https"):  # each free_port() releases its socket: may repeat
        port = bench.free_port()
        while port in ports.values():
            port = bench.free_port()
        ports[kind] = port
    extra = (f'[tls]\nmode = "manual"\ncert_file = "{cert}"\nkey_file = "{key}"\n'
             f'dot_enabled = true\ndot_address = "{LOOPBACK}:{ports["dot"]}"\n'
             f'https_address = "{LOOPBACK}:{ports["https"]}"\n')
    config = workdir / "burrow.toml"
    config.write_text(bench.burrow_config(workdir, up_port, ports["udp"], ports["web"], extra))
    proc = bench.Proc("burrow", bench.pinned(args.server_cpu, [command, "run", "--config", str(config)]),
                      workdir / "burrow.log")
    bench.wait_ready(proc, ports["udp"])
    wait_tcp(proc, ports["dot"])
    wait_tcp(proc, ports["https"])
    return proc, ports


def start_unbound(args: argparse.Namespace, workdir: Path, up_port: int, cert: Path,
                  key: Path) -> tuple[bench.Proc, int]:
    port = bench.free_port()
    conf = workdir / "unbound.conf"
    conf.write_text(f"""server:
    interface: {LOOPBACK}@{port}
    tls-port: {port}
    tls-service-key: "{key}"
    tls-service-pem: "{cert}"
    port: {port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{workdir}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    incoming-num-tcp: 64
forward-zone:
    name: "."
    forward-addr: {LOOPBACK}@{up_port}
""")
    proc = bench.Proc("unbound", bench.pinned(args.server_cpu, ["unbound", "-d", "-c", str(conf)]),
                      workdir / "unbound.log")
    wait_tcp(proc, port)
    return proc, port


def dns_message(name: str, qid: int) -> bytes:
    return bench.dns_query(name, qid)


class DohClient:
    """HTTP/1.1 over one TLS connection kept alive: POST application/dns-message, one at a time."""

    def __init__(self, port: int) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the bench's own certificate; not what is measured
        raw = socket.create_connection((LOOPBACK, port), timeout=DOH_TIMEOUT)
        self.sock = context.wrap_socket(raw, server_hostname="bench.test")
        self.host = f"{LOOPBACK}:{port}"  # a Host Burrow answers to (others get 421)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def ask(self, body: bytes) -> int:
        """One exchange; returns the HTTP status (the answer's body is read and dropped)."""
        head = (f"POST /dns-query HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/dns-message\r\n"
                f"Accept: application/dns-message\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.sock.sendall(head + body)
        while b"\r\n\r\n" not in self.buf:
            self._more()
        header, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = header.split(b"\r\n")
        status = int(lines[0].split()[1])
        if status != 200:
            raise RuntimeError(f"DoH answered {lines[0].decode(errors='replace')}")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            elif name.strip().lower() == b"transfer-encoding":
                raise RuntimeError("chunked DoH answer: not expected for a DNS message")
        while len(self.buf) < length:
            self._more()
        self.buf = self.buf[length:]
        return status

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("the DoH server closed the connection")
        self.buf += data


def run_doh(port: int, names: list[str], rate: int, duration: float) -> dict[str, Any]:
    """Paced POSTs for ``duration`` seconds at ``rate`` per second over one kept-alive connection."""
    client = DohClient(port)
    latencies: list[float] = []
    failures = 0
    interval = 1.0 / rate
    started = time.monotonic()
    next_at = started
    i = 0
    try:
        while True:
            now = time.monotonic()
            if now - started >= duration:
                break
            if now < next_at:
                time.sleep(next_at - now)
            sent = time.monotonic()
            status = client.ask(dns_message(names[i % len(names)], i & 0xFFFF))
            latencies.append(time.monotonic() - sent)
            failures += status != 200
            i += 1
            next_at += interval
            if next_at < time.monotonic() - 1.0:  # more than a second behind: do not burst to catch up
                next_at = time.monotonic()
    finally:
        client.close()
    elapsed = time.monotonic() - started
    return {"queries_completed": len(latencies) - failures, "queries_failed": failures,
            "run_time_s": elapsed, "qps": len(latencies) / elapsed if elapsed else None,
            "avg_latency_ms": statistics.fmean(latencies) * 1000 if latencies else None}


def run_dnsperf_mode(args: argparse.Namespace, mode: str, port: int, query_file: Path) -> dict[str, Any]:
    argv = ["dnsperf", "-m", mode, "-s", LOOPBACK, "-p", str(port), "-d", str(query_file),
            "-l", f"{args.duration:g}", "-c", "1", "-Q", str(args.rate)]
    result = subprocess.run(bench.pinned(args.client_cpu, argv), capture_output=True, text=True,
                            timeout=args.duration + 30)
    if result.returncode != 0:
        raise RuntimeError(f"dnsperf -m {mode} failed ({result.returncode}): {result.stderr[-2000:]}")
    return bench.parse_dnsperf(result.stdout)


def measure(args: argparse.Namespace, kind: str, proc: bench.Proc, port: int, query_file: Path,
            names: list[str]) -> dict[str, Any]:
    before = bench.cpu_seconds(proc.pid)
    if kind.endswith("-doh"):
        perf = run_doh(port, names, args.rate, args.duration)
    else:
        perf = run_dnsperf_mode(args, kind.split("-", 1)[1], port, query_file)
    after = bench.cpu_seconds(proc.pid)
    if not proc.alive():
        raise RuntimeError(f"{proc.name} died under load:\n{proc.log_tail()}")
    cpu = (after[0] - before[0]) + (after[1] - before[1])
    done = perf.get("queries_completed") or 0
    return {"cpu_us_per_query": round(cpu * 1e6 / done, 2) if done else None,
            "cpu_user_us_per_query": round((after[0] - before[0]) * 1e6 / done, 2) if done else None,
            "queries_completed": done, "qps": perf.get("qps"),
            "avg_latency_ms": perf.get("avg_latency_ms"), "lost": perf.get("queries_lost", 0)}


def summary(values: list[float]) -> dict[str, float] | None:
    """Median with min and max, or None when no value was measured (bench.spread)."""
    return bench.spread(values, digits=2)


def round_order(index: int) -> list[str]:
    """The kinds in the order of round ``index``: forwards on even rounds, backwards on odd."""
    return list(KINDS) if index % 2 == 0 else list(reversed(KINDS))


RATIOS = {"burrow DoT / burrow UDP": ("burrow-dot", "burrow-udp"),
          "burrow DoH / burrow UDP": ("burrow-doh", "burrow-udp"),
          "burrow DoT / unbound DoT": ("burrow-dot", "unbound-dot")}


def report(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"cpu_us_per_query": {}, "avg_latency_ms": {}, "ratios": {}}
    for kind in KINDS:
        out["cpu_us_per_query"][kind] = summary([r[kind]["cpu_us_per_query"] for r in rounds])
        out["avg_latency_ms"][kind] = summary([r[kind]["avg_latency_ms"] for r in rounds])
    for label, (a, b) in RATIOS.items():
        out["ratios"][label] = summary([r[a]["cpu_us_per_query"] / r[b]["cpu_us_per_query"]
                                        for r in rounds
                                        if r[a]["cpu_us_per_query"] and r[b]["cpu_us_per_query"]])
    return out


def markdown(args: argparse.Namespace, result: dict[str, Any]) -> str:
    def cell(s: dict[str, float] | None, unit: str = "") -> str:
        return "–" if s is None else f"{s['median']:g}{unit} ({s['min']:g}–{s['max']:g})"

    lines = [f"Offered rate {args.rate} q/s for {args.duration:g} s per measurement, {args.pairs} rounds, "
             "median (min–max); every answer a cache hit.", "",
             "| transport | server CPU µs/query | mean latency ms |", "|---|---|---|"]
    for kind in KINDS:
        lines.append(f"| {kind} | {cell(result['cpu_us_per_query'][kind])} | "
                     f"{cell(result['avg_latency_ms'][kind])} |")
    lines += ["", "| ratio (within each round) | median (min–max) |", "|---|---|"]
    for label in RATIOS:
        lines.append(f"| {label} | {cell(result['ratios'][label], '×')} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench-encrypted", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5, help="rounds of the four measurements (default 5)")
    parser.add_argument("--rate", type=int, default=2000, help="offered queries per second (default 2000)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement (default 8)")
    parser.add_argument("--names", type=int, default=1000, help="distinct names, all cached (default 1000)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if not 1 <= args.pairs <= 50 or not 1 <= args.rate <= 100_000 or not 0 < args.duration <= 120:
        parser.error("--pairs 1..50, --rate 1..100000, --duration (0, 120]")
    args.upstream_cpu = args.client_cpu
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("dnsperf", "dnsmasq", "unbound", "openssl"):
        if shutil.which(tool) is None:
            print(f"bench-encrypted skipped: {tool} is not installed")
            return 0
    bench.arm_timeout(args.pairs * len(KINDS) * (args.duration + 20) + 300)
    workdir = Path(tempfile.mkdtemp(prefix="burrow-bench-tls-"))
    procs: list[bench.Proc] = []
    try:
        cert, key = make_certificate(workdir)
        upstream, up_port = bench.start_upstream(args, workdir)
        procs.append(upstream)
        (workdir / "burrow").mkdir()
        burrow, ports = start_burrow(args, workdir / "burrow", up_port, cert, key)
        procs.append(burrow)
        (workdir / "unbound").mkdir()
        unbound, ub_port = start_unbound(args, workdir / "unbound", up_port, cert, key)
        procs.append(unbound)
        names = [f"n{i}.hit.bench.test" for i in range(args.names)]
        query_file = workdir / "names.txt"
        query_file.write_text("".join(f"{n} A\n" for n in names))
        targets = {"burrow-udp": (burrow, ports["udp"]), "burrow-dot": (burrow, ports["dot"]),
                   "burrow-doh": (burrow, ports["https"]), "unbound-dot": (unbound, ub_port)}
        # Warm both caches (each name once) so every measured answer is a hit.
        for port in (ports["udp"], ub_port):
            warm = subprocess.run(["dnsperf", "-s", LOOPBACK, "-p", str(port), "-d", str(query_file),
                                   "-n", "1", "-c", "1", "-q", "20"], capture_output=True, text=True, timeout=120)
            if warm.returncode != 0:
                raise RuntimeError(f"warming failed: {warm.stderr[-500:]}")
        rounds = []
        for index in range(args.pairs):
            got: dict[str, dict[str, Any]] = {}
            for kind in round_order(index):
                proc, port = targets[kind]
                got[kind] = measure(args, kind, proc, port, query_file, names)
                time.sleep(1.0)
            rounds.append(got)
            print(f"round {index + 1}: " + ", ".join(f"{k} {got[k]['cpu_us_per_query']} µs" for k in KINDS),
                  file=sys.stderr, flush=True)
        result = report(rounds)
        result["rounds"] = rounds
        result["command"] = "scripts/bench-encrypted " + " ".join(argv if argv is not None else sys.argv[1:])
        print(markdown(args, result))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    except bench.Skip as exc:
        print(f"bench-encrypted skipped: {exc}")
        return 0
    except (RuntimeError, bench.BenchTimeout, subprocess.TimeoutExpired, OSError) as exc:
        print(f"bench-encrypted failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
