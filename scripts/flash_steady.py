"""Steady-state flash cost (run through scripts/flash-steady) of the archive: a week of blocks already there,
then a day of persists (every 15 min) and hourly prunes. Measures this process's write_bytes."""
import os
import random
import shutil
import sys
import tempfile
import time

import burrow.storage.querylog as ql
from burrow.dns.decision import Decision, QueryRecord, TraceEntry

QPD = 50000
rng = random.Random(1)
names = [f"n{i}.popular.test" for i in range(2000)]
weights = [1/(i+1) for i in range(2000)]
traces = [(TraceEntry("cache", "hit"),), (TraceEntry("forward", "resolved", detail="127.0.0.1:53"),)]

def rows(t0, n, step):
    out = []
    for i in range(n):
        name = f"u{rng.random()}.x.test" if rng.random() < 0.2 else rng.choices(names, weights)[0]
        d = Decision.CACHED if rng.random() < 0.6 else Decision.RESOLVED
        rec = QueryRecord(0, f"192.168.1.{rng.randrange(2, 30)}", name, 28 if rng.random() < .3 else 1,
                          0, d, rng.random() * 0.02, "127.0.0.1:53", traces[d == Decision.RESOLVED])
        out.append(ql.row_from_record(rec, t0 + i * step))
    return out

def io():
    return {k: int(v) for k, v in (l.split(":") for l in open("/proc/self/io"))}

d = tempfile.mkdtemp(dir=sys.argv[1] if len(sys.argv) > 1 else None)
ram = tempfile.mkdtemp(dir="/dev/shm")
db = ql.QueryLogDB(os.path.join(d, "querylog.db"), ram_dir=ram)
per = QPD // 96
step = 900 / per
t = time.time() - 8 * 86400
# a week+ of history
for _ in range(8 * 96):
    db.write(rows(t, per, step))
    t += 900
    db.persist(now=t)
db.prune(now=t, retention_days=7, max_bytes=64 << 20)
os.sync()
i0 = io()
pp = pr = 0
for k in range(96):
    db.write(rows(t, per, step))
    t += 900
    a = io()["write_bytes"]
    db.persist(now=t)
    b = io()["write_bytes"]
    pp += b - a
    if k % 4 == 3:
        db.prune(now=t, retention_days=7, max_bytes=64 << 20)
        pr += io()["write_bytes"] - b
print("persist", pp/96, "per persist; prune", pr/24, "per prune")
i1 = io()
w = i1["write_bytes"] - i0["write_bytes"] - (i1["cancelled_write_bytes"] - i0["cancelled_write_bytes"])
print(f"{w/1e6:.2f} MB/day", "archive", os.path.getsize(db.archive_path),
      "blocks", db.archive.execute("select count(*), avg(length(data)) from blocks").fetchone(),
      "free", db.archive.execute("pragma freelist_count").fetchone())
db.close()
shutil.rmtree(d)
shutil.rmtree(ram)
