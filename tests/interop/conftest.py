"""Fixtures of the interop tier (``scripts/test-interop``): one lab for the whole session."""

from __future__ import annotations

import pytest

from tests.interop.lab import Lab, missing_tools


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """NSD with the signed lab zones, the validating Unbound upstream, and Burrow and dnsmasq
    forwarding to it. Every process is stopped at the end of the session."""
    missing = missing_tools()
    if missing:
        # the tier is asked for on purpose: a missing tool is a failure, not a quiet skip
        pytest.fail(f"interop tier needs {', '.join(missing)} (scripts/test installs them)")
    lab = Lab(tmp_path_factory.mktemp("lab")).start()
    yield lab
    lab.stop()
