"""Upstream entries: plain "ip:port", tls:// (DoT) and https:// (DoH), with #name and ?pin=;
the config validator and the bootstrap cross-check."""

from __future__ import annotations

import base64

import pytest

from burrow import config
from burrow.config.schema import parse_upstream, upstream

PIN = base64.b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize("text, scheme, host, port, sni, path, canonical", [
    ("9.9.9.9", "dns", "9.9.9.9", 53, None, "", "9.9.9.9:53"),
    ("[2620:fe::fe]:5353", "dns", "2620:fe::fe", 5353, None, "", "[2620:fe::fe]:5353"),
    ("tls://dns.quad9.net", "tls", "dns.quad9.net", 853, None, "", "tls://dns.quad9.net"),
    ("TLS://Dns.Quad9.NET.:853", "tls", "dns.quad9.net", 853, None, "", "tls://dns.quad9.net"),
    ("tls://9.9.9.9:8853#dns.quad9.net", "tls", "9.9.9.9", 8853, "dns.quad9.net", "",
     "tls://9.9.9.9:8853#dns.quad9.net"),
    ("tls://[2620:fe::9]#dns.quad9.net", "tls", "2620:fe::9", 853, "dns.quad9.net", "",
     "tls://[2620:fe::9]#dns.quad9.net"),
    ("https://dns.quad9.net/dns-query", "https", "dns.quad9.net", 443, None, "/dns-query",
     "https://dns.quad9.net/dns-query"),
    ("https://dns.example", "https", "dns.example", 443, None, "/dns-query", "https://dns.example/dns-query"),
    ("https://1.1.1.1:8443/resolve#cloudflare-dns.com", "https", "1.1.1.1", 8443, "cloudflare-dns.com",
     "/resolve", "https://1.1.1.1:8443/resolve#cloudflare-dns.com"),
])
def test_accepted_forms(text, scheme, host, port, sni, path, canonical):
    spec = parse_upstream(text)
    assert (spec.scheme, spec.host, spec.port, spec.sni, spec.path, spec.text) == \
        (scheme, host, port, sni, path, canonical)
    assert upstream(text) == canonical
    assert parse_upstream(canonical) == spec  # the canonical text reads back the same


def test_server_name_is_the_fragment_else_a_host_name_else_none():
    assert parse_upstream("tls://9.9.9.9#dns.quad9.net").server_name == "dns.quad9.net"
    assert parse_upstream("tls://dns.quad9.net").server_name == "dns.quad9.net"
    assert parse_upstream("tls://9.9.9.9").server_name is None  # checked against the IP SAN
    assert parse_upstream("tls://dns.quad9.net#dns.quad9.net").sni is None  # says nothing more


def test_pin_in_either_order_and_canonical_with_the_query_first():
    a = parse_upstream(f"tls://9.9.9.9#dns.quad9.net?pin={PIN}")
    b = parse_upstream(f"tls://9.9.9.9?pin={PIN}#dns.quad9.net")
    assert a == b and a.pin == bytes(range(32))
    assert a.text == f"tls://9.9.9.9?pin={PIN}#dns.quad9.net"
    url_safe = PIN.replace("+", "-").replace("/", "_").rstrip("=")
    assert parse_upstream(f"https://dns.example/dns-query?pin=sha256/{url_safe}").pin == bytes(range(32))


@pytest.mark.parametrize("text, says", [
    ("udp://9.9.9.9", "tls://host"),
    ("tls://", "missing host"),
    ("tls://user@dns.example", "user names"),
    ("tls://dns.example:0", "bad port"),
    ("tls://dns.example:70000", "bad port"),
    ("tls://2620:fe::9", "brackets"),
    ("tls://dns.example/path", "no path"),
    ("tls://bad_host-.example", "not a valid host name"),
    ("tls://1.2.3", "not a valid address or host name"),
    ("tls://9.9.9.9#1.2.3.4", "must be a host name"),
    ("tls://9.9.9.9?pin=abc", "SHA-256"),
    ("tls://9.9.9.9?pin=!!!", "not base64"),
    ("tls://9.9.9.9?foo=bar", "only parameter"),
    (f"tls://9.9.9.9?pin={PIN}#x.example?pin={PIN}", "one ?pin="),
    ("https://dns.example/dns query", "no spaces"),
    ("https://dns.example/a\"b", "bad characters"),
    ("https://dns.example/" + "a" * 600, "at most"),
    ("9.9.9.9:0", "port 0"),
    ("dns.quad9.net", "not an IP address"),
])
def test_refused_forms_say_why(text, says):
    with pytest.raises(ValueError) as e:
        parse_upstream(text)
    assert says in str(e.value)


def test_the_option_names_the_bad_item():
    with pytest.raises(config.ConfigError) as e:
        config.load(None, environ={}).with_overrides({"upstream_dns_servers": ["1.1.1.1", "tls://x.example:99999"]})
    assert e.value.errors[0][0] == "upstream_dns_servers" and "item 1" in e.value.errors[0][1]


def test_a_host_name_needs_a_bootstrap():
    base = config.load(None, environ={})
    with pytest.raises(config.ConfigError) as e:
        base.with_overrides({"upstream_dns_servers": ["tls://dns.quad9.net", "tls://9.9.9.9"]})
    assert [k for k, _ in e.value.errors] == ["upstream_dns_servers[0]"]
    assert "upstream.bootstrap" in e.value.errors[0][1]
    # a plain upstream in the list, or a bootstrap, or the address with #name: each will do
    base.with_overrides({"upstream_dns_servers": ["tls://dns.quad9.net", "9.9.9.9"]})
    base.with_overrides({"upstream_dns_servers": ["tls://dns.quad9.net"], "upstream.bootstrap": ["9.9.9.9"]})
    base.with_overrides({"upstream_dns_servers": ["tls://9.9.9.9#dns.quad9.net"]})


def test_ca_file_must_load(tmp_path):
    base = config.load(None, environ={})
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    for value in (str(bad), str(tmp_path / "missing.pem")):
        with pytest.raises(config.ConfigError) as e:
            base.with_overrides({"upstream.ca_file": value})
        assert e.value.errors[0][0] == "upstream.ca_file"
    assert base.with_overrides({"upstream.ca_file": ""})["upstream.ca_file"] == ""
