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
EXPECT_TIMEOUT_MS = 30_000  # every wait on the page is bounded by this: room for a loaded machine
# (creating the first account hashes a password; under stress-ng --cpu 2 that took over 10 s)


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


# ---- a signed-in admin on the module's Burrow (each module defines its own `srv`) ---------------

@pytest.fixture(scope="module")
def api(srv):
    """httpx with the admin's bearer token, to check what the page did in the API's own answer."""
    import httpx

    from tests.support.api_client import admin_token
    from tests.support.page import base_url

    with httpx.Client(base_url=base_url(srv), timeout=60.0,
                      headers={"Authorization": f"Bearer {admin_token(srv)}"}) as client:
        yield client


@pytest.fixture(scope="module")
def admin(browser, srv, api):
    """One page signed in as the admin at phone size for the module (downloads allowed)."""
    from playwright.sync_api import expect

    from tests.support.api_client import ADMIN_PASSWORD
    from tests.support.page import PHONE, Watched, sign_in

    context = browser.new_context(viewport=PHONE, accept_downloads=True)
    w = Watched(context)
    sign_in(w, srv, "admin", ADMIN_PASSWORD)
    expect(w.page.locator("#who-name")).to_have_text("admin (admin)")
    yield w
    context.close()


@pytest.fixture
def page(admin):
    """The module's admin page; each test ends with no unexpected error, CSP violation or dialog."""
    yield admin.page
    admin.assert_clean()
