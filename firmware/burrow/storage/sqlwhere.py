"""Small helpers for building WHERE clauses (standard library only: imported by every store)."""

from __future__ import annotations


def add_time_window(clauses: list, params: list, since, until, column: str = "ts") -> None:
    """Append ``column >= since`` and ``column < until`` (each when given) as bound parameters."""
    if since is not None:
        clauses.append(f"{column} >= ?")
        params.append(float(since))
    if until is not None:
        clauses.append(f"{column} < ?")
        params.append(float(until))


def where(clauses: list) -> str:
    return ("WHERE " + " AND ".join(clauses)) if clauses else ""
