"""``burrow user add|passwd|reset-2fa``: account rescue from a shell on the box.

The functions work on ``<data_dir>/settings.db`` directly (the running service may have it
open; WAL and the busy timeout make that safe) and raise the auth errors on bad input.
``cmd_user`` is the argparse entry point: passwords are read with getpass (asked twice) or,
with ``--password-stdin``, as one line from stdin, never from the command line (it would show
in ``ps`` and the shell history).

Lockout counts live in the running service's memory: after ``passwd`` a locked-out account
can log in once its lockout window (15 minutes by default) has passed.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from ..storage.settings import SettingsDB
from .errors import AuthServiceError, NotFoundError
from .service import AuthService


def _open(data_dir: Path) -> tuple[SettingsDB, AuthService]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist")
    db = SettingsDB(data_dir / "settings.db")
    return db, AuthService(db, data_dir, create_key=False)


def add_user(data_dir: Path, username: str, role: str, password: str) -> dict:
    """Create a user (role "admin" or "viewer"); return its public dict."""
    db, auth = _open(data_dir)
    try:
        return auth.create_user(username, password, role)
    finally:
        db.close()


def passwd(data_dir: Path, username: str, password: str) -> dict:
    """Set a user's password (strength-checked) and log out all their sessions."""
    db, auth = _open(data_dir)
    try:
        user = auth.get_user(username)
        if user is None:
            raise NotFoundError(f"no user {username!r}")
        return auth.update_user(user["id"], password=password)
    finally:
        db.close()


def reset_2fa(data_dir: Path, username: str) -> dict:
    """Turn off 2FA for a user who lost their authenticator (and recovery codes)."""
    db, auth = _open(data_dir)
    try:
        return auth.reset_2fa(username)
    finally:
        db.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise ValueError("the passwords differ")
    return first


def cmd_user(args) -> int:
    """Run ``burrow user …`` from parsed args (config, user_command, username, role,
    password_stdin). Returns the exit status: 0 done, 1 refused, 2 bad configuration."""
    from ..config import data_dir_for_cli
    directory = data_dir_for_cli(args.config, args.config_dir)
    if directory is None:
        return 2
    try:
        if args.user_command == "add":
            user = add_user(directory, args.username, args.role,
                            _read_password(args.password_stdin))
            sys.stdout.write(f"created {user['role']} {user['username']!r}\n")
        elif args.user_command == "passwd":
            user = passwd(directory, args.username, _read_password(args.password_stdin))
            sys.stdout.write(f"password changed for {user['username']!r}; "
                             "their sessions are logged out\n")
        elif args.user_command == "reset-2fa":
            user = reset_2fa(directory, args.username)
            sys.stdout.write(f"2FA turned off for {user['username']!r}\n")
        else:
            raise ValueError(f"unknown user command {args.user_command!r}")
    except (AuthServiceError, ValueError, OSError) as e:
        field = getattr(e, "field", None)
        sys.stderr.write(f"burrow: {field + ': ' if field else ''}{e}\n")
        return 1
    return 0


def add_parser(sub) -> None:
    """Register ``user add|passwd|reset-2fa`` on the main parser's subparsers."""
    p = sub.add_parser("user", help="add a user, set a password or reset 2FA (account rescue)")
    from ..config import add_cli_arguments
    add_cli_arguments(p)
    users = p.add_subparsers(dest="user_command", required=True)
    q = users.add_parser("add", help="create a user")
    q.add_argument("username")
    q.add_argument("--role", choices=("admin", "viewer"), default="admin")
    q.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    q = users.add_parser("passwd", help="set a user's password (logs out their sessions)")
    q.add_argument("username")
    q.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    q = users.add_parser("reset-2fa", help="turn off 2FA for a user")
    q.add_argument("username")
    q.set_defaults(password_stdin=False, role=None)
    p.set_defaults(func=cmd_user)
