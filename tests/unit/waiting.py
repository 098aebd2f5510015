"""Waiting on a condition with a deadline, for tests on an event loop (never a count of turns)."""

from __future__ import annotations

import asyncio


async def until(predicate, timeout: float = 5.0) -> None:
    """Return once ``predicate()`` is true; AssertionError after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)
