"""The lockout tables (issue 20 items 3 and 9): budgets per (account, address), per address
and per account; IPv6 counted by /64; a full table never forgets a live lock."""

from __future__ import annotations

import pytest

from burrow.auth import lockout
from burrow.auth.lockout import LockoutTracker

from .test_auth_support import FakeClock

WINDOW = 15 * 60


@pytest.fixture
def clock():
    return FakeClock()


def fail(tracker, name, ip, times=1):
    return [tracker.record_failure(name, ip) for _ in range(times)]


def test_a_strangers_failures_lock_their_address_not_the_owners(clock):
    tracker = LockoutTracker(clock)
    assert fail(tracker, "alice", "127.0.0.2", 5)[-1] == WINDOW
    assert tracker.retry_after("alice", "127.0.0.2") == WINDOW
    assert tracker.retry_after("bob", "127.0.0.2") == WINDOW  # the address, across names
    assert tracker.retry_after("alice", "127.0.0.3") == 0


def test_the_account_budget_is_global_and_slower(clock):
    tracker = LockoutTracker(clock)
    assert tracker.account_max_failures == 20
    for n in range(3):
        fail(tracker, "alice", f"10.0.0.{n}", 5)
    fail(tracker, "alice", "10.0.0.3", 4)
    assert tracker.retry_after("alice", "10.9.9.9") == 0  # 19
    fail(tracker, "alice", "10.0.0.3")
    assert tracker.retry_after("alice", "10.9.9.9") == WINDOW  # 20: everywhere
    assert tracker.retry_after("bob", "10.9.9.9") == 0
    clock.advance(WINDOW)
    assert tracker.retry_after("alice", "10.9.9.9") == 0


def test_success_clears_only_its_own_pair(clock):
    tracker = LockoutTracker(clock)
    fail(tracker, "alice", "10.0.0.1", 4)
    fail(tracker, "alice", "10.0.0.2", 4)
    tracker.record_success("alice", "10.0.0.1")
    fail(tracker, "alice", "10.0.0.1", 4)  # a fresh pair budget: 4 < 5, but the address has 8
    assert tracker.retry_after("alice", "10.0.0.1") == WINDOW  # the address budget is not reset
    fail(tracker, "alice", "10.0.0.2")
    assert tracker.retry_after("alice", "10.0.0.2") == WINDOW


@pytest.mark.parametrize("ip,key", [
    ("192.168.1.5", "192.168.1.5"),
    ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("::ffff:192.168.1.5", "192.168.1.5"),
    ("fe80::1%eth0", "fe80::/64"),
    (None, "-"),
    ("not an address", "not an address"),
])
def test_address_keys(ip, key):
    assert lockout.address_key(ip) == key


def test_ipv6_addresses_of_one_64_share_a_budget(clock):
    """Issue 20 item 9: one /64 holds 2**64 addresses; each used to get its own budget."""
    tracker = LockoutTracker(clock)
    for n in range(5):
        tracker.record_failure(f"name{n}", f"2001:db8:0:1::{n + 1:x}")
    assert tracker.retry_after("someone", "2001:db8:0:1:ffff::9") == WINDOW
    assert tracker.retry_after("alice", "2001:db8:0:1::abcd") == WINDOW
    assert tracker.retry_after("alice", "2001:db8:0:2::1") == 0  # the next /64 is another home


def test_thousands_of_failures_under_other_names_do_not_forget_a_lock(clock):
    """Issue 20 item 9: 4,096 failures under other names (from other addresses) used to push
    the locked account and address out of the tables, and the lock was forgotten."""
    tracker = LockoutTracker(clock)
    fail(tracker, "alice", "10.0.0.1", 5)
    for n in range(lockout.MAX_TRACKED_KEYS + 10):
        tracker.record_failure(f"user{n}", f"10.1.{n // 250}.{n % 250}")
    assert tracker.retry_after("alice", "10.0.0.1") == WINDOW
    # The last 11 found each table full of live entries and went to its overflow budget.
    assert tracker.overflowed() == 3 * 11


def test_a_full_table_books_new_keys_in_one_shared_budget(clock):
    tracker = LockoutTracker(clock, cap=8)
    fail(tracker, "alice", "10.0.0.1", 5)  # locked: alice, 10.0.0.1 and the pair
    for n in range(7):  # fill every table with live entries (one failure each)
        tracker.record_failure(f"user{n}", f"10.0.1.{n}")
    assert tracker.overflowed() == 0
    # Untracked keys now share each table's overflow entry (budget 5, like any pair):
    for n in range(4):
        tracker.record_failure(f"late{n}", f"10.0.2.{n}")
    assert tracker.retry_after("newcomer", "10.0.3.1") == 0
    tracker.record_failure("late4", "10.0.2.4")
    assert tracker.overflowed() == 15  # 5 failures x 3 tables
    # Every untracked key now counts as locked; the tracked ones keep their own state.
    assert tracker.retry_after("newcomer", "10.0.3.1") == WINDOW
    assert tracker.retry_after("alice", "10.0.0.1") == WINDOW
    assert tracker.retry_after("user3", "10.0.1.3") == 0
    clock.advance(WINDOW)
    assert tracker.retry_after("newcomer", "10.0.3.1") == 0
    assert tracker.retry_after("alice", "10.0.0.1") == 0


def test_expired_entries_make_room_oldest_first(clock):
    tracker = LockoutTracker(clock, cap=4)
    for n in range(4):
        tracker.record_failure(f"user{n}", f"10.0.0.{n}")
        clock.advance(60)
    clock.advance(WINDOW - 4 * 60 + 1)  # user0's failure has left the window, the others not
    tracker.record_failure("new", "10.0.9.9")
    assert tracker.overflowed() == 0
    assert [key for key in tracker._accounts.entries] == ["user1", "user2", "user3", "new"]
    tracker.record_failure("newer", "10.0.9.8")  # user1 is still live: no room
    assert tracker.overflowed() == 3
