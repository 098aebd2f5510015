"""Policy rules (seed 003 `/api/policies`): an expression language compiled to closures,
and an engine that evaluates rules in order. Pure library — see docs/filtering.md,
"Policy rules"."""

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
