"""The admin page in the browser tests: a watched page, signing in, and the checks every screen
gets (axe-core, no CSP violation or script error, a screenshot at phone size).

Screenshots go to ``$BURROW_ARTIFACTS/screens/`` (default ``artifacts/screens/`` in the checkout,
ignored by git): the tests write one per screen and state they check, named
``<screen>-<state>-<viewport>.png``; a few are copied by hand into docs/ for the README.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.support.axe import axe_violations
from tests.support.burrow_proc import REPO_ROOT, BurrowProcess

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Recorded before any page script runs (an init script is not subject to the page's CSP).
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""
# Installed on every watched page: a dialog (alert, confirm, prompt) is recorded and dismissed.
# The page never opens one itself, so any dialog is a finding (an injected script ran).


def artifacts_dir() -> Path:
    return Path(os.environ.get("BURROW_ARTIFACTS") or REPO_ROOT / "artifacts")


def base_url(proc: BurrowProcess) -> str:
    return f"http://127.0.0.1:{proc.web_port}"


class Watched:
    """A page and everything it complained about: console errors, uncaught exceptions,
    Content-Security-Policy violations and dialogs."""

    def __init__(self, context):
        self.page = context.new_page()
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.add_init_script(WATCH_CSP)
        self.page.on("console", lambda m: self.problems.append(f"console.{m.type}: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def assert_clean(self, *expected: str) -> None:
        """No CSP violation, no dialog, no uncaught error, and no console error except
        ``expected`` ones (substrings: the console line Chromium writes for an error status the
        test caused)."""
        assert self.page.evaluate("window.__cspViolations") == []
        assert self.dialogs == [], self.dialogs
        unexpected = [p for p in self.problems if not any(e in p for e in expected)]
        assert unexpected == [], unexpected
        self.problems.clear()


def sign_in(w: Watched, proc: BurrowProcess, username: str, password: str) -> None:
    """Sign in through the page's form (the account exists)."""
    from playwright.sync_api import expect

    page = w.page
    page.goto(base_url(proc) + "/")
    form = page.locator("#login")
    expect(form).to_be_visible()
    form.get_by_label("User name").fill(username)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()
    expect(page.locator("#app")).to_be_visible()


def screenshot(page, name: str) -> Path:
    """A full-page screenshot into the artifacts folder; ``name`` like ``querylog-empty``."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    safe = re.sub(r"[^a-z0-9._-]+", "-", name.lower())
    path = artifacts_dir() / "screens" / f"{safe}-{width}px.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def check_screen(w: Watched, proc: BurrowProcess, name: str, *expected: str) -> None:
    """What every screen owes in every state: no serious or critical axe-core violation, no CSP
    violation, dialog or unexpected error (see Watched.assert_clean), and a screenshot."""
    found = axe_violations(w.page, base_url(proc))
    assert found == [], found
    w.assert_clean(*expected)
    screenshot(w.page, name)
