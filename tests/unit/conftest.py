"""Fixtures shared by unit tests in several subfolders (one folder's own go in its conftest.py)."""

from __future__ import annotations

import pytest

from burrow.storage.settings import SettingsDB


@pytest.fixture
def db(tmp_path):
    """A fresh settings database in ``tmp_path`` (a module may define its own ``db`` instead)."""
    d = SettingsDB(tmp_path / "settings.db")
    yield d
    d.close()
