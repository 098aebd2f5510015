"""The policy expression language (seed 003 `/api/policies` "logic").

    Hour >= 9 && Hour < 17 && (Weekday >= 1 && Weekday <= 5) && DomainMatches(Domain, 'steam')

Source text goes through four stages, all ours — nothing here hands text to Python's
`eval`, `exec` or `compile`:

    tokenize()  → tokens             PolicySyntaxError: bad character, unterminated string
    parse()     → AST (Node objects)  PolicySyntaxError: grammar, unbalanced parens, depth
    check()     → type of the tree    PolicyTypeError: names, arity, types, literal values
    compile_expression() → CompiledExpression whose `predicate(ctx)` is a tree of closures

Grammar (precedence low → high: `||`, `&&`, comparisons, `!`):

    expr       := and ( "||" and )*
    and        := compare ( "&&" compare )*
    compare    := unary ( ("=="|"!="|"<"|"<="|">"|">=") unary )?     # no chaining
    unary      := "!" unary | primary
    primary    := INT | STRING | NAME | NAME "(" [ expr ("," expr)* ] ")" | "(" expr ")"

Types are int, str and bool. `==`/`!=` need both sides of one type; `<` `<=` `>` `>=`
need ints; `!`, `&&`, `||` need bools; the whole expression must be a bool.

Every error carries `position` (0-based character offset into the source) and
`caret()` renders the source with a `^` under it.
"""

from __future__ import annotations

import ipaddress
import re
import time
import warnings
from datetime import datetime, tzinfo
from functools import lru_cache
from collections.abc import Iterable, Iterator
from typing import Any, Callable, NoReturn

from .. import errors as domain

__all__ = [
    "PolicyError", "PolicySyntaxError", "PolicyTypeError",
    "Token", "Node", "Literal", "Var", "Call", "Not", "Compare", "BoolOp",
    "VARIABLES", "FUNCTIONS", "TIME_VARIABLES", "MAX_SOURCE", "MAX_DEPTH",
    "tokenize", "parse", "check", "unparse", "compile_expression",
    "CompiledExpression", "EvalContext", "local_fields",
]

MAX_SOURCE = 4096       # characters of logic
MAX_DEPTH = 64          # nesting of parentheses / ! / calls
MAX_INT_DIGITS = 12
MAX_REGEX = 1024        # characters of a DomainRegex pattern


# --------------------------------------------------------------------------- errors

class PolicyError(domain.Invalid, ValueError):
    """Base of every policy validation error (400). `field` names the rule field at fault."""

    field = "logic"

    def __init__(self, message: str, position: int | None = None, source: str | None = None):
        self.message = message
        self.position = position
        self.source = source
        super().__init__(message)

    def __str__(self) -> str:
        if self.position is None:
            return self.message
        return f"{self.message} (at position {self.position})"

    def caret(self) -> str:
        """Two lines for humans: the source, then a caret under `position`."""
        if self.source is None or self.position is None:
            return str(self)
        shown = "".join(ch if ch.isprintable() else " " for ch in self.source)
        return f"{shown}\n{' ' * self.position}^"

    def summary(self) -> str:
        return f"invalid policy: {self}"

    def problems(self) -> list[dict[str, Any]]:
        return [self.to_dict()]  # with position and caret for the editor

    def to_dict(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {"error": str(self), "message": self.message, "field": self.field}
        if self.position is not None:
            out["position"] = self.position
            if self.source is not None:
                out["caret"] = self.caret()
        return out


class PolicySyntaxError(PolicyError):
    """The text is not a well-formed expression."""


class PolicyTypeError(PolicyError):
    """Well-formed, but names, arity, types or literal values are wrong."""


# --------------------------------------------------------------------------- tokens

class Token:
    __slots__ = ("kind", "value", "pos")

    def __init__(self, kind: str, value: int | str | None, pos: int):
        self.kind = kind    # "int" "str" "name" "op" "(" ")" "," "eof"
        self.value = value
        self.pos = pos

    def __repr__(self) -> str:
        return f"Token({self.kind!r}, {self.value!r}, {self.pos})"


_TWO_CHAR = {"&&", "||", "==", "!=", "<=", ">="}
_ONE_CHAR = {"!", "<", ">"}
_HINTS = {"&": "'&&'", "|": "'||'", "=": "'=='"}


def tokenize(source: str) -> list[Token]:
    if not isinstance(source, str):
        raise PolicySyntaxError("logic must be a string", 0, "")
    if len(source) > MAX_SOURCE:
        raise PolicySyntaxError(f"expression longer than {MAX_SOURCE} characters",
                                MAX_SOURCE, source[:MAX_SOURCE])
    out: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch in " \t\r\n":
            i += 1
            continue
        pair = source[i:i + 2]
        if pair in _TWO_CHAR:
            out.append(Token("op", pair, i))
            i += 2
        elif ch in _ONE_CHAR:
            out.append(Token("op", ch, i))
            i += 1
        elif ch in "(),":
            out.append(Token(ch, ch, i))
            i += 1
        elif ch in "'\"":
            start, i = i, i + 1
            buf = []
            while True:
                if i >= n:
                    raise PolicySyntaxError("unterminated string", start, source)
                c = source[i]
                if c == ch:
                    i += 1
                    break
                if c == "\\":
                    nxt = source[i + 1] if i + 1 < n else ""
                    if nxt not in ("\\", "'", '"'):
                        raise PolicySyntaxError(
                            "unknown escape in string (only \\\\, \\' and \\\" are allowed)",
                            i, source)
                    buf.append(nxt)
                    i += 2
                    continue
                buf.append(c)
                i += 1
            out.append(Token("str", "".join(buf), start))
        elif "0" <= ch <= "9":
            start = i
            while i < n and "0" <= source[i] <= "9":
                i += 1
            if i < n and (source[i].isalpha() or source[i] == "_"):
                raise PolicySyntaxError("a number cannot run into a name", i, source)
            if i - start > MAX_INT_DIGITS:
                raise PolicySyntaxError("integer literal too long", start, source)
            out.append(Token("int", int(source[start:i]), start))
        elif ("a" <= ch <= "z") or ("A" <= ch <= "Z"):
            start = i
            while i < n and (source[i].isascii() and (source[i].isalnum() or source[i] == "_")):
                i += 1
            out.append(Token("name", source[start:i], start))
        else:
            hint = _HINTS.get(ch)
            msg = f"unexpected character {ch!r}"
            if hint:
                msg += f"; did you mean {hint}?"
            raise PolicySyntaxError(msg, i, source)
    out.append(Token("eof", None, n))
    return out


# --------------------------------------------------------------------------- AST

class Node:
    __slots__ = ("pos", "type")
    pos: int
    type: str | None  # "int" | "str" | "bool", set by check()

    def children(self) -> tuple[Node, ...]:
        return ()


class Literal(Node):
    __slots__ = ("value",)

    def __init__(self, value: int | str, pos: int):
        self.value, self.pos = value, pos
        self.type = "int" if isinstance(value, int) else "str"


class Var(Node):
    __slots__ = ("name",)

    def __init__(self, name: str, pos: int):
        self.name, self.pos, self.type = name, pos, None


class Call(Node):
    __slots__ = ("name", "args", "data")

    def __init__(self, name: str, args: list[Node], pos: int):
        self.name, self.args, self.pos, self.type = name, args, pos, None
        self.data: CallData = None   # checked literal arguments, prepared by check()

    def children(self) -> tuple[Node, ...]:
        return tuple(self.args)


class Not(Node):
    __slots__ = ("operand",)

    def __init__(self, operand: Node, pos: int):
        self.operand, self.pos, self.type = operand, pos, None

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


class Compare(Node):
    __slots__ = ("op", "left", "right")

    def __init__(self, op: str, left: Node, right: Node, pos: int):
        self.op, self.left, self.right, self.pos, self.type = op, left, right, pos, None

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


class BoolOp(Node):
    """n-ary `&&` or `||` (chains are flattened so evaluation depth stays small)."""
    __slots__ = ("op", "operands", "op_positions")

    def __init__(self, op: str, operands: list[Node], op_positions: list[int], pos: int):
        self.op, self.operands, self.op_positions = op, operands, op_positions
        self.pos, self.type = pos, None

    def children(self) -> tuple[Node, ...]:
        return tuple(self.operands)


# What check() prepares for a call from its literal arguments (_prepare_call): a domain
# pattern or group name (str), a compiled regex, (version, prefix, shift) of a network,
# (version, int) of an address, (start, end) minutes, a set of query type names.
CallData = str | re.Pattern[str] | tuple[int, ...] | frozenset[str] | None


_CMP = {"==", "!=", "<", "<=", ">", ">="}


class _Parser:
    def __init__(self, source: str):
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, msg: str, pos: int) -> NoReturn:
        raise PolicySyntaxError(msg, pos, self.source)

    def describe(self, tok: Token) -> str:
        if tok.kind == "eof":
            return "end of expression"
        if tok.kind == "str":
            return "a string"
        if tok.kind == "int":
            return f"number {tok.value}"
        return repr(tok.value)

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.error(f"expression nested more than {MAX_DEPTH} deep", pos)

    def parse(self) -> Node:
        if self.peek().kind == "eof":
            self.error("empty expression", 0)
        node = self.expr()
        tok = self.peek()
        if tok.kind != "eof":
            if tok.kind == ")":
                self.error("unbalanced ')': no '(' to close", tok.pos)
            if tok.kind == "op" and tok.value in _CMP:
                self.error("comparisons cannot be chained; join them with &&", tok.pos)
            self.error(f"expected an operator or end of expression, found {self.describe(tok)}",
                       tok.pos)
        return node

    def _chain(self, op: str, sub: Callable[[], Node]) -> Node:
        first = sub()
        tok = self.peek()
        if not (tok.kind == "op" and tok.value == op):
            return first
        operands, positions = [first], []
        while tok.kind == "op" and tok.value == op:
            self.take()
            positions.append(tok.pos)
            operands.append(sub())
            tok = self.peek()
        return BoolOp(op, operands, positions, first.pos)

    def expr(self) -> Node:
        return self._chain("||", self.conj)

    def conj(self) -> Node:
        return self._chain("&&", self.compare)

    def compare(self) -> Node:
        left = self.unary()
        tok = self.peek()
        if tok.kind == "op" and tok.value in _CMP:
            self.take()
            right = self.unary()
            return Compare(tok.value, left, right, tok.pos)
        return left

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.value == "!":
            self.take()
            self.enter(tok.pos)
            operand = self.unary()
            self.depth -= 1
            return Not(operand, tok.pos)
        return self.primary()

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind in ("int", "str"):
            assert tok.value is not None  # an int or str token has its value
            return Literal(tok.value, tok.pos)
        if tok.kind == "(":
            self.enter(tok.pos)
            if self.peek().kind == ")":
                self.error("empty parentheses", self.peek().pos)
            node = self.expr()
            close = self.take()
            if close.kind != ")":
                if close.kind == "eof":
                    self.error(f"unbalanced '(' at position {tok.pos}: expected ')'", close.pos)
                self.error(f"expected ')' to close '(' at position {tok.pos}, "
                           f"found {self.describe(close)}", close.pos)
            self.depth -= 1
            return node
        if tok.kind == "name":
            if self.peek().kind == "(":
                open_ = self.take()
                self.enter(open_.pos)
                args: list[Node] = []
                if self.peek().kind != ")":
                    while True:
                        args.append(self.expr())
                        sep = self.peek()
                        if sep.kind == ",":
                            self.take()
                            continue
                        break
                close = self.take()
                if close.kind != ")":
                    if close.kind == "eof":
                        self.error(f"unbalanced '(' at position {open_.pos}: expected ')'",
                                   close.pos)
                    self.error(f"expected ',' or ')' in the arguments of {tok.value}, "
                               f"found {self.describe(close)}", close.pos)
                self.depth -= 1
                return Call(str(tok.value), args, tok.pos)
            return Var(str(tok.value), tok.pos)
        if tok.kind == ")":
            self.error("unbalanced ')': expected a value", tok.pos)
        if tok.kind == ",":
            self.error("unexpected ','", tok.pos)
        if tok.kind == "eof":
            self.error("unexpected end of expression: expected a value", tok.pos)
        self.error(f"expected a value, found operator {tok.value!r}", tok.pos)


def parse(source: str) -> Node:
    """Source text → AST. Raises PolicySyntaxError."""
    return _Parser(source).parse()


def unparse(node: Node) -> str:
    """Canonical, fully parenthesised text of a tree (shows how precedence grouped it)."""
    if isinstance(node, Literal):
        if isinstance(node.value, int):
            return str(node.value)
        return '"' + node.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Call):
        return f"{node.name}({', '.join(unparse(a) for a in node.args)})"
    if isinstance(node, Not):
        return f"!{unparse(node.operand)}"
    if isinstance(node, Compare):
        return f"({unparse(node.left)} {node.op} {unparse(node.right)})"
    if isinstance(node, BoolOp):
        return "(" + f" {node.op} ".join(unparse(o) for o in node.operands) + ")"
    raise TypeError(node)


# --------------------------------------------------------------------------- names

VARIABLES = {
    "Domain": "str", "ClientIP": "str", "QueryType": "str",
    "Hour": "int", "Minute": "int", "Day": "int", "Month": "int", "Weekday": "int",
}
TIME_VARIABLES = {"Hour", "Minute", "Day", "Month", "Weekday"}

# name → (argument types, literal-only argument indices, variadic tail type or None, result)
FUNCTIONS = {
    "DomainMatches": (("str", "str"), {1}, None, "bool"),
    "DomainEndsWith": (("str", "str"), {1}, None, "bool"),
    "DomainStartsWith": (("str", "str"), {1}, None, "bool"),
    "DomainRegex": (("str", "str"), {1}, None, "bool"),
    "DomainLevelCount": (("str",), set(), None, "int"),
    "IPInCIDR": (("str", "str"), {1}, None, "bool"),
    "IPEquals": (("str", "str"), {1}, None, "bool"),
    "InClientGroup": (("str", "str"), {1}, None, "bool"),
    "QueryTypeIn": (("str", "str"), {1}, "str", "bool"),
    "IsWeekend": ((), set(), None, "bool"),
    "InTimeRange": (("int", "int", "int", "int", "int", "int"), {2, 3, 4, 5}, None, "bool"),
}
_TIME_FUNCTIONS = {"IsWeekend": "day", "InTimeRange": "minute"}
_VAR_GRAIN = {"Minute": "minute", "Hour": "hour", "Day": "day", "Month": "day", "Weekday": "day"}
_GRAIN_ORDER = {"minute": 0, "hour": 1, "day": 2}

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?|[a-z0-9_]")
_QTYPE = re.compile(r"[A-Z][A-Z0-9]{0,15}|TYPE[0-9]{1,5}")


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    for o in options:
        if o.lower() == name.lower():
            return f"; did you mean {o!r}?"
    return ""


def _text(node: Node) -> str:
    """A string literal argument (check() has made sure it is one)."""
    assert isinstance(node, Literal) and isinstance(node.value, str)
    return node.value


def _int(node: Node) -> int:
    """An integer literal argument (check() has made sure it is one)."""
    assert isinstance(node, Literal) and isinstance(node.value, int)
    return node.value


def _domain_pattern(node: Node, source: str, fn: str) -> str:
    """Normalise a domain literal: lower case, IDNA, and check its labels."""
    value = _text(node)
    text = value.strip()
    lead = fn in ("DomainMatches", "DomainEndsWith") and text.startswith(".")
    trail = fn == "DomainStartsWith" and text.endswith(".") and len(text) > 1
    core = text[1:] if lead else text
    core = core[:-1] if (trail or (core.endswith(".") and fn != "DomainStartsWith")) else core
    if not core.isascii():
        try:
            core = core.encode("idna").decode("ascii")
        except UnicodeError:
            raise PolicyTypeError(f"{fn}: {value!r} is not a valid domain name",
                                  node.pos, source) from None
    core = core.lower()
    labels = core.split(".")
    if not core or len(core) > 253 or not all(_LABEL.fullmatch(lb) for lb in labels):
        raise PolicyTypeError(f"{fn}: {value!r} is not a valid domain name pattern",
                              node.pos, source)
    return ("." if lead else "") + core + ("." if trail else "")


def _ip_literal(node: Node, source: str, fn: str) -> tuple[int, int]:
    value = _text(node)
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        raise PolicyTypeError(f"{fn}: {value!r} is not an IP address",
                              node.pos, source) from None
    return _ipkey_of(ip)


def _cidr_literal(node: Node, source: str, fn: str) -> tuple[int, int, int]:
    value = _text(node)
    try:
        net: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError as exc:
        raise PolicyTypeError(f"{fn}: {value!r} is not a CIDR network ({exc})",
                              node.pos, source) from None
    version = net.version
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 \
            and net.network_address.ipv4_mapped is not None:
        # ::ffff:a.b.c.d/n is an IPv4 network: clients are normalised the same way
        version = 4
        net = ipaddress.ip_network(
            (int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
    shift = net.max_prefixlen - net.prefixlen
    return version, int(net.network_address) >> shift, shift


def _prepare_call(node: Call, source: str) -> None:
    """Validate literal arguments once, at save time, and keep what evaluation needs."""
    fn, args = node.name, node.args
    if fn in ("DomainMatches", "DomainEndsWith", "DomainStartsWith"):
        node.data = _domain_pattern(args[1], source, fn)
    elif fn == "DomainRegex":
        pattern = _text(args[1])
        if len(pattern) > MAX_REGEX:
            raise PolicyTypeError(f"DomainRegex: pattern longer than {MAX_REGEX} characters",
                                  args[1].pos, source)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                node.data = re.compile(pattern)
        except (re.error, RecursionError, OverflowError, ValueError) as exc:
            raise PolicyTypeError(f"DomainRegex: invalid regular expression: {exc}",
                                  args[1].pos, source) from None
    elif fn == "IPInCIDR":
        node.data = _cidr_literal(args[1], source, fn)
    elif fn == "IPEquals":
        node.data = _ip_literal(args[1], source, fn)
    elif fn == "InClientGroup":
        name = _text(args[1]).strip()
        if not name:
            raise PolicyTypeError("InClientGroup: empty group name", args[1].pos, source)
        node.data = name
    elif fn == "QueryTypeIn":
        names = []
        for a in args[1:]:
            q = _text(a).strip().upper()
            if not _QTYPE.fullmatch(q):
                raise PolicyTypeError(f"QueryTypeIn: {_text(a)!r} is not a query type name",
                                      a.pos, source)
            names.append(q)
        node.data = frozenset(names)
    elif fn == "InTimeRange":
        sh, sm, eh, em = (_int(a) for a in args[2:])
        for a, v, hi in ((args[2], sh, 23), (args[3], sm, 59), (args[4], eh, 24), (args[5], em, 59)):
            if not 0 <= v <= hi:
                raise PolicyTypeError(f"InTimeRange: {v} is out of range 0..{hi}", a.pos, source)
        if eh == 24 and em != 0:
            raise PolicyTypeError("InTimeRange: the end may be 24:00 but not later",
                                  args[5].pos, source)
        start, end = sh * 60 + sm, eh * 60 + em
        if start == end:
            # equal ends are ambiguous (empty or all day?) — refuse rather than guess
            raise PolicyTypeError("InTimeRange: start and end are the same time",
                                  node.pos, source)
        if start == 0 and end == 1440:
            raise PolicyTypeError("InTimeRange: 00:00-24:00 is the whole day; leave it out",
                                  node.pos, source)
        node.data = (start, end)


def check(node: Node, source: str = "") -> str:
    """Type-check the tree in place (sets `.type`, prepares call data); returns its type."""
    if isinstance(node, Literal):
        assert node.type is not None  # a literal is typed when made
        return node.type
    if isinstance(node, Var):
        if node.name not in VARIABLES:
            hint = _did_you_mean(node.name, list(VARIABLES) + list(FUNCTIONS))
            if node.name in FUNCTIONS:
                raise PolicyTypeError(f"{node.name} is a function: call it as {node.name}(…)",
                                      node.pos, source)
            if node.name.lower() in ("and", "or", "not", "true", "false"):
                hint = {"and": "; use &&", "or": "; use ||", "not": "; use !"}.get(
                    node.name.lower(), "")
            raise PolicyTypeError(f"unknown name {node.name!r}{hint}", node.pos, source)
        node.type = VARIABLES[node.name]
        return node.type
    if isinstance(node, Call):
        spec = FUNCTIONS.get(node.name)
        if spec is None:
            if node.name in VARIABLES:
                raise PolicyTypeError(f"{node.name} is a variable, not a function",
                                      node.pos, source)
            raise PolicyTypeError(
                f"unknown function {node.name!r}{_did_you_mean(node.name, FUNCTIONS)}",
                node.pos, source)
        types, literal_only, variadic, result = spec
        n = len(node.args)
        if variadic is None and n != len(types):
            raise PolicyTypeError(
                f"{node.name} takes {len(types)} argument{'s' if len(types) != 1 else ''}, "
                f"got {n}", node.pos, source)
        if variadic is not None and n < len(types):
            raise PolicyTypeError(f"{node.name} takes at least {len(types)} arguments, got {n}",
                                  node.pos, source)
        for i, arg in enumerate(node.args):
            want = types[i] if i < len(types) else variadic
            got = check(arg, source)
            if got != want:
                raise PolicyTypeError(
                    f"argument {i + 1} of {node.name} must be {want}, got {got}", arg.pos, source)
            lit = i in literal_only or (variadic is not None and i >= len(types))
            if lit and not isinstance(arg, Literal):
                raise PolicyTypeError(f"argument {i + 1} of {node.name} must be a literal",
                                      arg.pos, source)
        _prepare_call(node, source)
        node.type = result
        return result
    if isinstance(node, Not):
        t = check(node.operand, source)
        if t != "bool":
            raise PolicyTypeError(f"! needs a boolean operand, got {t}", node.operand.pos, source)
        node.type = "bool"
        return "bool"
    if isinstance(node, Compare):
        lt, rt = check(node.left, source), check(node.right, source)
        if lt != rt:
            raise PolicyTypeError(f"cannot compare {lt} with {rt} using {node.op}",
                                  node.pos, source)
        if node.op not in ("==", "!=") and lt != "int":
            raise PolicyTypeError(f"{node.op} compares integers only, got {lt}", node.pos, source)
        node.type = "bool"
        return "bool"
    if isinstance(node, BoolOp):
        for operand in node.operands:
            t = check(operand, source)
            if t != "bool":
                raise PolicyTypeError(f"{node.op} needs boolean operands, got {t}",
                                      operand.pos, source)
        node.type = "bool"
        return "bool"
    raise TypeError(node)


# --------------------------------------------------------------------------- runtime

def local_fields(ts: float, tz: tzinfo | None = None) -> tuple[int, int, int, int, int, int, int, int]:
    """(year, month, day, hour, minute, second, weekday Sunday=0, utc offset seconds)."""
    if tz is None:
        t = time.localtime(ts)
        return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                (t.tm_wday + 1) % 7, t.tm_gmtoff)
    d = datetime.fromtimestamp(ts, tz)
    off = d.utcoffset()
    return (d.year, d.month, d.day, d.hour, d.minute, d.second,
            (d.weekday() + 1) % 7, int(off.total_seconds()) if off is not None else 0)


def _ipkey_of(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, int]:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return 4, int(ip.ipv4_mapped)
    return ip.version, int(ip)


@lru_cache(maxsize=4096)
def _ipkey(text: str) -> tuple[int, int] | None:
    """"10.0.0.1" → (4, int); None when not an IP. Cached: clients repeat."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    return _ipkey_of(ip)


class EvalContext:
    """What one evaluation reads. Time and group membership are looked up lazily, once."""
    __slots__ = ("domain", "client_ip", "qtype", "_now", "_clock", "_tz", "_t",
                 "_group_lookup", "_groups")

    def __init__(self, domain: str, client_ip: str = "", qtype: str = "A", *,
                 now: float | None = None, clock: Callable[[], float] = time.time,
                 tz: tzinfo | None = None,
                 group_lookup: Callable[[str], Iterable[str] | None] | None = None):
        self.domain = domain
        self.client_ip = client_ip
        self.qtype = qtype
        self._now = now
        self._clock = clock
        self._tz = tz
        self._t: tuple[int, ...] | None = None
        self._group_lookup = group_lookup
        self._groups: dict[str, Iterable[str]] | None = None

    def t(self) -> tuple[int, ...]:
        t = self._t
        if t is None:
            now = self._now if self._now is not None else self._clock()
            t = self._t = local_fields(now, self._tz)
        return t

    def groups(self, ip: str) -> Iterable[str]:
        g = self._groups
        if g is not None and ip in g:
            return g[ip]
        found: Iterable[str]
        if self._group_lookup is None:
            found = frozenset()
        else:
            found = self._group_lookup(ip) or frozenset()
        if g is None:
            g = self._groups = {}
        g[ip] = found
        return found


# --------------------------------------------------------------------------- compiler

# A compiled node: reads the context, gives the value check() typed it with (int, str or bool).
Evaluator = Callable[[EvalContext], Any]


def _c_var(name: str) -> Evaluator:
    if name == "Domain":
        return lambda c: c.domain
    if name == "ClientIP":
        return lambda c: c.client_ip
    if name == "QueryType":
        return lambda c: c.qtype
    idx = {"Month": 1, "Day": 2, "Hour": 3, "Minute": 4, "Weekday": 6}[name]

    def read(c: EvalContext, _i: int = idx) -> int:
        t = c._t
        if t is None:
            t = c.t()
        return t[_i]
    return read


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _c_compare(node: Compare) -> Evaluator:
    op, left, right = node.op, node.left, node.right
    # the common shape `Var op literal`: one closure, the literal bound as a default
    if isinstance(right, Literal) and not isinstance(left, Literal):
        f, k = _compile(left), right.value
        if op == "==":
            return lambda c: f(c) == k
        if op == "!=":
            return lambda c: f(c) != k
        if op == "<":
            return lambda c: f(c) < k
        if op == "<=":
            return lambda c: f(c) <= k
        if op == ">":
            return lambda c: f(c) > k
        return lambda c: f(c) >= k
    if isinstance(left, Literal) and not isinstance(right, Literal):
        mirrored = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
        return _c_compare(Compare(mirrored, right, left, node.pos))
    f, g, fn = _compile(left), _compile(right), _OPS[op]
    return lambda c: fn(f(c), g(c))


def _c_call(node: Call) -> Evaluator:
    name, data = node.name, node.data
    if name == "IsWeekend":
        def weekend(c: EvalContext) -> bool:
            t = c._t
            if t is None:
                t = c.t()
            return t[6] == 0 or t[6] == 6
        return weekend
    if name == "InTimeRange":
        h, m = _compile(node.args[0]), _compile(node.args[1])
        assert isinstance(data, tuple)
        start, end = data
        if start < end:
            return lambda c: start <= h(c) * 60 + m(c) < end

        def crossing(c: EvalContext) -> bool:
            v: int = h(c) * 60 + m(c)
            return v >= start or v < end
        return crossing
    subject = _compile(node.args[0])
    if name == "DomainMatches":
        assert isinstance(data, str)
        if data[0] == ".":
            bare = data[1:]

            def subtree(c: EvalContext) -> bool:
                d: str = subject(c)
                return d == bare or d.endswith(data)
            return subtree
        needle = "." + data + "."
        return lambda c: needle in "." + subject(c) + "."
    if name == "DomainEndsWith":
        assert isinstance(data, str)
        if data[0] == ".":
            return lambda c: subject(c).endswith(data)
        dotted = "." + data

        def ends(c: EvalContext) -> bool:
            d: str = subject(c)
            return d == data or d.endswith(dotted)
        return ends
    if name == "DomainStartsWith":
        assert isinstance(data, str)
        if data[-1] == ".":
            return lambda c: subject(c).startswith(data)
        dotted = data + "."

        def starts(c: EvalContext) -> bool:
            d: str = subject(c)
            return d == data or d.startswith(dotted)
        return starts
    if name == "DomainRegex":
        assert isinstance(data, re.Pattern)
        search = data.search
        return lambda c: search(subject(c)) is not None
    if name == "DomainLevelCount":
        def levels(c: EvalContext) -> int:
            d: str = subject(c)
            return d.count(".") + 1 if d else 0
        return levels
    if name == "IPEquals":
        return lambda c: _ipkey(subject(c)) == data
    if name == "IPInCIDR":
        assert isinstance(data, tuple)
        version, prefix, shift = data

        def in_cidr(c: EvalContext) -> bool:
            k = _ipkey(subject(c))
            return k is not None and k[0] == version and k[1] >> shift == prefix
        return in_cidr
    if name == "InClientGroup":
        assert isinstance(data, str)
        return lambda c: data in c.groups(subject(c))
    if name == "QueryTypeIn":
        assert isinstance(data, frozenset)
        return lambda c: subject(c).upper() in data
    raise AssertionError(name)


def _compile(node: Node) -> Evaluator:
    if isinstance(node, Literal):
        v = node.value
        return lambda c: v
    if isinstance(node, Var):
        return _c_var(node.name)
    if isinstance(node, Call):
        return _c_call(node)
    if isinstance(node, Not):
        f = _compile(node.operand)
        return lambda c: not f(c)
    if isinstance(node, Compare):
        return _c_compare(node)
    if isinstance(node, BoolOp):
        fs = [_compile(o) for o in node.operands]
        if node.op == "&&":
            if len(fs) == 2:
                a, b = fs
                return lambda c: a(c) and b(c)
            if len(fs) == 3:
                a, b, d = fs
                return lambda c: a(c) and b(c) and d(c)
            if len(fs) == 4:
                a, b, d, e = fs
                return lambda c: a(c) and b(c) and d(c) and e(c)

            def all_(c: EvalContext, fs: tuple[Evaluator, ...] = tuple(fs)) -> bool:
                for f in fs:
                    if not f(c):
                        return False
                return True
            return all_
        if len(fs) == 2:
            a, b = fs
            return lambda c: a(c) or b(c)
        if len(fs) == 3:
            a, b, d = fs
            return lambda c: a(c) or b(c) or d(c)

        def any_(c: EvalContext, fs: tuple[Evaluator, ...] = tuple(fs)) -> bool:
            for f in fs:
                if f(c):
                    return True
            return False
        return any_
    raise TypeError(node)


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for ch in node.children():
        yield from _walk(ch)


class CompiledExpression:
    """A checked, compiled expression. `predicate(ctx)` → bool; never raises for bad input
    except where an injected function (group lookup, clock) raises."""

    __slots__ = ("source", "ast", "predicate", "uses", "time_grain")

    def __init__(self, source: str, ast: Node, predicate: Evaluator, uses: frozenset[str],
                 time_grain: str | None):
        self.source = source
        self.ast = ast
        self.predicate = predicate
        self.uses = uses              # variable and function names the expression reads
        self.time_grain = time_grain  # None | "minute" | "hour" | "day"

    @property
    def uses_time(self) -> bool:
        return self.time_grain is not None

    def evaluate(self, domain: str, client_ip: str = "", qtype: str = "A", *,
                 now: float | None = None, tz: tzinfo | None = None,
                 group_lookup: Callable[[str], Iterable[str] | None] | None = None,
                 clock: Callable[[], float] = time.time) -> bool:
        ctx = EvalContext(domain.lower().rstrip("."), client_ip, qtype.upper(), now=now,
                          clock=clock, tz=tz, group_lookup=group_lookup)
        return bool(self.predicate(ctx))

    def __repr__(self) -> str:
        return f"CompiledExpression({self.source!r})"


def compile_expression(source: str) -> CompiledExpression:
    """Parse, check and compile. Raises PolicySyntaxError / PolicyTypeError."""
    ast = parse(source)
    t = check(ast, source)
    if t != "bool":
        raise PolicyTypeError(f"the expression must be a condition (true/false), not {t}",
                              ast.pos, source)
    uses: set[str] = set()
    grain: str | None = None
    for n in _walk(ast):
        if isinstance(n, Var):
            name = n.name
            g = _VAR_GRAIN.get(name)
        elif isinstance(n, Call):
            name = n.name
            g = _TIME_FUNCTIONS.get(name)
        else:
            continue
        uses.add(name)
        if g is not None and (grain is None or _GRAIN_ORDER[g] < _GRAIN_ORDER[grain]):
            grain = g
    return CompiledExpression(source, ast, _compile(ast), frozenset(uses), grain)

