"""A settings database and the stored-state context, for the migration tests."""

from __future__ import annotations

import pytest

from burrow import state_check
from burrow.config import load as load_config
from burrow.storage.settings import SettingsDB


@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "lists").mkdir()
    return state_check.Context(load_config(None, environ={}), tmp_path, [str(tmp_path / "lists")])


@pytest.fixture
def db(tmp_path):
    d = SettingsDB(tmp_path / "settings.db")
    yield d
    d.close()
