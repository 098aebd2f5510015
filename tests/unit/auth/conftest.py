"""Fixtures for the auth tests: an AuthService on a fresh database, and its first admin."""

from __future__ import annotations

import pytest

from .test_auth_support import ADMIN_PW, Auth


@pytest.fixture
def auth(tmp_path):
    a = Auth(tmp_path)
    yield a
    a.db.close()


@pytest.fixture
def admin(auth):
    """The first admin ("alice") on ``auth``."""
    return auth.service.setup_first_admin("alice", ADMIN_PW)
