"""First render of the dashboard on the phone profile: 390×844, CPU throttled 4× (Chrome
DevTools Protocol Emulation.setCPUThrottlingRate), from a local server.

    scripts/bench-page [--runs 7] [--queries 3000] [--throttle 4]

Starts the real ``burrow`` (this checkout's, as the tests do) with the test upstream on
127.0.0.1, gives it a query history (``--queries`` DNS queries with dnspython over a few
hundred names and several record types, some of them denylisted), signs in through the API
(POST /api/auth/login?cookie=true, a new session per run) and hands the session cookies to headless Chromium
(Debian's /usr/bin/chromium, driven by Playwright). Each run opens a new browser context (an
empty cache: a phone's first visit), throttles its CPU, opens /#/dashboard and reads two marks
the page sets: ``dashboard-figures`` (the status card drew its first figures from
/api/dashboard) and ``dashboard-chart`` (uPlot drew the chart), in milliseconds from the
navigation's start. Then it reloads the page once in the same context (a warm cache) and reads
them again. Prints the median and the range of each. Everything is stopped when it ends;
nothing outside its temporary folder is touched.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import statistics
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "firmware"))
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from tests.support.api_client import ADMIN_PASSWORD, admin_token  # noqa: E402
from tests.support.burrow_proc import BurrowProcess  # noqa: E402
from tests.support.upstream_client import TestUpstream  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-proxy-server"]
PHONE = {"width": 390, "height": 844}
MARKS = ("dashboard-figures", "dashboard-chart")
TIMEOUT_MS = 60_000


def history(srv: BurrowProcess, api: httpx.Client, queries: int) -> None:
    """``queries`` DNS queries: 300 names, most of them A, some AAAA/HTTPS/MX; 20 denylisted."""
    rng = random.Random(15)
    names = [f"host{i}.site{i % 40}.example" for i in range(280)] + [f"ads{i}.tracker.example" for i in range(20)]
    for name in names[280:]:
        assert api.post("/api/denylist", json={"domain": name}).status_code in (200, 201)
    types = ["A"] * 6 + ["AAAA"] * 3 + ["HTTPS", "MX"]
    weights = [1 / (i + 1) for i in range(len(names))]  # a few names asked often, most rarely
    for name in rng.choices(names, weights, k=queries):
        srv.query(name, rng.choice(types))


def session_cookies(base: str) -> list[dict]:
    """A new session's cookies, as the server sets them on POST /api/auth/login?cookie=true:
    burrow_session (HttpOnly) and the readable burrow_csrf. The refresh cookies are left out:
    with them the page renews the session on load, and a refresh token handed to a second
    browser context would be spent twice (which ends the session)."""
    with httpx.Client(base_url=base, timeout=30.0) as client:
        signed = client.post("/api/auth/login?cookie=true", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert signed.status_code == 200, signed.text
    cookies = []
    for header in signed.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name in ("burrow_session", "burrow_csrf"):
            cookies.append({"name": name, "value": rest.split(";", 1)[0], "domain": "127.0.0.1", "path": "/",
                            "httpOnly": "HttpOnly" in header, "sameSite": "Strict"})
    assert len(cookies) == 2, signed.headers
    return cookies


def measure(page, cdp, url: str, throttle: float, reload: bool) -> dict[str, float]:
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
    if reload:
        page.reload()
    else:
        page.goto(url)
    # A function, not an expression: Playwright evaluates expressions with eval, which the CSP forbids.
    try:
        page.wait_for_function("(names) => names.every((n) => performance.getEntriesByName(n).length > 0)",
                               arg=list(MARKS), timeout=TIMEOUT_MS)
    except Exception:
        raise SystemExit(f"the dashboard did not draw; the page says: {page.inner_text('body')[:500]!r}") from None
    return page.evaluate("(names) => Object.fromEntries(names.map((n) => "
                         "[n, performance.getEntriesByName(n)[0].startTime]))", list(MARKS))


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.0f} ms, range {min(values):.0f}–{max(values):.0f} ms"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--queries", type=int, default=3000)
    p.add_argument("--throttle", type=float, default=4.0, help="CPU slowdown factor (1 = none)")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-page-") as tmp, TestUpstream() as upstream, \
            BurrowProcess(pathlib.Path(tmp), upstreams=[upstream.address]) as srv:
        base = f"http://127.0.0.1:{srv.web_port}"
        with httpx.Client(base_url=base, timeout=30.0,
                          headers={"Authorization": f"Bearer {admin_token(srv)}"}) as api:
            history(srv, api, args.queries)
            deadline = time.monotonic() + 30
            while (total := api.get("/api/stats").json()["total_queries"]) < args.queries:
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {total} of {args.queries} queries were counted")
                time.sleep(0.2)
        print(f"burrow with {total} queries in its log; {args.runs} runs at {PHONE['width']}x{PHONE['height']}, "
              f"CPU throttled {args.throttle:g}x; load average before: {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} CPUs")
        cold: dict[str, list[float]] = {m: [] for m in MARKS}
        warm: dict[str, list[float]] = {m: [] for m in MARKS}
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                for run in range(args.runs):
                    context = chromium.new_context(viewport=PHONE, device_scale_factor=3, is_mobile=True,
                                                   has_touch=True)
                    context.add_cookies(session_cookies(base))
                    page = context.new_page()
                    cdp = context.new_cdp_session(page)
                    first = measure(page, cdp, base + "/#/dashboard", args.throttle, reload=False)
                    again = measure(page, cdp, base + "/#/dashboard", args.throttle, reload=True)
                    for m in MARKS:
                        cold[m].append(first[m])
                        warm[m].append(again[m])
                    print(f"run {run + 1}: first visit " + ", ".join(f"{m} {first[m]:.0f} ms" for m in MARKS)
                          + "; reload " + ", ".join(f"{m} {again[m]:.0f} ms" for m in MARKS))
                    context.close()
            finally:
                chromium.close()
        for label, found in (("first visit (empty cache)", cold), ("reload (warm cache)", warm)):
            for m in MARKS:
                print(f"{label}: {m}: {summary(found[m])}")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
