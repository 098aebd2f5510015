"""What an upstream entry says: plain DNS ("ip:port"), DNS over TLS or DNS over HTTPS.

The forms (``upstream_dns_servers``, ``upstream.bootstrap`` takes only the first, and a
conditional forwarding rule's ``upstreams``)::

    9.9.9.9                         plain DNS, UDP (TCP when truncated), port 53
    [2620:fe::fe]:53                the same over IPv6
    tls://dns.quad9.net             DNS over TLS (RFC 7858), port 853
    tls://9.9.9.9:853#dns.quad9.net an address, and the name its certificate must carry (SNI)
    https://dns.quad9.net/dns-query DNS over HTTPS (RFC 8484), POST, port 443
    https://1.1.1.1/dns-query#cloudflare-dns.com
    tls://9.9.9.9?pin=<base64>#dns.quad9.net
                                    ... and the certificate's public key must hash to this
                                    (SHA-256 of its SubjectPublicKeyInfo, base64, as RFC 7469)

``#name`` is the TLS server name: sent as SNI, checked against the certificate, and (DoH)
the Host header. Without it, a host name is its own server name and an address is checked
against the certificate's IP addresses. A host name is resolved through the bootstrap
servers, never through Burrow itself. ``?pin=`` adds to the certificate check; it does not
replace it. Either order of ``?pin=`` and ``#name`` is read; the canonical text (what the
configuration keeps and the health snapshot shows) puts ``?pin=`` first, as a URL does.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass

PLAIN, TLS, HTTPS = "dns", "tls", "https"
DEFAULT_PORTS = {PLAIN: 53, TLS: 853, HTTPS: 443}
DEFAULT_DOH_PATH = "/dns-query"
MAX_TEXT = 512  # characters in one entry
_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")  # RFC 3986 path characters only
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")


@dataclass(frozen=True)
class UpstreamSpec:
    """One parsed upstream entry. ``host`` is an address (short form) or a lower-case name."""

    scheme: str  # PLAIN, TLS or HTTPS
    host: str
    port: int
    sni: str | None = None  # the #name given, if any
    path: str = ""  # DoH only
    pin: bytes | None = None  # SHA-256 of the certificate's SubjectPublicKeyInfo
    text: str = ""  # canonical form

    @property
    def encrypted(self) -> bool:
        return self.scheme != PLAIN

    @property
    def host_is_address(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def server_name(self) -> str | None:
        """The name the certificate must carry (and SNI): ``#name``, else a host name, else None
        (an address: checked against the certificate's IP addresses, no SNI sent)."""
        if self.sni:
            return self.sni
        return None if self.host_is_address else self.host

    @property
    def pin_text(self) -> str:
        return base64.b64encode(self.pin).decode() if self.pin else ""


def _hostname(value: str, what: str) -> str:
    name = value.strip().lower().rstrip(".")
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        raise ValueError(f"{what} {value!r} is not a valid host name") from None
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{what} {value!r} is not a valid host name")
    if all(label.isdigit() for label in labels):
        raise ValueError(f"{what} {value!r} is not a valid address or host name")
    return name


def _pin(value: str) -> bytes:
    text = value.strip()
    if text.lower().startswith("sha256/"):
        text = text[7:]
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text
                               else None, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"pin {value!r} is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"pin {value!r} is not a SHA-256 hash (32 bytes, base64)")
    return raw


def _authority(value: str, scheme: str) -> tuple[str, int]:
    if "@" in value:
        raise ValueError("user names and passwords are not supported in an upstream URL")
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in {value!r}")
        host_text, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"expected \"[address]:port\", got {value!r}")
        port_text = rest[1:] if rest else None
        try:
            host = str(ipaddress.IPv6Address(host_text))
        except ValueError:
            raise ValueError(f"{host_text!r} is not an IPv6 address") from None
    else:
        if value.count(":") > 1:
            raise ValueError(f"an IPv6 address goes in brackets, got {value!r}")
        host_text, _, port_text_or_empty = value.partition(":")
        port_text = port_text_or_empty if ":" in value else None
        try:
            host = str(ipaddress.IPv4Address(host_text))
        except ValueError:
            host = _hostname(host_text, "host")
    if port_text is None:
        return host, DEFAULT_PORTS[scheme]
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) <= 65535:
        raise ValueError(f"bad port in {value!r}")
    return host, int(port_text)


def _canonical(spec: UpstreamSpec) -> str:
    host = f"[{spec.host}]" if ":" in spec.host else spec.host
    port = "" if spec.port == DEFAULT_PORTS[spec.scheme] else f":{spec.port}"
    pin = f"?pin={spec.pin_text}" if spec.pin else ""
    sni = f"#{spec.sni}" if spec.sni else ""
    return f"{spec.scheme}://{host}{port}{spec.path}{pin}{sni}"


def parse_encrypted(value: str) -> UpstreamSpec:
    """``tls://...`` or ``https://...`` (module doc); raises ValueError saying what is wrong."""
    if len(value) > MAX_TEXT:
        raise ValueError(f"at most {MAX_TEXT} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"no spaces or control characters in an upstream URL: {value!r}")
    scheme, _, rest = value.partition("://")
    scheme = scheme.lower()
    if scheme not in (TLS, HTTPS):
        raise ValueError(f"an upstream is \"ip:port\", tls://host or https://host/path, got {value!r}")
    rest, _, fragment = rest.partition("#")
    query = ""
    if "?" in fragment:  # tls://host#name?pin=... (the pin after the name) reads too
        fragment, _, query = fragment.partition("?")
    rest, _, before = rest.partition("?")
    if before:
        if query:
            raise ValueError(f"one ?pin= only, got {value!r}")
        query = before
    cut = rest.find("/")
    authority, path = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    if not authority:
        raise ValueError(f"missing host in {value!r}")
    host, port = _authority(authority, scheme)
    if scheme == TLS and path not in ("", "/"):
        raise ValueError(f"a tls:// upstream has no path, got {value!r}")
    if scheme == TLS:
        path = ""
    elif not path or path == "/":
        path = DEFAULT_DOH_PATH
    elif not _PATH.fullmatch(path):
        raise ValueError(f"bad characters in the path of {value!r}")
    pin = None
    if query:
        key, eq, pin_text = query.partition("=")
        if key.lower() != "pin" or not eq:
            raise ValueError(f"the only parameter an upstream URL takes is ?pin=<base64 SHA-256>, got {value!r}")
        pin = _pin(pin_text)
    sni = None
    if fragment:
        try:
            ipaddress.ip_address(fragment.strip("[]"))
        except ValueError:
            sni = _hostname(fragment, "server name")
        else:
            raise ValueError(f"#{fragment} must be a host name (the certificate's name), not an address")
        if sni == host:
            sni = None  # says nothing more
    spec = UpstreamSpec(scheme, host, port, sni, path, pin)
    return UpstreamSpec(scheme, host, port, sni, path, pin, _canonical(spec))


def is_encrypted_text(value: object) -> bool:
    return isinstance(value, str) and "://" in value
