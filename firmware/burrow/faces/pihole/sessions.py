"""The Pi-hole face's sessions: what ``POST /api/auth`` hands out, kept in the settings DB.

Pi-hole v6 signs a client in with one password and gives it a session id (``sid``) and a CSRF
token; every later call carries the sid. A session lives ``timeout`` seconds past its last use
(Pi-hole's ``webserver.session.timeout``, 1800 s by default) and survives a restart, as
Pi-hole's own do (it keeps them in its database). At most ``max_sessions`` live at once
(``webserver.api.max_sessions``, 16): one more login is refused until one ends.

The sid is a bearer secret: only its SHA-256 is stored. The CSRF token is stored as it is: on
its own it grants nothing (it guards cookie sessions only, alongside the sid cookie).

Flash: a poller (Home Assistant asks seven questions every few seconds) must not write the
card on every call. The sliding expiry is kept in memory and written at most every
``TOUCH_RESOLUTION`` seconds, so after a power cut a session may end up to that much early.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TIMEOUT = 1800  # seconds, Pi-hole's webserver.session.timeout default
DEFAULT_MAX_SESSIONS = 16  # Pi-hole's webserver.api.max_sessions default
TOUCH_RESOLUTION = 60.0  # seconds between writes of one session's sliding expiry
MAX_SID_LENGTH = 128  # a presented sid longer than this is no sid of ours (44 characters)

# A table of the face's own (not a numbered migration of storage/settings.py: the face is
# optional and its sessions are disposable). Its name has "session" in it, so backups leave it
# out unless they include users (backup.is_user_table).
SCHEMA = """
CREATE TABLE IF NOT EXISTS pihole_sessions (
    sid_hash TEXT PRIMARY KEY,          -- sha256 of the sid, hex
    csrf TEXT NOT NULL,
    user_id INTEGER NOT NULL,           -- auth_users.id (its admin, or the API token's owner)
    token_id INTEGER,                   -- auth_api_tokens.id when signed in with an app password
    scope TEXT NOT NULL CHECK (scope IN ('admin', 'read')),
    client_ip TEXT,
    user_agent TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL            -- unix seconds; moves on with use (sliding)
)
"""


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


class SeatsExceeded(Exception):
    """Every seat is taken (``max_sessions`` live sessions)."""


@dataclass
class Session:
    """One live session. ``sid`` is only known right after :meth:`Sessions.create` or when the
    caller presented it."""

    sid: str
    csrf: str
    user_id: int
    token_id: int | None
    scope: str
    created_at: float
    expires_at: float

    def validity(self, now: float) -> int:
        """Whole seconds left unless used again."""
        return max(0, int(self.expires_at - now))


class Sessions:
    """The store. ``Sessions(settings_db, timeout=1800, max_sessions=16, clock=time.time)``."""

    def __init__(self, settings_db, *, timeout: int = DEFAULT_TIMEOUT,
                 max_sessions: int = DEFAULT_MAX_SESSIONS, clock: Callable[[], float] = time.time):
        self.db = settings_db
        self.timeout = int(timeout)
        self.max_sessions = int(max_sessions)
        self.clock = clock
        self._expiry: dict[str, float] = {}  # sid hash → sliding expiry not yet written
        with self.db.transaction() as conn:
            conn.execute(SCHEMA)

    def _row(self, sid_hash: str) -> sqlite3.Row | None:
        cursor = self.db.conn.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute("SELECT * FROM pihole_sessions WHERE sid_hash = ?", (sid_hash,)).fetchone()

    def create(self, *, user_id: int, scope: str, token_id: int | None = None,
               client_ip: str | None = None, user_agent: str | None = None) -> Session:
        """A new session; SeatsExceeded when ``max_sessions`` are live. Expired ones are
        forgotten first."""
        now = self.clock()
        sid, csrf = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
        with self.db.transaction() as conn:
            self._forget_expired(conn, now)
            live = conn.execute("SELECT count(*) FROM pihole_sessions").fetchone()[0]
            if live >= self.max_sessions:
                raise SeatsExceeded()
            conn.execute("INSERT INTO pihole_sessions (sid_hash, csrf, user_id, token_id, scope, client_ip, "
                         "user_agent, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (_hash(sid), csrf, user_id, token_id, scope, client_ip,
                          (user_agent or "")[:256], now, now + self.timeout))
        return Session(sid, csrf, user_id, token_id, scope, now, now + self.timeout)

    def _forget_expired(self, conn: sqlite3.Connection, now: float) -> None:
        # An expiry kept in memory may be later than the stored one: write those first.
        for sid_hash, expires in list(self._expiry.items()):
            conn.execute("UPDATE pihole_sessions SET expires_at = ? WHERE sid_hash = ?", (expires, sid_hash))
        self._expiry.clear()
        conn.execute("DELETE FROM pihole_sessions WHERE expires_at <= ?", (now,))

    def use(self, sid: str) -> Session | None:
        """The live session of ``sid``, its expiry moved on (sliding); None if there is none."""
        if not isinstance(sid, str) or not 0 < len(sid) <= MAX_SID_LENGTH:
            return None
        sid_hash = _hash(sid)
        row = self._row(sid_hash)
        if row is None:
            return None
        now = self.clock()
        expires = max(row["expires_at"], self._expiry.get(sid_hash, 0.0))
        if expires <= now:
            self.end(sid)
            return None
        new_expiry = now + self.timeout
        if new_expiry - row["expires_at"] >= TOUCH_RESOLUTION:
            with self.db.transaction() as conn:
                conn.execute("UPDATE pihole_sessions SET expires_at = ? WHERE sid_hash = ?",
                             (new_expiry, sid_hash))
            self._expiry.pop(sid_hash, None)
        else:
            self._expiry[sid_hash] = new_expiry
        return Session(sid, row["csrf"], row["user_id"], row["token_id"], row["scope"],
                       row["created_at"], new_expiry)

    def end(self, sid: str) -> bool:
        """End the session of ``sid``; whether there was one."""
        if not isinstance(sid, str) or not 0 < len(sid) <= MAX_SID_LENGTH:
            return False
        sid_hash = _hash(sid)
        self._expiry.pop(sid_hash, None)
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM pihole_sessions WHERE sid_hash = ?", (sid_hash,)).rowcount > 0

    def count(self) -> int:
        """Live sessions."""
        now = self.clock()
        return self.db.conn.execute("SELECT count(*) FROM pihole_sessions WHERE expires_at > ?",
                                    (now,)).fetchone()[0]

    def flush(self) -> None:
        """Write the sliding expiries kept in memory (at stop)."""
        if self._expiry:
            with self.db.transaction() as conn:
                for sid_hash, expires in self._expiry.items():
                    conn.execute("UPDATE pihole_sessions SET expires_at = ? WHERE sid_hash = ?",
                                 (expires, sid_hash))
            self._expiry.clear()
