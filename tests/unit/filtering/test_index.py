"""The compiled blocklist index: match semantics, masks, regex, extras, integrity, swap."""

from __future__ import annotations

import os
import random
import string

import pytest

from burrow.filtering.compiler import compile_index
from burrow.filtering.index import (
    HEADER_SIZE,
    Index,
    IndexFormatError,
    Match,
    false_positive_bound,
    masks,
)
from burrow.filtering.regexset import RegexSet
from burrow.filtering.rules import Rule


def build(tmp_path, lists, name="test.idx", kinds=None):
    """lists: {list_id: [Rule, ...]} → an open Index (compiled in-process)."""
    by_path = {f"mem:{lid}": rules for lid, rules in lists.items()}
    sources = [
        {"list_id": lid, "path": f"mem:{lid}", "kind": (kinds or {}).get(lid, "block")}
        for lid in lists
    ]
    out = tmp_path / name
    report = compile_index(sources, out, parser=lambda path, fmt: by_path[path])
    assert report.ok, report.error
    return Index.open(out)


def hits(index, name, **kw):
    return {(m.name, m.how, m.action, m.mask) for m in index.lookup(name, **kw) or ()}


# ----------------------------------------------------------------------------- semantics


def test_exact_matches_only_the_name(tmp_path):
    with build(tmp_path, {0: [Rule("ads.example.com", "exact", "block")]}) as ix:
        assert hits(ix, "ads.example.com") == {("ads.example.com", "exact", "block", 1)}
        assert ix.lookup("x.ads.example.com") is None
        assert ix.lookup("example.com") is None


def test_subtree_matches_name_and_below_but_not_lookalikes(tmp_path):
    with build(tmp_path, {0: [Rule("x.com", "subtree", "block")]}) as ix:
        for name in ("x.com", "a.x.com", "b.a.x.com"):
            assert hits(ix, name) == {("x.com", "subtree", "block", 1)}, name
        for name in ("evilx.com", "x.com.evil", "com", "xx.com"):
            assert ix.lookup(name) is None, name


def test_below_is_strictly_below_and_dot_bounded(tmp_path):
    with build(tmp_path, {0: [Rule("x.com", "below", "block")]}) as ix:
        assert ix.lookup("x.com") is None
        assert ix.lookup("evilx.com") is None
        assert ix.lookup("a.evilx.com") is None
        assert hits(ix, "a.x.com") == {("x.com", "below", "block", 1)}
        assert hits(ix, "b.a.x.com") == {("x.com", "below", "block", 1)}


def test_case_and_trailing_dot_are_ignored(tmp_path):
    with build(tmp_path, {0: [Rule("ads.example.com", "exact", "block")]}) as ix:
        assert ix.lookup("ADS.Example.COM.") is not None
        assert ix.lookup("ads.example.com.")[0].name == "ads.example.com"


def test_multi_list_masks_merge(tmp_path):
    rule = Rule("tracker.net", "subtree", "block")
    with build(tmp_path, {0: [rule], 5: [rule, rule], 63: [rule], 7: [Rule("other.net", "exact", "block")]}) as ix:
        (m,) = ix.lookup("a.tracker.net")
        assert m.mask == (1 << 0) | (1 << 5) | (1 << 63)
        assert ix.stats()["entries"] == 2  # one merged entry + other.net
        # Narrowed to the lists that apply to a client's group.
        (m,) = ix.lookup("a.tracker.net", lists=1 << 5 | 1 << 7)
        assert m.mask == 1 << 5
        assert ix.lookup("a.tracker.net", lists=1 << 7) is None


def test_same_name_different_how_keeps_list_attribution(tmp_path):
    lists = {1: [Rule("x.com", "exact", "block")], 2: [Rule("x.com", "subtree", "block")]}
    with build(tmp_path, lists) as ix:
        assert hits(ix, "x.com") == {("x.com", "exact", "block", 2), ("x.com", "subtree", "block", 4)}
        # Below x.com only list 2's subtree entry applies, not list 1's exact one.
        assert hits(ix, "a.x.com") == {("x.com", "subtree", "block", 4)}


def test_allow_and_block_are_both_reported_most_specific_first(tmp_path):
    lists = {
        0: [Rule("ads.com", "subtree", "block"), Rule("cdn.ads.com", "exact", "allow")],
        1: [Rule("cdn.ads.com", "exact", "block", important=True)],
    }
    with build(tmp_path, lists) as ix:
        found = ix.lookup("cdn.ads.com")
        assert [m.name for m in found] == ["cdn.ads.com", "cdn.ads.com", "ads.com"]
        deny, allow, important = masks(found)
        assert (deny, allow, important) == (0b11, 0b01, 0b10)
        assert any(m.allows for m in found)


def test_allow_list_kind_turns_rules_into_allows(tmp_path):
    lists = {0: [Rule("ads.com", "subtree", "block")], 1: [Rule("ok.ads.com", "exact", "block")]}
    with build(tmp_path, lists, kinds={1: "allow"}) as ix:
        assert hits(ix, "ok.ads.com") == {
            ("ok.ads.com", "exact", "allow", 2),
            ("ads.com", "subtree", "block", 1),
        }
        assert ix.lists[1]["kind"] == "allow"


def test_rpz_actions_and_redirect_data_round_trip(tmp_path):
    rules = [
        Rule("nx.test", "subtree", "nxdomain"),
        Rule("nodata.test", "exact", "nodata"),
        Rule("drop.test", "exact", "drop"),
        Rule("pass.test", "exact", "passthru"),
        Rule("home.test", "exact", "redirect", data=(("A", "192.168.1.5"), ("AAAA", "fd00::5"))),
        Rule("alias.test", "subtree", "redirect", data=(("CNAME", "safe.example"),)),
    ]
    with build(tmp_path, {0: rules}) as ix:
        assert ix.lookup("a.nx.test")[0].action == "nxdomain"
        assert ix.lookup("nodata.test")[0].action == "nodata"
        assert ix.lookup("drop.test")[0].action == "drop"
        assert ix.lookup("pass.test")[0].allows
        (m,) = ix.lookup("home.test")
        assert m.action == "redirect" and m.data == (("A", "192.168.1.5"), ("AAAA", "fd00::5"))
        assert ix.lookup("x.alias.test")[0].data == (("CNAME", "safe.example"),)


def test_qtypes_limit_a_rule(tmp_path):
    rules = [Rule("v6only.test", "exact", "block", qtypes=("AAAA",)), Rule("all.test", "exact", "block")]
    with build(tmp_path, {0: rules}) as ix:
        assert ix.lookup("v6only.test", qtype=28)[0].qtypes == (28,)
        assert ix.lookup("v6only.test", qtype=1) is None
        assert ix.lookup("v6only.test") is not None  # no qtype: reported, with its qtypes
        assert ix.lookup("all.test", qtype=1) is not None


# ----------------------------------------------------------------------------- regex


def test_regex_rules_match_after_the_walk_misses(tmp_path):
    lists = {
        0: [Rule(r"^ad[0-9]+\.", "regex", "block"), Rule("ad1.known.com", "exact", "block")],
        1: [Rule(r"(^|\.)good\.example$", "regex", "allow")],
        2: [Rule(r"^ad[0-9]+\.", "regex", "block")],
    }
    with build(tmp_path, lists) as ix:
        (m,) = ix.lookup("ad7.tracker.net")
        assert (m.how, m.name, m.mask) == ("regex", r"^ad[0-9]+\.", 0b101)
        assert ix.lookup("bad7.tracker.net") is None
        # Walk found a deny: the deny regexes are not needed for the decision...
        assert {m.how for m in ix.lookup("ad1.known.com")} == {"exact"}
        # ...unless asked for everything (explain).
        assert {m.how for m in ix.lookup("ad1.known.com", complete=True)} == {"exact", "regex"}
        # Nothing denies: the allow regex is not worth checking; something denies: it is.
        assert ix.lookup("good.example") is None
        assert ix.lookup("good.example", complete=True)[0].action == "allow"
        found = ix.lookup("ad3.good.example")
        assert masks(found)[:2] == (0b101, 0b010)
        assert ix.lookup("ad3.tracker.net", lists=0b010) is None
        assert ix.stats()["regex"] == 2


def test_important_regex_checked_when_walk_found_an_allow(tmp_path):
    lists = {
        0: [Rule("x.com", "subtree", "block"), Rule("y.x.com", "exact", "allow")],
        1: [Rule(r"^y\.x\.com$", "regex", "block", important=True)],
    }
    with build(tmp_path, lists) as ix:
        deny, allow, important = masks(ix.lookup("y.x.com"))
        assert important == 0b10 and allow == 0b01


def test_regexset_combines_and_reports_every_match():
    patterns = [r"^ads?\.", r"track", r"(a)\1", r"(?i)^UPPER", "[[:bad", r"(?P<x>z)", r"(?P<x>q)"]
    rs = RegexSet(patterns)
    assert set(rs.errors) == {4}
    assert rs.automata < len(patterns) - 1
    assert rs.search_all("ads.tracker.com") == [0, 1]
    assert rs.search_all("aa.com") == [2]
    assert rs.search_all("upper.com") == [3]
    assert rs.search_all("zq") == [5, 6]
    assert rs.search_all("nothing.here") == []


def test_regexset_many_patterns_uses_few_automata():
    patterns = [rf"^host{i}\.example\.com$" for i in range(1000)]
    rs = RegexSet(patterns)
    assert rs.automata <= 4
    assert rs.search_all("host517.example.com") == [517]


# ----------------------------------------------------------------------------- accuracy


def _random_name(rng):
    labels = rng.randint(2, 4)
    return ".".join(
        "".join(rng.choices(string.ascii_lowercase + string.digits + "-", k=rng.randint(1, 12)))
        for _ in range(labels)
    )


def test_random_names_against_a_python_set(tmp_path):
    rng = random.Random(4)
    present = {_random_name(rng) for _ in range(20000)}
    ix = build(tmp_path, {3: [Rule(n, "exact", "block") for n in present]})
    with ix:
        for name in present:  # no false negatives
            found = ix.lookup(name)
            assert found is not None and found[0].name == name and found[0].mask == 1 << 3
        absent = [n for n in (_random_name(rng) for _ in range(50000)) if n not in present]
        false = sum(ix.lookup(n) is not None for n in absent)
        # Bound: per name ≤ labels * N / 2^64 ≈ 3e-15; over 50k names the expected count
        # is ~1e-10, so any false positive at all means the hash is broken.
        assert false_positive_bound(len(present), probes=4) * len(absent) < 1e-6
        assert false == 0


# ----------------------------------------------------------------------------- integrity


@pytest.fixture
def index_file(tmp_path):
    rules = [Rule(f"n{i}.example", "exact", "block") for i in range(500)]
    rules.append(Rule(r"^re[0-9]", "regex", "block"))
    build(tmp_path, {0: rules}).close()
    return tmp_path / "test.idx"


@pytest.mark.parametrize(
    "damage",
    ["truncate-header", "truncate-body", "extend", "flip-body", "magic", "version", "empty"],
)
def test_damaged_index_is_rejected_with_a_clear_error(index_file, damage):
    raw = bytearray(index_file.read_bytes())
    if damage == "truncate-header":
        raw = raw[:40]
    elif damage == "truncate-body":
        raw = raw[: len(raw) // 2]
    elif damage == "extend":
        raw += b"\0" * 8
    elif damage == "flip-body":
        raw[HEADER_SIZE + 300] ^= 0x40
    elif damage == "magic":
        raw[0:8] = b"NOTINDEX"
    elif damage == "version":
        raw[8] = 99
    elif damage == "empty":
        raw = bytearray()
    index_file.write_bytes(bytes(raw))
    with pytest.raises(IndexFormatError) as err:
        Index.open(index_file)
    assert str(index_file) in str(err.value)


def test_random_corruption_never_crashes(index_file):
    good = index_file.read_bytes()
    rng = random.Random(7)
    for _ in range(200):
        raw = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        if raw == good:
            continue
        index_file.write_bytes(bytes(raw))
        with pytest.raises(IndexFormatError):
            Index.open(index_file)


def test_not_an_index_and_missing_file(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(os.urandom(5000))
    with pytest.raises(IndexFormatError):
        Index.open(junk)
    with pytest.raises(FileNotFoundError):
        Index.open(tmp_path / "missing")


def test_closed_index_refuses_lookups(index_file):
    ix = Index.open(index_file)
    assert ix.lookup("n1.example")
    ix.close()
    ix.close()  # idempotent
    assert ix.closed
    with pytest.raises((ValueError, TypeError, AttributeError)):
        ix.lookup("n1.example")


def test_open_index_keeps_answering_after_the_file_is_replaced(tmp_path):
    old = build(tmp_path, {0: [Rule("old.example", "exact", "block")]})
    new = build(tmp_path, {0: [Rule("new.example", "exact", "block")]})  # same path
    try:
        assert old.lookup("old.example") and old.lookup("new.example") is None
        assert new.lookup("new.example") and new.lookup("old.example") is None
    finally:
        old.close()
        new.close()
    assert [p.name for p in tmp_path.iterdir()] == ["test.idx"]  # no temp files left


def test_empty_index(tmp_path):
    with build(tmp_path, {0: []}) as ix:
        assert ix.lookup("anything.example") is None
        assert ix.stats()["entries"] == 0


def test_stats_and_match_shape(index_file):
    with Index.open(index_file) as ix:
        st = ix.stats()
        assert st["entries"] == 500 and st["lists"] == 1 and st["regex"] == 1
        assert st["file_bytes"] == index_file.stat().st_size
        (m,) = ix.lookup("n7.example")
        assert m == Match("n7.example", "exact", "block", 1, False, (), ())


def test_overlapping_lists_against_a_model(tmp_path):
    rng = random.Random(9)
    pool = [f"n{i}.test" for i in range(3000)]
    lists, model = {}, {}
    for lid in (0, 1, 2, 40, 63):
        chosen = rng.sample(pool, 1500)
        lists[lid] = [Rule(n, "exact", "block") for n in chosen]
        for n in chosen:
            model[n] = model.get(n, 0) | 1 << lid
    with build(tmp_path, lists) as ix:
        for n in pool:
            found = ix.lookup(n)
            assert (found[0].mask if found else 0) == model.get(n, 0), n
        assert ix.stats()["entries"] == len(model)


def test_many_classes_use_wide_class_ids(tmp_path):
    rules = [
        Rule(f"h{i}.lan", "exact", "redirect", data=(("A", f"10.{i >> 16}.{i >> 8 & 255}.{i & 255}"),))
        for i in range(70000)
    ]
    with build(tmp_path, {0: rules}) as ix:
        assert ix.stats()["classes"] == 70000
        assert ix.lookup("h69999.lan")[0].data == (("A", "10.1.17.111"),)
        assert ix.lookup("h5.lan")[0].data == (("A", "10.0.0.5"),)


def test_regexset_agrees_with_brute_force_on_real_lists(shared_data):
    import re

    from burrow.filtering.parsers import parse_file

    files = sorted((shared_data / "regex").glob("*.list")) + [
        shared_data / "adguard" / "adguard-dns-filter.filter_1.txt",
        shared_data / "adguard" / "dandelion-anti-malware.filter_12.txt",
        shared_data / "adguard" / "hagezi-dns-rebind.filter_71.txt",
    ]
    patterns = sorted({r.name for f in files for r in parse_file(f).rules if r.match == "regex"})
    assert len(patterns) > 300
    rs = RegexSet(patterns)
    assert rs.automata <= 8  # most patterns are keyed by a literal they need
    compiled = [re.compile(p) for p in patterns]
    names = (shared_data / "topsites" / "umbrella-top-100k.txt").read_text().split()[:4000]
    names += ["ad1.example.com", "telemetry.example", "x.adserver1.net", "localhost"]
    for name in names:
        assert rs.search_all(name) == [i for i, c in enumerate(compiled) if c.search(name)], name
