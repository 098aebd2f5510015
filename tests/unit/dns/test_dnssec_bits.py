"""The DNSSEC header bits: whose AD is believed and who sees it, CD kept apart everywhere."""

import asyncio
import collections
import time

import dns.flags
import dns.message
import dns.rrset
import pytest

from burrow.config.schema import DEFAULT_ALLOWED_NETWORKS
from burrow.dns import wire
from burrow.dns.access import AccessControl
from burrow.dns.cache import AnswerCache
from burrow.dns.decision import Decision
from burrow.dns.fastpath import FastPath
from burrow.dns.message import Answer, Query, render, sanitize_upstream
from burrow.dns.server import DnsServer
from burrow.dns.stages.cache import CacheStage
from burrow.dns.shared import Routes
from burrow.config.schema import parse_upstream
from burrow.dns.stages.forward import AdTrust, CacheLimits, ForwardStage

from tests.support.dnsq import Next, make_query

NAME = "www.example.com"


# ---- whose AD bit is believed --------------------------------------------------------------

def test_auto_trusts_loopback_and_listed_networks_only():
    t = AdTrust("auto", ["192.168.1.0/24", "2001:db8::53"])
    for host in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "192.168.1.53", "2001:db8::53"):
        assert t.trusts(host), host
    for host in ("9.9.9.9", "1.1.1.1", "192.168.2.1", "2001:db8::54", "fe80::1", "not-an-ip"):
        assert not t.trusts(host), host


def test_on_and_off_ignore_addresses():
    assert AdTrust("on").trusts("9.9.9.9")
    assert not AdTrust("off").trusts("127.0.0.1")


# ---- who sees it -----------------------------------------------------------------------------

def reply_wire(ad=True, rcode=0):
    q = dns.message.make_query(NAME, "A")
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    r.answer.append(dns.rrset.from_text(NAME + ".", 300, "IN", "A", "192.0.2.1"))
    if ad:
        r.flags |= dns.flags.AD
    return r.to_wire()


def validated_answer():
    qname = wire.text_to_name(NAME)
    return sanitize_upstream(reply_wire(), qname, 1, 12 + len(qname) + 4, 0, 86400, 3600)


@pytest.mark.parametrize("kw, shown", [({}, False), ({"flags": dns.flags.RD | dns.flags.AD}, True),
                                       ({"use_edns": 0}, False), ({"want_dnssec": True}, True),
                                       ({"want_dnssec": True, "flags": dns.flags.RD | dns.flags.AD}, True)])
def test_ad_shown_only_to_clients_that_sent_do_or_ad(kw, shown):
    answer = validated_answer()
    assert answer.ad
    out = dns.message.from_wire(render(make_query(NAME, "A", **kw), answer))
    assert bool(out.flags & dns.flags.AD) is shown


def test_answers_burrow_makes_never_carry_ad():
    q = make_query(NAME, "A", want_dnssec=True, flags=dns.flags.RD | dns.flags.AD)
    out = dns.message.from_wire(render(q, Answer(wire.NXDOMAIN, Decision.LOCAL, ttl=60)))
    assert not out.flags & dns.flags.AD


class FakePool:
    def __init__(self, reply, host, entry=None):
        self.reply = reply
        spec = parse_upstream(entry or f"{host}:53")
        self.server = type("S", (), {"host": host, "label": spec.text, "spec": spec})()
        self.asked = []

    async def query(self, question, qflags, do, client=None):
        self.asked.append(qflags)
        await asyncio.sleep(0.01)
        return self.reply, self.server


@pytest.mark.parametrize("host, mode, kept", [("127.0.0.1", "auto", True), ("9.9.9.9", "auto", False),
                                              ("9.9.9.9", "on", True), ("127.0.0.1", "off", False)])
def test_forward_keeps_ad_only_from_a_trusted_server(host, mode, kept):
    stage = ForwardStage(Routes(FakePool(reply_wire(), host)), CacheLimits(), AdTrust(mode))
    answer = asyncio.run(stage.resolve(make_query(NAME, "A", want_dnssec=True), Next()))
    assert answer.ad is kept


@pytest.mark.parametrize("entry, mode, kept", [("tls://9.9.9.9#dns.quad9.net", "auto", True),
                                               ("https://9.9.9.9/dns-query", "auto", True),
                                               ("tls://9.9.9.9", "off", False),
                                               ("9.9.9.9:53", "auto", False)])
def test_auto_believes_an_encrypted_upstream_whose_certificate_was_verified(entry, mode, kept):
    """Over DoT/DoH the path to the validator is authenticated (RFC 6840 §5.7's secure channel):
    "auto" passes its AD on; over plain UDP to a public address it does not; "off" never."""
    stage = ForwardStage(Routes(FakePool(reply_wire(), "9.9.9.9", entry)), CacheLimits(), AdTrust(mode))
    answer = asyncio.run(stage.resolve(make_query(NAME, "A", want_dnssec=True), Next()))
    assert answer.ad is kept


def test_stale_answers_lose_ad():
    clock = [1000.0]
    stage = CacheStage(AnswerCache(1 << 20), clock=lambda: clock[0])
    answer = validated_answer()
    nxt = Next(answer)
    q = make_query(NAME, "A", want_dnssec=True)
    assert asyncio.run(stage.resolve(q, nxt)).ad
    clock[0] += 400  # expired; the upstream now fails
    nxt.answer = Answer(wire.SERVFAIL, Decision.SERVFAIL)
    stale = asyncio.run(stage.resolve(make_query(NAME, "A", want_dnssec=True), nxt))
    assert stale.decision is Decision.STALE and not stale.ad


# ---- the fast path replays AD only to whom the slow path would show it -----------------------

def fast_server():
    s = DnsServer(None, FastPath(), AccessControl(DEFAULT_ALLOWED_NETWORKS), None, collections.deque(maxlen=100))
    s.fast_clients["192.168.1.2"] = s.fastpath.stores("default")
    return s


def remembered(s, q: Query, answer: Answer):
    packet = render(q, answer)
    s.remember(q, answer, packet, time.monotonic())


def fast_ad(s, **kw):
    out = s.fast(dns.message.make_query(NAME, "A", **kw).to_wire(), "192.168.1.2", True)
    return None if out is None else bool(dns.message.from_wire(out).flags & dns.flags.AD)


def test_fast_path_does_not_replay_ad_to_a_client_that_did_not_ask():
    s = fast_server()
    remembered(s, make_query(NAME, "A", use_edns=0, flags=dns.flags.RD | dns.flags.AD), validated_answer())
    assert fast_ad(s, use_edns=0, flags=dns.flags.RD | dns.flags.AD) is True
    assert fast_ad(s, use_edns=0) is None  # slow path: it renders without AD
    remembered(s, make_query(NAME, "A", use_edns=0), validated_answer())
    assert fast_ad(s, use_edns=0) is False
    assert fast_ad(s, use_edns=0, flags=dns.flags.RD | dns.flags.AD) is None


def test_fast_path_ignores_the_query_ad_bit_when_the_reply_does_not_depend_on_it():
    s = fast_server()
    remembered(s, make_query(NAME, "A", want_dnssec=True), validated_answer())  # DO=1: AD either way
    assert fast_ad(s, want_dnssec=True) is True
    assert fast_ad(s, want_dnssec=True, flags=dns.flags.RD | dns.flags.AD) is True
    plain = validated_answer()
    plain.ad = False
    remembered(s, make_query(NAME, "A", use_edns=0), plain)  # not validated: AD=0 for everyone
    assert fast_ad(s, use_edns=0) is False
    assert fast_ad(s, use_edns=0, flags=dns.flags.RD | dns.flags.AD) is False


def test_fast_path_keeps_cd_apart():
    s = fast_server()
    remembered(s, make_query(NAME, "A", flags=dns.flags.RD | dns.flags.CD), validated_answer())
    assert fast_ad(s) is None
    assert fast_ad(s, flags=dns.flags.RD | dns.flags.CD) is False


# ---- CD: cache and coalescing keys ---------------------------------------------------------

def test_cache_and_servfail_memo_separate_cd():
    stage = CacheStage(AnswerCache(1 << 20))
    checking_disabled = make_query(NAME, "A", flags=dns.flags.RD | dns.flags.CD)
    good = Next(validated_answer())
    asyncio.run(stage.resolve(checking_disabled, good))
    failing = Next(Answer(wire.SERVFAIL, Decision.SERVFAIL))
    assert asyncio.run(stage.resolve(make_query(NAME, "A"), failing)).rcode == wire.SERVFAIL
    assert len(failing.calls) == 1  # not answered from the CD=1 entry
    again = Next(validated_answer())
    assert asyncio.run(stage.resolve(make_query(NAME, "A", flags=dns.flags.RD | dns.flags.CD), again)).rcode == 0
    assert not again.calls  # the CD=1 entry still answers CD=1, the CD=0 failure memo does not


def test_coalescing_separates_cd():
    pool = FakePool(reply_wire(), "127.0.0.1")
    stage = ForwardStage(Routes(pool), CacheLimits())

    async def both():
        return await asyncio.gather(stage.resolve(make_query(NAME, "A"), Next()),
                                    stage.resolve(make_query(NAME, "A", flags=dns.flags.RD | dns.flags.CD), Next()),
                                    stage.resolve(make_query(NAME, "A"), Next()))

    asyncio.run(both())
    assert sorted(f & wire.CD for f in pool.asked) == [0, wire.CD] and stage.coalesced == 1
