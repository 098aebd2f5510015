"""Fixtures for the board tests."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory


@pytest.fixture
def factory():
    """gpiozero's mock pins: LEDs and the button are driven and read through them."""
    f = MockFactory()
    yield f
    f.close()
