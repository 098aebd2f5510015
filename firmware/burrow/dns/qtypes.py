"""Query types and classes: their numbers and their names, in one place.

The numbers Burrow's own code refers to are the constants below (``wire`` re-exports them, so
``wire.TYPE_A`` reads as before). A type's name is its mnemonic from dnslib's table, which
knows every type in common use, or the RFC 3597 form ``TYPE65280`` for any other; both forms
are read back in any case. Classes have the short table zone files use (RFC 1035 §5.1; HS and
CS are obsolete but still written; NONE and ANY only occur in updates and queries).
"""

from __future__ import annotations

import functools

import dnslib

TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_PTR, TYPE_HINFO, TYPE_MX, TYPE_TXT = 1, 2, 5, 6, 12, 13, 15, 16
TYPE_AAAA, TYPE_SRV, TYPE_DNAME, TYPE_OPT, TYPE_ANY = 28, 33, 39, 41, 255
TYPE_DS, TYPE_RRSIG, TYPE_NSEC, TYPE_DNSKEY, TYPE_NSEC3 = 43, 46, 47, 48, 50
TYPE_TKEY, TYPE_TSIG, TYPE_IXFR, TYPE_AXFR, TYPE_MAILB, TYPE_MAILA = 249, 250, 251, 252, 253, 254
CLASS_IN, CLASS_CH, CLASS_ANY = 1, 3, 255

MAX_TYPE = 65535  # types are 16-bit; 0 is reserved (RFC 6895 §3.1)

# Every mnemonic dnslib knows, upper case (what ``number`` reads besides TYPEn).
NAMES = frozenset(dnslib.QTYPE.reverse)

CLASS_NAMES = {CLASS_IN: "IN", 2: "CS", CLASS_CH: "CH", 4: "HS", 254: "NONE", CLASS_ANY: "ANY"}
CLASS_NUMBERS = {text: code for code, text in CLASS_NAMES.items()}


@functools.lru_cache(maxsize=512)  # bounded: the types seen in practice are a few dozen
def name(qtype: int) -> str:
    """``"A"``, ``"AAAA"``, … or the RFC 3597 form ``"TYPE65280"`` for a type without one."""
    text = dnslib.QTYPE.forward.get(qtype)  # QTYPE.get() would invent a name like "65280"
    return text if text else f"TYPE{qtype}"


@functools.lru_cache(maxsize=512)  # bounded: a few dozen names, and ValueError is not cached
def number(text: str) -> int:
    """The number of a type name in any case (``A`` → 1, ``type65280`` → 65280); ValueError
    when it names no type."""
    upper = text.strip().upper()
    if upper.startswith("TYPE") and upper[4:].isdigit():
        value = int(upper[4:])
        if 0 < value <= MAX_TYPE:
            return value
    value = dnslib.QTYPE.reverse.get(upper)
    if value is None:
        raise ValueError(f"unknown query type {text!r}")
    return int(value)
