"""JWT access tokens: the signing key file and the encode/verify pair.

The key is 32 random bytes in ``<data_dir>/jwt.key`` (mode 0600), created on first start. It
never leaves the box; replacing the file logs every browser out. Tokens are HS256 and the
algorithm is pinned when verifying, so ``alg: none`` or an RS/HS confusion cannot pass.
Expiry is checked against the service's clock (injectable for tests), not pyjwt's.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import jwt

from .errors import AuthError

log = logging.getLogger(__name__)

KEY_FILE = "jwt.key"
KEY_BYTES = 32
ALGORITHM = "HS256"
ACCESS_TYPE = "access"
# Tolerated clock difference for "issued in the future" (the box may step its clock at boot
# when NTP arrives; tokens it issued a moment before must not all fail).
IAT_LEEWAY_SECONDS = 300
_REQUIRED_CLAIMS = ("sub", "role", "sid", "iat", "exp", "jti", "typ")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new_key(path: Path, *, replace: bool) -> bytes:
    """Write a fresh key to a temp file (0600 from birth, fsynced), then publish it atomically:
    link() when creating (loses cleanly to a concurrent creator), rename() when replacing."""
    key = secrets.token_bytes(KEY_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return path.read_bytes()  # another process won the race; use its key
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    log.info("created a new JWT signing key in %s", path)
    return key


def load_or_create_key(data_dir: Path) -> bytes:
    """The signing key from ``data_dir/jwt.key``, created (0600, atomically) if missing.

    A key file of the wrong size (damaged) is replaced with a new key, which only logs
    everyone out; a file readable by others is tightened to 0600 with a warning.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        return _write_new_key(path, replace=False)
    if len(key) != KEY_BYTES:
        log.warning("%s has %d bytes, expected %d: replacing it (sessions are logged out)",
                    path, len(key), KEY_BYTES)
        return _write_new_key(path, replace=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); setting 0600", path, mode)
        os.chmod(path, 0o600)
    return key


def encode_access(key: bytes, *, user_id: int, role: str, session_id: str, now: float,
                  ttl: int) -> str:
    """A signed access token for ``user_id`` in ``session_id`` valid for ``ttl`` seconds."""
    issued = int(now)
    claims = {"sub": str(user_id), "role": role, "sid": session_id, "iat": issued,
              "exp": issued + int(ttl), "jti": secrets.token_urlsafe(12), "typ": ACCESS_TYPE}
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode_access(key: bytes, token: str, *, now: float) -> dict[str, Any]:
    """The claims of a valid, unexpired access token; AuthError otherwise.

    Checks the signature with HS256 only, the presence of every claim, ``typ == "access"``,
    ``exp`` and ``iat`` against ``now``. Session and user checks are the caller's job.
    """
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM],
                            options={"require": list(_REQUIRED_CLAIMS), "verify_exp": False,
                                     "verify_iat": False, "verify_nbf": False})
    except jwt.InvalidTokenError as e:
        raise AuthError("invalid access token") from e
    if claims.get("typ") != ACCESS_TYPE:
        raise AuthError("invalid access token")
    try:
        exp, iat = int(claims["exp"]), int(claims["iat"])
        int(claims["sub"])
    except (TypeError, ValueError) as e:
        raise AuthError("invalid access token") from e
    if now >= exp:
        raise AuthError("access token expired")
    if iat > now + IAT_LEEWAY_SECONDS:
        raise AuthError("invalid access token")
    return claims
