"""One record of local data, in the form every part of the zones package shares.

``Record(name, type, ttl, value)``: ``name`` is the absolute owner in lower case without the
trailing dot (IDNA/punycode ASCII; the root is ""), ``type`` the upper-case type mnemonic
(``"A"``, ``"MX"``…), ``ttl`` seconds, ``value`` the RDATA in zone-file text form with
absolute names written with their trailing dot (``"10 mail.lab.test."``, ``"\\"v=spf1 -all\\""``).
"""

from __future__ import annotations

from typing import NamedTuple


class Record(NamedTuple):
    name: str
    type: str
    ttl: int
    value: str


# The types local zones hold, with their wire codes (RFC 1035, 3596, 2782, 8659).
TYPE_CODES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
              "SRV": 33, "CAA": 257}
TYPE_NAMES = {code: name for name, code in TYPE_CODES.items()}
