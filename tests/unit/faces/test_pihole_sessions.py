"""The Pi-hole face's sessions (burrow/faces/pihole/sessions.py) on a real settings DB and a
fake clock: sliding validity, expiry, the seat cap, a restart, and what is stored."""

from __future__ import annotations

import hashlib

import pytest

from burrow.faces.pihole.sessions import TOUCH_RESOLUTION, SeatsExceeded, Sessions
from burrow.storage.settings import SettingsDB


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path):
    settings = SettingsDB(tmp_path / "settings.db")
    yield settings
    settings.close()


def test_a_session_slides_with_use_and_ends_after_the_timeout(db):
    clock = Clock()
    sessions = Sessions(db, timeout=1800, clock=clock)
    s = sessions.create(user_id=1, scope="admin")
    assert s.sid and s.csrf and s.sid != s.csrf and s.validity(clock.now) == 1800
    clock.now += 1000
    used = sessions.use(s.sid)
    assert used is not None and used.validity(clock.now) == 1800 and used.csrf == s.csrf
    clock.now += 1799
    assert sessions.use(s.sid) is not None  # still alive: the last use moved the end
    clock.now += 1801
    assert sessions.use(s.sid) is None
    assert sessions.count() == 0


def test_only_the_hash_of_the_sid_is_stored(db):
    sessions = Sessions(db, clock=Clock())
    s = sessions.create(user_id=1, scope="read", token_id=4, client_ip="192.168.1.9", user_agent="hole")
    rows = db.conn.execute("SELECT sid_hash, scope, token_id FROM pihole_sessions").fetchall()
    assert rows == [(hashlib.sha256(s.sid.encode()).hexdigest(), "read", 4)]
    assert s.sid not in str(db.conn.execute("SELECT * FROM pihole_sessions").fetchall())


def test_seats_are_capped_and_free_again_when_one_ends_or_expires(db):
    clock = Clock()
    sessions = Sessions(db, max_sessions=3, timeout=100, clock=clock)
    first = sessions.create(user_id=1, scope="admin")
    sessions.create(user_id=1, scope="admin")
    sessions.create(user_id=1, scope="admin")
    with pytest.raises(SeatsExceeded):
        sessions.create(user_id=1, scope="admin")
    assert sessions.end(first.sid) and not sessions.end(first.sid)
    sessions.create(user_id=1, scope="admin")
    clock.now += 101
    for _ in range(3):  # every one expired: three seats free
        sessions.create(user_id=1, scope="admin")


def test_sessions_survive_a_restart_and_the_expiry_is_written_at_most_once_a_minute(tmp_path):
    clock = Clock()
    db = SettingsDB(tmp_path / "settings.db")
    sessions = Sessions(db, timeout=1800, clock=clock)
    s = sessions.create(user_id=7, scope="admin")
    stored = lambda: db.conn.execute("SELECT expires_at FROM pihole_sessions").fetchone()[0]  # noqa: E731
    first = stored()
    clock.now += TOUCH_RESOLUTION / 2
    sessions.use(s.sid)
    assert stored() == first  # kept in memory: no write for a poll every few seconds
    clock.now += TOUCH_RESOLUTION
    sessions.use(s.sid)
    assert stored() == clock.now + 1800
    clock.now += 5
    sessions.use(s.sid)
    sessions.flush()  # the stop writes what memory holds
    assert stored() == clock.now + 1800
    db.close()
    again = SettingsDB(tmp_path / "settings.db")
    try:
        restored = Sessions(again, timeout=1800, clock=clock).use(s.sid)
        assert restored is not None and restored.user_id == 7 and restored.csrf == s.csrf
    finally:
        again.close()


def test_what_is_no_sid_is_refused(db):
    sessions = Sessions(db, clock=Clock())
    for bad in ("", "x" * 500, None, 5):
        assert sessions.use(bad) is None  # type: ignore[arg-type]
        assert sessions.end(bad) is False  # type: ignore[arg-type]
