"""Many regular expressions checked against a name at the cost of a few.

`RegexSet(patterns).search_all(name)` returns the indices of every pattern that
`re.search`es the name (names are lower-case, dot-separated).

Why not one big alternation: Python's `re` is a backtracking matcher, so `(?:p0)|(?:p1)|…`
tries every branch at every position of the name — with the ~1,100 deny patterns of the
AdGuard + Pi-hole lists in ../shared/data that measured 270 µs per name. Instead each
pattern is indexed by a literal it cannot match without, found by walking its parse tree
(`re._parser`) — the top-level sequence only, so the literal is really required:

    label    a complete label: `(?:^|\\.)dn.*\\.ixinwei\\.com$` needs a label "ixinwei"
    prefix   a label's first 3 chars: `(?:^|\\.)popunder\\.`  needs a label starting "pop"
    suffix   a label's last 3 chars:  `\\-banner\\-ads\\.`     needs a label ending "ads"

A lookup splits the name into labels and asks three frozensets whether any label (or
its first or last 3 chars) is a key — C-speed `isdisjoint` calls, ~0.5 µs. Only on a
key hit are that key's patterns run. Patterns with no such literal (`\\-ad123\\-`, a
top-level `a|b`) go to the "always" group: joined into as few alternations as possible
(CHUNK patterns each) and searched every time; only a matching chunk is re-checked
pattern by pattern, so every matching pattern is reported (a block and an allow pattern
can both match; the filter decides). Patterns with a required literal but no label-
aligned one (`^(.+[_.-])?telemetry[_.-]` needs "telemetry") are "filtered": one
alternation of their literals gates them. Before each pattern runs, the other labels
and literals it needs are checked with set and `in` tests.

Measured over the Umbrella top-100k with the 1,462 regex rules of every AdGuard and
Pi-hole list in ../shared/data (1,058 deny, 404 allow): one alternation per 256
patterns, 270 µs per name; keyed as above, ~4 µs for the deny set (the "always" group,
4 patterns such as `^[a-rt-z][a-z]{10,14}$`, is a quarter of it).

Patterns that cannot share an alternation stand alone: back-references (`\\1`, `(?P=x)`:
group numbers shift once combined) and anything the combined compile rejects (duplicate
group names; a global flag such as `(?i)` not at the start — a leading one is rewritten
into a scoped group first, `(?i)abc` → `(?i:abc)`). Invalid patterns are listed in
`errors` and never match; the compiler rejects them before they reach an index.
Individual patterns are compiled lazily, the first time a key sends a name to them.
"""

from __future__ import annotations

import re
import warnings
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typeshed describes re's private parser under its old names
    import sre_constants as _c
    import sre_parse as _parser
else:
    try:  # CPython 3.11+; 3.10 and earlier called these sre_parse / sre_constants
        import re._constants as _c
        import re._parser as _parser
    except ImportError:  # pragma: no cover
        import sre_constants as _c
        import sre_parse as _parser

CHUNK = 256  # patterns per alternation in the "always" group
KEY_LEN = 3  # label prefix/suffix key length
_BACKREF = re.compile(r"\\[1-9]|\(\?P=")
_LEADING_FLAGS = re.compile(r"^\(\?([imsx]+)\)")
_FIRST = itemgetter(slice(0, KEY_LEN))
_LAST = itemgetter(slice(-KEY_LEN, None))
_SPLIT = re.compile(r"[.\0]").split
_ANCHORS = (_c.AT_BEGINNING, _c.AT_END, _c.AT_BEGINNING_STRING, _c.AT_END_STRING)
# Labels too common to select anything: prefer any other literal of the pattern.
_COMMON = frozenset(
    "com net org www co uk de io ru info biz app cn jp fr it nl br in us me tv xyz".split()
)


def scope_flags(pattern: str) -> str:
    """`(?i)abc` → `(?i:abc)`, so the pattern can sit inside an alternation."""
    m = _LEADING_FLAGS.match(pattern)
    if m:
        return f"(?{m.group(1)}:{pattern[m.end():]})"
    return pattern


def _compile(pattern: str) -> re.Pattern[str]:
    with warnings.catch_warnings():  # "possible nested set" and friends: not errors
        warnings.simplefilter("ignore")
        return re.compile(pattern)


def check_pattern(pattern: str) -> str | None:
    """None if Python's re accepts the pattern, else the reason."""
    try:
        _compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        return str(exc)
    return None


def _is_boundary(op: Any, av: Any) -> bool:  # one (opcode, argument) of re's parse tree
    """^, $, \\A, \\Z, or a group/branch of only those and a literal dot: `(?:^|\\.)`."""
    if op is _c.AT:
        return av in _ANCHORS
    if op is _c.LITERAL:
        return bool(av == 46)  # "."
    if op is _c.SUBPATTERN:
        inner = av[-1].data
        return len(inner) == 1 and _is_boundary(*inner[0])
    if op is _c.BRANCH:
        return all(len(alt.data) == 1 and _is_boundary(*alt.data[0]) for alt in av[1])
    return False


class Needs:
    """What every match of a pattern needs, read from its parse tree (see `analyse`)."""

    __slots__ = ("key", "labels", "substrings")

    def __init__(self, key: tuple[str, str] | None, labels: frozenset[str], substrings: tuple[str, ...]) -> None:
        self.key: tuple[str, str] | None = key  # ("label"|"prefix"|"suffix", text) index key
        self.labels: frozenset[str] = labels  # complete labels the name must have
        self.substrings: tuple[str, ...] = substrings  # text the name must contain


_NOTHING = Needs(None, frozenset(), ())


def analyse(pattern: str) -> Needs:
    """The literals any match of `pattern` needs (nothing, when in doubt).

    Sound by construction: only the top-level sequence is read (each of its elements is
    required, in order); literal characters there are required text, and a label is
    "complete" only when a boundary (start, end, a literal dot, `(?:^|\\.)`) sits on
    both sides of it within the same run of literals.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = _parser.parse(pattern)
    except Exception:  # noqa: BLE001 - not our job to explain a bad pattern
        return _NOTHING
    lower = bool(parsed.state.flags & _c.SRE_FLAG_IGNORECASE)
    if lower and not pattern.isascii():
        return _NOTHING  # Unicode case folding ("ſ" matches "s"): no literal is safe
    seq: list[str] = []
    op: Any  # the argument's shape depends on the opcode, which typeshed cannot tell
    av: Any
    for op, av in parsed.data:
        if op is _c.LITERAL and av > 1 and av != 46:  # (chr 0 and 1 are our markers)
            seq.append(chr(av))
        elif _is_boundary(op, av):
            seq.append(
                "." if op is _c.LITERAL else "\0"  # a literal dot is also required text
            )
        else:
            seq.append("\1")  # anything else: unknown text
    text = "".join(seq)
    if lower:
        text = text.lower()
    labels: list[str] = []
    prefixes: list[str] = []
    suffixes: list[str] = []
    for run in text.split("\1"):
        pieces = _SPLIT(run)
        if len(pieces) < 2:
            continue  # no boundary in this run: nothing is label-aligned
        labels += [p for p in pieces[1:-1] if p]
        if len(pieces[-1]) >= KEY_LEN:
            prefixes.append(pieces[-1])
        if len(pieces[0]) >= KEY_LEN:
            suffixes.append(pieces[0])
    substrings = tuple(
        sorted({p for run in text.split("\1") for p in run.split("\0") if len(p) >= 2},
               key=len, reverse=True)
    )
    good = [p for p in labels if p not in _COMMON]
    if good:
        key: tuple[str, str] | None = ("label", max(good, key=len))
    elif prefixes:
        key = ("prefix", max(prefixes, key=len)[:KEY_LEN])
    elif suffixes:
        key = ("suffix", max(suffixes, key=len)[-KEY_LEN:])
    elif labels:
        key = ("label", max(labels, key=len))
    else:
        key = None
    return Needs(key, frozenset(labels), substrings)


class RegexSet:
    """An immutable set of patterns; `search_all(text)` → indices of those that match."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = list(patterns)
        self.errors: dict[int, str] = {}
        self._single: dict[int, re.Pattern[str]] = {}
        self._needs: dict[int, Needs] = {}
        self._by: dict[str, dict[str, list[int]]] = {"label": {}, "prefix": {}, "suffix": {}}
        self._filtered: list[tuple[tuple[str, ...], int]] = []  # no key, but a literal
        self._always: list[tuple[re.Pattern[str], list[int]]] = []  # nothing known: alternations
        combinable: list[int] = []
        for i, p in enumerate(self.patterns):
            err = check_pattern(p)
            if err is not None:
                self.errors[i] = err
                continue
            needs = self._needs[i] = analyse(p)
            if needs.key is not None:
                self._by[needs.key[0]].setdefault(needs.key[1], []).append(i)
            elif needs.substrings:
                self._filtered.append((needs.substrings, i))
            elif _BACKREF.search(p):
                self._always.append((self._compiled(i), [i]))
            else:
                combinable.append(i)
        for start in range(0, len(combinable), CHUNK):
            self._combine(combinable[start : start + CHUNK])
        self._labels = self._by["label"]
        self._prefixes = self._by["prefix"]
        self._suffixes = self._by["suffix"]
        self._label_keys = frozenset(self._labels)
        self._prefix_keys = frozenset(self._prefixes)
        self._suffix_keys = frozenset(self._suffixes)
        # One search for the literals of every "filtered" pattern (measured: 0.3 µs
        # against 0.65 µs for 13 `in` tests); only a literal that is there sends the name
        # on to its patterns.
        firsts = sorted({subs[0] for subs, _ in self._filtered}, key=len, reverse=True)
        self._filter_literals = _compile("|".join(map(re.escape, firsts))) if firsts else None

    def _compiled(self, i: int) -> re.Pattern[str]:
        pat = self._single.get(i)
        if pat is None:
            pat = self._single[i] = _compile(self.patterns[i])
        return pat

    def _combine(self, members: list[int]) -> None:
        if len(members) == 1:
            self._always.append((self._compiled(members[0]), members))
            return
        source = "|".join(f"(?:{scope_flags(self.patterns[i])})" for i in members)
        try:
            combined = _compile(source)
        except (re.error, RecursionError, OverflowError, ValueError):
            half = len(members) // 2  # find the misfits by halving
            self._combine(members[:half])
            self._combine(members[half:])
            return
        self._always.append((combined, members))

    @property
    def automata(self) -> int:
        """How many compiled patterns every name runs through (the "always" group)."""
        return len(self._always)

    @property
    def keyed(self) -> int:
        """How many patterns run only when a name has their key."""
        return sum(len(v) for by in self._by.values() for v in by.values())

    def _check(self, i: int, text: str, labels: set[str]) -> bool:
        needs = self._needs[i]
        if needs.labels and not needs.labels <= labels:
            return False
        for sub in needs.substrings:
            if sub not in text:
                return False
        return self._compiled(i).search(text) is not None

    def search_all(self, text: str) -> list[int]:
        """Indices (ascending) of every pattern that matches somewhere in `text`."""
        hits: list[int] = []
        labels = text.split(".")
        label_set = None
        if not self._label_keys.isdisjoint(labels):
            label_set = set(labels)
            for label in label_set:
                for i in self._labels.get(label, ()):
                    if self._check(i, text, label_set):
                        hits.append(i)
        if not self._prefix_keys.isdisjoint(map(_FIRST, labels)):
            label_set = label_set or set(labels)
            for key in set(map(_FIRST, labels)):
                for i in self._prefixes.get(key, ()):
                    if self._check(i, text, label_set):
                        hits.append(i)
        if not self._suffix_keys.isdisjoint(map(_LAST, labels)):
            label_set = label_set or set(labels)
            for key in set(map(_LAST, labels)):
                for i in self._suffixes.get(key, ()):
                    if self._check(i, text, label_set):
                        hits.append(i)
        if self._filter_literals is not None and self._filter_literals.search(text):
            for subs, i in self._filtered:
                for sub in subs:
                    if sub not in text:
                        break
                else:
                    if self._compiled(i).search(text) is not None:
                        hits.append(i)
        for combined, members in self._always:
            if combined.search(text) is None:
                continue
            if len(members) == 1:
                hits.append(members[0])
                continue
            for i in members:
                if self._compiled(i).search(text) is not None:
                    hits.append(i)
        if len(hits) > 1:
            hits = sorted(set(hits))
        return hits

    def __len__(self) -> int:
        return len(self.patterns)
