"""Configuration and cache management: GET /api/config, PUT /api/config/{upstreams,cache,
logging,rate-limit,tls} (seed 003) and /api/config/{blocking,privacy}, POST /api/cache/purge (seed 003);
and the ACME HTTP-01 answers at /.well-known/acme-challenge/<token> (the TLS service's tokens).

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
from ..config.upstream_spec import MAX_TEXT
from ..tls.acme import ACME_CHALLENGE_PATH
from .errors import ApiError, ValidationError
from .routes import Api
from microdot import Response

from .schema import HOST_PORT, IPV4, IPV6, UPSTREAM, Bool, Field, Int, Obj, Str, _padded

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
            s["items"].update(pattern=f"^{UPSTREAM}$", maxLength=MAX_TEXT)
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
def tls_body() -> Obj:
    """PUT /api/config/tls: the top-level options by their names, and the seed's ``autocert`` and
    ``acme`` (with ``cloudflare``) objects, each with the seed's ``enabled`` (another way to set
    ``mode``)."""
    tables: dict[str, dict[str, Field]] = {"": {}}
    for key in runtime_config.SECTIONS["tls"]:
        *table, name = key.removeprefix("tls.").split(".")
        tables.setdefault(".".join(table), {})[name] = OptionField(key)
    cloudflare = Obj("TlsCloudflareUpdate", tables.pop("acme.cloudflare"), required=False,
                     description="Cloudflare's API for DNS-01 (mode acme). api_token is a secret: never shown; "
                                 "left out, the stored one stays.")
    enabled = "Seed form of mode = \"{0}\": true sets it; false is refused while mode is \"{0}\"."
    autocert = Obj("TlsAutocertUpdate", {"enabled": Bool(required=False, description=enabled.format("autocert")),
                                         **tables.pop("autocert")}, required=False,
                   description="ACME HTTP-01 (mode autocert)")
    acme = Obj("TlsAcmeUpdate", {"enabled": Bool(required=False, description=enabled.format("acme")),
                                 **tables.pop("acme"), "cloudflare": cloudflare}, required=False,
               description="ACME DNS-01 through a DNS provider's API (mode acme)")
    return Obj("TlsUpdate", {**tables.pop(""), "autocert": autocert, "acme": acme}, min_fields=1, example={
        "mode": "acme", "dot_enabled": True, "dot_address": "0.0.0.0:853", "https_address": "0.0.0.0:443",
        "acme": {"hosts": ["dns.example.org"], "email": "owner@example.org", "renew_before": "720h",
                 "cloudflare": {"api_token": "a-cloudflare-token-with-zone-dns-edit"}}})


TlsBody = tls_body()
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
    if section in runtime_config.NESTED_SECTIONS:
        return key.removeprefix(runtime_config.NESTED_SECTIONS[section])
    return key.rsplit(".", 1)[-1] if key in runtime_config.SECTIONS[section] else key


def tls_changes(body: dict, mode_now: str) -> dict:
    """The dotted options a PUT /api/config/tls body sets; the seed's ``enabled`` flags become
    ``mode`` (ValidationError naming the flag when they contradict it)."""
    changes: dict = {}

    def walk(table: dict, prefix: str) -> None:
        for name, value in table.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{name}.")
            elif name != "enabled":
                changes[f"{prefix}{name}"] = value

    walk(body, "tls.")
    problems = []
    turned_on = [m for m in ("autocert", "acme") if (body.get(m) or {}).get("enabled") is True]
    if len(turned_on) > 1:
        problems.append(("acme.enabled", "not with autocert.enabled: one certificate mode at a time"))
    elif turned_on:
        if "tls.mode" in changes and changes["tls.mode"] != turned_on[0]:
            problems.append((f"{turned_on[0]}.enabled", f"contradicts mode = {changes['tls.mode']!r}"))
        changes["tls.mode"] = turned_on[0]
    mode = changes.get("tls.mode", mode_now)
    for m in ("autocert", "acme"):
        if (body.get(m) or {}).get("enabled") is False and mode == m:
            problems.append((f"{m}.enabled", f"false while mode is {m!r}: set mode (off, manual, self_signed) "
                                             "to leave it"))
    if problems:
        raise ValidationError(problems)
    return changes


def tls_view(config, tls: TlsService) -> dict:
    """The ``tls`` section as GET /api/config shows it: the options (a token only as
    ``api_token_set``), the seed's ``enabled`` flags, the certificate and the ACME state."""
    out = runtime_config.section_values(config.current, "tls")
    mode = out["mode"]
    out["autocert"]["enabled"] = mode == "autocert"
    out["acme"]["enabled"] = mode == "acme"
    out["certificate"] = tls.describe()
    out["acme_state"] = tls.acme_state()
    return out


def register(api: Api, *, config: LiveConfig, resolver: Resolver, events: EventBus, tls: TlsService) -> None:
    @api.route("GET", "/api/config", role="viewer", summary="The live configuration (no secrets)",
               tags=["config"], responses={200: ConfigSnapshot})
    async def get_config(req):
        out = runtime_config.snapshot(config.current)
        # The certificate in force: subject, names, expiry, SHA-256 fingerprint (never the key);
        # the ACME state; a provider token only as whether one is set.
        out["tls"] = {**out.get("tls", {}), **tls_view(config, tls)}
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
        changes = tls_changes(req.g.body, config["tls.mode"])
        old = config.current
        try:
            tls.check(config.current.with_overrides(changes))
            _, before, after = config.update("tls", changes)
        except ConfigError as e:
            raise ValidationError([(_short("tls", k), m) for k, m in e.errors]) from None
        try:
            await tls.reconcile()
        except ConfigError as e:
            config.update("tls", {key: old[key] for key in changes})
            await tls.reconcile(strict=False)
            raise ValidationError([(_short("tls", k), m) for k, m in e.errors]) from None
        audit(req, "tls", before, after)
        return {"status": "ok", "message": "TLS settings updated and applied", "section": "tls",
                "config": tls_view(config, tls)}

    @api.route("GET", f"{ACME_CHALLENGE_PATH}<token>", role="public", static=True, raw_response=True, tags=["tls"],
               params={"token": Str(max_len=256, description="the ACME challenge's token")},
               summary="ACME HTTP-01: the key authorisation for a token while an issuance waits for it",
               responses={200: "text/plain: the key authorisation", 404: "no challenge with this token is pending"})
    async def acme_challenge(req, token):
        """The CA's HTTP-01 check (RFC 8555 §8.3): answered on plain HTTP under any Host and never
        redirected to HTTPS (api/origin.py, Api._to_https), without sign-in."""
        answer = tls.http01.challenge_response(token)
        if answer is None:
            raise ApiError(404, "no ACME challenge with this token is pending", error="not_found")
        return Response(answer.encode("ascii"), 200, {"Content-Type": "text/plain"})

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
