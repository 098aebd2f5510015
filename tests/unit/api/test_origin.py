"""The Host and Origin rules of burrow.api.origin on hand-made requests (the same rules through
the real process: tests/integration/test_cross_origin_http.py)."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from burrow.api.origin import Site, split_host


class Writer:
    def __init__(self, sockname):
        self.sockname = sockname

    def get_extra_info(self, name):
        return self.sockname if name == "sockname" else None


class Appliance:
    def __init__(self, addresses):
        self.addresses = addresses

    def local_addresses(self):
        return self.addresses


def request(host=None, origin=None, path="/api/stats", method="GET", sockname=("192.168.1.5", 8080)):
    headers = {}
    if host is not None:
        headers["Host"] = host
    if origin is not None:
        headers["Origin"] = origin
    return SimpleNamespace(headers=headers, path=path, method=method, sock=(None, Writer(sockname)))


def site(addresses=None, **config):
    return Site({"server.allowed_hosts": config.get("hosts", []), "server.allowed_origins": config.get("origins", [])},
                Appliance(addresses) if addresses is not None else None)


@pytest.mark.parametrize("header, expected", [
    ("Burrow.Local:8080", ("burrow.local", 8080)), ("burrow.local.", ("burrow.local", None)),
    ("[::1]:80", ("::1", 80)), ("[::ffff:192.168.1.5]", ("192.168.1.5", None)),
    ("10.0.0.1", ("10.0.0.1", None)),
    ("", None), ("a:b:c", None), ("host:99999", None), ("[::1", None), ("[::1]x", None), (":80", None),
])
def test_split_host(header, expected):
    assert split_host(header) == expected


def test_own_names_addresses_and_loopback_pass():
    s = site(addresses=["10.1.2.3", "fe80::1%eth0"])
    hostname = socket.gethostname().split(".")[0].lower()
    for host in ("burrow.local", "localhost:8080", f"{hostname}.local", hostname.upper(), "127.0.0.2",
                 "[::1]:8080", "192.168.1.5:8080", "10.1.2.3", "[fe80::1]"):
        assert s.host_allowed(request(host)), host


def test_other_names_and_addresses_fail_unless_configured():
    s = site(addresses=["10.1.2.3"])
    for host in ("rebind.test", "10.1.2.4", "burrow.local.evil", "[2001:db8::1]", "evil@burrow.local", ""):
        assert not s.host_allowed(request(host)), host
    s = site(hosts=["burrow.home.arpa", "203.0.113.7"])
    assert s.host_allowed(request("BURROW.home.arpa:8080")) and s.host_allowed(request("203.0.113.7:80"))


def test_the_names_of_the_certificate_in_force_are_the_boxs_own():
    """An owner's own certificate names the box (dns.home.example): its names pass the Host
    check, read as they change (a new certificate), a wildcard one label deep; others do not."""
    names = ["dns.home.example", "*.lan.example"]
    s = Site({"server.allowed_hosts": [], "server.allowed_origins": [], "tls.mode": "manual"}, None,
             certificate_names=lambda: names)
    for host in ("dns.home.example", "DNS.Home.Example:443", "pi.lan.example"):
        assert s.host_allowed(request(host)), host
    for host in ("home.example", "a.b.lan.example", "lan.example", "rebind.test"):
        assert not s.host_allowed(request(host)), host
    names[:] = ["other.example"]
    assert not s.host_allowed(request("dns.home.example")) and s.host_allowed(request("other.example"))


def test_health_reads_pass_under_any_name_and_nothing_else():
    s = site()
    assert s.host_allowed(request("monitor.example", path="/readyz"))
    assert s.host_allowed(request("monitor.example", path="/metrics", method="HEAD"))
    assert not s.host_allowed(request("monitor.example", path="/readyz", method="POST"))
    assert not s.host_allowed(request("monitor.example", path="/api/stats"))


def test_no_host_header_passes():
    assert site().host_allowed(request(None))


@pytest.mark.parametrize("host, origin, ok", [
    ("127.0.0.1:8080", None, True),
    ("127.0.0.1:8080", "http://127.0.0.1:8080", True),
    ("burrow.local", "http://burrow.local", True),  # port 80 on both sides
    ("burrow.local", "https://burrow.local", True),  # behind a TLS proxy: port 443 on both
    ("burrow.local:80", "http://burrow.local", True),
    ("127.0.0.1:8080", "http://127.0.0.1:8081", False),  # another port of the same host
    ("127.0.0.1:8080", "http://127.0.0.2:8080", False),
    ("127.0.0.1:8080", "http://localhost:8080", False),  # one of our names, but not this request's
    ("127.0.0.1:8080", "null", False),
    ("127.0.0.1:8080", "http://127.0.0.1:8080/path", False),
    ("127.0.0.1:8080", "http://dash.test:3000", True),  # configured
    ("127.0.0.1:8080", "HTTP://Dash.Test:3000", True),
    ("127.0.0.1:8080", "http://dash.test:3001", False),
    (None, "http://127.0.0.1:8080", False),
])
def test_origin_rules(host, origin, ok):
    assert site(origins=["http://dash.test:3000"]).origin_ok(request(host, origin)) is ok


def test_config_validates_and_normalises_hosts_and_origins():
    from burrow.config.schema import BY_KEY

    hosts = BY_KEY["server.allowed_hosts"].validate
    assert hosts(["Burrow.Home.ARPA.", "[fd00::1]", "192.0.2.1"]) == ["burrow.home.arpa", "fd00::1", "192.0.2.1"]
    origins = BY_KEY["server.allowed_origins"].validate
    assert origins(["HTTP://Dash.test:3000", "https://x.test:443", "http://[::1]:80"]) == \
        ["http://dash.test:3000", "https://x.test", "http://[::1]"]
    for bad in (["null"], ["ftp://x.test"], ["http://x.test/path"], ["http://u@x.test"], ["http://x.test:0"],
                ["http://fd00::1"], ["x.test"]):
        with pytest.raises(ValueError):
            origins(bad)
    for bad in (["evil.test/x"], [""], [42]):
        with pytest.raises(ValueError):
            hosts(bad)
