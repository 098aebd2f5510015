"""Replacing a file so that a power cut leaves the old file or the whole new one, never a part.

The one way Burrow writes a file a person's state lives in (a zone file made by hand, the
self-signed certificate, an issued certificate or key): a temporary file in the same folder,
created with the file's final mode (never readable by others in between, whatever the umask),
written and fsynced, renamed over the target, and the folder fsynced so the rename itself is on
the card. A failure removes the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(folder: Path | str) -> None:
    """Make the folder's entries (a rename, a new file) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path | str, data: bytes | str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8), the file ``mode`` from its first
    byte; a missing folder is created 0700."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)
