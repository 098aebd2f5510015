"""dns/serial.py: RFC 1982 serial arithmetic for the zone store, authoritative data and
secondary zones (the cases each used to test on its own are in test_axfr and
test_zone_authority)."""

import datetime
import random

from burrow.dns.serial import HALF, MODULUS, next_serial, serial_add, serial_gt, serial_lt


def test_lt_and_gt_are_one_order():
    rng = random.Random(1982)
    pairs = [(rng.randrange(MODULUS), rng.randrange(MODULUS)) for _ in range(2000)]
    pairs += [(0, HALF), (HALF, 0), (5, 5), (MODULUS - 1, 0), (0, HALF - 1), (0, HALF + 1)]
    for a, b in pairs:
        assert serial_lt(a, b) == serial_gt(b, a)
        assert not (serial_lt(a, b) and serial_gt(a, b))
    assert not serial_lt(0, HALF) and not serial_gt(0, HALF)  # undefined: neither way


def test_a_step_is_always_newer():
    day = datetime.date(2024, 3, 15)
    for serial in (0, 7, 2024031499, 2024031599, MODULUS - 1, HALF - 1, HALF):
        assert serial_gt(next_serial(serial, day), serial)
    assert next_serial(2024031499, day) == 2024031500  # a date-shaped serial moves to today
    assert serial_add(MODULUS - 1, 1) == 0
