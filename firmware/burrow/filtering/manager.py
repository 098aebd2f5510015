"""Keep the filter lists up to date and the compiled index live: download, compile, swap.

``ListManager`` ties the list store (burrow.filtering.sources), the downloader
(burrow.filtering.download) and the compiler (burrow.filtering.compiler) together:

* ``await start()`` — at boot, BEFORE any download: open the last good index
  (``index_path``) and hand it to ``on_swap``; then a background task schedules updates.
* ``await refresh(list_id=None, force=False)`` — download the lists that are due (or the one
  asked for; ``force`` = due now), with conditional requests, then compile ALL enabled lists
  in the child process into ``index_path + ".next"``; only when that succeeded and the new
  file opens and verifies is it renamed over ``index_path`` and passed to ``on_swap``. Until
  then the old index keeps answering. A failed download keeps that list's previous copy (the
  error is recorded on the list); a failed compile keeps the old index and records the error
  on the lists (a list that failed as a whole gets its own reason). Without ``force``, a
  refresh in which nothing was downloaded and nothing changed in the configuration does not
  recompile (status "unchanged"); nor does it retry, within ``retry_interval``, a compile
  whose exact inputs already failed.
* ``await stop()`` — cancel the scheduler and any refresh in progress (the compiler child
  is killed; the index on disk stays the last good one).

One refresh at a time: a request made while one runs joins it when the running refresh
already covers it (same or larger set of lists, force not stronger, configuration unchanged
since it started); otherwise it is queued as one follow-up refresh, which later requests
join and widen. Every caller gets the report of the refresh that served it.

Schedule: each enabled list is due ``update_interval`` seconds (±10 % jitter, drawn anew
after each attempt) after its last attempt; after a failure it is retried after
min(update_interval, ``retry_interval``). A list that has no downloaded copy and no error (new,
re-enabled, or its source changed) is due at once. The scheduler wakes at the earliest due
time (at most every ``poll_interval`` seconds) and also recompiles, without downloading, when
the configuration no longer matches the live index (a list was deleted, disabled, renamed...).

Cache: each list's downloaded copy is ``cache_dir/list-<id>-<token>-<generation>.txt``
(token = hash of the list's id, creation time and source, so a recreated list or a changed
source never reuses another's copy). The live index's metadata records which copy it was
compiled from, so after a restart the copies in use are known without another state file;
copies no index uses are deleted after each successful swap (and at start). Local lists
(files in an allowed local directory) are copied into the cache the same way, with the
path re-checked against the allowed directories at every read (symlinks resolved); a local
file's "ETag" is ``local:<size>:<mtime_ns>``.

Events (``on_event(dict)``, for the websocket and the page; every event has ``"topic":
"lists"`` and ``"time"``): ``refresh_started`` {lists, force}; ``download_started`` {id,
list_id, name}; ``download_finished`` {id, list_id, name, status ("updated" |
"not_modified" | "failed"), bytes, error}; ``compile_started`` {lists}; ``compile_progress``
{phase, ...} (the compiler's events: list_started, progress, list_finished, writing,
finished); ``index_swapped`` {entries, lists}; ``index_loaded`` {entries, lists} (boot);
``index_load_failed`` {error}; ``refresh_finished`` {status, entries, error, seconds}. No
event, report or recorded error carries a path of the cache or the index (they are replaced by
``<list cache>`` / ``<index dir>``).

Ids: ``refresh(list_id=...)`` takes the list's database ``id`` (1..64, as in the store and
the API); the index bit is ``list_id = id - 1`` (events carry both).

Old indexes: after a swap the manager drops its reference to the previous Index and does not
close it (a request may still hold it); it is unmapped when the last reference goes.

The clock (``clock_gate``, burrow/clock.py): while the wall clock is not known to be right,
lists with a URL source are not downloaded — TLS would fail on a 1970 clock, and a download
that fails is retried only after ``retry_interval``. The scheduler does not count them as due
(a refresh reports them as ``"download": "waiting_for_clock"``); local lists go on as usual. The
gate tells the manager when it opens (``wake``), and the deferred downloads start at once. A
forced refresh (a person's "update now") that would download a URL list raises
:class:`~burrow.clock.ClockNotSet` (409) instead.

Resolution: pass ``resolve=download.upstream_resolver(pool)`` so list hosts are resolved
through the upstream servers; the default (None) uses the system resolver (tests, tools).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import re
import secrets
import time
from typing import Any, Awaitable, Callable, Iterable

from burrow.changes import Announce, Change, ignore
from burrow.clock import ClockGate, ClockNotSet
from burrow.filtering import download
from burrow.filtering.compiler import CompileReport, compile_in_child
from burrow.filtering.index import Index
from burrow.filtering.sources import ListStore, ListValidationError, is_url, resolve_local_source

log = logging.getLogger(__name__)

RETRY_INTERVAL = 1800.0  # seconds before a failed list is tried again (if shorter than its interval)
POLL_INTERVAL = 60.0  # the scheduler looks at the store at least this often
JITTER = 0.10
MAX_PARALLEL_DOWNLOADS = 4
_CACHE_RE = re.compile(r"^list-(\d+)-([0-9a-f]{12})-([0-9a-f]{8})\.txt$")


def _token(row: dict[str, Any]) -> str:
    raw = f"{row['id']}|{row.get('created_at')!r}|{row['source']}".encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def _copy_local(src: str, dest: str, max_bytes: int) -> int:
    """Copy a local list into the cache (atomic rename), at most ``max_bytes``."""
    tmp = os.path.join(os.path.dirname(dest),
                       f".{os.path.basename(dest)}.part-{os.getpid()}-{secrets.token_hex(4)}")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(src, flags)
    try:
        st = os.fstat(fd)
        import stat as _stat

        if not _stat.S_ISREG(st.st_mode):
            raise download.FetchError("not a regular file")
        if st.st_size > max_bytes:
            raise download.TooLarge(f"list is {st.st_size} bytes, over the {max_bytes} byte cap")
        total = 0
        with open(tmp, "wb") as out:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise download.TooLarge(f"list is larger than the {max_bytes} byte cap")
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
        return total
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)


class ListManager:
    """See the module doc. All methods run on the event loop."""

    def __init__(
        self,
        store: ListStore,
        cache_dir: str | os.PathLike[str],
        index_path: str | os.PathLike[str],
        *,
        compile: Callable[..., Awaitable[CompileReport]] = compile_in_child,
        fetch: Callable[..., Awaitable[download.FetchResult]] = download.fetch,
        resolve: download.Resolver | None = None,
        on_swap: Callable[[Index], Any] | None = None,
        on_change: Announce = ignore,
        on_event: Callable[[dict[str, Any]], Any] | None = None,
        clock: Callable[[], float] = time.time,
        local_dirs: Iterable[str] | None = None,
        fetch_options: dict[str, Any] | None = None,
        max_bytes: int = download.DEFAULT_MAX_BYTES,
        poll_interval: float = POLL_INTERVAL,
        retry_interval: float = RETRY_INTERVAL,
        jitter: float = JITTER,
        max_parallel_downloads: int = MAX_PARALLEL_DOWNLOADS,
        rng: random.Random | None = None,
        clock_gate: ClockGate | None = None,
    ) -> None:
        self.store = store
        self.cache_dir = os.path.realpath(os.fspath(cache_dir))
        self.index_path = os.path.abspath(os.fspath(index_path))
        self._compile = compile
        self._fetch = fetch
        self._resolve = resolve
        self._on_swap = on_swap
        self._on_change = on_change  # told once a new index is live (burrow/changes.py)
        self._on_event = on_event
        self.clock = clock
        self.local_dirs = list(local_dirs) if local_dirs is not None else list(store.local_dirs)
        self.fetch_options = dict(fetch_options or {})
        self.max_bytes = int(self.fetch_options.pop("max_bytes", max_bytes))
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self.jitter = jitter
        self.max_parallel = max(1, max_parallel_downloads)
        self._rng = rng or random.SystemRandom()
        self.clock_gate = clock_gate
        self.index: Index | None = None  # the live index
        self.last_report: dict[str, Any] | None = None
        self._jitters: dict[int, tuple[float | None, float]] = {}  # id → (last_attempt, factor)
        self._failed_sig: tuple[Any, ...] | None = None  # inputs of the last failed compile...
        self._failed_at = 0.0  # ...and when: not retried unforced before retry_interval
        self._current: asyncio.Future[dict[str, Any]] | None = None
        # (ids or None, force, config snapshot)
        self._current_spec: tuple[frozenset[int] | None, bool, tuple[Any, ...]] | None = None
        self._follow: asyncio.Future[dict[str, Any]] | None = None
        self._follow_spec: tuple[frozenset[int] | None, bool] | None = None  # (ids or None, force)
        self._scheduler: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._stopped = False
        self._listener_tasks: set[asyncio.Future[Any]] = set()  # async on_event calls still running

    # ------------------------------------------------------------------ events

    def _emit(self, event: str, **fields: Any) -> None:
        if self._on_event is None:
            return
        payload = {"topic": "lists", "event": event, "time": self.clock(), **fields}
        try:
            result = self._on_event(payload)
            if asyncio.iscoroutine(result):
                # Held until done: the loop keeps only a weak reference to a task.
                task = asyncio.ensure_future(result)
                self._listener_tasks.add(task)
                task.add_done_callback(self._listener_done)
        except Exception:  # noqa: BLE001 - a listener must not break an update
            log.exception("list event listener failed")

    def _listener_done(self, task: asyncio.Future[Any]) -> None:
        self._listener_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("list event listener failed", exc_info=task.exception())

    async def _swap(self, index: Index) -> None:
        self.index = index
        if self._on_swap is not None:
            result = self._on_swap(index)
            if asyncio.iscoroutine(result):
                await result
        self._on_change(Change.LIST_INDEX)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load the last good index (before any download), then start the scheduler."""
        self._stopped = False
        os.makedirs(self.cache_dir, exist_ok=True)
        os.makedirs(os.path.dirname(self.index_path) or ".", exist_ok=True)
        with contextlib.suppress(OSError):
            os.unlink(self.index_path + ".next")
        if os.path.exists(self.index_path):
            try:
                index = await asyncio.get_running_loop().run_in_executor(
                    None, Index.open, self.index_path)
            except Exception as exc:  # noqa: BLE001 - a bad file must not stop the boot
                log.error("cannot load the last index %s: %s", self.index_path, exc)
                self._emit("index_load_failed", error=self._scrub(f"{type(exc).__name__}: {exc}"))
            else:
                await self._swap(index)
                self._emit("index_loaded", entries=index.entries, lists=len(index.lists))
        self._cleanup_cache()
        self._wake = asyncio.Event()
        if self._scheduler is None or self._scheduler.done():
            self._scheduler = asyncio.get_running_loop().create_task(self._schedule(), name="lists-scheduler")

    name = "lists"

    def snapshot(self) -> dict[str, Any]:
        return {"domains": self.domains(), "running": self.running}

    def background_tasks(self) -> list[asyncio.Task[None]]:
        """The scheduler (for the supervisor)."""
        return [self._scheduler] if self._scheduler is not None else []

    async def stop(self) -> None:
        """Stop the scheduler and cancel a refresh in progress (its child is killed)."""
        self._stopped = True
        tasks = [t for t in (self._scheduler, self._follow, self._current)
                 if t is not None and not t.done()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._scheduler = None

    def wake(self) -> None:
        """Make the scheduler look at the store now (after a list was added or changed)."""
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ status

    @property
    def running(self) -> bool:
        return self._current is not None and not self._current.done()

    def domains(self) -> int:
        """Entries in the live index (0 when there is none)."""
        index = self.index
        return 0 if index is None or index.closed else int(index.entries)

    def reload_report(self, result: dict[str, Any] | None = None) -> dict[str, Any]:
        """The body for ``POST /api/blocklist/reload`` (seed shape), from a refresh result."""
        if result is not None and result.get("status") == "failed":
            return {"status": "error", "domains": self.domains(),
                    "message": f"Blocklist reload failed: {result.get('error') or 'unknown error'}"}
        return {"status": "ok", "domains": self.domains(),
                "message": "Blocklists reloaded successfully"}

    def downloads_allowed(self) -> bool:
        """Whether URL lists may be downloaded now (the clock gate is open, or there is none)."""
        return self.clock_gate is None or self.clock_gate.is_open()

    def status(self) -> dict[str, Any]:
        index = self.index
        return {
            "running": self.running,
            "waiting_for_clock": not self.downloads_allowed(),
            "domains": self.domains(),
            "lists_in_index": 0 if index is None else len(index.lists),
            "index_created": None if index is None else index.created,
            "last_refresh": self.last_report,
        }

    # ------------------------------------------------------------------ refresh

    def _config(self) -> tuple[Any, ...]:
        return tuple((r["id"], r["name"], r["source"], r["kind"], r["format"], r["mode"],
                      r["enabled"], r["created_at"]) for r in self.store.list())

    async def refresh(self, list_id: int | None = None, force: bool = False) -> dict[str, Any]:
        """Update (see the module doc); returns the report of the refresh that served it.

        ``list_id`` is the list's database ``id``. An unknown id returns a report with
        status "error" and does not refresh. ``force`` is a person's request: while the clock
        gate is closed it raises :class:`ClockNotSet` when it would download a URL list.
        """
        if list_id is not None and self.store.get(list_id) is None:
            return {"status": "error", "swapped": False, "entries": self.domains(),
                    "error": f"no list with id {list_id}", "lists": {}}
        if force and not self.downloads_allowed():
            rows = self.store.list(enabled=True)
            if any(is_url(r["source"]) and (list_id is None or r["id"] == list_id) for r in rows):
                raise ClockNotSet()
        ids = None if list_id is None else frozenset([int(list_id)])
        config = self._config()
        current_running = self._current is not None and not self._current.done()
        if current_running:
            c_ids, c_force, c_config = self._current_spec  # type: ignore[misc]
            covered = (c_ids is None or (ids is not None and ids <= c_ids)) \
                and (c_force or not force) and c_config == config
            if covered:
                return await asyncio.shield(self._current)  # type: ignore[arg-type]
        if self._follow is not None and not self._follow.done():
            f_ids, f_force = self._follow_spec  # type: ignore[misc]
            merged = None if f_ids is None or ids is None else f_ids | ids
            self._follow_spec = (merged, f_force or force)
            return await asyncio.shield(self._follow)
        if current_running:
            self._follow_spec = (ids, force)
            self._follow = asyncio.ensure_future(self._run_after(self._current))
            return await asyncio.shield(self._follow)
        self._current_spec = (ids, force, config)
        self._current = asyncio.ensure_future(self._refresh_once(ids, force))
        return await asyncio.shield(self._current)

    async def _run_after(self, previous: asyncio.Future[dict[str, Any]] | None) -> dict[str, Any]:
        with contextlib.suppress(BaseException):
            if previous is not None:
                await asyncio.shield(previous)
        ids, force = self._follow_spec  # type: ignore[misc]
        self._follow = None
        self._follow_spec = None
        self._current = asyncio.current_task()
        self._current_spec = (ids, force, self._config())
        return await self._refresh_once(ids, force)

    def _factor(self, row: dict[str, Any]) -> float:
        la = row["last_attempt"]
        cached = self._jitters.get(row["id"])
        if cached is None or cached[0] != la:
            cached = (la, 1.0 + self._rng.uniform(-self.jitter, self.jitter))
            self._jitters[row["id"]] = cached
        return cached[1]

    def _due_at(self, row: dict[str, Any], live: dict[int, str]) -> float:
        """When list ``row`` is next due (clock time; -inf = now)."""
        la = row["last_attempt"]
        has_copy = row["id"] in live
        if la is None or (not has_copy and not row["last_error"]):
            return float("-inf")
        interval = float(row["update_interval"])
        if row["last_error"]:
            interval = min(interval, self.retry_interval)
        return float(la + interval * self._factor(row))

    def live_file(self, row: dict[str, Any]) -> str | None:
        """The copy of list ``row`` the live index was compiled from, or None."""
        return self._live_files([row]).get(row["id"])

    def _live_files(self, rows: list[dict[str, Any]]) -> dict[int, str]:
        """id → cached copy the live index was compiled from (existing, still this list's)."""
        index = self.index
        if index is None:
            return {}
        meta = index.lists
        out = {}
        for row in rows:
            info = meta.get(row["list_id"])
            if not info:
                continue
            path = info.get("path") or ""
            m = _CACHE_RE.match(os.path.basename(path))
            if (m and os.path.dirname(path) == self.cache_dir and int(m.group(1)) == row["id"]
                    and m.group(2) == _token(row) and os.path.isfile(path)):
                out[row["id"]] = path
        return out

    def _new_copy_path(self, row: dict[str, Any]) -> str:
        return os.path.join(self.cache_dir,
                            f"list-{row['id']}-{_token(row)}-{secrets.token_hex(4)}.txt")

    @staticmethod
    def _sig(entries: Iterable[tuple[Any, ...]]) -> tuple[Any, ...]:
        return tuple(sorted(entries))

    def _live_sig(self) -> tuple[Any, ...] | None:
        if self.index is None:
            return None
        return self._sig((lid, m.get("name"), m.get("kind"), m.get("mode"), m.get("format"),
                          m.get("path")) for lid, m in self.index.lists.items())

    async def _download(self, row: dict[str, Any], live_path: str | None, sem: asyncio.Semaphore) -> dict[str, Any]:
        async with sem:
            self._emit("download_started", id=row["id"], list_id=row["list_id"], name=row["name"])
            dest = self._new_copy_path(row)
            out: dict[str, Any] = {"status": "failed", "path": None, "error": None, "bytes": 0,
                         "etag": None, "last_modified": None}
            try:
                if is_url(row["source"]):
                    res = await self._fetch(
                        row["source"], dest,
                        etag=row["etag"] if live_path else None,
                        last_modified=row["last_modified"] if live_path else None,
                        max_bytes=self.max_bytes, resolve=self._resolve, **self.fetch_options)
                    out.update(status=res.status, bytes=res.bytes, etag=res.etag,
                               last_modified=res.last_modified)
                else:
                    real = resolve_local_source(row["source"], self.local_dirs)  # every read
                    st = os.stat(real)
                    tag = f"local:{st.st_size}:{st.st_mtime_ns}"
                    if live_path and row["etag"] == tag:
                        out.update(status="not_modified", etag=tag)
                    else:
                        size = await asyncio.get_running_loop().run_in_executor(
                            None, _copy_local, real, dest, self.max_bytes)
                        out.update(status="updated", bytes=size, etag=tag,
                                   last_modified=time.strftime(
                                       "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(st.st_mtime)))
                if out["status"] == "updated":
                    out["path"] = dest
                elif out["status"] == "not_modified":
                    if not live_path:
                        raise download.FetchError("not modified, but there is no cached copy")
                    out["path"] = live_path
                    with contextlib.suppress(OSError):
                        out["bytes"] = os.path.getsize(live_path)
                else:
                    raise download.FetchError(f"unexpected fetch status {out['status']!r}")
            except asyncio.CancelledError:
                with contextlib.suppress(OSError):
                    os.unlink(dest)
                raise
            except FileNotFoundError:
                out.update(status="failed", error="local list file not found")
            except (download.FetchError, ListValidationError) as exc:
                out.update(status="failed", error=self._scrub(str(exc)))
            except Exception as exc:  # noqa: BLE001 - one list's failure is recorded, not raised
                out.update(status="failed", error=self._scrub(f"{type(exc).__name__}: {exc}"))
            if out["status"] == "failed":
                with contextlib.suppress(OSError):
                    os.unlink(dest)
            self._emit("download_finished", id=row["id"], list_id=row["list_id"],
                       name=row["name"], status=out["status"], bytes=out["bytes"],
                       error=out["error"])
            return out

    async def _refresh_once(self, ids: frozenset[int] | None, force: bool) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            report = await self._refresh_inner(ids, force, started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a refresh never takes the loop down
            log.exception("list refresh failed")
            report = {"status": "failed", "swapped": False, "entries": self.domains(),
                      "error": self._scrub(f"{type(exc).__name__}: {exc}"), "lists": {}}
            self._emit("refresh_finished", status="failed", entries=self.domains(),
                       error=report["error"], seconds=round(time.perf_counter() - started, 3))
        self.last_report = report
        return report

    async def _refresh_inner(self, ids: frozenset[int] | None, force: bool, started: float) -> dict[str, Any]:
        os.makedirs(self.cache_dir, exist_ok=True)
        os.makedirs(os.path.dirname(self.index_path) or ".", exist_ok=True)
        now = self.clock()
        rows = self.store.list()
        enabled = [r for r in rows if r["enabled"]]
        live = self._live_files(enabled)
        targets = [r for r in enabled if ids is None or r["id"] in ids]
        allowed = self.downloads_allowed()
        waiting = [r for r in targets if not allowed and is_url(r["source"])]
        due = [r for r in targets if r not in waiting and (force or now >= self._due_at(r, live))]
        self._emit("refresh_started", lists=[r["id"] for r in due], force=force)

        sem = asyncio.Semaphore(self.max_parallel)
        results = await asyncio.gather(*(self._download(r, live.get(r["id"]), sem) for r in due))
        downloads = {r["id"]: res for r, res in zip(due, results)}
        attempt_at = self.clock()
        for row, res in zip(due, results):
            if res["status"] == "failed":
                self.store.record_result(row["id"], ok=False, at=attempt_at, error=res["error"])

        sources, paths = [], {}
        for row in enabled:
            d = downloads.get(row["id"])
            path = d["path"] if d and d["path"] else live.get(row["id"])
            if not path:
                continue  # never downloaded successfully: nothing to compile for it
            paths[row["id"]] = path
            sources.append({"list_id": row["list_id"], "path": path, "format": row["format"],
                            "kind": row["kind"], "mode": row["mode"], "name": row["name"]})
        new_files = [d["path"] for d in downloads.values() if d["status"] == "updated"]
        sig = self._sig((s["list_id"], s["name"], s["kind"], s["mode"], s["format"], s["path"])
                        for s in sources)
        live_sig = self._live_sig()
        unchanged = sig == live_sig or (live_sig is None and not sources)
        lists_report = {
            r["id"]: {"name": r["name"], "download": downloads[r["id"]]["status"]
                      if r["id"] in downloads else "skipped",
                      "error": downloads[r["id"]]["error"] if r["id"] in downloads else None}
            for r in enabled if ids is None or r["id"] in ids or r["id"] in downloads
        }
        for r in waiting:
            lists_report[r["id"]]["download"] = "waiting_for_clock"

        failed_before = sig == self._failed_sig and now < self._failed_at + self.retry_interval
        if not force and (unchanged or failed_before):
            # Nothing new to compile: record the not-modified checks as successes.
            for row in due:
                d = downloads[row["id"]]
                if d["status"] == "not_modified" and unchanged:
                    self.store.record_result(row["id"], ok=True, at=attempt_at,
                                             etag=d["etag"], last_modified=d["last_modified"])
                elif d["status"] == "not_modified":
                    self.store.record_result(row["id"], ok=None, at=attempt_at)
            status = "unchanged" if unchanged else "failed"
            error = None if unchanged else "the same lists failed to compile before; not retried"
            report = {"status": status, "swapped": False, "entries": self.domains(),
                      "error": error, "lists": lists_report}
            self._emit("refresh_finished", status=status, entries=self.domains(), error=error,
                       seconds=round(time.perf_counter() - started, 3))
            return report

        self._emit("compile_started", lists=len(sources))
        next_path = self.index_path + ".next"

        def progress(event: dict[str, Any]) -> None:
            event = dict(event)
            phase = event.pop("event", "progress")
            event.pop("path", None)
            self._emit("compile_progress", phase=phase, **event)

        new_index: Index | None = None
        error = None
        creport = None
        try:
            creport = await self._compile(sources, next_path, on_progress=progress)
            if not creport.ok:
                error = self._scrub(creport.error or "compile failed")
            else:
                loop = asyncio.get_running_loop()
                new_index = await loop.run_in_executor(None, Index.open, next_path)
                os.replace(next_path, self.index_path)
                await loop.run_in_executor(None, _fsync_dir, self.index_path)
                new_index.path = self.index_path
        except asyncio.CancelledError:
            self._discard(new_files, next_path)
            raise
        except Exception as exc:  # noqa: BLE001
            error = self._scrub(f"{type(exc).__name__}: {exc}")
            if new_index is not None:
                new_index.close()
                new_index = None
        done_at = self.clock()
        per_list = dict(creport.lists) if creport is not None else {}

        if new_index is None:
            self._discard(new_files, next_path)
            self._failed_sig, self._failed_at = sig, done_at
            for row in enabled:
                if row["id"] not in paths:
                    continue
                lr = per_list.get(row["list_id"])
                own = self._scrub(getattr(lr, "error", None) or "") or None
                msg = f"list failed: {own}" if own else \
                    f"index not updated: {error}"
                d = downloads.get(row["id"])
                if d is not None and d["status"] == "failed":
                    continue  # keep the download error
                self.store.record_result(row["id"], ok=False, at=done_at, error=msg,
                                         attempted=d is not None)
                lists_report.setdefault(row["id"], {"name": row["name"], "download": "skipped"})
                lists_report[row["id"]]["error"] = msg
            report = {"status": "failed", "swapped": False, "entries": self.domains(),
                      "error": error, "lists": lists_report}
            self._emit("refresh_finished", status="failed", entries=self.domains(), error=error,
                       seconds=round(time.perf_counter() - started, 3))
            return report

        await self._swap(new_index)
        self._failed_sig = None
        self._emit("index_swapped", entries=new_index.entries, lists=len(sources))
        for row in enabled:
            if row["id"] not in paths:
                continue
            lr = per_list.get(row["list_id"])
            counters: dict[str, Any] = {}
            if lr is not None:
                counters = {"entries": lr.entries, "errors": lr.errors, "skipped": lr.skipped}
            d = downloads.get(row["id"])
            if d is None:  # not due: only the counters
                self.store.record_result(row["id"], ok=None, attempted=False, **counters)
            elif d["status"] == "failed":  # compiled from its previous copy
                self.store.record_result(row["id"], ok=None, attempted=False, **counters)
            else:
                extra = {"bytes": d["bytes"]}
                if d["status"] == "updated" or d["etag"] or d["last_modified"]:
                    extra.update(etag=d["etag"], last_modified=d["last_modified"])
                self.store.record_result(row["id"], ok=True, at=done_at, **counters, **extra)
            if row["id"] in lists_report and lr is not None:
                lists_report[row["id"]].update(entries=lr.entries, errors=lr.errors,
                                               skipped=lr.skipped)
        self._cleanup_cache()
        report = {"status": "ok", "swapped": True, "entries": new_index.entries, "error": None,
                  "lists": lists_report,
                  "compile": {k: getattr(creport, k) for k in
                              ("rules", "entries", "regex", "file_bytes", "seconds",
                               "peak_rss_bytes")}}
        self._emit("refresh_finished", status="ok", entries=new_index.entries, error=None,
                   seconds=round(time.perf_counter() - started, 3))
        return report

    # ------------------------------------------------------------------ cache files

    def _scrub(self, text: str) -> str:
        """An error text without the cache's and the index's internal paths (it is shown in
        the list's public status and in events)."""
        for path, label in ((self.cache_dir, "<list cache>"),
                            (os.path.dirname(self.index_path), "<index dir>")):
            if path and path != os.sep:
                text = text.replace(path, label)
        return text

    def _discard(self, files: list[str], next_path: str) -> None:
        for path in [*files, next_path]:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _cleanup_cache(self) -> None:
        """Delete cached copies the live index does not use, and stale temporary files."""
        keep = set()
        if self.index is not None:
            keep = {m.get("path") for m in self.index.lists.values()}
        busy = self.running and asyncio.current_task() is not self._current
        try:
            names = os.listdir(self.cache_dir)
        except OSError:
            return
        for name in names:
            path = os.path.join(self.cache_dir, name)
            if _CACHE_RE.match(name):
                if path in keep or busy:
                    continue
            elif not (name.startswith(".list-") and ".part-" in name):
                continue
            elif busy:
                continue
            with contextlib.suppress(OSError):
                os.unlink(path)

    # ------------------------------------------------------------------ scheduler

    async def _schedule(self) -> None:
        while not self._stopped:
            assert self._wake is not None
            self._wake.clear()  # a wake() during the tick makes the wait below return at once
            try:
                wait = await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("list scheduler tick failed")
                wait = self.poll_interval
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.01, wait))

    async def _tick(self) -> float:
        """One scheduler step: refresh if anything is due or the index is out of date;
        returns how long to sleep."""
        now = self.clock()
        enabled = self.store.list(enabled=True)
        live = self._live_files(enabled)
        due_times = self._due_times(enabled, live)
        needed = any(now >= t for t in due_times.values())
        if not needed:
            sig = self._sig((r["list_id"], r["name"], r["kind"], r["mode"], r["format"],
                             live[r["id"]]) for r in enabled if r["id"] in live)
            live_sig = self._live_sig()
            stale = sig != live_sig and not (live_sig is None and not sig)
            needed = stale and (sig != self._failed_sig
                                or now >= self._failed_at + self.retry_interval)
        if needed:
            await self.refresh()
            now = self.clock()
            enabled = self.store.list(enabled=True)
            live = self._live_files(enabled)
            due_times = self._due_times(enabled, live)
        future = [t - now for t in due_times.values() if t > now]
        return min([self.poll_interval, *future])

    def _due_times(self, enabled: list[dict[str, Any]], live: dict[int, str]) -> dict[int, float]:
        """id → when each list is next due; URL lists are left out while the clock gate is
        closed (its opening wakes the scheduler)."""
        allowed = self.downloads_allowed()
        return {r["id"]: self._due_at(r, live) for r in enabled if allowed or not is_url(r["source"])}


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
