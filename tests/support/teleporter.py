"""Pi-hole v6 Teleporter archives made by the tests, in Pi-hole's documented format.

``gravity_schema()`` is the table layout of Pi-hole v6's gravity.db (gravity.db.sql of
pi-hole/pi-hole, schema version 16+: the seven tables its Teleporter carries, with their
columns in Pi-hole's order), written out here. ``teleporter_zip()`` builds an archive as Pi-hole
FTL's export does (src/zip/teleporter.c there): ``etc/pihole/pihole.toml``, ``etc/hosts`` and a
reduced ``etc/pihole/gravity.db`` made with ``CREATE TABLE x AS SELECT * FROM`` the full one.
``pihole_import()`` does what Pi-hole's import does with a gravity.db from an archive: for each
table, ``DELETE`` then ``INSERT OR REPLACE INTO disk.x SELECT * FROM x``.
"""

from __future__ import annotations

import io
import sqlite3
import zipfile

TABLES = ("group", "adlist", "adlist_by_group", "domainlist", "domainlist_by_group", "client",
          "client_by_group")

SCHEMA = """
CREATE TABLE "group" (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    name TEXT UNIQUE NOT NULL,
    date_added INTEGER NOT NULL DEFAULT (cast(strftime('%s', 'now') as int)),
    date_modified INTEGER NOT NULL DEFAULT (cast(strftime('%s', 'now') as int)),
    description TEXT);
CREATE TABLE domainlist (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type INTEGER NOT NULL DEFAULT 0,
    domain TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    date_added INTEGER NOT NULL DEFAULT (cast(strftime('%s', 'now') as int)),
    date_modified INTEGER NOT NULL DEFAULT (cast(strftime('%s', 'now') as int)),
    comment TEXT,
    UNIQUE(domain, type));
CREATE TABLE adlist (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    address TEXT UNIQUE NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    date_added INTEGER NOT NULL DEFAULT (cast(strftime('%s', 'now') as int)),
    date_modified INTEGER NOT NULL DEFAULT (cast(strftime('%s', 'now') as int)),
    comment TEXT,
    date_updated INTEGER,
    number INTEGER NOT NULL DEFAULT 0,
    invalid_domains INTEGER NOT NULL DEFAULT 0,
    status INTEGER NOT NULL DEFAULT 0,
    abp_entries INTEGER NOT NULL DEFAULT 0,
    type INTEGER NOT NULL DEFAULT 0);
CREATE TABLE adlist_by_group (
    adlist_id INTEGER NOT NULL REFERENCES adlist (id),
    group_id INTEGER NOT NULL REFERENCES "group" (id),
    PRIMARY KEY (adlist_id, group_id));
CREATE TABLE gravity (domain TEXT NOT NULL, adlist_id INTEGER NOT NULL REFERENCES adlist (id));
CREATE TABLE info (property TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE domainlist_by_group (
    domainlist_id INTEGER NOT NULL REFERENCES domainlist (id),
    group_id INTEGER NOT NULL REFERENCES "group" (id),
    PRIMARY KEY (domainlist_id, group_id));
CREATE TABLE client (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ip TEXT NOT NULL UNIQUE,
    date_added INTEGER NOT NULL DEFAULT (cast(strftime('%s', 'now') as int)),
    date_modified INTEGER NOT NULL DEFAULT (cast(strftime('%s', 'now') as int)),
    comment TEXT);
CREATE TABLE client_by_group (
    client_id INTEGER NOT NULL REFERENCES client (id),
    group_id INTEGER NOT NULL REFERENCES "group" (id),
    PRIMARY KEY (client_id, group_id));
INSERT INTO "group" (id, enabled, name, description) VALUES (0, 1, 'Default', 'The default group');
INSERT INTO info VALUES ('version', '19');
"""


def gravity_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def sample_gravity(conn: sqlite3.Connection) -> None:
    """A household's Pi-hole: two groups besides Default (one disabled), lists, domains, clients."""
    conn.executescript("""
    INSERT INTO "group" (id, enabled, name, description) VALUES (1, 1, 'Kids Devices', 'the children');
    INSERT INTO "group" (id, enabled, name, description) VALUES (2, 0, 'Old Stuff', NULL);
    INSERT INTO adlist (id, address, enabled, comment, type) VALUES
        (1, 'https://lists.example/ads.txt', 1, 'Ads', 0),
        (2, 'https://lists.example/kids.txt', 0, 'Kids only', 0),
        (3, 'https://lists.example/allow.txt', 1, NULL, 1);
    INSERT INTO adlist_by_group VALUES (1, 0), (1, 1), (2, 1), (3, 0), (3, 1);
    INSERT INTO domainlist (id, type, domain, enabled, comment) VALUES
        (1, 1, 'ads.example.com', 1, 'typed by hand'),
        (2, 0, 'good.example.org', 1, NULL),
        (3, 3, '(\\.|^)tracker\\.example$', 1, NULL),
        (4, 3, 'ad.*tracker', 1, NULL),
        (5, 3, '^ads[[:digit:]]+\\.', 1, NULL),
        (6, 3, 'video;querytype=AAAA', 1, NULL),
        (7, 1, 'off.example.com', 0, NULL),
        (8, 2, 'cdn\\.example\\.net$', 1, NULL);
    INSERT INTO domainlist_by_group VALUES (1, 0), (1, 1), (2, 1), (3, 0), (3, 1), (4, 0), (4, 1),
        (5, 0), (5, 1), (6, 0), (7, 0), (8, 0), (8, 1);
    INSERT INTO client (id, ip, comment) VALUES (1, '192.168.1.20', 'tablet'),
        (2, 'aa:bb:cc:dd:ee:ff', 'tv'), (3, '10.0.0.0/24', 'lab');
    INSERT INTO client_by_group VALUES (1, 1), (2, 0), (3, 2);
    """)


SAMPLE_TOML = """
[config]
version = 1

[dns]
upstreams = ["1.1.1.1", "9.9.9.9#5353", "docker-resolver"]
hosts = ["192.168.1.5 nas.lan nas", "192.168.1.6 nas.lan", "fd00::5 nas.lan"]
cnameRecords = ["files.lan,nas.lan", "media.lan,www.media.lan,nas.lan,300"]
revServers = ["true,192.168.1.0/24,192.168.1.1,lan"]

[dns.blocking]
active = true
mode = "NXDOMAIN"

[dns.rateLimit]
count = 1200
interval = 60

[dhcp]
active = false

[misc]
dnsmasq_lines = ["server=/corp.example/10.1.1.1#5353", "log-facility=/tmp/x"]
"""


def reduced_gravity(full: sqlite3.Connection) -> bytes:
    """The gravity.db Pi-hole puts in an archive: its seven tables copied with SELECT *."""
    out = sqlite3.connect(":memory:")
    try:
        for table in TABLES:
            rows = full.execute(f'SELECT * FROM "{table}"')
            cols = [d[0] for d in rows.description]
            out.execute(f'CREATE TABLE "{table}" ({", ".join(cols)})')
            out.executemany(f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(cols))})', rows.fetchall())
        out.commit()
        return out.serialize()
    finally:
        out.close()


def teleporter_zip(toml: str | None = SAMPLE_TOML, gravity: bytes | None = None, extra: dict | None = None) -> bytes:
    if gravity is None:
        full = sqlite3.connect(":memory:")
        gravity_schema(full)
        sample_gravity(full)
        gravity = reduced_gravity(full)
        full.close()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if toml is not None:
            zf.writestr("etc/pihole/pihole.toml", toml)
        zf.writestr("etc/hosts", "127.0.0.1 localhost\n")
        zf.writestr("etc/pihole/gravity.db", gravity)
        for name, content in (extra or {}).items():
            zf.writestr(name, content)
    return buf.getvalue()


def pihole_import(archive: bytes, live_path: str) -> None:
    """What Pi-hole v6 does with the archive's gravity.db (into a gravity.db at ``live_path``)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        content = zf.read("etc/pihole/gravity.db")
    mem = sqlite3.connect(":memory:")
    try:
        mem.deserialize(content)
        mem.execute("ATTACH DATABASE ? AS disk", (live_path,))
        mem.execute("PRAGMA foreign_keys = 0")
        mem.execute("BEGIN")
        for table in TABLES:
            mem.execute(f'DELETE FROM disk."{table}"')
            mem.execute(f'INSERT OR REPLACE INTO disk."{table}" SELECT * FROM "{table}"')
        mem.execute("COMMIT")
        mem.execute("DETACH DATABASE disk")
    finally:
        mem.close()
