"""AuthService.check_admin_password_async: another product's one-password sign-in (the Pi-hole
face) accepts the password of any enabled admin, asks for the second factor as a login does,
and counts failures toward the same lockout."""

from __future__ import annotations

import asyncio

import pytest

from burrow.auth import AuthError
from burrow.auth.errors import LockedOutError, TotpRequiredError

from .test_auth_support import ADMIN_PW, VIEWER_PW

SECOND_ADMIN_PW = "second admin passphrase 7"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_any_enabled_admin_but_no_viewer(auth, admin):
    s = auth.service
    bob = s.create_user("bob", SECOND_ADMIN_PW, "admin")
    s.create_user("carol", VIEWER_PW, "viewer")
    assert run(s.check_admin_password_async(ADMIN_PW, None, "10.0.0.1"))["id"] == admin["id"]
    assert run(s.check_admin_password_async(SECOND_ADMIN_PW, None, "10.0.0.1"))["id"] == bob["id"]
    with pytest.raises(AuthError):
        run(s.check_admin_password_async(VIEWER_PW, None, "10.0.0.1"))
    s.update_user(bob["id"], disabled=True)
    with pytest.raises(AuthError):
        run(s.check_admin_password_async(SECOND_ADMIN_PW, None, "10.0.0.1"))
    assert "auth.login_failed" in auth.types()


def test_without_users_every_password_is_wrong(auth):
    with pytest.raises(AuthError):
        run(auth.service.check_admin_password_async("anything at all", None, "10.0.0.1"))


def test_the_second_factor_is_asked_for_and_checked(auth, admin):
    s = auth.service
    secret = s.totp_enrol(admin["id"])["secret"]
    s.totp_confirm(admin["id"], auth.code(secret))
    with pytest.raises(TotpRequiredError):
        run(s.check_admin_password_async(ADMIN_PW, None, "10.0.0.1"))
    with pytest.raises(AuthError, match="2FA"):
        run(s.check_admin_password_async(ADMIN_PW, auth.code(secret, 10), "10.0.0.1"))  # 5 minutes off
    auth.clock.advance(30)
    assert run(s.check_admin_password_async(ADMIN_PW, auth.code(secret), "10.0.0.1"))["id"] == admin["id"]
    with pytest.raises(AuthError, match="2FA"):  # the same code again is a reused one
        run(s.check_admin_password_async(ADMIN_PW, auth.code(secret), "10.0.0.1"))


def test_failures_lock_the_address_out_even_for_the_right_password(auth, admin):
    s = auth.service
    for _ in range(5):
        with pytest.raises(AuthError):
            run(s.check_admin_password_async("wrong", None, "10.0.0.9"))
    with pytest.raises(LockedOutError):
        run(s.check_admin_password_async(ADMIN_PW, None, "10.0.0.9"))
    with pytest.raises(LockedOutError):  # the same address's logins to Burrow's own API too
        s.login("alice", ADMIN_PW, client_ip="10.0.0.9")
    assert run(s.check_admin_password_async(ADMIN_PW, None, "10.0.0.10"))["username"] == "alice"
