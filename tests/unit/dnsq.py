"""Helpers for stage tests: build a Query from dnspython, a next() that records calls."""

import time

import dns.message

from burrow.dns import wire
from burrow.dns.decision import Decision
from burrow.dns.message import Answer, Query


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
