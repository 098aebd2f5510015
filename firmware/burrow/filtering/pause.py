"""Pausing blocking: for a while (resumes by itself) or until resumed, surviving restarts.

The state lives in the settings DB (key ``blocking.pause``) so a pause set before a power cut
still ends when it should. Whoever answers queries asks :meth:`BlockingPause.paused`; every
change calls ``on_change`` so the fast path drops answers decided under the old state.
Per-group pauses arrive with client groups.
"""

from __future__ import annotations

import datetime
import time
from typing import Callable

SETTINGS_KEY = "blocking.pause"
MAX_PAUSE = 7 * 86400  # seconds; longer means "until resumed"


class BlockingPause:
    def __init__(self, settings_db, clock: Callable[[], float] = time.time,
                 on_change: Callable[[], None] | None = None):
        self.settings = settings_db
        self.clock = clock
        self.on_change = on_change or (lambda: None)
        stored = settings_db.get(SETTINGS_KEY) or {}
        self._until = stored.get("until")  # unix time, or None
        self._indefinite = bool(stored.get("indefinite"))

    def paused(self) -> bool:
        if self._indefinite:
            return True
        return self._until is not None and self.clock() < self._until

    def remaining(self) -> float | None:
        """Seconds until blocking resumes by itself; None when not paused or paused indefinitely."""
        if self._indefinite or self._until is None:
            return None
        left = self._until - self.clock()
        return left if left > 0 else None

    def pause(self, duration: float | None = None) -> None:
        """Pause for ``duration`` seconds, or until :meth:`resume` when None."""
        if duration is not None and not 0 < duration <= MAX_PAUSE:
            raise ValueError(f"duration must be between 1 and {MAX_PAUSE} seconds")
        self._indefinite = duration is None
        self._until = None if duration is None else self.clock() + duration
        self._save()

    def resume(self) -> None:
        self._indefinite = False
        self._until = None
        self._save()

    def toggle(self, duration: float) -> bool:
        """Resume when paused, else pause for ``duration``; returns whether now paused."""
        if self.paused():
            self.resume()
        else:
            self.pause(duration)
        return self.paused()

    def state(self) -> dict:
        remaining = self.remaining()
        until = None
        if remaining is not None:
            until = datetime.datetime.fromtimestamp(self._until, datetime.timezone.utc) \
                .isoformat(timespec="seconds").replace("+00:00", "Z")
        return {"enabled": not self.paused(), "paused_until": until,
                "remaining_seconds": None if remaining is None else int(remaining + 0.999)}

    def _save(self) -> None:
        self.settings.set(SETTINGS_KEY, {"until": self._until, "indefinite": self._indefinite})
        self.on_change()
