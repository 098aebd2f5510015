"""Password hashing (scrypt) and strength rules."""

from __future__ import annotations

import base64
import hashlib

import pytest

from burrow.auth import AuthError, WeakPasswordError, check_password_strength
from burrow.auth.passwords import (SCRYPT_LOG2_N, SCRYPT_P, SCRYPT_R, hash_password,
                                   needs_rehash, verify_password)


def test_hash_is_self_describing_and_salted():
    first, second = hash_password("Tr0ub4dor&3xx"), hash_password("Tr0ub4dor&3xx")
    assert first.startswith(f"$scrypt$ln={SCRYPT_LOG2_N},r={SCRYPT_R},p={SCRYPT_P}$")
    assert first != second  # random salt
    assert verify_password(first, "Tr0ub4dor&3xx") and verify_password(second, "Tr0ub4dor&3xx")
    assert not verify_password(first, "Tr0ub4dor&3xy")
    assert not needs_rehash(first)


def test_parameters_fit_the_budget():
    assert 128 * 2 ** SCRYPT_LOG2_N * SCRYPT_R <= 32 * 1024 * 1024
    assert hash_password("some password here").startswith("$scrypt$")  # cost: see passwords.py


def test_old_parameters_still_verify_and_ask_for_rehash():
    salt = b"0123456789abcdef"
    key = hashlib.scrypt(b"old-password-1", salt=salt, n=2 ** 10, r=8, p=1, dklen=32)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    stored = f"$scrypt$ln=10,r=8,p=1${b64(salt)}${b64(key)}"
    assert verify_password(stored, "old-password-1")
    assert needs_rehash(stored)


def test_unicode_is_normalised():
    # "é" precomposed vs e + combining accent: the same password typed on two keyboards.
    stored = hash_password("caf\u00e9-au-lait-42")
    assert verify_password(stored, "cafe\u0301-au-lait-42")


@pytest.mark.parametrize("stored", [
    "", "plain", "$bcrypt$x$y$z", "$scrypt$ln=14,r=8$abc$def",
    "$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
])
def test_unusable_hashes_never_match(stored):
    # ln=30 would need 128 GiB: refused by maxmem instead of allocated.
    assert not verify_password(stored, "anything at all")


@pytest.mark.parametrize("password,username,rule", [
    ("short1!", "bob", "at least 10"),
    ("x" * 1025, "bob", "at most"),
    ("my-alice-password-9", "Alice", "user name"),
    ("abcdefghijk", "bob", "mix"),          # 11 lowercase letters
    ("12345678901", "bob", "mix"),
    ("aaaaaaaaaaaaaaaaaa", "bob", "different"),
    ("qwertyuiop", "bob", "mix"),
    ("Password2024!", "bob", "common"),
    ("1q2w3e4r5t", "bob", "common"),
    ("Raspberry!!1", "bob", "common"),
])
def test_weak_passwords_are_refused_with_a_reason(password, username, rule):
    with pytest.raises(WeakPasswordError, match=rule) as caught:
        check_password_strength(password, username)
    assert caught.value.status == 400 and caught.value.field == "password"


@pytest.mark.parametrize("password", [
    "correct horse battery", "Tr0ub4dor&3xx", "sixteenlowercase", "Kx9-pond-lamp"])
def test_reasonable_passwords_pass(password):
    check_password_strength(password, "bob")


def _scrypt_calls_of_failed_login(service, monkeypatch, username: str, ip: str) -> list:
    calls = []
    real = hashlib.scrypt

    def counting(password, **kw):
        calls.append((kw["n"], kw["r"], kw["p"], kw["dklen"]))
        return real(password, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    with pytest.raises(AuthError):
        service.login(username, "wrong password!", None, ip)
    monkeypatch.setattr(hashlib, "scrypt", real)
    return calls


def test_unknown_user_costs_the_same_as_a_wrong_password(auth, admin, monkeypatch):
    """No user enumeration by timing: an unknown name runs the same single scrypt, with the same
    parameters, as a wrong password does (checked by counting, not by a stopwatch)."""
    service = auth.service
    service.lockout.max_failures = 1000  # measure, don't lock
    _scrypt_calls_of_failed_login(service, monkeypatch, "alice", "10.0.0.1")  # makes the dummy hash once
    known = _scrypt_calls_of_failed_login(service, monkeypatch, "alice", "10.0.0.1")
    unknown = _scrypt_calls_of_failed_login(service, monkeypatch, "mallory", "10.0.0.2")
    assert known == unknown == [(2 ** SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, known[0][3])]
