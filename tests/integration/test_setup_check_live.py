"""The setup check through the running server: a name from POST /api/setup/check asked over DNS
is answered NXDOMAIN by Burrow itself (never forwarded), and GET /api/setup/check/<name> then says
seen, from the asking address; an unknown name under the suffix records nothing; ordinary names
still go to the upstream and are answered as before."""

import dns.rcode

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess


def test_a_lookup_of_the_check_name_is_seen_and_never_forwarded(tmp_path, upstream):
    with BurrowProcess(tmp_path, [upstream.address]) as b:
        token = admin_token(b)
        status, probe = authed(b, token, "POST", "/api/setup/check")
        assert status == 201 and probe["seen"] is False
        name = probe["name"]
        upstream.clear_log()
        for rdtype in ("A", "AAAA"):
            reply = b.query(name.upper(), rdtype)
            assert reply.rcode() == dns.rcode.NXDOMAIN and not reply.answer
        status, state = authed(b, token, "GET", f"/api/setup/check/{name}")
        assert status == 200 and state["seen"] is True and state["client"] == "127.0.0.1"
        assert state["lookups"] == 2

        other = "0123456789abcdef0123.check.burrow.test"  # never issued
        assert b.query(other).rcode() == dns.rcode.NXDOMAIN
        assert authed(b, token, "GET", f"/api/setup/check/{other}")[0] == 404
        assert upstream.queries() == []  # neither left the box

        # An ordinary name is answered by the upstream, as before.
        reply = b.query("www.example.test")
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer[0][0].address.startswith("10.")
        assert [q["name"] for q in upstream.queries()] == ["www.example.test"]
