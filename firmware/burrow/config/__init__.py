"""Layered configuration: built-in defaults → burrow.toml → drop-in files → environment →
runtime settings.

``load(path, config_dir=…)`` returns a validated :class:`Config` or raises :class:`ConfigError` listing every
problem with its key path; Burrow refuses to start rather than guess.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol

from .schema import BY_KEY, OPTIONS, ConfigError, Option, parse_upstream

__all__ = ["Config", "ConfigError", "ConfigView", "load", "OPTIONS", "BY_KEY"]

ENV_PREFIX = "BURROW__"  # BURROW__CACHE__MAX_BYTES=... sets cache.max_bytes


class ConfigView(Protocol):
    """What reads options: a Config, the live configuration (runtime_config.LiveConfig), or a
    plain dict of dotted keys in a test."""

    def __getitem__(self, key: str) -> Any: ...


class Config:
    """A validated, immutable set of options. ``cfg["cache.max_bytes"]``; ``cfg.source(key)``."""

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str]):
        self._values = dict(values)
        self._sources = dict(sources)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def source(self, key: str) -> str:
        """Where the value came from: default, file, env or runtime."""
        return self._sources[key]

    def items(self) -> Iterable[tuple[str, Any]]:
        return ((o.key, self._values[o.key]) for o in OPTIONS)

    def nested(self) -> dict:
        """The options as the TOML shape: top-level keys plus one table per section."""
        return nest(self.items())

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "runtime") -> "Config":
        """A new Config with ``overrides`` (dotted keys) validated and applied."""
        errors: list[tuple[str, str]] = []
        values, sources = dict(self._values), dict(self._sources)
        _apply(overrides, values, sources, errors, source)
        errors.extend(_cross_checks(values))
        if errors:
            raise ConfigError(errors)
        return Config(values, sources)


def nest(items: Iterable[tuple[str, Any]]) -> dict:
    """Dotted keys → nested tables: [("cache.max_ttl", 60)] → {"cache": {"max_ttl": 60}}."""
    out: dict = {}
    for key, value in items:
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


# Every table a key may sit in: the sections, and nested ones such as tls.acme.cloudflare.
_TABLES = frozenset(".".join(o.key.split(".")[:n]) for o in OPTIONS for n in range(1, o.key.count(".") + 1))


def _flatten(table: Mapping[str, Any], prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    flat: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            if key not in _TABLES:
                errors.append((key, "unknown section"))
                continue
            sub, sub_errors = _flatten(v, key + ".")
            flat.update(sub)
            errors.extend(sub_errors)
        else:
            flat[key] = v
    return flat, errors


def _cross_checks(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    errors = []
    if values["cache.min_ttl"] > values["cache.max_ttl"]:
        errors.append(("cache.min_ttl", "must not exceed cache.max_ttl"))
    errors.extend(_bootstrap_check(values["upstream_dns_servers"], values["upstream.bootstrap"]))
    errors.extend(_acme_check(values))
    return errors


def _acme_check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An ACME mode needs its names (HTTP-01 cannot prove a wildcard) and, for DNS-01, the
    provider's token. Never quotes the token."""
    mode = values["tls.mode"]
    if mode not in ("autocert", "acme"):
        return []
    hosts_key = f"tls.{mode}.hosts"
    hosts = values[hosts_key]
    errors = []
    if not hosts:
        errors.append((hosts_key, f"tls.mode = \"{mode}\" needs at least one name"))
    if mode == "autocert":
        errors.extend((f"{hosts_key}[{i}]", f"{h!r}: a wildcard needs the DNS-01 challenge (tls.mode = \"acme\")")
                      for i, h in enumerate(hosts) if h.startswith("*."))
    if len(set(hosts)) != len(hosts):
        errors.append((hosts_key, "a name is listed twice"))
    if mode == "acme" and not values["tls.acme.cloudflare.api_token"]:
        errors.append(("tls.acme.cloudflare.api_token", "tls.mode = \"acme\" with Cloudflare needs an API token"))
    return errors


def _bootstrap_check(servers: list[str], bootstrap: list[str]) -> list[tuple[str, str]]:
    """An encrypted upstream named by host name needs a plain resolver to find it: Burrow
    never asks itself (a loop, and nothing to ask before it has an upstream)."""
    if bootstrap:
        return []
    specs = [parse_upstream(text) for text in servers]  # already validated
    if any(not s.encrypted for s in specs):
        return []
    return [(f"upstream_dns_servers[{i}]",
             f"{s.host} is a host name: set upstream.bootstrap (or list a plain \"ip:port\" upstream) "
             f"to resolve it, or give its address with #{s.host}")
            for i, s in enumerate(specs) if not s.host_is_address]


def _env_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX):].lower().replace("__", ".")
            out[key] = value
    return out


def _read_toml(path: str | os.PathLike) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError([("(file)", f"cannot read {path}: {e.strerror}")]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([("(file)", f"{path} is not valid TOML: {e}")]) from None


def drop_ins(config_dir: str | os.PathLike | None) -> list[Path]:
    """The ``*.toml`` files of ``config_dir`` in name order (none when it does not exist)."""
    if config_dir is None:
        return []
    try:
        names = sorted(e.name for e in os.scandir(os.fspath(config_dir))
                       if str(e.name).endswith(".toml") and e.is_file())
    except FileNotFoundError:
        return []
    except OSError as e:
        raise ConfigError([("(file)", f"cannot read {config_dir}: {e.strerror}")]) from None
    return [Path(config_dir) / n for n in names]


def load(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None,
         config_dir: str | os.PathLike | None = None) -> Config:
    """Read ``path`` (TOML) over the built-in defaults, then each ``*.toml`` file of
    ``config_dir`` in name order (a missing folder is none; a later file wins key by key), then
    ``BURROW__SECTION__KEY`` variables.

    Raises ConfigError with every problem found (unknown keys, bad values, unreadable file); an
    error in a drop-in names that file.
    """
    values = {o.key: o.default for o in OPTIONS}
    sources = {o.key: "default" for o in OPTIONS}
    errors: list[tuple[str, str]] = []
    if path is not None:
        flat, errors = _flatten(_read_toml(path))
        _apply(flat, values, sources, errors, "file")
    for extra in drop_ins(config_dir):
        flat, found = _flatten(_read_toml(extra))
        found_here: list[tuple[str, str]] = []
        _apply(flat, values, sources, found_here, "file")
        errors.extend((f"{extra.name}: {key}", msg) for key, msg in found + found_here)
    env = _env_overrides(os.environ if environ is None else environ)
    _apply(env, values, sources, errors, "env")
    errors.extend(_cross_checks(values))
    if errors:
        raise ConfigError(errors)
    return Config(values, sources)


def _apply(flat: Mapping[str, Any], values: dict, sources: dict, errors: list, source: str) -> None:
    for key, raw in flat.items():
        opt: Option | None = BY_KEY.get(key)
        if opt is None:
            errors.append((key, "unknown option"))
            continue
        try:
            values[key] = opt.validate(raw)
            sources[key] = source
        except ValueError as e:
            errors.append((key, str(e)))


def data_dir(cfg: Config) -> Path:
    return Path(cfg["storage.data_dir"]).expanduser()


def add_cli_arguments(parser, config_help: str = "path to burrow.toml") -> None:
    """``--config`` and ``--config-dir`` for a ``burrow`` command (run, check-config, user, zone)."""
    parser.add_argument("--config", "-c", help=config_help)
    parser.add_argument("--config-dir", metavar="DIR",
                        help="a folder of *.toml files applied over --config in name order "
                             "(the image's /etc/burrow/burrow.d; a missing folder is fine)")


def data_dir_for_cli(config_path: str | None, config_dir: str | None = None) -> Path | None:
    """The data dir for a shell command (``burrow user``, ``burrow zone``), or None after
    printing every config error to stderr as ``burrow: key: message`` (exit status 2)."""
    import sys
    try:
        return data_dir(load(config_path, config_dir=config_dir))
    except ConfigError as e:
        for key, msg in e.errors:
            sys.stderr.write(f"burrow: {key}: {msg}\n")
        return None
