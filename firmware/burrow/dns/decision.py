"""How a query was answered: one Decision per answer, plus a trace of the stages that spoke.

The Decision is low-cardinality (metrics label it); the trace is the detail the query log keeps,
shaped like the seed API's ``block_trace`` entries.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class Decision(enum.IntEnum):
    """The outcome of one query. Values are stored in the query log: never renumber."""

    RESOLVED = 1  # forwarded upstream, answer relayed
    CACHED = 2  # answered from the cache
    STALE = 3  # expired cache entry served because upstreams failed (RFC 8767)
    BLOCKED = 4  # a list, rule or policy blocked it
    ALLOWED = 5  # an allow entry or policy let it through (then forwarded or cached)
    LOCAL = 6  # local records or zones answered
    REDIRECTED = 7  # a rule rewrote the answer
    FORWARDED_CONDITIONAL = 8  # a conditional forwarding rule's upstreams answered
    REFUSED = 9  # access control or policy refused it
    RATE_LIMITED = 10  # the client exceeded its rate limit
    SERVFAIL = 11  # no answer could be had
    INVALID = 12  # malformed or unsupported query (FORMERR, NOTIMP, BADVERS)
    THREAT = 13  # a threat feed blocked it: counted apart and reported as a security event
    DROPPED = 14  # a list or rule blocked it by sending no answer at all (RPZ rpz-drop.)

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def blocked(self) -> bool:
        return self in BLOCKED_DECISIONS

    @property
    def cached(self) -> bool:
        return self is Decision.CACHED or self is Decision.STALE


# The decisions that count as blocked (the query log's ``blocked`` column, the statistics).
BLOCKED_DECISIONS = frozenset({Decision.BLOCKED, Decision.THREAT, Decision.DROPPED})


class TraceEntry(NamedTuple):
    """One breadcrumb: which stage acted, what it did, and why (seed 003 ``block_trace``)."""

    stage: str
    action: str
    rule: str = ""
    source: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self._asdict().items() if v or k in ("stage", "action")}


class QueryRecord(NamedTuple):
    """One answered query, as the DNS path hands it to telemetry (plain, cheap to build).

    ``mono`` is time.monotonic() at receipt; telemetry converts it to wall time when draining,
    so the hot path calls one clock only.
    """

    mono: float
    client_ip: str
    domain: str  # lower case, no trailing dot
    qtype: int
    rcode: int
    decision: Decision
    elapsed: float  # seconds from receipt to reply sent
    upstream: str  # "ip:port" when forwarded, else ""
    trace: tuple[TraceEntry, ...]  # may be empty
