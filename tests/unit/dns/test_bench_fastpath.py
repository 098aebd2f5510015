"""scripts/bench_fastpath.py runs against the real fast path and drain (figures not asserted)."""

import collections

import dns.message
import pytest

from tests.support.scripts import load_script


def load():
    return load_script("bench_fastpath")


def test_small_run_measures_hits_through_fast_and_drain(capsys):
    assert load().main(["--names", "50", "--queries", "2000"]) == 0
    out = capsys.readouterr().out
    assert "DnsServer.fast(), one name:" in out and "ns per hit" in out
    assert "fast() + telemetry drain, 50 names:" in out


def test_stored_answers_really_hit():
    """The script's entries are the server's own blocked answers: a hit replays one."""
    bench = load()
    server = bench.new_server(collections.deque(maxlen=10))
    packet = bench.query_packet(7, "ads.example")
    bench.store_blocked(server, packet)
    reply = dns.message.from_wire(server.fast(packet, bench.CLIENT, True))
    assert reply.id == 7 and reply.answer[0][0].address == "0.0.0.0"


def test_names_beyond_the_fast_path_cap_are_refused():
    with pytest.raises(SystemExit):
        load().main(["--names", "20001"])
