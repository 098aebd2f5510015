"""Blocking pause: timed or indefinite, resumes by itself, survives a restart, notifies changes."""

import asyncio
import time

import pytest

from burrow.filtering.pause import BlockingPause
from tests.support.timing import until


def test_timed_pause_ends_by_itself(db):
    t = [1000.0]
    changes = []
    p = BlockingPause(db, clock=lambda: t[0], on_change=lambda change: changes.append(1))
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


def test_group_pause_applies_only_to_members_and_ends_by_itself(db):
    t = [1000.0]
    changes = []
    p = BlockingPause(db, clock=lambda: t[0], on_change=lambda change: changes.append(1))
    p.pause(120, group="kids")
    assert p.paused(("kids",)) and p.paused(("default", "kids"))
    assert not p.paused(("default",)) and not p.paused()
    assert p.group_paused("kids") and not p.group_paused(None)
    st = p.state()
    assert st["enabled"] is True and st["groups"]["kids"]["remaining_seconds"] == 120
    assert p.state("kids") == {"enabled": False, "paused_until": st["groups"]["kids"]["paused_until"],
                               "remaining_seconds": 120, "group": "kids"}
    assert p.next_expiry() == 120 and changes == [1]
    t[0] += 121
    assert not p.paused(("kids",)) and p.state()["groups"] == {} and p.next_expiry() is None


def test_global_pause_covers_every_group_and_group_resume_is_separate(db):
    p = BlockingPause(db)
    p.pause(None, group="guests")
    p.pause(60)
    assert p.paused(("kids",)) and p.paused(("guests",))
    p.resume()  # global resume leaves the group's own pause
    assert not p.paused(("kids",)) and p.paused(("guests",))
    assert p.remaining("guests") is None and p.group_paused("guests")
    p.resume(group="guests")
    assert not p.paused(("guests",))


def test_group_pause_survives_restart_and_forget(db):
    t = [100.0]
    BlockingPause(db, clock=lambda: t[0]).pause(600, group="kids")
    again = BlockingPause(db, clock=lambda: t[0] + 100)
    assert again.paused(("kids",)) and again.remaining("kids") == 500 and not again.paused()
    again.forget_group("kids")
    assert not BlockingPause(db, clock=lambda: t[0]).paused(("kids",))


# ---- the end of a timed pause changes answers at that moment (BlockingPause.arm) ------------------

def test_the_end_of_a_timed_pause_is_announced_by_its_timer(db):
    seen = []

    async def main():
        p = BlockingPause(db, on_change=lambda change: seen.append(p.paused()))
        p.pause(0.2)  # announced at once: paused
        assert seen == [True]
        await until(lambda: len(seen) == 2)  # nobody edits anything: the timer announces the end
        assert seen == [True, False] and p._timer is None

    asyncio.run(main())


def test_a_pause_from_before_a_restart_still_ends_on_time(db):
    BlockingPause(db).pause(0.3)  # a previous run (no loop: nothing armed)
    seen = []

    async def main():
        p = BlockingPause(db, on_change=lambda change: seen.append(p.paused()))
        assert p.paused() and seen == []
        p.arm()  # what the composition root does at start
        await until(lambda: seen == [False])

    asyncio.run(main())


def test_a_resume_or_a_restore_re_arms_for_what_is_left(db):
    seen = []

    async def main():
        p = BlockingPause(db, on_change=lambda change: seen.append(p.paused()))
        p.pause(600)
        first = p._timer
        p.resume()
        assert first.cancelled() and p._timer is None  # nothing left to end
        db.set("blocking.pause", {"until": time.time() + 0.2, "indefinite": False, "groups": {}})
        p.reload()  # a backup restore brought a pause back
        assert p.paused() and p._timer is not None
        await until(lambda: seen[-1] is False and len(seen) == 4)
        p.disarm()

    asyncio.run(main())
    assert seen == [True, False, True, False]
