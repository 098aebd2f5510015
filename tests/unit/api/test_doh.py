"""api/doh_api.py's pieces: the dns= parameter, the JSON form's query and answer, max-age."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
from dnslib import DNSRecord

from burrow.api import doh_api
from burrow.api.errors import ValidationError


def test_the_dns_parameter_is_base64url_with_or_without_padding():
    wire = dns.message.make_query("example.com", "A").to_wire()
    import base64
    text = base64.urlsafe_b64encode(wire).decode()
    assert doh_api.decode_dns_param(text.rstrip("=")) == wire
    assert doh_api.decode_dns_param(text) == wire
    with pytest.raises(ValidationError):
        doh_api.decode_dns_param("a")  # one character cannot be base64


def test_the_json_forms_query_is_a_real_dns_query():
    msg = dns.message.from_wire(doh_api.json_query("example.com", 28, True, True))
    assert msg.id == 0 and msg.flags & dns.flags.RD and msg.flags & dns.flags.CD
    assert msg.question[0].name.to_text() == "example.com." and msg.question[0].rdtype == 28
    assert msg.ednsflags & dns.flags.DO and msg.payload == doh_api.JSON_EDNS_SIZE
    plain = dns.message.from_wire(doh_api.json_query("example.com", 1, False, False))
    assert plain.opt is None and not plain.flags & dns.flags.CD
    root = dns.message.from_wire(doh_api.json_query("", 2, False, False))
    assert root.question[0].name.to_text() == "."


def reply(answer=(), authority=(), rcode=0):
    q = dns.message.make_query("example.com", "A")
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    for section, texts in ((r.answer, answer), (r.authority, authority)):
        for text in texts:
            p = text.split()
            section.append(dns.rrset.from_text(p[0], int(p[1]), p[2], p[3], " ".join(p[4:])))
    return DNSRecord.parse(r.to_wire())


def test_max_age_is_the_smallest_answer_ttl_or_the_negative_ttl():
    assert doh_api.max_age(reply(["example.com. 300 IN A 192.0.2.1", "example.com. 60 IN AAAA ::1"])) == 60
    soa = "example.com. 900 IN SOA ns.example.com. host.example.com. 1 7200 900 1209600 120"
    assert doh_api.max_age(reply(authority=[soa], rcode=dns.rcode.NXDOMAIN)) == 120
    assert doh_api.max_age(reply(rcode=dns.rcode.SERVFAIL)) == 0


def test_the_json_answer_has_the_public_resolvers_shape():
    body = doh_api.json_answer(reply(["example.com. 300 IN A 192.0.2.1"]))
    assert body["Status"] == 0 and body["RD"] is True and body["TC"] is False
    assert body["Question"] == [{"name": "example.com.", "type": 1}]
    assert body["Answer"] == [{"name": "example.com.", "type": 1, "TTL": 300, "data": "192.0.2.1"}]
