"""Time in tests that holds on a loaded machine: wait for a condition with a deadline, or run
on a virtual clock.

Never assert after a fixed sleep or a count of event-loop turns that something running in
another thread or process has (or has not) happened: a busy machine delays it by any amount.

* ``await until(condition, what=...)`` polls ``condition()`` from the loop and raises
  AssertionError once ``timeout`` seconds have passed (the deadline only bounds a failure, so
  it is generous: a passing test returns as soon as the condition holds).
* ``wait_for(condition, what=...)`` is the same for plain (non-async) tests; it returns the
  condition's truthy value.
* ``run_virtual(coro)`` runs a coroutine on :class:`VirtualTimeLoop`, whose clock stands still
  while code runs and, whenever the loop would sleep, jumps to the next timer. Timers fire in
  the order of their deadlines and ``asyncio.sleep(0.075)`` advances the clock by exactly 75 ms
  however slow the machine is, so a test may assert the state at an instant. While a job given
  to ``run_in_executor`` (or ``asyncio.to_thread``) runs, the clock stands still too and the
  loop waits for it for real. Other threads and processes are not seen: code that waits for
  them on a timer is not for this loop.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from typing import Any, Callable

DEADLINE_S = 30.0  # bounds a failing wait only


async def until(condition: Callable[[], Any], timeout: float = DEADLINE_S,
                what: str = "the condition") -> Any:
    """Poll ``condition`` every 10 ms on the running loop; its first truthy value, or
    AssertionError after ``timeout`` seconds of wall-clock time."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)
    return result


def wait_for(condition: Callable[[], Any], timeout: float = DEADLINE_S,
             what: str = "the condition", interval: float = 0.05) -> Any:
    """:func:`until` for plain tests: poll ``condition`` every ``interval`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return result


class _JumpingSelector(selectors.DefaultSelector):
    """Answers ready I/O at once; instead of sleeping until the next timer, moves the
    loop's virtual clock there."""

    def __init__(self, clock: list[float], busy: Callable[[], bool]):
        super().__init__()
        self._clock = clock
        self._busy = busy

    def select(self, timeout: float | None = None):
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None or self._busy():
            # No timer pending, or a thread is working for the loop: wait for real (its
            # result arrives through the loop's self-pipe); virtual time does not move.
            return super().select(timeout)
        self._clock[0] += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual (see the module doc); it starts at 0."""

    def __init__(self) -> None:
        self._virtual_now = [0.0]
        self._in_threads = 0
        super().__init__(selector=_JumpingSelector(self._virtual_now, lambda: self._in_threads > 0))

    def time(self) -> float:
        return self._virtual_now[0]

    def run_in_executor(self, executor, func, *args):
        future = super().run_in_executor(executor, func, *args)
        self._in_threads += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _future) -> None:
        self._in_threads -= 1


def run_virtual(coro, timeout: float = 600.0) -> Any:
    """Run ``coro`` to completion on a :class:`VirtualTimeLoop`; ``timeout`` is in virtual
    seconds (a coroutine that waits forever fails at once instead of hanging)."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(asyncio.wait_for(coro, timeout))
