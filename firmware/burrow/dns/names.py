"""Domain names as text: one normalisation, wildcards, reverse names and the view key.

A name a person or a list hands Burrow (a list entry, an RPZ trigger, a forwarding rule's
domain) is normalised by :func:`normalize`: lower case, no trailing dot, IDN labels in punycode
(Python's IDNA codec, so Unicode dot look-alikes separate labels as browsers and list authors
expect), labels of letters, digits, ``-`` and ``_`` that do not start or end with ``-``, at
most 63 octets a label and 253 a name.

The rule for ``_``: allowed anywhere in a label. Real names carry it (``_dmarc``,
``_sip._tcp``, ``_acme-challenge``, tracking hosts such as ``a_b.example``), the DNS itself
allows any octet in a label (RFC 2181 §11), and only host names (RFC 952/1123) leave it out.
A filter that refused it could not block such a name; a question for one is answered like any.

A wildcard is a leading ``*.`` and means the names strictly below (``*.corp.example``); a ``*``
anywhere else is refused. Reverse names (``in-addr.arpa``, ``ip6.arpa``) are read and written
here too. The view key is how the DNS path names a client's set of groups: the sorted group
names joined by ``,`` (``"default"`` for a client in no group), one fast-path store per view.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

MAX_NAME = 253  # presentation length without the trailing dot (255 octets in wire form)
MAX_LABEL = 63
WILDCARD = "*."
V4_REVERSE, V6_REVERSE = "in-addr.arpa", "ip6.arpa"
MAX_REVERSE_ZONES = 16  # zones one network may need (a prefix at most 4 bits off a boundary)
DEFAULT_VIEW = "default"  # the group of a client in no group, and its view

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?").fullmatch
# The same rule over a whole name in a few cheap passes (a list compile normalises 1M names):
# the characters and the empty labels, then hyphens at label edges, then long labels.
NAME_CHARS = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*").fullmatch
_HEX = frozenset("0123456789abcdef")


class BadName(ValueError):
    """Not a domain name; the message says why."""


def normalize(text: str) -> str:
    """``text`` as a lower-case ASCII name without the trailing dot, or BadName."""
    name = text.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise BadName("the name is empty")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii").lower()
        except UnicodeError as e:
            raise BadName(f"IDN name cannot be encoded: {e}") from None
    if not is_normal(name):
        bad = [label for label in name.split(".") if _LABEL(label) is None]
        raise BadName(_label_problem(bad[0]) if bad else f"name longer than {MAX_NAME} characters")
    return name


def is_normal(name: str) -> bool:
    """True when ``name`` is already what :func:`normalize` returns (the cheap check list
    parsers try first: most lines of a list hold a normal name)."""
    return (NAME_CHARS(name) is not None and name[0] != "-" and name[-1] != "-" and "-." not in name
            and ".-" not in name
            and (len(name) <= MAX_LABEL
                 or len(name) <= MAX_NAME and all(len(label) <= MAX_LABEL for label in name.split("."))))


def _label_problem(label: str) -> str:
    if not label:
        return "empty label (two dots, or a leading dot)"
    if len(label) > MAX_LABEL:
        return f"label longer than {MAX_LABEL} characters: {label[:20]!r}…"
    if label[0] == "-" or label[-1] == "-":
        return f"label {label!r} starts or ends with a hyphen"
    return f"bad label {label!r}: only letters, digits, '-' and '_'"


def split_wildcard(text: str) -> tuple[bool, str]:
    """(below_only, the rest) for a pattern: ``*.corp.example`` → (True, "corp.example"),
    ``example.com`` → (False, "example.com"); BadName for a ``*`` anywhere else."""
    below = text.startswith(WILDCARD)
    rest = text[len(WILDCARD):] if below else text
    if "*" in rest:
        raise BadName("a wildcard is only allowed as a leading '*.' (e.g. *.corp.example.com)")
    return below, rest


def normalize_pattern(text: str) -> tuple[bool, str]:
    """A name or ``*.name`` pattern: (below_only, normalised base name), or BadName."""
    below, rest = split_wildcard(text.strip().lower())
    return below, normalize(rest)


# ---- reverse names ------------------------------------------------------------------------------

def reverse_name(ip: str) -> str:
    """The reverse-lookup owner of an address (``4.3.2.1.in-addr.arpa`` or the ip6.arpa
    nibbles); ValueError when ``ip`` is no address."""
    return ipaddress.ip_address(ip.strip()).reverse_pointer


def reverse_network(name: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network a reverse name stands for (``1.168.192.in-addr.arpa`` → 192.168.1.0/24), or
    None when ``name`` (normalised) is not a well-formed reverse name."""
    if name.endswith("." + V4_REVERSE):
        labels = name[: -len(V4_REVERSE) - 1].split(".")
        if not 1 <= len(labels) <= 4 or not all(l.isascii() and l.isdigit() and len(l) <= 3 and int(l) < 256
                                                for l in labels):
            return None
        octets = [int(l) for l in reversed(labels)]
        return ipaddress.ip_network((bytes(octets + [0] * (4 - len(octets))), 8 * len(octets)))
    if name.endswith("." + V6_REVERSE):
        labels = name[: -len(V6_REVERSE) - 1].split(".")
        if not 1 <= len(labels) <= 32 or not all(len(l) == 1 and l in _HEX for l in labels):
            return None
        nibbles = "".join(reversed(labels)).ljust(32, "0")
        return ipaddress.ip_network((bytes.fromhex(nibbles), 4 * len(labels)))
    return None


def reverse_address(name: str) -> str | None:
    """The address a complete reverse name stands for (any case, trailing dot or not), or None.
    Octets are written without leading zeros, as ``reverse_name`` writes them."""
    name = name.lower().rstrip(".")
    if name.endswith("." + V4_REVERSE) and any(len(l) > 1 and l[0] == "0" for l in name.split(".")[:-2]):
        return None
    net = reverse_network(name)
    if net is None or net.prefixlen != net.max_prefixlen:
        return None
    return str(net.network_address)


def reverse_zones(network: str) -> list[str]:
    """The reverse-lookup zones that exactly cover ``network``, on octet (v4) or nibble (v6)
    boundaries: 192.168.1.0/24 → ["1.168.192.in-addr.arpa"], 10.1.16.0/22 → the four /24 zones
    16..19. At most MAX_REVERSE_ZONES; ValueError otherwise or for a bad network."""
    try:
        net = ipaddress.ip_network(network.strip(), strict=False)
    except (ValueError, AttributeError):
        raise ValueError(f"invalid network {network!r} (write e.g. 192.168.1.0/24)") from None
    step = 8 if net.version == 4 else 4
    if net.prefixlen == 0:
        raise ValueError("the network is too large (/0)")
    boundary = -(-net.prefixlen // step) * step  # round up to an octet / nibble
    if 2 ** (boundary - net.prefixlen) > MAX_REVERSE_ZONES:  # more than 4 bits off
        raise ValueError(f"{net} would need {2 ** (boundary - net.prefixlen)} reverse zones; "
                         "give a prefix closer to an octet boundary")
    zones = []
    for sub in net.subnets(new_prefix=boundary):
        if net.version == 4:
            octets = str(sub.network_address).split(".")[: boundary // 8]
            zones.append(".".join(reversed(octets)) + "." + V4_REVERSE)
        else:
            nibbles = sub.network_address.exploded.replace(":", "")[: boundary // 4]
            zones.append(".".join(reversed(nibbles)) + "." + V6_REVERSE)
    return zones


# ---- the view key -------------------------------------------------------------------------------

def view_key(groups: Iterable[str]) -> str:
    """The view of a client in ``groups``: their names sorted and joined by ``,``."""
    return ",".join(sorted(groups))


def view_groups(view: str) -> tuple[str, ...]:
    """The groups a view stands for (``""`` is the default group)."""
    return tuple(view.split(",")) if view else (DEFAULT_VIEW,)
