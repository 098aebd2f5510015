"""JWT access tokens, refresh-token rotation and reuse, logout, API tokens, authenticate()."""

from __future__ import annotations

import os
import secrets
import stat

import jwt
import pytest

from burrow.auth import AuthError, AuthService, ForbiddenError, InvalidInputError, NotFoundError
from burrow.auth.errors import ConflictError

from .test_auth_support import ADMIN_PW, VIEWER_PW

IP = "192.168.1.30"


@pytest.fixture
def pair(auth, admin):
    return auth.service.login("alice", ADMIN_PW, None, IP)


# ---- the key file ------------------------------------------------------------------------------

def test_key_file_is_created_private_and_reused(auth, pair):
    path = auth.dir / "jwt.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    again = AuthService(auth.db, auth.dir, clock=auth.clock)
    assert again.authenticate_bearer(pair.access_token).username == "alice"
    assert not [p for p in os.listdir(auth.dir) if p.endswith(".tmp")]


def test_damaged_key_file_is_replaced(auth, pair):
    (auth.dir / "jwt.key").write_bytes(b"short")
    again = AuthService(auth.db, auth.dir, clock=auth.clock)
    assert len((auth.dir / "jwt.key").read_bytes()) == 32
    with pytest.raises(AuthError):  # old tokens are signed with the old key
        again.authenticate_bearer(pair.access_token)


# ---- access tokens -----------------------------------------------------------------------------

def test_access_token_claims(auth, pair):
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    assert jwt.get_unverified_header(pair.access_token)["alg"] == "HS256"
    assert claims["sub"] == "1" and claims["role"] == "admin" and claims["typ"] == "access"
    assert claims["sid"] == pair.session_id and claims["jti"]
    assert claims["exp"] - claims["iat"] == 900
    principal = auth.service.authenticate_bearer(pair.access_token)
    assert (principal.user_id, principal.username, principal.role, principal.via) == \
        (1, "alice", "admin", "jwt")
    assert principal.session_id == pair.session_id and principal.can_write


def test_alg_none_is_refused(auth, pair):
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    forged = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer(forged)
    # Hand-made variant with an empty signature.
    header, payload, _ = pair.access_token.split(".")
    import base64
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer(f"{none_header}.{payload}.")


@pytest.mark.filterwarnings("ignore:The HMAC key")
def test_other_key_is_refused(auth, pair):
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    forged = jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256")
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer(forged)
    other_alg = jwt.encode(claims, (auth.dir / "jwt.key").read_bytes(), algorithm="HS512")
    with pytest.raises(AuthError):  # right key, unpinned algorithm
        auth.service.authenticate_bearer(other_alg)


def test_expired_token_is_refused(auth, pair):
    auth.clock.advance(899)
    auth.service.authenticate_bearer(pair.access_token)
    auth.clock.advance(1)
    with pytest.raises(AuthError, match="expired"):
        auth.service.authenticate_bearer(pair.access_token)


def test_wrong_type_or_missing_claims_are_refused(auth, pair):
    key = (auth.dir / "jwt.key").read_bytes()
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    for change in ({"typ": "refresh"}, {"sid": "nope"}, {"sub": "42"}):
        with pytest.raises(AuthError):
            auth.service.authenticate_bearer(jwt.encode({**claims, **change}, key, "HS256"))
    del claims["sid"]
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer(jwt.encode(claims, key, "HS256"))
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer("not.a.jwt")


def test_role_comes_from_the_database(auth, admin, pair):
    auth.service.create_user("bob", VIEWER_PW, "admin")
    auth.service.update_user(admin["id"], role="viewer")
    principal = auth.service.authenticate_bearer(pair.access_token)
    assert principal.role == "viewer" and principal.scope == "read" and not principal.can_write


def test_disabled_user_tokens_stop_working(auth, admin, pair):
    auth.service.create_user("bob", VIEWER_PW, "admin")
    auth.service.update_user(admin["id"], disabled=True)
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer(pair.access_token)


# ---- refresh tokens ----------------------------------------------------------------------------

def test_refresh_rotates(auth, pair):
    auth.clock.advance(600)
    second = auth.service.refresh(pair.refresh_token)
    assert second.refresh_token != pair.refresh_token
    assert second.session_id == pair.session_id
    assert set(second.as_response()) == {"access_token", "refresh_token", "token_type",
                                         "expires_in"}
    third = auth.service.refresh(second.refresh_token)
    assert auth.service.authenticate_bearer(third.access_token).session_id == pair.session_id
    stored = [r[0] for r in auth.db.conn.execute("SELECT token_hash FROM auth_refresh_tokens")]
    assert third.refresh_token not in stored  # only hashes


def test_reuse_revokes_the_whole_family(auth, pair):
    second = auth.service.refresh(pair.refresh_token)
    with pytest.raises(AuthError):
        auth.service.refresh(pair.refresh_token)  # the thief (or the victim) replays it
    assert "auth.refresh_reuse" in auth.types()
    with pytest.raises(AuthError):
        auth.service.refresh(second.refresh_token)
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer(second.access_token)
    # Other sessions of the same user live on.
    other = auth.service.login("alice", ADMIN_PW, None, IP)
    auth.service.refresh(other.refresh_token)


def test_refresh_token_expires(auth, pair):
    auth.clock.advance(30 * 86400)
    with pytest.raises(AuthError):
        auth.service.refresh(pair.refresh_token)


def test_refresh_extends_the_session(auth, pair):
    token = pair.refresh_token
    for _ in range(3):  # 3 x 20 days > 30 days: each refresh moves the expiry
        auth.clock.advance(20 * 86400)
        token = auth.service.refresh(token).refresh_token


@pytest.mark.parametrize("token", ["", "garbage", "x" * 5000, None])
def test_unknown_refresh_tokens_fail(auth, pair, token):
    with pytest.raises(AuthError):
        auth.service.refresh(token)


def test_logout_revokes_session_and_family(auth, pair):
    auth.service.logout(pair.session_id)
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer(pair.access_token)
    with pytest.raises(AuthError):
        auth.service.refresh(pair.refresh_token)
    auth.service.logout(pair.session_id)  # twice is fine
    auth.service.logout("no-such-session")
    assert auth.types().count("auth.logout") == 1


# ---- API tokens --------------------------------------------------------------------------------

def test_api_token_is_shown_once_and_stored_hashed(auth, admin):
    plaintext, info = auth.service.create_api_token(admin["id"], "home assistant", "admin")
    assert plaintext.startswith("brw_") and len(plaintext) > 40
    assert set(info) == {"id", "user_id", "name", "scope", "created_at", "last_used_at",
                         "prefix"}
    assert info["prefix"] == plaintext[:8] and info["last_used_at"] is None
    dump = "\n".join(auth.db.conn.iterdump())
    assert plaintext not in dump
    assert auth.service.list_api_tokens(admin["id"]) == [info]
    assert auth.service.list_api_tokens() == [info]


def test_api_token_authenticates_with_its_scope(auth, admin):
    plaintext, info = auth.service.create_api_token(admin["id"], "grafana", "read")
    principal = auth.service.authenticate_api_token(plaintext)
    assert (principal.via, principal.scope, principal.token_id) == ("token", "read", info["id"])
    assert principal.role == "admin" and not principal.can_write
    writer, _ = auth.service.create_api_token(admin["id"], "ansible", "admin")
    assert auth.service.authenticate_api_token(writer).can_write


def test_viewer_cannot_create_admin_tokens(auth, admin):
    bob = auth.service.create_user("bob", VIEWER_PW, "viewer")
    with pytest.raises(ForbiddenError):
        auth.service.create_api_token(bob["id"], "x", "admin")
    plaintext, _ = auth.service.create_api_token(bob["id"], "x", "read")
    principal = auth.service.authenticate_api_token(plaintext)
    assert principal.role == "viewer" and not principal.can_write


def test_api_token_input_checks(auth, admin):
    for name, scope, field in (("", "read", "name"), ("n" * 65, "read", "name"),
                               ("ok", "write", "scope")):
        with pytest.raises(InvalidInputError) as caught:
            auth.service.create_api_token(admin["id"], name, scope)
        assert caught.value.field == field
    auth.service.create_api_token(admin["id"], "dup", "read")
    with pytest.raises(ConflictError):
        auth.service.create_api_token(admin["id"], "dup", "read")
    with pytest.raises(NotFoundError):
        auth.service.create_api_token(999, "x", "read")


def test_revoked_token_stops_working(auth, admin):
    plaintext, info = auth.service.create_api_token(admin["id"], "old", "admin")
    bob = auth.service.create_user("bob", VIEWER_PW, "viewer")
    with pytest.raises(NotFoundError):  # not bob's to revoke
        auth.service.revoke_api_token(info["id"], user_id=bob["id"])
    auth.service.revoke_api_token(info["id"])
    with pytest.raises(AuthError):
        auth.service.authenticate_api_token(plaintext)
    with pytest.raises(NotFoundError):
        auth.service.revoke_api_token(info["id"])


def test_last_used_is_written_at_most_once_a_minute(auth, admin):
    plaintext, info = auth.service.create_api_token(admin["id"], "poller", "read")
    start = auth.clock.now
    auth.service.authenticate_api_token(plaintext)
    auth.clock.advance(30)
    auth.service.authenticate_api_token(plaintext)
    assert auth.service.list_api_tokens()[0]["last_used_at"] == start
    auth.clock.advance(30)
    auth.service.authenticate_api_token(plaintext)
    assert auth.service.list_api_tokens()[0]["last_used_at"] == start + 60


# ---- authenticate() ----------------------------------------------------------------------------

def test_authenticate_picks_the_credential(auth, admin, pair):
    plaintext, _ = auth.service.create_api_token(admin["id"], "t", "read")
    assert auth.service.authenticate(None, None) is None
    assert auth.service.authenticate("", "") is None
    assert auth.service.authenticate(f"Bearer {pair.access_token}", None).via == "jwt"
    assert auth.service.authenticate(f"bearer {plaintext}", None).via == "token"
    assert auth.service.authenticate(None, pair.access_token).via == "cookie"
    # The header wins over the cookie.
    assert auth.service.authenticate(f"Bearer {plaintext}", pair.access_token).via == "token"


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer brw_nope",
                                    "Bearer eyJ.bad.token", "Token abc"])
def test_authenticate_refuses_bad_credentials(auth, pair, header):
    with pytest.raises(AuthError):
        auth.service.authenticate(header, None)


def test_authenticate_refuses_a_bad_cookie(auth, pair):
    with pytest.raises(AuthError):
        auth.service.authenticate(None, "garbage")
