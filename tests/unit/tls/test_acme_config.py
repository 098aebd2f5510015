"""The ACME options (tls.autocert.*, tls.acme.*, tls.directory_*): validated at load and by
PUT /api/config/tls, the token never shown, the seed's ``enabled`` flags mapped to ``mode``."""

from __future__ import annotations

import datetime as dt

import pytest

from burrow import config, runtime_config
from burrow.api.config_api import TlsBody, tls_changes
from burrow.api.errors import ValidationError
from burrow.api.origin import Site
from burrow.config import ConfigError
from burrow.config.schema import cert_name, duration, duration_seconds, email, http_url
from burrow.config.schema import api_token as token_check
from burrow.tls.acme import renewal_due
from burrow.tls.service import TlsService

TOKEN = "cf-unit-token-0123456789"


def load(tmp_path, text: str):
    path = tmp_path / "burrow.toml"
    path.write_text(text)
    return config.load(path, environ={})


def errors_of(tmp_path, text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text)
    return dict(e.value.errors)


def test_acme_tables_load_nested_as_the_seed_writes_them(tmp_path):
    cfg = load(tmp_path, f"""
[tls]
mode = "acme"
directory_url = "https://acme-staging-v02.api.letsencrypt.org/directory"
[tls.acme]
hosts = ["Dns.Example.org.", "*.example.org"]
email = "owner@example.org"
renew_before = "30d"
[tls.acme.cloudflare]
api_token = "{TOKEN}"
zone_id = "abc123"
""")
    assert cfg["tls.acme.hosts"] == ["dns.example.org", "*.example.org"]
    assert duration_seconds(cfg["tls.acme.renew_before"]) == 30 * 86400
    assert cfg["tls.acme.cloudflare.api_token"] == TOKEN
    assert TlsService.check(cfg) is None


@pytest.mark.parametrize("text, key", [
    ('[tls]\nmode = "acme"\n[tls.acme]\nhosts = ["a.example"]\n', "tls.acme.cloudflare.api_token"),
    ('[tls]\nmode = "acme"\n[tls.acme.cloudflare]\napi_token = "t"\n', "tls.acme.hosts"),
    ('[tls]\nmode = "autocert"\n', "tls.autocert.hosts"),
    ('[tls]\nmode = "autocert"\n[tls.autocert]\nhosts = ["*.a.example"]\n', "tls.autocert.hosts[0]"),
    ('[tls]\nmode = "autocert"\n[tls.autocert]\nhosts = ["a.example", "A.example."]\n', "tls.autocert.hosts"),
    ('[tls.autocert]\nhosts = ["nodot"]\n', "tls.autocert.hosts"),
    ('[tls.autocert]\nemail = "nobody"\n', "tls.autocert.email"),
    ('[tls.autocert]\nhttp01_address = "example.org:80"\n', "tls.autocert.http01_address"),
    ('[tls.acme]\nrenew_before = "5m"\n', "tls.acme.renew_before"),
    ('[tls.acme]\ndns_provider = "route53"\n', "tls.acme.dns_provider"),
    ('[tls.acme.cloudflare]\nzone_id = "a-b"\n', "tls.acme.cloudflare.zone_id"),
    ('[tls]\ndirectory_url = "ftp://x"\n', "tls.directory_url"),
    ('[tls]\ndirectory_ca_file = "/nonexistent/ca.pem"\n', "tls.directory_ca_file"),
    ('[tls.acme.route53]\nkey = "x"\n', "tls.acme.route53"),
])
def test_bad_acme_options_are_refused_at_load_naming_the_key(tmp_path, text, key):
    assert key in errors_of(tmp_path, text)


def test_the_token_is_never_repeated_in_an_error():
    with pytest.raises(ValueError) as e:
        token_check(f"{TOKEN} and more")
    assert TOKEN not in str(e.value)
    assert token_check(f" {TOKEN} ") == TOKEN


def test_validators():
    assert http_url(" https://acme.example/dir ") == "https://acme.example/dir"
    for bad in ("acme.example/dir", "https://", "https:///x", "https://a b", 5):
        with pytest.raises(ValueError):
            http_url(bad)
    assert cert_name("*.Example.ORG.") == "*.example.org"
    for bad in ("*", "a.*.example", "example", "", "exa mple.org"):
        with pytest.raises(ValueError):
            cert_name(bad)
    assert email(" owner@example.org ") == "owner@example.org"
    for bad in ("owner", "@example.org", "owner@example", "o wner@example.org"):
        with pytest.raises(ValueError):
            email(bad)
    check = duration(3600, 60 * 86400)
    assert check("720h") == "720h" and duration_seconds("1h30m") == 5400 and duration_seconds("90") == 90
    for bad in ("30", "61d", "h", "12x", "", True, None):
        with pytest.raises(ValueError):
            check(bad)


def test_the_token_is_shown_only_as_whether_one_is_set(tmp_path):
    cfg = load(tmp_path, f'[tls.acme.cloudflare]\napi_token = "{TOKEN}"\n')
    for shown in (runtime_config.snapshot(cfg), runtime_config.section_values(cfg, "tls")):
        assert TOKEN not in repr(shown)
    assert runtime_config.snapshot(cfg)["tls"]["acme"]["cloudflare"]["api_token_set"] is True
    section = runtime_config.section_values(cfg, "tls")
    assert section["acme"]["cloudflare"] == {"api_token_set": True, "zone_id": "",
                                             "api_base": "https://api.cloudflare.com/client/v4"}
    assert section["autocert"]["hosts"] == [] and section["mode"] == "off"
    empty = load(tmp_path, "")
    assert runtime_config.section_values(empty, "tls")["acme"]["cloudflare"]["api_token_set"] is False


def test_the_put_body_is_the_seeds_shape_and_maps_enabled_to_mode():
    body = TlsBody.validate({"autocert": {"enabled": True, "hosts": ["a.example"]}, "dot_enabled": True})
    assert tls_changes(body, "off") == {"tls.mode": "autocert", "tls.autocert.hosts": ["a.example"],
                                        "tls.dot_enabled": True}
    body = TlsBody.validate({"acme": {"cloudflare": {"api_token": TOKEN}, "renew_before": "48h"}})
    assert tls_changes(body, "acme") == {"tls.acme.cloudflare.api_token": TOKEN, "tls.acme.renew_before": "48h"}
    cases = [({"autocert": {"enabled": True}, "acme": {"enabled": True}}, "off", "acme.enabled"),
             ({"mode": "manual", "acme": {"enabled": True}}, "off", "acme.enabled"),
             ({"autocert": {"enabled": False}}, "autocert", "autocert.enabled")]
    for raw, mode, field in cases:
        with pytest.raises(ValidationError) as e:
            tls_changes(TlsBody.validate(raw), mode)
        assert [d["field"] for d in e.value.details] == [field]
    assert tls_changes(TlsBody.validate({"autocert": {"enabled": False}}), "manual") == {}
    with pytest.raises(ValidationError) as e:
        TlsBody.validate({"acme": {"cloudflare": {"api_token": "a b", "token": "x"}, "hosts": ["bad_"]}})
    fields = {d["field"] for d in e.value.details}
    assert fields == {"acme.cloudflare.api_token", "acme.cloudflare.token", "acme.hosts[0]"}
    assert "a b" not in str(e.value.details)


class _Req:
    def __init__(self, host: str, path: str = "/api/auth/me"):
        self.headers = {"Host": host}
        self.path, self.method, self.sock = path, "GET", None


def test_the_certificate_names_are_names_of_the_box_in_an_acme_mode(tmp_path):
    cfg = load(tmp_path, f'[tls]\nmode = "acme"\n[tls.acme]\nhosts = ["dns.example.org", "*.home.example.org"]\n'
                         f'[tls.acme.cloudflare]\napi_token = "{TOKEN}"\n')
    site = Site(cfg)
    assert site.host_allowed(_Req("dns.example.org")) and site.host_allowed(_Req("pi.home.example.org:8443"))
    assert not site.host_allowed(_Req("a.pi.home.example.org")) and not site.host_allowed(_Req("example.org"))
    assert site.host_allowed(_Req("anything.example", "/.well-known/acme-challenge/tok"))
    off = Site(load(tmp_path, '[tls.acme]\nhosts = ["dns.example.org"]\n'))
    assert not off.host_allowed(_Req("dns.example.org")), "only while the mode uses them"


def test_renewal_due_follows_renew_before():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(days=90)
    assert renewal_due(start, end) == start + dt.timedelta(days=60)
    assert renewal_due(start, end, dt.timedelta(days=40)) == start + dt.timedelta(days=50)
    assert renewal_due(start, end, dt.timedelta(days=10)) == start + dt.timedelta(days=60)  # two thirds first
