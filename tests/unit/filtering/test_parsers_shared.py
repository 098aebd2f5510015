"""Every real list in ../shared/data parses with the counts its MANIFEST.md gives.

The files are read in place (never copied into the project); the tests skip when the
folder is absent. Each expectation says what the MANIFEST figure counts and how the
parser's rules compare to it.
"""

from __future__ import annotations

from collections import Counter

import pytest

from burrow.filtering.parsers import parse_file
from burrow.filtering.rules import Rule

# hagezi's "light" list: 57,781 base domains; the formats that list every name (domains,
# hosts, hosts-compressed) carry the 120,137 expanded names (base domains plus the
# subdomains hagezi lists explicitly, e.g. www.0.beer).
LIGHT_BASE, LIGHT_EXPANDED = 57_781, 120_137
PRO_BASE = 176_458
PRO_MINI_BASE = 67_887
TIF_MINI = 149_614
TIF_IPS = 40_224

# file → (format detected, rule count, {match: count} or None, unique names or None)
EXACT = {
    # MANIFEST: 138,002 entries = StevenBlack's "Number of unique domains"; every one is
    # an exact block. The 14 localhost-block names are ignored (skipped as "localhost").
    "stevenblack/hosts": ("hosts", 138_002, {"exact": 138_002}, 138_002),
    # ||d^ per base domain → one subtree rule each.
    "hagezi/light.adblock.txt": ("adblock", LIGHT_BASE, {"subtree": LIGHT_BASE}, LIGHT_BASE),
    # local=/d/ per base domain → subtree.
    "hagezi/light.dnsmasq.txt": ("dnsmasq", LIGHT_BASE, {"subtree": LIGHT_BASE}, LIGHT_BASE),
    # the expanded names, one exact rule each (the subdomains are listed, not implied).
    "hagezi/light.domains.txt": ("domains", LIGHT_EXPANDED, {"exact": LIGHT_EXPANDED}, LIGHT_EXPANDED),
    "hagezi/light.hosts.txt": ("hosts", LIGHT_EXPANDED, {"exact": LIGHT_EXPANDED}, LIGHT_EXPANDED),
    # 13,349 lines of up to 9 names: the same 120,137 expanded names.
    "hagezi/light.hosts-compressed.txt": ("hosts", LIGHT_EXPANDED, {"exact": LIGHT_EXPANDED}, LIGHT_EXPANDED),
    # `d` and `*.d` per base domain: 115,562 records = 2 × 57,781 (exact + below), i.e.
    # the base domains with their subtrees.
    "hagezi/light.rpz.txt": ("rpz", 2 * LIGHT_BASE, {"exact": LIGHT_BASE, "below": LIGHT_BASE}, LIGHT_BASE),
    # base domains, subdomains implied (header "Domains (without subdomains)") → subtree.
    "hagezi/light.wildcard-onlydomains.txt": ("onlydomains", LIGHT_BASE, {"subtree": LIGHT_BASE}, LIGHT_BASE),
    # `*.d` per base domain → strictly below d (see docs/filtering.md on this format).
    "hagezi/light.wildcard.txt": ("wildcard", LIGHT_BASE, {"below": LIGHT_BASE}, LIGHT_BASE),
    "hagezi/pro.adblock.txt": ("adblock", PRO_BASE, {"subtree": PRO_BASE}, PRO_BASE),
    "hagezi/pro.wildcard.txt": ("wildcard", PRO_BASE, {"below": PRO_BASE}, PRO_BASE),
    "hagezi/pro.wildcard-onlydomains.txt": ("onlydomains", PRO_BASE, {"subtree": PRO_BASE}, PRO_BASE),
    "hagezi/pro.mini.adblock.txt": ("adblock", PRO_MINI_BASE, {"subtree": PRO_MINI_BASE}, PRO_MINI_BASE),
    "hagezi/pro.mini.dnsmasq.txt": ("dnsmasq", PRO_MINI_BASE, {"subtree": PRO_MINI_BASE}, PRO_MINI_BASE),
    "hagezi/pro.mini.wildcard.txt": ("wildcard", PRO_MINI_BASE, {"below": PRO_MINI_BASE}, PRO_MINI_BASE),
    # 135,774 records = 2 × 67,887, as for light.rpz.
    "hagezi/pro.mini.rpz.txt": ("rpz", 2 * PRO_MINI_BASE, {"exact": PRO_MINI_BASE, "below": PRO_MINI_BASE},
                                PRO_MINI_BASE),
    "hagezi/tif.mini.wildcard-onlydomains.txt": ("onlydomains", TIF_MINI, {"subtree": TIF_MINI}, TIF_MINI),
    # IP triggers only: non-standard `1.0.218.230.rpz-ip` owners (forward order, no
    # prefix-length label). All 40,224 are counted as skipped "rpz-ip" (checked below).
    "hagezi/tif-ips.rpz.txt": ("rpz", 0, {}, 0),
    # plain IP addresses: not names; all 40,224 skipped as "ip" (checked below).
    "hagezi/tif.ips.txt": ("domains", 0, {}, 0),
    # Pi-hole regex lists ("14–321" entries in the MANIFEST): one rule per regex line.
    "regex/mmotti-regex.list": ("regex", 14, {"regex": 14}, 14),
    "regex/perflyst-smarttv-regex.list": ("regex", 14, {"regex": 14}, 14),
    "regex/hagezi-spam-tlds-pihole.regex.txt": ("regex", 26, {"regex": 26}, 26),
    "regex/hagezi-whitelist-referral-pihole.regex.txt": ("regex", 321, {"regex": 321}, 321),
    # mmotti's whitelist is plain names despite its directory.
    "regex/mmotti-whitelist.list": ("domains", 10, {"exact": 10}, 10),
    # one registrable domain per line, rank = line.
    "topsites/tranco_top_100k.csv": ("domains", 100_000, {"exact": 100_000}, 100_000),
}

# Skipped counts the MANIFEST figures imply.
SKIPPED = {
    "stevenblack/hosts": {"localhost": 14},
    "hagezi/tif-ips.rpz.txt": {"rpz-ip": TIF_IPS},
    "hagezi/tif.ips.txt": {"ip": TIF_IPS},
    # MANIFEST: 1,078 `$dnsrewrite` rules, a modifier Burrow skips (and counts).
    "adguard/adguard-dns-popup-hosts.filter_59.txt": {"$dnsrewrite": 1_078},
}

ADBLOCK_FILES = [
    "adguard/adguard-dns-filter.filter_1.txt",
    "adguard/adguard-dns-popup-hosts.filter_59.txt",
    "adguard/dandelion-anti-malware.filter_12.txt",
    "adguard/dandelion-nordic.filter_13.txt",
    "adguard/hagezi-abused-tlds.filter_56.txt",
    "adguard/hagezi-allowlist-referral.filter_45.txt",
    "adguard/hagezi-dns-rebind.filter_71.txt",
    "adguard/hagezi-normal.filter_34.txt",
    "adguard/smart-tv.filter_7.txt",
    "adguard/stevenblack.filter_33.txt",
]

ALL_LISTS = sorted(
    set(EXACT) | set(ADBLOCK_FILES)
    | {"topsites/umbrella-top-100k.txt", "derived/union-1M.domains.txt.gz"}
)


def _data_lines(path) -> tuple[int, int]:
    """(rule lines, $badfilter lines) of an adblock file, counted independently."""
    data = bad = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            s = line.strip()
            if s and s[0] not in "!#[":
                data += 1
                if "badfilter" in s.rpartition("$")[2]:
                    bad += 1
    return data, bad


@pytest.mark.parametrize("rel", ALL_LISTS)
def test_every_shared_list_parses_without_exception(shared_data, rel):
    res = parse_file(shared_data / rel)
    assert res.lines > 0
    # errors small: no shared list has more than a few dozen bad lines
    assert res.errors <= 20, res.error_samples
    for rule in res.rules[:1000]:
        assert isinstance(rule, Rule) and rule.name == rule.name.lower() or rule.match == "regex"


@pytest.mark.parametrize("rel", sorted(EXACT))
def test_shared_list_counts_match_manifest(shared_data, rel):
    fmt, count, by_match, unique = EXACT[rel]
    res = parse_file(shared_data / rel)
    assert res.format == fmt
    assert res.errors == 0, res.error_samples
    assert len(res.rules) == count
    assert dict(Counter(r.match for r in res.rules)) == by_match
    assert len({r.name for r in res.rules}) == unique
    assert res.skipped == SKIPPED.get(rel, {})
    if fmt != "rpz":
        assert {r.action for r in res.rules} <= {"block"}
    else:
        assert {r.action for r in res.rules} <= {"nxdomain"}  # hagezi: CNAME . only


def test_hagezi_light_formats_agree(shared_data):
    """The 8 light files are one list: every format covers the same base domains."""
    base = {r.name for r in parse_file(shared_data / "hagezi/light.wildcard-onlydomains.txt").rules}
    assert len(base) == LIGHT_BASE
    for fmt in ("adblock", "dnsmasq", "wildcard", "rpz"):
        names = {r.name for r in parse_file(shared_data / f"hagezi/light.{fmt}.txt").rules}
        assert names == base, fmt
    expanded = {r.name for r in parse_file(shared_data / "hagezi/light.domains.txt").rules}
    assert base <= expanded and len(expanded) == LIGHT_EXPANDED
    assert {r.name for r in parse_file(shared_data / "hagezi/light.hosts-compressed.txt").rules} == expanded


@pytest.mark.parametrize("rel", ADBLOCK_FILES)
def test_adblock_lists_account_for_every_line(shared_data, rel):
    """Each adblock rule line becomes a rule, a skip, an error, or a $badfilter directive;
    nothing disappears silently."""
    res = parse_file(shared_data / rel)
    assert res.format == "adblock"
    data, bad = _data_lines(shared_data / rel)
    assert len(res.rules) + res.badfilter + res.skipped_total + res.errors + bad == data
    if rel in SKIPPED:
        assert res.skipped == SKIPPED[rel]


def test_adguard_dns_filter(shared_data):
    """MANIFEST: ~159k rules with @@ exceptions, $important, $badfilter, /regex/, `*`."""
    res = parse_file(shared_data / "adguard/adguard-dns-filter.filter_1.txt")
    assert 158_000 <= len(res.rules) <= 160_000
    kinds = Counter((r.match, r.action, r.important) for r in res.rules)
    assert kinds[("subtree", "allow", False)] > 0  # @@||d^
    assert kinds[("subtree", "block", True)] > 0  # $important
    assert kinds[("regex", "block", False)] > 0  # /regex/ and * wildcards
    assert res.badfilter >= 1  # a $badfilter names a rule of the same list
    assert res.errors == 0


def test_dandelion_lists(shared_data):
    """MANIFEST: 12.5k / 0.7k rules with $denyallow, $dnstype, $ctag and regexes."""
    big = parse_file(shared_data / "adguard/dandelion-anti-malware.filter_12.txt")
    small = parse_file(shared_data / "adguard/dandelion-nordic.filter_13.txt")
    assert 12_000 <= len(big.rules) + big.skipped_total <= 13_000
    assert 600 <= len(small.rules) + small.skipped_total <= 800
    assert big.skipped["$denyallow"] > 0 and small.skipped["$ctag"] > 0
    assert any(r.qtypes for r in big.rules)  # |google.com|$dnstype=TXT
    assert any(r.match == "regex" for r in big.rules)


def test_umbrella_top_sites(shared_data):
    """100,000 FQDNs. The MANIFEST says 12 are invalid (real junk); the parser rejects 16:
    every name with a label that starts with a hyphen (-container.supertms.com,
    ---10-18-4-c.lel.asia and names below those). None of them can be a hostname."""
    res = parse_file(shared_data / "topsites/umbrella-top-100k.txt")
    assert res.format == "domains"
    assert len(res.rules) + res.errors == 100_000
    assert res.errors == 16
    assert all("hyphen" in s[2] for s in res.error_samples)


def test_union_1m(shared_data):
    """derived/union-1M: 1,009,180 sorted unique FQDNs after 2 `#` header lines."""
    res = parse_file(shared_data / "derived/union-1M.domains.txt.gz")
    assert res.format == "domains"
    assert len(res.rules) == 1_009_180 and res.errors == 0 and res.comments == 2
