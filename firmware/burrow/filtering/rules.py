"""The intermediate form every list format parses to (see docs/filtering.md).

A parser turns one list file into a `ParseResult`: a flat list of `Rule`s plus the
per-line accounting shown in the list's status. The index compiler consumes the rules;
nothing here knows about hashing, groups or lists' kinds.

How a rule matches a query name (names are compared lower-case, without trailing dot):

    exact    the name itself
    subtree  the name and every name below it        ||d^, onlydomains, dnsmasq local=/d/
    below    strictly below the name, dot-bounded:  *.d — a.d, b.a.d; never d, never evild
    regex    `re.search(name, query_name)` with Python's re (the pattern is in `name`)

Actions: "block" (answer with the list's blocking mode), "allow" (an exception: allow
beats block unless the block is `important`), "nxdomain", "nodata", "drop" and
"passthru" (RPZ policies; passthru is an allow), "redirect" (answer with `data`).
Plain formats (hosts, domains, wildcard, onlydomains, regex, dnsmasq) always say "block"
or "redirect"; whether a list is a blocklist or an allowlist is the list's `kind`, which
the caller applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

MATCHES = ("exact", "subtree", "below", "regex")
ACTIONS = ("block", "allow", "nxdomain", "nodata", "drop", "redirect", "passthru")

# How many (line_no, line, reason) samples a ParseResult keeps; errors beyond are counted.
MAX_ERROR_SAMPLES = 20
# Sampled lines are cut to this many characters (a 4 MB single-line file must not be kept).
MAX_SAMPLE_CHARS = 200


class Rule(NamedTuple):
    """One filtering rule.

    name:      lower-case IDNA/punycode ASCII name without trailing dot; for match
               "regex" the pattern (Python re syntax, searched in the query name).
    match:     "exact" | "subtree" | "below" | "regex" (see the module docstring).
    action:    "block" | "allow" | "nxdomain" | "nodata" | "drop" | "redirect" | "passthru".
    important: adblock `$important`: this block beats allow rules.
    data:      redirect targets, e.g. (("A", "1.2.3.4"), ("AAAA", "::1")) or
               (("CNAME", "x.example"),); empty for every other action.
    qtypes:    restrict the rule to these query types (adblock `$dnstype`, Pi-hole
               `;querytype=`), upper-case names such as ("A", "AAAA"); empty = all.
    """

    name: str
    match: str
    action: str
    important: bool = False
    data: tuple[tuple[str, str], ...] = ()
    qtypes: tuple[str, ...] = ()


@dataclass
class ParseResult:
    """What parsing one list produced.

    format:        the format parsed ("hosts", "domains", "wildcard", "onlydomains",
                   "adblock", "dnsmasq", "rpz", "regex").
    rules:         the rules, in file order (duplicates are kept; the compiler dedupes).
    lines:         lines read.
    comments:      comment, blank, header and zone-directive lines (no rule expected).
    errors:        lines (or names on a hosts line) that could not be parsed.
    error_samples: the first MAX_ERROR_SAMPLES errors as (line_no, line, reason).
    skipped:       understood but not applied, reason → count: unsupported adblock
                   modifiers ("$client", "$denyallow", ...), RPZ triggers ("rpz-ip"),
                   dnsmasq "server", hosts "localhost" entries, IP literals ("ip")...
    badfilter:     rules removed by adblock `$badfilter`.
    badfilter_rules: the rules `$badfilter` disables; `parse()` has already removed them
                   from `rules`, a consumer of `iter_parse()` must drop them itself.
    """

    format: str
    rules: list[Rule] = field(default_factory=list)
    lines: int = 0
    comments: int = 0
    errors: int = 0
    error_samples: list[tuple[int, str, str]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    badfilter: int = 0
    badfilter_rules: set[Rule] = field(default_factory=set, repr=False)

    def error(self, line_no: int, line: str, reason: str) -> None:
        """Count one bad line (or name) and keep a sample while there is room."""
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append((line_no, line[:MAX_SAMPLE_CHARS], reason))

    def skip(self, reason: str, n: int = 1) -> None:
        """Count one understood-but-unsupported entry under `reason`."""
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())
