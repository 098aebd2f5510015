"""CPU per query-log row written to the hot tier (what every logged query costs at flush time).

    scripts/bench-querylog [--rows 100000] [--batch 10000]

Writes ``--rows`` realistic rows (10,000 distinct names, a block trace each) in batches of
``--batch`` (one flush each) to a fresh QueryLogDB in a temporary folder, and prints process
CPU time per row, best of three. Touches nothing but its own temporary files.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "firmware"))

from burrow.storage.querylog import QueryLogDB  # noqa: E402


def once(rows: list, batch: int) -> float:
    folder = pathlib.Path(tempfile.mkdtemp(prefix="burrow-qlbench-"))
    try:
        db = QueryLogDB(folder / "querylog.db", ram_dir=str(folder))
        started = time.process_time()
        for k in range(0, len(rows), batch):
            db.write(rows[k:k + batch])
        spent = time.process_time() - started
        db.close()
        return spent / len(rows)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=10_000)
    args = p.parse_args(argv)
    if not 1 <= args.rows <= 10_000_000 or not 1 <= args.batch <= args.rows:
        p.error("--rows 1..10,000,000 and --batch 1..rows")
    now = time.time()
    trace = '[{"stage":"blocklist","action":"block","rule":"list","source":"manager"}]'
    rows = [(now + i * 1e-4, f"192.168.1.{i % 50}", f"ad{i % 10_000}.example.com", 1, 0, 4, 1, 0, 0.01, "",
             trace) for i in range(args.rows)]
    best = min(once(rows, args.batch) for _ in range(3))
    print(f"query log hot tier: {best * 1e6:.2f} µs CPU per row ({args.rows} rows, batches of {args.batch})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
