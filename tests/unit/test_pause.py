"""Blocking pause: timed or indefinite, resumes by itself, survives a restart, notifies changes."""

import pytest

from burrow.filtering.pause import BlockingPause
from burrow.storage.settings import SettingsDB


@pytest.fixture
def db(tmp_path):
    d = SettingsDB(tmp_path / "settings.db")
    yield d
    d.close()


def test_timed_pause_ends_by_itself(db):
    t = [1000.0]
    changes = []
    p = BlockingPause(db, clock=lambda: t[0], on_change=lambda: changes.append(1))
    assert not p.paused() and p.state()["enabled"]
    p.pause(300)
    assert p.paused() and p.remaining() == 300 and changes == [1]
    assert p.state()["remaining_seconds"] == 300 and p.state()["paused_until"].endswith("Z")
    t[0] += 299
    assert p.paused()
    t[0] += 2
    assert not p.paused() and p.remaining() is None and p.state()["enabled"]


def test_indefinite_pause_until_resumed_and_toggle(db):
    p = BlockingPause(db)
    p.pause(None)
    assert p.paused() and p.remaining() is None
    p.resume()
    assert not p.paused()
    assert p.toggle(60) is True and p.toggle(60) is False


def test_pause_survives_restart(db, tmp_path):
    t = [5000.0]
    BlockingPause(db, clock=lambda: t[0]).pause(600)
    again = BlockingPause(db, clock=lambda: t[0] + 100)
    assert again.paused() and again.remaining() == 500


def test_bad_durations_are_refused(db):
    p = BlockingPause(db)
    for bad in (0, -5, 8 * 86400):
        with pytest.raises(ValueError):
            p.pause(bad)
    assert not p.paused()
