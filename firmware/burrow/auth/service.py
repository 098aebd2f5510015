"""AuthService: users, passwords, logins, sessions, 2FA and API tokens over the settings DB.

Everything here is meant for the event-loop thread, like the SettingsDB it uses; each call is
a few short SQLite statements. The one slow step is scrypt (~75 ms, see passwords.py; ~0.3 s
on a Pi), and every hash and check of a password goes through ``self.kdf`` (kdf.py): the
``*_async`` calls the API uses (``login_async``, ``setup_first_admin_async``,
``create_user_async``, ``update_user_async``, ``change_password_async``,
``totp_disable_async``) run it in its small worker pool with a bounded queue (429 "busy" past
it), so DNS keeps flowing; their synchronous twins run it inline for the CLI and refuse to on
a thread with a running event loop. The SQLite work stays on the loop thread.

Every check of an existing password or second factor (login, own password change, 2FA
disable) is counted by the lockout (lockout.py) under the account and the client address,
and refused while either is locked.

Tables (settings migration 2): auth_users, auth_sessions, auth_refresh_tokens,
auth_recovery_codes, auth_api_tokens. Secrets are stored only as hashes, except the TOTP
secret (the check needs it).

Errors are the classes in errors.py, each with ``status`` and ``error`` for the API layer.
Security events (failed logins, lockouts, logins, refresh-token reuse, logouts, 2FA changes)
go to the callable given to ``set_event_sink`` as plain dicts with no secrets in them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import access, totp
from .errors import (AuthError, ConflictError, ForbiddenError, InvalidInputError,
                     LockedOutError, NotFoundError, TotpRequiredError, WeakPasswordError)
from .kdf import PasswordPool
from .lockout import DEFAULT_MAX_FAILURES, DEFAULT_WINDOW_SECONDS, MAX_NAME_KEY, LockoutTracker
from .models import ROLES, SCOPES, Principal, TokenPair
from .passwords import (check_password_strength, dummy_hash, hash_password, needs_rehash,
                        verify_password)

log = logging.getLogger(__name__)

DEFAULT_ACCESS_TTL = 15 * 60
DEFAULT_REFRESH_TTL = 30 * 86400
# A sign-in without "stay signed in on this device" (login's remember=False): the session ends
# after this long without use (and its cookies when the browser closes). With it, or from a
# client that does not say, the session lives refresh_ttl: the server's maximum either way.
SHORT_SESSION_TTL = 12 * 3600
API_TOKEN_PREFIX = "brw_"
# Caps (everything that grows has one). A home appliance has a handful of users; sessions per
# user cover a few browsers and phones (the oldest is dropped beyond it); tokens per user cover
# a few integrations.
MAX_USERS = 64
MAX_SESSIONS_PER_USER = 20
MAX_API_TOKENS_PER_USER = 32
# last_used_at of an API token is written at most this often: a script polling every second
# must not turn into a flash write per request.
TOKEN_LAST_USED_RESOLUTION = 60.0
MAX_TOKEN_LENGTH = 4096
# HTTP Basic credentials (another product's API, burrow/faces) come with every request: a
# password that matched is remembered this long, for at most this many credentials, so that a
# client polling every few seconds costs one scrypt, not one per request.
BASIC_REMEMBER_SECONDS = 300.0
MAX_BASIC_REMEMBERED = 64

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
_USERNAME = re.compile(USERNAME_PATTERN)
_USER_COLUMNS = "id, username, role, disabled, totp_enabled, created_at, last_login_at"


def _sha256(text: str) -> str:
    # surrogatepass: a token from JSON may hold a lone surrogate ("\ud800"); it must hash
    # (to something that matches nothing), not raise.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _is_unicode(text: str) -> bool:
    """False for a str holding lone surrogates (JSON allows a "\\ud800" escape; UTF-8 has no
    such character)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_new_password(password: Any, username: str) -> None:
    check_password_strength(password, username)
    if not _is_unicode(password):
        raise WeakPasswordError("password must be valid Unicode text")


def _totp_candidate(code: Any) -> str:
    """``code`` if it can be a 6-digit code or a recovery code (ASCII once spaces are gone:
    Arabic-Indic or full-width digits pass a digit regex but are no code, and comparing them
    with hmac.compare_digest raises), else "" (which matches nothing)."""
    if not isinstance(code, str) or not totp.normalise_code(code).isascii():
        return ""
    return code


def _storable_id(value: Any) -> bool:
    """True for an int SQLite can hold (64-bit signed): a larger id names no row, and
    passing it to SQLite would raise OverflowError."""
    return isinstance(value, int) and -(2 ** 63) <= value < 2 ** 63


def _public_user(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "username": row["username"], "role": row["role"],
            "disabled": bool(row["disabled"]), "totp_enabled": bool(row["totp_enabled"]),
            "created_at": row["created_at"], "last_login_at": row["last_login_at"]}


def _public_token(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "user_id": row["user_id"], "name": row["name"],
            "scope": row["scope"], "created_at": row["created_at"],
            "last_used_at": row["last_used_at"], "prefix": row["prefix"]}


def validate_username(username: Any) -> str:
    """The user name if acceptable (1-64 of letters, digits, ``._@-``, starting with a letter
    or digit); InvalidInputError("username", …) otherwise."""
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise InvalidInputError(
            "username", "must be 1-64 letters, digits or . _ @ -, starting with a letter or digit")
    return username


def validate_role(role: Any) -> str:
    if role not in ROLES:
        raise InvalidInputError("role", "must be 'admin' or 'viewer'")
    return role


class AuthService:
    """Authentication and user management for the API.

    ``AuthService(settings_db, data_dir, clock=time.time)``: ``settings_db`` is the app's
    SettingsDB (migration 2 applied), ``data_dir`` holds ``jwt.key`` (created on first use),
    ``clock`` returns unix seconds (inject a fake in tests). Keyword options set the access
    and refresh token lifetimes, the lockout rule (failures within a window, per account and
    address; ``account_max_failures`` for an account from all addresses, default 4x) and the
    password worker pool (``kdf``, a kdf.PasswordPool).

    The wall clock may jump (a board without a real-time clock is set by network time after it
    booted, burrow/clock.py). Forward: tokens issued before the jump are as old as the jump
    makes them: an access token has expired (401) and the page renews it with its refresh token
    if the jump was shorter than the session's lifetime, else the person signs in again.
    Backward (the clock was ahead): an access or refresh token issued "in the future" (beyond
    ``access.IAT_LEEWAY_SECONDS``) is refused, since its age cannot be known, so the person
    signs in again. Sign-in itself never depends on the wall clock's direction: lock-outs are
    timed by ``lockout_clock``, monotonic unless a test injects ``clock`` (then that one).
    """

    def __init__(self, settings_db, data_dir: Path, clock: Callable[[], float] = time.time, *,
                 access_ttl: int = DEFAULT_ACCESS_TTL, refresh_ttl: int = DEFAULT_REFRESH_TTL,
                 max_failures: int = DEFAULT_MAX_FAILURES,
                 lockout_window: float = DEFAULT_WINDOW_SECONDS,
                 account_max_failures: int | None = None, create_key: bool = True,
                 kdf: PasswordPool | None = None, lockout_clock: Callable[[], float] | None = None):
        self.db = settings_db
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.access_ttl = int(access_ttl)
        self.refresh_ttl = int(refresh_ttl)
        if lockout_clock is None:  # in memory only: a lock must end on time whatever the wall clock does
            lockout_clock = time.monotonic if clock is time.time else clock
        self.lockout = LockoutTracker(lockout_clock, max_failures, lockout_window,
                                      account_max_failures=account_max_failures)
        self.kdf = kdf or PasswordPool()
        # The app creates the key at start; the CLI (create_key=False) only reads it if it ever
        # needs it, so running it as another user cannot leave a key the service can't read.
        self._signing_key = access.load_or_create_key(self.data_dir) if create_key else None
        self._sink: Callable[[dict], Any] | None = None
        self._audit_key: bytes | None = None
        # basic_principal_async: HMAC(stored hash, password) → when the match is forgotten
        # (monotonic); checks running now, shared by requests with the same credentials.
        self._basic_key = secrets.token_bytes(32)
        self._basic_clock = lockout_clock  # monotonic (a test's injected clock)
        self._basic_ok: dict[bytes, float] = {}
        self._basic_checks: dict[bytes, asyncio.Future] = {}

    def close(self) -> None:
        """Stop the password workers (the app's shutdown)."""
        self.kdf.close()

    # ---- plumbing ------------------------------------------------------------------------------

    @property
    def _key(self) -> bytes:
        if self._signing_key is None:
            self._signing_key = access.load_or_create_key(self.data_dir)
        return self._signing_key

    def set_event_sink(self, sink: Callable[[dict], Any] | None) -> None:
        """Send security events to ``sink(event_dict)``. Events look like
        ``{"type": "auth.login_failed", "ts": 1700000000.0, "username": "bob",
        "client_ip": "192.168.1.5", "reason": "bad_password"}``. Types: auth.login,
        auth.login_failed (reason: unknown_user, bad_password, disabled, bad_totp),
        auth.locked_out, auth.login_refused (a login during a lockout), auth.check_refused
        (a password change or 2FA disable during one), auth.recovery_code_used,
        auth.refresh_reuse, auth.logout, auth.2fa_enabled, auth.2fa_disabled,
        auth.2fa_disable_failed, auth.password_change_failed. ``username`` is the account's
        name, or for a name that is no account "unknown:" and a keyed hash of what was typed
        (see _audit_name), never the typed text. A sink that raises is logged and ignored.
        User CRUD and token changes are not reported here: the API layer knows who did them
        and writes those audit events itself."""
        self._sink = sink

    def _emit(self, type_: str, **fields: Any) -> None:
        event = {"type": type_, "ts": self.clock(), **fields}
        log.info("%s %s", type_, {k: v for k, v in fields.items()})
        if self._sink is not None:
            try:
                self._sink(event)
            except Exception:
                log.exception("auth event sink failed for %s", type_)

    def _audit_name(self, typed: str, row: sqlite3.Row | None) -> str:
        """What an event may say about a typed user name: the account's own name when it
        exists, else "unknown:" and 12 hex digits of a keyed hash of it. The same typed name
        always gives the same value (attempts can be told apart), but the text itself —
        perhaps a password typed into the wrong field — is never logged: viewers read the
        event log. The key is derived from the JWT key, so the hash cannot be reversed by
        trying candidate texts."""
        if row is not None:
            return row["username"]
        if self._audit_key is None:
            self._audit_key = hmac.new(self._key, b"burrow audit: unknown user names",
                                       hashlib.sha256).digest()
        typed = (typed or "").strip().casefold()[:MAX_NAME_KEY]
        digest = hmac.new(self._audit_key, typed.encode("utf-8", "surrogatepass"),
                          hashlib.sha256).hexdigest()
        return f"unknown:{digest[:12]}"

    def _rows(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        # Row factory on the cursor only: the connection is shared with other services.
        cursor = self.db.conn.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(sql, params)

    def _row(self, sql: str, params: tuple = ()) -> sqlite3.Row | None:
        return self._rows(sql, params).fetchone()

    def _user_row(self, user_id: int) -> sqlite3.Row:
        row = self._row("SELECT * FROM auth_users WHERE id = ?",
                        (user_id,)) if _storable_id(user_id) else None
        if row is None:
            raise NotFoundError("no such user")
        return row

    def _enabled_admins(self, except_id: int | None = None) -> int:
        return self.db.conn.execute(
            "SELECT count(*) FROM auth_users WHERE role = 'admin' AND disabled = 0 AND id != ?",
            (-1 if except_id is None else except_id,)).fetchone()[0]

    def _revoke_user_sessions(self, conn: sqlite3.Connection, user_id: int, now: float) -> None:
        conn.execute("UPDATE auth_sessions SET revoked_at = ? "
                     "WHERE user_id = ? AND revoked_at IS NULL", (now, user_id))
        conn.execute("DELETE FROM auth_refresh_tokens WHERE user_id = ?", (user_id,))

    # ---- users ---------------------------------------------------------------------------------

    def has_users(self) -> bool:
        """True once any user exists (first-run setup is closed from then on)."""
        return self.db.conn.execute("SELECT 1 FROM auth_users LIMIT 1").fetchone() is not None

    def _user_now(self, user_id: int | None) -> dict:
        """The public dict of a user this service has just written or read: it exists."""
        user = None if user_id is None else self.get_user(user_id)
        assert user is not None
        return user

    def get_user(self, id_or_name: int | str) -> dict | None:
        """The public dict of a user by id (int) or name (str, case-insensitive), or None."""
        if isinstance(id_or_name, int) and not isinstance(id_or_name, bool):
            if not _storable_id(id_or_name):
                return None  # /api/users/<huge number>: no such user (SQLite ints are 64-bit)
            row = self._row(f"SELECT {_USER_COLUMNS} FROM auth_users WHERE id = ?", (id_or_name,))
        elif isinstance(id_or_name, str):
            row = self._row(f"SELECT {_USER_COLUMNS} FROM auth_users WHERE username = ?",
                            (id_or_name,))
        else:
            return None
        return None if row is None else _public_user(row)

    def list_users(self) -> list[dict]:
        """Every user's public dict, by id."""
        return [_public_user(r) for r in
                self._rows(f"SELECT {_USER_COLUMNS} FROM auth_users ORDER BY id")]

    def create_user(self, username: str, password: str, role: str) -> dict:
        """Create a user; return its public dict.

        Raises InvalidInputError (bad name or role), WeakPasswordError, ConflictError (name
        taken, ignoring case, or MAX_USERS reached).
        """
        self._create_check(username, password, role)
        password_hash = self.kdf.call(hash_password, password)
        return self._insert_user(username, password_hash, role, only_if_first=False)

    async def create_user_async(self, username: str, password: str, role: str, *,
                                client_ip: str | None = None) -> dict:
        """``create_user`` with scrypt in the password pool (PasswordBusyError when full);
        same results and errors. The name is checked again when the row is inserted (another
        request may have taken it)."""
        self._create_check(username, password, role)
        password_hash = await self.kdf.run(hash_password, password, client=client_ip)
        return self._insert_user(username, password_hash, role, only_if_first=False)

    def _create_check(self, username: Any, password: Any, role: Any) -> None:
        validate_username(username)
        validate_role(role)
        _check_new_password(password, username)
        if self.get_user(username) is not None:
            raise ConflictError(f"user {username!r} already exists")

    def setup_first_admin(self, username: str, password: str) -> dict:
        """Create the first user, an admin, while no user exists; ConflictError afterwards.
        (The API also restricts this to the allowed local networks.)"""
        self._setup_check(username, password)
        password_hash = self.kdf.call(hash_password, password)
        return self._insert_user(username, password_hash, "admin", only_if_first=True)

    async def setup_first_admin_async(self, username: str, password: str, *,
                                      client_ip: str | None = None) -> dict:
        """``setup_first_admin`` with scrypt in the password pool; same results and errors.
        Two concurrent setups both hash, but the insert (one transaction that counts the
        users first) lets only one of them in; the other gets ConflictError."""
        self._setup_check(username, password)
        password_hash = await self.kdf.run(hash_password, password, client=client_ip)
        return self._insert_user(username, password_hash, "admin", only_if_first=True)

    def _setup_check(self, username: Any, password: Any) -> None:
        if self.has_users():
            raise ConflictError("setup is already done")
        validate_username(username)
        _check_new_password(password, username)

    def _insert_user(self, username: str, password_hash: str, role: str, *,
                     only_if_first: bool) -> dict:
        now = self.clock()
        try:
            with self.db.transaction() as conn:
                count = conn.execute("SELECT count(*) FROM auth_users").fetchone()[0]
                if only_if_first and count:
                    raise ConflictError("setup is already done")
                if count >= MAX_USERS:
                    raise ConflictError(f"at most {MAX_USERS} users")
                cursor = conn.execute(
                    "INSERT INTO auth_users (username, password_hash, role, created_at, "
                    "password_changed_at) VALUES (?, ?, ?, ?, ?)",
                    (username, password_hash, role, now, now))
        except sqlite3.IntegrityError as e:
            raise ConflictError(f"user {username!r} already exists") from e
        log.info("created user %r (%s)", username, role)
        return self._user_now(cursor.lastrowid)

    def update_user(self, user_id: int, *, role: str | None = None, password: str | None = None,
                    disabled: bool | None = None) -> dict:
        """Change a user's role, password and/or disabled flag; return the public dict.

        A new password (strength-checked) and disabling both revoke the user's sessions and
        refresh tokens (API tokens stay; revoke those separately). Demoting or disabling the
        last enabled admin raises ConflictError; NotFoundError if there is no such user.
        """
        self._update_check(user_id, role, password, disabled)
        password_hash = None if password is None else self.kdf.call(hash_password, password)
        return self._update_apply(user_id, role, disabled, password_hash)

    async def update_user_async(self, user_id: int, *, role: str | None = None,
                                password: str | None = None, disabled: bool | None = None,
                                client_ip: str | None = None) -> dict:
        """``update_user`` with scrypt in the password pool; same results and errors. The
        user and the last-admin rule are checked again after hashing (things may have
        changed)."""
        self._update_check(user_id, role, password, disabled)
        password_hash = None if password is None else await self.kdf.run(
            hash_password, password, client=client_ip)
        return self._update_apply(user_id, role, disabled, password_hash)

    def _update_check(self, user_id: int, role: Any, password: Any, disabled: Any) -> sqlite3.Row:
        """Every check of update_user that needs no hash; the user's row."""
        row = self._user_row(user_id)
        if role is not None:
            validate_role(role)
        if disabled is not None and not isinstance(disabled, bool):
            raise InvalidInputError("disabled", "must be true or false")
        loses_admin = row["role"] == "admin" and not row["disabled"] and (
            (role is not None and role != "admin") or disabled is True)
        if loses_admin and self._enabled_admins(except_id=user_id) == 0:
            raise ConflictError("this is the last enabled admin")
        if password is not None:
            _check_new_password(password, row["username"])
        return row

    def _update_apply(self, user_id: int, role: str | None, disabled: bool | None,
                      password_hash: str | None) -> dict:
        """Write update_user's changes (the checks without a password run again, so a user
        deleted or an admin demoted while a hash was computed is still caught)."""
        self._update_check(user_id, role, None, disabled)
        now = self.clock()
        with self.db.transaction() as conn:
            if role is not None:
                conn.execute("UPDATE auth_users SET role = ? WHERE id = ?", (role, user_id))
            if disabled is not None:
                conn.execute("UPDATE auth_users SET disabled = ? WHERE id = ?",
                             (int(disabled), user_id))
            if password_hash is not None:
                conn.execute("UPDATE auth_users SET password_hash = ?, password_changed_at = ? "
                             "WHERE id = ?", (password_hash, now, user_id))
            if password_hash is not None or disabled:
                self._revoke_user_sessions(conn, user_id, now)
        return self._user_now(user_id)

    def change_password(self, user_id: int, current_password: str, new_password: str,
                        client_ip: str | None = None) -> dict:
        """A user changing their own password: the current one must be right (else
        InvalidInputError on "current_password", counted like a failed login, so a stolen
        session cannot guess it at leisure). Revokes all the user's sessions, like update_user."""
        row = self._password_change_begin(user_id, client_ip)
        ok = self.kdf.call(verify_password, row["password_hash"], _as_password(current_password))
        self._password_change_checked(row, ok, client_ip)
        return self.update_user(user_id, password=new_password)

    async def change_password_async(self, user_id: int, current_password: str,
                                    new_password: str, client_ip: str | None = None) -> dict:
        """``change_password`` with both scrypt steps (checking the current password, hashing
        the new one) in the password pool; same results and errors."""
        row = self._password_change_begin(user_id, client_ip)
        ok = await self.kdf.run(verify_password, row["password_hash"],
                                _as_password(current_password), client=client_ip)
        self._password_change_checked(row, ok, client_ip)
        return await self.update_user_async(user_id, password=new_password, client_ip=client_ip)

    def _password_change_begin(self, user_id: int, client_ip: str | None) -> sqlite3.Row:
        row = self._user_row(user_id)
        self._check_not_locked(row, client_ip)
        return row

    def _password_change_checked(self, row: sqlite3.Row, ok: bool,
                                 client_ip: str | None) -> None:
        if not ok:
            self._count_failure(row, client_ip, "auth.password_change_failed")
            raise InvalidInputError("current_password", "is not correct")
        self.lockout.record_success(row["username"], client_ip)

    def _check_not_locked(self, row: sqlite3.Row, client_ip: str | None) -> None:
        """LockedOutError while the account is locked for this address (a signed-in user
        proving themselves again: own password change, 2FA disable)."""
        wait = self.lockout.retry_after(row["username"], client_ip)
        if wait > 0:
            self._emit("auth.check_refused", username=row["username"], user_id=row["id"],
                       client_ip=client_ip, retry_after=int(wait))
            raise LockedOutError(wait)

    def _count_failure(self, row: sqlite3.Row, client_ip: str | None, type_: str) -> None:
        """A wrong password or code from a signed-in user: counted like a failed login."""
        locked = self.lockout.record_failure(row["username"], client_ip)
        self._emit(type_, username=row["username"], user_id=row["id"], client_ip=client_ip)
        if locked:
            self._emit("auth.locked_out", username=row["username"], user_id=row["id"],
                       client_ip=client_ip, retry_after=int(locked))

    def delete_user(self, user_id: int) -> None:
        """Delete a user with their sessions, tokens and 2FA data. Refuses (ConflictError) to
        delete the last enabled admin; NotFoundError if there is no such user."""
        row = self._user_row(user_id)
        if row["role"] == "admin" and not row["disabled"] \
                and self._enabled_admins(except_id=user_id) == 0:
            raise ConflictError("cannot delete the last enabled admin")
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM auth_users WHERE id = ?", (user_id,))
        log.info("deleted user %r", row["username"])

    # ---- login ---------------------------------------------------------------------------------

    def session_ttl(self, remember: bool | None) -> int:
        """Seconds a new session lives without use: ``refresh_ttl`` (the server's maximum)
        unless ``remember`` is False, then at most SHORT_SESSION_TTL."""
        return self.refresh_ttl if remember is not False else min(self.refresh_ttl, SHORT_SESSION_TTL)

    def login(self, username: str, password: str, totp_code: str | None = None,
              client_ip: str | None = None, remember: bool | None = None) -> TokenPair:
        """Check credentials and start a session; return its TokenPair.

        Raises LockedOutError(retry_after) while the account or ``client_ip`` is locked out
        (even with the right password), AuthError for a wrong name/password/code (the same
        error and about the same time whether or not the user exists), TotpRequiredError when
        the password is right, 2FA is on and ``totp_code`` is None. ``totp_code`` may also be
        an unused recovery code. ``remember``: see :meth:`session_ttl`.
        """
        attempt = self._login_begin(username, client_ip)
        checked = self.kdf.call(self._check_password, attempt["stored"], password)
        return self._login_finish(attempt, checked, totp_code, client_ip, remember)

    async def login_async(self, username: str, password: str, totp_code: str | None = None,
                          client_ip: str | None = None, remember: bool | None = None) -> TokenPair:
        """``login`` with the scrypt work in the password pool (PasswordBusyError when it is
        full: nothing checked, nothing counted); the SQLite parts stay on the loop thread.
        Same results and errors otherwise."""
        attempt = self._login_begin(username, client_ip)
        checked = await self.kdf.run(self._check_password, attempt["stored"], password,
                                     client=client_ip)
        return self._login_finish(attempt, checked, totp_code, client_ip, remember)

    def _login_begin(self, username: Any, client_ip: str | None) -> dict:
        # Names are at most 64 characters; truncating bounds the lockout table's keys.
        name = username[:128] if isinstance(username, str) else ""
        if not _is_unicode(name):  # lone surrogates: no such user, and SQLite can't take it
            name = name.encode("utf-8", "replace").decode("utf-8")
        # Made on the first attempt (not the first unknown name), so that one is not slower.
        fallback = dummy_hash()
        row = self._row("SELECT id, username, password_hash FROM auth_users WHERE username = ?",
                        (name,)) if name else None
        wait = self.lockout.retry_after(name, client_ip)
        if wait > 0:
            self._emit("auth.login_refused", username=self._audit_name(name, row),
                       client_ip=client_ip, retry_after=int(wait))
            raise LockedOutError(wait)
        # Unknown users are checked against a dummy hash so they cost the same time.
        return {"username": name, "user_id": None if row is None else row["id"],
                "stored": fallback if row is None else row["password_hash"]}

    @staticmethod
    def _check_password(stored: str, password: Any) -> tuple[bool, str | None]:
        """(matches, new hash if the stored one uses old parameters). Pure CPU; thread-safe."""
        ok = verify_password(stored, password if isinstance(password, str) else "")
        return ok, (hash_password(password) if ok and needs_rehash(stored) else None)

    def _fail(self, username: str, client_ip: str | None, reason: str,
              row: sqlite3.Row | None = None) -> AuthError:
        """Count a failed login for the typed ``username``; events name the account (``row``)
        or, for an unknown name, only its keyed hash."""
        locked = self.lockout.record_failure(username, client_ip)
        shown = self._audit_name(username, row)
        user_id = None if row is None else row["id"]
        self._emit("auth.login_failed", username=shown, user_id=user_id,
                   client_ip=client_ip, reason=reason)
        if locked:
            self._emit("auth.locked_out", username=shown, user_id=user_id,
                       client_ip=client_ip, retry_after=int(locked))
        return AuthError()

    def _login_finish(self, attempt: dict, checked: tuple[bool, str | None],
                      totp_code: str | None, client_ip: str | None,
                      remember: bool | None = None) -> TokenPair:
        name, user_id = attempt["username"], attempt["user_id"]
        ok, new_hash = checked
        if isinstance(totp_code, int) and not isinstance(totp_code, bool):
            totp_code = f"{totp_code:06d}"  # {"totp": 123456} from a script's JSON
        row = None if user_id is None else self._row("SELECT * FROM auth_users WHERE id = ?",
                                                     (user_id,))
        if row is None:  # unknown name (or deleted while we hashed)
            raise self._fail(name, client_ip, "unknown_user")
        if not ok:
            raise self._fail(name, client_ip, "bad_password", row)
        if row["disabled"]:
            raise self._fail(name, client_ip, "disabled", row)
        if row["totp_enabled"] and (totp_code is None
                                    or (isinstance(totp_code, str) and not totp_code.strip())):
            raise TotpRequiredError()
        now = self.clock()
        try:
            with self.db.transaction() as conn:
                if row["totp_enabled"] and not self._accept_second_factor(conn, row, totp_code,
                                                                          now):
                    raise _SecondFactorFailed()  # rolls the transaction back
                if new_hash is not None:
                    conn.execute("UPDATE auth_users SET password_hash = ? WHERE id = ?",
                                 (new_hash, user_id))
                conn.execute("UPDATE auth_users SET last_login_at = ? WHERE id = ?",
                             (now, user_id))
                pair = self._start_session(conn, row, client_ip, now, self.session_ttl(remember),
                                           persistent=remember is not False)
        except _SecondFactorFailed:
            raise self._fail(name, client_ip, "bad_totp", row) from None
        self.lockout.record_success(name, client_ip)
        self._emit("auth.login", username=row["username"], user_id=user_id, client_ip=client_ip,
                   via_2fa=bool(row["totp_enabled"]))
        return pair

    # A name for the lockout's account key: the Pi-hole face's sign-in has a password and no name.
    ADMIN_PASSWORD_ACCOUNT = "(any admin password)"

    async def check_admin_password_async(self, password: Any, totp_code: Any,
                                         client_ip: str | None) -> dict:
        """The enabled admin whose password ``password`` is (another product's one-password
        sign-in: the Pi-hole face, burrow/faces/pihole); their public dict.

        Each enabled admin's hash is tried in the password pool (a dummy one when there is none,
        so the time says nothing). Failures count toward the lockout under the typed-nothing
        account :attr:`ADMIN_PASSWORD_ACCOUNT` and ``client_ip``. Raises LockedOutError,
        AuthError (wrong password; bad or reused code), TotpRequiredError when the password is
        right, the admin has 2FA and no code came; PasswordBusyError when the pool is full.
        Starts no session: the caller keeps its own."""
        name = self.ADMIN_PASSWORD_ACCOUNT
        wait = self.lockout.retry_after(name, client_ip)
        if wait > 0:
            self._emit("auth.login_refused", username=name, client_ip=client_ip, retry_after=int(wait))
            raise LockedOutError(wait)
        admins = self._rows("SELECT id, password_hash FROM auth_users WHERE role = 'admin' "
                            "AND disabled = 0 ORDER BY id").fetchall()
        found = None
        for admin in admins or [{"id": None, "password_hash": dummy_hash()}]:
            ok, _rehash = await self.kdf.run(self._check_password, admin["password_hash"], password,
                                             client=client_ip)
            if ok and admin["id"] is not None:
                found = admin["id"]
                break
        row = None if found is None else self._row("SELECT * FROM auth_users WHERE id = ?", (found,))
        if row is None or row["disabled"] or row["role"] != "admin":
            raise self._fail(name, client_ip, "bad_password")
        if row["totp_enabled"]:
            if totp_code is None or (isinstance(totp_code, str) and not totp_code.strip()):
                raise TotpRequiredError()
            if isinstance(totp_code, int) and not isinstance(totp_code, bool):
                totp_code = f"{totp_code:06d}"
            try:
                with self.db.transaction() as conn:
                    if not self._accept_second_factor(conn, row, totp_code, self.clock()):
                        raise _SecondFactorFailed()
            except _SecondFactorFailed:
                self._fail(name, client_ip, "bad_totp", row)
                raise AuthError("invalid 2FA code") from None
        self.lockout.record_success(name, client_ip)
        self._emit("auth.login", username=row["username"], user_id=row["id"], client_ip=client_ip,
                   via_2fa=bool(row["totp_enabled"]), via="pihole")
        return self._user_now(row["id"])

    def _accept_second_factor(self, conn: sqlite3.Connection, row: sqlite3.Row, code: Any,
                              now: float) -> bool:
        """Accept a TOTP code (newer step than the last one used) or an unused recovery code,
        recording its use in ``conn``'s transaction."""
        code = _totp_candidate(code)
        if not code:
            return False
        if totp.looks_like_totp(code):
            return self._accept_totp(conn, row, code, now)
        used = conn.execute(
            "UPDATE auth_recovery_codes SET used_at = ? "
            "WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
            (now, row["id"], totp.hash_recovery_code(code))).rowcount
        if used:
            left = conn.execute("SELECT count(*) FROM auth_recovery_codes "
                                "WHERE user_id = ? AND used_at IS NULL", (row["id"],)).fetchone()[0]
            self._emit("auth.recovery_code_used", username=row["username"], user_id=row["id"],
                       remaining=left)
        return bool(used)

    def _accept_totp(self, conn: sqlite3.Connection, row: sqlite3.Row, code: str,
                     now: float) -> bool:
        step = totp.verify(row["totp_secret"], code, now=now, last_step=row["totp_last_step"])
        if step is None:
            return False
        # Conditional update: if another request used this step meanwhile, we lose.
        return conn.execute(
            "UPDATE auth_users SET totp_last_step = ? WHERE id = ? "
            "AND (totp_last_step IS NULL OR totp_last_step < ?)",
            (step, row["id"], step)).rowcount == 1

    # ---- sessions and tokens -------------------------------------------------------------------

    def _start_session(self, conn: sqlite3.Connection, row: sqlite3.Row, client_ip: str | None,
                       now: float, ttl: int | None = None,
                       persistent: bool | None = None) -> TokenPair:
        ttl = self.refresh_ttl if ttl is None else ttl
        user_id = row["id"]
        # Forget finished sessions (their refresh tokens go with them: ON DELETE CASCADE).
        conn.execute("DELETE FROM auth_sessions WHERE user_id = ? "
                     "AND (revoked_at IS NOT NULL OR expires_at <= ?)", (user_id, now))
        extra = conn.execute("SELECT id FROM auth_sessions WHERE user_id = ? "
                             "ORDER BY created_at DESC LIMIT -1 OFFSET ?",
                             (user_id, MAX_SESSIONS_PER_USER - 1)).fetchall()
        conn.executemany("DELETE FROM auth_sessions WHERE id = ?", extra)
        session_id, family_id = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        conn.execute("INSERT INTO auth_sessions (id, user_id, family_id, client_ip, created_at, "
                     "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                     (session_id, user_id, family_id, client_ip, now, now + ttl))
        refresh_token = self._new_refresh_token(conn, family_id, session_id, user_id, now, ttl)
        return self._pair(row, session_id, refresh_token, now, ttl, persistent)

    def _new_refresh_token(self, conn: sqlite3.Connection, family_id: str, session_id: str,
                           user_id: int, now: float, ttl: int) -> str:
        """A refresh token living ``ttl`` seconds: its expires_at - issued_at is the session's
        lifetime, which each refresh carries over (so a short session stays short)."""
        token = secrets.token_urlsafe(32)
        conn.execute("INSERT INTO auth_refresh_tokens (token_hash, family_id, session_id, "
                     "user_id, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                     (_sha256(token), family_id, session_id, user_id, now, now + ttl))
        return token

    def _pair(self, row: sqlite3.Row, session_id: str, refresh_token: str,
              now: float, ttl: int, persistent: bool | None = None) -> TokenPair:
        """``persistent``: the browser keeps the cookies past closing; by default a session
        that lives longer than a short one (or the server's maximum, when that is short)."""
        if persistent is None:
            persistent = ttl > SHORT_SESSION_TTL or ttl >= self.refresh_ttl
        access_token = access.encode_access(self._key, user_id=row["id"], role=row["role"],
                                            session_id=session_id, now=now, ttl=self.access_ttl)
        user = self._user_now(row["id"])
        return TokenPair(access_token=access_token, refresh_token=refresh_token,
                         expires_in=self.access_ttl, session_id=session_id, user=user,
                         session_ttl=ttl, persistent=persistent)

    def refresh(self, refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair; the old refresh token is spent.

        Presenting a spent token again means it was copied: the whole family and its session
        are revoked (event "auth.refresh_reuse") and AuthError raised. AuthError also for
        unknown, expired or revoked tokens and for deleted or disabled users.
        """
        if not isinstance(refresh_token, str) or not 0 < len(refresh_token) <= MAX_TOKEN_LENGTH:
            raise AuthError("invalid refresh token")
        now = self.clock()
        row = self._row(
            "SELECT t.token_hash, t.family_id, t.session_id, t.user_id, t.issued_at, t.expires_at, t.used_at, "
            "s.revoked_at FROM auth_refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id "
            "WHERE t.token_hash = ?", (_sha256(refresh_token),))
        if row is None:
            raise AuthError("invalid refresh token")
        if row["used_at"] is not None:
            self._revoke_family(row["family_id"], now)
            user = self.get_user(row["user_id"])
            self._emit("auth.refresh_reuse", user_id=row["user_id"],
                       username=user["username"] if user else None)
            raise AuthError("refresh token was already used; session revoked")
        if row["revoked_at"] is not None or row["expires_at"] <= now:
            raise AuthError("refresh token expired or revoked")
        if row["issued_at"] > now + access.IAT_LEEWAY_SECONDS:
            # Issued by a clock that was ahead (it has been set back since): its age is unknown,
            # so its lifetime cannot be bounded. Sign in again.
            raise AuthError("refresh token expired or revoked")
        user_row = self._row("SELECT * FROM auth_users WHERE id = ?", (row["user_id"],))
        if user_row is None or user_row["disabled"]:
            raise AuthError("invalid refresh token")
        # The session's own lifetime (short or remembered), never more than the server's maximum.
        ttl = max(1, min(self.refresh_ttl, round(row["expires_at"] - row["issued_at"])))
        with self.db.transaction() as conn:
            spent = conn.execute("UPDATE auth_refresh_tokens SET used_at = ? "
                                 "WHERE token_hash = ? AND used_at IS NULL",
                                 (now, row["token_hash"])).rowcount
            if not spent:
                raise AuthError("invalid refresh token")
            new_token = self._new_refresh_token(conn, row["family_id"], row["session_id"],
                                                row["user_id"], now, ttl)
            conn.execute("UPDATE auth_sessions SET expires_at = ? WHERE id = ?",
                         (now + ttl, row["session_id"]))
        return self._pair(user_row, row["session_id"], new_token, now, ttl)

    def _revoke_family(self, family_id: str, now: float) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE auth_sessions SET revoked_at = ? "
                         "WHERE family_id = ? AND revoked_at IS NULL", (now, family_id))
            # Keep the rows (used or not): every later use is then refused too.
            conn.execute("UPDATE auth_refresh_tokens SET used_at = coalesce(used_at, ?) "
                         "WHERE family_id = ?", (now, family_id))

    def logout(self, session_id: str) -> None:
        """Revoke a session and its refresh-token family. Unknown or already revoked sessions
        are fine (logging out twice is not an error)."""
        row = self._row("SELECT s.family_id, s.user_id, u.username FROM auth_sessions s "
                        "JOIN auth_users u ON u.id = s.user_id WHERE s.id = ?", (session_id,))
        if row is None:
            return
        now = self.clock()
        with self.db.transaction() as conn:
            revoked = conn.execute("UPDATE auth_sessions SET revoked_at = ? "
                                   "WHERE id = ? AND revoked_at IS NULL",
                                   (now, session_id)).rowcount
            conn.execute("DELETE FROM auth_refresh_tokens WHERE family_id = ?",
                         (row["family_id"],))
        if revoked:
            self._emit("auth.logout", username=row["username"], user_id=row["user_id"])

    # ---- authenticating requests ---------------------------------------------------------------

    def authenticate(self, authorization_header: str | None,
                     cookie_token: str | None) -> Principal | None:
        """Who is calling: from ``Authorization: Bearer brw_…`` (API token), ``Bearer <jwt>``
        (access token), or else the access token from the cookie (via="cookie").

        None when no credentials were sent; AuthError when some were sent but are invalid
        (a header with another scheme too). The header wins over the cookie.
        """
        if authorization_header and authorization_header.strip():
            scheme, _, credential = authorization_header.strip().partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer" or not credential:
                raise AuthError("use Authorization: Bearer <token>")
            if credential.startswith(API_TOKEN_PREFIX):
                return self.authenticate_api_token(credential)
            return self._jwt_principal(credential, via="jwt")
        if cookie_token:
            return self._jwt_principal(cookie_token, via="cookie")
        return None

    def authenticate_bearer(self, token: str) -> Principal:
        """The Principal for a JWT access token (via="jwt"); AuthError unless the signature
        (HS256, our key), typ, expiry, session (not revoked) and user (exists, enabled) hold."""
        return self._jwt_principal(token, via="jwt")

    def _jwt_principal(self, token: str, via: str) -> Principal:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise AuthError("invalid access token")
        claims = access.decode_access(self._key, token, now=self.clock())
        try:
            user_id = int(claims["sub"])
        except (TypeError, ValueError):
            raise AuthError("invalid access token") from None
        if not _storable_id(user_id):  # validly signed but names no row: SQLite would overflow
            raise AuthError("invalid access token")
        row = self._row(
            "SELECT s.revoked_at, u.id, u.username, u.role, u.disabled FROM auth_sessions s "
            "JOIN auth_users u ON u.id = s.user_id WHERE s.id = ? AND u.id = ?",
            (str(claims["sid"]), user_id))
        if row is None or row["revoked_at"] is not None or row["disabled"]:
            raise AuthError("session revoked or user unknown")
        # The role comes from the database, not the token: a demotion applies at once.
        return Principal(user_id=row["id"], username=row["username"], role=row["role"], via=via,
                         scope="admin" if row["role"] == "admin" else "read",
                         session_id=str(claims["sid"]))

    def authenticate_api_token(self, plaintext: str) -> Principal:
        """The Principal for an API token (via="token", its scope); AuthError if unknown,
        revoked or its user is disabled. Records last use at most once a minute."""
        if not isinstance(plaintext, str) or not plaintext.startswith(API_TOKEN_PREFIX) \
                or len(plaintext) > MAX_TOKEN_LENGTH:
            raise AuthError("invalid API token")
        row = self._row(
            "SELECT t.id, t.scope, t.last_used_at, u.id AS user_id, u.username, u.role, "
            "u.disabled FROM auth_api_tokens t JOIN auth_users u ON u.id = t.user_id "
            "WHERE t.token_hash = ?", (_sha256(plaintext),))
        if row is None or row["disabled"]:
            raise AuthError("invalid API token")
        now = self.clock()
        if row["last_used_at"] is None or now - row["last_used_at"] >= TOKEN_LAST_USED_RESOLUTION:
            with self.db.transaction() as conn:
                conn.execute("UPDATE auth_api_tokens SET last_used_at = ? WHERE id = ?",
                             (now, row["id"]))
        return Principal(user_id=row["user_id"], username=row["username"], role=row["role"],
                         via="token", scope=row["scope"], token_id=row["id"])

    async def basic_principal_async(self, username: str, password: str,
                                    client_ip: str | None = None) -> Principal:
        """The caller of HTTP Basic credentials (another product's API, burrow/faces): any name
        with an API token as the password (as :meth:`authenticate_api_token`), or a user's name
        and password. No session is made.

        A password is checked as a login's is: LockedOutError while the account or address is
        locked, and each failure counted (and reported) by the lockout; scrypt runs in the
        password pool (PasswordBusyError when it is full). AuthError for a wrong name or
        password, a disabled user, and a user with 2FA on (a password alone does not sign them
        in: they use an API token). A match is remembered for BASIC_REMEMBER_SECONDS, keyed by
        an HMAC of the stored hash and the password: a changed password (a new hash) or a
        disabled user is never let in from it. Requests with the same credentials at the same
        moment share one check."""
        if password.startswith(API_TOKEN_PREFIX):
            return self.authenticate_api_token(password)
        attempt = self._login_begin(username, client_ip)  # LockedOutError; the dummy hash for no user
        row = None if attempt["user_id"] is None else self._row(
            "SELECT * FROM auth_users WHERE id = ?", (attempt["user_id"],))
        stored = row["password_hash"] if row is not None else attempt["stored"]
        key = hmac.new(self._basic_key, stored.encode() + b"\0" + password.encode("utf-8", "surrogatepass"),
                       hashlib.sha256).digest()
        now = self._basic_clock()
        if self._basic_ok.get(key, float("-inf")) > now:
            matched = True
        else:
            self._basic_ok.pop(key, None)
            check = self._basic_checks.get(key)
            if check is None:
                check = asyncio.ensure_future(self.kdf.run(verify_password, stored, password, client=client_ip))
                self._basic_checks[key] = check
                check.add_done_callback(lambda _f: self._basic_checks.pop(key, None))
            matched = await asyncio.shield(check)
        if row is None:
            raise self._fail(attempt["username"], client_ip, "unknown_user")
        if not matched:
            raise self._fail(attempt["username"], client_ip, "bad_password", row)
        if row["disabled"]:
            raise self._fail(attempt["username"], client_ip, "disabled", row)
        if row["totp_enabled"]:
            raise self._fail(attempt["username"], client_ip, "2fa_needs_token", row)
        if key not in self._basic_ok:
            while len(self._basic_ok) >= MAX_BASIC_REMEMBERED:
                self._basic_ok.pop(next(iter(self._basic_ok)))
            self._basic_ok[key] = now + BASIC_REMEMBER_SECONDS
            self.lockout.record_success(attempt["username"], client_ip)
        return Principal(user_id=row["id"], username=row["username"], role=row["role"], via="basic",
                         scope="admin" if row["role"] == "admin" else "read")

    # ---- API tokens ----------------------------------------------------------------------------

    def create_api_token(self, user_id: int, name: str, scope: str) -> tuple[str, dict]:
        """Create an API token for ``user_id``; return (plaintext, public dict).

        The plaintext ("brw_…") is shown once and stored only as sha256. ``scope`` is "read"
        or "admin"; a viewer asking for "admin" gets ForbiddenError. InvalidInputError for a
        bad name (1-64 printable characters) or scope; ConflictError for a duplicate name or
        too many tokens; NotFoundError for an unknown user.
        """
        user = self._user_row(user_id)
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64 \
                or not name.strip().isprintable():
            raise InvalidInputError("name", "must be 1-64 printable characters")
        name = name.strip()
        if scope not in SCOPES:
            raise InvalidInputError("scope", "must be 'read' or 'admin'")
        if scope == "admin" and user["role"] != "admin":
            raise ForbiddenError("only admins can create admin-scoped tokens")
        if user["disabled"]:
            raise ForbiddenError("the user is disabled")
        plaintext = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self.db.transaction() as conn:
            names = [r[0] for r in conn.execute(
                "SELECT name FROM auth_api_tokens WHERE user_id = ?", (user_id,))]
            if name in names:
                raise ConflictError(f"a token named {name!r} already exists")
            if len(names) >= MAX_API_TOKENS_PER_USER:
                raise ConflictError(f"at most {MAX_API_TOKENS_PER_USER} tokens per user")
            cursor = conn.execute(
                "INSERT INTO auth_api_tokens (user_id, name, scope, token_hash, prefix, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, name, scope, _sha256(plaintext), plaintext[:8], now))
        row = self._row("SELECT * FROM auth_api_tokens WHERE id = ?", (cursor.lastrowid,))
        assert row is not None  # just written
        return plaintext, _public_token(row)

    def list_api_tokens(self, user_id: int | None = None) -> list[dict]:
        """Public dicts of one user's tokens, or everyone's when ``user_id`` is None."""
        if user_id is None:
            rows = self._rows("SELECT * FROM auth_api_tokens ORDER BY id")
        else:
            rows = self._rows("SELECT * FROM auth_api_tokens WHERE user_id = ? ORDER BY id",
                              (user_id,))
        return [_public_token(r) for r in rows]

    def revoke_api_token(self, token_id: int, *, user_id: int | None = None) -> None:
        """Delete a token so it stops working at once. With ``user_id``, only that user's
        token matches (for "revoke my own token"). NotFoundError if nothing matched."""
        if not _storable_id(token_id):
            raise NotFoundError("no such token")
        with self.db.transaction() as conn:
            if user_id is None:
                n = conn.execute("DELETE FROM auth_api_tokens WHERE id = ?", (token_id,)).rowcount
            else:
                n = conn.execute("DELETE FROM auth_api_tokens WHERE id = ? AND user_id = ?",
                                 (token_id, user_id)).rowcount
        if not n:
            raise NotFoundError("no such token")

    # ---- TOTP 2FA ------------------------------------------------------------------------------

    def totp_enrol(self, user_id: int) -> dict:
        """Start 2FA enrolment: a new secret (not active until confirmed) and what the phone
        needs to add it: ``{"secret", "provisioning_uri", "qr_svg"}``. Calling it again
        replaces a pending secret. ConflictError if 2FA is already on."""
        user = self._user_row(user_id)
        if user["totp_enabled"]:
            raise ConflictError("2FA is already enabled; disable it first")
        secret = totp.new_secret()
        with self.db.transaction() as conn:
            conn.execute("UPDATE auth_users SET totp_secret = ?, totp_last_step = NULL "
                         "WHERE id = ?", (secret, user_id))
        uri = totp.provisioning_uri(secret, user["username"])
        return {"secret": secret, "provisioning_uri": uri, "qr_svg": totp.qr_svg(uri)}

    def totp_pending_qr(self, user_id: int) -> str:
        """The QR code (SVG) of the enrolment :meth:`totp_enrol` started and not yet confirmed,
        so a page can show it as an image from its own origin. ConflictError when 2FA is already
        on or no enrolment is pending."""
        user = self._user_row(user_id)
        if user["totp_enabled"]:
            raise ConflictError("2FA is already enabled")
        if not user["totp_secret"]:
            raise ConflictError("start 2FA enrolment first")
        return totp.qr_svg(totp.provisioning_uri(user["totp_secret"], user["username"]))

    def totp_confirm(self, user_id: int, code: str) -> list[str]:
        """Turn 2FA on with a first valid code; return 10 recovery codes (shown once, stored
        hashed, each usable once instead of a code). InvalidInputError("code") if the code is
        wrong; ConflictError if not enrolled or already enabled."""
        user = self._user_row(user_id)
        if user["totp_enabled"]:
            raise ConflictError("2FA is already enabled")
        if not user["totp_secret"]:
            raise ConflictError("start 2FA enrolment first")
        now = self.clock()
        step = totp.verify(user["totp_secret"], _totp_candidate(code), now=now,
                           last_step=user["totp_last_step"])
        if step is None:
            raise InvalidInputError("code", "wrong or expired code")
        codes = totp.new_recovery_codes()
        with self.db.transaction() as conn:
            conn.execute("UPDATE auth_users SET totp_enabled = 1, totp_last_step = ? "
                         "WHERE id = ?", (step, user_id))
            conn.execute("DELETE FROM auth_recovery_codes WHERE user_id = ?", (user_id,))
            conn.executemany("INSERT INTO auth_recovery_codes (user_id, code_hash) VALUES (?, ?)",
                             [(user_id, totp.hash_recovery_code(c)) for c in codes])
        self._emit("auth.2fa_enabled", username=user["username"], user_id=user_id)
        return codes

    def totp_disable(self, user_id: int, code_or_password: str,
                     client_ip: str | None = None) -> None:
        """Turn 2FA off, proven by a current TOTP code, an unused recovery code or the
        password. InvalidInputError("code") if none matches, counted like a failed login
        (a session must not be an unlimited guessing oracle); LockedOutError while the
        account is locked for ``client_ip``; ConflictError if 2FA is off."""
        user, proof = self._totp_disable_begin(user_id, code_or_password, client_ip)
        ok = self._totp_disable_by_code(user, proof)
        if not ok and proof and not totp.looks_like_totp(proof):
            ok = self.kdf.call(verify_password, user["password_hash"], proof)
        self._totp_disable_finish(user, ok, client_ip)

    async def totp_disable_async(self, user_id: int, code_or_password: str,
                                 client_ip: str | None = None) -> None:
        """``totp_disable`` with the password check in the password pool; same results and
        errors (PasswordBusyError when the pool is full)."""
        user, proof = self._totp_disable_begin(user_id, code_or_password, client_ip)
        ok = self._totp_disable_by_code(user, proof)
        if not ok and proof and not totp.looks_like_totp(proof):
            ok = await self.kdf.run(verify_password, user["password_hash"], proof,
                                    client=client_ip)
        self._totp_disable_finish(user, ok, client_ip)

    def _totp_disable_begin(self, user_id: int, proof: Any,
                            client_ip: str | None) -> tuple[sqlite3.Row, str]:
        user = self._user_row(user_id)
        if not user["totp_enabled"]:
            raise ConflictError("2FA is not enabled")
        self._check_not_locked(user, client_ip)
        return user, proof if isinstance(proof, str) else ""

    def _totp_disable_by_code(self, user: sqlite3.Row, proof: str) -> bool:
        """Turn 2FA off if ``proof`` is a valid code or unused recovery code (its use and
        the change in one transaction); False otherwise."""
        if not proof:
            return False
        with self.db.transaction() as conn:
            ok = self._accept_second_factor(conn, user, proof, self.clock())
            if ok:
                self._clear_totp(conn, user["id"])
        return ok

    def _totp_disable_finish(self, user: sqlite3.Row, ok: bool, client_ip: str | None) -> None:
        if not ok:
            self._count_failure(user, client_ip, "auth.2fa_disable_failed")
            raise InvalidInputError("code", "wrong code or password")
        with self.db.transaction() as conn:  # again: a no-op if a code already did it
            self._clear_totp(conn, user["id"])
        self.lockout.record_success(user["username"], client_ip)
        self._emit("auth.2fa_disabled", username=user["username"], user_id=user["id"])

    def reset_2fa(self, username: str) -> dict:
        """Turn 2FA off without proof (the CLI, for an owner who lost the phone).
        NotFoundError if there is no such user. Returns the public dict."""
        user = self.get_user(username)
        if user is None:
            raise NotFoundError(f"no user {username!r}")
        with self.db.transaction() as conn:
            self._clear_totp(conn, user["id"])
        self._emit("auth.2fa_disabled", username=user["username"], user_id=user["id"],
                   reason="reset")
        return self._user_now(user["id"])

    def recovery_codes_left(self, user_id: int) -> int:
        """How many unused recovery codes the user has (for the 2FA settings page)."""
        return self.db.conn.execute("SELECT count(*) FROM auth_recovery_codes "
                                    "WHERE user_id = ? AND used_at IS NULL",
                                    (user_id,)).fetchone()[0]

    @staticmethod
    def _clear_totp(conn: sqlite3.Connection, user_id: int) -> None:
        conn.execute("UPDATE auth_users SET totp_enabled = 0, totp_secret = NULL, "
                     "totp_last_step = NULL WHERE id = ?", (user_id,))
        conn.execute("DELETE FROM auth_recovery_codes WHERE user_id = ?", (user_id,))


def _as_password(value: Any) -> str:
    return value if isinstance(value, str) else ""


class _SecondFactorFailed(Exception):
    """Internal: raised inside the login transaction to roll it back."""
