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
