"""Shared helpers for the auth tests (imported by the other test_auth_* modules): a fake
clock, a real SettingsDB in tmp_path, and an AuthService with an event recorder. The ``auth``
and ``admin`` fixtures built from them are in conftest.py."""

from __future__ import annotations

import pyotp

from burrow.auth import AuthService
from burrow.storage.settings import SettingsDB

ADMIN_PW = "correct horse battery"
VIEWER_PW = "Viewer-pass-2024"
START = 1_700_000_000.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Auth:
    """An AuthService on a fresh database, its clock and the events it emitted."""

    def __init__(self, tmp_path, **kw):
        self.dir = tmp_path
        self.clock = FakeClock()
        self.db = SettingsDB(tmp_path / "settings.db")
        self.service = AuthService(self.db, tmp_path, clock=self.clock, **kw)
        self.events: list[dict] = []
        self.service.set_event_sink(self.events.append)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def code(self, secret: str, offset_steps: int = 0) -> str:
        """The TOTP code for the fake clock's step (+ offset)."""
        return pyotp.TOTP(secret).at(self.clock.now + 30 * offset_steps)


def test_fake_clock_moves_only_when_told():
    clock = FakeClock()
    clock.advance(5)
    assert clock() == START + 5
