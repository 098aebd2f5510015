"""Burrow's logging: its setup from ``[logging]`` and live changes to it, the two line formats,
and an optional log file in RAM, rotated and gzipped, copied to flash now and then.

The one home of the logging setup: the start calls :func:`setup_logging` (cli), a runtime
change of ``logging.level``, ``format`` or ``output`` calls :func:`apply_logging`
(runtime_config, and the start when such a change was stored).

The file log. On the image the journal is volatile, so logs vanish on reboot. This handler
keeps a file log in a RAM folder (tmpfs) and copies its compressed form to a
flash folder at most every ``persist_interval`` seconds and once at close, so
a post-mortem is possible without writing every line to the SD card::

    from burrow import logfile

    handler = logfile.handler_from_config(cfg)     # None when [logging] file_dir = ""
    if handler is not None:
        handler.setFormatter(formatter)
        logging.getLogger().addHandler(handler)
    ...
    handler.close()     # logging.shutdown() does this at exit: final copy to flash

Layout. In ``directory``: ``burrow.log`` (being written) and up to ``keep``
rotated files ``burrow.log.<serial>.gz`` (serial grows; newest is highest). In
``persist_dir``: one folder per process start, ``<UTC start time>/``, holding
copies of the rotated files (each copied once: they never change) and
``burrow.log.current.gz`` (the live file, re-compressed on every persist). The
whole ``persist_dir`` is kept under ``persist_max_bytes`` by deleting the
oldest files first, across starts.

Cost on the logging caller: a write to a RAM file, and on rotation one
rename. Compression and copying run on one worker thread, so a log call on
the event loop never waits for gzip or flash.

``formatter(cfg["logging.format"])`` is the one place the two line formats (text, json)
are made.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

log = logging.getLogger(__name__)

BASENAME = "burrow.log"
CURRENT_COPY = f"{BASENAME}.current.gz"
# Bounds the rotated files the worker may lag behind by; past it a rotation
# waits for the worker (only under a log storm that gzip cannot keep up with).
MAX_PENDING_JOBS = 8


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOGGING_KEYS = ("logging.level", "logging.format", "logging.output")  # what apply_logging changes live


def setup_logging(cfg: Any) -> None:
    """Burrow's handlers on the root logger, replacing any there: one stream handler (stdout
    or stderr, as ``logging.output`` says) and, when ``[logging] file_dir`` is set, the file log."""
    stream = sys.stdout if cfg["logging.output"] == "stdout" else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(cfg["logging.format"]))
    # pyroute2 logs every netlink message at debug level (and resets its logger's level when
    # imported, which happens later): filter its chatter out at our handler instead.
    handler.addFilter(_quiet_pyroute2)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, cfg["logging.level"].upper()))
    file_handler = handler_from_config(cfg)
    if file_handler is not None:  # optional RAM file log, persisted to flash now and then
        file_handler.setFormatter(handler.formatter)
        file_handler.addFilter(_quiet_pyroute2)
        root.addHandler(file_handler)


def apply_logging(cfg: Any) -> None:
    """Apply logging.level/format/output to the root logger's handlers, in place (the file
    log keeps its file; it only gets the new level and format)."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, cfg["logging.level"].upper()))
    line_format = formatter(cfg["logging.format"])
    stream = sys.stdout if cfg["logging.output"] == "stdout" else sys.stderr
    for handler in root.handlers:
        handler.setFormatter(line_format)
        if type(handler) is logging.StreamHandler and getattr(handler, "stream", None) in (sys.stdout, sys.stderr):
            handler.setStream(stream)


def _quiet_pyroute2(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.INFO or not record.name.startswith("pyroute2")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg (and exc with a traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": self.formatTime(record), "level": record.levelname.lower(),
               "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``logging.format``: "json" or "text"."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


class RamLogHandler(logging.Handler):
    """A logging handler writing to ``directory/burrow.log``.

    :param directory: the RAM folder (created if missing).
    :param max_bytes: rotate once the file reaches this size.
    :param keep: rotated ``.gz`` files kept in ``directory`` (0: rotation
        just truncates).
    :param persist_dir: flash folder for the copies; None or "" disables.
    :param persist_interval: minimum seconds between two copies to flash.
    :param persist_max_bytes: cap on everything under ``persist_dir``.
    :param clock: monotonic seconds (tests inject one).

    Raises ``OSError`` if ``directory`` cannot be created or opened.
    """

    def __init__(self, directory: str | os.PathLike, *, max_bytes: int = 1 << 20, keep: int = 5,
                 persist_dir: str | os.PathLike | None = None, persist_interval: float = 3600.0,
                 persist_max_bytes: int = 16 << 20, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.keep = keep
        self.persist_dir = Path(persist_dir) if persist_dir else None
        self.persist_interval = persist_interval
        self.persist_max_bytes = persist_max_bytes
        self.clock = clock
        self.path = self.directory / BASENAME
        self.directory.mkdir(parents=True, exist_ok=True)
        self.session = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self._serial = self._highest_serial()
        self._stream: TextIO | None = open(self.path, "a", encoding="utf-8")
        self._size = self._stream.tell()
        self._last_persist = clock()
        self._dirty = self._size > 0
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="logfile")
        self._pending: list[concurrent.futures.Future] = []

    # -- logging.Handler --

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            if self._stream is None:
                return
            self._stream.write(line)
            self._stream.flush()  # RAM file: flushing is cheap and keeps `tail -f` honest
            self._size += len(line) if line.isascii() else len(line.encode("utf-8", "replace"))
            self._dirty = True
            if self._size >= self.max_bytes:
                self._rotate()
            if self.persist_dir is not None and self.clock() - self._last_persist >= self.persist_interval:
                self._last_persist = self.clock()
                self._submit(self._persist)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Finish pending work, copy the logs to flash one last time, close."""
        with self.lock:  # type: ignore[union-attr]  # Handler.__init__ made it
            stream, self._stream = self._stream, None
            if stream is not None:
                stream.close()
        if stream is not None:
            self._pool.shutdown(wait=True)
            if self.persist_dir is not None and self._dirty:
                try:
                    self._persist()
                except OSError as exc:
                    # logging is closing: say it on stderr's handler, if any is left
                    log.warning("final copy of the log file to %s failed: %s", self.persist_dir, exc)
        super().close()

    # -- public helpers --

    def persist_now(self) -> None:
        """Copy the logs to flash now (blocking; for tests and an API action)."""
        with self.lock:  # type: ignore[union-attr]  # Handler.__init__ made it
            if self._stream is not None:
                self._stream.flush()
            self._last_persist = self.clock()
        self.wait()
        self._persist()

    def wait(self, timeout: float = 30.0) -> None:
        """Wait until queued compression and copy jobs are done."""
        with self.lock:  # type: ignore[union-attr]  # Handler.__init__ made it
            pending = list(self._pending)
        concurrent.futures.wait(pending, timeout)

    def rotated(self) -> list[Path]:
        """Rotated files in the RAM folder, oldest first."""
        return sorted(self.directory.glob(f"{BASENAME}.*.gz"), key=_serial_of)

    # -- internals --

    def _highest_serial(self) -> int:
        found = [_serial_of(p) for p in self.directory.glob(f"{BASENAME}.*")]
        return max(found, default=0)

    def _submit(self, job: Callable[..., None], *args) -> None:
        self._pending = [f for f in self._pending if not f.done()]
        if len(self._pending) >= MAX_PENDING_JOBS:
            concurrent.futures.wait(self._pending[:1])
        try:
            self._pending.append(self._pool.submit(self._guarded, job, *args))
        except RuntimeError:
            # The interpreter is shutting down and the worker is gone: do it here.
            self._guarded(job, *args)

    @staticmethod
    def _guarded(job, *args) -> None:
        try:
            job(*args)
        except Exception:
            # Not through logging: this may run while the handler itself logs.
            import traceback

            traceback.print_exc()

    def _rotate(self) -> None:
        # Called with the handler lock held. Only a rename here; gzip happens
        # on the worker.
        assert self._stream is not None  # emit() rotates only an open file
        self._stream.close()
        self._serial += 1
        raw = self.directory / f"{BASENAME}.{self._serial}"
        os.replace(self.path, raw)
        self._stream = open(self.path, "a", encoding="utf-8")
        self._size = 0
        self._submit(self._compress, raw)

    def _compress(self, raw: Path) -> None:
        if self.keep > 0:
            _gzip_file(raw, raw.with_name(raw.name + ".gz"))
        raw.unlink()
        for old in self.rotated()[:-self.keep] if self.keep else self.rotated():
            old.unlink(missing_ok=True)

    def _persist(self) -> None:
        """Copy rotated files not yet copied, and the live file compressed, then
        enforce the size cap. Runs on the worker (or at close)."""
        assert self.persist_dir is not None  # only scheduled when there is one
        target = self.persist_dir / self.session
        target.mkdir(parents=True, exist_ok=True)
        for src in self.rotated():
            dst = target / src.name
            if not dst.exists():
                _atomic_copy(src, dst)
        if self.path.exists() and self.path.stat().st_size:
            _gzip_file(self.path, target / CURRENT_COPY)
        self._dirty = False
        _enforce_cap(self.persist_dir, self.persist_max_bytes)


def _serial_of(path: Path) -> int:
    parts = path.name[len(BASENAME) + 1:].split(".")
    return int(parts[0]) if parts and parts[0].isdigit() else 0


def _gzip_file(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    with open(src, "rb") as fin, open(tmp, "wb") as raw_out:
        # mtime=0: identical input gives identical bytes (no needless diffs).
        with gzip.GzipFile(fileobj=raw_out, mode="wb", compresslevel=6, mtime=0) as out:
            shutil.copyfileobj(fin, out, 64 * 1024)
        raw_out.flush()
        os.fsync(raw_out.fileno())
    os.replace(tmp, dst)


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    with open(src, "rb") as fin, open(tmp, "wb") as out:
        shutil.copyfileobj(fin, out, 64 * 1024)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dst)


def _enforce_cap(root: Path, max_bytes: int) -> None:
    """Delete the oldest files under ``root`` until the total fits ``max_bytes``.

    Age is the session folder name (UTC start time), then the rotation serial,
    with ``current`` last within a session: what was written earliest goes first.
    """
    files = []
    for session in sorted(p for p in root.iterdir() if p.is_dir()):
        members = sorted(session.glob(f"{BASENAME}.*.gz"),
                         key=lambda p: (p.name == CURRENT_COPY, _serial_of(p)))
        files.extend(members)
    sizes = {f: f.stat().st_size for f in files}
    total = sum(sizes.values())
    for f in files:
        if total <= max_bytes:
            break
        f.unlink(missing_ok=True)
        total -= sizes[f]
        try:
            f.parent.rmdir()  # only succeeds once the session folder is empty
        except OSError:
            pass


def handler_from_config(cfg) -> RamLogHandler | None:
    """The handler ``[logging] file_*`` asks for, or None when ``file_dir`` is
    empty. A folder that cannot be created is logged and gives None: a missing
    tmpfs must not keep the DNS server from starting."""
    directory = cfg["logging.file_dir"]
    if not directory:
        return None
    try:
        return RamLogHandler(
            directory,
            max_bytes=cfg["logging.file_max_bytes"],
            keep=cfg["logging.file_keep"],
            persist_dir=cfg["logging.file_persist_dir"] or None,
            persist_interval=cfg["logging.file_persist_interval"] * 60.0,
            persist_max_bytes=cfg["logging.file_persist_max_bytes"],
        )
    except OSError as exc:
        log.error("file log disabled: cannot open %s: %s", directory, exc)
        return None
