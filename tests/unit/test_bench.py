"""scripts/bench.py's method without servers: dnsperf output parsing (real captured output,
tests/unit/dnsperf_captures), latency percentiles, the median and range over pairs, and how
the list phases' names are dealt out. No figure of a run is asserted."""

import argparse
import pathlib
import random

import pytest

from tests.support.scripts import load_script

CAPTURES = pathlib.Path(__file__).resolve().parent / "dnsperf_captures"


@pytest.fixture(scope="module")
def bench():
    return load_script("bench", "bench_under_test")


def capture(name):
    return (CAPTURES / name).read_text()


# -- dnsperf output ----------------------------------------------------------------------

def test_saturation_summary(bench):
    result = bench.parse_dnsperf(capture("saturation.txt"))
    assert result["queries_sent"] == result["queries_completed"] == 18382
    assert result["queries_lost"] == 0
    assert result["rcodes"] == {"NOERROR": 9191, "REFUSED": 9191}
    assert result["qps"] == pytest.approx(18214.914588)
    assert result["run_time_s"] == pytest.approx(1.009173)
    assert result["avg_latency_ms"] == pytest.approx(4.655)
    assert result["max_latency_ms"] == pytest.approx(24.816)
    assert result["ended_by"] == "time limit"


def test_verbose_output_gives_the_summary_and_nearest_rank_percentiles(bench):
    result = bench.parse_dnsperf_verbose(capture("verbose-fixed-rate.txt").splitlines(True))
    assert result["queries_sent"] == result["queries_completed"] == 12
    assert result["rcodes"] == {"NOERROR": 6, "REFUSED": 6}
    assert result["latency_samples"] == 12 and result["latency_lost"] == 0
    # sorted: 0.094 0.106 0.108 0.110 0.112 0.115 0.115 0.125 0.137 0.142 0.186 0.597 ms
    assert result["p50_ms"] == pytest.approx(0.115)  # rank ceil(0.5 * 12) = 6
    assert result["p99_ms"] == pytest.approx(0.597)  # rank ceil(0.99 * 12) = 12: the slowest


def test_lost_queries_rank_slowest(bench):
    """3 answered, 5 lost (T): the median falls on a lost query, so there is none."""
    result = bench.parse_dnsperf_verbose(capture("verbose-timeouts.txt").splitlines(True))
    assert result["queries_sent"] == 8 and result["queries_lost"] == 5
    assert result["latency_samples"] == 3 and result["latency_lost"] == 5
    assert result["p50_ms"] is None and result["p99_ms"] is None


def test_verbose_lines(bench):
    assert bench.verbose_line("> NOERROR example.com A 0.000169\n") == ("NOERROR", 0.000169)
    assert bench.verbose_line("> T foo.test AAAA\n") == ("T", None)
    assert bench.verbose_line("[Status] Testing complete (time limit)\n") is None
    assert bench.verbose_line("  Queries sent:         12\n") is None


def test_percentile_with_lost_queries(bench):
    answered = [float(v) for v in range(1, 101)]  # 1..100
    assert bench.percentile(answered, 0.5) == 50
    assert bench.percentile(answered, 0.99) == 99
    assert bench.percentile(answered, 0.99, lost=1) == 100  # rank 100 of 101
    assert bench.percentile(answered, 0.99, lost=2) is None  # rank 101 of 102: a lost one
    assert bench.percentile([], 0.5) is None
    assert bench.percentile([], 0.5, lost=3) is None
    assert bench.percentile([7.0], 0.99) == 7.0


# -- median and range over pairs ---------------------------------------------------------

def test_spread(bench):
    assert bench.spread([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    assert bench.spread([None, 4.0, None]) == {"median": 4.0, "min": 4.0, "max": 4.0, "n": 1}
    assert bench.spread([None]) is None and bench.spread([]) is None
    assert bench.spread([1 / 3], digits=2)["median"] == 0.33


def measurement(phase, load, pair, server, cpu, user=None, system=None, **more):
    return {"phase": phase, "load": load, "pair": pair, "server": server,
            "cpu_us_per_query": cpu, "cpu_user_us_per_query": user,
            "cpu_system_us_per_query": system, "cpu_ticks": 500, **more}


def test_ratios_are_taken_within_each_pair(bench):
    rows = [measurement("hit", "max", 2, "dnsmasq", 5.0), measurement("hit", "max", 1, "burrow", 6.0),
            measurement("hit", "max", 1, "dnsmasq", 4.0), measurement("hit", "max", 2, "burrow", 5.5),
            measurement("hit", "max", 3, "burrow", 7.0), measurement("hit", "max", 3, "dnsmasq", None)]
    assert bench.pair_ratios(rows, "cpu_us_per_query") == [1.5, 1.1, None]


def test_summary_per_phase_and_load(bench):
    rows = []
    for pair, (b, d) in enumerate([(6.0, 5.0), (7.2, 6.0), (6.6, 6.0), (9.0, 5.0), (6.0, 6.0)], 1):
        rows.append(measurement("hit", "max", pair, "burrow", b, user=b / 2, system=b / 2, qps=1000))
        rows.append(measurement("hit", "max", pair, "dnsmasq", d, user=1.0, system=d - 1.0, qps=2000))
    rows.append(measurement("hit", "2000", 1, "burrow", 30.0, p50_ms=0.2, p99_ms=2.0,
                            rate_not_reached=True))
    rows.append(measurement("hit", "2000", 1, "dnsmasq", 20.0, p50_ms=0.1, p99_ms=4.0))
    summary = bench.summarise(rows)
    top = summary["hit"]["max"]
    assert top["pairs"] == 5
    # ratios 1.2, 1.2, 1.1, 1.8, 1.0: median 1.2, range 1.0-1.8
    assert top["ratios"]["cpu_us_per_query"] == {"median": 1.2, "min": 1.0, "max": 1.8, "n": 5}
    assert top["servers"]["burrow"]["cpu_us_per_query"]["median"] == 6.6
    assert top["servers"]["burrow"]["cpu_user_us_per_query"]["median"] == 3.3
    assert top["servers"]["dnsmasq"]["cpu_system_us_per_query"] == {
        "median": 5.0, "min": 4.0, "max": 5.0, "n": 5}
    assert top["servers"]["dnsmasq"]["qps"]["median"] == 2000
    fixed = summary["hit"]["2000"]
    assert fixed["ratios"]["p99_ms"]["median"] == 0.5
    assert fixed["ratios"]["p50_ms"]["median"] == 2.0
    assert fixed["servers"]["burrow"]["rate_not_reached"] == 1
    assert fixed["servers"]["dnsmasq"]["rate_not_reached"] == 0
    text = bench.markdown({"meta": {"date": "d", "versions": {"cpu": "c", "cpus": "2"}, "pairs": 5,
                                    "duration_s": 3, "clients": 4, "server_cpu": 0, "client_cpu": 1,
                                    "command": "scripts/bench --pairs 5", "rates": [None, 2000]},
                           "summary": summary, "starts": {}, "warnings": []})
    assert "| max (saturation) | 5 | ×1.20 (1.00–1.80) | 6.60 (6.00–9.00) (3.30 + 3.30) |" in text
    assert "| 2,000 q/s | 1 | ×1.50 (1.50–1.50) |" in text
    assert "offered rate not reached (under 95%) in: hit 2,000 q/s (burrow 1/1)" in text


# -- loads and names ---------------------------------------------------------------------

def test_rates(bench):
    assert bench.parse_rates("max,2000,20000") == [None, 2000, 20000]
    assert bench.parse_rates(" 2_000 , max") == [2000, None]
    for bad in ("", "max,max", "0", "fast"):
        with pytest.raises(ValueError):
            bench.parse_rates(bad)


def test_arguments(bench):
    args = bench.parse_args(["--pairs", "2", "--rates", "2000,max", "--phases", "mixed,hit"])
    assert args.pairs == 2 and args.rates == [2000, None]
    assert args.phases == ["hit", "mixed"] and args.servers == ["burrow", "dnsmasq"]
    assert args.timeout == 2 * 2 * 2 * 2 * (8 + 12) + 600  # phases * loads * pairs * servers
    assert bench.parse_args(["--only", "dnsmasq"]).servers == ["dnsmasq"]
    for bad in (["--pairs", "0"], ["--rates", "max,max"], ["--phases", "warm"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_dnsmasq_cache_size(bench):
    args = bench.parse_args([])
    assert bench.dnsmasq_cache_size(args, with_list=False) == 1100  # the 1000 hit names + 10%
    assert bench.dnsmasq_cache_size(args, with_list=True) == 100_000  # the Umbrella set
    args = bench.parse_args(["--dnsmasq-cache-size", "150"])
    assert bench.dnsmasq_cache_size(args, False) == bench.dnsmasq_cache_size(args, True) == 150


def test_cold_slices_serve_small_needs_first_and_share_the_rest(bench):
    assert bench.cold_slices(1000, [10, 20, 30], pairs=5) == [10, 20, 30]  # all fit
    # 100 names per pair: 5 for the smallest need, then 95 shared by the other two
    assert bench.cold_slices(200, [5, 50, 1000], pairs=2) == [5, 47, 48]
    assert sum(bench.cold_slices(999, [7, 400, 10**6], pairs=5)) * 5 <= 999


def test_no_cold_name_is_asked_twice(bench, tmp_path):
    """Every blocked-cold measurement gets names of its own; a pair's two servers the same."""
    args = argparse.Namespace(pairs=3, duration=1.0, rates=[None, 2000], seed=4)
    pool = [f"n{i}.example" for i in range(10_000)]
    sizes = bench.cold_slices(len(pool), [bench.load_queries(args, r) for r in args.rates], args.pairs)
    shared = {"lists": {"cold_pool": pool, "cold_slices": sizes}}
    asked = []
    for rate in args.rates:
        for pair in range(args.pairs):
            path, runs = bench.query_file(args, "blocked-cold", rate, pair, tmp_path, shared)
            assert runs == 1
            asked += path.read_text().split()[::2]
    assert len(asked) == len(set(asked)) == args.pairs * sum(sizes)


def test_mixed_stream_repeats_popular_names(bench):
    names = [f"rank{r}.example" for r in range(1, 1001)]
    stream = bench.zipf_stream(names, 20_000, random.Random(1))
    assert stream == bench.zipf_stream(names, 20_000, random.Random(1))  # seeded
    counts = {n: stream.count(n) for n in names[:2] + names[-2:]}
    assert counts["rank1.example"] > counts["rank2.example"] > counts["rank1000.example"]
    assert len(set(stream)) < len(stream) / 4  # real repetition, not a list of unique names
