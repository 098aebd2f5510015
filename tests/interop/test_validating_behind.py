"""A validating resolver behind Burrow validates what it validates behind dnsmasq --proxy-dnssec.

Two more Unbounds with the lab's root trust anchor: one forwards everything to Burrow, the other
to dnsmasq (both forward to the lab's validating upstream). A home network may run exactly this
(a router's or a laptop's validating stub behind the sinkhole): whatever the forwarder drops or
rewrites — negative proofs, DNAMEs, SOAs, signatures — turns into SERVFAIL there.
"""

from __future__ import annotations

import asyncio

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest

from tests.interop.lab import NAMES

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

TYPES = ["A", "AAAA", "TXT", "MX", "SOA", "NS", "DS", "DNSKEY", "HTTPS", "SVCB", "CNAME", "SRV"]
IN_FLIGHT = 16
QUERY_TIMEOUT = 20.0  # a validator behind a slow forwarder retries before it gives up
MIN_SECURE = 100  # the lab must give this many secure answers, or the comparison proves little


@pytest.fixture(scope="module")
def validators(lab):
    behind_burrow = lab.start_unbound("unbound-behind-burrow", forward_port=lab.burrow_port)
    behind_dnsmasq = lab.start_unbound("unbound-behind-dnsmasq", forward_port=lab.dnsmasq_port)
    yield behind_burrow.port, behind_dnsmasq.port
    behind_burrow.stop()
    behind_dnsmasq.stop()


async def ask(name: str, rdtype: str, port: int, sem: asyncio.Semaphore) -> tuple[str, bool]:
    """(rcode text, AD) from the validator at ``port``; ("timeout", False) without a reply."""
    q = dns.message.make_query(name, rdtype, want_dnssec=True)
    q.flags |= dns.flags.AD
    async with sem:
        try:
            r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=QUERY_TIMEOUT)
            if r.flags & dns.flags.TC:
                r = await dns.asyncquery.tcp(q, "127.0.0.1", port=port, timeout=QUERY_TIMEOUT)
        except dns.exception.Timeout:
            return "timeout", False
    return dns.rcode.to_text(r.rcode()), bool(r.flags & dns.flags.AD)


async def ask_all(ports: tuple[int, int]) -> dict:
    sem = asyncio.Semaphore(IN_FLIGHT)
    questions = [(n, t) for n in NAMES for t in TYPES]

    async def both(n, t):
        return await asyncio.gather(ask(n, t, ports[0], sem), ask(n, t, ports[1], sem))

    answers = await asyncio.gather(*(both(n, t) for n, t in questions))
    return dict(zip(questions, answers))


async def ask_upstream(questions: list[tuple[str, str]], port: int) -> dict:
    sem = asyncio.Semaphore(IN_FLIGHT)
    answers = await asyncio.gather(*(ask(n, t, port, sem) for n, t in questions))
    return dict(zip(questions, answers))


def test_validator_behind_burrow_validates_as_behind_dnsmasq(lab, validators):
    results = asyncio.run(ask_all(validators))
    secure = {q: d for q, (b, d) in results.items() if d[1] and d[0] in ("NOERROR", "NXDOMAIN")}
    differ = [q for q, (b, d) in results.items() if q in secure and b != d]
    # where they differ, the lab's own validating upstream is the referee: a validator behind
    # Burrow that sees exactly what the upstream says is right even where dnsmasq is not
    # (dnsmasq rebuilds CNAME chains to a nonexistent name from its cache as NOERROR, RFC 6604)
    referee = asyncio.run(ask_upstream(differ, lab.unbound_port))
    bad = [f"{n} {t}: behind burrow {b[0]}{' ad' if b[1] else ''}, behind dnsmasq {d[0]} ad, "
           f"upstream {referee[(n, t)][0]}{' ad' if referee[(n, t)][1] else ''}"
           for (n, t), (b, d) in results.items() if (n, t) in differ and b != referee[(n, t)]]
    # everything in the zone with expired signatures is bogus (its DS lives, signed, in the parent)
    bogus = [f"{n} {t}: behind burrow {b[0]}, behind dnsmasq {d[0]}"
             for (n, t), (b, d) in results.items()
             if n.endswith("bogus.test.") and (n, t) != ("bogus.test.", "DS")
             and (b[0], d[0]) != ("SERVFAIL", "SERVFAIL")]
    print(f"{len(results)} questions to each validator; {len(secure)} secure behind dnsmasq, "
          f"{len(secure) - len(bad)} of them secure behind Burrow too ({len(differ) - len(bad)} as the "
          f"upstream answers where dnsmasq differs); bogus zone: {len(bogus)} not SERVFAIL")
    assert len(secure) >= MIN_SECURE, f"only {len(secure)} secure answers behind dnsmasq: is the lab signed?"
    report = ((["validated behind dnsmasq, not the same behind Burrow:"] + bad if bad else [])
              + (["bogus zone not SERVFAIL behind both:"] + bogus if bogus else []))
    assert not report, "\n".join(report)
