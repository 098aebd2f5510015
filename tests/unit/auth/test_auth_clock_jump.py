"""Sessions across a jump of the wall clock (a board without a real-time clock is set by network
time after it booted: burrow/clock.py). Forward: the page renews within the session's lifetime,
else the person signs in again; backward: tokens issued "in the future" are refused and sign-in
works; a lock-out ends on time whichever way the wall clock went."""

from __future__ import annotations

import time

import pytest

from burrow.auth import AuthError, AuthService, LockedOutError
from burrow.auth.lockout import DEFAULT_MAX_FAILURES, DEFAULT_WINDOW_SECONDS

from .test_auth_support import ADMIN_PW, Auth, FakeClock

IP = "192.168.1.30"
YEARS = 56 * 365 * 86400  # 1970 → 2026: a Pi without network time, then synchronised
AHEAD = 10 * 365 * 86400  # a clock that read 10 years ahead (a bad real-time clock)


def test_a_small_forward_jump_the_page_renews(auth, admin):
    pair = auth.service.login("alice", ADMIN_PW, None, IP)
    auth.clock.advance(3 * 3600)  # the clock saved at shutdown was hours behind
    with pytest.raises(AuthError, match="expired"):
        auth.service.authenticate_bearer(pair.access_token)  # 401: the page asks for a new one
    renewed = auth.service.refresh(pair.refresh_token)
    assert auth.service.authenticate_bearer(renewed.access_token).username == "alice"


def test_a_forward_jump_past_the_session_means_signing_in_again(auth, admin):
    pair = auth.service.login("alice", ADMIN_PW, None, IP)  # signed in while the clock read 1970
    auth.clock.advance(YEARS)
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer(pair.access_token)
    with pytest.raises(AuthError, match="expired"):
        auth.service.refresh(pair.refresh_token)
    again = auth.service.login("alice", ADMIN_PW, None, IP)
    assert auth.service.authenticate_bearer(again.access_token).username == "alice"
    assert auth.service.refresh(again.refresh_token).session_id == again.session_id


def test_tokens_issued_by_a_clock_that_was_ahead_are_refused(auth, admin):
    auth.clock.advance(AHEAD)
    pair = auth.service.login("alice", ADMIN_PW, None, IP)  # the clock read years ahead
    auth.clock.advance(-AHEAD)  # network time set it back
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer(pair.access_token)
    with pytest.raises(AuthError):  # else it would live for decades: its age is unknown
        auth.service.refresh(pair.refresh_token)
    again = auth.service.login("alice", ADMIN_PW, None, IP)
    assert auth.service.authenticate_bearer(again.access_token).username == "alice"


def test_a_small_step_back_keeps_the_session(auth, admin):
    pair = auth.service.login("alice", ADMIN_PW, None, IP)
    auth.clock.advance(-60)  # within the leeway: an NTP correction
    assert auth.service.authenticate_bearer(pair.access_token).username == "alice"
    assert auth.service.refresh(pair.refresh_token).session_id == pair.session_id


def test_a_lock_out_ends_on_time_whichever_way_the_wall_clock_jumps(tmp_path):
    mono = FakeClock(1000.0)
    auth = Auth(tmp_path, lockout_clock=mono)
    auth.service.setup_first_admin("alice", ADMIN_PW)
    for _ in range(DEFAULT_MAX_FAILURES):
        with pytest.raises(AuthError):
            auth.service.login("alice", "wrong password!", None, IP)
    with pytest.raises(LockedOutError):
        auth.service.login("alice", ADMIN_PW, None, IP)
    auth.clock.advance(-AHEAD)  # the wall clock goes back: the lock must not last years
    mono.advance(DEFAULT_WINDOW_SECONDS + 1)
    assert auth.service.login("alice", ADMIN_PW, None, IP).user["username"] == "alice"
    auth.db.close()


def test_the_running_service_times_lock_outs_by_the_monotonic_clock(tmp_path):
    auth = Auth(tmp_path)
    assert auth.service.lockout.clock is auth.clock  # a test's injected clock rules both
    plain = AuthService(auth.db, tmp_path)  # the app's: wall clock for tokens, monotonic for locks
    assert plain.clock is time.time and plain.lockout.clock is time.monotonic
    plain.close()
    auth.db.close()
