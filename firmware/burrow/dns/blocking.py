"""How a block is answered: the blocking settings (``[filtering]`` blocking_mode, custom_ipv4,
custom_ipv6, blocked_ttl) and the reply they make.

Three stages block: the filter (lists, allow/deny lists), the policy stage (BLOCK and REDIRECT
rules) and the private-names stage (rebinding protection). They read one ``BlockingSettings``
from the shared state (dns/shared.py) and answer through :func:`blocked_answer`.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from . import wire
from .decision import Decision
from .message import Answer

MODES = ("null", "nxdomain", "nodata", "custom")

Redirects = tuple[tuple[str, str], ...]  # (("A", "192.0.2.1"), ("CNAME", "x.example"), ...)
EDE = tuple[int, str]  # an Extended DNS Error: (info code, extra text)


@dataclass
class BlockingSettings:
    """How a block is answered (``[filtering]`` options); lists may override the mode."""

    mode: str = "null"  # null: 0.0.0.0 / ::, nxdomain, nodata, custom: the IPs below
    custom_ipv4: str = "0.0.0.0"
    custom_ipv6: str = "::"
    ttl: int = 10  # seconds: short, so unblocking takes effect quickly on clients


def _rr(rtype: int, ttl: int, rdata: bytes) -> bytes:
    return wire.build_rr(b"\xc0\x0c", rtype, wire.CLASS_IN, ttl, rdata)  # owner: the question name


# A block depends only on the lists, rules and pause, and any change to those moves the fast
# path's generation: so the fast path may replay a blocked answer until then (bounded only by
# its LRU caps), with the record TTLs as they are (no aging: asked again, the chain would give
# the same TTL). Replaying instead of re-deciding every blocked_ttl seconds is what keeps
# repeated blocked queries as cheap as cache hits. Callers whose block depends on something
# else (a time rule, an upstream answer) cap ``Answer.ttl`` themselves.
UNTIL_CHANGED = 7 * 86400.0


@functools.lru_cache(maxsize=256)  # bounded: the block modes' and redirects' addresses in use
def _address(rtype: int, text: str) -> bytes:
    """The rdata of an A or AAAA record for ``text`` (parsed once, not per blocked query)."""
    if rtype == wire.TYPE_A:
        return ipaddress.IPv4Address(text).packed
    return ipaddress.IPv6Address(text).packed


def _answer_records(records: list[tuple[int, bytes]], ttl: int, decision: Decision, ede: EDE | None) -> Answer:
    parts = [_rr(rtype, ttl, rdata) for rtype, rdata in records]
    return Answer(wire.NOERROR, decision, b"".join(parts), an=len(records), ttls=(ttl,) * len(records),
                  ttl=UNTIL_CHANGED, ede=ede)


def blocked_answer(qtype: int, mode: str, settings: BlockingSettings, ede: EDE | None,
                   redirect: Redirects = ()) -> Answer:
    """The reply for a blocked question under ``mode`` (or the redirect targets given)."""
    ttl = settings.ttl
    if mode == "nxdomain":
        return Answer(wire.NXDOMAIN, Decision.BLOCKED, ttl=UNTIL_CHANGED, ede=ede)
    records: list[tuple[int, bytes]] = []
    if redirect:
        for kind, value in redirect:
            if kind == "A" and qtype == wire.TYPE_A:
                records.append((wire.TYPE_A, _address(wire.TYPE_A, value)))
            elif kind == "AAAA" and qtype == wire.TYPE_AAAA:
                records.append((wire.TYPE_AAAA, _address(wire.TYPE_AAAA, value)))
        if not records:
            cname = [v for k, v in redirect if k == "CNAME"]
            if cname:
                records.append((wire.TYPE_CNAME, wire.text_to_name(cname[0])))
        return _answer_records(records, ttl, Decision.REDIRECTED, ede)
    if mode in ("null", "custom"):
        v4 = "0.0.0.0" if mode == "null" else settings.custom_ipv4
        v6 = "::" if mode == "null" else settings.custom_ipv6
        if qtype == wire.TYPE_A:
            records.append((wire.TYPE_A, _address(wire.TYPE_A, v4)))
        elif qtype == wire.TYPE_AAAA:
            records.append((wire.TYPE_AAAA, _address(wire.TYPE_AAAA, v6)))
    return _answer_records(records, ttl, Decision.BLOCKED, ede)  # other types: NODATA

