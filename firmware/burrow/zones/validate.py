"""Validation and normalisation of local records, one field at a time.

Every way data enters a zone (the API, a zone-file import) passes through here, so the rest of
the package can trust a :class:`Record`: owner absolute, lower-case and legal; value in one
canonical zone-file text form, so equal data compares equal, exports the same way every time
and packs to wire form without further checks. Errors carry the field they belong to, so the
API can answer 400 naming it.

Name rules (zone-file semantics, RFC 1035 §5.1): ``@`` is the origin, a name ending in ``.``
is absolute, any other name is relative to the origin. The API helpers are *lenient*: a name
written without its trailing dot that already ends in the zone's origin is taken as absolute
(people type ``www.lab.test`` in zone ``lab.test`` and mean exactly that).
"""

from __future__ import annotations

import ipaddress
import re

from .. import errors as domain
from .records import TYPE_CODES, Record

TYPES = tuple(TYPE_CODES)

MAX_TTL = 2**31 - 1  # RFC 2181 §8: TTLs are 31-bit
MAX_NAME = 253  # presentation length without the trailing dot (255 octets in wire form)
MAX_STRING = 255  # one <character-string> (RFC 1035 §3.3)
TXT_MAX_OCTETS = 4000  # one TXT record: room for several 4096-bit DKIM keys, still fits a TCP answer
CAA_MAX_VALUE = 1024  # CAA values are domains or short URLs; more is a mistake or abuse

_LABEL = re.compile(r"[a-z0-9_-]{1,63}\Z", re.ASCII)
_CAA_TAG = re.compile(r"[a-z0-9]{1,15}\Z", re.ASCII | re.IGNORECASE)
_TTL = re.compile(r"(?:\d+[smhdw])+\Z|\d+\Z", re.ASCII | re.IGNORECASE)
_TTL_PART = re.compile(r"(\d+)([smhdw])", re.ASCII | re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class RecordError(domain.Invalid, ValueError):
    """A record field is invalid. ``field`` is one of name, type, value, ttl, priority."""

    field: str

    def __init__(self, message: str, field: str = "value"):
        super().__init__(message)
        self.field = field
        self.message = message


# ---- small pieces -----------------------------------------------------------------------------

def is_ttl(text: str) -> bool:
    """True when ``text`` is written like a TTL (``3600``, ``1h``, ``1h30m``): zone files need
    this to tell an optional TTL from the type that follows."""
    return bool(_TTL.match(text))


def parse_ttl(text: str, field: str = "ttl") -> int:
    """Seconds from a BIND-style duration: plain seconds or units s/m/h/d/w, combinable."""
    text = text.strip()
    if not _TTL.match(text):
        raise RecordError(f"{text!r} is not a duration (seconds, or units like 1h, 2d, 1w, 1h30m)", field)
    if text.isdigit():
        seconds = int(text)
    else:
        seconds = sum(int(n) * _UNITS[u.lower()] for n, u in _TTL_PART.findall(text))
    if seconds > MAX_TTL:
        raise RecordError(f"{text!r} is longer than {MAX_TTL} seconds", field)
    return seconds


def validate_ttl(value, field: str = "ttl") -> int:
    """A TTL from the API (int, or text with units) as seconds in [0, 2^31-1]."""
    if isinstance(value, bool):
        raise RecordError("ttl must be a number of seconds", field)
    if isinstance(value, int):
        if not 0 <= value <= MAX_TTL:
            raise RecordError(f"ttl must be between 0 and {MAX_TTL}", field)
        return value
    if isinstance(value, str):
        return parse_ttl(value, field)
    raise RecordError("ttl must be a number of seconds", field)


def validate_type(value) -> str:
    """The upper-case type mnemonic, if local zones support it."""
    if not isinstance(value, str) or value.strip().upper() not in TYPES:
        raise RecordError(f"unsupported record type {value!r} (supported: {', '.join(TYPES)})", "type")
    return value.strip().upper()


def _number(text, low: int, high: int, what: str, field: str = "value") -> int:
    """A decimal integer in [low, high]; bools and signs are refused."""
    if isinstance(text, int) and not isinstance(text, bool):
        number = text
    elif isinstance(text, str) and text.isascii() and text.isdigit():
        number = int(text)
    else:
        raise RecordError(f"{what} must be a whole number, got {text!r}", field)
    if not low <= number <= high:
        raise RecordError(f"{what} must be between {low} and {high}, got {number}", field)
    return number


# ---- names ------------------------------------------------------------------------------------

def _ascii(name: str, field: str) -> str:
    """IDNA (punycode) form of a name typed in Unicode; Record names are always ASCII."""
    if name.isascii():
        return name
    try:
        return ".".join(label.encode("idna").decode("ascii") if not label.isascii() else label
                        for label in name.split("."))
    except UnicodeError as exc:
        raise RecordError(f"{name!r} is not a valid international name ({exc})", field) from None


def _check_labels(name: str, field: str, wildcard: bool) -> None:
    if len(name) > MAX_NAME:
        raise RecordError(f"name is longer than {MAX_NAME} characters", field)
    for i, label in enumerate(name.split(".")):
        if not label:
            raise RecordError(f"empty label in {name!r}", field)
        if len(label) > 63:
            raise RecordError(f"label {label[:20]!r}… is longer than 63 characters", field)
        if label == "*":
            if wildcard and i == 0:
                continue
            raise RecordError(f"'*' in {name!r}: a wildcard must be the whole leftmost label of an owner",
                              field)
        if not _LABEL.match(label):
            raise RecordError(f"label {label!r} in {name!r}: only letters, digits, '-' and '_' are allowed",
                              field)


def in_zone(name: str, origin: str) -> bool:
    """True when absolute ``name`` is ``origin`` or below it (label-bounded: evilhome.lan is not
    in home.lan)."""
    return origin == "" or name == origin or name.endswith("." + origin)


def resolve_name(text, origin: str | None, *, field: str = "name", wildcard: bool = False,
                 root_ok: bool = False, lenient: bool = False) -> str:
    """An absolute, lower-case name without trailing dot ("" is the root) from zone-file text.

    ``@`` is the origin; ``x.`` is absolute; anything else is relative to ``origin`` (an error
    without one). ``lenient``: a dot-less name already ending in the origin is absolute.
    """
    if not isinstance(text, str):
        raise RecordError("a name must be text", field)
    t = text.strip()
    if not t:
        raise RecordError("empty name", field)
    if "\\" in t or any(c.isspace() for c in t):
        raise RecordError(f"{t!r}: escapes and spaces are not allowed in names", field)
    if t == "@":
        if origin is None:
            raise RecordError("'@' needs an origin ($ORIGIN or the zone name)", field)
        return origin
    if t == ".":
        if root_ok:
            return ""
        raise RecordError("the root name '.' is not allowed here", field)
    low = t.lower()
    if low.endswith("."):
        name = low[:-1]
    elif lenient and origin and (low == origin or low.endswith("." + origin)):
        name = low
    elif origin is None:
        raise RecordError(f"relative name {t!r} needs an origin: end it with '.' or give the zone", field)
    else:
        name = f"{low}.{origin}" if origin else low
    name = _ascii(name, field).lower()
    _check_labels(name, field, wildcard)
    return name


def normalize_origin(text) -> str:
    """A zone's name as Records spell it (``lab.test``), from ``lab.test`` or ``lab.test.``."""
    if not isinstance(text, str) or not text.strip().rstrip("."):
        raise RecordError("a zone needs a name", "name")
    return resolve_name(text.strip().rstrip(".") + ".", None, field="name")


def absolute(name: str) -> str:
    """Zone-file text of an absolute name: trailing dot, the root as ``.``."""
    return name + "." if name else "."


# ---- character strings (TXT, CAA) -------------------------------------------------------------

def quote_string(raw: bytes) -> str:
    """A <character-string> in canonical quoted form: printable ASCII kept, ``"`` and ``\\``
    escaped, everything else as ``\\DDD`` (named-checkzone and every parser read that)."""
    out = []
    for b in raw:
        if b == 0x22 or b == 0x5C:
            out.append("\\" + chr(b))
        elif 0x20 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return '"' + "".join(out) + '"'


def _escape(text: str, i: int, out: bytearray, field: str) -> int:
    """Decode the escape at ``text[i] == '\\'`` into ``out``; return the index after it."""
    if i + 1 >= len(text):
        raise RecordError("a backslash ends the text", field)
    digits = text[i + 1:i + 4]
    if digits[:1].isdigit():
        if len(digits) < 3 or not digits.isdigit() or int(digits) > 255:
            raise RecordError(f"bad escape \\{digits}: use \\DDD with 000-255", field)
        out.append(int(digits))
        return i + 4
    out += text[i + 1].encode("utf-8")
    return i + 2


def split_strings(text: str, field: str = "value") -> list[tuple[bytes, bool]]:
    """Zone-file tokens of ``text`` as (decoded bytes, was quoted): quoted strings with escapes
    and bare words, separated by blanks."""
    tokens: list[tuple[bytes, bool]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        out = bytearray()
        if c == '"':
            i += 1
            while True:
                if i >= n:
                    raise RecordError("unterminated quoted string", field)
                c = text[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    i = _escape(text, i, out, field)
                else:
                    out += c.encode("utf-8")
                    i += 1
            tokens.append((bytes(out), True))
            continue
        while i < n and not text[i].isspace() and text[i] != '"':
            if text[i] == "\\":
                i = _escape(text, i, out, field)
            else:
                out += text[i].encode("utf-8")
                i += 1
        tokens.append((bytes(out), False))
    return tokens


def character_strings(value: str) -> list[bytes]:
    """The decoded strings of a canonical TXT value (what goes on the wire)."""
    return [raw for raw, _ in split_strings(value)]


# ---- values, per type -------------------------------------------------------------------------

def _v_a(value: str, origin, lenient) -> str:
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        raise RecordError(f"{value!r} is not an IPv4 address", "value") from None


def _v_aaaa(value: str, origin, lenient) -> str:
    try:
        if "%" in value:
            raise ValueError
        return str(ipaddress.IPv6Address(value.strip()))
    except ValueError:
        raise RecordError(f"{value!r} is not an IPv6 address", "value") from None


def _target(text: str, origin, lenient, root_ok: bool = False) -> str:
    return absolute(resolve_name(text, origin, field="value", root_ok=root_ok, lenient=lenient))


def _fields(value: str, count: int, shape: str) -> list[str]:
    parts = value.split()
    if len(parts) != count:
        raise RecordError(f"expected {shape}, got {value.strip()!r}", "value")
    return parts


def _v_name(value: str, origin, lenient) -> str:
    return _target(_fields(value, 1, "one name")[0], origin, lenient)


def _v_mx(value: str, origin, lenient) -> str:
    pref, host = _fields(value, 2, "'preference host'")
    pref_n = _number(pref, 0, 65535, "MX preference")
    return f"{pref_n} {_target(host, origin, lenient, root_ok=True)}"  # "0 ." is a null MX (RFC 7505)


def _v_srv(value: str, origin, lenient) -> str:
    prio, weight, port, target = _fields(value, 4, "'priority weight port target'")
    numbers = [_number(prio, 0, 65535, "SRV priority"), _number(weight, 0, 65535, "SRV weight"),
               _number(port, 0, 65535, "SRV port")]
    return " ".join(map(str, numbers)) + " " + _target(target, origin, lenient, root_ok=True)


def _v_txt(value: str, origin, lenient) -> str:
    """One or more character-strings. Text not starting with a quote is one literal text (the
    API's plain form), cut into 255-octet strings; quoted text follows zone-file syntax."""
    text = value.strip()
    if not text:
        raise RecordError('TXT needs text (write "" for an empty string)', "value")
    if text.startswith('"'):
        strings = [raw for raw, _ in split_strings(text)]
        for raw in strings:
            if len(raw) > MAX_STRING:
                raise RecordError(f"a TXT string is {len(raw)} octets; each must be at most {MAX_STRING}"
                                  " (split it into several quoted strings)", "value")
    else:
        raw = text.encode("utf-8")
        strings = [raw[i:i + MAX_STRING] for i in range(0, len(raw), MAX_STRING)]
    total = sum(len(s) for s in strings)
    if total > TXT_MAX_OCTETS:
        raise RecordError(f"TXT text is {total} octets; at most {TXT_MAX_OCTETS} are allowed", "value")
    return " ".join(quote_string(s) for s in strings)


def _v_caa(value: str, origin, lenient) -> str:
    tokens = split_strings(value)
    if len(tokens) != 3 or tokens[0][1] or tokens[1][1]:
        raise RecordError("expected 'flags tag \"value\"' (quote a value holding spaces)", "value")
    flags = _number(tokens[0][0].decode("utf-8", "replace"), 0, 255, "CAA flags")
    tag = tokens[1][0].decode("utf-8", "replace")
    if not _CAA_TAG.match(tag):
        raise RecordError(f"CAA tag {tag!r} must be 1-15 letters or digits (issue, issuewild, iodef…)",
                          "value")
    raw = tokens[2][0]
    if len(raw) > CAA_MAX_VALUE:
        raise RecordError(f"CAA value is longer than {CAA_MAX_VALUE} octets", "value")
    return f"{flags} {tag.lower()} {quote_string(raw)}"


def _mailbox(text: str, origin, lenient) -> str:
    """SOA RNAME: a name, or an e-mail address converted to one (hostmaster@lab.test)."""
    if "@" in text and text != "@":
        local, _, domain = text.partition("@")
        if not local or "." in local:
            raise RecordError(f"SOA mailbox {text!r}: the part before @ must be one label without dots",
                              "value")
        text = f"{local}.{domain.rstrip('.')}."
    return _target(text, origin, lenient)


def _v_soa(value: str, origin, lenient) -> str:
    shape = "'mname rname serial refresh retry expire minimum'"
    mname, rname, serial, *timers = _fields(value, 7, shape)
    parts = [_target(mname, origin, lenient), _mailbox(rname, origin, lenient),
             str(_number(serial, 0, 2**32 - 1, "SOA serial"))]
    for what, text in zip(("refresh", "retry", "expire", "minimum"), timers):
        try:
            parts.append(str(parse_ttl(text, "value")))
        except RecordError as exc:
            raise RecordError(f"SOA {what}: {exc.message}", "value") from None
    return " ".join(parts)


_VALIDATORS = {"A": _v_a, "AAAA": _v_aaaa, "CNAME": _v_name, "PTR": _v_name, "NS": _v_name,
               "MX": _v_mx, "SRV": _v_srv, "TXT": _v_txt, "CAA": _v_caa, "SOA": _v_soa}


def validate_value(rtype: str, value, origin: str | None = None, lenient: bool = False) -> str:
    """The canonical zone-file text of ``value`` for type ``rtype`` (names made absolute)."""
    rtype = validate_type(rtype)
    if not isinstance(value, str):
        raise RecordError("value must be text", "value")
    if not value.strip() and rtype != "TXT":
        raise RecordError(f"{rtype} record needs a value", "value")
    return _VALIDATORS[rtype](value, origin, lenient)


def validate_record(record: Record, origin: str | None = None) -> Record:
    """``record`` re-checked and normalised (for Records built by hand or read from storage)."""
    rtype = validate_type(record.type)
    if not isinstance(record.name, str):
        raise RecordError("name must be text", "name")
    name = resolve_name(absolute(record.name.rstrip(".")), None, wildcard=True, root_ok=True)
    if origin is not None and not in_zone(name, origin):
        raise RecordError(f"{name} is not inside zone {origin}", "name")
    return Record(name, rtype, validate_ttl(record.ttl), validate_value(rtype, record.value, origin))


# ---- the API helper ---------------------------------------------------------------------------

def _with_priority(rtype: str, value: str, priority) -> str:
    """Fold a separate ``priority`` (MX preference, SRV priority) into the value text."""
    want = {"MX": 1, "SRV": 3}.get(rtype)
    if priority is None:
        if want is not None and len(value.split()) == want:
            raise RecordError(f"{rtype} needs a priority: give \"priority\" or write it first in the value",
                              "priority")
        return value
    if want is None:
        raise RecordError(f"priority applies to MX and SRV records, not {rtype}", "priority")
    prio = _number(priority, 0, 65535, "priority", "priority")
    parts = value.split()
    if len(parts) == want + 1:
        if parts[0] != str(prio):
            raise RecordError(f"priority {prio} disagrees with the value's {parts[0]!r}", "priority")
        return value
    return f"{prio} {value}"


def make_record(zone_origin: str, name, type, value, ttl=None, priority=None,
                default_ttl: int = 300) -> Record:
    """A validated Record for zone ``zone_origin`` from API fields.

    ``name`` is relative to the zone (``www``, ``@``, empty for the apex) or absolute; names in
    ``value`` are resolved against the zone too. MX/SRV take ``priority`` separately or in
    ``value``. Raises RecordError naming the bad field.
    """
    origin = normalize_origin(zone_origin)
    rtype = validate_type(type)
    if name is None or (isinstance(name, str) and not name.strip()):
        name = "@"
    owner = resolve_name(name, origin, field="name", wildcard=True, lenient=True)
    if not in_zone(owner, origin):
        raise RecordError(f"{owner} is not inside zone {origin}", "name")
    if not isinstance(value, str):
        raise RecordError("value must be text", "value")
    text = validate_value(rtype, _with_priority(rtype, value, priority), origin, lenient=True)
    seconds = validate_ttl(default_ttl if ttl is None else ttl)
    return Record(owner, rtype, seconds, text)
