"""A certificate and its key on disk, replaced so that a power cut never leaves a pair in use
that is half written or does not belong together.

One file alone is replaced with ``burrow.atomicfile.write_atomic``. A pair (full chain + key)
is replaced in this order:

1. write and fsync ``key.new``, then ``cert.new``, then fsync the folder;
2. rename ``key.new`` → ``key``; 3. rename ``cert.new`` → ``cert``; fsync the folder.

After a crash, :func:`complete_pending_pair` (called before the pair is read) decides from what
is left: ``key.new`` still there means no rename happened yet and ``cert.new`` may be half
written, so both ``.new`` files are deleted and the old pair stands; ``key.new`` gone but
``cert.new`` there means the key was renamed and ``cert.new`` was complete (fsynced before the
first rename), so the rename is finished. Either way the pair read is one that was written whole
and together. The key is created 0600 (never readable by others, whatever the umask).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..atomicfile import fsync_dir

KEY_MODE = 0o600
CERT_MODE = 0o644
DIR_MODE = 0o700  # a folder created for a key


def _pending(path: Path) -> Path:
    return path.with_name(path.name + ".new")


def _write_synced(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is masked by the umask, and an old file keeps its own
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_folder(path: Path) -> None:
    """Create ``path``'s folder (0700) if it is missing."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def write_pair(cert_path: Path | str, key_path: Path | str, cert_pem: bytes, key_pem: bytes) -> None:
    """Replace the full chain and its key as one (see the module's docstring)."""
    cert_path, key_path = Path(cert_path), Path(key_path)
    ensure_folder(cert_path)
    ensure_folder(key_path)
    _write_synced(_pending(key_path), key_pem, KEY_MODE)
    _write_synced(_pending(cert_path), cert_pem, CERT_MODE)
    for folder in {cert_path.parent, key_path.parent}:
        fsync_dir(folder)
    os.replace(_pending(key_path), key_path)
    os.replace(_pending(cert_path), cert_path)
    for folder in {cert_path.parent, key_path.parent}:
        fsync_dir(folder)


def complete_pending_pair(cert_path: Path | str, key_path: Path | str) -> str | None:
    """Finish or undo a :func:`write_pair` a crash interrupted; what was done ("rolled back",
    "completed") or None when nothing was pending."""
    cert_path, key_path = Path(cert_path), Path(key_path)
    key_new, cert_new = _pending(key_path), _pending(cert_path)
    if key_new.exists():
        key_new.unlink()
        cert_new.unlink(missing_ok=True)
        fsync_dir(key_path.parent)
        return "rolled back"
    if cert_new.exists():
        os.replace(cert_new, cert_path)
        fsync_dir(cert_path.parent)
        return "completed"
    return None
