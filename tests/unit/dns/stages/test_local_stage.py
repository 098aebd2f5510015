"""The local stage: answers local records and zones itself (Decision LOCAL, right flags, rcodes
and fast-path lifetimes), passes everything else on, and resolves CNAME targets outside local
data through the rest of the chain, where filtering still applies."""

from __future__ import annotations

import asyncio
import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from burrow.dns import wire
from burrow.dns.chain import Chain
from burrow.dns.decision import Decision
from burrow.dns.message import DROP, Answer, render
from burrow.dns.stages.filter import FilterStage
from burrow.dns.stages.local import LocalStage, subquery
from burrow.zones.localdata import LocalData
from burrow.zones.records import Record

from tests.support.dnsq import Next, make_query

LAB = [Record("lab.test", "SOA", 3600, "ns.lab.test. hostmaster.lab.test. 5 3600 900 604800 300"),
       Record("lab.test", "NS", 3600, "ns.lab.test."),
       Record("ns.lab.test", "A", 3600, "192.0.2.53"),
       Record("www.lab.test", "A", 600, "192.0.2.10"),
       Record("www.lab.test", "AAAA", 600, "2001:db8::10"),
       Record("lab.test", "MX", 3600, "10 mail.lab.test."),
       Record("mail.lab.test", "A", 3600, "192.0.2.25"),
       Record("lab.test", "TXT", 3600, '"v=spf1 -all"'),
       Record("_sip._tcp.lab.test", "SRV", 3600, "10 0 5060 www.lab.test."),
       Record("lab.test", "CAA", 3600, '0 issue "letsencrypt.org"'),
       Record("cdn.lab.test", "CNAME", 120, "edge.example.net.")]
REVERSE = [Record("2.0.192.in-addr.arpa", "SOA", 3600, "ns.lab.test. hostmaster.lab.test. 1 3600 900 604800 300"),
           Record("2.0.192.in-addr.arpa", "NS", 3600, "ns.lab.test."),
           Record("53.2.0.192.in-addr.arpa", "PTR", 3600, "ns.lab.test.")]
LOCAL = [Record("nas.home.lan", "A", 300, "192.168.1.5"),
         Record("nas.home.lan", "AAAA", 300, "fd00::5"),
         Record("web.home.lan", "A", 300, "192.168.1.10"),
         Record("web.home.lan", "A", 300, "192.168.1.11"),
         Record("*.home.lan", "A", 60, "192.168.1.2"),
         Record("www.home.lan", "CNAME", 300, "nas.home.lan."),
         Record("ext.home.lan", "CNAME", 100, "www.example.org."),
         Record("ads.home.lan", "CNAME", 300, "ads.example.com.")]
SEC = [Record("sec.test", "SOA", 3600, "ns.sec.test. h.sec.test. 7 3600 600 86400 60"),
       Record("sec.test", "NS", 3600, "ns.sec.test."),
       Record("ns.sec.test", "A", 3600, "192.0.2.54")]


def run(coro):
    return asyncio.run(coro)


def stage(expired=False):
    return LocalStage(LocalData([("lab.test", "master", LAB), ("2.0.192.in-addr.arpa", "master", REVERSE),
                                 ("sec.test", "slave", SEC)], LOCAL, expired=lambda origin: expired))


def ask(s, name, rdtype="A", nxt=None, **kw):
    nxt = nxt if nxt is not None else Next()
    q = make_query(name, rdtype, **kw)
    answer = run(s.resolve(q, nxt))
    return q, answer, (dns.message.from_wire(render(q, answer)) if answer is not DROP else None), nxt


def texts(msg, section="answer"):
    return [rd.to_text() for rrset in getattr(msg, section) for rd in rrset]


class Upstream:
    """The rest of the chain as a resolver would answer the target, with real name compression:
    replies are built by dnspython for the sub-question, then cut after the question as the
    forward stage's Answers are."""

    def __init__(self, records=(), rcode=dns.rcode.NOERROR, soa=None, ttl=250, decision=Decision.RESOLVED):
        self.records = records  # (owner, type, ttl, rdata text)
        self.rcode = rcode
        self.soa = soa
        self.ttl = ttl
        self.decision = decision
        self.calls = []

    async def __call__(self, query):
        self.calls.append(query)
        request = dns.message.from_wire(query.packet)
        reply = dns.message.make_response(request)
        reply.set_rcode(self.rcode)
        for owner, rdtype, ttl, text in self.records:
            reply.answer.append(dns.rrset.from_text(owner, ttl, "IN", rdtype, text))
        if self.soa:
            reply.authority.append(dns.rrset.from_text(*self.soa))
        reply.use_edns(False)
        data = reply.to_wire()
        an, ns, ar = struct.unpack_from("!HHH", data, 6)
        qend = 12 + len(query.question)
        rrs, _ = wire.read_rrs(data, qend, an + ns + ar)
        return Answer(self.rcode, self.decision, data[qend:], an, ns, ar,
                      tuple(rr.ttl_offset - qend for rr in rrs), tuple(rr.ttl for rr in rrs), ttl=self.ttl)


# ---- passing on -------------------------------------------------------------------------------

def test_names_outside_local_data_go_to_the_next_stage():
    s = stage()
    for name in ("www.example.org", "home.lan", "evilhome.lan"):
        q, answer, _, nxt = ask(s, name)
        assert answer is nxt.answer and nxt.calls == [q]


def test_empty_data_and_other_classes_pass_straight_on():
    nxt = Next()
    q = make_query("nas.home.lan")
    assert run(LocalStage().resolve(q, nxt)) is nxt.answer
    _, answer, _, nxt = ask(stage(), "nas.home.lan", "TXT", rdclass="CH")
    assert answer is nxt.answer


def test_set_data_swaps_the_snapshot():
    s = LocalStage()
    s.set_data(LocalData([], [Record("nas.lan", "A", 300, "10.0.0.5")]))
    _, answer, msg, nxt = ask(s, "nas.lan")
    assert not nxt.calls and texts(msg) == ["10.0.0.5"]


# ---- local records ----------------------------------------------------------------------------

def test_local_record_answer():
    q, answer, msg, nxt = ask(stage(), "NAS.Home.LAN", "A", use_edns=0)
    assert not nxt.calls and answer.decision is Decision.LOCAL and answer.ttl == 300
    assert msg.rcode() == dns.rcode.NOERROR and not msg.flags & dns.flags.AA and msg.flags & dns.flags.RA
    assert str(msg.answer[0].name) == "NAS.Home.LAN." and texts(msg) == ["192.168.1.5"]
    assert msg.answer[0].ttl == 300
    assert q.trace[-1].stage == "local" and q.trace[-1].source == "local_records"
    _, _, msg, _ = ask(stage(), "nas.home.lan", "AAAA")
    assert texts(msg) == ["fd00::5"]


def test_local_name_other_type_is_nodata_and_replayable():
    _, answer, msg, nxt = ask(stage(), "nas.home.lan", "MX")
    assert not nxt.calls and msg.rcode() == dns.rcode.NOERROR and not msg.answer and not msg.authority
    assert answer.decision is Decision.LOCAL and answer.ttl == 300


def test_round_robin_order_rotates_and_is_never_replayed():
    s = stage()
    orders = []
    for _ in range(3):
        _, answer, msg, _ = ask(s, "web.home.lan")
        assert answer.ttl is None  # the fast path would freeze one order
        orders.append([rd.to_text() for rd in msg.answer[0]])
    assert orders[0] == ["192.168.1.10", "192.168.1.11"]
    assert orders[1] == ["192.168.1.11", "192.168.1.10"]
    assert orders[2] == orders[0]


def test_wildcard_and_exact_precedence():
    s = stage()
    _, _, msg, _ = ask(s, "anything.deep.home.lan")
    assert texts(msg) == ["192.168.1.2"] and str(msg.answer[0].name) == "anything.deep.home.lan."
    assert msg.answer[0].ttl == 60
    _, _, msg, _ = ask(s, "nas.home.lan")
    assert texts(msg) == ["192.168.1.5"]
    _, answer, _, nxt = ask(s, "evilhome.lan")
    assert nxt.calls and answer is nxt.answer


def test_auto_ptr_v4_and_v6():
    s = stage()
    _, answer, msg, nxt = ask(s, "5.1.168.192.in-addr.arpa", "PTR")
    assert not nxt.calls and texts(msg) == ["nas.home.lan."] and answer.decision is Decision.LOCAL
    _, _, msg, _ = ask(s, "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", "PTR")
    assert texts(msg) == ["nas.home.lan."]
    _, _, msg, _ = ask(s, "10.2.0.192.in-addr.arpa", "PTR")  # a master zone's A, inside a reverse zone
    assert texts(msg) == ["www.lab.test."]
    _, _, msg, _ = ask(s, "53.2.0.192.in-addr.arpa", "PTR")  # the zone's own PTR wins
    assert texts(msg) == ["ns.lab.test."] and msg.flags & dns.flags.AA


# ---- authoritative zones ----------------------------------------------------------------------

def test_every_record_type_from_a_zone():
    s = stage()
    cases = [("www.lab.test", "A", ["192.0.2.10"]), ("www.lab.test", "AAAA", ["2001:db8::10"]),
             ("lab.test", "MX", ["10 mail.lab.test."]), ("lab.test", "TXT", ['"v=spf1 -all"']),
             ("_sip._tcp.lab.test", "SRV", ["10 0 5060 www.lab.test."]),
             ("lab.test", "CAA", ['0 issue "letsencrypt.org"']), ("lab.test", "NS", ["ns.lab.test."]),
             ("lab.test", "SOA", ["ns.lab.test. hostmaster.lab.test. 5 3600 900 604800 300"]),
             ("cdn.lab.test", "CNAME", ["edge.example.net."])]
    for name, rdtype, expected in cases:
        _, answer, msg, nxt = ask(s, name, rdtype)
        assert not nxt.calls, name
        assert msg.flags & dns.flags.AA and msg.rcode() == dns.rcode.NOERROR, (name, rdtype)
        assert texts(msg) == expected, (name, rdtype)
        assert answer.decision is Decision.LOCAL


def test_authoritative_nxdomain_and_nodata_with_soa():
    s = stage()
    _, answer, msg, nxt = ask(s, "nothing.lab.test", "A")
    assert not nxt.calls and msg.rcode() == dns.rcode.NXDOMAIN and msg.flags & dns.flags.AA
    assert not msg.answer and msg.authority[0].rdtype == dns.rdatatype.SOA and msg.authority[0].ttl == 300
    assert answer.ttl == 300
    _, _, msg, _ = ask(s, "www.lab.test", "MX")
    assert msg.rcode() == dns.rcode.NOERROR and not msg.answer
    assert msg.authority[0].rdtype == dns.rdatatype.SOA and msg.flags & dns.flags.AA


def test_expired_secondary_is_servfail():
    _, answer, msg, nxt = ask(stage(expired=True), "ns.sec.test", "A", use_edns=0)
    assert not nxt.calls and msg.rcode() == dns.rcode.SERVFAIL and answer.decision is Decision.SERVFAIL
    assert answer.ttl is None and answer.ede[0] == wire.EDE_NO_REACHABLE_AUTHORITY
    _, answer, msg, _ = ask(stage(expired=False), "ns.sec.test", "A")
    assert texts(msg) == ["192.0.2.54"] and msg.flags & dns.flags.AA


# ---- CNAME chase ------------------------------------------------------------------------------

def test_local_cname_chased_locally():
    _, answer, msg, nxt = ask(stage(), "www.home.lan", "A")
    assert not nxt.calls and answer.ttl == 300
    assert [(str(r.name), r.rdtype) for r in msg.answer] == [("www.home.lan.", dns.rdatatype.CNAME),
                                                             ("nas.home.lan.", dns.rdatatype.A)]


def test_subquery_keeps_type_flags_edns_and_view():
    q = make_query("ext.home.lan", "AAAA", use_edns=0, want_dnssec=True)
    q.view = "kids"
    sub = subquery(q, "www.example.org")
    assert sub.name == "www.example.org" and sub.qtype == 28 and sub.qclass == 1 and sub.do
    assert sub.view == "kids" and sub.client_ip == q.client_ip and sub.id == q.id and sub.trace == []
    assert sub.flags & wire.RD


def test_remote_cname_target_resolved_through_the_chain():
    up = Upstream([("www.example.org.", "CNAME", 50, "edge.example.net."),
                   ("edge.example.net.", "A", 200, "203.0.113.7")], ttl=50)
    q, answer, msg, _ = ask(stage(), "Ext.Home.Lan", "A", nxt=up, use_edns=0)
    assert [c.name for c in up.calls] == ["www.example.org"] and up.calls[0].qtype == 1
    assert [(str(r.name), r.rdtype, r.ttl) for r in msg.answer] == [
        ("Ext.Home.Lan.", dns.rdatatype.CNAME, 100), ("www.example.org.", dns.rdatatype.CNAME, 50),
        ("edge.example.net.", dns.rdatatype.A, 200)]
    assert texts(msg)[-1] == "203.0.113.7" and msg.rcode() == dns.rcode.NOERROR
    assert answer.decision is Decision.LOCAL and answer.ttl == 50  # the shortest lifetime of both parts
    aged = dns.message.from_wire(render(q, answer.aged(30)))
    assert [r.ttl for r in aged.answer] == [70, 20, 170]


def test_remote_target_rcode_and_soa_are_kept():
    up = Upstream(rcode=dns.rcode.NXDOMAIN,
                  soa=("example.org.", 900, "IN", "SOA", "ns.example.org. h.example.org. 1 2 3 4 60"), ttl=60)
    _, answer, msg, _ = ask(stage(), "ext.home.lan", "A", nxt=up)
    assert msg.rcode() == dns.rcode.NXDOMAIN and texts(msg) == ["www.example.org."]
    assert msg.authority[0].rdtype == dns.rdatatype.SOA and str(msg.authority[0].name) == "example.org."


def test_zone_cname_leaving_the_zone_is_chased_too():
    up = Upstream([("edge.example.net.", "AAAA", 300, "2001:db8::77")])
    _, answer, msg, _ = ask(stage(), "cdn.lab.test", "AAAA", nxt=up)
    assert msg.flags & dns.flags.AA and texts(msg) == ["edge.example.net.", "2001:db8::77"]
    assert answer.ttl == 120


def test_cname_query_is_not_chased():
    up = Upstream()
    _, _, msg, _ = ask(stage(), "ext.home.lan", "CNAME", nxt=up)
    assert not up.calls and texts(msg) == ["www.example.org."]


def test_filtering_applies_to_the_target():
    class Deny:
        def match(self, name, groups=None):
            return name if name == "ads.example.com" else None

    class End:
        name = "end"
        calls = []

        async def resolve(self, query, next):
            End.calls.append(query.name)
            return await Upstream([(query.name + ".", "A", 300, "203.0.113.9")])(query)

    filt = FilterStage()
    filt.shared.deny_list = Deny()
    chain = Chain([stage(), filt, End()])
    q = make_query("ads.home.lan", "A")
    answer = run(chain.resolve(q))
    msg = dns.message.from_wire(render(q, answer))
    assert answer.decision is Decision.BLOCKED and End.calls == []
    assert texts(msg) == ["ads.example.com.", "0.0.0.0"]
    assert [t.stage for t in q.trace] == ["local", "denylist"]
    q = make_query("ext.home.lan", "A")
    answer = run(chain.resolve(q))
    assert answer.decision is Decision.LOCAL and End.calls == ["www.example.org"]
    assert texts(dns.message.from_wire(render(q, answer))) == ["www.example.org.", "203.0.113.9"]


def test_dropped_target_drops_the_reply():
    _, answer, _, _ = ask(stage(), "ext.home.lan", "A", nxt=Next(DROP))
    assert answer is DROP


def test_unreplayable_target_makes_an_unreplayable_reply():
    up = Upstream([("www.example.org.", "A", 300, "203.0.113.7")], ttl=None)
    _, answer, _, _ = ask(stage(), "ext.home.lan", "A", nxt=up)
    assert answer.ttl is None
