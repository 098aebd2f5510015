"""Hand-made edge cases for the list parsers (burrow.filtering.parsers)."""

from __future__ import annotations

import gzip
import re

import pytest

from burrow.filtering.parsers import (
    detect_format,
    iter_parse,
    parse,
    parse_file,
    posix_ere_to_python,
)
from burrow.filtering.rules import MAX_ERROR_SAMPLES, ParseResult, Rule


def rules(text: str, fmt: str | None = None) -> list[Rule]:
    return parse(text.splitlines(keepends=True), fmt).rules


def names(text: str, fmt: str | None = None) -> list[tuple[str, str]]:
    return [(r.name, r.match) for r in rules(text, fmt)]


def searches(rule: Rule, name: str) -> bool:
    assert rule.match == "regex"
    return re.search(rule.name, name) is not None


# --------------------------------------------------------------------------- hosts


def test_hosts_addresses_comments_and_localhost_block():
    text = (
        "# comment\n"
        "127.0.0.1 localhost\n"
        "127.0.0.1 localhost.localdomain\n"
        "127.0.0.1 local\n"
        "255.255.255.255 broadcasthost\n"
        "::1 localhost ip6-localhost ip6-loopback\n"
        "fe80::1%lo0 localhost\n"
        "ff00::0 ip6-localnet\nff00::0 ip6-mcastprefix\n"
        "ff02::1 ip6-allnodes\nff02::2 ip6-allrouters\nff02::3 ip6-allhosts\n"
        "0.0.0.0 0.0.0.0\n"
        "\n"
        "0.0.0.0 a.example b.example   c.example  # three on one line\n"
        "127.0.0.1 d.example\n"
        ":: e.example\n"
        "::1\tf.example\n"
        "0.0.0.0 G.Example.\n"
    )
    res = parse(text.splitlines(True), "hosts")
    assert [r.name for r in res.rules] == [
        "a.example", "b.example", "c.example", "d.example", "e.example", "f.example", "g.example",
    ]
    assert all(r.match == "exact" and r.action == "block" for r in res.rules)
    assert res.errors == 0
    assert res.skipped == {"localhost": 14}
    assert res.lines == 19


def test_hosts_detected_and_other_addresses_redirect():
    res = parse(["0.0.0.0 ads.example\n", "10.0.0.5 printer.example\n", "2001:db8::1 v6.example\n"])
    assert res.format == "hosts"
    assert res.rules[0] == Rule("ads.example", "exact", "block")
    assert res.rules[1] == Rule("printer.example", "exact", "redirect", data=(("A", "10.0.0.5"),))
    assert res.rules[2].data == (("AAAA", "2001:db8::1"),)


def test_hosts_errors_are_counted_never_fatal():
    res = parse(["0.0.0.0 good.example\n", "0.0.0.0 bad..example\n", "nonsense here\n",
                 "0.0.0.0\n", "0.0.0.0 " + "a" * 64 + ".example\n"], "hosts")
    assert [r.name for r in res.rules] == ["good.example"]
    assert res.errors == 4
    assert [s[0] for s in res.error_samples] == [2, 3, 4, 5]


def test_error_samples_are_capped():
    res = parse(["bad..name\n"] * 50, "domains")
    assert res.errors == 50
    assert len(res.error_samples) == MAX_ERROR_SAMPLES


# --------------------------------------------------------------------------- line hygiene


def test_crlf_bom_missing_final_newline_and_case():
    text = "\ufeffExample.COM\r\n# c\r\nwww.example.org.\r\nlast.example"
    res = parse(text.splitlines(True))
    assert res.format == "domains"
    assert [r.name for r in res.rules] == ["example.com", "www.example.org", "last.example"]
    assert res.errors == 0 and res.comments == 1 and res.lines == 4


def test_parse_file_bom_crlf_gzip_and_bytes(tmp_path):
    p = tmp_path / "list.txt"
    p.write_bytes(b"\xef\xbb\xbf0.0.0.0 a.example\r\n0.0.0.0 b.example")
    res = parse_file(p)
    assert res.format == "hosts" and [r.name for r in res.rules] == ["a.example", "b.example"]
    g = tmp_path / "list.txt.gz"
    g.write_bytes(gzip.compress(b"# header\nc.example\nd.example\n"))
    assert [r.name for r in parse_file(g).rules] == ["c.example", "d.example"]
    assert [r.name for r in parse([b"e.example\n"]).rules] == ["e.example"]


def test_idn_names_are_punycoded_and_failures_counted():
    res = parse(["bücher.example\n", "0.0.0.0 ÄÖÜ.example\n", "xn--bcher-kva.example\n", "a\u200b\u0000b.example\n"],
                "domains")
    assert res.rules[0].name == "xn--bcher-kva.example"
    assert res.rules[2].name == "xn--bcher-kva.example"
    assert res.errors == 1
    assert [r.name for r in rules("||bücher.example^\n", "adblock")] == ["xn--bcher-kva.example"]


def test_inline_comments_and_ips_in_domain_lists():
    res = parse(["a.example # why\n", "1.2.3.4\n", "2001:db8::1\n", "b.example#x\n"], "domains")
    assert [r.name for r in res.rules] == ["a.example", "b.example"]
    assert res.skipped == {"ip": 2}


def test_unknown_format_is_refused():
    with pytest.raises(ValueError):
        parse(["a.example"], "csv")


# --------------------------------------------------------------------------- wildcard / onlydomains


def test_wildcard_is_strictly_below_and_dot_bounded():
    (rule,) = rules("*.x.com\n", "wildcard")
    assert rule == Rule("x.com", "below", "block")
    # the semantics the index implements: below x.com is "ends with .x.com"
    assert not "evilx.com".endswith("." + rule.name)
    assert "a.x.com".endswith("." + rule.name)
    assert names("*.a.example\nplain.example\n") == [("a.example", "below"), ("plain.example", "exact")]
    assert detect_format(["*.a.example", "*.b.example", "c.example"]) == "wildcard"


def test_onlydomains_means_name_and_subdomains():
    assert names("a.example\n*.b.example\n", "onlydomains") == [("a.example", "subtree"), ("b.example", "subtree")]
    head = ["# Syntax: Domains (without subdomains)", "a.example", "b.example"]
    assert detect_format(head) == "onlydomains"
    assert detect_format(["a.example", "b.example"]) == "domains"


def test_onlydomains_from_file_name(tmp_path):
    p = tmp_path / "light.wildcard-onlydomains.txt"
    p.write_text("a.example\n")
    res = parse_file(p)
    assert res.format == "onlydomains" and res.rules == [Rule("a.example", "subtree", "block")]
    assert parse_file(p, "domains").rules == [Rule("a.example", "exact", "block")]


# --------------------------------------------------------------------------- adblock


def test_adblock_basic_shapes():
    text = (
        "[Adblock Plus]\n! comment\n# also a comment\n"
        "||sub.example^\n"
        "|exact.example^\n"
        "bare.example\n"
        "@@||allowed.example^\n"
        "@@|allowed-exact.example^\n"
        "||open.example\n"
        "|pipe.example|\n"
        "||both.example^|\n"
        ".dotted.example^\n"
        "||*.star.example^\n"
        "0.0.0.0 hostsyntax.example\n"
    )
    res = parse(text.splitlines(True))
    assert res.format == "adblock"
    assert [(r.name, r.match, r.action) for r in res.rules] == [
        ("sub.example", "subtree", "block"),
        ("exact.example", "exact", "block"),
        ("bare.example", "exact", "block"),
        ("allowed.example", "subtree", "allow"),
        ("allowed-exact.example", "exact", "allow"),
        ("open.example", "subtree", "block"),
        ("pipe.example", "exact", "block"),
        ("both.example", "subtree", "block"),
        ("dotted.example", "below", "block"),
        ("star.example", "below", "block"),
        ("hostsyntax.example", "exact", "block"),
    ]
    assert res.comments == 3 and res.errors == 0


def test_adblock_important_and_allow_important():
    a, b, c = rules("||ads.example^$important\n@@||ok.example^$important\n||x.example^$IMPORTANT\n", "adblock")
    assert a == Rule("ads.example", "subtree", "block", important=True)
    assert b == Rule("ok.example", "subtree", "allow", important=True)
    assert c.important


def test_adblock_badfilter_removes_the_rule_it_names_wherever_it_is():
    text = (
        "||gone.example^$badfilter\n"
        "||gone.example^\n"
        "||kept.example^\n"
        "||kept.example^$important\n"
        "||kept.example^$important,badfilter\n"
        "|exact.example^\n"
        "||exact.example^$badfilter\n"  # names a different rule: nothing removed
        "||missing.example^$badfilter\n"
    )
    res = parse(text.splitlines(True), "adblock")
    assert res.rules == [Rule("kept.example", "subtree", "block"), Rule("exact.example", "exact", "block")]
    assert res.badfilter == 2
    # the streaming form leaves the removal to the consumer
    r = ParseResult(format="adblock")
    streamed = list(iter_parse(text.splitlines(True), "adblock", r))
    assert len(streamed) == 4 and Rule("gone.example", "subtree", "block") in r.badfilter_rules


def test_adblock_regex_rules():
    a, b = rules("/^ad[0-9]+\\./\n@@/(^|\\.)good\\.example$/$important\n", "adblock")
    assert a == Rule("^ad[0-9]+\\.", "regex", "block")
    assert b.action == "allow" and b.important and b.match == "regex"
    res = parse(["/unclosed(/\n", "/a[/\n"], "adblock")
    assert res.rules == [] and res.errors == 2


def test_adblock_wildcards_become_dot_aware_regexes():
    (r,) = rules("||ads*.example.com^\n", "adblock")
    assert r.match == "regex"
    assert searches(r, "ads1.example.com") and searches(r, "x.ads-cdn.example.com")
    assert not searches(r, "badads1.example.com") and not searches(r, "ads1.example.com.evil")
    (r,) = rules("||tracker.\n", "adblock")  # any TLD
    assert searches(r, "tracker.net") and searches(r, "a.tracker.org") and not searches(r, "mytracker.net")
    (r,) = rules("|piwik.\n", "adblock")
    assert searches(r, "piwik.example") and not searches(r, "a.piwik.example")
    (r,) = rules("@@||*-go.kelkoo.net^\n", "adblock")
    assert r.action == "allow" and searches(r, "fr-go.kelkoo.net") and not searches(r, "kelkoo.net")


def test_adblock_dnstype_and_unsupported_modifiers_are_counted():
    text = (
        "||a.example^$dnstype=A|aaaa\n"
        "||b.example^$dnstype=~CNAME\n"
        "||c.example^$client=192.168.1.5\n"
        "||d.example^$denyallow=x.d.example\n"
        "||e.example^$ctag=device_tv\n"
        "||f.example^$dnsrewrite=1.2.3.4\n"
        "||g.example^$app=com.x\n"
        "||h.example^$whatever\n"
        "example.com##.ad-banner\n"
        "||i.example/path^\n"
    )
    res = parse(text.splitlines(True), "adblock")
    assert res.rules == [Rule("a.example", "subtree", "block", qtypes=("A", "AAAA"))]
    assert res.skipped == {
        "$dnstype=~": 1, "$client": 1, "$denyallow": 1, "$ctag": 1, "$dnsrewrite": 1,
        "$app": 1, "$whatever": 1, "cosmetic": 1, "url-path": 1,
    }
    assert res.errors == 0


def test_adblock_bad_lines_and_ip_rules():
    res = parse(["||bad!.example^\n", "||*^\n", "@@\n", "||10.1.2.3^\n", "||x.example^garbage\n"], "adblock")
    assert res.rules == []
    assert res.errors == 4
    assert res.skipped == {"ip": 1}


# --------------------------------------------------------------------------- dnsmasq


def test_dnsmasq_local_address_server():
    text = (
        "# c\n"
        "local=/a.example/\n"
        "address=/b.example/\n"
        "address=/c.example/0.0.0.0\n"
        "address=/d.example/::\n"
        "address=/e.example/#\n"
        "address=/f.example/192.0.2.7\n"
        "address=/g.example/2001:db8::7\n"
        "address=/h.example/i.example/\n"
        "server=/corp.example/10.0.0.1\n"
        "server=/x.example/#\n"
        "address=/j.example/not-an-ip\n"
        "address=/#/\n"
    )
    res = parse(text.splitlines(True))
    assert res.format == "dnsmasq"
    got = [(r.name, r.match, r.action, r.data) for r in res.rules]
    assert got == [
        ("a.example", "subtree", "block", ()),
        ("b.example", "subtree", "block", ()),
        ("c.example", "subtree", "block", ()),
        ("d.example", "subtree", "block", ()),
        ("e.example", "subtree", "block", ()),
        ("f.example", "subtree", "redirect", (("A", "192.0.2.7"),)),
        ("g.example", "subtree", "redirect", (("AAAA", "2001:db8::7"),)),
        ("h.example", "subtree", "block", ()),
        ("i.example", "subtree", "block", ()),
    ]
    assert res.skipped == {"server": 2, "address=/#/": 1}
    assert res.errors == 1


# --------------------------------------------------------------------------- RPZ


RPZ = """\
$TTL 300
$ORIGIN rpz.example.
@ IN SOA ns.rpz.example. admin.rpz.example. (
        2024010101 ; serial
        3600 600 86400 300 )
  IN NS ns.rpz.example.
; policies
nx.example        CNAME .
*.nx.example      CNAME .
nodata.example    CNAME *.
pass.example      CNAME rpz-passthru.
drop.example      CNAME rpz-drop.
tcp.example       CNAME rpz-tcp-only.
abs.example.rpz.example. 60 IN CNAME .
redir.example     A     192.0.2.1
                  AAAA  2001:db8::1
redir.example 300 IN A 192.0.2.2
cname.example     CNAME target.example.
32.1.2.0.192.rpz-ip        CNAME .
24.0.2.0.10.rpz-client-ip  CNAME rpz-drop.
ns.evil.rpz-nsdname        CNAME .
txt.example       TXT   "hello"
UPPER.Example     CNAME .
"""


def test_rpz_triggers_and_actions():
    res = parse(RPZ.splitlines(True))
    assert res.format == "rpz"
    by = {(r.name, r.match): r for r in res.rules}
    assert by[("nx.example", "exact")].action == "nxdomain"
    assert by[("nx.example", "below")].action == "nxdomain"
    assert by[("nodata.example", "exact")].action == "nodata"
    assert by[("pass.example", "exact")].action == "passthru"
    assert by[("drop.example", "exact")].action == "drop"
    assert by[("abs.example", "exact")].action == "nxdomain"  # origin stripped
    assert by[("upper.example", "exact")].action == "nxdomain"
    redir = by[("redir.example", "exact")]
    assert redir.action == "redirect"
    assert redir.data == (("A", "192.0.2.1"), ("AAAA", "2001:db8::1"), ("A", "192.0.2.2"))
    assert by[("cname.example", "exact")].data == (("CNAME", "target.example"),)
    assert len(res.rules) == 9
    assert res.skipped == {"rpz-tcp-only": 1, "rpz-ip": 1, "rpz-client-ip": 1, "rpz-nsdname": 1, "rpz-local-TXT": 1}
    assert res.errors == 0


def test_rpz_hagezi_shape_and_nonstandard_ip_triggers():
    head = ["$TTL 3600\n", "@ SOA localhost. root.localhost. 1 14400 3600 86400 3600\n", "  NS  localhost.\n", ";\n"]
    res = parse(head + ["a.example CNAME .\n", "*.a.example CNAME .\n", "1.0.218.230.rpz-ip CNAME .\n"])
    assert res.rules == [Rule("a.example", "exact", "nxdomain"), Rule("a.example", "below", "nxdomain")]
    assert res.skipped == {"rpz-ip": 1}


def test_rpz_bad_records_are_errors():
    res = parse(["   A 192.0.2.9\n", "bad..name CNAME .\n", "x.example A not-an-ip\n",
                 "y.example AAAA 192.0.2.1\n", "   A 192.0.2.1\n", "z.example CNAME a b\n"], "rpz")
    # the continuation line belongs to y.example, whose AAAA was refused
    assert res.rules == [Rule("y.example", "exact", "redirect", data=(("A", "192.0.2.1"),))]
    assert res.errors == 5


# --------------------------------------------------------------------------- Pi-hole regex


@pytest.mark.parametrize(
    "posix, python",
    [
        ("^ad[[:digit:]]+\\.", "^ad[0-9]+\\."),
        ("[^.[:space:]]+", "[^. \\t\\n\\r\\f\\v]+"),
        ("[[:alpha:][:digit:]_-]", "[a-zA-Z0-9_-]"),
        ("[[:alnum:]]", "[a-zA-Z0-9]"),
        ("[[:upper:][:lower:]]", "[A-Za-z]"),
        ("[[:xdigit:]]{4}", "[0-9A-Fa-f]{4}"),
        ("[]a]", "[\\]a]"),
        ("[a\\.]", "[a\\\\.]"),  # backslash is literal inside POSIX brackets
        ("\\<ads\\>", "\\bads\\b"),
        ("[[.-.]]", "[\\-]"),
    ],
)
def test_posix_ere_translation(posix, python):
    assert posix_ere_to_python(posix) == python
    re.compile(python)


def test_posix_punct_class_matches_exactly_ascii_punctuation():
    rx = re.compile(posix_ere_to_python("^[[:punct:]]$"))
    import string

    assert all(rx.match(c) for c in string.punctuation)
    assert not any(rx.match(c) for c in string.ascii_letters + string.digits + " ")


def test_pihole_regex_list():
    text = (
        "# comment\n"
        "^ad([sxv]?[0-9]*|system)[_.-]([^.[:space:]]+\\.){1,}|[_.-]ad([sxv]?[0-9]*|system)[_.-]\n"
        "(^|\\.)tracker\\.example$   # inline comment\n"
        "^a\\.example$;querytype=AAAA,a\n"
        "^b\\.example$;querytype=!A\n"
        "^c\\.example$;invert\n"
        "^d\\.example$;reply=nxdomain\n"
        "[[:bogus:]]\n"
        "(unclosed\n"
        "^e\\.example$;querytype=BOGUS\n"
    )
    res = parse(text.splitlines(True))
    assert res.format == "regex"
    assert len(res.rules) == 3
    first = res.rules[0]
    assert searches(first, "ads.doubleclick.net") and searches(first, "x.ad-system.example")
    assert not searches(first, "adobe.com")
    assert res.rules[1].name == "(^|\\.)tracker\\.example$"
    assert res.rules[2].qtypes == ("AAAA", "A")
    assert res.skipped == {";querytype=!": 1, ";invert": 1, ";reply": 1}
    assert res.errors == 3
    assert all("regex rejected" in s[2] or "query type" in s[2] for s in res.error_samples)


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    "sample, fmt",
    [
        (["# c", "0.0.0.0 a.example", "127.0.0.1 b.example"], "hosts"),
        (["a.example", "b.example"], "domains"),
        (["*.a.example"], "wildcard"),
        (["[Adblock Plus]", "||a.example^"], "adblock"),
        (["! Title: x", "0.0.0.0 a.example", "0.0.0.0 b.example", "0.0.0.0 c.example"], "adblock"),
        (["@@||a.example^", "/ads[0-9]/"], "adblock"),
        (["local=/a.example/", "address=/b.example/"], "dnsmasq"),
        (["$TTL 3600", "@ SOA localhost. root.localhost. 1 2 3 4 5", "a CNAME ."], "rpz"),
        (["a.example CNAME .", "*.a.example CNAME ."], "rpz"),
        (["# r", "^ads?[0-9]*\\.", "(^|\\.)x\\.example$"], "regex"),
        ([], "domains"),
    ],
)
def test_detect_format(sample, fmt):
    assert detect_format(sample) == fmt


def test_explicit_format_wins():
    assert parse(["a.example\n"], "onlydomains").rules[0].match == "subtree"
    assert parse(["a.example\n"], "adblock").rules[0].match == "exact"


def test_iter_parse_file_streams_and_counts(tmp_path):
    from burrow.filtering.parsers import iter_parse_file

    p = tmp_path / "x.wildcard-onlydomains.txt"
    p.write_text("# h\na.example\nbad..example\n")
    res = ParseResult(format="")
    assert list(iter_parse_file(p, None, res)) == [Rule("a.example", "subtree", "block")]
    assert res.format == "onlydomains" and res.errors == 1 and res.lines == 3 and res.rules == []
