"""Parsers for every blocklist format, to one intermediate form (`rules.Rule`).

    parse(lines, format=None) -> ParseResult     any iterable of str (or bytes) lines
    parse_file(path, format=None) -> ParseResult  plain or gzip file, read as a stream
    iter_parse(lines, format=None, result=None)  the same rules one at a time, for
    iter_parse_file(path, format=None, result=None)  consumers that must not hold them all
    detect_format(sample_lines) -> str

Formats and what they map to are documented in docs/filtering.md ("List formats").
Parsing is streaming (a line is dropped once parsed) and never fatal: a line that cannot
be understood is counted in `ParseResult.errors` with a sample of its text and reason; an
entry that is understood but not supported (an adblock `$client` rule, an RPZ IP
trigger) is counted in `ParseResult.skipped` under its reason.

The common line shapes (`0.0.0.0 name`, `name`, `*.name`, `||name^`, `local=/name/`,
`name CNAME .`) take fast paths built on str methods; only unusual lines reach the
general code.
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import itertools
import os
import re
from typing import Any, Generator, Iterable, Iterator

from burrow.dns import names, qtypes
from burrow.filtering.rules import ParseResult, Rule

Redirects = tuple[tuple[str, str], ...]  # ("A", "192.0.2.1"), ("CNAME", "x.example"), ...

FORMATS = ("hosts", "domains", "wildcard", "onlydomains", "adblock", "dnsmasq", "rpz", "regex")

# Lines looked at by detect_format (comments included).
DETECT_SAMPLE_LINES = 400

# Names a hosts file maps to loopback for the OS itself; ignored (counted as "localhost").
LOCALHOST_NAMES = frozenset(
    (
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",
    )
)

# Hosts addresses that mean "blocked" (anything else is a redirect to that address).
NULL_ADDRESSES = frozenset(
    ("0.0.0.0", "127.0.0.1", "::", "::1", "0:0:0:0:0:0:0:0", "0:0:0:0:0:0:0:1", "::0")
)

# Adblock modifiers that are understood; every other one makes the rule skipped.
SUPPORTED_MODIFIERS = ("important", "badfilter", "dnstype")

_tuple_new = tuple.__new__
# Names are normalised by the one rule in dns/names.py (``_`` allowed anywhere in a label);
# a line whose name breaks it is an error with the reason.
normalize_name = names.normalize
_BadName = names.BadName
_IPV4ISH = re.compile(r"[0-9.]+").fullmatch


def _rule(name: str, match: str, action: str = "block", important: bool = False,
          data: Redirects = (), qtypes: tuple[str, ...] = ()) -> Rule:
    return _tuple_new(Rule, (name, match, action, important, data, qtypes))


def _is_ip(text: str) -> bool:
    if ":" not in text and _IPV4ISH(text) is None:
        return False
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- detection


def detect_format(sample_lines: list[str]) -> str:
    """Guess a list's format from its first lines (comments included).

    Each data line votes for the format its shape belongs to; strong header signals
    (`[Adblock Plus]`, `!` comments, `$TTL`/SOA) add weight. Plain-name files are
    "domains", unless a header says the list holds base domains that imply their
    subdomains (hagezi's "Syntax: Domains (without subdomains)", or "onlydomains"),
    which makes them "onlydomains". Ambiguous cases are the caller's to settle with an
    explicit format.
    """
    votes = dict.fromkeys(FORMATS, 0)
    only_hint = False
    adblock_header = False
    for raw in sample_lines:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        line = raw.strip().lstrip("\ufeff")
        if not line:
            continue
        c = line[0]
        if c == "!" or line.startswith("[Adblock") or line.startswith("[AdGuard"):
            adblock_header = True
            continue
        if c == "#":
            low = line.lower()
            if "onlydomains" in low or "domains (without subdomains)" in low:
                only_hint = True
            continue
        if c == ";" or c == "$":
            if line.startswith(("$TTL", "$ORIGIN")):
                votes["rpz"] += 5
            continue
        h = line.find("#")
        if h > 0 and line[h - 1] in " \t":
            line = line[:h].rstrip()
        if line.startswith(("local=/", "address=/", "server=/")):
            votes["dnsmasq"] += 1
            continue
        if line.startswith(("||", "@@", "|")) or line.endswith("^") or "^$" in line:
            votes["adblock"] += 1
            continue
        parts = line.split()
        if len(parts) >= 2:
            upper = [p.upper() for p in parts[1:5]]
            if any(t in upper for t in ("CNAME", "SOA", "NS", "A", "AAAA", "TXT")) and not _is_ip(parts[0]):
                votes["rpz"] += 1
            elif _is_ip(parts[0]):
                votes["hosts"] += 1
            continue
        if line.startswith("*."):
            votes["wildcard"] += 1
        elif names.NAME_CHARS(line.lower().rstrip(".")) is not None or _is_ip(line):
            votes["domains"] += 1
        elif line.startswith("/") and line.endswith("/"):
            votes["adblock"] += 1
        elif any(ch in line for ch in "^$()[]\\|+?{}"):
            votes["regex"] += 1
        else:
            votes["domains"] += 1
    best = max(FORMATS, key=lambda f: votes[f])
    if votes[best] == 0:
        best = "adblock" if adblock_header else "domains"
    # `!` comments make an adblock list: its hosts-style and bare-name lines (AdGuard's
    # compiler emits both) are adblock syntax too
    if adblock_header and best in ("hosts", "domains", "wildcard", "regex"):
        best = "adblock"
    if best == "domains" and only_hint:
        best = "onlydomains"
    return best


# --------------------------------------------------------------------------- entry points


def iter_parse(lines: Iterable[str], format: str | None = None,
               result: ParseResult | None = None) -> Iterator[Rule]:
    """Yield the rules of `lines` one at a time, counting into `result` as it goes.

    `result` (created if None; read it after the iterator is exhausted) gets every
    counter; its `rules` list stays empty. Rules that a later adblock `$badfilter`
    disables have already been yielded: they are in `result.badfilter_rules` at the end.
    """
    it = iter(lines)
    head = list(itertools.islice(it, DETECT_SAMPLE_LINES))
    if head and isinstance(head[0], (bytes, bytearray)):
        head = [b.decode("utf-8", "replace") for b in head]
        it = (b.decode("utf-8", "replace") for b in it)
    if head and head[0].startswith("\ufeff"):
        head[0] = head[0][1:]
    if format is None:
        format = detect_format(head)
    elif format not in FORMATS:
        raise ValueError(f"unknown list format {format!r} (one of {', '.join(FORMATS)})")
    if result is None:
        result = ParseResult(format=format)
    else:
        result.format = format
    stream = itertools.chain(head, it)
    if format in ("domains", "wildcard", "onlydomains"):
        return _parse_plain(stream, result, format)
    return _PARSERS[format](stream, result)


def parse(lines: Iterable[str], format: str | None = None) -> ParseResult:
    """Parse a whole list; `format` None = detect it from the first lines.

    Tolerates CRLF, a BOM, a missing final newline, inline comments, trailing dots,
    upper case and IDN names. Never raises for bad content (only for an unknown format).
    """
    result = ParseResult(format=format or "")
    result.rules = list(iter_parse(lines, format, result))
    _apply_badfilter(result)
    return result


def parse_file(path: str | os.PathLike[str], format: str | None = None) -> ParseResult:
    """Parse a list file (gzip is recognised by its magic bytes), streaming.

    Without an explicit format, a file name containing "onlydomains" (hagezi's
    `*.wildcard-onlydomains.txt`) turns a detected "domains" into "onlydomains".
    Holds every rule: ~175 bytes per rule (a 1M-name list is ~175 MB); a compiler with a
    memory budget uses `iter_parse_file` instead.
    """
    result = ParseResult(format=format or "")
    result.rules = list(iter_parse_file(path, format, result))
    _apply_badfilter(result)
    return result


def iter_parse_file(path: str | os.PathLike[str], format: str | None = None,
                    result: ParseResult | None = None) -> Generator[Rule, None, None]:
    """`iter_parse` over a file (plain or gzip): constant memory whatever the list size.

    The file is closed when the iterator is exhausted or closed. Counters land in
    `result` (read it afterwards); see `iter_parse` about `$badfilter`.
    """
    if result is None:
        result = ParseResult(format=format or "")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    raw = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
    with io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline=None) as fh:
        stream: Iterable[str] = fh
        if format is None:
            head = list(itertools.islice(fh, DETECT_SAMPLE_LINES))
            format = detect_format(head)
            if format == "domains" and "onlydomains" in os.path.basename(str(path)).lower():
                format = "onlydomains"
            stream = itertools.chain(head, fh)
        yield from iter_parse(stream, format, result)


def _apply_badfilter(result: ParseResult) -> None:
    bad = result.badfilter_rules
    if not bad:
        return
    before = len(result.rules)
    result.rules = [r for r in result.rules if r not in bad]
    result.badfilter = before - len(result.rules)


# --------------------------------------------------------------------------- hosts


def _parse_hosts(lines: Iterable[str], res: ParseResult) -> Iterator[Rule]:
    """`ADDRESS name [name...] [# comment]`; null/loopback addresses block, others redirect."""
    norm = normalize_name
    null = NULL_ADDRESSES
    localhost = LOCALHOST_NAMES
    tnew = _tuple_new
    n = comments = 0
    for raw in lines:
        n += 1
        line = raw.strip()
        if not line or line[0] == "#" or line[0] == "!":
            comments += 1
            continue
        h = line.find("#")
        if h >= 0:
            line = line[:h]
        parts = line.split()
        if len(parts) < 2:
            if not parts:
                comments += 1
            else:
                res.error(n, raw.strip(), "hosts line without a name")
            continue
        addr = parts[0]
        if addr in null:
            data = None
        else:
            data = _hosts_redirect(addr)
            if data is None:
                if not _is_ip(addr):
                    res.error(n, raw.strip(), f"not an IP address: {addr!r}")
                    continue
                # a zone-scoped or otherwise odd address (fe80::1%lo0): names are still blocked
        for name in parts[1:]:
            if name in localhost:
                res.skip("localhost")
                continue
            try:
                name = norm(name)
            except _BadName as exc:
                if name.lower() in localhost:
                    res.skip("localhost")
                else:
                    res.error(n, raw.strip(), f"{name!r}: {exc}")
                continue
            if data is None:
                yield tnew(Rule, (name, "exact", "block", False, (), ()))
            else:
                yield tnew(Rule, (name, "exact", "redirect", False, data, ()))
    res.lines += n
    res.comments += comments


def _hosts_line(line: str, n: int, res: ParseResult) -> list[Rule]:
    """The rules of one hosts-syntax line met inside another format (adblock, domains)."""
    sub = ParseResult(format="hosts")
    rules = list(_parse_hosts((line,), sub))
    for reason, cnt in sub.skipped.items():
        res.skip(reason, cnt)
    for _, _, reason in sub.error_samples:
        res.error(n, line, reason)
    return rules


def _hosts_redirect(addr: str) -> Redirects | None:
    """(("A", addr),) for a non-null address, () for a null one, None if not an IP."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    if ip.is_unspecified or ip.is_loopback:
        return None  # treated as block by the caller (addr not in NULL_ADDRESSES spelling)
    return (("A" if ip.version == 4 else "AAAA", str(ip)),)


# --------------------------------------------------------------------------- plain names


def _parse_plain(lines: Iterable[str], res: ParseResult, fmt: str) -> Iterator[Rule]:
    """One name per line: domains (exact), wildcard (*.d → below), onlydomains (subtree).

    In every plain format `*.d` means "below d" except in onlydomains, where it is read
    like `d` (subtree): choose "onlydomains" explicitly for a `*.d` list whose author
    means the base domain too. A bare IP address is skipped ("ip"); a hosts-style line
    (`0.0.0.0 name`) is accepted as hosts.
    """
    plain_match = "subtree" if fmt == "onlydomains" else "exact"
    star_match = "subtree" if fmt == "onlydomains" else "below"
    is_normal = names.is_normal
    norm = normalize_name
    tnew = _tuple_new
    n = comments = 0
    for raw in lines:
        n += 1
        line = raw.strip()
        if not line:
            comments += 1
            continue
        c = line[0]
        if c == "#" or c == "!" or c == ";":
            comments += 1
            continue
        h = line.find("#")
        if h >= 0:
            line = line[:h].rstrip()
            if not line:
                comments += 1
                continue
        # fast path: an already-normal name
        if len(line) <= 63 and is_normal(line):
            if line[-1].isdigit() and _is_ip(line):
                res.skip("ip")
                continue
            yield tnew(Rule, (line, plain_match, "block", False, (), ()))
            continue
        match = plain_match
        if line.startswith("*."):
            match = star_match
            line = line[2:]
        elif " " in line or "\t" in line:
            parts = line.split()
            if _is_ip(parts[0]):
                yield from _hosts_line(line, n, res)
                continue
            res.error(n, raw.strip(), "more than one name on a line")
            continue
        if _is_ip(line):
            res.skip("ip")
            continue
        try:
            name = norm(line)
        except _BadName as exc:
            res.error(n, raw.strip(), str(exc))
            continue
        yield tnew(Rule, (name, match, "block", False, (), ()))
    res.lines += n
    res.comments += comments


# --------------------------------------------------------------------------- dnsmasq


def _parse_dnsmasq(lines: Iterable[str], res: ParseResult) -> Iterator[Rule]:
    """`local=/d/`, `address=/d/` (subtree block), `address=/d/IP` (subtree redirect;
    0.0.0.0, :: and `#` are the null address, i.e. block). `server=/d/...` and every
    other option are skipped under their option name."""
    norm = normalize_name
    tnew = _tuple_new
    n = comments = 0
    for raw in lines:
        n += 1
        line = raw.strip()
        if not line or line[0] == "#":
            comments += 1
            continue
        h = line.find("#")
        if h > 0 and line[h - 1] in " \t":
            line = line[:h].rstrip()
        key, eq, value = line.partition("=")
        key = key.strip()
        if not eq:
            res.skip(key)
            continue
        if key not in ("local", "address"):
            res.skip(key)
            continue
        if not value.startswith("/"):
            res.error(n, raw.strip(), f"{key}= without /domain/")
            continue
        segs = value[1:].split("/")
        if len(segs) < 2:
            res.error(n, raw.strip(), f"{key}= without closing /")
            continue
        target = segs[-1].strip()
        domains = segs[:-1]
        data: Redirects
        action, data = "block", ()
        if target and target != "#":
            if key == "local":
                res.error(n, raw.strip(), "local= takes no address")
                continue
            try:
                ip = ipaddress.ip_address(target)
            except ValueError:
                res.error(n, raw.strip(), f"not an IP address: {target!r}")
                continue
            if not ip.is_unspecified:
                action, data = "redirect", (("A" if ip.version == 4 else "AAAA", str(ip)),)
        for d in domains:
            d = d.strip()
            if d.startswith("*."):
                d = d[2:]
            elif d.startswith("."):
                d = d[1:]
            if d == "#" or not d:
                res.skip(f"{key}=/#/")
                continue
            try:
                name = norm(d)
            except _BadName as exc:
                res.error(n, raw.strip(), f"{d!r}: {exc}")
                continue
            yield tnew(Rule, (name, "subtree", action, False, data, ()))
    res.lines += n
    res.comments += comments


# --------------------------------------------------------------------------- RPZ

_RPZ_TRIGGER_SUFFIXES = (
    (".rpz-ip", "rpz-ip"),
    (".rpz-client-ip", "rpz-client-ip"),
    (".rpz-nsdname", "rpz-nsdname"),
    (".rpz-nsip", "rpz-nsip"),
)
_RPZ_CLASSES = frozenset(qtypes.CLASS_NUMBERS) - {"NONE", "ANY"}
_RPZ_IGNORED_TYPES = frozenset(("SOA", "NS"))
_TTL_RE = re.compile(r"[0-9]+[smhdwSMHDW]?(?:[0-9]+[smhdwSMHDW])*").fullmatch


def _parse_rpz(lines: Iterable[str], res: ParseResult) -> Iterator[Rule]:
    """A Response Policy Zone file: QNAME triggers with their policy (see docs)."""
    origin = ""  # absolute zone origin without trailing dot ("" = unknown)
    owner = None  # previous owner (for lines that start with blank space)
    redirects: dict[tuple[str, str], int] = {}  # (name, match) → index in `pending`
    pending: list[list[Any]] = []  # [name, match, [data...]] for local-data redirects
    norm = normalize_name
    tnew = _tuple_new
    n = comments = 0
    paren: list[str] | None = None
    for raw in lines:
        n += 1
        line = raw.rstrip()
        sc = line.find(";")
        if sc >= 0 and '"' not in line[:sc]:
            line = line[:sc].rstrip()
        if paren is not None:  # inside a multi-line ( ... ) record: SOA in practice
            paren.append(line)
            if ")" in line:
                paren = None
            comments += 1
            continue
        if not line.strip():
            comments += 1
            continue
        if "(" in line and ")" not in line:
            paren = [line]
            if line[0] not in " \t":
                owner = line.split(None, 1)[0]
            comments += 1
            continue
        if line[0] == "$":
            parts = line.split()
            directive = parts[0].upper()
            if directive == "$ORIGIN" and len(parts) > 1:
                origin = "" if parts[1] == "." else parts[1].rstrip(".").lower()
            elif directive != "$TTL":
                res.skip(directive)
            comments += 1
            continue
        parts = line.split()
        if line[0] in " \t":
            if owner is None:
                res.error(n, raw.strip(), "record without an owner")
                continue
        else:
            owner = parts.pop(0)
        # skip TTL and class, in either order
        while parts and (parts[0].upper() in _RPZ_CLASSES or _TTL_RE(parts[0])):
            parts.pop(0)
        if not parts:
            res.error(n, raw.strip(), "record without a type")
            continue
        rtype = parts[0].upper()
        rdata = parts[1:]
        if owner == "@" or rtype in _RPZ_IGNORED_TYPES:
            comments += 1
            continue
        qname = _rpz_owner(owner, origin)
        low = qname.lower()
        trigger = None
        for suffix, reason in _RPZ_TRIGGER_SUFFIXES:
            if low.endswith(suffix) or low == suffix[1:]:
                trigger = reason
                break
        if trigger is not None:
            res.skip(trigger)
            continue
        match = "exact"
        if low.startswith("*."):
            match = "below"
            qname = qname[2:]
        try:
            name = norm(qname)
        except _BadName as exc:
            res.error(n, raw.strip(), f"{qname!r}: {exc}")
            continue
        if rtype == "CNAME" and len(rdata) == 1:
            target = rdata[0].lower()
            if target == ".":
                yield tnew(Rule, (name, match, "nxdomain", False, (), ()))
            elif target == "*.":
                yield tnew(Rule, (name, match, "nodata", False, (), ()))
            elif target == "rpz-passthru.":
                yield tnew(Rule, (name, match, "passthru", False, (), ()))
            elif target == "rpz-drop.":
                yield tnew(Rule, (name, match, "drop", False, (), ()))
            elif target == "rpz-tcp-only.":
                res.skip("rpz-tcp-only")
            elif target.startswith("*."):
                res.skip("rpz-cname-wildcard")
            else:
                try:
                    cname = norm(target)
                except _BadName as exc:
                    res.error(n, raw.strip(), f"CNAME target {target!r}: {exc}")
                    continue
                _rpz_add_data(redirects, pending, name, match, ("CNAME", cname))
            continue
        if rtype in ("A", "AAAA") and len(rdata) == 1:
            try:
                ip = ipaddress.ip_address(rdata[0])
            except ValueError:
                res.error(n, raw.strip(), f"bad {rtype} address {rdata[0]!r}")
                continue
            if (ip.version == 4) != (rtype == "A"):
                res.error(n, raw.strip(), f"{rtype} record with a {'IPv4' if ip.version == 4 else 'IPv6'} address")
                continue
            _rpz_add_data(redirects, pending, name, match, (rtype, str(ip)))
            continue
        if rtype == "CNAME":
            res.error(n, raw.strip(), "CNAME needs exactly one target")
            continue
        res.skip(f"rpz-local-{rtype}")
    for name, match, data in pending:
        yield _rule(name, match, "redirect", data=tuple(data))
    res.lines += n
    res.comments += comments


def _rpz_owner(owner: str, origin: str) -> str:
    """The trigger name of an owner: relative names as they are, absolute ones without
    the zone origin (`bad.com.rpz.example.` under origin rpz.example → bad.com)."""
    if owner.endswith("."):
        bare = owner[:-1]
        if origin:
            low = bare.lower()
            if low.endswith("." + origin):
                return bare[: -len(origin) - 1]
        return bare
    return owner


def _rpz_add_data(redirects: dict[tuple[str, str], int], pending: list[list[Any]], name: str, match: str,
                  record: tuple[str, str]) -> None:
    key = (name, match)
    i = redirects.get(key)
    if i is None:
        redirects[key] = len(pending)
        pending.append([name, match, [record]])
    elif record not in pending[i][2]:
        pending[i][2].append(record)


# --------------------------------------------------------------------------- Pi-hole regex

_POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~").replace("\\ ", " "),
    "xdigit": "0-9A-Fa-f",
    "cntrl": "\\x00-\\x1f\\x7f",
    "print": "\\x20-\\x7e",
    "graph": "\\x21-\\x7e",
    "word": "a-zA-Z0-9_",
}
_PIHOLE_QTYPES = frozenset(
    ("A", "AAAA", "ANY", "SRV", "SOA", "PTR", "TXT", "NAPTR", "MX", "DS", "RRSIG",
     "DNSKEY", "NS", "OTHER", "SVCB", "HTTPS", "CNAME")
)


def posix_ere_to_python(pattern: str) -> str:
    """Translate a POSIX extended regular expression to Python `re` syntax.

    Bracket expressions are rewritten item by item: `[:class:]` (alpha, digit, alnum,
    upper, lower, space, blank, punct, xdigit, cntrl, print, graph, word) become their
    ranges, `[.x.]`/`[=x=]` the character, a leading `]` a literal, and characters Python
    treats specially inside a set (`[`, `\\`, `&`, `|`, `~`, and `^` after the first
    position) are escaped — in POSIX a backslash inside brackets is literal. Outside
    brackets a `[:class:]` cannot occur; `\\<` and `\\>` (word boundaries) become `\\b`.
    Raises ValueError with a reason for an unknown class or an unterminated bracket.
    """
    out = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError("trailing backslash")
            nxt = pattern[i + 1]
            out.append("\\b" if nxt in "<>" else "\\" + nxt)
            i += 2
        elif c == "[":
            j, body = _posix_bracket(pattern, i)
            out.append(body)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _posix_bracket(p: str, i: int) -> tuple[int, str]:
    """Translate the bracket expression starting at p[i] == '['; (end index, text)."""
    n = len(p)
    j = i + 1
    out = ["["]
    if j < n and p[j] == "^":
        out.append("^")
        j += 1
    first = True
    while True:
        if j >= n:
            raise ValueError("unterminated bracket expression")
        c = p[j]
        if c == "]" and not first:
            out.append("]")
            return j + 1, "".join(out)
        first = False
        if c == "[" and j + 1 < n and p[j + 1] in ":.=":
            kind = p[j + 1]
            end = p.find(kind + "]", j + 2)
            if end < 0:
                raise ValueError(f"unterminated [{kind} in bracket expression")
            word = p[j + 2 : end]
            if kind == ":":
                cls = _POSIX_CLASSES.get(word)
                if cls is None:
                    raise ValueError(f"unknown character class [:{word}:]")
                out.append(cls)
            else:
                out.append(re.escape(word))
            j = end + 2
            continue
        if c in "[\\&|~^]":
            out.append("\\" + c)
        else:
            out.append(c)
        j += 1


def _parse_regex(lines: Iterable[str], res: ParseResult) -> Iterator[Rule]:
    """Pi-hole regex lists: one POSIX ERE per line, `#` comments; `;querytype=A,AAAA`
    becomes qtypes, `;querytype=!X`, `;invert` and `;reply=` are skipped and counted."""
    n = comments = 0
    for raw in lines:
        n += 1
        line = raw.strip()
        if not line or line[0] == "#":
            comments += 1
            continue
        h = line.find(" #")
        if h < 0:
            h = line.find("\t#")
        if h >= 0:
            line = line[:h].rstrip()
        qtypes: tuple[str, ...] = ()
        if ";" in line:
            pat, _, opts = line.partition(";")
            skip_reason = None
            for opt in opts.split(";"):
                key, _, val = opt.strip().partition("=")
                key = key.lower()
                if key == "querytype":
                    if val.startswith("!"):
                        skip_reason = ";querytype=!"
                        break
                    types = tuple(t.strip().upper() for t in val.split(",") if t.strip())
                    unknown = [t for t in types if t not in _PIHOLE_QTYPES]
                    if not types or unknown:
                        skip_reason = "bad"
                        res.error(n, raw.strip(), f"unknown query type {','.join(unknown) or val!r}")
                        break
                    qtypes = types
                elif key in ("invert", "reply"):
                    skip_reason = ";" + key
                    break
                else:
                    skip_reason = "bad"
                    res.error(n, raw.strip(), f"unknown regex option ;{key}")
                    break
            if skip_reason is not None:
                if skip_reason != "bad":
                    res.skip(skip_reason)
                continue
            line = pat
        try:
            py = posix_ere_to_python(line)
            re.compile(py)
        except (ValueError, re.error) as exc:
            res.error(n, raw.strip(), f"regex rejected: {exc}")
            continue
        except (RecursionError, OverflowError) as exc:
            res.error(n, raw.strip(), f"regex rejected: {exc!r}")
            continue
        yield _rule(py, "regex", qtypes=qtypes)
    res.lines += n
    res.comments += comments


# --------------------------------------------------------------------------- adblock

_ADBLOCK_PATTERN_CHARS = re.compile(r"[a-z0-9_.*-]+").fullmatch


def _parse_adblock(lines: Iterable[str], res: ParseResult) -> Iterator[Rule]:
    """AdGuard/uBlock DNS filter syntax (see docs/filtering.md for the full mapping)."""
    is_normal = names.is_normal
    tnew = _tuple_new
    general = _adblock_general
    n = comments = 0
    for raw in lines:
        n += 1
        line = raw.strip()
        if not line:
            comments += 1
            continue
        c = line[0]
        if c == "!" or c == "#" or c == "[":
            comments += 1
            continue
        # fast path: ||name^ with nothing else
        if c == "|" and line[-1] == "^" and line[1:2] == "|":
            name = line[2:-1]
            if len(name) <= 63 and is_normal(name) and not name[-1].isdigit():
                yield tnew(Rule, (name, "subtree", "block", False, (), ()))
                continue
        elif c == "0" and line.startswith("0.0.0.0 "):
            name = line[8:].strip()
            if len(name) <= 63 and is_normal(name) and name not in LOCALHOST_NAMES:
                yield tnew(Rule, (name, "exact", "block", False, (), ()))
                continue
        try:
            for rule in general(line, res):
                yield rule
        except _BadName as exc:
            res.error(n, line, str(exc))
    res.lines += n
    res.comments += comments


def _adblock_general(line: str, res: ParseResult) -> list[Rule]:
    """Every adblock line shape the fast path does not take. Returns the rules it means
    (none for skipped and $badfilter lines); raises _BadName for an error."""
    action = "block"
    body = line
    if body.startswith("@@"):
        action = "allow"
        body = body[2:].lstrip()
        if not body:
            raise _BadName("empty exception")
    elif (body[0].isdigit() or body[0] == ":") and (" " in body or "\t" in body):
        sub = ParseResult(format="hosts")
        rules = list(_parse_hosts((body,), sub))
        for reason, cnt in sub.skipped.items():
            res.skip(reason, cnt)
        if sub.error_samples:
            raise _BadName(sub.error_samples[0][2])
        return rules
    for cosmetic in ("##", "#@#", "#$#", "#?#", "#%#"):
        if cosmetic in body:
            res.skip("cosmetic")
            return []
    # split off the modifiers
    mods = ""
    if body.startswith("/") and len(body) > 1:
        if body.endswith("/"):
            pattern = body
        else:
            k = body.rfind("/$")
            if k <= 0:
                raise _BadName("unterminated /regex/")
            pattern, mods = body[: k + 1], body[k + 2 :]
    else:
        k = body.rfind("$")
        if k >= 0:
            pattern, mods = body[:k], body[k + 1 :]
        else:
            pattern = body
    important = badfilter = False
    qtypes: tuple[str, ...] = ()
    if mods:
        for mod in mods.split(","):
            key, _, value = mod.strip().partition("=")
            key = key.strip().lower()
            if key == "important":
                important = True
            elif key == "badfilter":
                badfilter = True
            elif key == "dnstype":
                types = [t.strip().upper() for t in value.split("|") if t.strip()]
                if not types:
                    raise _BadName("$dnstype without types")
                if any(t.startswith("~") for t in types):
                    res.skip("$dnstype=~")
                    return []
                qtypes = tuple(types)
            else:
                res.skip("$" + (key or "?"))
                return []
    rules = _adblock_pattern(pattern, action, important, qtypes, res)
    if badfilter:
        res.badfilter_rules.update(rules)
        return []
    return rules


def _adblock_pattern(pattern: str, action: str, important: bool, qtypes: tuple[str, ...],
                     res: ParseResult) -> list[Rule]:
    if not pattern:
        raise _BadName("empty pattern")
    if len(pattern) > 2 and pattern[0] == "/" and pattern[-1] == "/":
        regex = pattern[1:-1]
        try:
            re.compile(regex)
        except (re.error, RecursionError, OverflowError) as exc:
            raise _BadName(f"regex rejected: {exc}") from None
        return [_rule(regex, "regex", action, important, (), qtypes)]
    p = pattern
    if p.startswith("||"):
        start = "sub"
        p = p[2:]
    elif p.startswith("|"):
        start = "start"
        p = p[1:]
        k = p.find("://")
        if k >= 0:
            p = p[k + 3 :]
    elif p.startswith("://"):
        start = "start"
        p = p[3:]
    else:
        start = "none"
    if p.endswith("^|"):
        p, end = p[:-2], True
    elif p.endswith("^") or p.endswith("|"):
        p, end = p[:-1], True
    else:
        end = False
    if "/" in p or ":" in p:
        res.skip("url-path")
        return []
    if not p.isascii():
        if "*" in p:
            raise _BadName("non-ASCII name with wildcards")
        trail = "." if p.endswith(".") else ""
        p = normalize_name(p) + trail
    p = p.lower()
    if _ADBLOCK_PATTERN_CHARS(p) is None:
        if "^" in p:
            raise _BadName("separator ^ inside the pattern")
        raise _BadName("invalid character in pattern")
    if p.strip("*.") == "":
        raise _BadName("pattern matches every name")
    # open patterns ending in a full name are read as if they ended in ^
    if not end and not p.endswith((".", "-", "*")):
        end = True
    if "*" not in p:
        if end:
            if p.startswith(".") and start == "none":
                return [_rule(normalize_name(p[1:]), "below", action, important, (), qtypes)]
            if _name_is_plain(p):
                name = normalize_name(p)
                if _is_ip(name):
                    res.skip("ip")
                    return []
                match = "subtree" if start == "sub" else "exact"
                return [_rule(name, match, action, important, (), qtypes)]
    elif start == "sub" and end and p.startswith("*.") and "*" not in p[2:] and _name_is_plain(p[2:]):
        return [_rule(normalize_name(p[2:]), "below", action, important, (), qtypes)]
    # general: translate to a regex searched in the name
    prefix = {"sub": r"(?:^|\.)", "start": "^", "none": ""}[start]
    body = ".*".join(re.escape(part) for part in p.split("*"))
    regex = prefix + body + ("$" if end else "")
    return [_rule(regex, "regex", action, important, (), qtypes)]


def _name_is_plain(p: str) -> bool:
    try:
        normalize_name(p)
    except _BadName:
        return False
    return not p.endswith(".")


_PARSERS = {
    "hosts": _parse_hosts,
    "adblock": _parse_adblock,
    "dnsmasq": _parse_dnsmasq,
    "rpz": _parse_rpz,
    "regex": _parse_regex,
}
