"""Pausing blocking: for a while (resumes by itself) or until resumed, globally or for one
client group, surviving restarts.

The state lives in the settings DB (key ``blocking.pause``) so a pause set before a power cut
still ends when it should. Whoever answers queries asks :meth:`BlockingPause.paused` with the
client's groups: blocking is off for a client when it is paused globally or for any group the
client is in. Every change announces ``Change.PAUSE`` to ``on_change`` (burrow/changes.py) so
the fast path drops answers decided under
the old state — the end of a timed pause too: :meth:`BlockingPause.arm` keeps a timer on the
loop for the next pause to end (answers change at that moment, not at the next edit).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..changes import Announce, Change, ignore

if TYPE_CHECKING:
    from ..storage.settings import SettingsDB

log = logging.getLogger(__name__)

SETTINGS_KEY = "blocking.pause"
MAX_PAUSE = 7 * 86400  # seconds; longer means "until resumed"
EXPIRY_SLACK = 0.05  # seconds after the end a timed pause's timer fires (past it, not at it)


class _Pause:
    __slots__ = ("until", "indefinite")

    def __init__(self, until: float | None = None, indefinite: object = False) -> None:
        self.until = until  # unix time, or None
        self.indefinite = bool(indefinite)

    def active(self, now: float) -> bool:
        return self.indefinite or (self.until is not None and now < self.until)

    def to_dict(self) -> dict[str, object]:
        return {"until": self.until, "indefinite": self.indefinite}


class BlockingPause:
    def __init__(self, settings_db: SettingsDB, clock: Callable[[], float] = time.time,
                 on_change: Announce = ignore):
        self.settings = settings_db
        self.clock = clock
        self.on_change = on_change
        self._timer: asyncio.TimerHandle | None = None
        self._load()

    def _load(self) -> None:
        stored = self.settings.get(SETTINGS_KEY) or {}
        self._global = _Pause(stored.get("until"), stored.get("indefinite"))
        self._groups: dict[str, _Pause] = {
            name: _Pause(p.get("until"), p.get("indefinite"))
            for name, p in (stored.get("groups") or {}).items() if isinstance(p, dict)}

    def reload(self) -> None:
        """Read the stored state again (a restore replaced it) and tell ``on_change``."""
        self._load()
        self._changed()

    # ---- the end of a timed pause ---------------------------------------------------------------

    def arm(self) -> None:
        """Keep one timer on the running loop for the next timed pause to end (a pause from
        before a restart still ends on time); re-armed after every change. Without a running
        loop (a command-line tool) there is nothing to arm."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        remaining = self.next_expiry()
        if remaining is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(remaining + EXPIRY_SLACK, self._expired)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        log.info("a timed pause of blocking ended")
        self._changed()

    def _changed(self) -> None:
        try:
            self.on_change(Change.PAUSE)
        finally:
            self.arm()

    def _get(self, group: str | None) -> _Pause:
        return self._global if group is None else self._groups.get(group) or _Pause()

    def paused(self, groups: Iterable[str] = ()) -> bool:
        """Is blocking off globally, or for any of ``groups``?"""
        now = self.clock()
        if self._global.active(now):
            return True
        if self._groups:
            for g in groups:
                p = self._groups.get(g)
                if p is not None and p.active(now):
                    return True
        return False

    def group_paused(self, group: str | None) -> bool:
        return self._get(group).active(self.clock())

    def remaining(self, group: str | None = None) -> float | None:
        """Seconds until blocking resumes by itself; None when not paused or paused indefinitely."""
        p = self._get(group)
        if p.indefinite or p.until is None:
            return None
        left = p.until - self.clock()
        return left if left > 0 else None

    def next_expiry(self) -> float | None:
        """Seconds until the first timed pause (global or any group) ends: answers change then."""
        lefts = [r for r in (self.remaining(None), *(self.remaining(g) for g in self._groups)) if r is not None]
        return min(lefts) if lefts else None

    def pause(self, duration: float | None = None, group: str | None = None) -> None:
        """Pause for ``duration`` seconds, or until :meth:`resume` when None."""
        if duration is not None and not 0 < duration <= MAX_PAUSE:
            raise ValueError(f"duration must be between 1 and {MAX_PAUSE} seconds")
        p = _Pause(None if duration is None else self.clock() + duration, duration is None)
        if group is None:
            self._global = p
        else:
            self._groups[group] = p
        self._save()

    def resume(self, group: str | None = None) -> None:
        if group is None:
            self._global = _Pause()
        else:
            self._groups.pop(group, None)
        self._save()

    def forget_group(self, group: str) -> None:
        """A deleted group's pause goes with it."""
        if self._groups.pop(group, None) is not None:
            self._save()

    def toggle(self, duration: float) -> bool:
        """Resume when paused globally, else pause for ``duration``; returns whether now paused."""
        if self.group_paused(None):
            self.resume()
        else:
            self.pause(duration)
        return self.group_paused(None)

    def state(self, group: str | None = None) -> dict[str, Any]:
        """``{enabled, paused_until, remaining_seconds}`` for the whole appliance (and, for the
        global state, ``groups``: each paused group's own state), or for one group."""
        out = self._state_of(group)
        if group is None:
            now = self.clock()
            out["groups"] = {name: self._state_of(name) for name, p in sorted(self._groups.items())
                             if p.active(now)}
        else:
            out["group"] = group
        return out

    def _state_of(self, group: str | None) -> dict[str, Any]:
        p = self._get(group)
        remaining = self.remaining(group)
        until = None
        if remaining is not None and p.until is not None:  # (a remaining time has an end)
            until = datetime.datetime.fromtimestamp(p.until, datetime.timezone.utc) \
                .isoformat(timespec="seconds").replace("+00:00", "Z")
        return {"enabled": not p.active(self.clock()), "paused_until": until,
                "remaining_seconds": None if remaining is None else int(remaining + 0.999)}

    def _save(self) -> None:
        now = self.clock()
        groups = {g: p.to_dict() for g, p in self._groups.items() if p.active(now)}
        self._groups = {g: self._groups[g] for g in groups}
        self.settings.set(SETTINGS_KEY, {**self._global.to_dict(), "groups": groups})
        self._changed()
