"""The one way the service runs scrypt: a small worker pool with a bounded queue.

scrypt costs ~75 ms (~0.3 s on a Pi, see passwords.py). Run on the event loop, twenty wrong
passwords a second stall DNS for the whole house. ``PasswordPool.run`` instead runs it in one
of ``KDF_WORKERS`` threads (hashlib.scrypt releases the GIL), each at a lower CPU priority
than the loop (nice +10 on Linux), so on a board with fewer cores than busy threads the
scheduler still gives the DNS loop the CPU first.

The queue is bounded: at most ``KDF_MAX_WAITING`` jobs wait beyond the running ones, and one
client address (keyed like the lockout: IPv6 by /64) holds at most ``KDF_MAX_PER_CLIENT`` of
the slots. Past that, a job is refused at once with PasswordBusyError (429 "busy", Retry-After)
— no memory grows and nobody's login waits behind minutes of someone else's guesses. The
per-client cap also bounds how many of one address's guesses can be in flight before the
lockout (checked before a job is queued, counted after) sees them.

``call`` is the synchronous twin for the CLI and tests (no loop, no pool, same function); it
refuses to run on a thread with a running event loop, so a handler that used it by mistake
fails loudly instead of stalling DNS.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .errors import PasswordBusyError
from .lockout import address_key

log = logging.getLogger(__name__)

# One worker: a home appliance checks a password a few times a day, one scrypt holds 16 MiB,
# and a 2-core board keeps a core for DNS. ~13 checks/s on x86, ~3/s on a Pi 4.
KDF_WORKERS = 1
KDF_MAX_WAITING = 4  # worst wait for an admitted job: (1 + 4) x 0.3 s on a Pi
KDF_MAX_PER_CLIENT = 2
KDF_NICE = 10
BUSY_RETRY_AFTER = 1.0

T = TypeVar("T")


def _lower_priority() -> None:
    """Thread initializer: nice this worker thread only (Linux applies setpriority on a
    thread id to that thread alone). Best effort: elsewhere it does nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), KDF_NICE)
    except (AttributeError, OSError):
        pass


class PasswordPool:
    """Runs password hashing and verification off the event loop, bounded."""

    def __init__(self, workers: int = KDF_WORKERS, max_waiting: int = KDF_MAX_WAITING,
                 max_per_client: int = KDF_MAX_PER_CLIENT):
        self.workers = workers
        self.capacity = workers + max_waiting
        self.max_per_client = max_per_client
        self._executor: ThreadPoolExecutor | None = None  # made on first use
        # Updated from the loop (admit) and from worker threads (a job done), hence the lock.
        self._lock = threading.Lock()
        self._pending = 0
        self._per_client: dict[str, int] = {}
        self.refused = 0  # jobs refused as busy (for tests and the log)

    @property
    def pending(self) -> int:
        """Jobs running or waiting right now."""
        return self._pending

    def _admit(self, client: str) -> None:
        with self._lock:
            if self._pending >= self.capacity \
                    or self._per_client.get(client, 0) >= self.max_per_client:
                self.refused += 1
                raise PasswordBusyError(BUSY_RETRY_AFTER)
            self._pending += 1
            self._per_client[client] = self._per_client.get(client, 0) + 1

    def _release(self, client: str) -> None:
        with self._lock:
            self._pending -= 1
            left = self._per_client.get(client, 1) - 1
            if left > 0:
                self._per_client[client] = left
            else:
                self._per_client.pop(client, None)

    async def run(self, fn: Callable[..., T], *args: Any, client: str | None = None) -> T:
        """``fn(*args)`` in the pool; PasswordBusyError at once if the queue is full or this
        client already has its share. A job counts until it has really finished, even if the
        caller gave up waiting (a disconnected client cannot free its slot early)."""
        key = address_key(client)
        self._admit(key)
        try:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="burrow-kdf",
                                                    initializer=_lower_priority)
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._release(key)
            raise
        future.add_done_callback(lambda _f: self._release(key))
        return await asyncio.wrap_future(future)

    @staticmethod
    def call(fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` here and now, for callers without an event loop (the CLI)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn(*args)
        raise RuntimeError("password hashing on the event loop thread; use the *_async call")

    def close(self) -> None:
        """Stop the workers (jobs not started are dropped)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
