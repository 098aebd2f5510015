"""The configuration schema: every option is a record with a type, a default, help and a validator.

Errors always name the key path (``cache.max_bytes``) so a person can find the line. The same
validators are reused by the API when settings are changed at runtime.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable

from .. import errors as domain
from .upstream_spec import PLAIN, UpstreamSpec, is_encrypted_text, parse_encrypted


class ConfigError(domain.Invalid, ValueError):
    """One or more options are invalid. ``errors`` is a list of (key path, message)."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {m}" for k, m in errors))

    def summary(self) -> str:
        return f"invalid configuration: {self}"

    def problems(self) -> list[dict[str, Any]]:
        return [{"field": k, "message": m} for k, m in self.errors]


@dataclass(frozen=True)
class Option:
    """One configuration option. ``validate`` returns the normalised value or raises ValueError."""

    key: str  # dotted path, e.g. "cache.max_bytes"
    default: Any
    help: str
    validate: Callable[[Any], Any]


# ---- validators -------------------------------------------------------------------------------

def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return value.lower() in ("true", "1", "yes", "on")
    raise ValueError(f"expected true or false, got {value!r}")


def integer(lo: int | None = None, hi: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"expected an integer, got {value!r}") from None
        if isinstance(value, float) and value.is_integer():  # JSON Schema: 645.0 is an integer
            value = int(value)
        if not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        if lo is not None and value < lo:
            raise ValueError(f"must be at least {lo}, got {value}")
        if hi is not None and value > hi:
            raise ValueError(f"must be at most {hi}, got {value}")
        return value

    return check


def number(lo: float | None = None, hi: float | None = None) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        if not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        value = float(value)
        if lo is not None and value < lo:
            raise ValueError(f"must be at least {lo:g}, got {value:g}")
        if hi is not None and value > hi:
            raise ValueError(f"must be at most {hi:g}, got {value:g}")
        return value

    return check


def choice(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value.lower()

    return check


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def parse_hostport(value: str, default_port: int | None = None) -> tuple[str, int]:
    """Parse "ip:port", "[v6]:port", or a bare IP when ``default_port`` is given."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected \"ip:port\", got {value!r}")
    value = value.strip()
    host, port_text = value, None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in {value!r}")
        host = value[1:end]
        rest = value[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"expected \"[ip]:port\", got {value!r}")
            port_text = rest[1:]
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    if port_text is None:
        if default_port is None:
            raise ValueError(f"missing port in {value!r} (write \"ip:port\")")
        port = default_port
    else:
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"bad port in {value!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {value!r}")
    return str(ip), port


def format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def hostport(default_port: int | None = None) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        return format_hostport(*parse_hostport(value, default_port))

    return check


def parse_upstream(value: Any) -> UpstreamSpec:
    """An upstream entry: "ip[:port]" (plain DNS, port 53 if omitted), tls://host[:port][#name]
    or https://host[:port]/path[#name], either with ?pin= (config/upstream_spec.py)."""
    if is_encrypted_text(value):
        return parse_encrypted(value.strip())
    host, port = parse_hostport(value, 53)
    if port == 0:
        raise ValueError(f"port 0 in {value!r}")
    return UpstreamSpec(PLAIN, host, port, text=format_hostport(host, port))


def upstream(value: Any) -> str:
    """The validator of one upstream entry: its canonical text."""
    return parse_upstream(value).text


def ca_file(value: Any) -> str:
    """A PEM file of CA certificates to verify encrypted upstreams with ("": the system's)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a path, got {value!r}")
    if not value.strip():
        return ""
    import ssl
    try:
        ssl.create_default_context(cafile=value)
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"cannot load CA certificates from {value!r}: {getattr(e, 'strerror', None) or e}") \
            from None
    return value


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``check``, or "" (off) for an empty string."""
    def maybe(value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return ""
        return check(value)

    return maybe


def list_of(item: Callable[[Any], Any], *, min_items: int = 0, max_items: int = 64,
            allow_scalar: bool = False) -> Callable[[Any], list]:
    def check(value: Any) -> list:
        if allow_scalar and isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        if len(value) < min_items:
            raise ValueError(f"needs at least {min_items} item(s)")
        if len(value) > max_items:
            raise ValueError(f"at most {max_items} items")
        out = []
        for i, v in enumerate(value):
            try:
                out.append(item(v))
            except ValueError as e:
                raise ValueError(f"item {i}: {e}") from None
        return out

    return check


def network(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a CIDR string, got {value!r}")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not a valid network (CIDR)") from None


def ip_of(version: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        try:
            ip = ipaddress.ip_address(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        if ip.version != version:
            raise ValueError(f"expected an IPv{version} address, got {value!r}")
        return str(ip)

    return check


def domain_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a domain name, got {value!r}")
    name = value.strip().lower().rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or not all(0 < len(l) <= 63 and all(c.isalnum() or c in "-_" for c in l) for l in labels):
        raise ValueError(f"{value!r} is not a valid domain name")
    return name


def split_authority(value: str) -> tuple[str, int | None]:
    """"host", "host:port", "[v6]" or "[v6]:port" → (host, port or None), as a Host header or
    an origin writes it. Raises ValueError on anything else (user info, a path, a bad port)."""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in {value!r}")
        host, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"expected \"[address]:port\", got {value!r}")
        port_text = rest[1:] if rest else None
    elif value.count(":") > 1:
        raise ValueError(f"an IPv6 address goes in brackets, got {value!r}")
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    else:
        host, port_text = value, None
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
            raise ValueError(f"bad port in {value!r}")
        port = int(port_text)
    return host, port


def host_or_address(value: Any) -> str:
    """A host name or an IP address (lower case, no trailing dot; an address in its short form)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a host name or an IP address, got {value!r}")
    text = value.strip()
    try:
        return str(ipaddress.ip_address(text[1:-1] if text.startswith("[") and text.endswith("]") else text))
    except ValueError:
        return domain_name(text)


DEFAULT_PORTS = {"http": 80, "https": 443}


def web_origin(value: Any) -> str:
    """A web origin, "http(s)://host[:port]" with no path, as browsers write it in ``Origin``
    (lower case, the scheme's default port left out)."""
    if not isinstance(value, str) or "://" not in value:
        raise ValueError(f"expected an origin like \"http://host:port\", got {value!r}")
    scheme, _, authority = value.strip().partition("://")
    scheme = scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"an origin is http:// or https://, got {value!r}")
    host, port = split_authority(authority)
    host = host_or_address(host)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port not in (None, DEFAULT_PORTS[scheme]) else "")


LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"
MAX_CERT_NAMES = 100  # names in one ACME certificate (Let's Encrypt's limit)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def http_url(value: Any) -> str:
    """An http(s) URL with a host (an ACME directory, a provider's API base)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected an https:// URL, got {value!r}")
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("https", "http") or not rest or rest[0] in "/?#":
        raise ValueError(f"expected an https:// URL, got {value!r}")
    if any(c.isspace() for c in text):
        raise ValueError("a URL has no spaces")
    return text


def cert_name(value: Any) -> str:
    """A name for a certificate: a domain name with at least one dot, optionally "*." first."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a domain name, got {value!r}")
    text = value.strip().lower().rstrip(".")
    wildcard = text.startswith("*.")
    name = domain_name(text[2:] if wildcard else text)
    if "." not in name:
        raise ValueError(f"{value!r}: a certificate name needs a dot (a registered domain)")
    return f"*.{name}" if wildcard else name


def email(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an e-mail address, got {value!r}")
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("not an e-mail address")
    return text


def duration(lo: float, hi: float) -> Callable[[Any], str]:
    """A duration as the seed writes it ("720h", "30d", "90m", "1h30m"; seconds alone as a
    number): kept as written, checked against [lo, hi] seconds. :func:`duration_seconds` reads it."""
    def check(value: Any) -> str:
        text = str(value).strip().lower() if isinstance(value, (str, int, float)) and not isinstance(value, bool) \
            else None
        try:
            seconds = duration_seconds(text) if text else None
        except ValueError:
            seconds = None
        if seconds is None:
            raise ValueError(f"expected a duration like \"720h\" or \"30d\", got {value!r}")
        if not lo <= seconds <= hi:
            raise ValueError(f"must be between {lo / 3600:g}h and {hi / 3600:g}h, got {value!r}")
        return str(text)

    return check


def duration_seconds(text: str) -> float:
    """ "720h" → 2592000.0; ValueError if it is not a duration."""
    try:
        return float(text)
    except ValueError:
        pass
    total, number = 0.0, ""
    for c in text:
        if c.isdigit() or c == ".":
            number += c
        elif c in _DURATION_UNITS and number:
            total += float(number) * _DURATION_UNITS[c]
            number = ""
        else:
            raise ValueError(f"not a duration: {text!r}")
    if number or not text:
        raise ValueError(f"not a duration: {text!r}")
    return total


def api_token(value: Any) -> str:
    """A provider's API token: one word of printable characters ("": none). The message never
    repeats the value (it is a secret)."""
    if not isinstance(value, str):
        raise ValueError("expected a string")
    text = value.strip()
    if len(text) > 512 or any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("an API token is one word of printable characters (at most 512)")
    return text


def zone_id(value: Any) -> str:
    if not isinstance(value, str) or (value.strip() and not value.strip().isalnum()) or len(value) > 64:
        raise ValueError(f"a zone id is letters and digits only, got {value!r}")
    return value.strip()


def path(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a path, got {value!r}")
    return value


# ---- the options ------------------------------------------------------------------------------

DEFAULT_ALLOWED_NETWORKS = [
    "127.0.0.0/8", "::1/128",  # loopback
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "169.254.0.0/16", "fe80::/10",  # link-local
    "fc00::/7",  # unique local (ULA)
]

OPTIONS: list[Option] = [
    Option("upstream_dns_servers", ["9.9.9.9:53", "1.1.1.1:53"],
           "Upstream resolvers: \"ip:port\" (plain DNS, port 53 if omitted), \"tls://host[:853][#name]\" "
           "(DNS over TLS) or \"https://host[:443]/dns-query[#name]\" (DNS over HTTPS), an encrypted one "
           "optionally with \"?pin=<base64 SHA-256 of the key>\"; a host name is resolved through "
           "upstream.bootstrap or the plain entries here.",
           list_of(upstream, min_items=1, max_items=16)),
    Option("server.listen_address", ["127.0.0.1:5300"],
           "DNS listen address(es), UDP and TCP: \"ip:port\" or a list of them.",
           list_of(hostport(53), min_items=1, max_items=16, allow_scalar=True)),
    Option("server.web_ui_address", "127.0.0.1:8080",
           "Admin page and REST API address, \"ip:port\".", hostport(8080)),
    Option("compat.pihole_address", "127.0.0.1:8081",
           "Pi-hole v6 API face (Home Assistant, Homepage, nebula-sync; docs/compat.md), on its own "
           "listener, \"ip:port\"; empty: off.", optional(hostport(8081))),
    Option("server.decision_trace", True,
           "Keep the per-query decision trace (block_trace) in the query log.", boolean),
    Option("server.tcp_idle_timeout", 10.0,
           "Seconds a DNS-over-TCP connection may stay idle (RFC 7766).", number(0.5, 300)),
    Option("server.max_tcp_connections", 128,
           "Cap on concurrent DNS-over-TCP connections.", integer(1, 10000)),
    Option("server.max_tcp_per_client", 16,
           "Cap on one client's concurrent DNS-over-TCP connections (fewer as the slots run out); "
           "more are accepted and closed at once.", integer(1, 10000)),
    Option("server.tcp_message_timeout", 5.0,
           "Seconds a DNS-over-TCP message may take from its first byte to its last (partial "
           "data does not extend it); past it the connection is closed.", number(0.5, 300)),
    Option("server.http_max_connections", 64,
           "Cap on concurrent admin page/API connections (WebSockets included); past it, 503.",
           integer(1, 10000)),
    Option("server.http_max_connections_per_client", 16,
           "Cap on one client's concurrent admin page/API connections (an IPv6 client is its /64); "
           "past it, 503, so one device cannot shut the others out.", integer(1, 10000)),
    Option("server.http_request_deadline", 10.0,
           "Seconds for a whole HTTP request (line, headers and a JSON body) to arrive; "
           "a slower one gets 408.", number(0.5, 300)),
    Option("server.http_keepalive_timeout", 15.0,
           "Seconds an idle kept-alive admin page/API connection waits for its next request "
           "before it is closed (it holds a connection slot meanwhile).", number(0.5, 300)),
    # TLS (burrow/tls): the certificate the box serves with, DNS over TLS, and HTTPS for the
    # admin page, the API and DNS over HTTPS. Off in development; the image serves both.
    Option("tls.mode", "off",
           "Where the certificate comes from: off (no TLS listener), manual (cert_file and key_file, "
           "reloaded when they change), self_signed (made on first start for burrow.local, the hostname "
           "and the box's addresses), autocert (ACME HTTP-01: tls.autocert) or acme (ACME DNS-01 through a "
           "DNS provider's API: tls.acme).",
           choice("off", "manual", "self_signed", "autocert", "acme")),
    Option("tls.cert_file", "",
           "manual mode: PEM certificate (chain) file; the server's certificate first.", text),
    Option("tls.key_file", "",
           "manual mode: PEM private key file (no passphrase); empty: the key is in cert_file.", text),
    Option("tls.dot_enabled", False,
           "Serve DNS over TLS (RFC 7858; Android's Private DNS) on dot_address once a certificate exists.",
           boolean),
    Option("tls.dot_address", "127.0.0.1:8853",
           "DNS-over-TLS address, \"ip:port\" (port 853 if omitted).", hostport(853)),
    Option("tls.https_address", "",
           "HTTPS address of the admin page, the API and DNS over HTTPS (/dns-query), \"ip:port\" "
           "(port 443 if omitted); empty: no HTTPS. While it serves, plain HTTP redirects to it.",
           optional(hostport(443))),
    Option("tls.handshake_timeout", 5.0,
           "Seconds a TLS handshake may take; a client that stalls in it is cut then.", number(0.5, 60)),
    Option("tls.dot_max_connections", 128,
           "Cap on concurrent DNS-over-TLS connections (each client's share as for TCP, "
           "server.max_tcp_per_client).", integer(1, 10000)),
    Option("tls.dot_idle_timeout", 30.0,
           "Seconds a DNS-over-TLS connection may stay idle (RFC 7766, RFC 7858 §3.4).", number(0.5, 3600)),
    Option("tls.hsts", False,
           "Send Strict-Transport-Security on HTTPS answers: browsers then use only HTTPS to the box for "
           "a year, and refuse a certificate they do not trust outright (no click-through): only with a "
           "certificate every device trusts.", boolean),
    # ACME (burrow/tls/acme.py): autocert is the HTTP-01 challenge (the CA fetches a token from
    # port 80), acme the DNS-01 challenge (a TXT record made through the DNS provider's API).
    # Shaped as the seed's tls.autocert / tls.acme tables; tls.mode is the switch.
    Option("tls.directory_url", LETS_ENCRYPT_DIRECTORY,
           "autocert and acme: the ACME directory (Let's Encrypt's; for trials its staging directory "
           "https://acme-staging-v02.api.letsencrypt.org/directory).", http_url),
    Option("tls.directory_ca_file", "",
           "autocert and acme: PEM file of the CA certificates the directory's HTTPS is checked "
           "against; empty: the system's CA store.", ca_file),
    Option("tls.autocert.hosts", [],
           "autocert: the certificate's names (no wildcard); each must reach this box on port 80 from "
           "the internet.", list_of(cert_name, max_items=MAX_CERT_NAMES)),
    Option("tls.autocert.email", "", "autocert: contact e-mail for the ACME account (expiry notices); "
           "empty: none.", optional(email)),
    Option("tls.autocert.cache_dir", "",
           "autocert: folder for the account key and the issued certificate and key; empty: "
           "<data dir>/tls/autocert.", text),
    Option("tls.autocert.http01_address", "",
           "autocert: an extra plain HTTP listener (\"ip:port\", port 80 if omitted) answering only "
           "the ACME challenges, for when server.web_ui_address is not on port 80; empty: the web "
           "listener answers them.", optional(hostport(80))),
    Option("tls.acme.dns_provider", "cloudflare",
           "acme: the DNS provider whose API makes the _acme-challenge TXT records.", choice("cloudflare")),
    Option("tls.acme.hosts", [],
           "acme: the certificate's names (\"*.example.org\" allowed).",
           list_of(cert_name, max_items=MAX_CERT_NAMES)),
    Option("tls.acme.email", "", "acme: contact e-mail for the ACME account; empty: none.", optional(email)),
    Option("tls.acme.cache_dir", "",
           "acme: folder for the account key and the issued certificate and key; empty: "
           "<data dir>/tls/acme.", text),
    Option("tls.acme.renew_before", "720h",
           "acme: renew this long before expiry (\"720h\", \"30d\"), or at two thirds of the "
           "lifetime if that comes first.", duration(3600, 60 * 86400)),
    Option("tls.acme.dns_propagation", 20.0,
           "acme: seconds to wait after making the TXT records before the CA looks them up.",
           number(0, 600)),
    Option("tls.acme.cloudflare.api_token", "",
           "acme with Cloudflare: an API token with Zone.DNS edit on the zone (a secret: never shown).",
           api_token),
    Option("tls.acme.cloudflare.zone_id", "",
           "acme with Cloudflare: the zone id; empty: found from the names.", zone_id),
    Option("tls.acme.cloudflare.api_base", CLOUDFLARE_API,
           "acme with Cloudflare: the API's base URL.", http_url),
    Option("cache.enabled", True, "Cache upstream answers.", boolean),
    Option("cache.max_bytes", 16 * 1024 * 1024,
           "Cache size cap in bytes of answer data (LRU eviction past it).", integer(0, 1 << 32)),
    Option("cache.min_ttl", 0, "Lower bound on cached TTLs, seconds.", integer(0, 86400)),
    Option("cache.max_ttl", 86400, "Upper bound on cached TTLs, seconds.", integer(1, 7 * 86400)),
    Option("cache.negative_ttl", 3600,
           "Upper bound on negative-answer TTLs (RFC 2308), seconds.", integer(0, 86400)),
    Option("cache.serve_stale", True,
           "Serve expired answers when upstreams fail or are slow (RFC 8767).", boolean),
    Option("cache.prefetch", True,
           "Refresh popular entries shortly before they expire.", boolean),
    Option("rate_limit.enabled", True, "Limit queries per client IP.", boolean),
    Option("rate_limit.rps", 100.0, "Sustained queries per second allowed per client.",
           number(0.1, 1_000_000)),
    Option("rate_limit.burst", 400, "Bucket size: queries a client may send at once.",
           integer(1, 10_000_000)),
    Option("rate_limit.action", "drop", "What to do past the limit: drop or refuse.",
           choice("drop", "refuse")),
    Option("rate_limit.cleanup_interval", 60.0,
           "Seconds between sweeps that forget idle clients.", number(1, 86400)),
    Option("rate_limit.max_tracked_clients", 10000,
           "Cap on clients tracked by the limiter (oldest forgotten past it).",
           integer(16, 1_000_000)),
    Option("logging.level", "info", "Log level.", choice("debug", "info", "warning", "error")),
    Option("logging.format", "text", "Log format.", choice("text", "json")),
    Option("logging.output", "stderr", "Where logs go: stderr (journald on the image).",
           choice("stderr", "stdout")),
    Option("storage.data_dir", "./burrow-data",
           "Folder for the settings and query-log databases.", path),
    Option("storage.query_log_flush_interval", 60.0,
           "Seconds between query-log writes to its RAM tier (one transaction each).",
           number(0.05, 3600)),
    Option("storage.query_log_retention_days", 7, "Days of query log kept.", integer(1, 365)),
    Option("storage.query_log_max_bytes", 64 * 1024 * 1024,
           "Query-log size cap in bytes, both tiers (oldest rows deleted past it).",
           integer(1 << 20, 1 << 36)),
    Option("access.allowed_networks", DEFAULT_ALLOWED_NETWORKS,
           "Client networks allowed to query; everyone else gets REFUSED.",
           list_of(network, max_items=256)),
    Option("upstream.timeout", 2.0, "Seconds to wait for one upstream attempt.", number(0.05, 30)),
    Option("upstream.max_attempts", 3,
           "Upstream attempts per query across servers (failover).", integer(1, 10)),
    Option("upstream.max_inflight", 1024,
           "Cap on concurrent upstream queries (further misses get SERVFAIL).",
           integer(1, 65536)),
    Option("upstream.max_inflight_share", 0.25,
           "Fraction of upstream.max_inflight one client may hold (less as the pool fills), so "
           "clients asking names that never resolve cannot starve the others.",
           number(0.01, 1.0)),
    Option("upstream.bootstrap", [],
           "Plain resolvers (\"ip:port\") that resolve the host names of tls:// and https:// upstreams; "
           "empty: the plain entries of upstream_dns_servers. Never Burrow itself.",
           list_of(hostport(53), max_items=8)),
    Option("upstream.ca_file", "",
           "PEM file of the CA certificates that encrypted upstreams' certificates are checked against; "
           "empty: the system's CA store.", ca_file),
    Option("upstream.proxy_dnssec", "auto",
           "Pass on the upstream's AD bit (its validator's word that the data is authentic) to "
           "clients that send DO or AD: auto for upstreams on loopback, in upstream.trusted_servers or "
           "reached over DoT/DoH (a verified certificate), "
           "on for every upstream, off never (dnsmasq's --proxy-dnssec).",
           choice("auto", "on", "off")),
    Option("upstream.trusted_servers", [],
           "Upstream addresses or networks whose AD bit proxy_dnssec = auto believes (a validating "
           "resolver on a network path you trust), e.g. 192.168.1.53.",
           list_of(network, max_items=64)),
    Option("board.name", "auto",
           "Board file to use (rpi-4, rpi-5, generic, ...); auto detects it from the device tree.",
           text),
    Option("board.status_leds", True,
           "Show the status on the board's LEDs (onboard ACT and any wired LEDs).", boolean),
    Option("board.button", True, "Use the board's push button, if it has one.", boolean),
    # The file log is for boards whose journal is volatile: the file lives in RAM
    # (a tmpfs) and only its compressed copies reach flash, at most once per interval.
    Option("logging.file_dir", "",
           "RAM folder (tmpfs) for an extra log file; empty: no file log.", text),
    Option("logging.file_max_bytes", 1024 * 1024,
           "Log file size that triggers a rotation (the old file is gzipped).",
           integer(16 * 1024, 1 << 30)),
    Option("logging.file_keep", 5, "Rotated, compressed log files kept in the RAM folder.",
           integer(0, 100)),
    Option("logging.file_persist_dir", "",
           "Folder on flash the compressed logs are copied to; empty: never persisted.", text),
    Option("logging.file_persist_interval", 60.0,
           "Minutes between copies of the logs to flash (and once at shutdown).",
           number(1, 7 * 24 * 60)),
    Option("logging.file_persist_max_bytes", 16 * 1024 * 1024,
           "Size cap of the persisted logs (oldest files deleted past it).",
           integer(64 * 1024, 1 << 34)),
    Option("server.metrics_public", False,
           "Serve /metrics without authentication (for a scraper on a trusted network); "
           "otherwise it needs a viewer login or token.", boolean),
    # Who may talk to the admin page and API (docs/security.md): Burrow's own names and
    # addresses are always allowed; these add the ones it cannot know of.
    Option("server.allowed_hosts", [],
           "Extra names or addresses the admin page and API answer to (the Host header), besides "
           "burrow.local, the hostname (and hostname.local), localhost and the box's own addresses; "
           "for example a name given by the router, or the address a port forward uses. Others get 421.",
           list_of(host_or_address, max_items=64)),
    Option("server.allowed_origins", [],
           "Web origins (\"http://host:port\") of other pages allowed to send API requests with a "
           "token (CORS, never cookies), for example a home dashboard. Empty: only Burrow's own page "
           "may send state-changing requests.",
           list_of(web_origin, max_items=64)),
    # The query log in two tiers (storage/querylog.py): the per-flush writes land in a RAM
    # folder, and only compressed blocks reach flash, once per persist interval.
    Option("storage.query_log_ram_dir", "",
           "RAM folder (tmpfs) for the recent query log; empty: the data dir (development).",
           text),
    Option("storage.query_log_persist_interval", 900.0,
           "Seconds between compressed query-log writes to flash (and once at shutdown).",
           number(0.05, 86400)),
    Option("filtering.blocking_mode", "null",
           "How blocked names are answered: null (0.0.0.0 / ::), nxdomain, nodata, or custom "
           "(the addresses below). A list may override it.",
           choice("null", "nxdomain", "nodata", "custom")),
    Option("filtering.custom_ipv4", "0.0.0.0", "A answer for blocked names in custom mode.", ip_of(4)),
    Option("filtering.custom_ipv6", "::", "AAAA answer for blocked names in custom mode.", ip_of(6)),
    Option("filtering.blocked_ttl", 10,
           "TTL of blocked answers, seconds (short: unblocking takes effect quickly).",
           integer(0, 86400)),
    Option("filtering.local_list_dirs", [],
           "Folders local list files may be read from (besides the data dir's lists/).",
           list_of(path, max_items=16)),
    Option("local.private_reverse", True,
           "Answer reverse lookups for private and special ranges (RFC 1918, RFC 6303, ULA, "
           "link-local) with NXDOMAIN here unless local data or a conditional forwarding rule covers "
           "them: never ask public upstreams (dnsmasq's bogus-priv).", boolean),
    Option("local.special_names", True,
           "Answer special-use names (.local, .lan, .internal, home.arpa, .localhost, .invalid, "
           ".onion), and single-label names asked for A/AAAA, with NXDOMAIN here unless local data "
           "or a conditional forwarding rule covers them (dnsmasq's domain-needed); other "
           "single-label questions (com DS, . NS) are forwarded.", boolean),
    Option("local.rebind_protection", True,
           "Block public names whose upstream answer points into private address space (DNS "
           "rebinding), except allow-listed names and the domains below.", boolean),
    Option("local.rebind_allowed_domains", [],
           "Domains (and their subdomains) allowed to resolve to private addresses, e.g. plex.direct.",
           list_of(domain_name, max_items=256)),
    # A board without a real-time clock boots with a wrong time (burrow/clock.py). Off for
    # development (CI machines often have an unsynchronised kernel clock); on in the image.
    Option("clock.wait_for_sync", False,
           "Hold back list downloads and query-log age pruning until the system clock is "
           "synchronised (network time); DNS answers meanwhile. On in the SD-card image.", boolean),
    Option("clock.sync_file", "/run/systemd/timesync/synchronized",
           "The file systemd-timesyncd creates once it has synchronised the clock.", path),
    Option("clock.sync_sources", ["timesyncd", "kernel"],
           "What counts as synchronised: timesyncd (its sync_file exists) and/or kernel "
           "(adjtimex reports a synchronised clock).",
           list_of(choice("timesyncd", "kernel"), min_items=1, max_items=2)),
    Option("clock.max_wait_minutes", 10,
           "Minutes to wait for a synchronisation before going on with the clock as it is, "
           "provided it reads no earlier than this release's date (else Burrow keeps waiting).",
           integer(1, 7 * 24 * 60)),
]

BY_KEY: dict[str, Option] = {o.key: o for o in OPTIONS}
SECTIONS = sorted({o.key.split(".")[0] for o in OPTIONS if "." in o.key})
