"""Configuration and cache management: GET /api/config, PUT /api/config/{upstreams,cache,
logging,rate-limit} (seed 003) and /api/config/{blocking,privacy}, POST /api/cache/purge (seed 003).

Request bodies are validated field by field with the config file's own validators (the
``Option`` records of burrow.config.schema), and the cross-checks with
``Config.with_overrides``: there is one set of rules. Changes are stored in the settings
database and applied to the running resolver at once (burrow.runtime_config); each one is an
audit event ``{"type": "config.changed", "section", "before", "after", "actor", "client_ip"}``.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from .. import runtime_config
from ..config import BY_KEY, ConfigError
from .errors import ApiError, ValidationError
from .routes import Api
from .schema import HOST_PORT, IPV4, IPV6, UPSTREAM, Field, Int, Obj, Str, _padded

if TYPE_CHECKING:
    from ..resolver import Resolver
    from ..runtime_config import LiveConfig
    from ..telemetry.events import EventBus
    from ..tls.service import TlsService

_ITEM = re.compile(r"^item (\d+): (.*)$", re.S)


class OptionField(Field):
    """A body field validated by a config Option's validator (the same one burrow.toml uses).

    List items that fail are named by index (``upstream_dns_servers[1]``)."""

    def __init__(self, key: str, **kw):
        self.option = BY_KEY[key]
        super().__init__(required=False, description=self.option.help, **kw)
        self.key = key

    def _clean(self, value, path, problems):
        items = _schema_of(self.option).get("items", {}).get("pattern")
        if items and isinstance(value, list):  # the documented shape first: the same check
            bad = [i for i, v in enumerate(value) if not (isinstance(v, str) and re.fullmatch(items, v.strip()))]
            if bad:
                problems.extend((f"{path}[{i}]", "has the wrong format") for i in bad)
                return None
        try:
            return self.option.validate(value)
        except ValueError as e:
            message = str(e)
            m = _ITEM.match(message)
            if m:
                path, message = f"{path}[{m.group(1)}]", m.group(2)
            problems.append((path, message))
            return None

    def _schema(self) -> dict:
        return _schema_of(self.option)


def _schema_of(option) -> dict:
    """JSON Schema for an option, read from its default's type and its validator's bounds."""
    default = option.default
    fn = option.validate
    bounds = dict(zip(getattr(fn.__code__, "co_freevars", ()),
                      (c.cell_contents for c in (fn.__closure__ or ()))))
    if isinstance(default, bool):
        s = {"type": "boolean"}
    elif isinstance(default, int):
        s = {"type": "integer"}
    elif isinstance(default, float):
        s = {"type": "number"}
    elif isinstance(default, list):
        s = {"type": "array", "items": {"type": "string"}}
        item = bounds.get("item")
        if getattr(item, "__qualname__", "").startswith("hostport."):  # "ip", "ip:port", "[v6]:port"
            s["items"]["pattern"] = f"^{HOST_PORT}$"
        elif getattr(item, "__qualname__", "") == "upstream":  # ... or tls://, https:// (config/upstream_spec.py)
            s["items"]["pattern"] = f"^{UPSTREAM}$"
        if isinstance(bounds.get("min_items"), int) and bounds["min_items"]:
            s["minItems"] = bounds["min_items"]
        if isinstance(bounds.get("max_items"), int):
            s["maxItems"] = bounds["max_items"]
        return s
    else:
        s = {"type": "string"}
        if isinstance(bounds.get("allowed"), tuple):
            s["enum"] = list(bounds["allowed"])
        if getattr(fn, "__qualname__", "").startswith("ip_of.") and bounds.get("version") in (4, 6):
            s["pattern"] = _padded(f"^{IPV4 if bounds['version'] == 4 else IPV6}$")  # custom_ipv4/6
        return s
    if isinstance(bounds.get("lo"), (int, float)):
        s["minimum"] = bounds["lo"]
    if isinstance(bounds.get("hi"), (int, float)):
        s["maximum"] = bounds["hi"]
    return s


def section_body(name: str, section: str, required: bool | tuple[str, ...], example: dict) -> Obj:
    """The body of PUT /api/config/<section>: ``required`` True (every field), False (none) or
    the keys that must be given."""
    keys = runtime_config.SECTIONS[section]
    fields = {}
    for key in keys:
        field = OptionField(key)
        field.required = required if isinstance(required, bool) else key in required
        fields[key.rsplit(".", 1)[-1]] = field
    return Obj(name, fields, min_fields=1, example=example)


UpstreamsBody = section_body("UpstreamsUpdate", "upstreams", ("upstream_dns_servers",),
                             {"upstream_dns_servers": ["tls://dns.quad9.net", "1.1.1.1:53"]})
CacheBody = section_body("CacheUpdate", "cache", False,
                         {"enabled": True, "max_bytes": 16777216, "min_ttl": 0, "max_ttl": 86400,
                          "negative_ttl": 3600, "serve_stale": True, "prefetch": True})
LoggingBody = section_body("LoggingUpdate", "logging", False,
                           {"level": "info", "format": "text", "output": "stderr"})
RateLimitBody = section_body("RateLimitUpdate", "rate_limit", False,
                             {"enabled": True, "rps": 100.0, "burst": 400, "action": "drop",
                              "cleanup_interval": 60.0, "max_tracked_clients": 10000})

BlockingBody = section_body("BlockingUpdate", "blocking", False,
                            {"blocking_mode": "nxdomain", "blocked_ttl": 10})
TlsBody = section_body("TlsUpdate", "tls", False,
                       {"mode": "manual", "cert_file": "/etc/burrow/tls/fullchain.pem",
                        "key_file": "/etc/burrow/tls/privkey.pem", "dot_enabled": True, "dot_address": "0.0.0.0:853",
                        "https_address": "0.0.0.0:443", "hsts": False})
PrivacyBody = section_body("PrivacyUpdate", "privacy", False,
                           {"decision_trace": False, "query_log_retention_days": 2})

ConfigSnapshot = Obj("ConfigSnapshot", {}, additional=True, example={
    "upstream_dns_servers": ["9.9.9.9:53", "1.1.1.1:53"],
    "server": {"listen_address": ["0.0.0.0:53"], "web_ui_address": "0.0.0.0:8080", "decision_trace": True},
    "cache": {"enabled": True, "max_bytes": 16777216, "min_ttl": 0, "max_ttl": 86400, "negative_ttl": 3600,
              "serve_stale": True, "prefetch": True},
    "rate_limit": {"enabled": True, "rps": 100.0, "burst": 400, "action": "drop",
                   "cleanup_interval": 60.0, "max_tracked_clients": 10000},
    "logging": {"level": "info", "format": "text", "output": "stderr"},
})
ConfigChanged = Obj("ConfigChanged", {
    "status": Str(enum=["ok"]), "message": Str(), "section": Str(),
    "config": Obj("ConfigSection", {}, additional=True, description="the section's values now in effect"),
}, example={"status": "ok", "message": "cache settings updated and applied",
            "section": "cache", "config": {"enabled": False, "max_bytes": 16777216, "min_ttl": 0,
                                           "max_ttl": 86400, "negative_ttl": 3600,
                                           "serve_stale": True, "prefetch": True}})
PurgeResult = Obj("CachePurged", {"status": Str(enum=["ok"]), "message": Str(), "entries_cleared": Int()},
                  example={"status": "ok", "message": "DNS cache purged successfully", "entries_cleared": 1523})


def _short(section: str, key: str) -> str:
    return key.rsplit(".", 1)[-1] if key in runtime_config.SECTIONS[section] else key


def register(api: Api, *, config: LiveConfig, resolver: Resolver, events: EventBus, tls: TlsService) -> None:
    @api.route("GET", "/api/config", role="viewer", summary="The live configuration (no secrets)",
               tags=["config"], responses={200: ConfigSnapshot})
    async def get_config(req):
        out = runtime_config.snapshot(config.current)
        # The certificate in force: subject, names, expiry, SHA-256 fingerprint (never the key).
        out.setdefault("tls", {})["certificate"] = tls.describe()
        return out

    def audit(req, section: str, before: dict, after: dict) -> None:
        events.publish("events", {
            "type": "config.changed", "section": section, "before": before, "after": after,
            "actor": getattr(req.g.principal, "username", None), "client_ip": req.g.client_ip,
            "time": time.time()})

    def changer(path: str, section: str, body: Obj, what: str):
        @api.route("PUT", path, role="admin", summary=f"Change the {what} settings; applied at once and kept",
                   tags=["config"], body=body, responses={200: ConfigChanged})
        async def put_section(req):
            full = {key.rsplit(".", 1)[-1]: key for key in runtime_config.SECTIONS[section]}
            changes = {full[k]: v for k, v in req.g.body.items() if k in body.fields}
            try:
                _, before, after = config.update(section, changes)
            except ConfigError as e:  # a cross-check (min_ttl > max_ttl): name the body field
                raise ValidationError([(_short(section, k), m) for k, m in e.errors]) from None
            audit(req, section, before, after)
            return {"status": "ok", "message": f"{what} settings updated and applied",
                    "section": section, "config": after}

        put_section.__name__ = f"put_{section}"

    changer("/api/config/upstreams", "upstreams", UpstreamsBody, "upstream")
    changer("/api/config/cache", "cache", CacheBody, "cache")
    changer("/api/config/logging", "logging", LoggingBody, "logging")
    changer("/api/config/rate-limit", "rate_limit", RateLimitBody, "rate limit")
    changer("/api/config/blocking", "blocking", BlockingBody, "blocking")
    changer("/api/config/privacy", "privacy", PrivacyBody, "privacy")

    @api.route("PUT", "/api/config/tls", role="admin", tags=["config"], body=TlsBody,
               responses={200: ConfigChanged},
               summary="Change the TLS settings (certificate mode and files, DNS over TLS, HTTPS); applied at once "
                       "and kept")
    async def put_tls(req):
        """Seed 003's TLS endpoint. The new settings are judged whole before anything changes
        (manual PEM files readable, the key matching, valid now; ACME modes not yet); then
        stored, and the TLS service opens, moves or closes its listeners. A listener that cannot
        bind puts the old settings back (400 naming the address)."""
        full = {key.rsplit(".", 1)[-1]: key for key in runtime_config.SECTIONS["tls"]}
        changes = {full[k]: v for k, v in req.g.body.items() if k in TlsBody.fields}
        try:
            tls.check(config.current.with_overrides(changes))
            _, before, after = config.update("tls", changes)
        except ConfigError as e:
            raise ValidationError([(_short("tls", k), m) for k, m in e.errors]) from None
        try:
            await tls.reconcile()
        except ConfigError as e:
            config.update("tls", {full[k]: before[k] for k in (key.rsplit(".", 1)[-1] for key in changes)})
            await tls.reconcile(strict=False)
            raise ValidationError([(_short("tls", k), m) for k, m in e.errors]) from None
        audit(req, "tls", before, after)
        return {"status": "ok", "message": "TLS settings updated and applied", "section": "tls",
                "config": {**after, "certificate": tls.describe()}}

    @api.route("POST", "/api/cache/purge", role="admin", summary="Empty the DNS cache", tags=["cache"],
               responses={200: PurgeResult, 503: "cache not available (caching disabled in config)"})
    async def purge_cache(req):
        if not resolver.cache_stage.enabled:
            raise ApiError(503, "cache not available (caching disabled in config)")
        cleared = resolver.purge_cache()
        events.publish("events", {"type": "cache.purged", "entries_cleared": cleared,
                                      "actor": getattr(req.g.principal, "username", None),
                                      "client_ip": req.g.client_ip, "time": time.time()})
        return {"status": "ok", "message": "DNS cache purged successfully", "entries_cleared": cleared}
