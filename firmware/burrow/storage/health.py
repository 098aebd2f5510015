"""Can Burrow still write its data? Storage that cannot be written is a fault.

Two sources, and neither writes data itself (flash wear is a budget):

- the folders (the data dir, and the query log's RAM dir when there is one) are looked at
  every ``CHECK_INTERVAL`` seconds: ``statvfs``, ``access``, and an open for writing (never a
  write) of a small file kept there for it, ``PROBE_NAME``, made once. The open is what sees an
  SD card the kernel gave up on (ext4 ``errors=remount-ro``: since Linux 6.x the file system
  refuses writes, EROFS, while the mount still says rw and ``statvfs`` and ``access`` see
  nothing); root is refused too, as by a read-only mount or an immutable folder;
- the writers (query-log flush and archive, event log) report each write that failed, and
  the next one that worked.

Any problem is the fault ``storage`` (burrow/lifecycle.py Faults): status LED ``fault``,
``/api/system``, and ``/readyz`` 503 with the reason; it clears by itself once every source
is fine again.

As a service (``storage``, the first to start and the last to stop) it checks at once, keeps
checking under the supervisor, and at stop closes the settings database it was given.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ..lifecycle import Faults, Restart, Supervised, Supervisor

CHECK_INTERVAL = 10.0  # seconds between looks at the folders (a few system calls each)
FAULT_SOURCE = "storage"
PROBE_NAME = ".write-check"  # opened for writing, never written (empty; made once)
CHECK_POLICY = Restart()  # the check loop keeps nothing between rounds: start it again


def folder_problem(path: Path) -> str | None:
    """Why nothing can be written in ``path`` now, or None. Writes nothing (but the empty
    probe file, the first time)."""
    try:
        st = os.statvfs(path)
    except OSError as e:
        return f"{path}: {e.strerror or e}"
    if st.f_flag & os.ST_RDONLY:
        return f"{path}: read-only file system"
    if not os.access(path, os.W_OK):
        return f"{path}: not writable"
    try:
        fd = os.open(path / PROBE_NAME, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        return f"{path}: {(e.strerror or str(e)).lower()}"
    os.close(fd)
    return None


class StorageHealth:
    """Storage writability for the fault status. ``report(writer, error)`` from the writers,
    ``check()`` for the folders (``run()`` repeats it).

    :param closes: what to close when the service stops (the settings database).
    """

    name = "storage"

    def __init__(self, folders: list[Path], faults: Faults, interval: float = CHECK_INTERVAL, *,
                 supervisor: Supervisor | None = None, closes: tuple = ()):
        self.folders = list(dict.fromkeys(Path(f) for f in folders))
        self.faults = faults
        self.interval = interval
        self.supervisor = supervisor
        self.closes = closes
        self._task: Supervised | None = None
        self._folder_problems: list[str] = []
        self._writer_errors: dict[str, str] = {}  # writer → its last write's error

    async def start(self) -> None:
        self.check()  # a read-only card is a fault from the first second
        if self.supervisor is not None:
            self._task = self.supervisor.spawn("storage-check", self.run, CHECK_POLICY)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await self._task.wait()
        for thing in self.closes:
            thing.close()

    def background_tasks(self) -> list:
        return []

    @property
    def ok(self) -> bool:
        return not self._folder_problems and not self._writer_errors

    def problems(self) -> list[str]:
        return self._folder_problems + [f"{w} could not be written ({e})" for w, e in self._writer_errors.items()]

    def report(self, writer: str, error: str | None) -> None:
        """The last write of ``writer`` (e.g. "the query log") failed with ``error``, or worked (None)."""
        if error is None:
            if self._writer_errors.pop(writer, None) is None:
                return
        elif self._writer_errors.get(writer) == error:
            return
        else:
            self._writer_errors[writer] = error
        self._publish()

    def check(self) -> bool:
        """Look at the folders now; True when storage is fine."""
        problems = [p for p in map(folder_problem, self.folders) if p is not None]
        if problems != self._folder_problems:
            self._folder_problems = problems
            self._publish()
        return self.ok

    async def run(self) -> None:
        """Check every ``interval`` seconds (a supervised task)."""
        while True:
            await asyncio.sleep(self.interval)
            self.check()

    def _publish(self) -> None:
        if self.ok:
            self.faults.clear(FAULT_SOURCE)
        else:
            self.faults.set(FAULT_SOURCE, "storage is not writable, settings and the query log cannot be "
                                          "saved: " + "; ".join(self.problems()))

    def snapshot(self) -> dict:
        return {"folders": [str(f) for f in self.folders], "writable": self.ok, "problems": self.problems()}
