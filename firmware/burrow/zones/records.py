"""One record of local data, in the form every part of the zones package shares.

``Record(name, type, ttl, value)``: ``name`` is the absolute owner in lower case without the
trailing dot (IDNA/punycode ASCII; the root is ""), ``type`` the upper-case type mnemonic
(``"A"``, ``"MX"``…), ``ttl`` seconds, ``value`` the RDATA in zone-file text form with
absolute names written with their trailing dot (``"10 mail.lab.test."``, ``"\\"v=spf1 -all\\""``).
"""

from __future__ import annotations

from typing import NamedTuple

from ..dns import qtypes


class Record(NamedTuple):
    name: str
    type: str
    ttl: int
    value: str


# The types local zones hold (RFC 1035, 3596, 2782, 8659), with their wire codes.
TYPE_CODES = {t: qtypes.number(t) for t in ("A", "AAAA", "CNAME", "MX", "TXT", "SRV", "PTR", "NS", "CAA", "SOA")}
TYPE_NAMES = {code: name for name, code in TYPE_CODES.items()}
