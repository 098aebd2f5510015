"""Probe names: "is this device using Burrow?" answered by a lookup the device itself makes.

The admin page asks the API for a fresh name (:meth:`Probes.issue`: ``<random>.check.burrow.test``,
under the ``.test`` TLD that RFC 6761 reserves, so the name can never exist anywhere else), then
makes the phone look it up through its own resolver (the page loads ``http://<name>/``; the load
itself fails, the lookup is what counts). When the question reaches Burrow's DNS server, the local
stage hands it to :meth:`Probes.saw` and answers NXDOMAIN; the page then asks whether the name was
seen and from which address (:meth:`Probes.status`). A phone whose resolver is elsewhere never
sends the name here: it stays unseen.

Cost for every other query: one ``str.endswith`` on the already lower-cased name (the local stage
does it before anything else). Names live ``TTL`` seconds; at most ``MAX_PENDING`` are kept (the
oldest goes first), so asking for names in a loop cannot grow memory.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

SUFFIX = "check.burrow.test"
DOTTED_SUFFIX = "." + SUFFIX
TTL = 600.0  # seconds a name can be checked after it was issued
MAX_PENDING = 64  # names kept at once
LABEL_BYTES = 10  # 80 random bits: a name nobody can guess or look up by chance


@dataclass
class Probe:
    name: str
    issued_at: float
    seen_at: float | None = None
    client: str | None = None  # the address the first lookup came from
    lookups: int = 0

    def as_dict(self, now: float) -> dict[str, object]:
        return {"name": self.name, "seen": self.seen_at is not None, "client": self.client,
                "seen_at": self.seen_at, "lookups": self.lookups,
                "expires_in": max(0, int(self.issued_at + TTL - now))}


class Probes:
    """The names handed out and not yet expired. ``clock``: unix seconds (a fake in tests)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._pending: OrderedDict[str, Probe] = OrderedDict()
        self.unknown = 0  # lookups under the suffix for a name never issued or expired

    def _expire(self, now: float) -> None:
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.issued_at + TTL > now:
                break
            self._pending.popitem(last=False)

    def issue(self) -> Probe:
        """A new name, kept for TTL seconds (the oldest goes when MAX_PENDING are kept)."""
        now = self.clock()
        self._expire(now)
        while len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)
        label = secrets.token_hex(LABEL_BYTES)
        probe = Probe(f"{label}{DOTTED_SUFFIX}", now)
        self._pending[probe.name] = probe
        return probe

    def status(self, name: str) -> Probe | None:
        """The probe for ``name`` (any case, trailing dot or not); None if never issued or expired."""
        now = self.clock()
        self._expire(now)
        return self._pending.get(name.lower().rstrip("."))

    def saw(self, name: str, client: str | None) -> bool:
        """A DNS question for ``name`` (lower case, no trailing dot, under the suffix) arrived from
        ``client``; True if it was an issued name (the first lookup's address is kept)."""
        probe = self._pending.get(name)
        if probe is None or probe.issued_at + TTL <= self.clock():
            self.unknown += 1
            return False
        probe.lookups += 1
        if probe.seen_at is None:
            probe.seen_at = self.clock()
            probe.client = client
        return True

    def __len__(self) -> int:
        return len(self._pending)
