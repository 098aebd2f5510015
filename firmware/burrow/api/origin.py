"""Burrow's own names and origins: the Host check, the Origin check and CORS.

A browser inside the house runs pages from anywhere, and such a page can send requests to
any LAN address (docs/security.md has the threat model). Three rules keep it out:

- **Host**: a request must name Burrow (its names, its addresses, loopback, or
  ``server.allowed_hosts``); anything else is answered 421. A DNS-rebinding page reaches
  Burrow under the attacker's name, so it fails here. The health endpoints answer reads under
  any name (monitoring may use one of its own); they are read-only.
- **Origin**: a state-changing request or a WebSocket upgrade carrying an ``Origin`` must
  come from Burrow's own page (the origin the request was sent to) or from
  ``server.allowed_origins``; otherwise 403, before anything else runs. No ``Origin`` (curl,
  scripts, monitoring) is fine: browsers always send it on cross-origin writes and upgrades.
- **CORS** (in routes.Api): ``*`` for reads without a cookie; preflights for writes only for
  allowed origins; never ``Access-Control-Allow-Credentials``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

from ..config import ConfigView
from ..config.schema import DEFAULT_PORTS, split_authority, web_origin
from .errors import ApiError

DEFAULT_NAMES = frozenset({"burrow.local", "localhost"})
READ_METHODS = frozenset({"GET", "HEAD"})
# Monitoring may reach these under a name of its own (a DNS alias, an address behind NAT).
ANY_HOST_READS = frozenset({"/healthz", "/readyz", "/api/health", "/metrics"})
# Answered under any Host and over plain HTTP even while HTTPS serves: the ACME CA's HTTP-01
# check names the certificate's host and comes over port 80 (RFC 8555 §8.3).
ANY_HOST_PREFIXES = ("/.well-known/acme-challenge/",)


def split_host(header: str) -> tuple[str, int | None] | None:
    """A Host header → (host in lower case without a trailing dot, port or None); an IP
    address in its short form (an IPv4-mapped IPv6 address as IPv4). None if malformed."""
    try:
        host, port = split_authority(header.strip())
    except ValueError:
        return None
    host = host.lower().rstrip(".")
    if not host:
        return None
    ip = _ip(host)
    return (str(ip) if ip is not None else host), port


def _ip(text: str):
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return (ip.ipv4_mapped or ip) if ip.version == 6 else ip


def _origin(text: str) -> tuple[str, str, int] | None:
    """An Origin header → (scheme, host, port), or None for "null" and anything malformed."""
    try:
        canonical = web_origin(text)
    except ValueError:
        return None
    scheme, _, authority = canonical.partition("://")
    parsed = split_host(authority)
    if parsed is None:
        return None
    return scheme, parsed[0], parsed[1] or DEFAULT_PORTS[scheme]


class Site:
    """Burrow's own names, addresses and origins, as the request checks need them.

    :param config: the configuration (``server.allowed_hosts``, ``server.allowed_origins``).
    :param board: what knows the machine's addresses (``local_addresses()``, the board's
        network watcher); None: only loopback and the address a request came in on.
    """

    def __init__(self, config: ConfigView | None = None, board=None,
                 certificate_names: Callable[[], Iterable[str]] | None = None):
        self.config = config
        self.board = board
        # The names of the certificate in force (the TLS service): a name the owner's own
        # certificate carries is one they reach the box by; a rebinding page's name is not in it.
        self.certificate_names = certificate_names
        self.misdirected = 0  # requests refused for their Host
        self.cross_origin = 0  # writes, upgrades and preflights refused for their Origin

    def _configured(self, key: str) -> list:
        try:
            return self.config[key] if self.config is not None else []
        except KeyError:  # a configuration without that option (unit-test stand-ins)
            return []

    # ---- Host -------------------------------------------------------------------------------

    def host_allowed(self, req) -> bool:
        """Does this request from the network name Burrow? (Run before routing.)"""
        header = req.headers.get("Host")
        if header is None:
            return True  # HTTP/1.0 without a name: nothing to rebind
        if (req.path in ANY_HOST_READS or req.path.startswith(ANY_HOST_PREFIXES)) and req.method in READ_METHODS:
            return True
        parsed = split_host(header)
        if parsed is None:
            return False
        host = parsed[0]
        if host in self._configured("server.allowed_hosts") or self._certificate_name(host):
            return True
        ip = _ip(host)
        if ip is None:
            return host in DEFAULT_NAMES or host in self._own_names()
        if ip.is_loopback:
            return True
        # The address this connection came in on is the box's own, whatever netlink says.
        writer = req.sock[1] if req.sock else None
        sockname = writer.get_extra_info("sockname") if hasattr(writer, "get_extra_info") else None
        if sockname and _ip(str(sockname[0]).split("%")[0]) == ip:
            return True
        return str(ip) in self._local_addresses()

    def _certificate_name(self, host: str) -> bool:
        """The names of the certificate in force, and in an ACME mode the names it is asked for
        (tls.autocert.hosts or tls.acme.hosts, before the first one is issued), are the box's:
        the owner reaches it by them (a wildcard matches one label)."""
        names: list[str] = list(self.certificate_names()) if self.certificate_names is not None else []
        mode: Any = self._configured("tls.mode")
        if mode in ("autocert", "acme"):
            names += self._configured(f"tls.{mode}.hosts")
        for name in names:
            name = name.lower().rstrip(".")
            if host == name or (name.startswith("*.") and host.partition(".")[2] == name[2:]):
                return True
        return False

    @staticmethod
    def _own_names() -> set[str]:
        # Read each time: the owner may rename the box while it runs.
        full = socket.gethostname().lower().rstrip(".")
        short = full.split(".")[0]
        return {full, short, f"{short}.local"}

    def _local_addresses(self) -> set[str]:
        addresses = self.board.local_addresses() if self.board is not None else None
        return {str(_ip(a.split("%")[0]) or a) for a in addresses or ()}

    def refuse_host(self) -> ApiError:
        self.misdirected += 1
        return ApiError(421, "this is not a name of this Burrow; use its address or burrow.local "
                             "(or add the name to server.allowed_hosts)", error="misdirected_request")

    # ---- Origin -----------------------------------------------------------------------------

    def allowed_origin(self, origin: str) -> bool:
        """Is ``origin`` listed in server.allowed_origins (pages allowed to use tokens)?"""
        try:
            return web_origin(origin) in self._configured("server.allowed_origins")
        except ValueError:
            return False

    def origin_ok(self, req) -> bool:
        """No Origin, Burrow's own (the origin this request was sent to), or an allowed one."""
        origin = req.headers.get("Origin")
        if origin is None:
            return True
        parsed = _origin(origin)
        host = split_host(req.headers.get("Host") or "")
        if parsed is not None and host is not None:
            scheme, origin_host, origin_port = parsed
            # A Host without a port names the default port of the scheme the page used.
            if origin_host == host[0] and origin_port == (host[1] or DEFAULT_PORTS[scheme]):
                return True
        return self.allowed_origin(origin)

    def check_origin(self, req) -> None:
        """Raise 403 unless :meth:`origin_ok` (for writes and WebSocket upgrades)."""
        if not self.origin_ok(req):
            raise self.refuse_origin()

    def refuse_origin(self) -> ApiError:
        self.cross_origin += 1
        return ApiError(403, "requests from other web pages are refused; use Burrow's own page, or "
                             "a token from an origin in server.allowed_origins", error="cross_origin")
