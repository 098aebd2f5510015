"""Private names stay home: reverse lookups for private ranges and special-use names are
answered here, and public names that resolve into private space are blocked (DNS rebinding).

Chain position: after ``local`` and ``conditional`` (a local record, a local zone or a
conditional forwarding rule that covers a name is the owner saying where it lives, so those
never reach this stage's refusal), before ``policy``/``filter``/``forward`` so such a name
never leaves the box. The rebinding check wraps ``next`` so it sees every upstream answer,
cached or fresh, before the fast path keeps it.

- ``private_reverse`` (dnsmasq's bogus-priv): PTR and other queries under the reverse zones
  of RFC 1918, RFC 6303 (0/8, 127/8, 169.254/16, 100.64/10 of RFC 6598, the documentation
  nets, 255.255.255.255, ::, ::1, fe80::/10, fc00::/7 (ULA), 2001:db8::/32) → NXDOMAIN.
- ``special_names`` (dnsmasq's domain-needed and RFC 6761/8375/6762): ``.local`` (mDNS's),
  ``.lan``, ``.internal``, ``home.arpa``, ``.localhost``, ``.invalid``, ``.onion`` → NXDOMAIN,
  and single-label names asked for A/AAAA (a device looking up a bare host name). Any other
  question for a single label (``com DS``, ``test DNSKEY``, ``net SOA``, ``. NS``) is a real
  question about the root zone a validator behind us must be able to ask, and an NXDOMAIN
  for a TLD would claim its whole subtree empty (RFC 8020): those are forwarded.
- ``rebind_protection``: an upstream answer (resolved, cached or stale) for a name not
  allow-listed and not under ``rebind_allowed_domains`` whose A/AAAA records point into
  private space (RFC 1918, loopback, link-local, 0/8, 100.64/10, ULA, v4-mapped ones) is
  answered as blocked (the blocking mode; EDE 15 "DNS rebinding protection").

Its options are ``[local]`` private_reverse, special_names, rebind_protection and
rebind_allowed_domains; the blocking settings and the allow list are shared state
(dns/shared.py), read as the filter reads them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .. import wire
from ..blocking import blocked_answer
from ..decision import Decision
from ..message import Answer, Next, Query, read_answer_records
from ..names import reverse_network, view_groups
from ..shared import Options, Shared

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SPECIAL_SUFFIXES = ("local", "lan", "internal", "home.arpa", "localhost", "invalid", "onion")
_SPECIAL_TLDS = frozenset(s for s in SPECIAL_SUFFIXES if "." not in s)
_ADDRESS_TYPES = frozenset({wire.TYPE_A, wire.TYPE_AAAA})  # what domain-needed refuses for a bare name
PRIVATE_REVERSE = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16",
    "100.64.0.0/10", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "255.255.255.255/32",
    "::/128", "::1/128", "fe80::/10", "fc00::/7", "2001:db8::/32")]
REBIND_NETS = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16",
    "100.64.0.0/10", "::/128", "::1/128", "fe80::/10", "fc00::/7")]
NEGATIVE_TTL = 60  # how long clients and the fast path keep these NXDOMAINs
_CHECKED = frozenset({Decision.RESOLVED, Decision.CACHED, Decision.STALE})


def is_private_reverse(name: str) -> bool:
    net = reverse_network(name)
    return net is not None and any(net.version == p.version
                                   and net.subnet_of(p)  # type: ignore[arg-type]  # same version
                                   for p in PRIVATE_REVERSE)


def is_special(name: str, qtype: int = wire.TYPE_A) -> bool:
    """A special-use name, or a bare single-label name asked for an address (module doc)."""
    head, dot, tld = name.rpartition(".")
    if not dot:
        if name in _SPECIAL_TLDS:
            return True
        return bool(name) and qtype in _ADDRESS_TYPES  # a host name without its domain
    if tld in _SPECIAL_TLDS:
        return True
    return tld == "arpa" and (head == "home" or head.endswith(".home"))


def private_address(ip: IPAddress) -> bool:
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in REBIND_NETS)


@dataclass
class PrivateSettings:
    private_reverse: bool = True
    special_names: bool = True
    rebind_protection: bool = True
    rebind_allowed_domains: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, cfg: Options) -> PrivateSettings:
        return cls(cfg["local.private_reverse"], cfg["local.special_names"], cfg["local.rebind_protection"],
                   list(cfg["local.rebind_allowed_domains"]))


class PrivateStage:
    name = "private"

    def __init__(self, settings: PrivateSettings | None = None, shared: Shared | None = None) -> None:
        self.settings = settings or PrivateSettings()
        self.shared = shared if shared is not None else Shared()  # the allow list exempts names; blocking settings
        self.refused = 0
        self.rebind_blocked = 0

    @classmethod
    def from_config(cls, cfg: Options, shared: Shared) -> PrivateStage:
        return cls(PrivateSettings.from_config(cfg), shared)

    def configure(self, cfg: Options) -> None:
        """Apply ``[local]``'s options live (one assignment: a query sees old or new, never a mix)."""
        self.settings = PrivateSettings.from_config(cfg)

    async def resolve(self, query: Query, next: Next) -> Answer:
        if query.route:  # a conditional forwarding rule covers it: the owner said where it lives
            return await next(query)
        name = query.name
        s = self.settings
        if (s.private_reverse and is_private_reverse(name)) or (s.special_names and is_special(name, query.qtype)):
            if query.explain is None:  # a dry run (dns/explain.py) counts nothing
                self.refused += 1
            why = "private reverse zone" if name.endswith("arpa") else "special-use or single-label name"
            query.note("private", "nxdomain", source="private_names", detail=why)
            return Answer(wire.NXDOMAIN, Decision.LOCAL, ttl=NEGATIVE_TTL)
        answer = await next(query)
        if s.rebind_protection and answer.an and answer.decision in _CHECKED:
            hit = self._private_in(query, answer)
            if hit is not None and not self._exempt(query):
                # the block rests on this upstream answer: replay it no longer than the answer lives
                return self._block(query, hit).replace(ttl=answer.ttl)
        elif s.rebind_protection and query.explain is not None and not self._exempt(query):
            query.explain.awaits(answer, "rebind_protection")
        return answer

    def _private_in(self, query: Query, answer: Answer) -> IPAddress | None:
        read = read_answer_records(query, answer)
        if read is None:
            return None
        packet, rrs = read
        for rr in rrs:
            if rr.rtype == wire.TYPE_A and rr.rdlen == 4 or rr.rtype == wire.TYPE_AAAA and rr.rdlen == 16:
                ip = ipaddress.ip_address(packet[rr.rdata_offset:rr.rdata_offset + rr.rdlen])
                if private_address(ip):
                    return ip
        return None

    def _exempt(self, query: Query) -> bool:
        name = query.name
        for d in self.settings.rebind_allowed_domains:
            if name == d or name.endswith("." + d):
                return True
        allow_list = self.shared.allow_list
        if allow_list is not None:
            return allow_list.match(name, view_groups(query.view)) is not None
        return False

    def _block(self, query: Query, ip: IPAddress) -> Answer:
        if query.explain is None:
            self.rebind_blocked += 1
        query.note("private", "rebind_blocked", source="rebind_protection",
                   detail=f"public name answered with private address {ip}")
        settings = self.shared.blocking
        return blocked_answer(query.qtype, settings.mode, settings,
                              (wire.EDE_BLOCKED, f"DNS rebinding protection: {ip}"))
