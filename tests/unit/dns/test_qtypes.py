"""dns/qtypes.py: the one table of query-type and class names; the places that had a table of
their own read it."""

import pytest

from burrow.dns import qtypes, wire
from burrow.storage.querylog import qtype_name
from burrow.telemetry.recorder import METRIC_QTYPES
from burrow.zones.records import TYPE_CODES


@pytest.mark.parametrize("number, name", [(1, "A"), (28, "AAAA"), (65, "HTTPS"), (257, "CAA"),
                                          (255, "ANY"), (65280, "TYPE65280"), (54, "TYPE54")])
def test_names_and_numbers_round_trip(number, name):
    assert qtypes.name(number) == name
    assert qtypes.number(name) == number
    assert qtypes.number(name.lower()) == number  # any case


def test_number_refuses_what_names_no_type():
    for text in ("", "NOPE", "TYPE0", "TYPE65536", "TYPE", "A A"):
        with pytest.raises(ValueError, match="unknown query type"):
            qtypes.number(text)


def test_the_tables_elsewhere_come_from_here():
    assert wire.TYPE_AAAA == qtypes.TYPE_AAAA == qtypes.number("AAAA")
    assert qtype_name is qtypes.name
    assert all(qtypes.name(code) == text for code, text in METRIC_QTYPES.items())
    assert all(qtypes.number(text) == code for text, code in TYPE_CODES.items())
    assert qtypes.CLASS_NAMES[wire.CLASS_IN] == "IN" and qtypes.CLASS_NUMBERS["CH"] == wire.CLASS_CH
