"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright for Python.

Playwright's own browser downloads are never used (`playwright install` needs the internet):
the browser is the Debian package, launched by path. Each test module gets one browser;
Playwright starts it on a fresh temporary profile (user-data-dir) and removes it on close.
Without /usr/bin/chromium or the playwright package the browser tests skip, saying why.
"""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
# Headless comes from headless=True; the rest keep Chromium quiet, offline and reproducible.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-proxy-server"]
EXPECT_TIMEOUT_MS = 10_000  # every wait on the page is bounded by this


@pytest.fixture(scope="module")
def browser(request):
    """One Chromium for the test module; a module may add flags of its own (for example
    --host-resolver-rules) in a list named CHROMIUM_EXTRA_FLAGS."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; scripts/test does)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[test]')")
    sync_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_api.sync_playwright() as pw:
        args = CHROMIUM_FLAGS + list(getattr(request.module, "CHROMIUM_EXTRA_FLAGS", ()))
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield chromium
        finally:
            chromium.close()
