"""No HTTP handler decides that answers changed: the stores announce their own changes
(burrow/changes.py) and one subscriber in the composition root drops the fast path's answers
and recomputes derived data. A module under api/ (or runtime_config) that calls
``invalidate``, ``answers_changed`` or ``forget_views`` — or names the old ``local_changed`` —
is a handler doing a store's job, and the next endpoint would forget it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "firmware" / "burrow"
FORBIDDEN = {"invalidate", "answers_changed", "forget_views", "local_changed"}


def calls_in(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every call or reference to a forbidden attribute or name in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN:
            found.append((node.lineno, node.id))
    return found


def offenders() -> list[str]:
    files = sorted((PACKAGE / "api").rglob("*.py")) + [PACKAGE / "runtime_config.py"]
    return [f"{path.relative_to(PACKAGE)}:{line}: {name}" for path in files for line, name in calls_in(path)]


def test_no_handler_or_runtime_setting_invalidates_answers():
    assert offenders() == []


def test_the_check_sees_a_call(tmp_path):
    sample = tmp_path / "handler.py"
    sample.write_text("def changed(resolver):\n    resolver.answers_changed()\n    s.resolver.invalidate()\n")
    assert calls_in(sample) == [(2, "answers_changed"), (3, "invalidate")]
