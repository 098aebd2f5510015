"""Filtering: blocklists in every format, compiled to an mmap'd index, allow/deny lists.

rules.py    the intermediate form every list parses to (Rule, ParseResult)
parsers.py  hosts, domains, wildcard, onlydomains, adblock, dnsmasq, RPZ, Pi-hole regex
index.py    the compiled on-disk index the resolver maps (lookup by suffix walk)
regexset.py regex rules as a few combined automata

docs/filtering.md describes the list formats and what each line maps to.
"""
