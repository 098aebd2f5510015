"""Users and roles: first-run setup, CRUD, last-admin protection, public shapes."""

from __future__ import annotations

import pytest

from burrow.auth import AuthError, ConflictError, InvalidInputError, NotFoundError
from burrow.auth.errors import ForbiddenError, LockedOutError, TotpRequiredError, WeakPasswordError

from .test_auth_support import ADMIN_PW, VIEWER_PW

PUBLIC_KEYS = {"id", "username", "role", "disabled", "totp_enabled", "created_at",
               "last_login_at"}


def test_setup_creates_the_first_admin_only_once(auth):
    assert not auth.service.has_users()
    user = auth.service.setup_first_admin("alice", ADMIN_PW)
    assert set(user) == PUBLIC_KEYS
    assert user["role"] == "admin" and user["username"] == "alice"
    assert user["disabled"] is False and user["totp_enabled"] is False
    assert auth.service.has_users()
    with pytest.raises(ConflictError) as caught:
        auth.service.setup_first_admin("bob", ADMIN_PW)
    assert caught.value.status == 409
    assert [u["username"] for u in auth.service.list_users()] == ["alice"]


def test_setup_checks_strength(auth):
    with pytest.raises(WeakPasswordError):
        auth.service.setup_first_admin("alice", "password1")
    assert not auth.service.has_users()


def test_public_dicts_never_carry_secrets(auth, admin):
    auth.service.create_user("bob", VIEWER_PW, "viewer")
    for user in auth.service.list_users():
        assert set(user) == PUBLIC_KEYS
        assert "scrypt" not in repr(user)


def test_create_and_get_by_id_or_name(auth, admin):
    bob = auth.service.create_user("bob", VIEWER_PW, "viewer")
    assert auth.service.get_user(bob["id"]) == bob
    assert auth.service.get_user("BOB") == bob  # names are case-insensitive
    assert auth.service.get_user("nobody") is None
    assert auth.service.get_user(9999) is None


def test_duplicate_names_conflict_ignoring_case(auth, admin):
    with pytest.raises(ConflictError):
        auth.service.create_user("ALICE", VIEWER_PW, "viewer")


@pytest.mark.parametrize("username,role,field", [
    ("bob", "root", "role"), ("bob", "Admin", "role"),
    ("", "viewer", "username"), ("bob smith", "viewer", "username"),
    ("-bob", "viewer", "username"), ("b" * 65, "viewer", "username"),
])
def test_invalid_input_names_the_field(auth, admin, username, role, field):
    with pytest.raises(InvalidInputError) as caught:
        auth.service.create_user(username, VIEWER_PW, role)
    assert caught.value.field == field and caught.value.status == 400


def test_update_role_and_disabled(auth, admin):
    bob = auth.service.create_user("bob", VIEWER_PW, "viewer")
    assert auth.service.update_user(bob["id"], role="admin")["role"] == "admin"
    assert auth.service.update_user(bob["id"], disabled=True)["disabled"] is True
    with pytest.raises(AuthError):
        auth.service.login("bob", VIEWER_PW, None, "10.0.0.9")
    assert auth.service.update_user(bob["id"], disabled=False)["disabled"] is False
    auth.service.login("bob", VIEWER_PW, None, "10.0.0.9")
    with pytest.raises(NotFoundError):
        auth.service.update_user(9999, role="viewer")


def test_last_admin_cannot_be_deleted_demoted_or_disabled(auth, admin):
    uid = admin["id"]
    for change in ({"role": "viewer"}, {"disabled": True}):
        with pytest.raises(ConflictError):
            auth.service.update_user(uid, **change)
    with pytest.raises(ConflictError):
        auth.service.delete_user(uid)
    bob = auth.service.create_user("bob", VIEWER_PW, "admin")
    auth.service.delete_user(uid)  # another admin exists now
    assert auth.service.get_user(uid) is None
    with pytest.raises(ConflictError):
        auth.service.delete_user(bob["id"])


def test_a_disabled_admin_does_not_count(auth, admin):
    bob = auth.service.create_user("bob", VIEWER_PW, "admin")
    auth.service.update_user(bob["id"], disabled=True)
    with pytest.raises(ConflictError):
        auth.service.delete_user(admin["id"])
    auth.service.delete_user(bob["id"])  # disabled admins can go


def test_delete_removes_sessions_and_tokens(auth, admin):
    bob = auth.service.create_user("bob", VIEWER_PW, "viewer")
    pair = auth.service.login("bob", VIEWER_PW, None, "10.0.0.9")
    plaintext, _ = auth.service.create_api_token(bob["id"], "script", "read")
    auth.service.delete_user(bob["id"])
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer(pair.access_token)
    with pytest.raises(AuthError):
        auth.service.authenticate_api_token(plaintext)
    with pytest.raises(AuthError):
        auth.service.refresh(pair.refresh_token)
    with pytest.raises(NotFoundError):
        auth.service.delete_user(bob["id"])


def test_password_change_revokes_sessions(auth, admin):
    first = auth.service.login("alice", ADMIN_PW, None, "10.0.0.1")
    second = auth.service.login("alice", ADMIN_PW, None, "10.0.0.2")
    auth.service.update_user(admin["id"], password="a brand new passphrase")
    for pair in (first, second):
        with pytest.raises(AuthError):
            auth.service.authenticate_bearer(pair.access_token)
        with pytest.raises(AuthError):
            auth.service.refresh(pair.refresh_token)
    with pytest.raises(AuthError):
        auth.service.login("alice", ADMIN_PW, None, "10.0.0.1")
    auth.service.login("alice", "a brand new passphrase", None, "10.0.0.1")


def test_password_change_is_strength_checked(auth, admin):
    with pytest.raises(WeakPasswordError):
        auth.service.update_user(admin["id"], password="alice12345678")


def test_change_own_password_needs_the_current_one(auth, admin):
    with pytest.raises(InvalidInputError) as caught:
        auth.service.change_password(admin["id"], "not my password", "a brand new passphrase")
    assert caught.value.field == "current_password"
    auth.service.change_password(admin["id"], ADMIN_PW, "a brand new passphrase")
    auth.service.login("alice", "a brand new passphrase", None, "10.0.0.1")


def test_error_classes_carry_status_and_code():
    assert (AuthError().status, AuthError().error) == (401, "unauthorized")
    assert (TotpRequiredError().status, TotpRequiredError().error) == (401, "totp_required")
    assert ForbiddenError().status == 403
    locked = LockedOutError(12.2)
    assert (locked.status, locked.error, locked.retry_after) == (429, "locked_out", 13)
    assert ConflictError().status == 409 and NotFoundError().status == 404
    bad = InvalidInputError("name", "too long")
    assert (bad.status, bad.field, str(bad)) == (400, "name", "too long")
