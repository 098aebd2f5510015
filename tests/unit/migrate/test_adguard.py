"""The AdGuardHome.yaml reader (burrow/migrate/adguard.py): the files are written here, in the
layout AdGuard Home's own schema migrations document (internal/configmigrate: v14 moved clients
to clients.persistent, v21/22 blocked_services to {ids, schedule}, v26 rewrites and the blocking
options from dns to filtering, v31 added rewrites' enabled)."""

from __future__ import annotations

import pytest

from burrow import state_check
from burrow.config import load as load_config
from burrow.migrate import adguard
from burrow.migrate import plan as planner
from burrow.migrate.adguard import AdGuardYAMLError, read_adguard
from burrow.migrate.model import MigrationError

CURRENT = """\
http:
  address: 0.0.0.0:3000
  session_ttl: 720h
users:
  - name: admin
    password: $2y$10$notarealhashnotarealhashnotarealhashnotarealhash
language: ""
theme: auto
dns:
  bind_hosts:
    - 0.0.0.0
  port: 53
  ratelimit: 30
  ratelimit_whitelist: []
  upstream_dns:
    - "# the general upstreams"
    - 9.9.9.9
    - udp://149.112.112.112:53
    - tls://dns.quad9.net
    - https://dns.quad9.net/dns-query
    - quic://dns.adguard-dns.com
    - sdns://AQcAAAAAAAAADjE3Ni4xMDMuMTMwLjEzMCDRK0fyUtzywrv4mRCG6vec5EldixbIoMQyLlLKPzkIcyIyLmRuc2NyeXB0LmRlZmF1bHQubnMxLmFkZ3VhcmQuY29t
    - "[/lan/home.arpa/]192.168.1.1"
    - "[/corp.example/]10.0.0.53:5353 tls://dns.corp.example"
    - "[/www.corp.example/]#"
  upstream_dns_file: ""
  bootstrap_dns:
    - 9.9.9.10
    - "[2620:fe::10]:53"
    - tls://1.1.1.1
  fallback_dns: []
  upstream_mode: load_balance
  local_ptr_upstreams: []
  cache_enabled: true
  cache_size: 4194304
  cache_ttl_min: 60
  cache_ttl_max: 0
  enable_dnssec: true
  bogus_nxdomain: [192.0.2.66]
  private_networks: []
  edns_client_subnet:
    enabled: true
    use_custom: false
    custom_ip: ""
filtering:
  protection_enabled: true
  filtering_enabled: true
  blocking_mode: custom_ip
  blocking_ipv4: 192.0.2.1
  blocking_ipv6: "2001:db8::1"
  blocked_response_ttl: 60
  parental_enabled: false
  safebrowsing_enabled: false
  safe_search:
    enabled: true
    google: true
  rewrites:
    - domain: nas.lan
      answer: 192.168.1.5
      enabled: true
    - domain: nas.lan
      answer: fd00::5
      enabled: true
    - domain: files.lan
      answer: nas.lan
      enabled: true
    - domain: '*.dev.lan'
      answer: 192.168.1.9
      enabled: true
    - domain: off.lan
      answer: 192.168.1.10
      enabled: false
    - domain: v4only.lan
      answer: AAAA
      enabled: true
  blocked_services:
    schedule:
      time_zone: Local
    ids:
      - tiktok
      - facebook
filters:
  - enabled: true
    url: https://adguardteam.github.io/HostlistsRegistry/assets/filter_1.txt
    name: AdGuard DNS filter
    id: 1
  - enabled: false
    url: https://adaway.org/hosts.txt
    name: AdAway Default Blocklist
    id: 2
whitelist_filters:
  - enabled: true
    url: https://lists.example/allow.txt
    name: My allow list
    id: 1700000000
user_rules:
  - "! a comment"
  - "# another comment"
  - ""
  - "||ads.example.com^"
  - "@@||good.example.org^"
  - "/^track[0-9]+\\\\./"
  - "0.0.0.0 hosts-blocked.example"
  - "192.168.1.7 printer.lan"
  - "||kids.example^$client=tablet"
  - "example.org##.banner"
  - "plain.example.net"
clients:
  runtime_sources:
    whois: true
    arp: true
    rdns: true
    dhcp: true
    hosts: true
  persistent:
    - name: Tablet
      ids:
        - 192.168.1.20
        - aa:bb:cc:dd:ee:ff
      tags:
        - user_child
        - device_tablet
      use_global_settings: false
      filtering_enabled: true
      parental_enabled: true
      safebrowsing_enabled: false
      use_global_blocked_services: false
      blocked_services:
        schedule:
          time_zone: Local
        ids:
          - youtube
      upstreams: []
      uid: 01890d43-ad4b-7c19-a35e-1a1b1d0e1a7e
    - name: Lab
      ids:
        - 10.0.0.0/24
        - lab-client-id
      tags: []
      use_global_settings: true
      use_global_blocked_services: true
      upstreams:
        - 10.0.0.53
dhcp:
  enabled: true
  interface_name: eth0
tls:
  enabled: false
querylog:
  enabled: true
statistics:
  enabled: true
log:
  verbose: false
os:
  user: ""
schema_version: 34
"""


def read(text: str):
    return read_adguard(text.encode())


def unmapped(setup) -> dict[str, str]:
    return {u.what: u.why for u in setup.unmapped}


def test_current_schema_maps_every_section():
    s = read(CURRENT)
    assert s.source == "adguard" and s.version == "schema 34"
    assert [(fl.url, fl.name, fl.kind, fl.enabled) for fl in s.lists] == [
        ("https://adguardteam.github.io/HostlistsRegistry/assets/filter_1.txt", "AdGuard DNS filter", "block", True),
        ("https://adaway.org/hosts.txt", "AdAway Default Blocklist", "block", False),
        ("https://lists.example/allow.txt", "My allow list", "allow", True)]
    assert s.lists[1].origin == "AdGuardHome.yaml filters[1]"
    entries = [(e.value, e.action, e.syntax) for e in s.entries]
    assert entries == [
        ("||ads.example.com^", "deny", "adblock"),
        ("||good.example.org^", "allow", "adblock"),
        ("^track[0-9]+\\.", "deny", "regex"),
        ("hosts-blocked.example", "deny", "exact"),
        ("||kids.example^$client=tablet", "deny", "adblock"),
        ("example.org##.banner", "deny", "adblock"),
        ("plain.example.net", "deny", "adblock")]
    records = [(r.name, r.type, r.value) for r in s.records]
    assert records == [
        ("printer.lan", "A", "192.168.1.7"),  # a hosts-style user rule with a routable address
        ("nas.lan", "A", "192.168.1.5"), ("nas.lan", "AAAA", "fd00::5"),
        ("files.lan", "CNAME", "nas.lan"), ("*.dev.lan", "A", "192.168.1.9")]
    assert [(c.name, c.ids, c.groups) for c in s.clients] == [
        ("Tablet", ["192.168.1.20", "aa:bb:cc:dd:ee:ff"], ["user_child", "device_tablet"]),
        ("Lab", ["10.0.0.0/24", "lab-client-id"], [])]
    assert [g.name for g in s.groups] == ["user_child", "device_tablet"]
    assert [(f.name, f.domains, f.servers) for f in s.forwards] == [
        ("AdGuard lan, home.arpa", ["lan", "home.arpa"], ["192.168.1.1:53"]),
        ("AdGuard corp.example", ["corp.example"], ["10.0.0.53:5353"])]
    settings = {st.key: st.value for st in s.settings}
    assert settings == {
        "upstream_dns_servers": ["9.9.9.9:53", "149.112.112.112:53", "tls://dns.quad9.net",
                                 "https://dns.quad9.net/dns-query"],
        "upstream.bootstrap": ["9.9.9.10:53", "[2620:fe::10]:53"],
        "rate_limit.enabled": True, "rate_limit.rps": 30.0,
        "filtering.blocking_mode": "custom", "filtering.custom_ipv4": "192.0.2.1",
        "filtering.custom_ipv6": "2001:db8::1", "filtering.blocked_ttl": 60,
        "cache.enabled": True, "cache.min_ttl": 60}
    skipped = unmapped(s)
    for what in ("upstream quic://dns.adguard-dns.com", "upstream [/www.corp.example/]#",
                 "upstream tls://dns.corp.example for corp.example", "bootstrap server tls://1.1.1.1",
                 "rewrite off.lan → 192.168.1.10 (disabled)", "rewrite v4only.lan → AAAA",
                 "blocked services tiktok, facebook", "safe search",
                 "client Tablet: own settings (parental control)", "client Tablet: blocked services youtube",
                 "client Lab: own upstreams", "dhcp (enabled)",
                 "clients.runtime_sources", "users", "http", "tls", "querylog", "statistics", "log", "os",
                 "language", "theme", "dns.enable_dnssec", "dns.bogus_nxdomain", "dns.edns_client_subnet"):
        assert what in skipped, what
    assert any(w.startswith("upstream sdns://") for w in skipped)
    assert "DNS-over-QUIC" in skipped["upstream quic://dns.adguard-dns.com"]
    assert not any("use_global" in w for w in skipped)
    assert "dns.private_networks" not in skipped  # empty: nothing to say


def test_older_schema_reads_dns_section_and_list_shaped_services():
    # schema 20: rewrites and blocked_services still under dns, blocked_services a plain list,
    # no rewrite has `enabled` (before 31 every rewrite is on)
    s = read("""\
schema_version: 20
dns:
  upstream_dns: [1.1.1.1]
  blocking_mode: nxdomain
  blocked_response_ttl: 5
  safe_search:
    enabled: false
  rewrites:
    - domain: nas.lan
      answer: 192.168.1.5
  blocked_services: [tiktok]
  ratelimit: 0
  cache_size: 0
filters: []
user_rules: []
clients:
  persistent:
    - name: tv
      ids: [192.168.1.30]
      blocked_services: [netflix]
      use_global_blocked_services: false
      use_global_settings: false
      safesearch_enabled: true
""")
    assert [(r.name, r.type, r.value) for r in s.records] == [("nas.lan", "A", "192.168.1.5")]
    assert {st.key: st.value for st in s.settings} == {
        "upstream_dns_servers": ["1.1.1.1:53"], "filtering.blocking_mode": "nxdomain",
        "filtering.blocked_ttl": 5, "rate_limit.enabled": False, "cache.enabled": False}  # size 0: off
    skipped = unmapped(s)
    assert "blocked services tiktok" in skipped and "client tv: blocked services netflix" in skipped
    assert "client tv: own settings (safe search)" in skipped


def test_newer_schema_is_read_and_says_so():
    s = read("schema_version: 40\nuser_rules: ['||a.example^']\nsomething_new: {x: 1}\n")
    skipped = unmapped(s)
    assert "schema_version 40" in skipped and "something_new" in skipped
    assert [e.value for e in s.entries] == ["||a.example^"]


def test_refused_blocking_mode_is_skipped_with_why():
    s = read("schema_version: 34\nfiltering:\n  blocking_mode: refused\n")
    assert not s.settings
    assert "REFUSED" in unmapped(s)["filtering.blocking_mode refused"]


@pytest.mark.parametrize("text, field, words", [
    ("dns: {}\n", "schema_version", "missing"),
    ("schema_version: 10\n", "schema_version", "older than 14"),
    ("schema_version: '34'\n", "schema_version", "whole number"),
    ("schema_version: 34\nfilters: {url: x}\n", "filters", "must be a list"),
    ("schema_version: 34\nfilters:\n  - name: no url\n", "filters[0].url", "missing"),
    ("schema_version: 34\nfilters:\n  - url: https://a.example/x\n    enabled: 'yes please'\n",
     "filters[0].enabled", "true or false"),
    ("schema_version: 34\nclients:\n  persistent:\n    - name: a\n      ids: [1.2.3.4]\n    - name: b\n"
     "      ids: 1.2.3.5\n", "clients.persistent[1].ids", "must be a list"),
    ("schema_version: 34\nfiltering:\n  rewrites:\n    - domain: a.lan\n", "filtering.rewrites[0]",
     "both domain and answer"),
    ("schema_version: 34\ndns:\n  rewrites:\n    - [not, a, mapping]\n", "dns.rewrites[0]", "mapping"),
    ("schema_version: 34\ndns:\n  upstream_dns: ['[/lan 1.2.3.4']\n", "dns.upstream_dns[0]", "[/domain/]server"),
    ("schema_version: 34\nuser_rules: [{a: b}]\n", "user_rules[0]", "must be text"),
    ("schema_version: 34\ndns:\n  ratelimit: fast\n", "dns.ratelimit", "whole number"),
])
def test_bad_layout_names_the_key_path(text, field, words):
    with pytest.raises(AdGuardYAMLError) as e:
        read(text)
    assert e.value.field == field and words in str(e.value)
    assert str(e.value).startswith(f"AdGuardHome.yaml {field}: ")
    assert e.value.status == 400 and e.value.problems() == [{"field": field, "message": str(e.value)}]


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"  \n", "empty"),
    (b"\xff\xfeschema_version: 34", "not UTF-8"),
    (b"- a\n- b\n", "top level is not a mapping"),
    (b"just text", "top level is not a mapping"),
    (b"schema_version: 34\nfilters: [\n", "not valid YAML"),
    (b"schema_version: 34\n\tdns: x\n", "not valid YAML"),
    (b"schema_version: 34\n? [a, b]\n: c\n", "not valid YAML"),  # an unhashable key
    (b"schema_version: 34\nx: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    (b"schema_version: 34\n---\nschema_version: 33\n", "more than one YAML document"),
    (b"schema_version: 34\na: &x [1, 2]\nb: *x\n", "alias"),
    (b"schema_version: 34\nx: " + b"[" * 40 + b"]" * 40 + b"\n", "nests deeper"),
    (b"schema_version: 34\n7: seven\n", "key that is not text"),
])
def test_hostile_or_broken_files_are_refused(data, words):
    with pytest.raises(AdGuardYAMLError) as e:
        read_adguard(data)
    assert words in str(e.value) and e.value.status == 400


def test_billion_laughs_is_refused_before_anything_is_built():
    lines = ["schema_version: 34", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 10)]
    with pytest.raises(AdGuardYAMLError, match="alias"):
        read_adguard("\n".join(lines).encode())


def test_size_bounds_answer_413():
    with pytest.raises(AdGuardYAMLError) as e:
        read_adguard(b"schema_version: 34\n" + b"#" * adguard.MAX_YAML_BYTES)
    assert e.value.status == 413 and isinstance(e.value, MigrationError)
    rules = "".join(f"  - '||a{i}.example^'\n" for i in range(adguard.MAX_ITEMS + 1))
    many = "schema_version: 34\nuser_rules:\n" + rules
    with pytest.raises(AdGuardYAMLError) as e:
        read(many)
    assert e.value.status == 413 and e.value.field == "user_rules"


@pytest.mark.parametrize("text, expected", [
    ("1.1.1.1", "1.1.1.1:53"), ("1.1.1.1:5353", "1.1.1.1:5353"), ("udp://1.1.1.1", "1.1.1.1:53"),
    ("2606:4700::1111", "[2606:4700::1111]:53"), ("[2606:4700::1111]:853", "[2606:4700::1111]:853"),
    ("dns.google", None), ("1.1.1.1:0", None), ("1.1.1.1:http", None), ("[::1", None), ("[::1]x", None),
])
def test_plain_upstreams_in_burrow_spelling(text, expected):
    assert adguard._plain(text) == expected


# --- through the planner: what the file means for Burrow's stores ---------------------------

@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "lists").mkdir()
    return state_check.Context(load_config(None, environ={}), tmp_path, [str(tmp_path / "lists")])


def test_planned_against_a_fresh_burrow_and_twice_changes_nothing(db, ctx):
    setup = read(CURRENT)
    before = planner._dump(db.conn)
    dry = planner.run_import(setup, db, ctx, dry_run=True)
    assert planner._dump(db.conn) == before
    steps = {(st.area, st.key): st for st in dry.steps}
    assert steps[("list", "AdGuard DNS filter")].action == "create"
    assert steps[("deny", "ads.example.com")].action == "create"
    assert steps[("deny", "*.ads.example.com")].action == "create"
    assert steps[("allow", "good.example.org")].action == "create"
    assert steps[("deny", "||kids.example^$client=tablet")].action == "skipped"
    assert steps[("record", "nas.lan A")].action == "create"
    assert steps[("record", "*.dev.lan A")].action == "create"
    assert steps[("client", "aa:bb:cc:dd:ee:ff")].action == "skipped"
    assert steps[("client", "lab-client-id")].action == "skipped"
    assert steps[("group", "user_child")].action == "create"
    assert steps[("setting", "filtering.blocking_mode")].action == "change"
    assert steps[("forward", "AdGuard lan, home.arpa")].action == "create"
    assert all(st.why for st in dry.steps if st.action == "skipped")

    done = planner.run_import(setup, db, ctx, dry_run=False)
    assert done.applied and planner._dump(db.conn) != before
    after = planner._dump(db.conn)
    again = planner.run_import(read(CURRENT), db, ctx, dry_run=False)
    assert planner._dump(db.conn) == after
    assert {st.action for st in again.steps} <= {"unchanged", "skipped"}
