"""The compiled blocklist index: one file, memory-mapped read-only, looked up by suffix walk.

The compiler (burrow.filtering.compiler, in a child process) writes the file; the resolver
opens it with `Index.open(path)` and calls `lookup(name)`. Nothing of the big arrays is
ever copied into Python objects: they stay in the page cache and are read through
memoryview casts, so a 1M-name index costs about 10 MB of page cache and no Python heap.

Lookup
------
`lookup("a.b.example.com")` hashes the name and each of its suffixes (b.example.com,
example.com, com) and finds each hash in the sorted hash array: a bucket table indexed by
the hash's top bits gives the slice to bisect (a handful of entries). An entry matches by
how it was listed:

    exact    only the name itself                  (hosts, domains lists)
    subtree  the name and every name below it      (||d^, onlydomains, dnsmasq, RPZ d + *.d)
    below    strictly below the name: *.x.com      (never x.com itself, never evilx.com:
                                                    suffixes are cut at dots only)

Every entry found along the walk is returned (most specific first), each with its list
mask: the index reports block and allow hits side by side and leaves the decision
(allow beats block, $important beats allow, which lists apply to a client's group) to the
filter stage. `lists=` narrows the masks to the lists that apply to the caller, and then
lets the regex check be skipped when it cannot change the decision (see `lookup`).

Hash
----
A name's key is the first 8 bytes of blake2b(name, digest_size=8), little-endian, of the
lower-case ASCII (IDNA) name without the trailing dot. Why blake2b: it is in the standard
library (C, ~0.3 us for a short name), it is stable across processes, Python versions and
machines (unlike `hash()`, which is salted per process), and it is a cryptographic hash,
so a list author cannot craft a name that collides with a chosen popular name (that is a
2^64 preimage search). Only hashes are stored, never names, so a lookup of a name that is
NOT in the index reports a false match when its hash equals one of the N stored hashes:
for one probe that chance is about N / 2^64 (1M names: 5.4e-14), and a walk makes one
probe per label (≤ ~5 for real names). There are no false negatives.

File format (version 1, all integers in the machine's byte order, which is recorded)
---------------------------------------------------------------------------------
    header, 256 bytes (struct `_HEADER`, then zero padding)
        magic      8s   b"BURRIDX\\n"
        version    u16  1
        byteorder  u8   1 = little, 2 = big (the arrays are native; a mismatch is refused)
        bucket_bits u8  B: the bucket table has 2^B + 1 entries
        cid_size   u8   2 or 4: bytes per entry class id
        (3 pad bytes)
        header_size u32 256
        crc32      u32  zlib.crc32 of the header (with this field zero) then the body
        file_size  u64
        n_entries  u64  N (entries: one per distinct (name, class))
        n_classes  u64  C
        n_extras   u64  E
        9 sections, each (offset u64, length u64), offsets 8-byte aligned:
    buckets        u32[2^B + 1]  buckets[b] = first entry whose hash >> (64 - B) >= b
    hashes         u64[N]        sorted ascending (equal hashes adjacent: one per class)
    class_ids      u16|u32[N]    entry → class
    class_masks    u64[C]        bit i set = list i (0..63) contains it
    class_flags    u8[C]         bits 0-1 how (0 exact, 1 subtree, 2 below),
                                 bits 2-4 action (block, allow, nxdomain, nodata, drop,
                                 redirect, passthru), bit 5 important
    class_extras   u32[C]        0 = none, else 1 + index into the extras table
    extra_offsets  u32[E + 1]    extras[i] = blob[offsets[i]:offsets[i+1]]
    extra_blob     bytes         each extra: JSON [data, qtypes] (redirect targets, qtypes)
    meta           bytes         JSON: {"lists": {id: {...}}, "regex": [[pattern, mask,
                                 flags, extra], ...], "created": unix time, "rules": n}

A class is a distinct (list mask, flags, extra) triple: real lists have a few hundred, so
each entry costs 8 bytes of hash + 2 bytes of class id instead of 8 + 8 + 1 (mask + flags):
10 MB instead of 17 MB of page cache for 1M names, which is what keeps the resolver's
RSS growth under its 16 MB budget once the index is warm. Several rules for one name
from several lists with the same how/action merge into one entry whose mask ORs their
lists; a name listed with different how/action (e.g. blocked exact in list 1, allowed
subtree in list 2) gets one entry per combination, adjacent in the array.

Regex rules are few (hundreds to a few thousand); they live in the meta JSON and are
compiled at open into two `RegexSet`s (deny and allow), each a few combined alternations.

Integrity: `open` checks magic, version, byte order, sizes and every section's bounds,
and (by default) the CRC, reading the file with ordinary reads so the check does not
inflate the resolver's RSS. Anything wrong raises `IndexFormatError` with the reason.
The compiler writes to a temporary name in the same directory, fsyncs and renames, so an
open Index keeps answering from the old inode until it is closed.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
import zlib
from zlib import crc32
from array import array
from bisect import bisect_left
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, Iterable, Literal, NamedTuple

if TYPE_CHECKING:
    from burrow.filtering.regexset import RegexSet

MAGIC = b"BURRIDX\n"
VERSION = 1
HEADER_SIZE = 256
SECTIONS = (
    "filter",
    "buckets",
    "hashes",
    "class_ids",
    "class_masks",
    "class_flags",
    "class_extras",
    "extra_offsets",
    "extra_blob",
    "meta",
)
_HEADER = struct.Struct("<8sHBBBB2xIIQQQQ" + "QQ" * len(SECTIONS))
_CRC_OFFSET = 8 + 2 + 1 + 1 + 1 + 1 + 2 + 4  # where the crc32 field sits in the header
_BYTEORDER = {"little": 1, "big": 2}

ALL_LISTS = (1 << 64) - 1
MAX_LISTS = 64

# How an entry matches, in flags bits 0-1.
HOW_EXACT, HOW_SUBTREE, HOW_BELOW = 0, 1, 2
HOWS = ("exact", "subtree", "below")
HOW_CODES = {name: code for code, name in enumerate(HOWS)}
# What it does, in flags bits 2-4. "allow" and "passthru" are the allow-like actions.
ACTIONS = ("block", "allow", "nxdomain", "nodata", "drop", "redirect", "passthru")
ACTION_CODES = {name: code for code, name in enumerate(ACTIONS)}
ALLOW_ACTIONS = frozenset(("allow", "passthru"))
FLAG_IMPORTANT = 0x20


class IndexFormatError(ValueError):
    """The file is not a complete, intact index of a version this code reads."""


class Match(NamedTuple):
    """One index entry (or regex rule) that matched a looked-up name."""

    name: str  # the entry's name (the suffix that matched), or the regex pattern
    how: str  # "exact" | "subtree" | "below" | "regex"
    action: str  # one of ACTIONS
    mask: int  # lists (bit i = list i) with this entry, narrowed to lookup(lists=)
    important: bool
    data: tuple[tuple[str, str], ...] = ()  # redirect targets, e.g. (("A", "1.2.3.4"),)
    qtypes: tuple[int, ...] = ()  # query types (ints) the rule is limited to; () = all

    @property
    def allows(self) -> bool:
        return self.action in ALLOW_ACTIONS


def name_hash(name: bytes) -> int:
    """The 64-bit key of a lower-case, dot-less-at-the-end name (see the module doc)."""
    return int.from_bytes(blake2b(name, digest_size=8).digest(), "little")


def false_positive_bound(entries: int, probes: int = 1) -> float:
    """Chance that a lookup of an absent name reports a match: ~probes * N / 2^64."""
    return probes * entries / 2.0**64


def masks(matches: Iterable[Match] | None) -> tuple[int, int, int]:
    """(deny mask, allow mask, important-deny mask) over a lookup's matches."""
    deny = allow = important = 0
    for m in matches or ():
        if m.action in ALLOW_ACTIONS:
            allow |= m.mask
        else:
            deny |= m.mask
            if m.important:
                important |= m.mask
    return deny, allow, important


def bucket_bits_for(entries: int) -> int:
    """Bucket table size: about 8 entries per bucket, so a bisect is 3 comparisons."""
    return max(1, min(24, entries.bit_length() - 3))


def filter_bits_for(entries: int) -> int:
    """Pre-filter size: a power of two ≥ 8 bits per entry (≤ 12% of its bits set, so
    ~88% of absent suffixes are rejected by one crc32 without computing blake2b)."""
    return max(10, min(32, (8 * entries - 1).bit_length()))


# An entry's extra data: (redirect targets, query types), as Match.data and Match.qtypes.
Extra = tuple[tuple[tuple[str, str], ...], tuple[int, ...]]


def _decode_extra(raw: bytes) -> Extra:
    data, qtypes = json.loads(raw)
    return tuple(tuple(d) if isinstance(d, list) else d for d in data), tuple(qtypes)


def encode_extra(data: tuple[tuple[str, str], ...], qtypes: tuple[int, ...]) -> bytes:
    return json.dumps([list(data), list(qtypes)], separators=(",", ":")).encode()


class Index:
    """A compiled index file, mapped read-only. Open with `Index.open(path)`.

    Cheap to keep open (the arrays stay in the page cache); `close()` unmaps it. The
    file can be replaced (renamed over) while open: this object keeps the old contents.
    Not thread-safe to close while another thread looks up; the resolver is one loop.
    """

    def __init__(self) -> None:  # use Index.open
        self.path = ""
        self._mm: mmap.mmap | None = None
        self._views: list[memoryview] = []
        self.meta: dict[str, Any] = {}  # JSON
        self._lists: dict[int, dict[str, Any]] = {}
        self.created = 0.0
        self.entries = 0
        self.classes = 0
        self.file_bytes = 0
        self._shift = 64
        self._extra_cache: dict[int, Extra] = {}
        self._deny_regex: RegexSet | None = None
        self._allow_regex: RegexSet | None = None
        self._deny_regex_important = False

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, verify: bool = True) -> "Index":
        """Map the index at `path`. Raises IndexFormatError (or OSError) if unusable.

        verify=True checks the CRC of the whole file first (ordinary reads, ~10 ms for a
        1M-name index): an SD card that flipped a bit gives a clear error, not a wrong
        answer.
        """
        self = cls()
        self.path = os.fspath(path)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            head = os.pread(fd, HEADER_SIZE, 0)
            fields = self._check_header(head, size)
            if verify:
                self._check_crc(fd, head, size, fields["crc"])
            if size == 0:
                raise IndexFormatError("empty file")
            mm = mmap.mmap(fd, size, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        try:
            # Random access: no read-ahead; only the pages lookups touch become resident.
            mm.madvise(mmap.MADV_RANDOM)
        except (AttributeError, OSError):  # pragma: no cover - not on every platform
            pass
        self._mm = mm
        try:
            self._map(fields)
        except Exception:
            self.close()
            raise
        return self

    def _check_header(self, head: bytes, size: int) -> dict[str, Any]:
        if len(head) < _HEADER.size:
            raise IndexFormatError(f"{self.path}: truncated header ({size} bytes)")
        values = _HEADER.unpack_from(head)
        magic, version, byteorder, bucket_bits, cid_size, filter_bits = values[:6]
        header_size, crc, file_size, n_entries, n_classes, n_extras = values[6:12]
        if magic != MAGIC:
            raise IndexFormatError(f"{self.path}: not a Burrow index (bad magic)")
        if version != VERSION:
            raise IndexFormatError(f"{self.path}: index version {version}, expected {VERSION}")
        if byteorder != _BYTEORDER[sys.byteorder]:
            raise IndexFormatError(f"{self.path}: written on a machine of the other byte order")
        if header_size != HEADER_SIZE:
            raise IndexFormatError(f"{self.path}: header size {header_size}")
        if file_size != size:
            raise IndexFormatError(
                f"{self.path}: truncated or extended: header says {file_size} bytes,"
                f" file has {size}"
            )
        if cid_size not in (2, 4) or not 1 <= bucket_bits <= 24 or not 10 <= filter_bits <= 32:
            raise IndexFormatError(f"{self.path}: bad class-id size, bucket or filter bits")
        sections = {}
        raw = values[12:]
        for i, name in enumerate(SECTIONS):
            off, length = raw[2 * i], raw[2 * i + 1]
            if off < HEADER_SIZE or off % 8 or off + length > size:
                raise IndexFormatError(f"{self.path}: section {name} out of bounds")
            sections[name] = (off, length)
        expected = {
            "filter": (1 << filter_bits) // 8,
            "buckets": 4 * ((1 << bucket_bits) + 1),
            "hashes": 8 * n_entries,
            "class_ids": cid_size * n_entries,
            "class_masks": 8 * n_classes,
            "class_flags": n_classes,
            "class_extras": 4 * n_classes,
            "extra_offsets": 4 * (n_extras + 1),
        }
        for name, length in expected.items():
            if sections[name][1] != length:
                raise IndexFormatError(f"{self.path}: section {name} has the wrong length")
        return {
            "bucket_bits": bucket_bits,
            "filter_bits": filter_bits,
            "cid_size": cid_size,
            "crc": crc,
            "entries": n_entries,
            "classes": n_classes,
            "extras": n_extras,
            "sections": sections,
            "size": size,
        }

    def _check_crc(self, fd: int, head: bytes, size: int, expected: int) -> None:
        crc = zlib.crc32(head[:_CRC_OFFSET] + b"\0\0\0\0" + head[_CRC_OFFSET + 4 :])
        pos = HEADER_SIZE
        chunk = 1 << 20
        while pos < size:
            block = os.pread(fd, min(chunk, size - pos), pos)
            if not block:
                raise IndexFormatError(f"{self.path}: short read at {pos}")
            crc = zlib.crc32(block, crc)
            pos += len(block)
        if crc != expected:
            raise IndexFormatError(f"{self.path}: checksum mismatch (corrupted file)")

    def _map(self, f: dict[str, Any]) -> None:
        assert self._mm is not None  # open() mapped it
        mv = memoryview(self._mm)
        self._views.append(mv)

        def view(name: str, fmt: Literal["B", "H", "I", "Q"]) -> memoryview:
            off, length = f["sections"][name]
            v = mv[off : off + length]
            self._views.append(v)
            if fmt != "B":
                v = v.cast(fmt)
                self._views.append(v)
            return v

        self.entries = f["entries"]
        self.classes = f["classes"]
        self.file_bytes = f["size"]
        self._shift = 64 - f["bucket_bits"]
        self._filter_mask = (1 << f["filter_bits"]) - 1
        self._filter = view("filter", "B")
        self._buckets = view("buckets", "I")
        self._hashes = view("hashes", "Q")
        self._class_ids = view("class_ids", "H" if f["cid_size"] == 2 else "I")
        self._class_masks = view("class_masks", "Q")
        self._class_flags = view("class_flags", "B")
        self._class_extras = view("class_extras", "I")
        self._extra_offsets = view("extra_offsets", "I")
        self._extra_blob = view("extra_blob", "B")
        self._n_extras = f["extras"]
        if self._buckets[0] != 0 or self._buckets[len(self._buckets) - 1] != self.entries:
            raise IndexFormatError(f"{self.path}: bucket table does not cover the entries")
        off, length = f["sections"]["meta"]
        try:
            self.meta = json.loads(bytes(mv[off : off + length]).decode())
            self.created = float(self.meta.get("created", 0))
            self._lists = {int(k): v for k, v in self.meta.get("lists", {}).items()}
            self._load_regex(self.meta.get("regex", []))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise IndexFormatError(f"{self.path}: bad metadata: {exc}") from exc

    def _load_regex(self, rules: list[list[Any]]) -> None:  # JSON: [pattern, mask, flags, extra]
        from burrow.filtering.regexset import RegexSet

        deny: list[tuple[str, int, int, int]] = []
        allow: list[tuple[str, int, int, int]] = []
        for pattern, mask, flags, extra in rules:
            (allow if ACTIONS[(flags >> 2) & 7] in ALLOW_ACTIONS else deny).append(
                (str(pattern), int(mask), int(flags), int(extra))
            )
            if extra and not 0 < extra <= self._n_extras:
                raise IndexFormatError("regex rule refers to a missing extra")
        self._deny_rules = deny
        self._allow_rules = allow
        self._deny_regex = RegexSet([r[0] for r in deny]) if deny else None
        self._allow_regex = RegexSet([r[0] for r in allow]) if allow else None
        self._deny_regex_important = any(r[2] & FLAG_IMPORTANT for r in deny)

    # ------------------------------------------------------------------ lookup

    def lookup(
        self,
        name: str,
        qtype: int | None = None,
        lists: int = ALL_LISTS,
        *,
        complete: bool = False,
    ) -> tuple[Match, ...] | None:
        """Every entry matching `name` or one of its suffixes, most specific first.

        `name` may carry a trailing dot and any case. `qtype` (an int, e.g. 1 for A)
        drops rules limited to other query types; None keeps them all. `lists` is the
        mask of lists that apply (the client's group); masks in the result are narrowed
        to it and entries outside it are not reported. Returns None when nothing matches.

        Regex rules are checked after the hash walk, and only when they could change the
        filter's decision: the deny regexes when the walk found no deny entry (or found an
        allow that an $important regex could override), the allow regexes when something
        denies and the walk found no allow. `complete=True` always checks both (for the
        explain endpoint).
        """
        if name[-1:] == ".":
            name = name[:-1]
        key = name.lower().encode("utf-8", "surrogateescape")
        hashes = self._hashes
        buckets = self._buckets
        shift = self._shift
        filt = self._filter
        fmask = self._filter_mask
        found: list[Match] | None = None
        pos = 0
        while True:
            part = key[pos:] if pos else key
            c = crc32(part) & fmask
            if filt[c >> 3] >> (c & 7) & 1:  # cheap pre-check: most suffixes stop here
                h = int.from_bytes(blake2b(part, digest_size=8).digest(), "little")
                b = h >> shift
                hi = buckets[b + 1]
                i = bisect_left(hashes, h, buckets[b], hi)
                if i < hi and hashes[i] == h:
                    found = self._collect(found, key, pos, i, h, qtype, lists)
            pos = key.find(b".", pos) + 1
            if not pos:
                break
        if self._deny_regex is not None or self._allow_regex is not None:
            found = self._check_regex(found, key, qtype, lists, complete)
        return tuple(found) if found else None

    def _collect(self, found: list[Match] | None, key: bytes, pos: int, i: int, h: int, qtype: int | None,
                 lists: int) -> list[Match] | None:
        hashes = self._hashes
        n = self.entries
        while i < n and hashes[i] == h:
            cid = self._class_ids[i]
            i += 1
            flags = self._class_flags[cid]
            how = flags & 3
            if (how == HOW_EXACT and pos) or (how == HOW_BELOW and not pos):
                continue
            mask = self._class_masks[cid] & lists
            if not mask:
                continue
            data: tuple[tuple[str, str], ...] = ()
            qtypes: tuple[int, ...] = ()
            extra = self._class_extras[cid]
            if extra:
                data, qtypes = self._extra(extra - 1)
                if qtype is not None and qtypes and qtype not in qtypes:
                    continue
            if found is None:
                found = []
            found.append(
                Match(
                    key[pos:].decode("utf-8", "surrogateescape"),
                    HOWS[how],
                    ACTIONS[(flags >> 2) & 7],
                    mask,
                    bool(flags & FLAG_IMPORTANT),
                    data,
                    qtypes,
                )
            )
        return found

    def _check_regex(self, found: list[Match] | None, key: bytes, qtype: int | None, lists: int,
                     complete: bool) -> list[Match] | None:
        deny, allow, important = masks(found)
        text: str | None = None
        if self._deny_regex is not None and (
            complete or not deny or (allow and not important and self._deny_regex_important)
        ):
            text = key.decode("utf-8", "surrogateescape")
            hits = self._regex_matches(self._deny_regex, self._deny_rules, text, qtype, lists)
            if hits:
                found = (found or []) + hits
                deny = 1
        if self._allow_regex is not None and (complete or (deny and not allow)):
            if text is None:
                text = key.decode("utf-8", "surrogateescape")
            hits = self._regex_matches(self._allow_regex, self._allow_rules, text, qtype, lists)
            if hits:
                found = (found or []) + hits
        return found

    def _regex_matches(self, regex_set: RegexSet, rules: list[tuple[str, int, int, int]], text: str,
                       qtype: int | None, lists: int) -> list[Match]:
        out: list[Match] = []
        for i in regex_set.search_all(text):
            pattern, mask, flags, extra = rules[i]
            mask &= lists
            if not mask:
                continue
            data: tuple[tuple[str, str], ...] = ()
            qtypes: tuple[int, ...] = ()
            if extra:
                data, qtypes = self._extra(extra - 1)
                if qtype is not None and qtypes and qtype not in qtypes:
                    continue
            out.append(
                Match(
                    pattern,
                    "regex",
                    ACTIONS[(flags >> 2) & 7],
                    mask,
                    bool(flags & FLAG_IMPORTANT),
                    data,
                    qtypes,
                )
            )
        return out

    def _extra(self, i: int) -> Extra:
        hit = self._extra_cache.get(i)
        if hit is None:
            if not 0 <= i < self._n_extras:
                raise IndexFormatError(f"{self.path}: extra {i} out of range")
            start, end = self._extra_offsets[i], self._extra_offsets[i + 1]
            try:
                hit = _decode_extra(bytes(self._extra_blob[start:end]))
            except (ValueError, TypeError) as exc:
                raise IndexFormatError(f"{self.path}: bad extra {i}: {exc}") from exc
            if len(self._extra_cache) >= 4096:  # bounded: redirect-heavy RPZ zones
                self._extra_cache.clear()
            self._extra_cache[i] = hit
        return hit

    # ------------------------------------------------------------------- other

    @property
    def lists(self) -> dict[int, dict[str, Any]]:
        """Per-list metadata recorded at compile time (kind, mode, name, entries...).

        Read once when the index opens (a blocked query reads it): do not modify."""
        return self._lists

    @property
    def closed(self) -> bool:
        return self._mm is None

    def stats(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "entries": self.entries,
            "classes": self.classes,
            "regex": len(self.meta.get("regex", [])),
            "rules": self.meta.get("rules", 0),
            "file_bytes": self.file_bytes,
            "lists": len(self.meta.get("lists", {})),
            "created": self.created,
        }

    def close(self) -> None:
        """Unmap the file. Lookups after close raise ValueError."""
        for v in reversed(self._views):
            v.release()
        self._views.clear()
        if self._mm is not None:
            self._mm.close()
            self._mm = None

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._mm is None else f"{self.entries} entries"
        return f"<Index {self.path!r} {state}>"


# ---------------------------------------------------------------------- writing


def write_index(
    path: str | os.PathLike[str],
    hashes: array[int],
    class_ids: array[int],
    classes: list[tuple[int, int, int]],
    extras: list[bytes],
    meta: dict[str, Any],
    crcs: Iterable[int] = (),
) -> int:
    """Write a complete index file at `path` (not atomically: the compiler writes a
    temporary name and renames). `hashes` must be sorted (array 'Q'), `class_ids` the
    parallel class of each entry, `classes` [(mask, flags, extra)], `extras` encoded with
    `encode_extra`, `crcs` the zlib.crc32 of every entry's name (for the pre-filter).
    Returns the file size."""
    n = len(hashes)
    if len(class_ids) != n:
        raise ValueError("hashes and class_ids differ in length")
    bits = bucket_bits_for(n)
    shift = 64 - bits
    # buckets[b] = first entry whose top bits are >= b (hashes are sorted).
    buckets = array("I", [bisect_left(hashes, b << shift) for b in range(1 << bits)])
    buckets.append(n)
    filter_bits = filter_bits_for(n)
    fmask = (1 << filter_bits) - 1
    filt = bytearray(1 << (filter_bits - 3))
    for c in crcs:
        c &= fmask
        filt[c >> 3] |= 1 << (c & 7)
    cid_code = "H" if len(classes) <= 1 << 16 else "I"
    if class_ids.typecode != cid_code:
        class_ids = array(cid_code, class_ids)
    masks_a = array("Q", (c[0] for c in classes))
    flags_a = array("B", (c[1] for c in classes))
    extras_a = array("I", (c[2] for c in classes))
    offsets = array("I", [0])
    blob = bytearray()
    for e in extras:
        blob += e
        offsets.append(len(blob))
    if len(blob) >= 1 << 32:
        raise ValueError("extras too large")
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    bodies: list[bytes | bytearray | array[int]] = [
        filt, buckets, hashes, class_ids, masks_a, flags_a, extras_a, offsets,
        bytes(blob), meta_bytes]  # in SECTIONS order
    layout = []
    pos = HEADER_SIZE
    for body in bodies:
        length = len(memoryview(body).cast("B"))
        layout.append((pos, length))
        pos += length
        pos += -pos % 8
    file_size = layout[-1][0] + layout[-1][1]

    def header(crc: int) -> bytes:
        flat = [x for pair in layout for x in pair]
        head = _HEADER.pack(
            MAGIC,
            VERSION,
            _BYTEORDER[sys.byteorder],
            bits,
            2 if cid_code == "H" else 4,
            filter_bits,
            HEADER_SIZE,
            crc,
            file_size,
            n,
            len(classes),
            len(extras),
            *flat,
        )
        return head + bytes(HEADER_SIZE - len(head))

    crc = zlib.crc32(header(0))
    with open(path, "wb") as out:
        out.write(header(0))
        written = HEADER_SIZE
        for (off, length), body in zip(layout, bodies):
            pad = off - written
            if pad:
                out.write(bytes(pad))
                crc = zlib.crc32(bytes(pad), crc)
            raw = memoryview(body).cast("B")
            out.write(raw)
            crc = zlib.crc32(raw, crc)
            written = off + length
        out.seek(0)
        out.write(header(crc))
        out.flush()
        os.fsync(out.fileno())
    return file_size
