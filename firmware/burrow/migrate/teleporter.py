"""Pi-hole v6 Teleporter archives: read one into the migration model, write one of Burrow's state.

The format is Pi-hole FTL v6's own (src/zip/teleporter.c there): a zip whose members are named
after the files they hold, without the leading slash. Pi-hole reads three of them on import:

- ``etc/pihole/pihole.toml``: the whole configuration. An import lays it over the running one,
  so a file with only some keys changes only those.
- ``etc/pihole/gravity.db``: a SQLite database with the tables ``group``, ``adlist``,
  ``adlist_by_group``, ``domainlist``, ``domainlist_by_group``, ``client`` and
  ``client_by_group`` (the rest of gravity.db is left out). Pi-hole copies each table into its
  own with ``INSERT OR REPLACE ... SELECT *``, so every table must have Pi-hole's columns in
  Pi-hole's order (gravity.db.sql of pi-hole/pi-hole, version 16+).
- ``etc/pihole/dhcp.leases``.

Its export also holds ``etc/hosts``, ``etc/dnsmasq.d/*`` and ``etc/pihole/pihole-FTL.db`` (a few
tables of the query database), which its import ignores; so does Burrow's, saying so.

Reading treats the archive as hostile: bounded size, member count, per-member and total
uncompressed size (counted while inflating, not taken from the headers), no absolute paths, no
``..``, no backslashes; gravity.db is written to a private temporary file and opened read-only
with a progress limit (a crafted view cannot run forever), never opened inside the zip.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import re
import sqlite3
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .model import (
    Client, DomainEntry, FilterList, ForeignSetup, Forward, Group, LocalRecord, MigrationError, Setting,
    Unmapped,
)

if TYPE_CHECKING:
    from ..filtering.groups import Groups
    from ..filtering.sources import ListStore
    from ..filtering.userlists import UserList
    from ..forwarding import ForwardRules
    from ..zones.store import ZoneStore

MAX_ARCHIVE_BYTES = 16 * 1024 * 1024  # an upload: Pi-hole's own exports are a few hundred KiB
MAX_MEMBERS = 512
MAX_MEMBER_BYTES = 64 * 1024 * 1024  # one member, inflated
MAX_TOTAL_BYTES = 128 * 1024 * 1024  # all members read, inflated
MAX_TOML_BYTES = 4 * 1024 * 1024
MAX_ROWS = 200_000  # per gravity table
SQLITE_STEPS = 50_000_000  # VM steps gravity.db's reads may take in all (a crafted view stops)

TOML = "etc/pihole/pihole.toml"
GRAVITY = "etc/pihole/gravity.db"
LEASES = "etc/pihole/dhcp.leases"
GRAVITY_TABLES = ("group", "adlist", "adlist_by_group", "domainlist", "domainlist_by_group", "client",
                  "client_by_group")

# Pi-hole v6's columns, in its order (gravity.db.sql, schema version 16+): what Burrow writes.
GRAVITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "group": ("id", "enabled", "name", "date_added", "date_modified", "description"),
    "adlist": ("id", "address", "enabled", "date_added", "date_modified", "comment", "date_updated",
               "number", "invalid_domains", "status", "abp_entries", "type"),
    "adlist_by_group": ("adlist_id", "group_id"),
    "domainlist": ("id", "type", "domain", "enabled", "date_added", "date_modified", "comment"),
    "domainlist_by_group": ("domainlist_id", "group_id"),
    "client": ("id", "ip", "date_added", "date_modified", "comment"),
    "client_by_group": ("client_id", "group_id"),
}
_DDL = {
    "group": 'CREATE TABLE "group" (id INTEGER PRIMARY KEY AUTOINCREMENT, enabled BOOLEAN NOT NULL '
             "DEFAULT 1, name TEXT UNIQUE NOT NULL, date_added INTEGER NOT NULL, date_modified "
             "INTEGER NOT NULL, description TEXT)",
    "adlist": "CREATE TABLE adlist (id INTEGER PRIMARY KEY AUTOINCREMENT, address TEXT UNIQUE NOT NULL, "
              "enabled BOOLEAN NOT NULL DEFAULT 1, date_added INTEGER NOT NULL, date_modified INTEGER "
              "NOT NULL, comment TEXT, date_updated INTEGER, number INTEGER NOT NULL DEFAULT 0, "
              "invalid_domains INTEGER NOT NULL DEFAULT 0, status INTEGER NOT NULL DEFAULT 0, "
              "abp_entries INTEGER NOT NULL DEFAULT 0, type INTEGER NOT NULL DEFAULT 0)",
    "adlist_by_group": "CREATE TABLE adlist_by_group (adlist_id INTEGER NOT NULL, group_id INTEGER NOT "
                       "NULL, PRIMARY KEY (adlist_id, group_id))",
    "domainlist": "CREATE TABLE domainlist (id INTEGER PRIMARY KEY AUTOINCREMENT, type INTEGER NOT NULL "
                  "DEFAULT 0, domain TEXT NOT NULL, enabled BOOLEAN NOT NULL DEFAULT 1, date_added "
                  "INTEGER NOT NULL, date_modified INTEGER NOT NULL, comment TEXT, UNIQUE(domain, type))",
    "domainlist_by_group": "CREATE TABLE domainlist_by_group (domainlist_id INTEGER NOT NULL, group_id "
                           "INTEGER NOT NULL, PRIMARY KEY (domainlist_id, group_id))",
    "client": "CREATE TABLE client (id INTEGER PRIMARY KEY AUTOINCREMENT, ip TEXT NOT NULL UNIQUE, "
              "date_added INTEGER NOT NULL, date_modified INTEGER NOT NULL, comment TEXT)",
    "client_by_group": "CREATE TABLE client_by_group (client_id INTEGER NOT NULL, group_id INTEGER NOT "
                       "NULL, PRIMARY KEY (client_id, group_id))",
}
# domainlist.type: 0 exact allow, 1 exact deny, 2 regex allow, 3 regex deny
_DOMAIN_TYPES = {0: ("allow", "exact"), 1: ("deny", "exact"), 2: ("allow", "regex"), 3: ("deny", "regex")}
BLOCKING_MODES = {"NULL": "null", "NXDOMAIN": "nxdomain", "NODATA": "nodata"}  # Pi-hole → Burrow
_POSIX_CLASSES = {"[:digit:]": r"\d", "[:alpha:]": "a-zA-Z", "[:alnum:]": "a-zA-Z0-9", "[:lower:]": "a-z",
                  "[:upper:]": "A-Z", "[:space:]": r"\s", "[:xdigit:]": "0-9a-fA-F"}


# ---- the archive --------------------------------------------------------------------------------

def safe_member_name(name: str) -> bool:
    """A relative path without '..', backslashes or a drive: the only names an archive may hold."""
    if not name or name.startswith("/") or "\\" in name or "\x00" in name or re.match(r"^[A-Za-z]:", name):
        return False
    return ".." not in name.split("/")


def read_members(data: bytes, wanted: Iterable[str]) -> tuple[dict[str, bytes], list[str]]:
    """({name: content} of the ``wanted`` members present, every other member's name), after
    checking the whole archive; MigrationError (413 past a size bound) otherwise."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise MigrationError(f"the archive is larger than {MAX_ARCHIVE_BYTES} bytes", 413)
    if data[:2] == b"\x1f\x8b":
        raise MigrationError("this is a gzip file, not a zip: a Pi-hole v5 Teleporter archive (tar.gz)? "
                             "Export one from Pi-hole v6 (Settings → Teleporter)")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise MigrationError(f"not a zip archive ({e}): export a Teleporter archive from Pi-hole v6") from None
    wanted = set(wanted)
    out: dict[str, bytes] = {}
    others: list[str] = []
    total = 0
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise MigrationError(f"the archive has more than {MAX_MEMBERS} members")
        for info in infos:
            if not safe_member_name(info.filename):
                raise MigrationError(f"refused member name {info.filename!r} (absolute, '..' or "
                                     "backslash): not a Teleporter archive")
            if info.is_dir():
                continue
            if info.filename not in wanted:
                others.append(info.filename)
                continue
            if info.filename in out:
                raise MigrationError(f"{info.filename} is in the archive twice")
            if info.flag_bits & 0x1:
                raise MigrationError(f"{info.filename} is encrypted")
            chunks, size = [], 0
            try:
                with zf.open(info) as f:
                    while True:
                        piece = f.read(1024 * 1024)
                        if not piece:
                            break
                        size += len(piece)
                        total += len(piece)
                        if size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
                            raise MigrationError(f"{info.filename} inflates past the size bound "
                                                 f"({MAX_MEMBER_BYTES} bytes a member, {MAX_TOTAL_BYTES} "
                                                 "in all): refused as a zip bomb", 413)
                        chunks.append(piece)
            except MigrationError:
                raise
            except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError) as e:
                raise MigrationError(f"{info.filename} is damaged or uses an unsupported "
                                     f"compression ({e})") from None
            out[info.filename] = b"".join(chunks)
    return out, others


# ---- reading ------------------------------------------------------------------------------------

def read_teleporter(data: bytes) -> ForeignSetup:
    """The setup a Pi-hole v6 Teleporter archive describes. MigrationError when ``data`` is not
    one (or is hostile); everything in it Burrow does not take is an Unmapped item."""
    members, others = read_members(data, (TOML, GRAVITY, LEASES))
    if TOML not in members and GRAVITY not in members:
        raise MigrationError(f"not a Pi-hole v6 Teleporter archive: it has neither {TOML} nor {GRAVITY}")
    setup = ForeignSetup("pihole")
    if GRAVITY in members:
        _read_gravity(members[GRAVITY], setup)
    else:
        setup.unmapped.append(Unmapped(GRAVITY, "not in the archive: no lists, domains, groups or "
                                       "clients to import", GRAVITY))
    if TOML in members:
        _read_toml(members[TOML], setup)
    else:
        setup.unmapped.append(Unmapped(TOML, "not in the archive: no settings or local records to "
                                       "import", TOML))
    if LEASES in members:
        setup.unmapped.append(Unmapped("DHCP leases", "Burrow serves no DHCP", LEASES))
    for name in others:
        if name.startswith("etc/dnsmasq.d/"):
            why = "a hand-written dnsmasq file: Burrow is not dnsmasq"
        elif name == "etc/hosts":
            why = "the Pi-hole machine's own hosts file, not a Pi-hole setting (its local records are in pihole.toml)"
        elif name == "etc/pihole/pihole-FTL.db":
            why = "the query database's tables (network, aliasclients, messages): history, not settings"
        else:
            why = "not a file Pi-hole's Teleporter imports either"
        setup.unmapped.append(Unmapped(name, why, name))
    return setup


def _read_gravity(content: bytes, setup: ForeignSetup) -> None:
    if not content.startswith(b"SQLite format 3\x00"):
        raise MigrationError(f"{GRAVITY} is not a SQLite database")
    with tempfile.TemporaryDirectory(prefix="burrow-teleporter-") as tmp:
        path = os.path.join(tmp, "gravity.db")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        except sqlite3.Error as e:
            raise MigrationError(f"{GRAVITY} cannot be opened: {e}") from None
        try:
            steps = [0]

            def progress() -> int:
                steps[0] += 1
                return 1 if steps[0] * 1000 > SQLITE_STEPS else 0

            conn.set_progress_handler(progress, 1000)
            conn.execute("PRAGMA trusted_schema = OFF")
            tables = _gravity_tables(conn)
        except sqlite3.Error as e:
            raise MigrationError(f"{GRAVITY} is damaged or not Pi-hole's gravity database: {e}") from None
        finally:
            conn.close()
    _gravity_setup(tables, setup)


def _gravity_tables(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        raise MigrationError(f"{GRAVITY} fails SQLite's integrity check")
    kinds = dict(conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"))
    missing = [t for t in ("group", "adlist", "domainlist") if kinds.get(t) != "table"]
    if missing:
        raise MigrationError(f"{GRAVITY} is not Pi-hole's gravity database (no table {missing[0]!r})")
    out: dict[str, list[dict[str, Any]]] = {}
    for table in GRAVITY_TABLES:
        if kinds.get(table) != "table":
            out[table] = []
            continue
        cols = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
        need = {c for c in GRAVITY_COLUMNS[table] if c in ("id", "name", "address", "domain", "ip", "type",
                                                             "adlist_id", "domainlist_id", "client_id",
                                                             "group_id")}
        if table == "adlist":
            need.discard("type")  # older than version 16: block lists only
        if need - cols:
            raise MigrationError(f"{GRAVITY}: table {table} lacks column(s) {sorted(need - cols)}")
        wanted = [c for c in GRAVITY_COLUMNS[table] if c in cols]
        rows = conn.execute(f'SELECT {", ".join(wanted)} FROM "{table}" LIMIT {MAX_ROWS + 1}').fetchall()
        if len(rows) > MAX_ROWS:
            raise MigrationError(f"{GRAVITY}: table {table} has more than {MAX_ROWS} rows", 413)
        out[table] = [dict(zip(wanted, r)) for r in rows]
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _gravity_setup(t: dict[str, list[dict[str, Any]]], setup: ForeignSetup) -> None:
    names: dict[int, str] = {}
    enabled_ids: set[int] = set()
    for row in t["group"]:
        gid, name = row["id"], _text(row["name"]).strip()
        if not isinstance(gid, int) or not name:
            setup.unmapped.append(Unmapped(f"group {gid}", "has no name", f"{GRAVITY} group id {gid}"))
            continue
        names[gid] = name
        on = bool(row.get("enabled", 1))
        if on:
            enabled_ids.add(gid)
        setup.groups.append(Group(name, _text(row.get("description")), on, gid == 0,
                                  f"{GRAVITY} group id {gid}"))

    def links(table: str, column: str) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for row in t[table]:
            out.setdefault(row[column], set()).add(row["group_id"])
        return out

    def groups_of(ids: set[int]) -> list[str] | None:
        if enabled_ids and enabled_ids <= ids:
            return None  # every group there: every client here
        return [names[i] for i in sorted(ids) if i in names]

    adlist_groups = links("adlist_by_group", "adlist_id")
    for row in t["adlist"]:
        kind: Literal["block", "allow"] = "allow" if row.get("type") == 1 else "block"
        setup.lists.append(FilterList(_text(row["address"]).strip(), _text(row.get("comment")), kind,
                                      bool(row.get("enabled", 1)), groups_of(adlist_groups.get(row["id"], set())),
                                      f"{GRAVITY} adlist id {row['id']}"))
    domain_groups = links("domainlist_by_group", "domainlist_id")
    for row in t["domainlist"]:
        origin = f"{GRAVITY} domainlist id {row['id']}"
        value = _text(row["domain"]).strip()
        meaning = _DOMAIN_TYPES.get(row["type"])
        if meaning is None:
            setup.unmapped.append(Unmapped(value, f"unknown domainlist type {row['type']!r}", origin))
            continue
        action, syntax = meaning
        if syntax == "regex":
            value, why = pihole_regex(value)
            if why:
                setup.unmapped.append(Unmapped(_text(row["domain"]), why, origin))
                continue
        for text, form in _entry_forms(value, syntax):
            setup.entries.append(DomainEntry(text, action, form, bool(row.get("enabled", 1)),  # type: ignore[arg-type]
                                             groups_of(domain_groups.get(row["id"], set())),
                                             _text(row.get("comment")), origin))
    client_groups = links("client_by_group", "client_id")
    for row in t["client"]:
        ids = client_groups.get(row["id"], set())
        setup.clients.append(Client([_text(row["ip"]).strip()], _text(row.get("comment")),
                                    [names[i] for i in sorted(ids) if i in names],
                                    f"{GRAVITY} client id {row['id']}"))


_NAME_RE = r"((?:[a-z0-9_-]+\\\.)*[a-z0-9_-]+)"
_BELOW = re.compile(r"^\\\." + _NAME_RE + r"\$$", re.IGNORECASE)  # \.example\.com$
_AT_OR_BELOW = re.compile(r"^\(\\\.\|\^\)" + _NAME_RE + r"\$$", re.IGNORECASE)  # (\.|^)example\.com$


def _entry_forms(value: str, syntax: str) -> list[tuple[str, str]]:
    r"""The entries a domainlist row stands for: Pi-hole's own wildcard regex ``(\.|^)name$`` is
    the name and every name below it, ``\.name$`` the names below it (Burrow's ``*.name``)."""
    if syntax == "regex":
        m = _AT_OR_BELOW.match(value)
        if m:
            name = m.group(1).replace("\\.", ".").lower()
            return [(name, "exact"), ("*." + name, "wildcard")]
        m = _BELOW.match(value)
        if m:
            return [("*." + m.group(1).replace("\\.", ".").lower(), "wildcard")]
    return [(value, syntax)]


def pihole_regex(pattern: str) -> tuple[str, str]:
    """(Python regex, "") for a Pi-hole regex, or ("", why) when it cannot be one: Pi-hole's
    ``;querytype=``, ``;invert``, ``;reply=`` extensions act on more than the name."""
    body, _, ext = pattern.partition(";")
    if ext:
        return "", f"Pi-hole regex extension ;{ext}: Burrow's entries match the name only"
    for posix, py in _POSIX_CLASSES.items():
        body = body.replace(posix, py)
    if "[:" in body and ":]" in body:
        return "", "a POSIX character class Burrow's regular expressions do not have"
    return body, ""


def _pihole_server(text: str) -> str:
    """``ip[#port]`` (dnsmasq's syntax) as Burrow's ``ip:port``; ValueError for a host name."""
    host, _, port = text.strip().partition("#")
    host = host.strip().strip("[]")
    address = ipaddress.ip_address(host)
    number = int(port) if port else 53
    if not 0 < number < 65536:
        raise ValueError(f"port {port}")
    return f"[{address}]:{number}" if address.version == 6 else f"{address}:{number}"


def _table(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _read_toml(content: bytes, setup: ForeignSetup) -> None:
    if len(content) > MAX_TOML_BYTES:
        raise MigrationError(f"{TOML} is larger than {MAX_TOML_BYTES} bytes", 413)
    try:
        doc = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as e:
        raise MigrationError(f"{TOML} is not valid TOML: {e}") from None
    setup.version = _text(_table(doc, "config").get("version"))
    dns = _table(doc, "dns")

    upstreams, origin = [], f"{TOML} dns.upstreams"
    for text in _strings(dns.get("upstreams")):
        try:
            upstreams.append(_pihole_server(text))
        except ValueError:
            setup.unmapped.append(Unmapped(f"upstream {text}", "Burrow's upstreams are IP addresses "
                                           "(host names only for tls:// and https://)", origin))
    if upstreams:
        setup.settings.append(Setting("upstream_dns_servers", list(dict.fromkeys(upstreams)), origin=origin))

    for i, line in enumerate(_strings(dns.get("hosts"))):
        origin = f"{TOML} dns.hosts[{i}]"
        parts = line.split("#", 1)[0].split()
        try:
            address = ipaddress.ip_address(parts[0]) if len(parts) >= 2 else None
        except ValueError:
            address = None
        if address is None:
            setup.unmapped.append(Unmapped(line, "not \"IP HOSTNAME [HOSTNAME...]\"", origin))
            continue
        for host in parts[1:]:
            setup.records.append(LocalRecord(host, "A" if address.version == 4 else "AAAA", str(address),
                                             origin=origin))
    for i, line in enumerate(_strings(dns.get("cnameRecords"))):
        origin = f"{TOML} dns.cnameRecords[{i}]"
        parts = [p.strip() for p in line.split(",") if p.strip()]
        ttl = int(parts.pop()) if len(parts) >= 3 and parts[-1].isdigit() else None
        if len(parts) < 2:
            setup.unmapped.append(Unmapped(line, "not \"CNAME,TARGET[,TTL]\"", origin))
            continue
        target = parts.pop()
        for name in parts:
            setup.records.append(LocalRecord(name, "CNAME", target, ttl, origin))
    for i, line in enumerate(_strings(dns.get("revServers"))):
        origin = f"{TOML} dns.revServers[{i}]"
        parts = [p.strip() for p in line.split(",")]
        try:
            if len(parts) < 3 or parts[0] not in ("true", "false"):
                raise ValueError("not \"<enabled>,<cidr>,<server>[#port][,<domain>]\"")
            network = str(ipaddress.ip_network(parts[1], strict=False))
            server = _pihole_server(parts[2])
        except ValueError as e:
            setup.unmapped.append(Unmapped(line, f"conditional forwarding not understood: {e}", origin))
            continue
        domain = parts[3] if len(parts) > 3 else ""
        setup.forwards.append(Forward(f"Pi-hole {domain or network}", [domain] if domain else [], [server],
                                      network, parts[0] == "true", origin))

    blocking = _table(dns, "blocking")
    mode = blocking.get("mode")
    if isinstance(mode, str):
        origin = f"{TOML} dns.blocking.mode"
        if mode in BLOCKING_MODES:
            setup.settings.append(Setting("filtering.blocking_mode", BLOCKING_MODES[mode], origin=origin))
        else:
            setup.unmapped.append(Unmapped(f"blocking mode {mode}", "Burrow does not answer blocked names "
                                           "with its own address (modes: null, nxdomain, nodata, or custom "
                                           "addresses set by hand)", origin))
    if blocking.get("active") is False:
        setup.unmapped.append(Unmapped("blocking switched off", "not imported: pause blocking in Burrow "
                                       "if you want it off", f"{TOML} dns.blocking.active"))
    rate = _table(dns, "rateLimit")
    count, interval = rate.get("count"), rate.get("interval")
    if isinstance(count, int) and isinstance(interval, int):
        origin = f"{TOML} dns.rateLimit"
        if count <= 0 or interval <= 0:
            setup.settings.append(Setting("rate_limit.enabled", False, "Pi-hole's 0 means no limit", origin))
        else:
            note = f"{count} queries per {interval} s"
            setup.settings.append(Setting("rate_limit.enabled", True, note, origin))
            setup.settings.append(Setting("rate_limit.rps", round(count / interval, 3), note, origin))
            setup.settings.append(Setting("rate_limit.burst", count, note, origin))
            setup.settings.append(Setting("rate_limit.action", "refuse",
                                          "Pi-hole answers REFUSED past its limit", origin))

    misc = _table(doc, "misc")
    for i, line in enumerate(_strings(misc.get("dnsmasq_lines"))):
        origin = f"{TOML} misc.dnsmasq_lines[{i}]"
        forward = _dnsmasq_server(line, origin)
        if forward is not None:
            setup.forwards.append(forward)
        elif line.strip() and not line.strip().startswith("#"):
            setup.unmapped.append(Unmapped(line, "a dnsmasq option: Burrow is not dnsmasq", origin))
    dhcp = _table(doc, "dhcp")
    if dhcp.get("active") is True or _strings(dhcp.get("hosts")):
        setup.unmapped.append(Unmapped("DHCP server", "Burrow serves no DHCP (static leases and the "
                                       "server's settings stay with Pi-hole or move to your router)",
                                       f"{TOML} dhcp"))
    others = sorted({k for k in doc if k not in ("config", "dns", "misc", "dhcp")}
                    | {f"dns.{k}" for k in dns if k not in _DNS_READ}
                    | {f"misc.{k}" for k in misc if k != "dnsmasq_lines"})
    if others:
        setup.unmapped.append(Unmapped(
            "other pihole.toml options", "Pi-hole's own settings with no Burrow counterpart read here "
            f"(its web server, NTP, resolver and database options...): {', '.join(others)}", TOML))


# The [dns] keys read above (the rest is listed as one skipped item).
_DNS_READ = frozenset(("upstreams", "hosts", "cnameRecords", "revServers", "blocking", "rateLimit"))

_SERVER_LINE = re.compile(r"^\s*server=/([^#\s]+)/([0-9A-Fa-f.:\[\]]+(?:#\d+)?)\s*$")


def _dnsmasq_server(line: str, origin: str) -> Forward | None:
    m = _SERVER_LINE.match(line)
    if not m:
        return None
    try:
        server = _pihole_server(m.group(2))
    except ValueError:
        return None
    domains = [d for d in m.group(1).split("/") if d]
    return Forward(f"Pi-hole {domains[0]}", domains, [server], None, True, origin)


# ---- writing ------------------------------------------------------------------------------------

@dataclass
class TeleporterExport:
    """A written archive: ``filename`` as Pi-hole names its own, ``data`` the zip, and
    ``left_out``: what of Burrow's state Pi-hole cannot hold (each with why)."""

    filename: str
    data: bytes
    left_out: list[str] = field(default_factory=list)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(type(value))


def toml_text(tables: dict[str, dict[str, Any]]) -> str:
    """``{"dns": {...}, "dns.blocking": {...}}`` as TOML text (strings, ints, bools, lists)."""
    out = ["# Written by Burrow: the settings Pi-hole v6 can hold (its Teleporter import lays them over",
           "# the running configuration; every other option keeps its value)."]
    for name, values in tables.items():
        out.append(f"\n[{name}]")
        out += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(out) + "\n"


def _regex_of_wildcard(entry: str) -> str:
    return r"\." + re.escape(entry[2:]).replace(r"\-", "-") + "$"


def gravity_bytes(groups: list[tuple[str, str]], adlists: list[dict[str, Any]],
                  domains: list[dict[str, Any]], clients: list[dict[str, Any]], now: int) -> bytes:
    """A gravity.db with Pi-hole's seven Teleporter tables. ``groups``: (name, description) of the
    groups besides Default (id 0); each item's ``groups`` holds group ids."""
    conn = sqlite3.connect(":memory:")
    try:
        for ddl in _DDL.values():
            conn.execute(ddl)
        conn.execute('INSERT INTO "group" VALUES (0, 1, ?, ?, ?, ?)', ("Default", now, now, "The default group"))
        conn.executemany('INSERT INTO "group" VALUES (?, 1, ?, ?, ?, ?)',
                         [(i, n, now, now, d or None) for i, (n, d) in enumerate(groups, 1)])
        for i, a in enumerate(adlists, 1):
            conn.execute("INSERT INTO adlist VALUES (?, ?, ?, ?, ?, ?, NULL, 0, 0, 0, 0, ?)",
                         (i, a["address"], int(a["enabled"]), now, now, a["comment"], a["type"]))
            conn.executemany("INSERT INTO adlist_by_group VALUES (?, ?)", [(i, g) for g in a["groups"]])
        for i, d in enumerate(domains, 1):
            conn.execute("INSERT INTO domainlist VALUES (?, ?, ?, 1, ?, ?, ?)",
                         (i, d["type"], d["domain"], now, now, d.get("comment")))
            conn.executemany("INSERT INTO domainlist_by_group VALUES (?, ?)", [(i, g) for g in d["groups"]])
        for i, c in enumerate(clients, 1):
            conn.execute("INSERT INTO client VALUES (?, ?, ?, ?, ?)", (i, c["ip"], now, now, c["comment"] or None))
            conn.executemany("INSERT INTO client_by_group VALUES (?, ?)", [(i, g) for g in c["groups"]])
        conn.commit()
        return conn.serialize()
    finally:
        conn.close()


def export_teleporter(*, groups: Groups, allow_list: UserList, deny_list: UserList, list_store: ListStore,
                      zone_store: ZoneStore, forwarding: ForwardRules, config: Any,
                      hostname: str = "burrow", now: float | None = None) -> TeleporterExport:
    """A Pi-hole v6 Teleporter zip of Burrow's state: groups, clients, lists, allow/deny entries
    (gravity.db); upstreams, local records, conditional forwarding, blocking mode, rate limit
    (pihole.toml). Reads the stores (loop thread); returns what Pi-hole cannot hold in
    ``left_out``."""
    from ..forwarding.rules import PRESET_KEY, ROUTER_RULE_NAME
    stamp = time.time() if now is None else now
    ts = int(stamp)
    left_out: list[str] = []

    ours = [g for g in groups.all_groups() if not g.get("builtin")]
    gid = {"default": 0} | {g["name"]: i for i, g in enumerate(ours, 1)}
    every = sorted(gid.values())

    def ids(names: Iterable[str] | None) -> list[int]:
        names = list(names or [])
        return every if not names else sorted({gid[n] for n in names if n in gid})

    adlists: list[dict[str, Any]] = []
    for row in list_store.list():
        address = row["source"]
        if not address.lower().startswith(("http://", "https://")):
            address = "file://" + address
            left_out.append(f"list {row['name']}: a local file here; written as {address}, which "
                            "must exist on the Pi-hole")
        if row["kind"] == "threat":
            left_out.append(f"list {row['name']}: a threat list here, a plain block list in Pi-hole")
        if any(a["address"] == address for a in adlists):  # Pi-hole's address is UNIQUE
            left_out.append(f"list {row['name']}: the same source as another list")
            continue
        adlists.append({"address": address, "enabled": row["enabled"], "comment": row["name"],
                        "type": 1 if row["kind"] == "allow" else 0, "groups": ids(row["groups"])})
    domains = []
    for userlist, exact_type, regex_type in ((allow_list, 0, 2), (deny_list, 1, 3)):
        summary = userlist.summary()
        limited = summary.get("groups", {})
        for text in summary["exact"]:
            domains.append({"type": exact_type, "domain": text, "groups": ids(limited.get(text))})
        for text in summary["wildcard"]:
            domains.append({"type": regex_type, "domain": _regex_of_wildcard(text), "groups": ids(limited.get(text)),
                            "comment": f"Burrow wildcard {text}"})
        for text in summary["regex"]:
            domains.append({"type": regex_type, "domain": text, "groups": ids(limited.get(text))})
    unique: dict[tuple[int, str], dict[str, Any]] = {}  # Pi-hole's domainlist is UNIQUE(domain, type)
    for d in domains:
        unique.setdefault((d["type"], d["domain"]), d)
    domains = list(unique.values())
    clients = [{"ip": c["client"], "comment": c.get("name") or "", "groups": ids(c["groups"])}
               for c in groups.clients]
    gravity = gravity_bytes([(g["name"], g.get("description") or "") for g in ours], adlists, domains,
                            clients, ts)

    dns: dict[str, Any] = {}
    upstreams = []
    for text in config["upstream_dns_servers"]:
        server = to_dnsmasq_server(text)
        if server is None:
            left_out.append(f"upstream {text}: Pi-hole forwards plain DNS only")
            continue
        upstreams.append(server)
    if upstreams:
        dns["upstreams"] = upstreams
    hosts, cnames = [], []
    for entry in zone_store.local_entries():
        name = entry["domain"].rstrip(".")
        if entry["wildcard"]:
            left_out.append(f"local record {name}: Pi-hole's local records have no wildcards")
            continue
        if entry["type"] == "CNAME":
            cnames.append(f"{name},{entry['target'].rstrip('.')},{entry['ttl']}")
        else:
            hosts += [f"{ip} {name}" for ip in entry["ips"]]
    dns["hosts"] = hosts
    dns["cnameRecords"] = cnames
    rev, lines = [], []
    preset = forwarding.db.get(PRESET_KEY) or {}
    for rule in forwarding.list():
        if not rule.enabled:
            left_out.append(f"forwarding rule {rule.name}: switched off here")
            continue
        if rule.client_cidrs or rule.query_types:
            left_out.append(f"forwarding rule {rule.name}: Pi-hole cannot limit forwarding to some "
                            "clients or query types")
            continue
        servers = [s for s in map(to_dnsmasq_server, rule.upstreams) if s is not None]
        if not servers:
            left_out.append(f"forwarding rule {rule.name}: Pi-hole forwards plain DNS only")
            continue
        if rule.name == ROUTER_RULE_NAME and preset.get("network"):
            domain = [preset["domain"]] if preset.get("domain") else []
            rev.append(",".join(["true", preset["network"], servers[0]] + domain))
            continue
        patterns = [d[2:] if d.startswith("*.") else d for d in rule.domains]
        if patterns:
            lines.append(f"server=/{'/'.join(patterns)}/{servers[0]}")
    dns["revServers"] = rev
    tables: dict[str, dict[str, Any]] = {"dns": dns}
    mode = config["filtering.blocking_mode"]
    if mode == "custom":
        tables["dns.blocking"] = {"mode": "IP"}
        tables["dns.reply.blocking"] = {"force4": True, "IPv4": config["filtering.custom_ipv4"],
                                        "force6": True, "IPv6": config["filtering.custom_ipv6"]}
    else:
        tables["dns.blocking"] = {"mode": {v: k for k, v in BLOCKING_MODES.items()}[mode]}
    if config["rate_limit.enabled"]:
        tables["dns.rateLimit"] = {"count": max(1, round(config["rate_limit.rps"] * 60)), "interval": 60}
    else:
        tables["dns.rateLimit"] = {"count": 0, "interval": 0}
    if lines:
        tables["misc"] = {"dnsmasq_lines": lines}
    toml = toml_text(tables)

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr(_member(TOML, stamp), toml)
        zf.writestr(_member(GRAVITY, stamp), gravity)
    name = f"pi-hole_{hostname}_teleporter_{time.strftime('%Y-%m-%d_%H-%M-%S', time.gmtime(stamp))}.zip"
    return TeleporterExport(name, buf.getvalue(), left_out)


def to_dnsmasq_server(text: str) -> str | None:
    """Burrow's plain ``ip[:port]`` upstream in dnsmasq's ``ip[#port]``; None for tls:// and https://."""
    from ..config.schema import parse_hostport
    if "://" in text:
        return None
    try:
        host, port = parse_hostport(text, 53)
    except ValueError:
        return None
    return host if port == 53 else f"{host}#{port}"


def _member(name: str, stamp: float) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, time.gmtime(max(stamp, 315532800))[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def export_from(services: Any, hostname: str = "burrow") -> TeleporterExport:
    """:func:`export_teleporter` of a running Burrow's services container."""
    return export_teleporter(groups=services.groups, allow_list=services.allow_list,
                             deny_list=services.deny_list, list_store=services.list_store,
                             zone_store=services.zones.store, forwarding=services.forwarding,
                             config=services.config, hostname=hostname)
