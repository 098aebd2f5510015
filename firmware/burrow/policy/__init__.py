"""Policy rules (seed 003 `/api/policies`): an expression language compiled to closures,
an engine that evaluates rules in order, and the store that keeps the rules, swaps the
engine and announces the change (`store.py`) — see docs/filtering.md, "Policy rules"."""

from .engine import (ACTIONS, Match, PolicyEngine, PolicyRule, PolicyValueError,
                     boundary_after, parse_forward, parse_redirect)
from .expr import (CompiledExpression, EvalContext, PolicyError, PolicySyntaxError,
                   PolicyTypeError, compile_expression, parse, unparse)

__all__ = [
    "ACTIONS", "Match", "PolicyEngine", "PolicyRule", "PolicyValueError",
    "boundary_after", "parse_forward", "parse_redirect",
    "CompiledExpression", "EvalContext", "PolicyError", "PolicySyntaxError",
    "PolicyTypeError", "compile_expression", "parse", "unparse",
]
