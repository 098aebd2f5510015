"""Conditional forwarding rules: which questions go to which upstreams instead of the default ones.

One store, two API faces (seed 003 ``/api/conditionalforwarding``, seed 000 ``/api/forwarders``).
A rule names its matchers and its upstreams::

    {"name": "Corporate VPN", "domains": ["*.corp.example.com"], "client_cidrs": [],
     "query_types": [], "upstreams": ["10.0.0.1:53", "10.0.0.2:53"], "priority": 90,
     "timeout": "3s", "max_retries": 2, "failover": true, "enabled": true}

Matching (``ForwardRules.match``): enabled rules, highest priority first, ties in creation
order; a rule matches when *every* matcher it gives matches (AND), and it must give at least one.

- ``domains`` — a pattern matches on label boundaries only:
  ``*.corp.example.com`` matches names strictly below ``corp.example.com`` (one or more labels:
  ``a.corp.example.com``, ``a.b.corp.example.com``), never ``corp.example.com`` itself and never
  ``evilcorp.example.com``. A plain ``example.com`` matches that name *and* every name below it,
  as dnsmasq's ``server=/example.com/`` does (so ``lan`` covers ``lan`` and ``nas.lan``). Only a
  leading ``*.`` is a wildcard. Patterns are kept lower-case, without a trailing dot, IDNs in
  their punycode (xn--) form.
- ``client_cidrs`` — the client address is in one of the networks (v4 and v6; an IPv4-mapped
  IPv6 client address counts as its IPv4 address). Host bits may be set (``192.168.1.5/24``).
- ``query_types`` — by name (``A``, ``AAAA``, ``PTR``, any name ``dns.qtypes`` knows, or ``TYPE65280``).

Ids are ``name:priority:index`` where *index* is the rule's position (0-based) in the list as
GET returns it: sorted by priority, highest first, ties in creation order. The seed's examples
("Corporate VPN:90:0", "Home Network:50:1", and "Local Network:80:0" for the first rule added)
read exactly so. Because names are unique, a rule is found by its name (and its priority, so an
id from before a priority change is "not found" rather than silently the edited rule); the
index part must be a number but may be stale (it moves whenever a rule with a higher priority
comes or goes). Names may contain colons: the id is split at its last two.

Forwarding: each rule has its own ``route`` (the cache and the forward stage keep answers and
upstream pools apart per route, so a rule's answers never reach clients it does not cover),
``servers`` (parsed entries, config/upstream_spec.py: "ip:port", tls://, https://) and ``settings``
(an ``UpstreamSettings``):

- ``timeout`` — Go duration text as given (``"3s"``, ``"500ms"``, ``"1m"``); ``""`` means the
  default upstream timeout. Must lie within 100ms..30s.
- ``max_retries`` (0..10) — extra attempts per upstream after the first.
- ``failover`` — false: only the first upstream is asked (1 + max_retries times); true: every
  upstream gets 1 + max_retries attempts, taken in turn (healthy, fastest first), so a dead
  first server falls over to the next.

Rules live in the settings DB (``forwarding.rules``: a JSON list in creation order;
``forwarding.enabled``: the global switch, default on). Every change is validated, saved in one
transaction, then swapped in as new immutable tuples (a query sees the old rules or the new
ones, never a mix).
"""

from __future__ import annotations

import builtins
import functools
import ipaddress
import logging
import re

from .. import errors as domain
from ..changes import Announce, Change, ignore
from ..config.schema import format_hostport, parse_hostport, parse_upstream
from ..dns import names
from ..dns.qtypes import number as qtype_number
from ..dns.upstream import UpstreamSettings

log = logging.getLogger(__name__)

SETTINGS_KEY = "forwarding.rules"
ENABLED_KEY = "forwarding.enabled"
PRESET_KEY = "forwarding.preset.router"  # the router preset's last parameters

MAX_RULES = 256  # rules in the store: far beyond a home network's handful
MAX_DOMAINS = 256  # patterns per rule
MAX_CIDRS = 256  # client networks per rule
MAX_QTYPES = 32  # query types per rule
MAX_UPSTREAMS = 8  # upstreams per rule (each failover step costs a timeout)
MAX_NAME = 100  # characters in a rule name
MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 1, 100, 50
MIN_TIMEOUT, MAX_TIMEOUT = 0.1, 30.0  # seconds per attempt a rule may ask for
DEFAULT_TIMEOUT = 2.0  # seconds per attempt when neither the rule nor the app says
MAX_RETRIES = 10
DEFAULT_INFLIGHT = 256  # concurrent upstream queries per rule pool when the app gives no default

FIELDS = ("name", "domains", "client_cidrs", "query_types", "upstreams", "priority", "timeout",
          "max_retries", "failover", "enabled")


class ForwardRuleError(domain.Invalid, ValueError):
    """A rule (or a reference to one) is invalid: HTTP 400 naming ``field``."""

    status = 400
    error = "Bad Request"

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict:
        return {"field": self.field, "message": self.message}

    def problems(self) -> list[dict]:
        return [self.to_dict()]  # also when no single field is at fault (field "")


class DuplicateRule(domain.Conflict, ForwardRuleError):
    """A rule with that name exists already: HTTP 409."""

    status = 409
    error = "Conflict"


class RuleNotFound(domain.NotFound, LookupError):
    """No rule answers to that id or name: HTTP 404 (the id is in the path, not a body field)."""

    status = 404
    error = "Not Found"


# ---- parsing the parts ---------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (``"3s"``, ``"500ms"``, ``"1m30s"``, ``"0"``); ValueError
    for anything Go's ``time.ParseDuration`` would refuse (a bare number other than 0, no unit)."""
    s = text.strip()
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total, pos = 0.0, 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r} (write e.g. \"2s\" or \"500ms\")")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def parse_domain_pattern(text: str) -> tuple[bool, str]:
    """(below_only, base name) for a pattern: ``*.corp.example`` → (True, "corp.example"),
    ``example.com`` → (False, "example.com"). ValueError when invalid."""
    if not isinstance(text, str):
        raise ValueError("must be a string")
    return names.normalize_pattern(text)


@functools.lru_cache(maxsize=4096)  # bounded: a home network has a few hundred client addresses
def _client_address(ip: str):
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _as_list(data: dict, key: str, cap: int) -> list:
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, str):  # one item given as text: be kind, it is unambiguous
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ForwardRuleError(f"{key} must be a list", key)
    if len(value) > cap:
        raise ForwardRuleError(f"at most {cap} {key} per rule", key)
    return list(value)


def _as_int(data: dict, key: str, default: int, low: int, high: int, what: str) -> int:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ForwardRuleError(f"{what} must be an integer", key)
    if not low <= value <= high:
        raise ForwardRuleError(f"{what} must be between {low} and {high}", key)
    return value


def _as_bool(data: dict, key: str, default: bool) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ForwardRuleError(f"{key} must be true or false", key)
    return value


# ---- one rule ------------------------------------------------------------------------------------

class ForwardRule:
    """One validated, compiled rule. Immutable by convention: a change builds a new one.

    Public attributes: the seed fields (``name``, ``domains``, ``client_cidrs``, ``query_types``,
    ``upstreams`` as tuples of text, ``priority``, ``timeout`` (text), ``max_retries``,
    ``failover``, ``enabled``), and for forwarding ``route`` (the cache/pool key), ``servers``
    (((host, port), ...)), ``timeout_seconds`` (None = default) and ``settings``.
    """

    __slots__ = FIELDS + ("route", "servers", "timeout_seconds", "settings", "_at_or_below", "_below",
                          "_nets", "_qtypes", "has_domains")

    def __init__(self, data: dict, defaults: UpstreamSettings | None = None):
        if not isinstance(data, dict):
            raise ForwardRuleError("a rule must be a JSON object")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ForwardRuleError("Name is required", "name")
        name = name.strip()
        if len(name) > MAX_NAME:
            raise ForwardRuleError(f"name must be at most {MAX_NAME} characters", "name")
        if any(ord(c) < 32 or c == "\x7f" for c in name):
            raise ForwardRuleError("name must not contain control characters", "name")
        self.name = name

        domains: list[str] = []
        at_or_below: set[str] = set()
        below: set[str] = set()
        for i, text in enumerate(_as_list(data, "domains", MAX_DOMAINS)):
            try:
                is_below, base = parse_domain_pattern(text)
            except ValueError as e:
                raise ForwardRuleError(f"invalid domain pattern {text!r}: {e}", f"domains[{i}]") from None
            (below if is_below else at_or_below).add(base)
            shown = "*." + base if is_below else base
            if shown not in domains:
                domains.append(shown)
        self.domains = tuple(domains)
        self._at_or_below = frozenset(at_or_below)
        self._below = frozenset(below)
        self.has_domains = bool(domains)

        cidrs, nets = [], []
        for i, text in enumerate(_as_list(data, "client_cidrs", MAX_CIDRS)):
            if not isinstance(text, str):
                raise ForwardRuleError("client CIDRs must be strings", f"client_cidrs[{i}]")
            try:
                nets.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ForwardRuleError(f"invalid CIDR {text!r} (write e.g. 192.168.1.0/24)",
                                       f"client_cidrs[{i}]") from None
            cidrs.append(text.strip())
        self.client_cidrs = tuple(cidrs)
        self._nets = tuple(nets)

        qtypes, numbers = [], set()
        for i, text in enumerate(_as_list(data, "query_types", MAX_QTYPES)):
            if not isinstance(text, str):
                raise ForwardRuleError("query types must be strings", f"query_types[{i}]")
            try:
                numbers.add(qtype_number(text))
            except ValueError as e:
                raise ForwardRuleError(str(e), f"query_types[{i}]") from None
            if text.strip().upper() not in qtypes:
                qtypes.append(text.strip().upper())
        self.query_types = tuple(qtypes)
        self._qtypes = frozenset(numbers)

        if not (self.domains or self.client_cidrs or self.query_types):
            raise ForwardRuleError("At least one matching condition required (domains, client_cidrs, "
                                   "or query_types)", "domains")

        upstreams, servers = [], []
        for i, text in enumerate(_as_list(data, "upstreams", MAX_UPSTREAMS)):
            try:
                spec = parse_upstream(text)
            except ValueError as e:
                raise ForwardRuleError(f"invalid upstream: {e}", f"upstreams[{i}]") from None
            if spec not in servers:
                servers.append(spec)
                upstreams.append(text.strip())
        if not servers:
            raise ForwardRuleError("At least one upstream DNS server required", "upstreams")
        self.upstreams = tuple(upstreams)
        self.servers = tuple(servers)

        self.priority = _as_int(data, "priority", DEFAULT_PRIORITY, MIN_PRIORITY, MAX_PRIORITY, "Priority")
        timeout = data.get("timeout")
        if timeout is None:
            timeout = ""
        if not isinstance(timeout, str):
            raise ForwardRuleError("timeout must be a duration string such as \"2s\" or \"500ms\"", "timeout")
        timeout = timeout.strip()
        self.timeout = timeout
        if timeout:
            try:
                seconds = parse_duration(timeout)
            except ValueError as e:
                raise ForwardRuleError(f"Timeout must be a valid duration: {e}", "timeout") from None
            if not MIN_TIMEOUT <= seconds <= MAX_TIMEOUT:
                raise ForwardRuleError("Timeout must be between 100ms and 30s", "timeout")
            self.timeout_seconds: float | None = seconds
        else:
            self.timeout_seconds = None
        self.max_retries = _as_int(data, "max_retries", 0, 0, MAX_RETRIES, "max_retries")
        self.failover = _as_bool(data, "failover", False)
        self.enabled = _as_bool(data, "enabled", True)

        self.route = "cf:" + self.name + "@" + ",".join(s.text for s in self.servers)
        per_server = 1 + self.max_retries
        self.settings = UpstreamSettings(
            timeout=self.timeout_seconds or (defaults.timeout if defaults else DEFAULT_TIMEOUT),
            max_attempts=per_server * (len(self.servers) if self.failover else 1),
            max_inflight=defaults.max_inflight if defaults else DEFAULT_INFLIGHT,
            max_inflight_share=defaults.max_inflight_share if defaults else UpstreamSettings.max_inflight_share,
            failover=self.failover)

    # ---- matching --------------------------------------------------------------------------------

    def matches_name(self, name: str, suffixes: list[str] | None = None) -> bool:
        """Whether the domain patterns cover ``name`` (lower-case, no trailing dot). A rule
        without domain patterns covers nothing here (it matches every name in ``match``)."""
        if suffixes is None:
            suffixes = name_suffixes(name)
        at_or_below, below = self._at_or_below, self._below
        if at_or_below:
            for s in suffixes:
                if s in at_or_below:
                    return True
        if below:
            for s in suffixes[1:]:
                if s in below:
                    return True
        return False

    def matches_client(self, client_ip: str) -> bool:
        addr = _client_address(client_ip)
        if addr is None:
            return False
        for net in self._nets:
            if addr.version == net.version and addr in net:
                return True
        return False

    # ---- shapes ----------------------------------------------------------------------------------

    def stored(self) -> dict:
        """The rule as kept in the settings DB (no id: ids follow from the order)."""
        return {"name": self.name, "domains": list(self.domains), "client_cidrs": list(self.client_cidrs),
                "query_types": list(self.query_types), "upstreams": list(self.upstreams),
                "priority": self.priority, "timeout": self.timeout, "max_retries": self.max_retries,
                "failover": self.failover, "enabled": self.enabled}

    def to_dict(self, index: int) -> dict:
        """The seed 003 shape; ``index`` is the rule's position in the sorted list."""
        return {"id": rule_id(self.name, self.priority, index), **self.stored()}

    def __repr__(self) -> str:
        return f"ForwardRule({self.name!r}, priority={self.priority}, route={self.route!r})"


def name_suffixes(name: str) -> list[str]:
    """``a.b.c`` → ``["a.b.c", "b.c", "c"]``: the name and every parent, on label boundaries."""
    out = [name]
    i = name.find(".")
    while i >= 0:
        out.append(name[i + 1:])
        i = name.find(".", i + 1)
    return out


def rule_id(name: str, priority: int, index: int) -> str:
    return f"{name}:{priority}:{index}"


def parse_rule_id(text: str) -> tuple[str, int, int]:
    """(name, priority, index) of a ``name:priority:index`` id; ForwardRuleError("Invalid ID
    format") otherwise. The name may itself contain colons."""
    parts = text.rsplit(":", 2) if isinstance(text, str) else []
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit() \
            or len(parts[1]) > 3 or len(parts[2]) > 6:
        raise ForwardRuleError("Invalid ID format (expected name:priority:index)", "id")
    return parts[0], int(parts[1]), int(parts[2])


# ---- the store -----------------------------------------------------------------------------------

def _priority_order(rules) -> tuple:
    return tuple(sorted(rules, key=lambda r: -r.priority))  # sorted() is stable: ties keep creation order


class ForwardRules:
    """The rules, persisted in the settings DB, and the matcher the DNS path calls.

    ``ForwardRules(settings_db, defaults=None, on_change=ignore)``: ``defaults`` (the app's UpstreamSettings) gives
    the timeout of rules whose ``timeout`` is ``""`` and the in-flight cap of each rule's pool.
    Methods that change rules raise ForwardRuleError (400), DuplicateRule (409) or RuleNotFound
    (404); each carries ``status`` (and ``field``), which the API error map understands.
    ``generation`` moves on every change, and every change (a reload too) is announced to
    ``on_change`` (burrow/changes.py) once the new rules are live.
    """

    def __init__(self, settings_db, defaults: UpstreamSettings | None = None, on_change: Announce = ignore):
        self.db = settings_db
        self.defaults = defaults
        self.on_change: Announce = ignore  # the first read below is no change: nothing answers yet
        self.generation = 0
        self._rules: tuple[ForwardRule, ...] = ()  # creation order
        self._sorted: tuple[ForwardRule, ...] = ()  # priority order (the API's order)
        self._active: tuple[ForwardRule, ...] = ()  # what match() walks: enabled, priority order
        self.enabled = True
        self.uses_client_cidrs = False
        self.reload()
        self.on_change = on_change

    # ---- state -----------------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the rules and the switch from the settings DB (boot, backup restore).
        A stored rule that no longer validates is skipped with a warning, not fatal."""
        rules, names = [], set()
        for data in self.db.get(SETTINGS_KEY, []) or []:
            try:
                rule = ForwardRule(data, self.defaults)
            except ForwardRuleError as e:
                log.warning("skipping an invalid stored forwarding rule %r: %s", data, e)
                continue
            if rule.name in names:
                log.warning("skipping a second stored forwarding rule named %r", rule.name)
                continue
            names.add(rule.name)
            rules.append(rule)
        self._install(rules, bool(self.db.get(ENABLED_KEY, True)))

    def _install(self, rules, enabled: bool) -> None:
        self._rules = tuple(rules)
        self._sorted = _priority_order(rules)
        self.enabled = enabled
        self._active = tuple(r for r in self._sorted if r.enabled) if enabled else ()
        self.uses_client_cidrs = any(r.client_cidrs for r in self._active)
        self.generation += 1
        self.on_change(Change.FORWARDING)

    def _save(self, rules, enabled: bool | None = None, extra: dict | None = None) -> None:
        """Persist (with ``extra`` settings, in the same transaction), then swap in; a failed
        write leaves the old rules live."""
        with self.db.transaction():
            self.db.set(SETTINGS_KEY, [r.stored() for r in rules])
            if enabled is not None:
                self.db.set(ENABLED_KEY, enabled)
            for key, value in (extra or {}).items():
                self.db.set(key, value)
        self._install(rules, self.enabled if enabled is None else enabled)

    def list(self) -> list[ForwardRule]:
        """Every rule, highest priority first, ties in creation order."""
        return list(self._sorted)

    def __len__(self) -> int:
        return len(self._rules)

    def to_dicts(self) -> builtins.list[dict]:  # (builtins: list is a method here)
        return [r.to_dict(i) for i, r in enumerate(self._sorted)]

    def snapshot(self) -> dict:
        """The seed 003 GET shape: ``{"enabled", "total", "rules"}``."""
        return {"enabled": self.enabled, "total": len(self._rules), "rules": self.to_dicts()}

    def id_of(self, rule: ForwardRule) -> str:
        for i, r in enumerate(self._sorted):
            if r.name == rule.name:
                return rule_id(r.name, r.priority, i)
        raise RuleNotFound("Rule not found")

    def dict_of(self, rule: ForwardRule) -> dict:
        """The rule's seed shape with its current id."""
        for i, r in enumerate(self._sorted):
            if r.name == rule.name:
                return r.to_dict(i)
        raise RuleNotFound("Rule not found")

    def by_name(self, name: str) -> ForwardRule | None:
        for r in self._rules:
            if r.name == name:
                return r
        return None

    def get(self, ref: str) -> ForwardRule:
        """The rule an id (``name:priority:index``) or an exact name refers to.

        An exact name wins; otherwise it must be an id naming an existing rule with that
        priority. Anything else is RuleNotFound (404): any text could be a rule's name, so text
        that is not an id is a name no rule has, not a malformed request."""
        if not isinstance(ref, str) or not ref:
            raise ForwardRuleError("Invalid ID format (expected name:priority:index)", "id")
        rule = self.by_name(ref)
        if rule is not None:
            return rule
        try:
            name, priority, _index = parse_rule_id(ref)
        except ForwardRuleError:
            raise RuleNotFound("Rule not found") from None
        rule = self.by_name(name)
        if rule is None or rule.priority != priority:
            raise RuleNotFound("Rule not found")
        return rule

    # ---- changes ---------------------------------------------------------------------------------

    def add(self, data: dict) -> ForwardRule:
        """Validate and append a rule (last in creation order); DuplicateRule if the name is taken."""
        rule = ForwardRule(data, self.defaults)
        if self.by_name(rule.name) is not None:
            raise DuplicateRule(f"Rule with name {rule.name!r} already exists", "name")
        if len(self._rules) >= MAX_RULES:
            raise ForwardRuleError(f"at most {MAX_RULES} conditional forwarding rules", "name")
        self._save(self._rules + (rule,))
        return rule

    def update(self, ref: str, changes: dict) -> ForwardRule:
        """Change a rule in place (it keeps its place in creation order). ``changes`` holds the
        fields to change; the others keep their values. Renaming onto another rule's name is
        DuplicateRule."""
        old = self.get(ref)
        if not isinstance(changes, dict):
            raise ForwardRuleError("a rule must be a JSON object")
        merged = old.stored()
        merged.update({k: v for k, v in changes.items() if k in FIELDS})
        rule = ForwardRule(merged, self.defaults)
        if rule.name != old.name and self.by_name(rule.name) is not None:
            raise DuplicateRule(f"Rule with name {rule.name!r} already exists", "name")
        self._save(tuple(rule if r is old else r for r in self._rules))
        return rule

    def replace_where(self, owned, datas: builtins.list[dict]) -> builtins.list[ForwardRule]:
        """Replace the rules ``owned(rule)`` says are the caller's by rules made from ``datas``,
        in one write (another product's face keeps its own rules: burrow/faces/pihole). All are
        validated first: a bad one (ForwardRuleError), a name taken by a rule kept
        (DuplicateRule) or too many rules change nothing."""
        new = [ForwardRule(data, self.defaults) for data in datas]
        kept = tuple(r for r in self._rules if not owned(r))
        names = {r.name for r in kept}
        for rule in new:
            if rule.name in names:
                raise DuplicateRule(f"Rule with name {rule.name!r} already exists", "name")
            names.add(rule.name)
        if len(kept) + len(new) > MAX_RULES:
            raise ForwardRuleError(f"at most {MAX_RULES} conditional forwarding rules", "name")
        self._save(kept + tuple(new))
        return new

    def remove(self, ref: str) -> ForwardRule:
        """Delete the rule an id or name refers to; returns it."""
        rule = self.get(ref)
        self._save(tuple(r for r in self._rules if r is not rule))
        return rule

    def set_enabled(self, enabled: bool) -> None:
        """The global switch: off, no rule matches (they are kept)."""
        if not isinstance(enabled, bool):
            raise ForwardRuleError("enabled must be true or false", "enabled")
        with self.db.transaction():
            self.db.set(ENABLED_KEY, enabled)
        self._install(self._rules, enabled)

    # ---- the router preset -----------------------------------------------------------------------

    def router_preset(self) -> dict:
        """``{"enabled", "router", "domain", "network", "rule"}``: whether the "ask the router"
        rule is on, the parameters it was last made from (kept when it is turned off, so the
        page can offer them again) and the rule itself (None when off)."""
        params = self.db.get(PRESET_KEY) or {}
        rule = self.by_name(ROUTER_RULE_NAME)
        return {"enabled": rule is not None and rule.enabled and self.enabled,
                "router": params.get("router", ""), "domain": params.get("domain", ""),
                "network": params.get("network", ""),
                "rule": self.dict_of(rule) if rule is not None else None}

    def set_router_preset(self, router: str, domain: str = "lan", network: str | None = None) -> ForwardRule:
        """Turn the preset on: create (or replace, in place) the rule named "Router" forwarding
        ``domain`` and below plus ``network``'s reverse zones to ``router``."""
        data, params = router_preset_rule(router, domain, network)
        rule = ForwardRule(data, self.defaults)
        old = self.by_name(rule.name)
        if old is None:
            if len(self._rules) >= MAX_RULES:
                raise ForwardRuleError(f"at most {MAX_RULES} conditional forwarding rules", "name")
            rules = self._rules + (rule,)
        else:
            rules = tuple(rule if r is old else r for r in self._rules)
        self._save(rules, extra={PRESET_KEY: params})
        return rule

    def clear_router_preset(self) -> ForwardRule | None:
        """Turn the preset off: remove the "Router" rule (its parameters are kept)."""
        rule = self.by_name(ROUTER_RULE_NAME)
        if rule is not None:
            self._save(tuple(r for r in self._rules if r is not rule))
        return rule

    # ---- the DNS path ----------------------------------------------------------------------------

    def match(self, name: str, client_ip: str, qtype: int) -> ForwardRule | None:
        """The rule that forwards this question, or None (the default upstreams answer).

        ``name`` is the question name as text (``query.name``: lower-case, no trailing dot)."""
        return self.lookup(name, client_ip, qtype)[0]

    def lookup(self, name: str, client_ip: str, qtype: int) -> tuple[ForwardRule | None, bool]:
        """(rule or None, client_dependent). ``client_dependent`` is True when a rule with
        ``client_cidrs`` had to be asked about the client, i.e. another client could get another
        route for the same question: such answers must not ride the per-group fast path."""
        active = self._active
        if not active:
            return None, False
        if name[-1:] == ".":
            name = name[:-1]
        name = name.lower()
        suffixes = None
        dependent = False
        for rule in active:
            if rule._qtypes and qtype not in rule._qtypes:
                continue
            if rule.has_domains:
                if suffixes is None:
                    suffixes = name_suffixes(name)
                if not rule.matches_name(name, suffixes):
                    continue
            if rule._nets:
                dependent = True
                if not rule.matches_client(client_ip):
                    continue
            return rule, dependent
        return None, dependent

    def covers_name(self, name: str) -> bool:
        """Whether an enabled rule's domain patterns cover ``name`` (whatever its other
        matchers say): the owner said where this name lives, so private-name refusal and
        rebinding protection leave it alone."""
        active = self._active
        if not active:
            return False
        name = name.lower().rstrip(".")
        suffixes = name_suffixes(name)
        return any(r.has_domains and r.matches_name(name, suffixes) for r in active)


# ---- the router preset ---------------------------------------------------------------------------

ROUTER_RULE_NAME = "Router"
ROUTER_PRIORITY = 40  # below the default 50: a person's own rules win over the preset
ROUTER_RETRIES = 1  # a home router drops the odd UDP packet; one more try is cheap on a LAN


def reverse_zones(network: str) -> list[str]:
    """The reverse-lookup zones that exactly cover ``network`` (``names.reverse_zones``: at
    most 16), or ForwardRuleError naming the field ``network``."""
    try:
        return names.reverse_zones(network)
    except ValueError as e:
        raise ForwardRuleError(str(e), "network") from None


def router_preset_rule(router: str, domain: str | None = "lan",
                       network: str | None = None) -> tuple[dict, dict]:
    """(rule dict, parameters) of the "ask the router" preset: ``domain`` and every name below it,
    and the reverse zones of ``network`` (default: the router's /24, or its /64 for IPv6),
    forwarded to ``router`` ("ip" or "ip:port"). ``domain`` empty or None: reverse zones only."""
    if not isinstance(router, str) or not router.strip():
        raise ForwardRuleError("router is required (its IP address)", "router")
    try:
        host, port = parse_hostport(router, 53)
    except ValueError as e:
        raise ForwardRuleError(f"invalid router address: {e}", "router") from None
    if port == 0:
        raise ForwardRuleError("invalid router address: port 0", "router")
    domains = []
    if domain is not None and not isinstance(domain, str):
        raise ForwardRuleError("domain must be a string such as \"lan\"", "domain")
    if domain and domain.strip():
        try:
            _below, base = parse_domain_pattern(domain)  # "*.lan" or "lan": both mean lan and below
        except ValueError as e:
            raise ForwardRuleError(f"invalid domain {domain!r}: {e}", "domain") from None
        domains.append(base)
    if network is None or (isinstance(network, str) and not network.strip()):
        ip = ipaddress.ip_address(host)
        network = f"{ip}/{24 if ip.version == 4 else 64}"
    if not isinstance(network, str):
        raise ForwardRuleError("network must be a string such as 192.168.1.0/24", "network")
    zones = reverse_zones(network)
    network = str(ipaddress.ip_network(network.strip(), strict=False))
    upstream = format_hostport(host, port)
    rule = {"name": ROUTER_RULE_NAME, "domains": domains + zones, "client_cidrs": [], "query_types": [],
            "upstreams": [upstream], "priority": ROUTER_PRIORITY, "timeout": "",
            "max_retries": ROUTER_RETRIES, "failover": False, "enabled": True}
    return rule, {"router": upstream if port != 53 else host, "domain": domains[0] if domains else "",
                  "network": network}
