"""Failed-login counting and lockout, per account name and per client address.

Kept in memory on purpose: counting in SQLite would let an attacker wear the flash with
failed logins. A restart forgets the counts, which an attacker cannot trigger remotely.

Rule: once ``max_failures`` failures for a key fall within ``window`` seconds, the key is
locked for ``window`` seconds from that last failure; attempts during the lock are refused
(even with the right password) and not counted, so the lock ends on time.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

DEFAULT_MAX_FAILURES = 5
DEFAULT_WINDOW_SECONDS = 15 * 60
# Cap per table (accounts, addresses). The oldest-touched keys are forgotten first; getting
# rid of someone else's lock that way takes thousands of addresses, which beat a per-address
# limit anyway. Unknown user names count under their name too, so the account table is capped.
MAX_TRACKED_KEYS = 4096


@dataclass
class _Entry:
    failures: deque = field(default_factory=deque)
    locked_until: float = 0.0


class _Table:
    def __init__(self, cap: int):
        self.cap = cap
        self.entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, key: str) -> _Entry | None:
        return self.entries.get(key)

    def touch(self, key: str) -> _Entry:
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = _Entry()
            while len(self.entries) > self.cap:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(key)
        return entry


class LockoutTracker:
    """Counts failures and answers "is this attempt allowed?" for (account, address) pairs.

    ``clock`` is a callable returning unix seconds (inject a fake one in tests).
    """

    def __init__(self, clock, max_failures: int = DEFAULT_MAX_FAILURES,
                 window: float = DEFAULT_WINDOW_SECONDS, cap: int = MAX_TRACKED_KEYS):
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self._accounts = _Table(cap)
        self._addresses = _Table(cap)

    @staticmethod
    def _account_key(username: str) -> str:
        return (username or "").strip().casefold()

    def _remaining(self, entry: _Entry | None, now: float) -> float:
        if entry is None or entry.locked_until <= now:
            return 0.0
        return entry.locked_until - now

    def retry_after(self, username: str, client_ip: str | None) -> float:
        """Seconds until an attempt for this account/address is allowed; 0 if allowed now."""
        now = self.clock()
        return max(self._remaining(self._accounts.get(self._account_key(username)), now),
                   self._remaining(self._addresses.get(client_ip or "-"), now))

    def record_failure(self, username: str, client_ip: str | None) -> float:
        """Count one failure for both keys; return the lock length in seconds if this failure
        locked the account or the address (0 otherwise)."""
        now = self.clock()
        locked = 0.0
        for table, key in ((self._accounts, self._account_key(username)),
                           (self._addresses, client_ip or "-")):
            entry = table.touch(key)
            if entry.locked_until and entry.locked_until <= now:
                entry.failures.clear()  # the lock has passed: start counting afresh
                entry.locked_until = 0.0
            entry.failures.append(now)
            while entry.failures and entry.failures[0] <= now - self.window:
                entry.failures.popleft()
            if len(entry.failures) >= self.max_failures:
                entry.locked_until = now + self.window
                entry.failures.clear()
                locked = max(locked, self.window)
        return locked

    def record_success(self, username: str) -> None:
        """Forget the account's failures. The address keeps its count: otherwise an attacker
        with one valid account could reset their address between guesses at others."""
        self._accounts.entries.pop(self._account_key(username), None)

    def clear(self) -> None:
        """Forget everything (tests, or an operator's reset)."""
        self._accounts.entries.clear()
        self._addresses.entries.clear()
