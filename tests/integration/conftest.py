"""Module-scoped fixtures for the DNS integration modules: one test upstream and one Burrow
forwarding to it, shared by a module's tests (a module with other needs defines its own)."""

from __future__ import annotations

import pytest

from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream


@pytest.fixture(scope="module")
def up():
    with TestUpstream() as u:
        yield u


@pytest.fixture(scope="module")
def srv(up, tmp_path_factory):
    with BurrowProcess(tmp_path_factory.mktemp("burrow"), [up.address]) as b:
        yield b
