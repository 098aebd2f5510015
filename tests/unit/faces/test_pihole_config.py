"""The Pi-hole face's translations (burrow/faces/pihole/config.py): dnsmasq's server notation,
reverse zones of a revServer network, and the config document's element paths."""

from __future__ import annotations

import pytest

from burrow.faces.pihole.config import burrow_server, element, pihole_server, reverse_zone
from burrow.faces.pihole.http import PiholeError


@pytest.mark.parametrize("burrow, pihole", [
    ("9.9.9.9:53", "9.9.9.9"), ("192.168.1.1:5353", "192.168.1.1#5353"),
    ("[2620:fe::fe]:53", "2620:fe::fe"), ("[fd00::1]:5300", "fd00::1#5300"),
    ("tls://dns.quad9.net", "tls://dns.quad9.net"),
])
def test_servers_in_both_notations(burrow, pihole):
    assert pihole_server(burrow) == pihole
    assert burrow_server(pihole, "dns.upstreams[0]") == burrow


@pytest.mark.parametrize("bad", ["", "   ", "not an address", "1.2.3.4#x", "1.2.3.4#99999"])
def test_bad_servers_are_refused_naming_the_entry(bad):
    with pytest.raises(PiholeError) as e:
        burrow_server(bad, "dns.upstreams[3]")
    assert e.value.status == 400 and e.value.hint.startswith("dns.upstreams[3]")


@pytest.mark.parametrize("cidr, zone", [
    ("192.168.1.0/24", "1.168.192.in-addr.arpa"), ("10.0.0.0/8", "10.in-addr.arpa"),
    ("172.16.0.0/16", "16.172.in-addr.arpa"), ("192.168.1.7/24", "1.168.192.in-addr.arpa"),
    ("fd00:1234::/32", "4.3.2.1.0.0.d.f.ip6.arpa"),
])
def test_reverse_zones(cidr, zone):
    assert reverse_zone(cidr) == zone


@pytest.mark.parametrize("cidr", ["10.0.0.0/13", "0.0.0.0/0", "fd00::/30", "nonsense"])
def test_networks_off_a_label_boundary_are_refused(cidr):
    with pytest.raises(ValueError):
        reverse_zone(cidr)


def test_element_paths():
    config = {"dns": {"upstreams": ["9.9.9.9"], "blocking": {"mode": "NULL"}}}
    assert element(config, "dns/blocking/mode") == {"dns": {"blocking": {"mode": "NULL"}}}
    assert element(config, "/dns/upstreams/") == {"dns": {"upstreams": ["9.9.9.9"]}}
    with pytest.raises(PiholeError):
        element(config, "dns/nothing")
