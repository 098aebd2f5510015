"""Compile parsed lists into one index file, in a child process, and swap it in atomically.

The resolver never compiles: `await compile_in_child(sources, out_path)` starts
`python -m burrow.filtering.compiler` (a fresh interpreter, so the resolver's heap and
GIL are untouched; niced so DNS keeps the CPU), streams its progress events back to a
callback on the event loop, enforces a timeout, and kills the child if the awaiting task
is cancelled. The child runs `compile_index`, which

1. parses each source with `burrow.filtering.parsers.iter_parse_file(path, format)`
   (imported lazily; gzip recognised by its magic bytes, format detected when not given),
   streamed 64k rules at a time, so the rules are
   never all held at once; adblock `$badfilter` targets are dropped afterwards;
2. turns every non-regex rule into one Python int: hash << 32 | kind << 6 | list_id
   (kind = interned (how, action, important, extra)), appended to one list;
3. sorts that list in place (timsort on ints: ~0.5 s for 1M) and walks it once, merging
   runs of the same (hash, kind) into one entry whose list mask ORs their list ids and
   interning (mask, flags, extra) into a class table;
4. writes the file (see burrow.filtering.index for the format) under a temporary name in
   the same directory, fsyncs it, renames it over `out_path` and fsyncs the directory.

Until the rename, the old file keeps answering (an open Index keeps its mapping even
after). Any failing source (missing file, parser exception) fails the compile: the old
index stays and the report says which list failed and why.

Memory: the only big object is the key list (1M Python ints ≈ 48 MB) plus the output
arrays (10 MB) — measured by scripts/bench-index (child peak RSS, budget 150 MB).

Kinds: rules of an `allow` list are turned into allow entries whatever action the parser
gave them (a plain domains file parsed for an allow list says "block"); `threat` lists
compile like block lists (the filter stage logs their hits as security events, from the
list's kind in `Index.lists`). A list's blocking-mode override (`Source.mode`) is recorded
in the index metadata for the filter stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import resource
import sys
import time
from array import array
from collections import deque
from dataclasses import asdict, dataclass, field
from hashlib import blake2b
from itertools import compress, islice
from operator import eq
from zlib import crc32
from typing import Any, Callable, Iterable, Iterator, Sequence, cast

from burrow.dns import qtypes
from burrow.filtering.index import (
    ACTION_CODES,
    ALLOW_ACTIONS,
    FLAG_IMPORTANT,
    HOW_CODES,
    MAX_LISTS,
    encode_extra,
    write_index,
)

DEFAULT_TIMEOUT = 600.0  # seconds; a 1M-name compile takes ~3 s on x86, ~20 s on a Pi
CHUNK = 65536  # rules taken from a parser at a time (a progress event per chunk)
KINDS = ("block", "allow", "threat")
_KIND_LIMIT = 1 << 26  # kind ids fit in bits 6..31 of a sort key
_KIND_MASK = _KIND_LIMIT - 1
_SHR6 = (6).__rrshift__  # k >> 6: (hash, kind)
_SHR32 = (32).__rrshift__  # k >> 32: hash
_LOW32 = (0xFFFFFFFF).__and__  # kind << 6 | list_id


@dataclass(frozen=True)
class Source:
    """One list to compile: a file already downloaded (or a local list)."""

    list_id: int  # 0..63: the bit of this list in every mask
    path: str
    format: str | None = None  # None/"auto": the parser detects it
    kind: str = "block"  # block | allow | threat
    mode: str | None = None  # blocking-mode override for this list (the filter applies it)
    name: str = ""

    @classmethod
    def coerce(cls, value: "Source | dict[str, Any]") -> "Source":
        if isinstance(value, Source):
            src = value
        elif isinstance(value, dict):
            src = cls(**value)
        else:
            src = cls(*value)
        if not 0 <= src.list_id < MAX_LISTS:
            raise ValueError(f"list_id {src.list_id} is outside 0..{MAX_LISTS - 1}")
        if src.kind not in KINDS:
            raise ValueError(f"list {src.list_id}: kind {src.kind!r} is not one of {KINDS}")
        return src


@dataclass
class ListReport:
    list_id: int
    name: str = ""
    kind: str = "block"
    entries: int = 0  # rules taken from the parser
    errors: int = 0  # per-line errors the parser counted (+ rules this compiler rejected)
    skipped: int = 0  # lines the parser skipped on purpose (unsupported modifiers...)
    regex: int = 0
    error: str | None = None  # the list failed as a whole (missing file, parser crash)
    seconds: float = 0.0


@dataclass
class CompileReport:
    ok: bool
    path: str
    error: str | None = None
    lists: dict[int, ListReport] = field(default_factory=dict)
    rules: int = 0  # rules in, over all lists
    entries: int = 0  # index entries (distinct name × how/action, masks merged)
    regex: int = 0  # distinct regex rules
    file_bytes: int = 0
    seconds: float = 0.0
    peak_rss_bytes: int = 0  # of the process that compiled (the child)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lists"] = {str(k): v for k, v in d["lists"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CompileReport":
        d = dict(d)
        d["lists"] = {int(k): ListReport(**v) for k, v in d.get("lists", {}).items()}
        return cls(**d)


ProgressFn = Callable[[dict[str, Any]], Any]  # an event (JSON); a coroutine result is awaited
# A list parser: (path, format) -> its rules, or a result with .rules and counters.
Parser = Callable[..., Any]


def _qtype_code(q: Any) -> int:
    return q if isinstance(q, int) else qtypes.number(str(q))


def _load_parser(spec: str | Parser | None) -> Parser | None:
    """None = the streaming default (see _open_rules)."""
    if spec is None:
        return None
    if callable(spec):
        return spec
    module, _, func = spec.partition(":")
    found: Parser = getattr(importlib.import_module(module), func or "parse_file")
    return found


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    try:
        return len(value)
    except TypeError:
        return 0


@contextlib.contextmanager
def _open_rules(parse: Parser | None, path: str, fmt: str | None) -> Iterator[tuple[Iterable[Any], Any]]:
    """Yield (rules iterator, result with counters filled once the rules are consumed)."""
    if parse is not None:
        result = parse(path, fmt)
        yield cast(Iterable[Any], getattr(result, "rules", result)), result
        return
    from burrow.filtering import parsers
    from burrow.filtering.rules import ParseResult

    result = ParseResult(format=fmt if fmt not in (None, "", "auto") else "")
    rules = parsers.iter_parse_file(path, fmt if fmt not in (None, "", "auto") else None, result)
    try:
        yield rules, result
    finally:
        rules.close()  # closes the file even when a list fails half-way


class _Builder:
    """Accumulates rules as packed sort keys; `finish` sorts, merges and writes."""

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.crcs = array("I")  # crc32 of each name, for the index's pre-filter
        self.kinds: dict[tuple[int, int], int] = {}  # (flags, extra) → kind id
        self.kind_list: list[tuple[int, int]] = []
        self.extras: dict[bytes, int] = {}  # encoded extra → 1 + index
        self.regex: dict[tuple[str, int, int], int] = {}  # (pattern, flags, extra) → mask
        self.rules = 0
        self.dropped: set[int] = set()  # sort keys that $badfilter disabled

    def _extra(self, data: tuple[tuple[str, str], ...], qtypes: tuple[int, ...]) -> int:
        if not data and not qtypes:
            return 0
        raw = encode_extra(tuple(data), tuple(sorted({_qtype_code(q) for q in qtypes})))
        eid = self.extras.get(raw)
        if eid is None:
            eid = self.extras[raw] = len(self.extras) + 1
        return eid

    def _kind(self, how: str, action: str, important: bool, extra: int, allow_list: bool) -> int:
        if allow_list and action not in ALLOW_ACTIONS:
            action = "allow"
        flags = HOW_CODES[how] | ACTION_CODES[action] << 2 | (FLAG_IMPORTANT if important else 0)
        kid = self.kinds.get((flags, extra))
        if kid is None:
            kid = len(self.kind_list)
            if kid >= _KIND_LIMIT:
                raise ValueError("too many distinct rule kinds")
            self.kinds[(flags, extra)] = kid
            self.kind_list.append((flags, extra))
        return kid

    def add(self, list_id: int, rules: Iterable[Sequence[Any]], allow_list: bool, report: ListReport,
            progress: Callable[[], None]) -> None:
        keys_append = self.keys.append
        crcs_append = self.crcs.append
        local: dict[tuple[Any, ...], int] = {}  # (match, action, important) → kind id, for this list
        last = (None, None, None)  # the previous rule's (match, action, important)...
        kid = 0  # ...and its kind id: consecutive rules nearly always share both
        it = iter(rules)
        while True:
            chunk = list(islice(it, CHUNK))
            if not chunk:
                break
            for rule in chunk:
                try:
                    name, match, action, important, data, qtypes = rule
                except ValueError:  # a Rule with more fields than we use
                    name, match, action, important, data, qtypes = rule[:6]
                if data or qtypes or match == "regex":
                    self._add_special(list_id, rule[:6], allow_list, report, keys_append)
                    continue
                if match is not last[0] or action is not last[1] or important is not last[2]:
                    last = (match, action, important)
                    known = local.get(last)
                    if known is None:
                        try:
                            known = local[last] = self._kind(match, action, important, 0, allow_list)
                        except KeyError:
                            report.errors += 1
                            last = (None, None, None)
                            continue
                    kid = known
                raw = name.encode()
                crcs_append(crc32(raw))
                keys_append(
                    int.from_bytes(blake2b(raw, digest_size=8).digest(), "little") << 32
                    | kid << 6
                    | list_id
                )
            report.entries += len(chunk)
            self.rules += len(chunk)
            progress()

    def _add_special(self, list_id: int, rule: Sequence[Any], allow_list: bool, report: ListReport,
                     keys_append: Callable[[int], None]) -> None:
        name, match, action, important, data, qtypes = rule
        try:
            extra = self._extra(data, qtypes)
            if match == "regex":
                from burrow.filtering.regexset import check_pattern

                if check_pattern(name) is not None:
                    report.errors += 1
                    return
                kid = self._kind("exact", action, important, extra, allow_list)
                flags, _ = self.kind_list[kid]
                flags = flags & ~3  # "how" has no meaning for a regex
                key = (name, flags, extra)
                self.regex[key] = self.regex.get(key, 0) | 1 << list_id
                report.regex += 1
                return
            kid = self._kind(match, action, important, extra, allow_list)
        except (KeyError, ValueError, TypeError, AttributeError):
            report.errors += 1
            return
        raw = name.encode()
        self.crcs.append(crc32(raw))
        h = int.from_bytes(blake2b(raw, digest_size=8).digest(), "little")
        keys_append(h << 32 | kid << 6 | list_id)

    def drop(self, list_id: int, rules: Iterable[Sequence[Any]], allow_list: bool) -> None:
        """Remove `rules` (adblock $badfilter targets) from list `list_id`."""
        for rule in rules:
            name, match, action, important, data, qtypes = tuple(rule)[:6]
            try:
                extra = self._extra(data, qtypes)
                kid = self._kind("exact" if match == "regex" else match, action, important,
                                 extra, allow_list)
            except (KeyError, ValueError, TypeError, AttributeError):
                continue
            if match == "regex":
                key = (name, self.kind_list[kid][0] & ~3, extra)
                if key in self.regex:
                    self.regex[key] &= ~(1 << list_id)
                    if not self.regex[key]:
                        del self.regex[key]
                continue
            h = int.from_bytes(blake2b(name.encode(), digest_size=8).digest(), "little")
            self.dropped.add(h << 32 | kid << 6 | list_id)

    def finish(self, path: str, meta: dict[str, Any]) -> tuple[int, int]:
        """Sort, merge, write `path`. Returns (entries, file bytes)."""
        keys = self.keys
        if self.dropped:
            dropped = self.dropped
            keys[:] = [k for k in keys if k not in dropped]
        keys.sort()
        n = len(keys)
        # Vectorised over C iterators (map/compress), not a Python loop per entry.
        # Runs of one (hash, kind) from several lists: positions i with g[i] == g[i+1].
        same = map(eq, map(_SHR6, keys), map(_SHR6, islice(keys, 1, None)))
        merge_at = list(compress(range(n - 1), same))
        hashes = array("Q", map(_SHR32, keys))
        lows = array("I", map(_LOW32, keys))  # kind << 6 | list_id
        classes: dict[tuple[int, int], int] = {}  # (mask, kind) → class id
        class_list: list[tuple[int, int, int]] = []
        lowmap = {
            low: self._class(classes, class_list, 1 << (low & 63), low >> 6)
            for low in sorted(set(lows))
        }
        cids = array("I", map(lowmap.__getitem__, lows))
        del lows
        if merge_at:
            keep = bytearray(b"\x01") * n
            head = prev = -2
            mask = 0
            for i in merge_at:
                if i != prev + 1:  # a new run starts at i
                    if head >= 0:
                        kid = (keys[head] >> 6) & _KIND_MASK
                        cids[head] = self._class(classes, class_list, mask, kid)
                    head = i
                    mask = 1 << (keys[i] & 63)
                mask |= 1 << (keys[i + 1] & 63)
                keep[i + 1] = 0
                prev = i
            cids[head] = self._class(classes, class_list, mask, (keys[head] >> 6) & _KIND_MASK)
            hashes = array("Q", compress(hashes, keep))
            cids = array("I", compress(cids, keep))
        keys.clear()  # free ~48 MB before writing
        extras = sorted(self.extras, key=self.extras.__getitem__)
        meta["regex"] = [[p, mask, flags, extra] for (p, flags, extra), mask in self.regex.items()]
        meta["rules"] = self.rules
        size = write_index(path, hashes, cids, class_list, extras, meta, self.crcs)
        return len(hashes), size

    def _class(self, classes: dict[tuple[int, int], int], class_list: list[tuple[int, int, int]], mask: int,
               kid: int) -> int:
        cid = classes.get((mask, kid))
        if cid is None:
            flags, extra = self.kind_list[kid]
            cid = classes[(mask, kid)] = len(class_list)
            class_list.append((mask, flags, extra))
        return cid


def _temp_path(out_path: str, pid: int) -> str:
    head, tail = os.path.split(os.path.abspath(out_path))
    return os.path.join(head, f".{tail}.tmp-{pid}")


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def compile_index(
    sources: Iterable[Source | dict[str, Any]],
    out_path: str | os.PathLike[str],
    progress: ProgressFn | None = None,
    *,
    parser: str | Parser | None = None,
) -> CompileReport:
    """Parse `sources` and write one index at `out_path`, atomically. Never raises for a
    bad list: the report says what failed (and then `out_path` is left as it was).

    Meant to run in the child (see `compile_in_child`); it can run in-process in tests
    and tools. `progress(event)` receives dicts: {"event": "list_started", "list_id",
    "name"}, {"event": "progress", "list_id", "rules"} (every 64k rules; rules = total so
    far), {"event": "list_finished", "list_id", "entries", "errors", "skipped",
    "error"}, {"event": "writing", "rules"}, {"event": "finished", "entries"}.
    `parser` overrides the parser: a callable or "module:function" taking (path,
    format) and returning rules or an object with `.rules` (and optional `errors`,
    `skipped` counters). By default rules are streamed from
    burrow.filtering.parsers.iter_parse (parse_file would hold every Rule at once:
    ~170 MB for 1M names).
    """
    started = time.perf_counter()
    out_path = os.fspath(out_path)
    emit = progress or (lambda event: None)
    report = CompileReport(ok=False, path=out_path)
    try:
        srcs = [Source.coerce(s) for s in sources]
        seen = set()
        for s in srcs:
            if s.list_id in seen:
                raise ValueError(f"list_id {s.list_id} appears twice")
            seen.add(s.list_id)
        parse = _load_parser(parser)
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        report.error = f"{type(exc).__name__}: {exc}"
        return _finish_report(report, started)
    builder = _Builder()
    meta: dict[str, Any] = {"created": time.time(), "lists": {}}
    failed = []
    for src in srcs:
        lr = ListReport(list_id=src.list_id, name=src.name, kind=src.kind)
        report.lists[src.list_id] = lr
        emit({"event": "list_started", "list_id": src.list_id, "name": src.name})
        t0 = time.perf_counter()
        try:
            with _open_rules(parse, src.path, src.format) as (rules, result):
                builder.add(
                    src.list_id,
                    rules,
                    src.kind == "allow",
                    lr,
                    lambda: emit({"event": "progress", "list_id": src.list_id,  # noqa: B023 - called within this iteration
                                  "rules": builder.rules}),
                )
            lr.errors += _count(getattr(result, "errors", 0))
            skipped = getattr(result, "skipped", 0)
            lr.skipped += sum(skipped.values()) if isinstance(skipped, dict) else _count(skipped)
            bad = getattr(result, "badfilter_rules", None)
            if bad:  # adblock $badfilter: drop the rules it disables, in this list
                builder.drop(src.list_id, bad, src.kind == "allow")
        except Exception as exc:  # noqa: BLE001 - one list's failure is reported
            lr.error = f"{type(exc).__name__}: {exc}"
            failed.append(src.list_id)
        lr.seconds = round(time.perf_counter() - t0, 3)
        emit({"event": "list_finished", "list_id": src.list_id, "entries": lr.entries,
              "errors": lr.errors, "skipped": lr.skipped, "error": lr.error})
        meta["lists"][str(src.list_id)] = {
            "name": src.name, "kind": src.kind, "mode": src.mode, "format": src.format,
            "path": src.path, "entries": lr.entries, "errors": lr.errors,
            "skipped": lr.skipped, "regex": lr.regex,
        }
    report.rules = builder.rules
    report.regex = len(builder.regex)
    if failed:
        names = ", ".join(f"{i} ({report.lists[i].error})" for i in failed)
        report.error = f"list(s) failed, index not replaced: {names}"
        return _finish_report(report, started)
    emit({"event": "writing", "rules": builder.rules})
    tmp = _temp_path(out_path, os.getpid())
    try:
        report.entries, report.file_bytes = builder.finish(tmp, meta)
        os.replace(tmp, out_path)
        _fsync_dir(out_path)
    except Exception as exc:  # noqa: BLE001
        report.error = f"writing the index failed: {type(exc).__name__}: {exc}"
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return _finish_report(report, started)
    report.ok = True
    emit({"event": "finished", "entries": report.entries})
    return _finish_report(report, started)


def _finish_report(report: CompileReport, started: float) -> CompileReport:
    report.seconds = round(time.perf_counter() - started, 3)
    report.peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return report


# ------------------------------------------------------------------ the child side


def _child_main() -> int:
    """`python -m burrow.filtering.compiler`: a JSON job on stdin, JSON lines on fd 1."""
    events = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout = sys.stderr  # a stray print from a parser must not corrupt the channel
    job = json.loads(sys.stdin.read())
    if job.get("nice"):
        try:
            os.nice(int(job["nice"]))
        except OSError:
            pass

    def progress(event: dict[str, Any]) -> None:
        events.write(json.dumps(event) + "\n")

    report = compile_index(job["sources"], job["out"], progress, parser=job.get("parser"))
    progress({"event": "done", "report": report.to_dict()})
    events.flush()
    return 0 if report.ok else 1


async def compile_in_child(
    sources: Iterable[Source | dict[str, Any]],
    out_path: str | os.PathLike[str],
    on_progress: ProgressFn | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    parser: str | None = None,
    nice: int = 10,
    python: str | None = None,
) -> CompileReport:
    """Compile in a child process without blocking the loop; see the module doc.

    `on_progress(event)` is called on the loop for each event of `compile_index` (a
    coroutine result is awaited). On timeout the child is killed and the report says so
    (ok=False); if the awaiting task is cancelled the child is killed and the
    cancellation propagates. In every failing case `out_path` is left as it was.
    """
    out_path = os.fspath(out_path)
    started = time.perf_counter()
    job = json.dumps({
        "sources": [asdict(Source.coerce(s)) for s in sources],
        "out": out_path,
        "parser": parser,
        "nice": nice,
    }).encode()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = await asyncio.create_subprocess_exec(
        python or sys.executable, "-m", "burrow.filtering.compiler",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        limit=1 << 20,
    )
    stderr_tail: deque[bytes] = deque(maxlen=40)
    result: dict[str, Any] = {}

    async def drain_stderr() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            stderr_tail.append(line)

    async def talk() -> None:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(job)
        await proc.stdin.drain()
        proc.stdin.close()
        async for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "done":
                result["report"] = event["report"]
                continue
            if on_progress is not None:
                try:
                    maybe = on_progress(event)
                    if asyncio.iscoroutine(maybe):
                        await maybe
                except Exception:  # noqa: BLE001 - a bad listener must not fail the compile
                    pass
        await proc.wait()

    drain = asyncio.ensure_future(drain_stderr())
    try:
        await asyncio.wait_for(talk(), timeout)
    except asyncio.TimeoutError:
        return CompileReport(
            ok=False, path=out_path,
            error=f"compile timed out after {timeout:g} s; child killed",
            seconds=round(time.perf_counter() - started, 3),
        )
    finally:
        if proc.returncode is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            await asyncio.shield(proc.wait())
            _remove_quietly(_temp_path(out_path, proc.pid))
        drain.cancel()
    if "report" in result:
        report = CompileReport.from_dict(result["report"])
        report.seconds = round(time.perf_counter() - started, 3)
        return report
    tail = b"".join(stderr_tail).decode("utf-8", "replace").strip()
    return CompileReport(
        ok=False, path=out_path,
        error=f"compiler child exited with {proc.returncode}: {tail[-2000:] or 'no output'}",
        seconds=round(time.perf_counter() - started, 3),
    )


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(_child_main())
