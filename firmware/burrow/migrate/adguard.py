"""AdGuardHome.yaml → :class:`~burrow.migrate.model.ForeignSetup`.

Reads the configuration file AdGuard Home keeps (``AdGuardHome.yaml``), as written by the
schema versions this reader knows: ``schema_version`` 14 (``clients`` became
``clients.persistent``) through 34, the newest known when this was written. What moved between
them, from AdGuard Home's own migrations (internal/configmigrate):

- 21/22: ``blocked_services`` (global, and per client) went from a list of ids to
  ``{ids: [...], schedule: {...}}``;
- 26: ``rewrites``, ``blocked_services``, ``blocking_mode`` (with ``blocking_ipv4/ipv6``),
  ``blocked_response_ttl``, ``protection_enabled``, ``filtering_enabled``, ``safe_search``,
  ``parental_enabled`` and ``safebrowsing_enabled`` moved from ``dns`` to ``filtering``;
- 28: ``dns.all_servers`` / ``dns.fastest_addr`` became ``dns.upstream_mode``;
- 31: a rewrite gained ``enabled``.

Both places are read, the newer first. A file older than 14 is refused with what to do (start
that AdGuard Home once: it rewrites the file in the current schema); a newer one is read as 34
and the plan says so (keys this reader does not know show as skipped).

What maps (docs/compat.md, "From AdGuard Home"): ``filters`` / ``whitelist_filters`` → block /
allow lists; ``user_rules`` → allow and deny entries (``@@`` rules allow; hosts-style lines with
a routable address become local records); ``clients.persistent`` → clients (their IP and CIDR
ids; each tag a group); ``rewrites`` → local records; ``dns.upstream_dns`` → upstreams, its
``[/domain/]server`` lines → conditional forwarding; ``bootstrap_dns``, ``ratelimit``,
``blocking_mode`` / ``blocking_ipv4`` / ``blocking_ipv6``, ``blocked_response_ttl`` and the cache's
on/off and TTL bounds → the same runtime options. Everything else the file says that changes behaviour is an
:class:`~burrow.migrate.model.Unmapped` item with the reason, never dropped in silence.

The file is hostile input: at most :data:`MAX_YAML_BYTES`, UTF-8, one document, safe loading
only (no tags that build objects), no aliases (AdGuard Home never writes them, and they are how
a small file expands into a huge one), bounded nesting and node count. An error names the key
path (``clients.persistent[2].ids``) and changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .model import (
    Client,
    DomainEntry,
    FilterList,
    ForeignSetup,
    Forward,
    Group,
    LocalRecord,
    MigrationError,
    Setting,
    Unmapped,
)

MAX_YAML_BYTES = 4 * 1024 * 1024  # a real file is a few KB; user_rules can hold thousands of lines
MAX_DEPTH = 24  # AdGuard's deepest key path is 5 levels; a deeper file is not one of its files
MAX_NODES = 400_000  # scalars + collections: 4 MB of one-line rules is ~100 000
MAX_ITEMS = 20_000  # entries in any one list we read (rules, filters, clients, rewrites)
OLDEST_SCHEMA = 14  # clients.persistent; older files are rewritten by AdGuard Home itself on start
NEWEST_SCHEMA = 34  # internal/configmigrate.LastSchemaVersion when this reader was written
FILE = "AdGuardHome.yaml"

# AdGuard's blocking_mode → Burrow's filtering.blocking_mode. "default" answers adblock-style
# rules with the unspecified address (hosts-style rules with their own address): Burrow's null.
_BLOCKING_MODES = {"default": "null", "null_ip": "null", "nxdomain": "nxdomain", "custom_ip": "custom"}

# Sections that configure AdGuard Home itself, not the answers it gives: not imported, and the
# plan says so once per section present (with why), so nothing disappears without a word.
_OWN_SECTIONS = {
    "http": "AdGuard Home's own web server (address, sessions, DoH routes); Burrow's web listener "
            "is set in burrow.toml",
    "users": "AdGuard Home's web accounts: its password hashes are not carried over; make Burrow "
             "accounts on the Users screen",
    "auth_attempts": "AdGuard Home's sign-in lockout; Burrow has its own",
    "block_auth_min": "AdGuard Home's sign-in lockout; Burrow has its own",
    "http_proxy": "the proxy AdGuard Home downloads through; Burrow downloads directly",
    "language": "AdGuard Home's page language",
    "theme": "AdGuard Home's page theme",
    "tls": "AdGuard Home's certificate and encrypted listeners; set Burrow's on the Settings "
           "screen (Encryption)",
    "querylog": "AdGuard Home's query log settings; Burrow's query log has its own settings",
    "statistics": "AdGuard Home's statistics settings; Burrow keeps its own",
    "log": "AdGuard Home's own log file",
    "os": "the system user and limits AdGuard Home runs with",
    "debug_pprof": "AdGuard Home's profiler",
    "verbose": "AdGuard Home's log detail",
}
# Top-level keys read below (or harmless): everything else is listed as unknown.
_READ_SECTIONS = {"schema_version", "dns", "filtering", "filters", "whitelist_filters",
                  "user_rules", "clients", "dhcp"}
_UNIMPORTANT = {"unsafe_use_custom_update_index_url"}


class AdGuardYAMLError(MigrationError):
    """AdGuardHome.yaml cannot be read: not YAML, not AdGuard's layout, or past a bound.
    ``field`` is the key path at fault (``clients.persistent[2].ids``), None for the file."""

    def __init__(self, path: str | None, message: str, status: int = 400):
        where = f"{FILE} {path}" if path else FILE
        super().__init__(f"{where}: {message}", status)
        self.field = path


# --- loading -----------------------------------------------------------------------------

def load_yaml(data: bytes) -> dict[str, Any]:
    """The file's top-level mapping, loaded safely within the bounds above; AdGuardYAMLError
    (400, or 413 past :data:`MAX_YAML_BYTES`) otherwise. PyYAML is imported here, on the first
    import only (docs/dependencies.md)."""
    if len(data) > MAX_YAML_BYTES:
        raise AdGuardYAMLError(None, f"the file is {len(data)} bytes; at most {MAX_YAML_BYTES} are read",
                               status=413)
    if not data.strip():
        raise AdGuardYAMLError(None, "the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise AdGuardYAMLError(None, f"not UTF-8 text (byte {e.start})") from None
    import yaml  # lazily: only an import reads YAML

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_events(yaml, text, loader_class)
        doc = yaml.load(text, Loader=loader_class)  # noqa: S506 - a safe loader (CSafeLoader/SafeLoader)
    except AdGuardYAMLError:
        raise
    except yaml.YAMLError as e:
        raise AdGuardYAMLError(None, f"not valid YAML: {_yaml_problem(e)}") from None
    except (RecursionError, ValueError, TypeError, OverflowError) as e:
        # e.g. a mapping key that is itself a list (unhashable), or a number past float range
        raise AdGuardYAMLError(None, f"not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise AdGuardYAMLError(None, "not an AdGuard Home configuration: the top level is not a mapping")
    for key in doc:
        if not isinstance(key, str):
            raise AdGuardYAMLError(None, f"has a top-level key that is not text: {key!r}")
    return doc


def _yaml_problem(e: Exception) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)


def _check_events(yaml: Any, text: str, loader_class: Any) -> None:
    """Refuse what a safe loader would still take but we will not: aliases (a few lines can
    stand for millions of nodes), more than one document, deep nesting, too many nodes. The
    event stream is read without building anything."""
    depth = nodes = docs = 0
    for event in yaml.parse(text, Loader=loader_class):
        if isinstance(event, yaml.AliasEvent):
            raise AdGuardYAMLError(None, _at(event, "uses a YAML alias (*name); AdGuard Home never writes "
                                                   "them, and they are refused"))
        if isinstance(event, yaml.DocumentStartEvent):
            docs += 1
            if docs > 1:
                raise AdGuardYAMLError(None, _at(event, "holds more than one YAML document"))
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            nodes += 1
            if depth > MAX_DEPTH:
                raise AdGuardYAMLError(None, _at(event, f"nests deeper than {MAX_DEPTH} levels"))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
        if nodes > MAX_NODES:
            raise AdGuardYAMLError(None, _at(event, f"has more than {MAX_NODES} values"), status=413)


def _at(event: Any, message: str) -> str:
    mark = getattr(event, "start_mark", None)
    return f"{message} (line {mark.line + 1})" if mark is not None else message


# --- typed access with key paths -----------------------------------------------------------

def _mapping(value: Any, path: str, *, optional: bool = True) -> dict[str, Any]:
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise AdGuardYAMLError(path, f"must be a mapping, not {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise AdGuardYAMLError(path, f"has a key that is not text: {key!r}")
    return value


def _sequence(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AdGuardYAMLError(path, f"must be a list, not {_kind(value)}")
    if len(value) > MAX_ITEMS:
        raise AdGuardYAMLError(path, f"has {len(value)} items; at most {MAX_ITEMS} are read", status=413)
    return value


def _text(value: Any, path: str, default: str = "") -> str:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise AdGuardYAMLError(path, f"must be text, not {_kind(value)}")
    return str(value)


def _flag(value: Any, path: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise AdGuardYAMLError(path, f"must be true or false, not {_kind(value)}")
    return value


def _integer(value: Any, path: str, default: int | None = None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise AdGuardYAMLError(path, f"must be a whole number, not {_kind(value)}")
    return value


def _texts(value: Any, path: str) -> list[str]:
    return [_text(v, f"{path}[{i}]") for i, v in enumerate(_sequence(value, path))]


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    return {dict: "a mapping", list: "a list", str: "text", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _pick(newer: dict[str, Any], older: dict[str, Any], key: str, newer_path: str,
          older_path: str) -> tuple[Any, str]:
    """A key that moved (schema 26: dns → filtering): the newer place if present, else the older."""
    if key in newer:
        return newer[key], f"{newer_path}.{key}"
    return older.get(key), f"{older_path}.{key}"


# --- the reader ----------------------------------------------------------------------------

def read_adguard(data: bytes) -> ForeignSetup:
    """AdGuardHome.yaml's bytes → the neutral model; AdGuardYAMLError when the file cannot be
    read (nothing is imported then)."""
    doc = load_yaml(data)
    if "schema_version" not in doc:
        raise AdGuardYAMLError("schema_version", "missing: this is not an AdGuard Home configuration file")
    version = _integer(doc["schema_version"], "schema_version")
    assert version is not None
    if version < OLDEST_SCHEMA:
        raise AdGuardYAMLError("schema_version", f"{version} is older than {OLDEST_SCHEMA}, the oldest this "
                               "import reads: start that AdGuard Home once (it rewrites its file in the "
                               "current layout) and import the file again")
    setup = ForeignSetup(source="adguard", version=f"schema {version}")
    if version > NEWEST_SCHEMA:
        setup.unmapped.append(Unmapped(
            f"schema_version {version}",
            f"newer than {NEWEST_SCHEMA}, the newest this import knows: read as {NEWEST_SCHEMA}; keys it "
            "does not know are listed here as skipped", "schema_version"))
    dns = _mapping(doc.get("dns"), "dns")
    filtering = _mapping(doc.get("filtering"), "filtering")
    _read_filters(doc, setup)
    _read_user_rules(doc, setup)
    _read_clients(doc, setup)
    _read_rewrites(dns, filtering, setup)
    _read_upstreams(dns, setup)
    _read_dns_options(dns, setup)
    _read_filtering_options(dns, filtering, setup)
    _read_dhcp(doc, setup)
    for key in doc:
        if key in _READ_SECTIONS or key in _UNIMPORTANT:
            continue
        why = _OWN_SECTIONS.get(key)
        setup.unmapped.append(Unmapped(key, why or "a key this import does not know", key))
    return setup


def _read_filters(doc: dict[str, Any], setup: ForeignSetup) -> None:
    for key, kind in (("filters", "block"), ("whitelist_filters", "allow")):
        for i, raw in enumerate(_sequence(doc.get(key), key)):
            path = f"{key}[{i}]"
            item = _mapping(raw, path, optional=False)
            url = _text(item.get("url"), f"{path}.url").strip()
            if not url:
                raise AdGuardYAMLError(f"{path}.url", "missing: a filter needs its URL or file path")
            setup.lists.append(FilterList(
                url=url, name=_text(item.get("name"), f"{path}.name").strip(),
                kind="block" if kind == "block" else "allow",
                enabled=_flag(item.get("enabled"), f"{path}.enabled", False), origin=f"{FILE} {path}"))


# A hosts-style line: an address, then one or more names (AdGuard's /etc/hosts syntax).
_HOSTS_LINE = re.compile(r"^(\S+)\s+(.+)$")
_ADBLOCK_MARKS = set("|^$*")


def _read_user_rules(doc: dict[str, Any], setup: ForeignSetup) -> None:
    """AdGuard's custom filtering rules, one per line (adblock-style, hosts-style, domains or
    /regex/), as allow/deny entries; comments (``!``, ``#``) and blank lines are not rules."""
    for i, raw in enumerate(_sequence(doc.get("user_rules"), "user_rules")):
        path = f"user_rules[{i}]"
        for line in _text(raw, path).splitlines():
            rule = line.strip()
            if not rule or rule.startswith(("!", "#")):
                continue
            _read_rule(rule, f"{FILE} {path}", setup)


def _read_rule(rule: str, origin: str, setup: ForeignSetup) -> None:
    action = "deny"
    body = rule
    if body.startswith("@@"):
        action, body = "allow", body[2:]
    hosts = _HOSTS_LINE.match(body) if action == "deny" else None
    address = _address(hosts.group(1)) if hosts else None
    if hosts and address is not None:
        names = hosts.group(2).split("#", 1)[0].split()
        for name in names:
            if address.is_unspecified or address.is_loopback:
                # 0.0.0.0 / 127.0.0.1 / :: / ::1 "is basically the same as blocking that host"
                setup.entries.append(DomainEntry(name, "deny", "exact", origin=origin))
            else:
                setup.records.append(LocalRecord(name, "A" if address.version == 4 else "AAAA",
                                                 str(address), origin=origin))
        return
    if len(body) > 2 and body.startswith("/") and body.endswith("/"):
        setup.entries.append(DomainEntry(body[1:-1], action, "regex", origin=origin))  # type: ignore[arg-type]
        return
    if body.startswith("*.") and not (_ADBLOCK_MARKS & set(body[2:])):
        setup.entries.append(DomainEntry(body, action, "wildcard", origin=origin))  # type: ignore[arg-type]
        return
    # adblock-style: ||name^, |name^, name patterns with modifiers ($client=, $dnstype=, ...) and
    # a bare name (which AdGuard matches as a pattern): the planner takes the forms Burrow's
    # entries can hold and skips the rest, saying why.
    setup.entries.append(DomainEntry(rule[2:] if action == "allow" else rule, action,  # type: ignore[arg-type]
                                     "adblock", origin=origin))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _read_clients(doc: dict[str, Any], setup: ForeignSetup) -> None:
    """Persistent clients: their ids and tags (each tag a group; AdGuard's tags are how it
    groups clients). A client's own settings are reported: Burrow keeps them per group."""
    clients = _mapping(doc.get("clients"), "clients")
    tags: dict[str, str] = {}
    for i, raw in enumerate(_sequence(clients.get("persistent"), "clients.persistent")):
        path = f"clients.persistent[{i}]"
        item = _mapping(raw, path, optional=False)
        name = _text(item.get("name"), f"{path}.name").strip()
        label = name or f"client {i + 1}"
        origin = f"{FILE} {path}"
        ids = [v.strip() for v in _texts(item.get("ids"), f"{path}.ids") if v.strip()]
        client_tags = [t.strip() for t in _texts(item.get("tags"), f"{path}.tags") if t.strip()]
        for tag in client_tags:
            tags.setdefault(tag, f"{FILE} {path}.tags")
        setup.clients.append(Client(ids=ids, name=name, groups=client_tags, origin=origin))
        _client_settings(item, path, label, origin, setup)
    for tag, origin in tags.items():
        setup.groups.append(Group(tag, description=f"AdGuard Home tag {tag}", origin=origin))
    runtime = clients.get("runtime_sources")
    if runtime is not None:
        _mapping(runtime, "clients.runtime_sources")
        setup.unmapped.append(Unmapped(
            "clients.runtime_sources", "how AdGuard Home names clients it has not saved (ARP, rDNS, "
            "WHOIS, DHCP, hosts); Burrow's query log names clients itself", f"{FILE} clients.runtime_sources"))


def _client_settings(item: dict[str, Any], path: str, label: str, origin: str, setup: ForeignSetup) -> None:
    own = not _flag(item.get("use_global_settings"), f"{path}.use_global_settings", True)
    if own:
        changed = []
        if not _flag(item.get("filtering_enabled"), f"{path}.filtering_enabled", True):
            changed.append("filtering off")
        if _flag(item.get("parental_enabled"), f"{path}.parental_enabled", False):
            changed.append("parental control")
        if _flag(item.get("safebrowsing_enabled"), f"{path}.safebrowsing_enabled", False):
            changed.append("safe browsing")
        safe = _mapping(item.get("safe_search"), f"{path}.safe_search")
        if _flag(safe.get("enabled"), f"{path}.safe_search.enabled", False) or \
                _flag(item.get("safesearch_enabled"), f"{path}.safesearch_enabled", False):  # before 19
            changed.append("safe search")
        if changed:
            setup.unmapped.append(Unmapped(
                f"client {label}: own settings ({', '.join(changed)})",
                "Burrow sets filtering per group, not per client, and has no safe search, parental "
                "control or safe browsing: put the client in a group and give the group its lists",
                origin))
    services = _services(item.get("blocked_services"), f"{path}.blocked_services")
    if services and not _flag(item.get("use_global_blocked_services"), f"{path}.use_global_blocked_services",
                              True):
        setup.unmapped.append(Unmapped(
            f"client {label}: blocked services {', '.join(services)}",
            "Burrow has no catalogue of services; block their domains with a list or deny entries "
            "for the client's group", origin))
    upstreams = _texts(item.get("upstreams"), f"{path}.upstreams")
    if any(u.strip() and not u.strip().startswith("#") for u in upstreams):
        setup.unmapped.append(Unmapped(
            f"client {label}: own upstreams", "Burrow forwards per domain (conditional forwarding), "
            "not per client; the client uses Burrow's upstreams", origin))
    for key, what in (("ignore_querylog", "left out of the query log"),
                      ("ignore_statistics", "left out of the statistics")):
        if _flag(item.get(key), f"{path}.{key}", False):
            setup.unmapped.append(Unmapped(f"client {label}: {what}",
                                           "Burrow logs and counts every client", origin))


def _services(value: Any, path: str) -> list[str]:
    """Blocked service ids: a list before schema 21/22, ``{ids: [...], schedule}`` after."""
    if isinstance(value, dict):
        return _texts(_mapping(value, path).get("ids"), f"{path}.ids")
    return _texts(value, path)


def _read_rewrites(dns: dict[str, Any], filtering: dict[str, Any], setup: ForeignSetup) -> None:
    raw, path = _pick(filtering, dns, "rewrites", "filtering", "dns")
    for i, item in enumerate(_sequence(raw, path)):
        where = f"{path}[{i}]"
        entry = _mapping(item, where, optional=False)
        domain = _text(entry.get("domain"), f"{where}.domain").strip().rstrip(".")
        answer = _text(entry.get("answer"), f"{where}.answer").strip()
        origin = f"{FILE} {where}"
        if not domain or not answer:
            raise AdGuardYAMLError(where, "a rewrite needs both domain and answer")
        if not _flag(entry.get("enabled"), f"{where}.enabled", True):  # schema < 31: always on
            setup.unmapped.append(Unmapped(f"rewrite {domain} → {answer} (disabled)",
                                           "Burrow's local records have no off switch; a disabled "
                                           "rewrite is not imported", origin))
            continue
        if answer in ("A", "AAAA"):
            setup.unmapped.append(Unmapped(
                f"rewrite {domain} → {answer}", f"an exception that keeps the upstream's {answer} answer "
                "under a wildcard rewrite; Burrow's local records have no exceptions", origin))
            continue
        address = _address(answer)
        if address is not None:
            setup.records.append(LocalRecord(domain, "A" if address.version == 4 else "AAAA",
                                             str(address), origin=origin))
        else:
            setup.records.append(LocalRecord(domain, "CNAME", answer.rstrip("."), origin=origin))


# Upstream schemes: plain DNS (udp:// is the same thing written out), DoT and DoH map;
# DoQ, DNSCrypt, HTTP/3 and TCP-only do not.
_UNSUPPORTED_SCHEMES = {
    "quic": "DNS-over-QUIC", "h3": "DNS-over-HTTP/3", "sdns": "DNSCrypt or a DNS stamp",
    "tcp": "TCP-only plain DNS",
}


def _read_upstreams(dns: dict[str, Any], setup: ForeignSetup) -> None:
    """dns.upstream_dns: one upstream per line, ``#`` comments, and ``[/a/b/]server ...`` lines
    that send names under a and b to those servers (conditional forwarding)."""
    plain: list[str] = []
    for i, raw in enumerate(_texts(dns.get("upstream_dns"), "dns.upstream_dns")):
        path = f"dns.upstream_dns[{i}]"
        origin = f"{FILE} {path}"
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[/"):
            _read_domain_upstream(line, path, origin, setup)
            continue
        for server in line.split():
            mapped = _upstream(server, origin, setup)
            if mapped:
                plain.append(mapped)
    if plain:
        setup.settings.append(Setting("upstream_dns_servers", plain, origin=f"{FILE} dns.upstream_dns"))
    upstream_file = _text(dns.get("upstream_dns_file"), "dns.upstream_dns_file").strip()
    if upstream_file:
        setup.unmapped.append(Unmapped(
            f"dns.upstream_dns_file {upstream_file}", "the upstreams are in that file on the AdGuard Home "
            "machine, not in this one; enter them on the Settings screen", f"{FILE} dns.upstream_dns_file"))
    bootstrap = []
    for i, raw in enumerate(_texts(dns.get("bootstrap_dns"), "dns.bootstrap_dns")):
        server = raw.strip()
        if not server:
            continue
        hostport = _plain(server)
        if hostport is None:
            setup.unmapped.append(Unmapped(f"bootstrap server {server}", "Burrow's bootstrap resolvers are "
                                           "plain DNS addresses", f"{FILE} dns.bootstrap_dns[{i}]"))
        else:
            bootstrap.append(hostport)
    if bootstrap:
        setup.settings.append(Setting("upstream.bootstrap", bootstrap, origin=f"{FILE} dns.bootstrap_dns"))
    for key, why in (("fallback_dns", "Burrow has no fallback upstreams: it fails over among its upstreams"),
                     ("local_ptr_upstreams", "Burrow forwards private reverse lookups only through "
                                             "conditional forwarding rules; add one per network")):
        servers = [s for s in _texts(dns.get(key), f"dns.{key}") if s.strip()]
        if servers:
            setup.unmapped.append(Unmapped(f"dns.{key} {' '.join(servers)}", why, f"{FILE} dns.{key}"))


def _read_domain_upstream(line: str, path: str, origin: str, setup: ForeignSetup) -> None:
    end = line.find("/]")
    if end < 0:
        raise AdGuardYAMLError(path, f"{line!r}: a domain-specific upstream is written [/domain/]server")
    domains = [d.strip().lower().rstrip(".") for d in line[2:end].split("/")]
    servers_text = line[end + 2:].split()
    if not servers_text:
        raise AdGuardYAMLError(path, f"{line!r}: no server after the domains")
    named = [d for d in domains if d]
    if len(named) != len(domains) or not named:
        setup.unmapped.append(Unmapped(f"upstream {line}", "[//] sends names without a dot to a server; "
                                       "Burrow's forwarding rules name domains", origin))
        if not named:
            return
    if servers_text == ["#"]:
        setup.unmapped.append(Unmapped(f"upstream {line}", "an exception (# = the general upstreams) inside a "
                                       "wider domain-specific rule; Burrow's rules have no exceptions, so a "
                                       "narrower domain simply has no rule", origin))
        return
    servers = []
    for server in servers_text:
        mapped = _upstream(server, origin, setup)
        if mapped and _plain(mapped) is not None:
            servers.append(mapped)
        elif mapped:
            setup.unmapped.append(Unmapped(f"upstream {server} for {', '.join(named)}",
                                           "Burrow's forwarding rules take plain DNS servers here", origin))
    if servers:
        setup.forwards.append(Forward(name=f"AdGuard {', '.join(named)}"[:100], domains=named,
                                      servers=servers, origin=origin))


def _upstream(server: str, origin: str, setup: ForeignSetup) -> str | None:
    """One AdGuard upstream in Burrow's spelling (``ip[:port]``, ``tls://``, ``https://``), or
    None after listing why it cannot be one."""
    scheme, sep, rest = server.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in _UNSUPPORTED_SCHEMES:
        setup.unmapped.append(Unmapped(f"upstream {server}", f"{_UNSUPPORTED_SCHEMES[scheme]} is not something "
                                       "Burrow speaks (plain DNS, DNS-over-TLS and DNS-over-HTTPS)", origin))
        return None
    if scheme in ("tls", "https"):
        return server
    if scheme == "udp":
        server = rest
    elif scheme:
        setup.unmapped.append(Unmapped(f"upstream {server}", f"unknown upstream scheme {scheme}://", origin))
        return None
    hostport = _plain(server)
    if hostport is None:
        setup.unmapped.append(Unmapped(f"upstream {server}", "a plain DNS upstream must be an IP address "
                                       "(with an optional port) in Burrow", origin))
        return None
    return hostport


def _plain(server: str) -> str | None:
    """``1.1.1.1``, ``1.1.1.1:53``, ``2606:4700::1111``, ``[2606:4700::1111]:53``, ``udp://...``
    → Burrow's ``ip:port`` text (``[v6]:port``); None if it is not an address."""
    if server.lower().startswith("udp://"):
        server = server[6:]
    port = "53"
    host = server
    if server.startswith("["):
        close = server.find("]")
        if close < 0:
            return None
        host, tail = server[1:close], server[close + 1:]
        if tail:
            if not tail.startswith(":") or not tail[1:].isdigit():
                return None
            port = tail[1:]
    elif server.count(":") == 1:
        host, port = server.split(":")
        if not port.isdigit():
            return None
    address = _address(host)
    if address is None or not 0 < int(port) < 65536:
        return None
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _read_dns_options(dns: dict[str, Any], setup: ForeignSetup) -> None:
    origin = f"{FILE} dns.ratelimit"
    rate = _integer(dns.get("ratelimit"), "dns.ratelimit")
    if rate is not None:
        if rate <= 0:
            setup.settings.append(Setting("rate_limit.enabled", False, "0 means no limit in AdGuard Home", origin))
        else:
            setup.settings.append(Setting("rate_limit.enabled", True, origin=origin))
            setup.settings.append(Setting(
                "rate_limit.rps", float(rate), f"{rate} queries a second per client; AdGuard Home counts "
                "per /24 (IPv4) or /56 (IPv6) network, Burrow per client address", origin))
    allowed = [s for s in _texts(dns.get("ratelimit_whitelist"), "dns.ratelimit_whitelist") if s.strip()]
    if allowed:
        setup.unmapped.append(Unmapped(f"dns.ratelimit_whitelist {' '.join(allowed)}",
                                       "Burrow's rate limit has no exempt clients", f"{FILE} dns.ratelimit_whitelist"))
    mode = _text(dns.get("upstream_mode"), "dns.upstream_mode").strip()
    if mode in ("parallel", "fastest_addr") or _flag(dns.get("all_servers"), "dns.all_servers", False) \
            or _flag(dns.get("fastest_addr"), "dns.fastest_addr", False):
        setup.unmapped.append(Unmapped(f"dns.upstream_mode {mode or 'parallel'}",
                                       "Burrow asks its upstreams in turn with failover, not all at once",
                                       f"{FILE} dns.upstream_mode"))
    _read_cache(dns, setup)
    for key, on, why in _DNS_KNOBS:
        value = dns.get(key)
        if isinstance(value, dict):  # edns_client_subnet: {enabled, use_custom, custom_ip} since 17
            value = value.get("enabled")
        hit = bool(value) and isinstance(value, list) if isinstance(on, list) else value is on
        if hit:
            setup.unmapped.append(Unmapped(f"dns.{key}", why, f"{FILE} dns.{key}"))
    blocked_hosts = [s for s in _texts(dns.get("blocked_hosts"), "dns.blocked_hosts") if s.strip()]
    default_blocked = {"version.bind", "id.server", "hostname.bind"}
    extra = [s for s in blocked_hosts if s not in default_blocked]
    if extra:
        setup.unmapped.append(Unmapped(f"dns.blocked_hosts {' '.join(extra)}",
                                       "questions AdGuard Home drops unanswered; add them as deny entries "
                                       "if they should be blocked", f"{FILE} dns.blocked_hosts"))


# dns keys whose non-default value changes answers and that Burrow has no option for: (key,
# the value that is reported, why). Lists are reported when not empty.
_DNS_KNOBS: tuple[tuple[str, bool | list[str], str], ...] = (
    ("enable_dnssec", True, "AdGuard sets the DO bit on every upstream query; Burrow passes on what "
                            "clients ask (upstream.proxy_dnssec)"),
    ("aaaa_disabled", True, "Burrow answers AAAA questions; there is no option to refuse them"),
    ("use_dns64", True, "Burrow does no DNS64 synthesis"),
    ("edns_client_subnet", True, "Burrow does not send EDNS Client Subnet upstream"),
    ("cache_optimistic", True, "AdGuard's optimistic cache answers expired entries first; Burrow serves "
                               "stale answers only when upstreams fail or are slow (cache.serve_stale)"),
    ("bogus_nxdomain", [], "Burrow has no bogus-NXDOMAIN list"),
    ("private_networks", [], "Burrow's private ranges are the RFC ones (local.private_reverse)"),
)


def _read_cache(dns: dict[str, Any], setup: ForeignSetup) -> None:
    """cache_enabled (with cache_size 0 meaning off before schema 30), cache_ttl_min and
    cache_ttl_max (0: no override) → Burrow's cache options. The cache's size is AdGuard's own
    tuning for its memory, not carried over."""
    enabled = _flag(dns.get("cache_enabled"), "dns.cache_enabled", True)
    size = _integer(dns.get("cache_size"), "dns.cache_size")
    if "cache_enabled" in dns or size == 0:
        setup.settings.append(Setting("cache.enabled", enabled and size != 0, origin=f"{FILE} dns.cache_enabled"))
    for key, option in (("cache_ttl_min", "cache.min_ttl"), ("cache_ttl_max", "cache.max_ttl")):
        ttl = _integer(dns.get(key), f"dns.{key}")
        if ttl:  # 0 means "no override" in AdGuard Home
            setup.settings.append(Setting(option, ttl, origin=f"{FILE} dns.{key}"))


def _read_filtering_options(dns: dict[str, Any], filtering: dict[str, Any], setup: ForeignSetup) -> None:
    def pick(key: str) -> tuple[Any, str]:
        return _pick(filtering, dns, key, "filtering", "dns")

    raw, path = pick("blocking_mode")
    mode = _text(raw, path).strip()
    if mode:
        burrow_mode = _BLOCKING_MODES.get(mode)
        if burrow_mode is None:
            why = ("Burrow answers blocked names with 0.0.0.0/::, NXDOMAIN, NODATA or custom addresses, "
                   "not REFUSED" if mode == "refused" else "a blocking mode this import does not know")
            setup.unmapped.append(Unmapped(f"{path} {mode}", why, f"{FILE} {path}"))
        else:
            note = ("AdGuard's default answers adblock-style rules with 0.0.0.0/::, as Burrow's null does"
                    if mode == "default" else "")
            setup.settings.append(Setting("filtering.blocking_mode", burrow_mode, note, f"{FILE} {path}"))
            if burrow_mode == "custom":
                for key, option in (("blocking_ipv4", "filtering.custom_ipv4"),
                                    ("blocking_ipv6", "filtering.custom_ipv6")):
                    raw_ip, ip_path = pick(key)
                    ip = _text(raw_ip, ip_path).strip()
                    if ip:
                        setup.settings.append(Setting(option, ip, origin=f"{FILE} {ip_path}"))
    raw, path = pick("blocked_response_ttl")
    ttl = _integer(raw, path)
    if ttl is not None:
        setup.settings.append(Setting("filtering.blocked_ttl", ttl, origin=f"{FILE} {path}"))
    raw, path = pick("blocked_services")
    services = _services(raw, path)
    if services:
        setup.unmapped.append(Unmapped(
            f"blocked services {', '.join(services)}", "Burrow has no catalogue of services; block their "
            "domains with a list or deny entries", f"{FILE} {path}"))
    for key, what, default in (("protection_enabled", "protection off", True),
                               ("filtering_enabled", "filtering off", True)):
        raw, path = pick(key)
        if not _flag(raw, path, default):
            setup.unmapped.append(Unmapped(f"{path}: {what}", "Burrow's blocking stays on after the import; "
                                           "pause it on the dashboard if you want it off", f"{FILE} {path}"))
    for key, what in (("parental_enabled", "parental control"), ("safebrowsing_enabled", "safe browsing")):
        raw, path = pick(key)
        if _flag(raw, path, False):
            setup.unmapped.append(Unmapped(f"{path}: {what}", f"AdGuard's {what} is a lookup service of "
                                           "AdGuard's; Burrow has none (threat feeds are lists)", f"{FILE} {path}"))
    raw, path = pick("safe_search")
    if isinstance(raw, bool):  # before schema 18: dns.safesearch_enabled, read below
        raw = {"enabled": raw}
    safe = _mapping(raw, path)
    if _flag(safe.get("enabled"), f"{path}.enabled", False) or \
            _flag(dns.get("safesearch_enabled"), "dns.safesearch_enabled", False):
        setup.unmapped.append(Unmapped("safe search", "Burrow does not rewrite search engines to their "
                                       "safe-search addresses", f"{FILE} {path}"))


def _read_dhcp(doc: dict[str, Any], setup: ForeignSetup) -> None:
    dhcp = _mapping(doc.get("dhcp"), "dhcp")
    if _flag(dhcp.get("enabled"), "dhcp.enabled", False):
        setup.unmapped.append(Unmapped("dhcp (enabled)", "Burrow is not a DHCP server; keep the router's "
                                       "(or AdGuard Home's) DHCP and point it at Burrow for DNS", f"{FILE} dhcp"))
