"""Zone serial numbers: RFC 1982 sequence-space arithmetic (SERIAL_BITS = 32) and the step a
change takes, in one place for the zone store, authoritative data and secondary zones."""

from __future__ import annotations

import datetime

MODULUS = 2**32
HALF = 2**31  # serials this far apart compare neither way (RFC 1982 §3.2)


def serial_gt(a: int, b: int) -> bool:
    """True when serial ``a`` is newer than ``b``. Pairs exactly 2**31 apart are undefined
    by RFC 1982; they compare False both ways, so such a jump never triggers a transfer."""
    a %= MODULUS
    b %= MODULUS
    return (a < b and b - a > HALF) or (a > b and a - b < HALF)


def serial_lt(a: int, b: int) -> bool:
    """RFC 1982 §3.2: is serial ``a`` before ``b`` in 32-bit sequence space?"""
    return serial_gt(b, a)


def serial_add(serial: int, n: int) -> int:
    """``serial + n`` modulo 2**32; RFC 1982 only defines 0 ≤ n ≤ 2**31 - 1."""
    if not 0 <= n < HALF:
        raise ValueError(f"serial increment {n} outside 0..2**31-1")
    return (serial + n) % MODULUS


def is_date_serial(serial: int) -> bool:
    """True for serials written YYYYMMDDnn with a real date (the common convention)."""
    text = str(serial)
    if len(text) != 10:
        return False
    try:
        datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return 1970 <= int(text[:4]) <= 2100


def next_serial(serial: int, today: datetime.date | None = None) -> int:
    """The serial after ``serial``: today's YYYYMMDD00 if the serial is date-shaped and older,
    else one more (mod 2^32, which RFC 1982 makes greater)."""
    if is_date_serial(serial):
        dated = int((today or datetime.date.today()).strftime("%Y%m%d")) * 100
        if serial_lt(serial, dated):
            return dated
    return serial_add(serial, 1)
