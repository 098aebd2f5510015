"""Helpers for stage tests: build a Query from dnspython, a next() that records calls."""

import time

import dns.message
import dns.rrset

from burrow.dns import wire
from burrow.dns.decision import Decision
from burrow.dns.message import Answer, Query, sanitize_upstream


def make_query(name="www.example.com", rdtype="A", client="192.168.1.10", rdclass="IN", **kw) -> Query:
    packet = dns.message.make_query(name, rdtype, rdclass=rdclass, **kw).to_wire()
    return Query(wire.parse_query(packet), packet, client, 5353, "udp", time.monotonic())


class Next:
    """A stand-in for the rest of the chain: counts calls and answers with a fixed Answer."""

    def __init__(self, answer: Answer | None = None):
        self.calls = []
        self.answer = answer or Answer(wire.NOERROR, Decision.RESOLVED, ttl=300)

    async def __call__(self, query):
        self.calls.append(query)
        return self.answer


def upstream_cname_answer(qname, target):
    """An upstream's answer for ``qname`` A: a CNAME to ``target`` and its address, as the forward
    stage hands it on (sanitized)."""
    q = dns.message.make_query(qname, "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text(qname + ".", 300, "IN", "CNAME", target + "."))
    r.answer.append(dns.rrset.from_text(target + ".", 300, "IN", "A", "192.0.2.7"))
    qn = wire.text_to_name(qname)
    return sanitize_upstream(r.to_wire(), qn, 1, 12 + len(qn) + 4, 0, 86400, 3600)
