"""A list reload under steady query load: every query is answered (no timeout, no SERVFAIL)
while the index is recompiled in the child and swapped, and the new contents block at once.
(How fast is for scripts/bench-reload and docs/benchmarks.md: this test counts failures only.)"""

import gzip
import threading

import dns.exception
import dns.message
import dns.query
import dns.rcode

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess

LIST_NAMES = 200_000
MAX_QUERIES = 20_000  # the load loop stops by itself after this many, or when told


def test_reload_under_load_loses_nothing(tmp_path, upstream):
    b = BurrowProcess(tmp_path, [upstream.address])
    (b.data_dir / "lists").mkdir(parents=True)
    names = [f"ad{i}.load.test" for i in range(LIST_NAMES)]
    with gzip.open(b.data_dir / "lists" / "big.txt.gz", "wt") as f:
        f.write("\n".join(names) + "\n")
    with b:
        token = admin_token(b)
        assert authed(b, token, "POST", "/api/lists", {"name": "big", "source": "big.txt.gz"})[0] == 201
        assert authed(b, token, "POST", "/api/blocklist/reload", timeout=120)[0] == 200
        assert b.query("ad5.load.test").answer[0][0].address == "0.0.0.0"

        stop = threading.Event()
        results = {"sent": 0, "failed": []}

        def load():
            i = 0
            while not stop.is_set() and results["sent"] < MAX_QUERIES:
                name = f"ad{i * 7919 % LIST_NAMES}.load.test" if i % 2 else f"site{i % 500}.ok.test"
                q = dns.message.make_query(name, "A")
                try:
                    # generous: a query lost to the reload is lost for good, a slow one is late
                    r = dns.query.udp(q, "127.0.0.1", port=b.dns_port, timeout=10.0)
                    if r.rcode() not in (dns.rcode.NOERROR,):
                        results["failed"].append((name, dns.rcode.to_text(r.rcode())))
                except dns.exception.Timeout:
                    results["failed"].append((name, "timeout"))
                results["sent"] += 1
                i += 1

        threads = [threading.Thread(target=load) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for n in range(2):
                with gzip.open(b.data_dir / "lists" / "big.txt.gz", "at") as f:
                    f.write(f"late{n}.load.test\n")
                status, body = authed(b, token, "POST", "/api/blocklist/reload", timeout=120)
                assert status == 200 and body["status"] == "ok", body
                assert b.query(f"late{n}.load.test").answer[0][0].address == "0.0.0.0"
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert results["sent"] > 100  # the load really ran through the reloads
        assert results["failed"] == [], results["failed"][:10]
