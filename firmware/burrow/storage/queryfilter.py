"""The query-log filter, defined once: as SQL for the log's tiers and as a predicate for the rows
the Recorder holds in memory, so the two cannot disagree about a row.

Both forms read the same row: ``(id, *ROW_FIELDS)`` (storage/querylog.py), with ``ts`` as the
real unix time, not the millisecond timestamp the API shows. The SQL runs over a table named
``queries`` (the hot tier, and each archive block decoded into a scratch table).
tests/unit/storage/test_queryfilter.py writes the same rows to a log and keeps them in memory and
checks that both forms select the same ones, field by field.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence

TRACE_KEYS = ("stage", "action", "rule", "source")  # fields of one trace entry a filter can name

# Positions in a ``(id, *ROW_FIELDS)`` row.
_ID, _TS, _CLIENT, _DOMAIN, _QTYPE, _BLOCKED, _TRACE = 0, 1, 2, 3, 4, 7, 11


@dataclasses.dataclass(frozen=True)
class QueryFilter:
    """Which rows of the query log to read; a field left ``None`` (or empty) does not filter.

    ``domain`` is the name and every name below it (compared lower case, without a trailing
    dot); ``client`` the exact client IP; ``since``/``until`` unix seconds (since inclusive,
    until exclusive); ``blocked`` True/False the outcome. ``stage``/``action``/``rule``/
    ``source`` match fields of ONE trace entry (all given ones on the same entry). ``below_id``
    keeps rows with smaller ids only (the newest-first cursor of a scan that must not shift
    while rows are written). ``qtype`` the query type's number (1 for A, 28 for AAAA).
    """

    domain: str | None = None
    client: str | None = None
    since: float | None = None
    until: float | None = None
    blocked: bool | None = None
    stage: str | None = None
    action: str | None = None
    rule: str | None = None
    source: str | None = None
    below_id: int | None = None
    qtype: int | None = None

    def __post_init__(self) -> None:
        if self.domain:
            object.__setattr__(self, "domain", self.domain.lower().rstrip("."))

    def _trace_terms(self) -> list[tuple[str, str]]:
        return [(k, v) for k in TRACE_KEYS if (v := getattr(self, k))]

    @property
    def selective(self) -> bool:
        """Whether it filters on more than time and ids: then the rows must be looked at to be
        counted (the archive's per-block counts are not enough)."""
        return bool(self.domain or self.client or self.blocked is not None or self.qtype is not None
                    or self._trace_terms())

    def sql(self) -> tuple[str, list]:
        """``WHERE …`` (or "") and its parameters, for a table named ``queries``."""
        clauses: list[str] = []
        params: list = []
        if self.domain:
            # The name itself or a name ending in "." + name. Not LIKE: that ignores ASCII case
            # and needs escaping; substr compares exactly what str.endswith does.
            suffix = "." + self.domain
            clauses.append("(domain = ? OR substr(domain, -?) = ?)")
            params += [self.domain, len(suffix), suffix]
        if self.client:
            clauses.append("client_ip = ?")
            params.append(self.client)
        if self.qtype is not None:
            clauses.append("qtype = ?")
            params.append(int(self.qtype))
        if self.blocked is not None:
            clauses.append("blocked = ?")
            params.append(int(bool(self.blocked)))
        terms = self._trace_terms()
        if terms:
            inner = " AND ".join(f"json_extract(t.value, '$.{k}') = ?" for k, _ in terms)
            clauses.append(f"(trace IS NOT NULL AND EXISTS "
                           f"(SELECT 1 FROM json_each(queries.trace) AS t WHERE {inner}))")
            params += [v for _, v in terms]
        if self.since is not None:
            clauses.append("ts >= ?")
            params.append(float(self.since))
        if self.until is not None:
            clauses.append("ts < ?")
            params.append(float(self.until))
        if self.below_id is not None:
            clauses.append("id < ?")
            params.append(int(self.below_id))
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def matches(self, row) -> bool:
        """The same test as ``sql()``, for one ``(id, *ROW_FIELDS)`` row in memory."""
        for check in self._checks:
            if not check(row):
                return False
        return True

    @functools.cached_property
    def _checks(self) -> tuple[Callable[[Sequence], bool], ...]:
        # Built once per filter: a scan of every row in memory runs only the tests it asks for.
        checks: list[Callable[[Sequence], bool]] = []
        if self.below_id is not None:
            below = int(self.below_id)
            checks.append(lambda r: r[_ID] < below)
        if self.domain:
            name, suffix = self.domain, "." + self.domain
            checks.append(lambda r: r[_DOMAIN] == name or r[_DOMAIN].endswith(suffix))
        if self.client:
            client = self.client
            checks.append(lambda r: r[_CLIENT] == client)
        if self.qtype is not None:
            qtype = int(self.qtype)
            checks.append(lambda r: r[_QTYPE] == qtype)
        if self.blocked is not None:
            blocked = bool(self.blocked)
            checks.append(lambda r: bool(r[_BLOCKED]) == blocked)
        if self.since is not None:
            since = float(self.since)
            checks.append(lambda r: r[_TS] >= since)
        if self.until is not None:
            until = float(self.until)
            checks.append(lambda r: r[_TS] < until)
        terms = self._trace_terms()
        if terms:
            checks.append(lambda r: bool(r[_TRACE]) and any(
                isinstance(e, dict) and all(e.get(k) == v for k, v in terms)
                for e in _trace_entries(r[_TRACE])))
        return tuple(checks)


@functools.lru_cache(maxsize=1024)  # bounded; traces repeat (the same list, the same rule)
def _trace_entries(trace: str) -> tuple:
    """The entries of a row's JSON trace (none if it is not a JSON list: json_each finds none)."""
    try:
        entries = json.loads(trace)
    except ValueError:
        return ()
    return tuple(entries) if isinstance(entries, list) else ()
