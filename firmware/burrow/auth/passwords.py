"""Password hashing (scrypt) and the strength rules for new passwords.

Hash strings are self-describing — ``$scrypt$ln=14,r=8,p=3$<salt>$<key>`` (salt and key in
unpadded URL-safe base64) — so the parameters can be raised later: old hashes still verify
and ``needs_rehash`` tells the caller to store a fresh one after a successful login.

Parameters: N = 2**14, r = 8, p = 3. scrypt's memory is 128 * N * r bytes = 16 MiB (well under
the 32 MB budget on a small board; the p lanes run one after another in OpenSSL and reuse it),
and one hash takes ~75 ms on the 2-core x86 development box (~0.3 s expected on a Pi 4-class
Cortex-A72). Raising p adds time without memory; raising ln doubles both.

``hashlib.scrypt`` releases the GIL while it works, so a caller may run ``hash_password`` /
``verify_password`` in a worker thread to keep the event loop free.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import unicodedata

from .errors import WeakPasswordError

log = logging.getLogger(__name__)

SCRYPT_LOG2_N = 14
SCRYPT_R = 8
SCRYPT_P = 3
SALT_BYTES = 16
KEY_BYTES = 32
# Refuse stored hashes asking for more than this (a hash restored from a tampered backup must
# not make verification allocate gigabytes). 2x the memory of the current parameters.
SCRYPT_MAXMEM = 64 * 1024 * 1024

MIN_LENGTH = 10
# Below this length, a password must mix character classes.
SINGLE_CLASS_MIN_LENGTH = 14
# Upper bound so a request cannot make us normalise and hash megabytes.
MAX_LENGTH = 1024

# The most common passwords and password stems (compared case-insensitively, also after
# stripping trailing digits and punctuation: "Password2024!" → "password").
COMMON_PASSWORDS = frozenset("""
password passw0rd p@ssw0rd p@ssword password1 qwerty qwertyuiop qwertyuiop123 qwerty123
qwertz asdfgh asdfghjkl zxcvbnm 1q2w3e4r 1q2w3e4r5t 1qaz2wsx zaq12wsx zaq1zaq1 qazwsx
123456 1234567 12345678 123456789 1234567890 0123456789 0987654321 987654321 111111 000000
123123 121212 654321 666666 696969 112233 123321 abc123 abcdef abcdefg abcdefgh abcd1234
iloveyou letmein welcome welcome1 admin administrator root toor changeme default secret
master shadow sunshine princess football baseball basketball soccer hockey dragon monkey
trustno1 starwars superman batman spiderman michael jennifer jordan hunter hunter2 whatever
mustang charlie freedom computer internet login guest test tester testing access
burrow raspberry raspberrypi pihole dietpi ubuntu debian linux router
""".split())

_TRAILING_JUNK = re.compile(r"[\d\W_]+$")


def _normalise(password: str) -> bytes:
    # NFKC so the same password typed on a phone and a desktop keyboard hashes the same.
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or None elsewhere (musl, macOS)."""
    try:
        import ctypes
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    """scrypt, then hand its 16 MiB work area back to the OS: it is freed into the calling
    thread's malloc arena, which glibc does not shrink by itself, and a login would otherwise
    leave ~16 MiB resident per executor thread that ever hashed (~32 MiB after setup and a
    first login) — a lot on a 512 MB board."""
    try:
        return hashlib.scrypt(_normalise(password), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM,
                              dklen=dklen)
    finally:
        trim = _malloc_trim()
        if trim is not None:
            trim(0)


def hash_password(password: str) -> str:
    """A new self-describing scrypt hash of ``password`` with a random salt (~75 ms)."""
    salt = os.urandom(SALT_BYTES)
    key = _scrypt(password, salt, 2 ** SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return f"$scrypt$ln={SCRYPT_LOG2_N},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes]:
    empty, algorithm, params, salt, key = stored.split("$")
    if empty or algorithm != "scrypt":
        raise ValueError(f"unknown password hash algorithm {algorithm!r}")
    values = dict(item.split("=", 1) for item in params.split(","))
    return int(values["ln"]), int(values["r"]), int(values["p"]), _unb64(salt), _unb64(key)


def verify_password(stored: str, password: str) -> bool:
    """True if ``password`` matches the ``stored`` hash. Constant-time comparison; a malformed
    or unsupported hash is logged and never matches."""
    try:
        log2_n, r, p, salt, expected = _parse(stored)
        key = _scrypt(password, salt, 2 ** log2_n, r, p, len(expected))
    except (ValueError, KeyError, TypeError, OverflowError, MemoryError) as e:
        log.error("unusable password hash in the database (%s); treating as no match",
                  type(e).__name__)
        return False
    return hmac.compare_digest(key, expected)


def needs_rehash(stored: str) -> bool:
    """True if ``stored`` was made with other parameters than the current ones."""
    try:
        log2_n, r, p, _salt, key = _parse(stored)
    except (ValueError, KeyError):
        return True
    return (log2_n, r, p, len(key)) != (SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)


@functools.lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash of an unguessable password with the current parameters, made once per process.

    Verify against it when the user does not exist, so that an unknown name costs the same
    time as a wrong password (no user enumeration by timing)."""
    return hash_password(secrets.token_urlsafe(24))


def _classes(password: str) -> int:
    return sum((
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ))


def check_password_strength(password: str, username: str = "") -> None:
    """Raise WeakPasswordError(reason) unless ``password`` is acceptable for ``username``.

    Rules: at least 10 characters (at most 1024); must not contain the user name (names of 3+
    characters, case-insensitive); below 14 characters it must mix at least two character
    classes (lower, upper, digit, other); at least 5 distinct characters; not one of the most
    common passwords, also when followed by digits or punctuation ("Password123!").
    """
    if not isinstance(password, str):
        raise WeakPasswordError("password must be a string")
    length = len(password)
    if length < MIN_LENGTH:
        raise WeakPasswordError(f"password must be at least {MIN_LENGTH} characters long")
    if length > MAX_LENGTH:
        raise WeakPasswordError(f"password must be at most {MAX_LENGTH} characters long")
    lowered = password.casefold()
    name = (username or "").casefold()
    if len(name) >= 3 and name in lowered:
        raise WeakPasswordError("password must not contain the user name")
    if length < SINGLE_CLASS_MIN_LENGTH and _classes(password) < 2:
        raise WeakPasswordError(
            f"a password shorter than {SINGLE_CLASS_MIN_LENGTH} characters must mix letters, "
            "digits or symbols")
    if len(set(password)) < 5:
        raise WeakPasswordError("password repeats too few different characters")
    stem = _TRAILING_JUNK.sub("", lowered)
    if lowered in COMMON_PASSWORDS or stem in COMMON_PASSWORDS:
        raise WeakPasswordError("password is one of the most commonly used passwords")
