"""The *_async twins of AuthService's password-hashing calls: same results and errors as the
sync versions, scrypt (hash and verify) in a worker thread, SQLite on the loop thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from burrow.auth import AuthError, ConflictError, InvalidInputError, NotFoundError
from burrow.auth import passwords, service as service_mod
from burrow.auth.errors import LockedOutError, WeakPasswordError

from .test_auth_support import ADMIN_PW, VIEWER_PW

NEW_PW = "battery staple horse 9"


@pytest.fixture
def kdf_threads(monkeypatch):
    """Record the thread every hash_password / verify_password call of the service runs on."""
    seen: list[tuple[str, threading.Thread]] = []

    def hashing(password):
        seen.append(("hash", threading.current_thread()))
        return passwords.hash_password(password)

    def verifying(stored, password):
        seen.append(("verify", threading.current_thread()))
        return passwords.verify_password(stored, password)

    monkeypatch.setattr(service_mod, "hash_password", hashing)
    monkeypatch.setattr(service_mod, "verify_password", verifying)
    return seen


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def assert_off_loop(seen, kinds):
    assert [k for k, _ in seen] == kinds
    main = threading.main_thread()
    for _, thread in seen:
        assert thread is not main, "scrypt ran on the event loop thread"


def test_setup_first_admin_async(auth, kdf_threads):
    user = run(auth.service.setup_first_admin_async("alice", ADMIN_PW))
    assert user["username"] == "alice" and user["role"] == "admin"
    assert_off_loop(kdf_threads, ["hash"])
    assert auth.service.login("alice", ADMIN_PW).access_token
    with pytest.raises(ConflictError):
        run(auth.service.setup_first_admin_async("bob", ADMIN_PW))
    assert [k for k, _ in kdf_threads] == ["hash", "verify"]  # no hash for a refused setup


def test_setup_first_admin_async_checks_before_hashing(auth, kdf_threads):
    with pytest.raises(WeakPasswordError):
        run(auth.service.setup_first_admin_async("alice", "password1"))
    with pytest.raises(InvalidInputError):
        run(auth.service.setup_first_admin_async("-alice", ADMIN_PW))
    assert kdf_threads == [] and not auth.service.has_users()


def test_concurrent_setups_let_only_one_in(auth):
    async def both():
        return await asyncio.gather(auth.service.setup_first_admin_async("alice", ADMIN_PW),
                                    auth.service.setup_first_admin_async("bob", ADMIN_PW),
                                    return_exceptions=True)

    results = run(both())
    made = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, ConflictError)]
    assert len(made) == 1 and len(refused) == 1
    assert [u["username"] for u in auth.service.list_users()] == [made[0]["username"]]


def test_create_user_async(auth, admin, kdf_threads):
    bob = run(auth.service.create_user_async("bob", VIEWER_PW, "viewer"))
    assert bob["role"] == "viewer" and auth.service.get_user("bob") == bob
    assert_off_loop(kdf_threads, ["hash"])
    assert auth.service.login("bob", VIEWER_PW).access_token
    with pytest.raises(ConflictError):
        run(auth.service.create_user_async("BOB", VIEWER_PW, "viewer"))
    with pytest.raises(InvalidInputError) as caught:
        run(auth.service.create_user_async("carol", VIEWER_PW, "root"))
    assert caught.value.field == "role"
    with pytest.raises(WeakPasswordError):
        run(auth.service.create_user_async("carol", "short", "viewer"))


def test_concurrent_creates_of_one_name_conflict(auth, admin):
    async def both():
        return await asyncio.gather(auth.service.create_user_async("bob", VIEWER_PW, "viewer"),
                                    auth.service.create_user_async("Bob", VIEWER_PW, "admin"),
                                    return_exceptions=True)

    results = run(both())
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, ConflictError) for r in results) == 1


def test_update_user_async_password_and_flags(auth, admin, kdf_threads):
    bob = auth.service.create_user("bob", VIEWER_PW, "viewer")
    kdf_threads.clear()
    session = auth.service.login("bob", VIEWER_PW)
    kdf_threads.clear()
    updated = run(auth.service.update_user_async(bob["id"], password=NEW_PW, role="admin"))
    assert updated["role"] == "admin"
    assert_off_loop(kdf_threads, ["hash"])
    with pytest.raises(AuthError):  # a new password ends the user's sessions
        auth.service.authenticate(f"Bearer {session.access_token}", None)
    assert auth.service.login("bob", NEW_PW).access_token
    kdf_threads.clear()
    # No password: nothing to hash.
    assert run(auth.service.update_user_async(bob["id"], disabled=True))["disabled"] is True
    assert kdf_threads == []
    with pytest.raises(NotFoundError):
        run(auth.service.update_user_async(9999, password=NEW_PW))
    with pytest.raises(ConflictError):  # alice is the last enabled admin now
        run(auth.service.update_user_async(admin["id"], role="viewer"))
    with pytest.raises(WeakPasswordError):
        run(auth.service.update_user_async(bob["id"], password="bob-password-1"))


def test_update_user_async_rechecks_after_hashing(auth, admin):
    """A user deleted while the new hash was computed is not resurrected or updated."""
    bob = auth.service.create_user("bob", VIEWER_PW, "viewer")

    async def scenario():
        task = asyncio.ensure_future(auth.service.update_user_async(bob["id"], password=NEW_PW))
        await asyncio.sleep(0)  # the check ran; the hash is in the worker thread now
        auth.service.delete_user(bob["id"])
        return await task

    with pytest.raises(NotFoundError):
        run(scenario())
    assert auth.service.get_user(bob["id"]) is None


def test_change_password_async(auth, admin, kdf_threads):
    kdf_threads.clear()
    user = run(auth.service.change_password_async(admin["id"], ADMIN_PW, NEW_PW, "10.0.0.1"))
    assert user["id"] == admin["id"]
    assert_off_loop(kdf_threads, ["verify", "hash"])
    assert auth.service.login("alice", NEW_PW).access_token


def test_change_password_async_wrong_current_counts_as_a_failure(auth, admin, kdf_threads):
    kdf_threads.clear()
    for _ in range(5):
        with pytest.raises(InvalidInputError) as caught:
            run(auth.service.change_password_async(admin["id"], "not the password", NEW_PW,
                                                   "10.0.0.2"))
        assert caught.value.field == "current_password"
    assert auth.types().count("auth.password_change_failed") == 5
    assert_off_loop(kdf_threads, ["verify"] * 5)  # never a hash for a refused change
    with pytest.raises(LockedOutError):  # locked out now, even with the right password
        run(auth.service.change_password_async(admin["id"], ADMIN_PW, NEW_PW, "10.0.0.2"))
    with pytest.raises(NotFoundError):
        run(auth.service.change_password_async(9999, ADMIN_PW, NEW_PW))


def test_change_password_async_weak_new_password(auth, admin):
    with pytest.raises(WeakPasswordError):
        run(auth.service.change_password_async(admin["id"], ADMIN_PW, "short"))
    assert auth.service.login("alice", ADMIN_PW).access_token  # unchanged


def test_the_loop_keeps_running_while_scrypt_works(auth):
    """While setup hashes, other coroutines on the loop get to run (no timing asserted: a
    ticker counts its turns until the hash is done)."""
    async def scenario():
        done = asyncio.Event()
        ticks = 0

        async def ticker():
            nonlocal ticks
            for _ in range(100_000):
                if done.is_set():
                    return
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.ensure_future(ticker())
        try:
            await auth.service.setup_first_admin_async("alice", ADMIN_PW)
        finally:
            done.set()
            await t
        return ticks

    # Only the first tick is certain: the ticker runs while setup awaits its worker thread, and
    # a busy machine may finish the hash before the loop comes round again. Had the hash run
    # on the loop, setup would not have yielded and the ticker would not have ticked at all.
    assert run(scenario()) >= 1


# ---- hostile input the API fuzz (tests/integration/test_api_fuzz.py) found or suggested ---------

LONE = "\ud800x"  # JSON may carry a lone surrogate ("\ud800"); UTF-8 cannot


def test_lone_surrogates_are_refused_not_crashed_on(auth, admin):
    with pytest.raises(AuthError):
        auth.service.refresh(LONE)
    with pytest.raises(AuthError):
        run(auth.service.login_async(LONE, LONE, None, "10.0.0.3"))
    with pytest.raises(WeakPasswordError):
        run(auth.service.create_user_async("bob", "Abcdefgh-12" + LONE, "viewer"))
    with pytest.raises(WeakPasswordError):
        run(auth.service.update_user_async(admin["id"], password="Abcdefgh-12" + LONE))
    with pytest.raises(WeakPasswordError):
        run(auth.service.change_password_async(admin["id"], ADMIN_PW, "Abcdefgh-12" + LONE))
    with pytest.raises(WeakPasswordError):
        auth.service.create_user("bob", "Abcdefgh-12" + LONE, "viewer")


def test_ids_beyond_sqlite_integers_name_nothing(auth, admin):
    for huge in (2 ** 63, -(2 ** 63) - 1, 10 ** 40):
        assert auth.service.get_user(huge) is None
        with pytest.raises(NotFoundError):
            run(auth.service.update_user_async(huge, role="viewer"))
        with pytest.raises(NotFoundError):
            auth.service.delete_user(huge)
        with pytest.raises(NotFoundError):
            auth.service.revoke_api_token(huge)
        with pytest.raises(NotFoundError):
            auth.service.revoke_api_token(huge, user_id=admin["id"])


def test_non_ascii_digits_are_no_totp_code(auth, admin):
    auth.service.totp_enrol(admin["id"])
    for code in ("١٢٣٤٥٦", "１２３４５６", LONE, "١٢٣٤٥-٦٧٨٩٠"):
        with pytest.raises(InvalidInputError):
            auth.service.totp_confirm(admin["id"], code)
