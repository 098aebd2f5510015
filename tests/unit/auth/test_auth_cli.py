"""``burrow user add|passwd|reset-2fa`` on a real settings database."""

from __future__ import annotations

import argparse
import io

import pytest

from burrow.auth import AuthError, ConflictError, NotFoundError, WeakPasswordError
from burrow.auth.cli import add_parser, add_user, passwd, reset_2fa

from .test_auth_support import ADMIN_PW, Auth


def test_add_then_log_in(tmp_path):
    user = add_user(tmp_path, "owner", "admin", ADMIN_PW)
    assert user["role"] == "admin"
    auth = Auth(tmp_path)
    auth.service.login("owner", ADMIN_PW, None, "10.0.0.1")
    with pytest.raises(ConflictError):
        add_user(tmp_path, "owner", "viewer", ADMIN_PW)
    with pytest.raises(WeakPasswordError):
        add_user(tmp_path, "other", "viewer", "short")


def test_cli_does_not_create_the_signing_key(tmp_path):
    add_user(tmp_path, "owner", "admin", ADMIN_PW)
    assert not (tmp_path / "jwt.key").exists()


def test_passwd_replaces_the_password_and_logs_out(tmp_path):
    add_user(tmp_path, "owner", "admin", ADMIN_PW)
    auth = Auth(tmp_path)
    pair = auth.service.login("owner", ADMIN_PW, None, "10.0.0.1")
    passwd(tmp_path, "owner", "fresh start 2025")
    with pytest.raises(AuthError):
        auth.service.authenticate_bearer(pair.access_token)
    auth.service.login("owner", "fresh start 2025", None, "10.0.0.1")
    with pytest.raises(NotFoundError):
        passwd(tmp_path, "nobody", "fresh start 2025")


def test_reset_2fa(tmp_path):
    add_user(tmp_path, "owner", "admin", ADMIN_PW)
    auth = Auth(tmp_path)
    info = auth.service.totp_enrol(1)
    auth.service.totp_confirm(1, auth.code(info["secret"]))
    assert reset_2fa(tmp_path, "owner")["totp_enabled"] is False
    auth.service.login("owner", ADMIN_PW, None, "10.0.0.1")


def _parse(argv):
    parser = argparse.ArgumentParser(prog="burrow")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cmd_user_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BURROW__STORAGE__DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO(ADMIN_PW + "\n"))
    args = _parse(["user", "add", "owner", "--role", "admin", "--password-stdin"])
    assert args.func(args) == 0
    assert "created admin 'owner'" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("weak\n"))
    args = _parse(["user", "passwd", "owner", "--password-stdin"])
    assert args.func(args) == 1
    assert "password:" in capsys.readouterr().err
    args = _parse(["user", "reset-2fa", "owner"])
    assert args.func(args) == 0
    args = _parse(["user", "reset-2fa", "ghost"])
    assert args.func(args) == 1


def test_migration_2_tables_exist(tmp_path):
    auth = Auth(tmp_path)
    tables = {r[0] for r in auth.db.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'auth_%'")}
    assert tables == {"auth_users", "auth_sessions", "auth_refresh_tokens",
                      "auth_recovery_codes", "auth_api_tokens"}
    assert auth.db.version >= 2
