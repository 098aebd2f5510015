"""``GET``/``PATCH /api/config`` in Pi-hole's shape (api/config.yaml), for the parts Burrow has:
the upstreams (``dns.upstreams``), local records (``dns.hosts``, ``dns.cnameRecords``),
conditional forwarding (``dns.revServers``) and blocking (``dns.blocking.active`` and
``.mode``). Two-box sync tools (nebula-sync) read this from one box and PATCH it into another.

PATCH applies what it names and leaves the rest; a section or key Burrow does not have is
ignored, as FTL ignores what it does not know (nebula-sync sends ``null`` for the sections it
does not sync). Every value is checked before anything is written; a bad one answers 400 and
changes nothing. Each list replaces what it stands for: ``dns.hosts`` every local A/AAAA record,
``dns.cnameRecords`` every local CNAME, ``dns.revServers`` the forwarding rules this face made
(named ``revServer <network>``; rules made otherwise are left alone and not shown).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from ... import errors as domain
from ...config.schema import format_hostport, parse_hostport
from ...migrate.teleporter import to_dnsmasq_server
from ...forwarding.rules import ForwardRule
from ...zones.store import local_owner, local_record
from ...zones.validate import RecordError
from .http import PiholeError, bad_request
from .sessions import DEFAULT_MAX_SESSIONS, DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from ...services import Services

REV_PREFIX = "revServer "  # the face's forwarding rules: "revServer 192.168.0.0/24"
MODES = {"null": "NULL", "nxdomain": "NX", "nodata": "NODATA", "custom": "IP"}  # Burrow's → Pi-hole's
MAX_ITEMS = 10_000  # entries in one list of a PATCH (local records are capped by their store too)


# ---- Burrow → Pi-hole ----------------------------------------------------------------------------

def pihole_server(text: str) -> str:
    """"9.9.9.9:53" → "9.9.9.9", "192.168.1.1:5353" → "192.168.1.1#5353" (dnsmasq's form);
    an encrypted upstream (tls://, https://) stays as it is."""
    return to_dnsmasq_server(text) or text


def burrow_server(text: str, where: str) -> str:
    """Pi-hole's "ip", "ip#port" (or an encrypted upstream) → Burrow's "ip:port"."""
    if not isinstance(text, str) or not text.strip():
        raise bad_request("Config item is invalid", f"{where}: an upstream is a non-empty string")
    text = text.strip()
    if "://" in text:
        return text
    host, _, port = text.partition("#")
    try:
        return format_hostport(*parse_hostport(host if not port else f"[{host}]:{port}" if ":" in host
                                               else f"{host}:{port}", 53))
    except ValueError as e:
        raise bad_request("Config item is invalid", f"{where}: {e}") from None


def reverse_zone(cidr: str) -> str:
    """The in-addr.arpa / ip6.arpa zone of a network on an octet (nibble) boundary."""
    net = ipaddress.ip_network(cidr, strict=False)
    step = 8 if net.version == 4 else 4
    if net.prefixlen % step or net.prefixlen == 0:
        raise ValueError(f"the prefix length must be a multiple of {step} (and not 0)")
    labels = net.network_address.reverse_pointer.split(".")
    return ".".join(labels[(net.max_prefixlen - net.prefixlen) // step:])


def _hosts_and_cnames(s: Services) -> tuple[list[str], list[str]]:
    hosts, cnames = [], []
    for entry in s.zones.store.local_entries():
        name = entry["domain"].rstrip(".")
        if entry["type"] == "CNAME":
            cnames.append(f"{name},{entry['target'].rstrip('.')},{entry['ttl']}")
        else:
            hosts += [f"{ip} {name}" for ip in entry["ips"]]
    return hosts, cnames


def _rev_servers(s: Services) -> list[str]:
    out = []
    for rule in s.forwarding.list():
        if not rule.name.startswith(REV_PREFIX):
            continue
        cidr = rule.name[len(REV_PREFIX):]
        local = next((d for d in rule.domains if not d.endswith(".arpa")), "")
        server = pihole_server(rule.upstreams[0]) if rule.upstreams else ""
        out.append(f"{'true' if rule.enabled else 'false'},{cidr},{server},{local}")
    return out


def read(s: Services) -> dict:
    """The configuration in Pi-hole's shape (only what Burrow has)."""
    hosts, cnames = _hosts_and_cnames(s)
    port = s.resolver.listen[0][1] if s.resolver.listen else 53
    return {
        "dns": {
            "upstreams": [pihole_server(u) for u in s.config["upstream_dns_servers"]],
            "hosts": hosts,
            "cnameRecords": cnames,
            "revServers": _rev_servers(s),
            "port": port,
            "blocking": {"active": not s.pause.group_paused(None),
                         "mode": MODES.get(s.config["filtering.blocking_mode"], "NULL")},
        },
        "webserver": {"session": {"timeout": DEFAULT_TIMEOUT}, "api": {"max_sessions": DEFAULT_MAX_SESSIONS}},
    }


def element(config: dict, path: str) -> dict:
    """GET /api/config/<a/b/c>: the subtree at that path, nested as in the whole document."""
    keys = [k for k in path.strip("/").split("/") if k]
    node: Any = config
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            raise PiholeError(400, "bad_request", "Invalid path depth", f"no config item {'.'.join(keys)}")
        node = node[key]
    for key in reversed(keys):
        node = {key: node}
    return node


# ---- Pi-hole → Burrow (PATCH) ----------------------------------------------------------------------

def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request("Config item is invalid", f"{where}: an array of strings")
    if len(value) > MAX_ITEMS:
        raise bad_request("Config item is invalid", f"{where}: at most {MAX_ITEMS} entries")
    return value


def _records(s: Services, hosts: list[str] | None, cnames: list[str] | None) -> tuple[set[str], list]:
    """The local records the lists stand for, each checked (400 naming the entry)."""
    ttls = {}  # a host line has no TTL: an address kept keeps its own
    for entry in s.zones.store.local_entries():
        for ip in entry["ips"]:
            ttls[(entry["domain"].rstrip("."), entry["type"], ip)] = entry["ttl"]
    types: set[str] = set()
    records: list[tuple[str, str, str, int | None]] = []
    try:
        if hosts is not None:
            types |= {"A", "AAAA"}
            for i, line in enumerate(hosts):
                where = f"dns.hosts[{i}]"
                parts = line.split()
                if len(parts) < 2:
                    raise bad_request("Config item is invalid", f"{where}: \"IP NAME [NAME...]\"")
                try:
                    ip = str(ipaddress.ip_address(parts[0]))
                except ValueError:
                    raise bad_request("Config item is invalid", f"{where}: {parts[0]!r} is no IP address") from None
                rtype = "A" if ":" not in ip else "AAAA"
                for name in parts[1:]:
                    owner = local_owner(name, where)
                    local_record(owner, rtype, ip, None, {"name": where, "value": where})
                    records.append((owner, rtype, ip, ttls.get((owner, rtype, ip))))
        if cnames is not None:
            types.add("CNAME")
            for i, line in enumerate(cnames):
                where = f"dns.cnameRecords[{i}]"
                parts = [p.strip() for p in line.split(",")]
                if len(parts) not in (2, 3):
                    raise bad_request("Config item is invalid", f"{where}: \"NAME,TARGET[,TTL]\"")
                ttl = None
                if len(parts) == 3:
                    if not parts[2].isdigit():
                        raise bad_request("Config item is invalid", f"{where}: the TTL is a number of seconds")
                    ttl = int(parts[2])
                local_record(parts[0], "CNAME", parts[1], ttl, {"name": where, "value": where, "ttl": where})
                records.append((parts[0], "CNAME", parts[1], ttl))
    except RecordError as e:
        raise bad_request("Config item is invalid", f"{e.field}: {e.message}") from None
    return types, records


def _rev_rules(lines: list[str]) -> list[dict]:
    rules = []
    for i, line in enumerate(lines):
        where = f"dns.revServers[{i}]"
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4 or parts[0] not in ("true", "false"):
            raise bad_request("Config item is invalid", f"{where}: \"true|false,NETWORK,SERVER[#PORT],DOMAIN\"")
        active, cidr, server, local = parts
        try:
            net = ipaddress.ip_network(cidr, strict=False)
            zone = reverse_zone(cidr)
        except ValueError as e:
            raise bad_request("Config item is invalid", f"{where}: {e}") from None
        rule = {"name": f"{REV_PREFIX}{net}", "domains": [d for d in (local, zone) if d],
                "upstreams": [burrow_server(server, where)], "enabled": active == "true"}
        try:
            ForwardRule(rule)
        except domain.DomainError as e:
            raise bad_request("Config item is invalid", f"{where}: {e}") from None
        rules.append(rule)
    return rules


def patch(s: Services, config: dict) -> list[str]:
    """Apply a PATCH body's ``config``; the names of what changed (for the audit event)."""
    dns = config.get("dns")
    if dns is None:
        return []
    if not isinstance(dns, dict):
        raise bad_request("Config item is invalid", "dns: an object")
    changes: dict[str, Any] = {}
    if dns.get("upstreams") is not None:
        changes["upstreams"] = [burrow_server(u, f"dns.upstreams[{i}]")
                                for i, u in enumerate(_strings(dns["upstreams"], "dns.upstreams"))]
    blocking = dns.get("blocking")
    if blocking is not None and not isinstance(blocking, dict):
        raise bad_request("Config item is invalid", "dns.blocking: an object")
    blocking = blocking or {}
    mode = blocking.get("mode")
    if mode is not None:
        burrow_mode = {v: k for k, v in MODES.items()}.get(mode)
        if burrow_mode is None:
            raise bad_request("Config item is invalid", f"dns.blocking.mode: Burrow answers blocked names with "
                                                        f"one of {', '.join(MODES.values())}, not {mode!r}")
        changes["mode"] = burrow_mode
    active = blocking.get("active")
    if active is not None and not isinstance(active, bool):
        raise bad_request("Config item is invalid", "dns.blocking.active: a boolean")
    hosts = _strings(dns["hosts"], "dns.hosts") if dns.get("hosts") is not None else None
    cnames = _strings(dns["cnameRecords"], "dns.cnameRecords") if dns.get("cnameRecords") is not None else None
    types, records = _records(s, hosts, cnames)
    rev = _rev_rules(_strings(dns["revServers"], "dns.revServers")) if dns.get("revServers") is not None else None

    # Everything is checked: apply. The stores validate again and write atomically each.
    changed = []
    try:
        if "upstreams" in changes and changes["upstreams"] != list(s.config["upstream_dns_servers"]):
            s.config.update("upstreams", {"upstream_dns_servers": changes["upstreams"]})
            changed.append("dns.upstreams")
        if "mode" in changes and changes["mode"] != s.config["filtering.blocking_mode"]:
            s.config.update("blocking", {"filtering.blocking_mode": changes["mode"]})
            changed.append("dns.blocking.mode")
        if types and s.zones.store.replace_local(types, records):
            s.zones.edited()
            changed += [k for k, v in (("dns.hosts", hosts), ("dns.cnameRecords", cnames)) if v is not None]
        if rev is not None and [ForwardRule(d).stored() for d in rev] != \
                [r.stored() for r in s.forwarding.list() if r.name.startswith(REV_PREFIX)]:
            s.forwarding.replace_where(lambda r: r.name.startswith(REV_PREFIX), rev)
            changed.append("dns.revServers")
    except domain.DomainError as e:
        raise bad_request("Config item is invalid", str(e)) from None
    if active is not None and active == s.pause.group_paused(None):
        if active:
            s.pause.resume()
        else:
            s.pause.pause(None)
        changed.append("dns.blocking.active")
    return changed
