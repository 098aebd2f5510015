"""AuthService.basic_principal_async: HTTP Basic credentials for another product's API
(burrow/faces): a password checked like a login's and remembered, or an API token."""

from __future__ import annotations

import asyncio

import pytest

from burrow.auth import AuthError
from burrow.auth import passwords, service as service_mod
from burrow.auth.errors import LockedOutError

from .test_auth_support import ADMIN_PW, VIEWER_PW


@pytest.fixture
def checks(monkeypatch):
    """Count the scrypt verifications the service runs."""
    seen: list[str] = []

    def verifying(stored, password):
        seen.append(password)
        return passwords.verify_password(stored, password)

    monkeypatch.setattr(service_mod, "verify_password", verifying)
    return seen


def basic(auth, name, password, ip="192.168.1.5"):
    return asyncio.run(asyncio.wait_for(auth.service.basic_principal_async(name, password, client_ip=ip), 30))


def test_password_is_checked_once_then_remembered(auth, admin, checks):
    who = basic(auth, "alice", ADMIN_PW)
    assert (who.username, who.role, who.via, who.can_write, who.read_only) == ("alice", "admin", "basic", True, False)
    assert basic(auth, "alice", ADMIN_PW).user_id == admin["id"]
    assert checks == [ADMIN_PW]  # the second request: from memory, no scrypt
    auth.clock.advance(service_mod.BASIC_REMEMBER_SECONDS + 1)
    basic(auth, "alice", ADMIN_PW)
    assert checks == [ADMIN_PW, ADMIN_PW]  # forgotten after its time: checked again


def test_concurrent_requests_share_one_check(auth, admin, checks):
    async def many():
        return await asyncio.gather(*(auth.service.basic_principal_async("alice", ADMIN_PW, "10.0.0.1")
                                      for _ in range(6)))

    assert len({p.user_id for p in asyncio.run(many())}) == 1
    assert checks == [ADMIN_PW]


def test_changed_password_or_disabled_user_is_not_let_in_from_memory(auth, admin):
    basic(auth, "alice", ADMIN_PW)
    viewer = auth.service.create_user("bob", VIEWER_PW, "viewer")
    assert basic(auth, "bob", VIEWER_PW).can_write is False
    auth.service.update_user(viewer["id"], disabled=True)
    with pytest.raises(AuthError):
        basic(auth, "bob", VIEWER_PW)
    auth.service.change_password(admin["id"], ADMIN_PW, "a brand new passphrase 7")
    with pytest.raises(AuthError):
        basic(auth, "alice", ADMIN_PW)
    assert basic(auth, "alice", "a brand new passphrase 7").username == "alice"


def test_failures_count_toward_the_lockout(auth, admin):
    for _ in range(5):
        with pytest.raises(AuthError):
            basic(auth, "alice", "wrong password")
    with pytest.raises(LockedOutError):  # even with the right password, while locked
        basic(auth, "alice", ADMIN_PW)
    with pytest.raises(AuthError):
        basic(auth, "nobody", ADMIN_PW, ip="192.168.1.6")
    assert "auth.login_failed" in auth.types() and "auth.locked_out" in auth.types()


def test_two_factor_users_need_a_token(auth, admin):
    info = auth.service.totp_enrol(admin["id"])
    auth.service.totp_confirm(admin["id"], auth.code(info["secret"]))
    with pytest.raises(AuthError):
        basic(auth, "alice", ADMIN_PW)
    token, _ = auth.service.create_api_token(admin["id"], "home assistant", "read")
    who = basic(auth, "anything", token)
    assert who.via == "token" and who.read_only
    with pytest.raises(AuthError):
        basic(auth, "alice", token[:-2] + "xx")
