"""Login, lockout per (account, address), per address and per account, audit events."""

from __future__ import annotations

import asyncio

import pytest

from burrow.auth import AuthError, LockedOutError, TokenPair

from .test_auth_support import ADMIN_PW, VIEWER_PW


def test_login_returns_the_documented_pair(auth, admin):
    pair = auth.service.login("alice", ADMIN_PW, None, "192.168.1.5")
    assert isinstance(pair, TokenPair)
    body = pair.as_response()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert pair.user["username"] == "alice" and pair.user["last_login_at"] == auth.clock.now
    assert auth.types()[-1] == "auth.login"
    assert auth.events[-1]["client_ip"] == "192.168.1.5"


def test_login_name_is_case_insensitive(auth, admin):
    assert auth.service.login("ALICE", ADMIN_PW, None, "10.0.0.1").user["username"] == "alice"


def test_login_async_gives_the_same_result(auth, admin):
    pair = asyncio.run(auth.service.login_async("alice", ADMIN_PW, None, "10.0.0.1"))
    assert auth.service.authenticate_bearer(pair.access_token).username == "alice"
    with pytest.raises(AuthError):
        asyncio.run(auth.service.login_async("alice", "wrong password!", None, "10.0.0.1"))


def _fail(auth, username="alice", ip="10.0.0.1", times=1):
    for _ in range(times):
        with pytest.raises(AuthError):
            auth.service.login(username, "wrong password!", None, ip)


def test_account_locks_after_five_failures_even_with_the_right_password(auth, admin):
    _fail(auth, times=5, ip="10.0.0.1")
    assert "auth.locked_out" in auth.types()
    with pytest.raises(LockedOutError) as caught:
        auth.service.login("alice", ADMIN_PW, None, "10.0.0.1")
    assert caught.value.status == 429
    assert 0 < caught.value.retry_after <= 15 * 60
    auth.clock.advance(15 * 60 - 1)
    with pytest.raises(LockedOutError) as caught:
        auth.service.login("alice", ADMIN_PW, None, "10.0.0.1")
    assert caught.value.retry_after == 1
    auth.clock.advance(1)
    auth.service.login("alice", ADMIN_PW, None, "10.0.0.1")


def test_a_strangers_failures_do_not_lock_the_owner_on_another_address(auth, admin):
    """Issue 20 item 3: five failures from one address lock that (account, address) pair
    and that address, not the account everywhere; the owner signs in from elsewhere."""
    _fail(auth, times=5, ip="10.0.0.2")
    with pytest.raises(LockedOutError):
        auth.service.login("alice", ADMIN_PW, None, "10.0.0.2")
    assert auth.service.login("alice", ADMIN_PW, None, "10.0.0.3").user["username"] == "alice"


def test_the_account_locks_everywhere_after_the_slower_global_budget(auth, admin):
    # Four addresses, five failures each: 20 for the account, its global budget.
    for n in range(1, 4):
        _fail(auth, times=5, ip=f"10.0.1.{n}")
    auth.service.login("alice", ADMIN_PW, None, "10.0.0.3")  # 15: still open elsewhere
    _fail(auth, times=5, ip="10.0.1.4")
    with pytest.raises(LockedOutError):
        auth.service.login("alice", ADMIN_PW, None, "10.0.0.3")
    auth.clock.advance(15 * 60)
    auth.service.login("alice", ADMIN_PW, None, "10.0.0.3")


def test_failures_spread_beyond_the_window_do_not_lock(auth, admin):
    for _ in range(8):
        _fail(auth)
        auth.clock.advance(4 * 60)  # 4 failures per 15 minutes at most
    auth.service.login("alice", ADMIN_PW, None, "10.0.0.1")


def test_success_resets_the_account_count(auth, admin):
    _fail(auth, times=4, ip="10.0.0.1")
    auth.service.login("alice", ADMIN_PW, None, "10.0.0.2")
    _fail(auth, times=4, ip="10.0.0.3")
    auth.service.login("alice", ADMIN_PW, None, "10.0.0.2")


def test_address_locks_across_names_including_unknown_ones(auth, admin):
    auth.service.create_user("bob", VIEWER_PW, "viewer")
    for name in ("carol", "dave", "erin", "frank", "bob"):
        _fail(auth, username=name, ip="203.0.113.7")
    with pytest.raises(LockedOutError):
        auth.service.login("alice", ADMIN_PW, None, "203.0.113.7")
    # Others are unaffected.
    auth.service.login("alice", ADMIN_PW, None, "192.168.1.10")
    locked = [e for e in auth.events if e["type"] == "auth.locked_out"]
    assert locked and locked[0]["client_ip"] == "203.0.113.7"


def test_unknown_names_lock_like_real_ones(auth, admin):
    # The lockout must not reveal which names exist: the same budgets for both.
    for i, name in enumerate(("nosuchuser", "alice")):
        for n in range(4):
            _fail(auth, username=name, ip=f"10.0.{2 + i}.{n}", times=5)
        with pytest.raises(LockedOutError):
            auth.service.login(name, "whatever-pass", None, "10.0.0.50")


def test_attempts_during_lockout_do_not_extend_it(auth, admin):
    _fail(auth, times=5)
    for _ in range(10):
        auth.clock.advance(60)
        with pytest.raises(LockedOutError):
            auth.service.login("alice", ADMIN_PW, None, "10.0.0.1")
    auth.clock.advance(5 * 60)
    auth.service.login("alice", ADMIN_PW, None, "10.0.0.1")


def test_events_name_user_and_address_but_no_secrets(auth, admin):
    _fail(auth, times=5, ip="10.1.1.1")
    with pytest.raises(LockedOutError):
        auth.service.login("alice", ADMIN_PW, None, "10.1.1.1")
    types = auth.types()
    assert types.count("auth.login_failed") == 5
    assert types.count("auth.locked_out") == 1 and "auth.login_refused" in types
    for event in auth.events:
        assert event["username"] == "alice" and event["client_ip"] == "10.1.1.1"
        assert "wrong password" not in repr(event) and ADMIN_PW not in repr(event)
        assert isinstance(event["ts"], float)


def test_events_never_hold_a_typed_name_that_is_no_account(auth, admin):
    """Issue 20 item 12: a password typed into the name field must not reach the audit log
    (viewers read it); an unknown name is logged as a keyed hash, stable for the same text."""
    typed = "Correct-Horse-In-The-Name-Field"
    _fail(auth, username=typed, ip="10.2.0.1", times=5)  # failed, then locked_out
    with pytest.raises(LockedOutError):
        auth.service.login(typed, "anything at all", None, "10.2.0.1")  # login_refused
    _fail(auth, username=typed.upper(), ip="10.2.0.2")
    _fail(auth, username="someone-else", ip="10.2.0.3")
    events = [e for e in auth.events if e["client_ip"].startswith("10.2.0.")]
    assert {e["type"] for e in events} == {"auth.login_failed", "auth.locked_out",
                                           "auth.login_refused"}
    assert typed.casefold() not in repr(auth.events).casefold()
    shown = {e["client_ip"]: e["username"] for e in events}
    assert shown["10.2.0.1"].startswith("unknown:") and len(shown["10.2.0.1"]) == 20
    assert shown["10.2.0.1"] == shown["10.2.0.2"]  # the same name, however it was cased
    assert shown["10.2.0.3"] != shown["10.2.0.1"]
    _fail(auth, username="ALICE", ip="10.2.0.4")  # an account: its own name
    assert auth.events[-1]["username"] == "alice" and auth.events[-1]["user_id"] == admin["id"]


def test_a_failing_event_sink_does_not_break_login(auth, admin):
    def broken(event):
        raise RuntimeError("sink down")
    auth.service.set_event_sink(broken)
    auth.service.login("alice", ADMIN_PW, None, "10.0.0.1")


@pytest.mark.parametrize("username,password", [(None, ADMIN_PW), ("alice", None), (5, 5)])
def test_non_string_credentials_are_just_wrong(auth, admin, username, password):
    with pytest.raises(AuthError):
        auth.service.login(username, password, None, "10.0.0.1")


def test_sessions_per_user_are_capped(auth, admin):
    from burrow.auth.service import MAX_SESSIONS_PER_USER
    pairs = []
    for _ in range(MAX_SESSIONS_PER_USER + 2):
        pairs.append(auth.service.login("alice", ADMIN_PW, None, "10.0.0.1"))
        auth.clock.advance(1)
    count = auth.db.conn.execute("SELECT count(*) FROM auth_sessions").fetchone()[0]
    assert count == MAX_SESSIONS_PER_USER
    with pytest.raises(AuthError):  # the oldest went first
        auth.service.authenticate_bearer(pairs[0].access_token)
    auth.service.authenticate_bearer(pairs[-1].access_token)
