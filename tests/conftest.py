"""Shared fixtures: a scriptable test upstream and the real burrow process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def upstream():
    with TestUpstream() as up:
        yield up


@pytest.fixture
def burrow_factory(tmp_path):
    """Start burrow processes with given upstreams/config; all are stopped at test end."""
    started = []

    def make(upstreams=None, config=None, name="b"):
        proc = BurrowProcess(tmp_path / f"{name}{len(started)}", upstreams, config)
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.stop()


@pytest.fixture
def burrow(burrow_factory, upstream):
    return burrow_factory([upstream.address])


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (scripts/test installs it)")
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    return SHARED_DATA
