"""Failed password checks: counting and lockout per (account, address), per address and per
account.

Kept in memory on purpose: counting in SQLite would let an attacker wear the flash with
failed logins. A restart forgets the counts, which an attacker cannot trigger remotely.

Three budgets, each ``failures within window`` → locked for ``window`` from that failure:

- (account, address): ``max_failures`` (5). A stranger guessing the owner's password from
  their own address locks only themselves out of that account;
- address, across every name: ``max_failures`` (5), so one address cannot spray guesses
  over many names (or one name per request);
- account, from every address together: ``account_max_failures`` (4 x 5 = 20), slower, so
  guessing one account from many addresses stays bounded without one stranger's five
  failures locking the owner's browser on another address.

Attempts during a lock are refused (even with the right password) and not counted, so the
lock ends on time. Addresses are keyed by ``address_key``: IPv4 by address, IPv6 by its /64
(one home's or one attacker's SLAAC prefix holds 2**64 addresses).

Each table holds at most ``MAX_TRACKED_KEYS`` keys and never forgets a live entry (one with a
lock or a failure still inside the window) to make room: a new key takes the place of the
oldest expired one. When every entry is live, failures of keys that found no room are booked
in the table's one shared overflow entry, with the same budget: after that many such
failures, every key the table does not track counts as locked until the overflow lock ends.
That is conservative on purpose — filling a table means thousands of live failures — and
keys already tracked (the owner's, if they failed recently) keep their own counts.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass, field

DEFAULT_MAX_FAILURES = 5
# The per-account budget (all addresses together) is this many times the per-pair one: 20.
ACCOUNT_BUDGET_FACTOR = 4
DEFAULT_WINDOW_SECONDS = 15 * 60
# Cap per table ((account, address) pairs, addresses, accounts). Unknown user names count
# under their name too, so the account table is capped like the others.
MAX_TRACKED_KEYS = 4096
IPV6_PREFIX = 64
# Account names are at most 64 characters; a typed one is cut here before it becomes a key.
MAX_NAME_KEY = 128


def address_key(ip: str | None) -> str:
    """The key a client address is counted under: the IPv4 address, or the IPv6 /64 (an
    IPv4-mapped IPv6 address counts as its IPv4 address). Anything unparsable is its own
    text (bounded); no address at all is "-"."""
    if not ip:
        return "-"
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip[:64]
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


def account_key(username: str | None) -> str:
    return (username or "").strip().casefold()[:MAX_NAME_KEY]


@dataclass
class _Entry:
    failures: deque = field(default_factory=deque)
    last: float = 0.0  # time of the latest failure
    locked_until: float = 0.0

    def expired(self, now: float, window: float) -> bool:
        """True once nothing about this entry matters any more: no lock, no failure left
        inside the window."""
        return self.locked_until <= now and self.last <= now - window

    def remaining(self, now: float) -> float:
        return max(0.0, self.locked_until - now)

    def fail(self, now: float, limit: int, window: float) -> bool:
        """Count one failure; True if it locked the entry."""
        if self.locked_until and self.locked_until <= now:
            self.failures.clear()  # the lock has passed: start counting afresh
            self.locked_until = 0.0
        self.last = now
        self.failures.append(now)
        while self.failures and self.failures[0] <= now - window:
            self.failures.popleft()
        if len(self.failures) >= limit:
            self.locked_until = now + window
            self.failures.clear()
            return True
        return False


class _Table:
    """Entries by key, oldest failure first (a failure moves its key to the end). Because
    every entry lives exactly ``window`` past its latest failure, the first entry is always
    the first to expire: making room looks at it alone."""

    def __init__(self, cap: int):
        self.cap = cap
        self.entries: OrderedDict[object, _Entry] = OrderedDict()
        self.overflow = _Entry()  # failures of keys that found the table full of live entries
        self.overflowed = 0  # failures booked there (for the log and tests)

    def remaining(self, key: object, now: float) -> float:
        entry = self.entries.get(key)
        return (entry if entry is not None else self.overflow).remaining(now)

    def fail(self, key: object, now: float, limit: int, window: float) -> bool:
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        else:
            while self.entries and len(self.entries) >= self.cap:
                oldest = next(iter(self.entries.values()))
                if not oldest.expired(now, window):
                    break
                self.entries.popitem(last=False)
            if len(self.entries) < self.cap:
                entry = self.entries[key] = _Entry()
            else:
                self.overflowed += 1
                return self.overflow.fail(now, limit, window)
        return entry.fail(now, limit, window)

    def clear(self) -> None:
        self.entries.clear()
        self.overflow = _Entry()
        self.overflowed = 0


class LockoutTracker:
    """Counts failures and answers "is this attempt allowed?" for (account, address) pairs.

    ``clock`` is a callable returning unix seconds (inject a fake one in tests).
    """

    def __init__(self, clock, max_failures: int = DEFAULT_MAX_FAILURES,
                 window: float = DEFAULT_WINDOW_SECONDS, cap: int = MAX_TRACKED_KEYS,
                 account_max_failures: int | None = None):
        self.clock = clock
        self.max_failures = max_failures
        self.account_max_failures = (account_max_failures if account_max_failures is not None
                                     else ACCOUNT_BUDGET_FACTOR * max_failures)
        self.window = window
        self._pairs = _Table(cap)
        self._addresses = _Table(cap)
        self._accounts = _Table(cap)

    def _keys(self, username: str | None, client_ip: str | None):
        account, address = account_key(username), address_key(client_ip)
        return ((self._pairs, (address, account), self.max_failures),
                (self._addresses, address, self.max_failures),
                (self._accounts, account, self.account_max_failures))

    def retry_after(self, username: str | None, client_ip: str | None) -> float:
        """Seconds until an attempt for this account from this address is allowed; 0 if
        allowed now."""
        now = self.clock()
        return max(table.remaining(key, now) for table, key, _ in self._keys(username, client_ip))

    def record_failure(self, username: str | None, client_ip: str | None) -> float:
        """Count one failure against the pair, the address and the account; the lock length
        in seconds if this failure locked any of them (0 otherwise)."""
        now = self.clock()
        locked = False
        for table, key, limit in self._keys(username, client_ip):
            locked = table.fail(key, now, limit, self.window) or locked
        return self.window if locked else 0.0

    def record_success(self, username: str | None, client_ip: str | None) -> None:
        """Forget this (account, address) pair's failures. The address keeps its count
        (otherwise an attacker with one valid account could reset their address between
        guesses at others), and so does the account (the owner's success must not hand a
        stranger on other addresses a fresh budget)."""
        account, address = account_key(username), address_key(client_ip)
        self._pairs.entries.pop((address, account), None)

    def overflowed(self) -> int:
        """Failures booked in an overflow entry because a table was full of live entries."""
        return self._pairs.overflowed + self._addresses.overflowed + self._accounts.overflowed

    def clear(self) -> None:
        """Forget everything (tests, or an operator's reset)."""
        for table in (self._pairs, self._addresses, self._accounts):
            table.clear()
