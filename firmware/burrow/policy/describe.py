"""A rule in plain words, and a rule checked field by field for an editor.

    describe(PolicyRule(0, "tiktok", 'InClientGroup(ClientIP, "kids") && '
                        'DomainMatches(Domain, ".tiktok.com") && !IsWeekend() && '
                        'InTimeRange(Hour, Minute, 21, 0, 7, 0)', "BLOCK"))
    → "Blocks tiktok.com and *.tiktok.com for group kids on weekdays 21:00–07:00"

    validate({"name": "x", "logic": "Hour >= && 1", "action": "BLOCK"})
    → {"valid": False, "errors": [{"field": "logic", "message": "expected a value, found
       operator '&&'", "position": 8}], "summary": None}

The sentence is made from the checked expression tree (expr.py), never from the text: the
top-level conjunction is split into parts by what each reads (the name, the client, the query
type, the day, the time of day); each part has its phrase in the sentence, and a part that
mixes them (or that no phrase fits) is said literally in a "when …" clause, so nothing a rule
tests is left out. ``validate`` runs the same parser and checks as saving does
(``PolicyRule``), but reports every field's problem at once and changes nothing.
"""

from __future__ import annotations

from typing import Any

from .engine import ACTIONS, MAX_ACTION_DATA, MAX_NAME, PolicyRule, PolicyValueError, parse_forward, parse_redirect
from .expr import BoolOp, Call, Compare, Literal, Node, Not, PolicyError, Var, compile_expression

__all__ = ["describe", "describe_parts", "phrase", "validate"]

DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTHS = ("", "January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
VERBS = {"BLOCK": "Blocks", "ALLOW": "Allows", "REDIRECT": "Answers", "FORWARD": "Sends"}

# What a name reads, by the part of the sentence it belongs to.
_KIND = {
    "Domain": "domain", "DomainMatches": "domain", "DomainEndsWith": "domain", "DomainStartsWith": "domain",
    "DomainRegex": "domain", "DomainLevelCount": "domain",
    "ClientIP": "client", "InClientGroup": "client", "IPInCIDR": "client", "IPEquals": "client",
    "QueryType": "qtype", "QueryTypeIn": "qtype",
    "Weekday": "day", "IsWeekend": "day", "Day": "day", "Month": "day",
    "Hour": "time", "Minute": "time", "InTimeRange": "time",
}
_VAR_WORDS = {"Domain": "the name", "ClientIP": "the client address", "QueryType": "the query type",
              "Hour": "the hour", "Minute": "the minute", "Day": "the day of the month",
              "Month": "the month (1–12)", "Weekday": "the weekday (0 = Sunday)"}
_OP_WORDS = {"==": "is", "!=": "is not", "<": "is below", "<=": "is at most", ">": "is above", ">=": "is at least"}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _q(text: str) -> str:
    return f"“{text}”"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _kinds(node: Node) -> set[str]:
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (Var, Call)) and n.name in _KIND:
            out.add(_KIND[n.name])
        stack.extend(n.children())
    return out


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, BoolOp) and node.op == "&&":
        out: list[Node] = []
        for o in node.operands:
            out.extend(_conjuncts(o))
        return out
    return [node]


def _var_cmp(node: Node, name: str) -> tuple[str, int | str] | None:
    """``Var op literal`` (either side) on variable ``name`` → (op with the variable on the left, value)."""
    if not isinstance(node, Compare):
        return None
    if isinstance(node.left, Var) and node.left.name == name and isinstance(node.right, Literal):
        return node.op, node.right.value
    if isinstance(node.right, Var) and node.right.name == name and isinstance(node.left, Literal):
        return _FLIP[node.op], node.left.value
    return None


def _is_var(node: Node, name: str) -> bool:
    return isinstance(node, Var) and node.name == name


def _lit(node: Node) -> Any:
    return node.value if isinstance(node, Literal) else None


# ---- the generic phrase: any expression, said literally ----------------------------------------------

def phrase(node: Node) -> str:
    """Any checked expression in words (the "when …" clause): nothing left out, nothing guessed."""
    if isinstance(node, Literal):
        return str(node.value) if isinstance(node.value, int) else _q(node.value)
    if isinstance(node, Var):
        return _VAR_WORDS.get(node.name, node.name)
    if isinstance(node, Compare):
        return f"{phrase(node.left)} {_OP_WORDS[node.op]} {phrase(node.right)}"
    if isinstance(node, Not):
        inner = node.operand
        if isinstance(inner, Call) and inner.name == "IsWeekend":
            return "it is not the weekend"
        return f"not ({phrase(inner)})"
    if isinstance(node, BoolOp):
        word = " and " if node.op == "&&" else " or "
        return word.join(f"({phrase(o)})" if isinstance(o, BoolOp) else phrase(o) for o in node.operands)
    if isinstance(node, Call):
        return _call_phrase(node)
    raise TypeError(node)


def _call_phrase(node: Call) -> str:
    a = node.args
    name = node.name
    if name == "IsWeekend":
        return "it is the weekend"
    if name == "InTimeRange":
        start, end = node.data if isinstance(node.data, tuple) else (0, 0)
        if _is_var(a[0], "Hour") and _is_var(a[1], "Minute"):
            return f"the time is {_hhmm(start)}–{_hhmm(end)}"
        return f"{phrase(a[0])}:{phrase(a[1])} is within {_hhmm(start)}–{_hhmm(end)}"
    subject = phrase(a[0])
    data = node.data
    if name == "DomainLevelCount":
        return f"the number of labels in {subject}"
    if name == "DomainMatches":
        assert isinstance(data, str)
        if data.startswith("."):
            return f"{subject} is {data[1:]} or below it"
        return f"{subject} contains {_q(data)} as whole labels"
    if name == "DomainEndsWith":
        assert isinstance(data, str)
        if data.startswith("."):
            return f"{subject} is below {data[1:]}"
        return f"{subject} is {data} or below it"
    if name == "DomainStartsWith":
        assert isinstance(data, str)
        return f"{subject} starts with {_q(data.rstrip('.'))} as whole labels"
    if name == "DomainRegex":
        return f"{subject} matches the pattern {_q(str(_lit(a[1])))}"
    if name == "IPInCIDR":
        return f"{subject} is in {str(_lit(a[1])).strip()}"
    if name == "IPEquals":
        return f"{subject} is {str(_lit(a[1])).strip()}"
    if name == "InClientGroup":
        return f"{subject} is in group {data}"
    if name == "QueryTypeIn":
        assert isinstance(data, frozenset)
        return f"{subject} is one of {', '.join(sorted(data))}"
    raise TypeError(name)


# ---- the parts of the sentence ----------------------------------------------------------------------

def _or_join(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    if any(" and " in p for p in parts):
        return "either " + ", or ".join(parts)
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _domain(node: Node) -> str | None:
    """A name test as the object of the verb: "tiktok.com and *.tiktok.com"."""
    if isinstance(node, BoolOp) and node.op == "||":
        parts = [_domain(o) for o in node.operands]
        return None if any(p is None for p in parts) else _or_join([p for p in parts if p])
    if isinstance(node, Call) and node.args and _is_var(node.args[0], "Domain"):
        data = node.data
        if node.name == "DomainMatches" and isinstance(data, str):
            bare = data.lstrip(".")
            return f"{bare} and *.{bare}" if data.startswith(".") else f"names containing {_q(data)}"
        if node.name == "DomainEndsWith" and isinstance(data, str):
            return f"*{data}" if data.startswith(".") else f"{data} and *.{data}"
        if node.name == "DomainStartsWith" and isinstance(data, str):
            return f"names starting with {_q(data.rstrip('.'))}"
        if node.name == "DomainRegex":
            return f"names matching {_q(str(_lit(node.args[1])))}"
    cmp = _var_cmp(node, "Domain")
    if cmp and cmp[0] == "==":
        return f"{cmp[1]} only"
    return None


def _client(node: Node) -> str | None:
    if isinstance(node, BoolOp) and node.op == "||":
        parts = [_client(o) for o in node.operands]
        return None if any(p is None for p in parts) else _or_join([p for p in parts if p])
    if isinstance(node, Not):
        inner = _client(node.operand)
        return f"everyone except {inner}" if inner else None
    if isinstance(node, Call) and node.args and _is_var(node.args[0], "ClientIP"):
        if node.name == "InClientGroup":
            return f"group {node.data}"
        if node.name == "IPInCIDR":
            return f"clients in {str(_lit(node.args[1])).strip()}"
        if node.name == "IPEquals":
            return f"client {str(_lit(node.args[1])).strip()}"
    cmp = _var_cmp(node, "ClientIP")
    if cmp and cmp[0] == "==":
        return f"client {cmp[1]}"
    return None


def _qtype(node: Node) -> str | None:
    if isinstance(node, Call) and node.name == "QueryTypeIn" and _is_var(node.args[0], "QueryType"):
        assert isinstance(node.data, frozenset)
        names = sorted(node.data)
        return (", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]) + " queries only"
    cmp = _var_cmp(node, "QueryType")
    if cmp and cmp[0] == "==":
        return f"{str(cmp[1]).upper()} queries only"
    if cmp and cmp[0] == "!=":
        return f"except {str(cmp[1]).upper()} queries"
    return None


def _bounds(nodes: list[Node], name: str, top: int) -> tuple[int, int] | None:
    """Comparisons of one integer variable, all and-ed → the half-open range [low, high) they
    allow, or None when a part is anything else."""
    low, high = 0, top
    for n in nodes:
        cmp = _var_cmp(n, name)
        if cmp is None or not isinstance(cmp[1], int):
            return None
        op, v = cmp[0], int(cmp[1])
        if op == ">=":
            low = max(low, v)
        elif op == ">":
            low = max(low, v + 1)
        elif op == "<":
            high = min(high, v)
        elif op == "<=":
            high = min(high, v + 1)
        elif op == "==":
            low, high = max(low, v), min(high, v + 1)
        else:
            return None
    return low, high


def _day_special(n: Node) -> str | None:
    """One day test that is not a bound on a variable: the weekend, "not on Sundays", an or."""
    if isinstance(n, Call) and n.name == "IsWeekend":
        return "on weekends"
    if isinstance(n, Not) and isinstance(n.operand, Call) and n.operand.name == "IsWeekend":
        return "on weekdays"
    cmp = _var_cmp(n, "Weekday")
    if cmp and cmp[0] == "!=" and isinstance(cmp[1], int) and 0 <= cmp[1] <= 6:
        return f"except on {DAYS[cmp[1]]}s"
    cmp = _var_cmp(n, "Month")
    if cmp and cmp[0] == "!=" and isinstance(cmp[1], int) and 1 <= cmp[1] <= 12:
        return f"except in {MONTHS[cmp[1]]}"
    if isinstance(n, BoolOp) and n.op == "||":
        parts = [_days([o])[0] for o in n.operands]
        return None if any(p is None for p in parts) else _or_join([p for p in parts if p])
    return None


def _days(nodes: list[Node]) -> tuple[str | None, list[Node]]:
    """The day tests in words, and the ones no phrase fits (said literally instead)."""
    out: list[str] = []
    left: list[Node] = []
    by_var: dict[str, list[Node]] = {}
    for n in nodes:
        bound = next(((v, c) for v in ("Weekday", "Month", "Day") if (c := _var_cmp(n, v))), None)
        if bound is not None and bound[1][0] != "!=":
            by_var.setdefault(bound[0], []).append(n)
            continue
        said = _day_special(n)
        if said is None:
            left.append(n)
        else:
            out.append(said)
    for var, top, first in (("Weekday", 7, 0), ("Month", 13, 1), ("Day", 32, 1)):
        if var not in by_var:
            continue
        b = _bounds(by_var[var], var, top)
        if b is None or max(first, b[0]) > b[1] - 1 or b[1] - 1 >= top:
            left.extend(by_var[var])
        elif (max(first, b[0]), b[1] - 1) != (first, top - 1):
            out.append(_day_range(var, max(first, b[0]), b[1] - 1))
    return (" ".join(out) or None), left


def _day_range(var: str, lo: int, hi: int) -> str:
    """Weekdays, months or days of the month from lo to hi (inclusive) in words."""
    if var == "Weekday":
        if (lo, hi) == (1, 5):
            return "on weekdays"
        return f"on {DAYS[lo]}s" if lo == hi else f"{DAYS[lo]} to {DAYS[hi]}"
    if var == "Month":
        return f"in {MONTHS[lo]}" if lo == hi else f"from {MONTHS[lo]} to {MONTHS[hi]}"
    return f"on day {lo} of the month" if lo == hi else f"on days {lo}–{hi} of the month"


def _hour_range(nodes: list[Node]) -> tuple[int, int] | None:
    b = _bounds(nodes, "Hour", 24)
    if b is None or b[0] >= b[1]:
        return None
    return b[0] * 60, b[1] * 60


def _times(nodes: list[Node]) -> str | None:
    if len(nodes) == 1:
        n = nodes[0]
        if isinstance(n, Call) and n.name == "InTimeRange" and _is_var(n.args[0], "Hour") \
                and _is_var(n.args[1], "Minute") and isinstance(n.data, tuple):
            start, end = n.data
            return f"{_hhmm(start)}–{_hhmm(end)}"
        if isinstance(n, BoolOp) and n.op == "||" and len(n.operands) == 2:
            # Hour >= 22 || Hour < 6: a window across midnight
            a, b = (_hour_range(_conjuncts(o)) for o in n.operands)
            if a and b and a[1] == 1440 and b[0] == 0 and a[0] > b[1]:
                return f"{_hhmm(a[0])}–{_hhmm(b[1])}"
            if a and b and b[1] == 1440 and a[0] == 0 and b[0] > a[1]:
                return f"{_hhmm(b[0])}–{_hhmm(a[1])}"
            return None
    r = _hour_range(nodes)
    if r is None or r == (0, 1440):
        return None
    if r[1] == 1440:
        return f"from {_hhmm(r[0])} to midnight"
    if r[0] == 0:
        return f"before {_hhmm(r[1])}"
    return f"{_hhmm(r[0])}–{_hhmm(r[1])}"


def describe_parts(rule: PolicyRule) -> dict[str, Any]:
    """The parts the sentence is made of: {"what", "who", "queries", "days", "times", "when",
    "target"}; each None when the rule does not narrow it."""
    ast = rule.compiled.ast
    groups: dict[str, list[Node]] = {}
    other: list[Node] = []
    for part in _conjuncts(ast):
        kinds = _kinds(part)
        if len(kinds) == 1:
            groups.setdefault(kinds.pop(), []).append(part)
        else:
            other.append(part)
    what_parts: list[str] = []
    who_parts: list[str] = []
    q_parts: list[str] = []
    for kind, render, into in (("domain", _domain, what_parts), ("client", _client, who_parts),
                               ("qtype", _qtype, q_parts)):
        for part in groups.get(kind, []):
            said = render(part)
            if said is None:
                other.append(part)
            else:
                into.append(said)
    days, unsaid = _days(groups.get("day", []))
    other.extend(unsaid)
    times = _times(groups["time"]) if "time" in groups else None
    if "time" in groups and times is None:
        other.extend(groups["time"])
    other.sort(key=lambda n: n.pos)
    return {
        "what": " that are also ".join(what_parts) if what_parts else None,
        "who": " who are also in ".join(who_parts) if who_parts else None,
        "queries": ", ".join(q_parts) if q_parts else None,
        "days": days,
        "times": times,
        "when": " and ".join(f"({phrase(n)})" if isinstance(n, BoolOp) and len(other) > 1 else phrase(n)
                             for n in other) or None,
        "target": rule.action_data or None,
    }


def describe(rule: PolicyRule) -> str:
    """One sentence saying what the rule does and when: "Blocks *.tiktok.com for group kids on
    weekdays 21:00–07:00"."""
    p = describe_parts(rule)
    if p["when"] and not any(p[k] for k in ("what", "who", "queries", "days", "times")):
        target = {"REDIRECT": f" with {p['target']}", "FORWARD": f" to {p['target']}"}.get(rule.action, "")
        return f"{VERBS[rule.action]} a query{target} when {p['when']}"
    what = p["what"] or "every name"
    if p["queries"]:
        what += f" ({p['queries']})"
    out = f"{VERBS[rule.action]} {what}"
    if rule.action == "REDIRECT":
        out += f" with {p['target']}"
    elif rule.action == "FORWARD":
        out += f" to {p['target']}"
    out += f" for {p['who']}" if p["who"] else " for every client"
    if p["days"]:
        out += f" {p['days']}"
    if p["times"]:
        out += f" {p['times']}" if p["days"] else f" every day {p['times']}"
    if not p["days"] and not p["times"]:
        out += " at any time"
    if p["when"]:
        out += f", when {p['when']}"
    return out


# ---- checking a rule for the editor -------------------------------------------------------------

def _problem(e: PolicyError) -> dict[str, Any]:
    out: dict[str, Any] = {"field": getattr(e, "field", "logic") or "logic", "message": e.message}
    if e.position is not None:
        out["position"] = e.position
    return out


def validate(body: dict[str, Any]) -> dict[str, Any]:
    """Every problem of a rule body at once (a missing field too), each {field, message,
    position?} (position: 0-based character offset into ``logic``), and, when there is none,
    the sentence. The same checks as saving (``PolicyRule``); nothing is kept."""
    errors: list[dict[str, Any]] = []
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.append({"field": "name", "message": "name is required"})
    elif len(name) > MAX_NAME:
        errors.append({"field": "name", "message": f"name longer than {MAX_NAME} characters"})
    action = body.get("action")
    action = action.strip().upper() if isinstance(action, str) else ""
    if action not in ACTIONS:
        errors.append({"field": "action", "message": f"action must be one of {', '.join(ACTIONS)}"})
    data = body.get("action_data") or ""
    try:
        if len(data) > MAX_ACTION_DATA:
            raise PolicyValueError("action_data", f"action_data longer than {MAX_ACTION_DATA} characters")
        if action == "REDIRECT":
            parse_redirect(data)
        elif action == "FORWARD":
            parse_forward(data)
        elif action in ACTIONS and data.strip():
            raise PolicyValueError("action_data", f"{action} takes no action_data")
    except PolicyError as e:
        errors.append(_problem(e))
    logic = body.get("logic")
    if not isinstance(logic, str) or not logic.strip():
        errors.append({"field": "logic", "message": "logic is required"})
    else:
        try:
            compile_expression(logic)
        except PolicyError as e:
            errors.append(_problem(e))
    summary = None
    if not errors:
        rule = PolicyRule(None, str(name), str(logic), action, data, bool(body.get("enabled", True)))
        summary = describe(rule)
    return {"valid": not errors, "errors": errors, "summary": summary}
