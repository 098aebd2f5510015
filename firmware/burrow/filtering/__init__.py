"""Filtering: blocklists in every format, compiled to an mmap'd index, allow/deny lists.

sources.py    the list sources (ListStore): URLs, files, groups they apply to
download.py   fetching a list (conditional GET, size and time caps)
parsers.py    hosts, domains, wildcard, onlydomains, adblock, dnsmasq, RPZ, Pi-hole regex
rules.py      the intermediate form every list parses to (Rule, ParseResult)
compiler.py   lists compiled into the index, in a child process
index.py      the compiled on-disk index the resolver maps (lookup by suffix walk)
regexset.py   regex rules as a few combined automata
manager.py    update schedule, compile runs and swapping in a new index (ListManager)
userlists.py  the owner's allow and deny lists
groups.py     client groups and which lists apply to them
pause.py      pausing blocking, for everyone or one group, and its timer
rpz.py        RPZ zones as policy sources
threats.py    threat feeds and the security events their hits raise

docs/filtering.md describes the list formats and what each line maps to.
"""
