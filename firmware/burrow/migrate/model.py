"""The neutral model of a foreign setup: what a Pi-hole or AdGuard Home configuration says, in
Burrow's terms, before anything is compared with Burrow's own state.

A reader (Pi-hole Teleporter, AdGuardHome.yaml) turns its input into one :class:`ForeignSetup`.
It translates syntax it knows (``1.1.1.1#5335`` becomes ``1.1.1.1:5335``, Pi-hole's
``NXDOMAIN`` becomes ``nxdomain``), keeps names as the foreign setup wrote them (the planner
makes Burrow names of them and says so) and never drops anything silently: what it cannot
express in this model is an :class:`Unmapped` item with the reason. Validation against Burrow's
rules (is this a valid group name, list URL, upstream, regex?) is the planner's job
(burrow/migrate/plan.py), with the same validators the API uses.

Every item carries ``origin``: where in the input it came from (``gravity.db adlist id 3``,
``AdGuardHome.yaml filters[2]``), so a plan can point a person at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .. import errors as domain

Source = Literal["pihole", "adguard"]
SOURCES: tuple[str, ...] = ("pihole", "adguard")
DEFAULT_GROUP = "default"  # Burrow's built-in group: a foreign "Default" group maps onto it


@dataclass
class Group:
    """A client group.

    ``name``: as the foreign setup wrote it (Pi-hole allows "Kids Devices"; the planner makes
    a Burrow name of it, ``kids-devices``, and reports the renaming). ``is_default``: the
    foreign setup's own catch-all group (Pi-hole's group 0 "Default"); it maps onto Burrow's
    built-in ``default`` group and is never created. ``enabled``: Burrow groups cannot be
    switched off, so a disabled group is skipped (with its links) rather than made live.
    """

    name: str
    description: str = ""
    enabled: bool = True
    is_default: bool = False
    origin: str = ""


@dataclass
class Client:
    """A device or network with its group memberships.

    ``ids``: how the foreign setup recognises it: IP addresses, CIDRs, MAC addresses, host
    names, interface names (``:eth0``), AdGuard ClientIDs. Burrow recognises clients by IP or
    CIDR only; each other id is reported as skipped. ``name``: a label (Pi-hole's comment,
    AdGuard's client name). ``groups``: names of :class:`Group` items it belongs to.
    """

    ids: list[str]
    name: str = ""
    groups: list[str] = field(default_factory=list)
    origin: str = ""


@dataclass
class FilterList:
    """A subscribed list (Pi-hole adlist, AdGuard filter).

    ``url``: its source as written (an http(s) URL; a local path is refused unless it lies in
    one of Burrow's local list folders). ``name``: the foreign name or comment ("" when none:
    the planner names it after the URL). ``kind``: ``block`` or ``allow`` (Pi-hole's
    "antigravity" lists, AdGuard's whitelist_filters). ``groups``: names of :class:`Group`
    items it applies to; None means every client.
    """

    url: str
    name: str = ""
    kind: Literal["block", "allow"] = "block"
    enabled: bool = True
    groups: list[str] | None = None
    origin: str = ""


@dataclass
class DomainEntry:
    """One allow or deny entry a person typed (Pi-hole domainlist, AdGuard user_rules).

    ``value``: the text as written. ``syntax``: ``exact`` (a name), ``wildcard``
    (``*.example.com``), ``regex`` (a regular expression searched in the name, as Pi-hole's
    are) or ``adblock`` (``||example.com^``, ``@@||example.com^``: the planner takes the
    forms Burrow's user lists can hold and skips the rest with why). ``action``: ``allow`` or
    ``deny``. ``enabled``: Burrow's entries have no off switch, so a disabled one is skipped.
    ``groups``: names of :class:`Group` items it applies to; None means every client.
    ``comment``: the person's note (reported, not stored: Burrow's entries hold none).
    """

    value: str
    action: Literal["allow", "deny"]
    syntax: Literal["exact", "wildcard", "regex", "adblock"] = "exact"
    enabled: bool = True
    groups: list[str] | None = None
    comment: str = ""
    origin: str = ""


@dataclass
class LocalRecord:
    """A local DNS answer (Pi-hole dns.hosts / dns.cnameRecords, AdGuard rewrites).

    ``name``: the owner name (``nas.lan``; ``*.lan`` for a wildcard). ``type``: ``A``,
    ``AAAA`` or ``CNAME``. ``value``: the address, or the CNAME's target. ``ttl``: seconds,
    None for Burrow's default.
    """

    name: str
    type: Literal["A", "AAAA", "CNAME"]
    value: str
    ttl: int | None = None
    origin: str = ""


@dataclass
class Forward:
    """Conditional forwarding: names under ``domains`` (and the reverse zones of ``network``)
    are asked of ``servers`` instead of the upstreams (Pi-hole dns.revServers, AdGuard
    ``[/domain/]server`` upstreams).

    ``name``: a readable rule name (the planner keeps it unique). ``domains``: names, each
    meaning itself and every name below it. ``network``: a CIDR whose reverse-lookup zones are
    forwarded too, or None. ``servers``: ``ip`` or ``ip:port``. ``enabled``: a disabled rule is
    imported disabled.
    """

    name: str
    domains: list[str]
    servers: list[str]
    network: str | None = None
    enabled: bool = True
    origin: str = ""


@dataclass
class Setting:
    """One runtime option in Burrow's own terms: ``key`` is a dotted option of
    burrow/config/schema.py that can change at runtime (``upstream_dns_servers``,
    ``filtering.blocking_mode``, ``rate_limit.rps``, ...), ``value`` the value the foreign
    setup implies. ``note``: how it was derived when that is not one to one (Pi-hole's
    "1000 queries per 60 s" becomes a rate of 16.7/s with a burst of 1000)."""

    key: str
    value: Any
    note: str = ""
    origin: str = ""


@dataclass
class Unmapped:
    """Something in the input this model cannot say at all (blocked services, DHCP, a MAC
    client, a regex with Pi-hole's ``;querytype=`` extension...). ``what`` names it, ``why``
    says why it is not imported. Every one shows in the plan as skipped."""

    what: str
    why: str
    origin: str = ""


@dataclass
class ForeignSetup:
    """Everything one foreign configuration says, read by one reader. ``source``: ``pihole``
    or ``adguard``. ``version``: the foreign format's version where the input states one."""

    source: str
    version: str = ""
    groups: list[Group] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    lists: list[FilterList] = field(default_factory=list)
    entries: list[DomainEntry] = field(default_factory=list)
    records: list[LocalRecord] = field(default_factory=list)
    forwards: list[Forward] = field(default_factory=list)
    settings: list[Setting] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)


class MigrationError(domain.Invalid, ValueError):
    """The input cannot be read or imported (not a Teleporter archive, a zip bomb, bad YAML,
    a plan that changed since it was checked); ``status`` 400, or 413 past a size bound, or 409
    when the settings changed while the import was prepared. Nothing was changed."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
