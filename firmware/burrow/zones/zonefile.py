"""RFC 1035 master files (BIND style): import a person's zone file, export one named accepts.

Import is all or nothing: a person hands us their file and expects either exactly that data
or a message pointing at the line to fix, never a zone quietly missing records. So the
parser is strict by default and every error carries its line number. Supported: ``$ORIGIN``,
``$TTL``, ``@``, relative names, omitted owners (the previous owner continues), optional TTL
and class in either order, TTL units, parentheses spanning lines, ``;`` comments, quoted
strings with escapes. ``$INCLUDE`` is refused: a file uploaded through a phone cannot
reference other files on the appliance (and must not read them).

Export writes ``$ORIGIN``/``$TTL``, the SOA first, the apex NS next, then everything else in
canonical order (RFC 4034 §6.1 by name, then type), every value in the canonical text form of
:mod:`validate` — a file ``named-checkzone`` accepts and this parser reads back unchanged.
"""

from __future__ import annotations

from .. import errors as domain
from ..dns import qtypes
from .records import Record
from .validate import RecordError, TYPES, absolute, in_zone, is_ttl, normalize_origin, parse_ttl, \
    resolve_name, validate_value

CLASSES = frozenset(qtypes.CLASS_NUMBERS)
MAX_RECORDS = 100_000  # one imported zone; a home appliance's zone is hundreds at most


class ZoneFileError(domain.Invalid, ValueError):
    """A zone file cannot be imported. ``line`` is 1-based; ``field`` the record field if known."""

    def __init__(self, line: int, message: str, field: str | None = None):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message
        self.field = field

    def problems(self) -> list[dict]:
        # The API's field is the request's "zone" (the whole text); the line says where in it.
        return [{"field": "zone", "message": str(self), "line": self.line}]


class ParsedZone:
    """What a file held: its origin (given, else the SOA owner, else the first $ORIGIN), records
    in file order, errors (only when not strict) and warnings (duplicates dropped…)."""

    __slots__ = ("origin", "records", "errors", "warnings")

    def __init__(self, origin: str | None):
        self.origin = origin
        self.records: list[Record] = []
        self.errors: list[ZoneFileError] = []
        self.warnings: list[str] = []


# ---- tokens -----------------------------------------------------------------------------------

class _Entry:
    """One logical entry: where it starts, whether its owner is omitted (the line starts with
    a blank), and its tokens as (raw text with escapes kept, was quoted)."""

    __slots__ = ("line", "indented", "tokens")

    def __init__(self, line: int, indented: bool, tokens: list):
        self.line = line
        self.indented = indented
        self.tokens = tokens


def _quoted(text: str, i: int, line: int) -> tuple[str, int]:
    """The raw inside of a quoted string starting at ``text[i] == '"'``; index after it."""
    j = i + 1
    n = len(text)
    while j < n:
        c = text[j]
        if c == "\\" and j + 1 < n and text[j + 1] != "\n":
            j += 2
            continue
        if c == '"':
            return text[i + 1:j], j + 1
        if c == "\n":
            break
        j += 1
    raise ZoneFileError(line, "unterminated quoted string")


def _bare(text: str, i: int) -> tuple[str, int]:
    """An unquoted token starting at ``i`` (escapes such as ``\\;`` stay inside it)."""
    j = i
    n = len(text)
    while j < n and text[j] not in ' \t\r\n;()"':
        j += 2 if text[j] == "\\" and j + 1 < n and text[j + 1] != "\n" else 1
    return text[i:j], j


def _entries(text: str):
    """Logical entries of a master file: physical lines joined inside parentheses, comments
    dropped, blank lines skipped."""
    i, n, line = 0, len(text), 1
    tokens: list = []
    depth = 0
    start = 0
    indented = False
    open_line = 0
    at_line_start = True
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            at_line_start = depth == 0
            if depth == 0 and tokens:
                yield _Entry(start, indented, tokens)
                tokens = []
            continue
        if at_line_start:
            at_line_start = False
            start, indented = line, c in " \t"
        if c in " \t\r":
            i += 1
        elif c == ";":
            while i < n and text[i] != "\n":
                i += 1
        elif c == "(":
            if depth:
                raise ZoneFileError(line, "nested parentheses")
            depth, open_line = 1, line
            i += 1
        elif c == ")":
            if not depth:
                raise ZoneFileError(line, "')' without a matching '('")
            depth = 0
            i += 1
        elif c == '"':
            raw, i = _quoted(text, i, line)
            tokens.append((raw, True))
        else:
            raw, i = _bare(text, i)
            tokens.append((raw, False))
    if depth:
        raise ZoneFileError(open_line, "'(' is never closed")
    if tokens:
        yield _Entry(start, indented, tokens)


# ---- parsing ----------------------------------------------------------------------------------

class _State:
    """What earlier lines set for later ones: origin, default TTL, last owner and TTL."""

    def __init__(self, origin: str | None, default_ttl: int):
        self.origin = origin
        self.first_origin: str | None = None
        self.dollar_ttl: int | None = None
        self.last_ttl: int | None = None
        self.default_ttl = default_ttl
        self.owner: str | None = None


def _directive(entry: _Entry, state: _State) -> None:
    word = entry.tokens[0][0].upper()
    args = entry.tokens[1:]
    if word == "$INCLUDE":
        raise ZoneFileError(entry.line, "$INCLUDE is not supported: paste the included file's records"
                                        " into this file")
    if word not in ("$ORIGIN", "$TTL"):
        raise ZoneFileError(entry.line, f"unsupported directive {entry.tokens[0][0]}"
                                        " (only $ORIGIN and $TTL are understood)")
    if len(args) != 1 or args[0][1]:
        raise ZoneFileError(entry.line, f"{word} takes exactly one argument")
    try:
        if word == "$TTL":
            state.dollar_ttl = parse_ttl(args[0][0])
        else:
            state.origin = resolve_name(args[0][0], state.origin, field="name")
            if state.first_origin is None:
                state.first_origin = state.origin
    except RecordError as exc:
        raise ZoneFileError(entry.line, f"{word}: {exc.message}", exc.field) from None


def _value_text(rtype: str, tokens: list) -> str:
    """Rebuild RDATA text from tokens; every TXT token is one quoted string (zone-file rule:
    bare words are separate strings), other quoted tokens keep their quotes."""
    if rtype == "TXT":
        return " ".join(f'"{raw}"' for raw, _ in tokens)
    return " ".join(f'"{raw}"' if quoted else raw for raw, quoted in tokens)


def _record(entry: _Entry, state: _State) -> Record:
    tokens = entry.tokens
    i = 0
    if entry.indented:
        if state.owner is None:
            raise ZoneFileError(entry.line, "the first record must name its owner")
        owner = state.owner
    else:
        raw, quoted = tokens[0]
        if quoted:
            raise ZoneFileError(entry.line, "an owner name cannot be quoted", "name")
        owner = resolve_name(raw, state.origin, field="name", wildcard=True, root_ok=True)
        i = 1
    ttl = cls = None
    while i < len(tokens) and not tokens[i][1]:
        word = tokens[i][0]
        if ttl is None and is_ttl(word):
            ttl = parse_ttl(word)
        elif cls is None and word.upper() in CLASSES:
            cls = word.upper()
            if cls != "IN":
                raise ZoneFileError(entry.line, f"class {cls}: only IN is supported")
        else:
            break
        i += 1
    if i >= len(tokens):
        raise ZoneFileError(entry.line, "missing record type", "type")
    rtype = tokens[i][0].upper()
    if rtype not in TYPES:
        raise ZoneFileError(entry.line, f"unsupported record type {tokens[i][0]!r}"
                                        f" (supported: {', '.join(TYPES)})", "type")
    value = validate_value(rtype, _value_text(rtype, tokens[i + 1:]), state.origin)
    if ttl is None:
        ttl = state.dollar_ttl if state.dollar_ttl is not None else state.last_ttl
        if ttl is None:
            ttl = state.default_ttl
    else:
        state.last_ttl = ttl  # RFC 1035 §5.1: an omitted TTL is the last one given
    state.owner = owner
    return Record(owner, rtype, ttl, value)


def _entry_record(entry: _Entry, state: _State) -> Record | None:
    """The record an entry holds (None for a directive), errors tagged with its line."""
    try:
        if not entry.indented and not entry.tokens[0][1] and entry.tokens[0][0].startswith("$"):
            _directive(entry, state)
            return None
        return _record(entry, state)
    except RecordError as exc:
        raise ZoneFileError(entry.line, exc.message, exc.field) from None


def parse_zone(text: str, origin: str | None = None, default_ttl: int = 3600,
               strict: bool = True) -> ParsedZone:
    """Records of a master file. ``origin`` is the zone's name (else taken from $ORIGIN).

    Strict (the default) raises ZoneFileError at the first bad line; otherwise bad lines are
    skipped and listed in ``errors``. Records outside the zone are errors; exact duplicates
    are dropped with a warning (as named does).
    """
    try:
        start = normalize_origin(origin) if origin is not None else None
    except RecordError as exc:
        raise ZoneFileError(0, f"zone name: {exc.message}", "name") from None
    state = _State(start, default_ttl)
    result = ParsedZone(start)
    found: list[tuple[int, Record]] = []
    seen: set = set()

    def fail(error: ZoneFileError) -> None:
        if strict:
            raise error
        result.errors.append(error)

    entries = _entries(text)
    while True:
        try:
            entry = next(entries)
        except StopIteration:
            break
        except ZoneFileError as exc:  # a tokenizer error ends the file: nothing after it is reliable
            fail(exc)
            break
        try:
            record = _entry_record(entry, state)
        except ZoneFileError as exc:
            fail(exc)
            continue
        if record is None:
            continue
        key = (record.name, record.type, record.value)
        if key in seen:
            result.warnings.append(f"line {entry.line}: duplicate {record.type} record at"
                                   f" {record.name or '.'} dropped")
            continue
        seen.add(key)
        found.append((entry.line, record))
        if len(found) > MAX_RECORDS:
            raise ZoneFileError(entry.line, f"more than {MAX_RECORDS} records")
    if result.origin is None:
        soa = next((r for _, r in found if r.type == "SOA"), None)
        result.origin = soa.name if soa is not None else state.first_origin
    for line, record in found:
        if result.origin is not None and not in_zone(record.name, result.origin):
            fail(ZoneFileError(line, f"{record.name or '.'} is outside zone {result.origin}", "name"))
            continue
        result.records.append(record)
    return result


# ---- export -----------------------------------------------------------------------------------

def _canonical_key(record: Record) -> tuple:
    """RFC 4034 §6.1 order: by labels from the right, then type, then value."""
    labels = tuple(reversed(record.name.split("."))) if record.name else ()
    return labels, record.type, record.value


def _owner_text(name: str, origin: str) -> str:
    if name == origin:
        return "@"
    if origin and name.endswith("." + origin):
        return name[:-len(origin) - 1]
    return absolute(name)


def _soa_lines(owner: str, record: Record) -> list[str]:
    """The SOA spread over lines with each timer named, as people write it."""
    mname, rname, *numbers = record.value.split()
    names = ("serial", "refresh", "retry", "expire", "minimum (negative-answer TTL)")
    lines = [f"{owner}\t{record.ttl}\tIN\tSOA\t{mname} {rname} ("]
    lines += [f"\t\t\t\t{n}\t; {what}" for n, what in zip(numbers, names)]
    lines[-1] = lines[-1].replace("\t;", " )\t;", 1)
    return lines


def _most_common_ttl(records: list[Record]) -> int:
    counts: dict[int, int] = {}
    for r in records:
        counts[r.ttl] = counts.get(r.ttl, 0) + 1
    return max(sorted(counts), key=counts.__getitem__) if counts else 3600


def export_zone(origin: str, records, comment: str = "") -> str:
    """A master file holding ``records`` of zone ``origin`` (every record with explicit TTL)."""
    origin = normalize_origin(origin)
    records = list(records)
    soa = [r for r in records if r.type == "SOA" and r.name == origin]
    apex_ns = sorted((r for r in records if r.type == "NS" and r.name == origin), key=_canonical_key)
    first = set(id(r) for r in soa + apex_ns)
    rest = sorted((r for r in records if id(r) not in first), key=_canonical_key)
    lines = [f"; zone {origin}" + (f" - {comment}" if comment else ""),
             f"$ORIGIN {absolute(origin)}", f"$TTL {_most_common_ttl(records)}", ""]
    for record in soa:
        lines += _soa_lines(_owner_text(record.name, origin), record)
    previous = None
    for record in apex_ns + rest:
        owner = _owner_text(record.name, origin)
        lines.append(f"{owner if owner != previous else ''}\t{record.ttl}\tIN\t{record.type}\t{record.value}")
        previous = owner
    return "\n".join(lines) + "\n"
