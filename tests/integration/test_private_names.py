"""Private names stay home, through the running server: private reverse lookups and special-use
names are answered NXDOMAIN without reaching the (public) test upstream; rebinding protection
blocks public names answered with private addresses, except allow-listed ones."""

import dns.rcode

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.timing import wait_for

PRIVATE = [("5.1.168.192.in-addr.arpa", "PTR"), ("1.0.0.10.in-addr.arpa", "PTR"),
           ("9.0.16.172.in-addr.arpa", "PTR"), ("1.0.0.127.in-addr.arpa", "PTR"),
           ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", "PTR"),
           ("1.0.254.169.in-addr.arpa", "PTR"), ("printer.local", "A"), ("nas.lan", "A"),
           ("db.internal", "A"), ("router.home.arpa", "AAAA"), ("nas", "A")]


def test_private_names_never_reach_the_public_upstream(tmp_path, upstream):
    with BurrowProcess(tmp_path, [upstream.address], {"local": {"rebind_protection": True}}) as b:
        upstream.clear_log()
        for name, rdtype in PRIVATE:
            r = b.query(name, rdtype)
            assert r.rcode() == dns.rcode.NXDOMAIN, name
        assert upstream.queries() == []  # not one of them left the box
        b.query("8.8.8.8.in-addr.arpa", "PTR")
        assert [q["name"] for q in upstream.queries()] == ["8.8.8.8.in-addr.arpa"]  # public reverse: forwarded

        # rebinding: the test upstream answers names with 10.x addresses
        r = b.query("rebind.example.test", use_edns=0)
        assert r.answer[0][0].address == "0.0.0.0"
        assert [o.code for o in r.options if o.otype == 15] == [15]
        upstream.set_rule("public.example.test", records={"A": ["93.184.216.34"]})
        assert b.query("public.example.test").answer[0][0].address == "93.184.216.34"
        token = admin_token(b)
        assert authed(b, token, "POST", "/api/whitelist", {"domain": "nas.example.test"})[0] == 200
        assert b.query("nas.example.test").answer[0][0].address.startswith("10.")  # allow-listed
        logged = wait_for(  # the query log is flushed every second in tests
            lambda: authed(b, token, "GET", "/api/queries?domain=rebind.example.test")[1]["queries"],
            what="the rebind query in the log", interval=0.25)
        traces = [t for q in logged for t in q.get("block_trace") or []]
        assert any(t.get("source") == "rebind_protection" for t in traces), logged


def test_switches_off(tmp_path, upstream):
    cfg = {"local": {"private_reverse": False, "special_names": False, "rebind_protection": False}}
    with BurrowProcess(tmp_path, [upstream.address], cfg) as b:
        upstream.clear_log()
        b.query("5.1.168.192.in-addr.arpa", "PTR")
        b.query("nas.lan")
        assert {q["name"] for q in upstream.queries()} == {"5.1.168.192.in-addr.arpa", "nas.lan"}
        assert b.query("rebind.example.test").answer[0][0].address.startswith("10.")
