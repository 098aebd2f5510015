"""Configuration changed at runtime: validated, persisted, and applied live without a restart.

The live configuration is a :class:`LiveConfig`: read it like a Config (``config["cache.max_ttl"]``
is always the value in force). The API's ``PUT /api/config/<section>`` calls::

    new, before, after = live.update("cache", {"cache.max_ttl": 600})

which validates with the config file's own validators (``Config.with_overrides``, so there is
no second copy of the rules), stores the override in the settings database (key
``config.overrides``, a dict of dotted keys) and then :meth:`LiveConfig.apply` makes it the
configuration in force and reconfigures the running components in place: the resolver
(``Resolver.configure``: the DNS chain's shared state and stages each read their own options,
``Chain.configure``, dns/chain.py), logging its own (``logfile.apply_logging``), and announces
``Change.CONFIG`` (burrow/changes.py) so no answer made under the old settings is replayed. At start the
composition root reads the stored overrides back with :func:`load_overrides`, so changes
survive a restart.

Only the sections below can be changed at runtime; listen addresses, storage and the like are
boot settings (burrow.toml) because changing them means rebinding sockets or moving files.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .changes import Announce, Change, ignore
from .config import Config, ConfigError, nest
from .logfile import LOGGING_KEYS, apply_logging

if TYPE_CHECKING:
    from .resolver import Resolver
    from .storage.settings import SettingsDB
    from .telemetry.recorder import Recorder

log = logging.getLogger(__name__)

SETTINGS_KEY = "config.overrides"

# API section name → the options it may change (dotted keys, as in burrow.toml).
SECTIONS: dict[str, tuple[str, ...]] = {
    "upstreams": ("upstream_dns_servers", "upstream.bootstrap"),
    "cache": ("cache.enabled", "cache.max_bytes", "cache.min_ttl", "cache.max_ttl",
              "cache.negative_ttl", "cache.serve_stale", "cache.prefetch"),
    "logging": LOGGING_KEYS,
    "rate_limit": ("rate_limit.enabled", "rate_limit.rps", "rate_limit.burst", "rate_limit.action",
                   "rate_limit.cleanup_interval", "rate_limit.max_tracked_clients"),
    # How a block is answered (dns/shared.py's BlockingSettings, re-read by Shared.configure).
    "blocking": ("filtering.blocking_mode", "filtering.custom_ipv4", "filtering.custom_ipv6",
                 "filtering.blocked_ttl"),
    # What the query log keeps: each answer's decision trace (the DNS server, from the next
    # query), and how long and how much (the recorder's next prune).
    "privacy": ("server.decision_trace", "storage.query_log_retention_days", "storage.query_log_max_bytes"),
    # The certificate and the TLS listeners (burrow/tls): PUT /api/config/tls checks the
    # certificate first and has the TLS service open, move or close the listeners after.
    # ACME (modes autocert and acme): the seed's tls.autocert / tls.acme tables, nested in the
    # body and the answers (short names would clash: both have hosts, email, cache_dir).
    "tls": ("tls.mode", "tls.cert_file", "tls.key_file", "tls.dot_enabled", "tls.dot_address",
            "tls.https_address", "tls.hsts", "tls.directory_url", "tls.directory_ca_file",
            "tls.autocert.hosts", "tls.autocert.email", "tls.autocert.cache_dir", "tls.autocert.http01_address",
            "tls.acme.dns_provider", "tls.acme.hosts", "tls.acme.email", "tls.acme.cache_dir",
            "tls.acme.renew_before", "tls.acme.dns_propagation", "tls.acme.cloudflare.api_token",
            "tls.acme.cloudflare.zone_id", "tls.acme.cloudflare.api_base"),
}
# Sections whose keys are named in the API relative to a prefix and nested (tls.acme.hosts →
# {"acme": {"hosts": ...}}); the others by their last part.
NESTED_SECTIONS = {"tls": "tls."}
_QUERY_LOG_KEYS = frozenset(("storage.query_log_retention_days", "storage.query_log_max_bytes"))
RUNTIME_KEYS = frozenset(k for keys in SECTIONS.values() for k in keys)
# Besides the upstreams' own (upstream_dns_servers, [upstream]: other servers may answer otherwise,
# e.g. a filtering resolver), a change of these makes cached answers wrong: a disabled cache must
# not answer, stored TTLs were clamped by the old limits.
_PURGE_KEYS = frozenset(("cache.enabled", "cache.min_ttl", "cache.max_ttl", "cache.negative_ttl"))

# Option names that would hold secrets (TLS keys, tokens, passwords): never shown or audited.
_SECRET = re.compile(r"(password|secret|token|private_key|api_key|credential)", re.I)


def is_secret(key: str) -> bool:
    return bool(_SECRET.search(key.rsplit(".", 1)[-1]))


def snapshot(config: Config) -> dict:
    """The live configuration in the burrow.toml shape; a secret option only as ``<name>_set``
    (whether one is set), never its value."""
    return nest((f"{key}_set", bool(value)) if is_secret(key) else (key, value) for key, value in config.items())


def short_name(section: str, key: str) -> str:
    """The API's name of ``key`` in ``section``: "max_ttl", or "acme.hosts" in a nested section."""
    prefix = NESTED_SECTIONS.get(section)
    return key.removeprefix(prefix) if prefix else key.rsplit(".", 1)[-1]


def section_values(config: Config, section: str) -> dict:
    """``{short name: value}`` of one runtime section (``{"max_ttl": 86400, ...}``; nested for
    tls). A secret option is replaced by ``<name>_set`` (whether one is set): never its value."""
    items = []
    for key in SECTIONS[section]:
        name = short_name(section, key)
        if is_secret(key):
            items.append((f"{name}_set", bool(config[key])))
        else:
            items.append((name, config[key]))
    return nest(items) if section in NESTED_SECTIONS else dict(items)


# ---- start-up --------------------------------------------------------------------------------

def stored_overrides(settings_db) -> dict:
    """The overrides kept in the settings database (only runtime keys; junk is ignored)."""
    raw = settings_db.get(SETTINGS_KEY, {}) if settings_db is not None else {}
    if not isinstance(raw, dict):
        log.warning("settings %s is not a table; ignored", SETTINGS_KEY)
        return {}
    out = {}
    for key, value in raw.items():
        if key in RUNTIME_KEYS:
            out[key] = value
        else:
            log.warning("stored runtime option %r cannot be changed at runtime; ignored", key)
    return out


def load_overrides(config: Config, settings_db) -> Config:
    """``config`` with the overrides stored in the settings database applied (source "runtime").

    ``settings_db`` is an open SettingsDB, or the path of settings.db (opened read-only for the
    moment of the call; a missing file means no overrides). A stored value the current schema
    rejects is skipped with a warning: a bad setting must never keep the appliance from booting.
    """
    if isinstance(settings_db, (str, os.PathLike)):
        path = Path(settings_db)
        if not path.exists():
            return config
        import sqlite3

        from .storage.settings import decode
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                row = conn.execute("SELECT value FROM settings WHERE key = ?", (SETTINGS_KEY,)).fetchone()
            finally:
                conn.close()
        except sqlite3.Error as e:
            log.warning("cannot read runtime settings from %s: %s", path, e)
            return config
        try:
            value = decode(row[0]) if row else {}
        except ValueError as e:  # the start moves the row aside (state_check.repair)
            log.warning("stored runtime settings ignored: %s", e)
            return config
        overrides = stored_overrides(_OneValue(value))
    else:
        try:
            overrides = stored_overrides(settings_db)
        except (ValueError, RecursionError) as e:
            log.warning("stored runtime settings ignored: %s", e)
            return config
    if not overrides:
        return config
    for _ in range(len(overrides) + 1):  # bounded: each pass drops at least one bad key
        try:
            new = config.with_overrides(overrides)
        except ConfigError as e:
            bad = {k for k, _ in e.errors}
            log.warning("stored runtime settings rejected, using the file's values for them: %s", e)
            if not bad & overrides.keys():  # a cross-check the overrides alone cannot fix
                overrides = {}
            overrides = {k: v for k, v in overrides.items() if k not in bad}
            if not overrides:
                return config
            continue
        log.info("runtime settings applied over the configuration file: %s", ", ".join(sorted(overrides)))
        return new
    return config


class _OneValue:
    def __init__(self, value):
        self.value = value

    def get(self, key, default=None):
        return self.value if key == SETTINGS_KEY else default


# ---- changing --------------------------------------------------------------------------------

class LiveConfig:
    """The configuration in force. Reads like a Config; :meth:`update` changes it at runtime.

    :param base: the file and the environment, before any runtime override (a restore reapplies
        the restored overrides over it).
    :param current: the configuration Burrow started with (``base`` + the stored overrides).
    :param settings: the settings DB the overrides are kept in.
    :param resolver: the running DNS core (burrow/resolver.py): what a change reconfigures.
    :param on_change: told ``Change.CONFIG`` after every change that took effect.
    :param recorder: the query-log recorder (telemetry/recorder.py): its retention and size
        limits follow the ``privacy`` section.
    """

    def __init__(self, base: Config, current: Config, settings: SettingsDB, resolver: Resolver,
                 on_change: Announce = ignore, recorder: Recorder | None = None):
        self.base = base
        self.current = current
        self.settings = settings
        self.resolver = resolver
        self.on_change = on_change
        self.recorder = recorder

    def __getitem__(self, key: str) -> Any:
        return self.current[key]

    def items(self) -> Iterable[tuple[str, Any]]:
        return self.current.items()

    def source(self, key: str) -> str:
        return self.current.source(key)

    def update(self, section: str, changes: Mapping[str, Any]) -> tuple[Config, dict, dict]:
        """Validate ``changes`` (dotted keys of ``section``), persist them, apply them live.

        Returns (new config, section before, section after). Raises ConfigError naming the key
        path of every bad value; nothing is stored or changed then.
        """
        allowed = SECTIONS[section]
        unknown = [k for k in changes if k not in allowed]
        if unknown:
            raise ConfigError([(k, f"cannot be changed in section {section}") for k in unknown])
        old = self.current
        new = old.with_overrides(dict(changes))  # the config file's validators and cross-checks
        before, after = section_values(old, section), section_values(new, section)
        stored = stored_overrides(self.settings)
        stored.update({k: new[k] for k in changes})
        self.settings.set(SETTINGS_KEY, stored)  # durable before anything changes
        self.apply(new)
        return new, before, after

    def reload(self) -> list[str]:
        """Apply the overrides stored now (after a restore replaced them)."""
        return self.apply(load_overrides(self.base, self.settings))

    def apply(self, new_config: Config) -> list[str]:
        """Make ``new_config`` the configuration in force and reconfigure, in place, every
        running component whose options changed. Returns the changed keys.

        Always ends, when something changed, with ``Change.CONFIG`` announced: the fast path
        must not replay answers made under the old settings.
        """
        old = self.current
        changed = [k for k, _ in new_config.items() if old[k] != new_config[k]]
        self.current = new_config
        if not changed:
            return changed
        keys = set(changed)
        upstreams = any(k.startswith("upstream") for k in keys)
        resolver = self.resolver
        resolver.configure(new_config, upstreams_changed=upstreams)
        if keys & set(LOGGING_KEYS):
            apply_logging(new_config)
        if keys & _QUERY_LOG_KEYS and self.recorder is not None:
            self.recorder.retention_days = new_config["storage.query_log_retention_days"]
            self.recorder.max_bytes = new_config["storage.query_log_max_bytes"]
        if upstreams or keys & _PURGE_KEYS:
            resolver.cache_stage.purge()
        self.on_change(Change.CONFIG)
        log.info("configuration changed at runtime: %s", ", ".join(changed))
        return changed
