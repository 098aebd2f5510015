"""A small schema language: the same objects validate requests and describe them in OpenAPI.

    LoginRequest = Obj("LoginRequest", {
        "username": Str(max_len=64),
        "password": Str(max_len=1024),
        "totp": Str(required=False, pattern=r"^[0-9A-Za-z-]{6,20}$"),
    }, example={"username": "admin", "password": "correct horse battery"})

``validate(value)`` returns the cleaned value or raises ValidationError naming every bad field
by path (``upstreams[1]``, ``cache.max_ttl``). ``json_schema()`` gives the OpenAPI 3.1 schema.
There is no second, hand-written description to drift.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from .errors import ValidationError

_MISSING = object()


class Field:
    type_name = "any"

    def __init__(self, *, required: bool = True, default: Any = _MISSING, description: str = "",
                 example: Any = _MISSING, nullable: bool = False,
                 check: Callable[[Any], Any] | None = None):
        self.required = required and default is _MISSING
        self.default = default
        self.description = description
        self.example = example
        self.nullable = nullable
        self.check = check  # extra validator: returns the value or raises ValueError

    def validate(self, value: Any, path: str = "") -> Any:
        """The cleaned value, or raise ValidationError listing every problem."""
        problems: list[tuple[str, str]] = []
        out = self._clean(value, path, problems)
        if problems:
            raise ValidationError(problems)
        return out

    def _clean(self, value, path, problems):
        if value is None and self.nullable:
            return None
        try:
            value = self.convert(value)
        except ValueError as e:
            problems.append((path, str(e)))
            return None
        if self.check is not None:
            try:
                value = self.check(value)
            except ValueError as e:
                problems.append((path, str(e)))
        return value

    def convert(self, value):
        return value

    def json_schema(self) -> dict:
        s = self._schema()
        if self.nullable:
            t = s.get("type")
            if t:
                s["type"] = [t, "null"]
        if self.description:
            s["description"] = self.description
        if self.default is not _MISSING:
            s["default"] = self.default
        if self.example is not _MISSING:
            s["examples"] = [self.example]
        return s

    def _schema(self) -> dict:
        return {}


def any_case(*words: str) -> str:
    """A pattern matching any of ``words`` in any letter case ("block", "BLOCK"): JSON Schema's
    regular expressions have no case-insensitive flag."""
    def one(word):
        return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)
    return "^(?:" + "|".join(one(w) for w in words) + ")$"


# A character str.strip() keeps (Python's whitespace, spelled out: JSON Schema's \s differs).
NOT_SPACE = r"[^\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"  # no ASCII control characters
SPACE = "[" + NOT_SPACE[2:]  # a character str.strip() removes


def _padded(pattern: str) -> str:
    """What the server takes for ``pattern``: it matches the whole stripped value (fullmatch),
    so whitespace either side and nothing else (a JSON Schema pattern alone is a search)."""
    inner = pattern[1:] if pattern.startswith("^") else pattern
    if inner.endswith("$") and not inner.endswith("\\$"):
        inner = inner[:-1]
    return f"^{SPACE}*(?:{inner}){SPACE}*$"

# Shapes the declarations share, written as JSON Schema regular expressions (no flags, no \d:
# a JSON Schema reader takes \d as ASCII, Python as any digit): see SINCE and TIME in stats.py
# and events_api.py.
DECIMAL = r"[0-9]+(\.[0-9]+)?"
POSITIVE_DECIMAL = r"([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)"
DURATION_UNIT = r"([Mm][Ss]|[SsMmHhDdWw])"  # ms, s, m, h, d, w in any case
# RFC 3339 (a date, then optionally a time and an offset) as datetime.fromisoformat reads it
RFC3339 = (r"[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
           r"([Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
           r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?")



def _ipv6() -> str:
    """IPv6 as Python's ipaddress reads it (no zone id): eight groups, or fewer around one "::"
    (which stands for at least one zero group), the last two groups optionally an IPv4 address."""
    h = "[0-9A-Fa-f]{1,4}"
    forms = [f"({h}:){{7}}{h}", f"({h}:){{6}}{IPV4}", f"::({h}(:{h}){{0,6}})?", f"::({h}:){{0,5}}{IPV4}"]
    for left in range(1, 8):  # groups before "::"
        lead = f"{h}(:{h}){{{left - 1}}}" if left > 1 else h
        forms.append(f"{lead}::" + (f"({h}(:{h}){{0,{6 - left}}})?" if left < 7 else ""))
        if left <= 5:
            forms.append(f"{lead}::({h}:){{0,{5 - left}}}{IPV4}")
    return "(" + "|".join(forms) + ")"


_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"  # no leading zeros (ipaddress refuses them)
IPV4 = f"({_OCTET}\\.){{3}}{_OCTET}"
IPV6 = _ipv6()
IP = f"({IPV4}|{IPV6})"
# an address or a network: a v4 prefix 0-32, a v6 prefix 0-128
IP_OR_CIDR = f"({IPV4}(/(3[0-2]|[12]?[0-9]))?|{IPV6}(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)"
PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"  # 1-65535
# "ip", "ip:port", "[v6]:port" (and a bare v6): config's parse_hostport with a default port
HOST_PORT = f"({IPV4}(:{PORT})?|\\[{IPV6}\\](:{PORT})?|{IPV6})"

# A domain name's label: ASCII letters, digits, "_" and inner "-", at most 63; or a label with
# non-ASCII letters, which the server converts with IDNA (whose tables no pattern can carry: a
# label the codec refuses is answered 400 naming IDNA). Never whitespace, control characters
# (C0, C1) or IDNA's dot look-alikes.
_INTL = "[^\\x00-\\x9f\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\u3002\\uff0e\\uff61]"
LABEL = f"([A-Za-z0-9_]([A-Za-z0-9_-]{{0,61}}[A-Za-z0-9_])?|[A-Za-z0-9_-]*{_INTL}([A-Za-z0-9_-]|{_INTL})*)"
DOMAIN = f"({LABEL}\\.)*{LABEL}\\.?"  # a trailing dot is allowed


# An encrypted upstream as config/upstream_spec.py reads it: tls://host[:port][/] or
# https://host[:port][/path], then ?pin=<base64 SHA-256> and #<server name>, in either order.
# The host is an IPv4 address, a [v6] address or a name; what no pattern states (a name of
# digits only that is not an address, IDNA, a #name that is an address) the server explains.
_UP_HOST = f"({IPV4}|\\[{IPV6}\\]|{DOMAIN})(:0*{PORT})?"
_UP_PIN = "[?]([pP][iI][nN]=([sS][hH][aA]256/)?[A-Za-z0-9+/_-]{43}=?)?"
_UP_NAME = f"#({DOMAIN})?"
_UP_PATH = "/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*"  # RFC 3986 path characters
ENCRYPTED_UPSTREAM = (f"([tT][lL][sS]://{_UP_HOST}/?|[hH][tT][tT][pP][sS]://{_UP_HOST}({_UP_PATH})?)"
                      f"(({_UP_PIN})?({_UP_NAME})?|{_UP_NAME}{_UP_PIN})")
# an upstream: an address with an optional port, or a DoT/DoH URL
UPSTREAM = f"({HOST_PORT}|{ENCRYPTED_UPSTREAM})"


def domain_name(*, wildcard: bool = False, empty: bool = False, max_len: int = 253, **kw) -> "Str":
    """A domain name (``wildcard``: or ``*.name``, the names below it; ``empty``: or "")."""
    pattern = f"(\\*\\.)?{DOMAIN}" if wildcard else DOMAIN
    kw.setdefault("hint", "a domain name" + (" (or *.name)" if wildcard else ""))
    return Str(min_len=0 if empty else 1, max_len=max_len,
               pattern=f"^(|{pattern})$" if empty else f"^{pattern}$", **kw)


class Str(Field):
    type_name = "string"

    def __init__(self, *, min_len: int = 0, max_len: int = 1024, pattern: str | None = None,
                 enum: list[str] | None = None, strip: bool = True, hint: str | None = None, **kw):
        super().__init__(**kw)
        self.min_len, self.max_len = min_len, max_len
        self.pattern = pattern
        self.hint = hint  # what a value must be, said to a person when the pattern refuses one
        self._re = re.compile(pattern) if pattern else None
        self.enum = enum
        self.strip = strip

    def convert(self, value):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        # maxLength counts the value as sent (the document says so, and a client checks it so):
        # spaces around a value do not buy it room past the limit
        if len(value) > self.max_len:
            raise ValueError(f"at most {self.max_len} characters")
        if self.strip:
            value = value.strip()
        if len(value) < self.min_len:
            raise ValueError("must not be empty" if self.min_len == 1 else f"at least {self.min_len} characters")
        if self.enum is not None and value not in self.enum:
            raise ValueError(f"must be one of {', '.join(self.enum)}")
        if self._re is not None and not self._re.fullmatch(value):
            raise ValueError(f"must be {self.hint}" if self.hint else "has the wrong format")
        return value

    def _schema(self):
        s = {"type": "string", "maxLength": self.max_len}
        if self.min_len:
            s["minLength"] = self.min_len
        if self.pattern:
            # the server strips the value before matching it, so what it accepts is the pattern
            # with whitespace either side (" 24h " is 24h): say so, or a reader would call those
            # values invalid and the server would be laxer than its document
            s["pattern"] = _padded(self.pattern) if self.strip else self.pattern
        if self.enum:
            s["enum"] = list(self.enum)
        elif self.strip and self.min_len:
            # the length counts after stripping: "  " is empty. Said as "holds a character strip()
            # keeps" (a search, as JSON Schema's patterns are), beside any pattern of its own
            if "pattern" in s:
                s["allOf"] = [{"pattern": NOT_SPACE}]
            else:
                s["pattern"] = NOT_SPACE
        return s


class AnyOf(Field):
    """A value one of ``options`` takes (the first that does, cleaned by it): e.g. seconds as an
    integer or as text like 1h."""

    def __init__(self, *options: Field, **kw):
        super().__init__(**kw)
        self.options = options

    def convert(self, value):
        reasons = []
        for option in self.options:
            problems: list = []
            out = option._clean(value, "", problems)
            if not problems:
                return out
            reasons += [m for _, m in problems if m not in reasons]
        raise ValueError("; or ".join(reasons))

    def _schema(self):
        return {"anyOf": [option.json_schema() for option in self.options]}


class Int(Field):
    type_name = "integer"

    def __init__(self, *, minimum: int | None = None, maximum: int | None = None, **kw):
        super().__init__(**kw)
        self.minimum, self.maximum = minimum, maximum

    def convert(self, value):
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        if isinstance(value, str):  # query parameters arrive as text
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError("must be an integer") from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ValueError("must be an integer")
        return self._in_range(value)

    def _in_range(self, value):
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum}")
        return value

    def _schema(self):
        s = {"type": "integer"}
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        return s


class Num(Int):
    type_name = "number"

    def convert(self, value):
        if isinstance(value, bool):
            raise ValueError("must be a number")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ValueError("must be a number") from None
        if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a number")
        return self._in_range(value)

    def _schema(self):
        s = super()._schema()
        s["type"] = "number"
        return s


class Bool(Field):
    type_name = "boolean"

    def convert(self, value):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise ValueError("must be true or false")

    def _schema(self):
        return {"type": "boolean"}


class List(Field):
    type_name = "array"

    def __init__(self, item: Field, *, min_items: int = 0, max_items: int = 256, **kw):
        super().__init__(**kw)
        self.item, self.min_items, self.max_items = item, min_items, max_items

    def _clean(self, value, path, problems):
        if value is None and self.nullable:
            return None
        if not isinstance(value, list):
            problems.append((path, "must be a list"))
            return None
        if len(value) < self.min_items:
            problems.append((path, f"needs at least {self.min_items} item(s)"))
        if len(value) > self.max_items:
            problems.append((path, f"at most {self.max_items} items"))
            return None
        out = [self.item._clean(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        if self.check is not None and not problems:
            try:
                out = self.check(out)
            except ValueError as e:
                problems.append((path, str(e)))
        return out

    def _schema(self):
        s = {"type": "array", "items": self.item.json_schema(), "maxItems": self.max_items}
        if self.min_items:
            s["minItems"] = self.min_items
        return s


class Obj(Field):
    """A JSON object with named fields; unknown fields are refused (typos must not pass silently)."""

    type_name = "object"

    def __init__(self, name: str, fields: dict[str, Field], *, additional: bool = False,
                 min_fields: int = 0, needs_any: tuple[str, ...] = (),
                 only_with: dict[str, tuple[str, Any]] | None = None,
                 not_together: tuple[tuple[str, str], ...] = (),
                 needs_when: dict[str, tuple[str, Any]] | None = None, **kw):
        super().__init__(**kw)
        self.name, self.fields, self.additional, self.min_fields = name, fields, additional, min_fields
        self.needs_any = needs_any  # at least one of these fields given and not empty (null, [], "")
        self.only_with = only_with or {}  # field (not empty) → (other field, the value it needs then)
        self.not_together = not_together  # pairs of fields a body may not give both of
        self.needs_when = needs_when or {}  # field → (other field, the value that makes it needed)

    def _clean(self, value, path, problems):
        if value is None and self.nullable:
            return None
        if not isinstance(value, dict):
            problems.append((path, "must be a JSON object"))
            return None
        out = {}
        prefix = f"{path}." if path else ""
        for key, field in self.fields.items():
            if key in value:
                out[key] = field._clean(value[key], prefix + key, problems)
            elif field.required:
                problems.append((prefix + key, "is required"))
            elif field.default is not _MISSING:
                out[key] = field.default
        if not self.additional:
            for key in value:
                if key not in self.fields:
                    problems.append((prefix + str(key), "unknown field"))
        else:
            for key in value:
                if key not in self.fields:
                    out[key] = value[key]
        if len([k for k in value if k in self.fields]) < self.min_fields:
            problems.append((path, f"give at least {self.min_fields} field(s)"))
        if self.needs_any and all(out.get(k) in (None, [], "") for k in self.needs_any):
            problems.append((prefix + self.needs_any[0], f"give at least one of {', '.join(self.needs_any)}"))
        for key, (other, wanted) in self.only_with.items():
            if value.get(key) not in (None, [], "") and out.get(other) != wanted:
                problems.append((prefix + key, f"only with {other}={json.dumps(wanted)}"))
        for key, other in self.not_together:
            if key in value and other in value:
                problems.append((prefix + key, f"not with {other}"))
        for key, (other, wanted) in self.needs_when.items():
            if out.get(other) == wanted and out.get(key) in (None, [], ""):
                problems.append((prefix + key, f"needed with {other}={json.dumps(wanted)}"))
        if self.check is not None and not problems:
            try:
                out = self.check(out)
            except ValueError as e:
                problems.append((path, str(e)))
        return out

    def _schema(self):
        s = {"type": "object", "properties": {k: f.json_schema() for k, f in self.fields.items()},
             "additionalProperties": self.additional}
        req = [k for k, f in self.fields.items() if f.required]
        if req:
            s["required"] = req
        if self.min_fields:  # e.g. a PUT that must change something: {} is refused
            s["minProperties"] = self.min_fields
        if self.needs_any:
            s["anyOf"] = [{"required": [k], "properties": {k: {"not": {"enum": [None, [], ""]}}}}
                          for k in self.needs_any]
        rules = [{"anyOf": [{"not": {"required": [key]}}, {"properties": {key: {"enum": [None, [], ""]}}},
                            {"required": [other], "properties": {other: {"const": wanted}}}]}
                 for key, (other, wanted) in self.only_with.items()]
        rules += [{"not": {"required": [key, other]}} for key, other in self.not_together]
        rules += [{"anyOf": [{"properties": {other: {"not": {"const": wanted}}}},
                             {"required": [other, key], "properties": {key: {"not": {"enum": [None, [], ""]}}}}]}
                  for key, (other, wanted) in self.needs_when.items()]
        if rules:
            s["allOf"] = rules
        return s

    def ref(self) -> dict:
        return {"$ref": f"#/components/schemas/{self.name}"}


class Query(Obj):
    """Query-string parameters: values arrive as strings and are converted per field."""

    def __init__(self, fields: dict[str, Field]):
        super().__init__("query", fields, additional=False)

    def from_args(self, args) -> dict:
        raw = {k: args.get(k) for k in args}
        return self.validate(raw)
