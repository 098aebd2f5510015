"""The seed's HTML partials on the running process (issue 15): real DNS queries whose labels hold
HTML, quotes, ampersands, backslashes and bytes outside ASCII are sent with dnspython, and
``/api/ui/queries``, ``/api/ui/top-domains`` and ``/api/ui/stats`` must show them as text in
fragments that hold nothing but the builder's elements and attributes, with the same figures as
the JSON routes at the same moment; anonymous callers get the JSON 401, a viewer gets 200.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import dns.message
import dns.name
import dns.query
import pytest

from burrow.dns.wire import name_to_text

from tests.support.api_client import admin_token, user_token
from tests.support.burrow_proc import BurrowProcess
from tests.support.fragments import parse_fragment
from tests.support.timing import wait_for
from tests.support.upstream_client import TestUpstream

VIEWER_PW = "Viewer-pass-2024"
# Labels as bytes on the wire: what an attacker on the network can put into the query log.
HOSTILE_LABELS = [
    b"<img src=x onerror=alert(1)>",
    b"</script><script>alert(1)</script>",
    b"\"'><svg/onload=alert(1)>",
    b"a&amp;b&lt;c&#60;d",
    b"back\\slash.dot",
    b"ctl\x00\x07\x1b\x7f",
    b"\xc3\xbc\xe2\x80\xae",  # UTF-8 bytes (an u-umlaut, a right-to-left override) sent raw
    b"xn--bcher-kva",
]


def hostile_name(label: bytes) -> dns.name.Name:
    return dns.name.Name([label, b"xss", b"example", b""])


def shown(name: dns.name.Name) -> str:
    """The name as Burrow writes it into the log (presentation format, burrow/dns/wire.py)."""
    return name_to_text(name.to_wire())


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("ui"), [up.address]) as b:
        yield b


@pytest.fixture(scope="module")
def viewer(srv):
    return user_token(srv, admin_token(srv), "vera", VIEWER_PW)


def get(srv, path: str, token: str | None) -> tuple[int, dict, str]:
    """(status, headers with lower-case names, body text)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"http://127.0.0.1:{srv.web_port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode("utf-8")


def get_json(srv, path, token):
    status, _, text = get(srv, path, token)
    assert status == 200, (status, text)
    return json.loads(text)


def get_html(srv, path, token):
    status, headers, text = get(srv, path, token)
    assert status == 200, (status, text)
    assert headers["content-type"] == "text/html; charset=utf-8"
    return parse_fragment(text)  # fails on any element or attribute the builder does not make


def at_the_same_moment(srv, token, path: str):
    """(JSON answer of ``path``, fragment of its /api/ui/ twin), read while the JSON answer stayed
    the same before and after the HTML one (timestamps aside); retried until then, within a
    deadline."""
    partial = path.replace("/api/", "/api/ui/", 1)

    def attempt():
        before, fragment, after = get_json(srv, path, token), get_html(srv, partial, token), get_json(srv, path, token)
        for a in (before, after):
            a.pop("timestamp", None)
        return (before, fragment) if before == after else None
    return wait_for(attempt, what=f"{path} unchanged across one read", interval=0.25)


@pytest.fixture(scope="module")
def sent(srv, viewer):
    """Send every hostile query (one of them three times) and wait until the log has them all."""
    names = [hostile_name(label) for label in HOSTILE_LABELS]
    for name in names + [names[0], names[0]]:
        reply = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=srv.dns_port, timeout=10)
        assert reply.question[0].name == name  # answered (the log records it)
    expected = {shown(n) for n in names}

    def logged():
        rows = get_json(srv, "/api/queries?limit=1000&domain=xss.example", viewer)["queries"]
        return expected <= {r["domain"] for r in rows}
    wait_for(logged, what="the hostile queries in /api/queries", interval=0.25)
    return names


def test_anonymous_gets_the_json_401_and_a_viewer_gets_html(srv, viewer):
    for path in ("/api/ui/stats", "/api/ui/queries", "/api/ui/top-domains"):
        status, headers, text = get(srv, path, None)
        assert status == 401 and headers["content-type"].startswith("application/json"), (path, status)
        assert json.loads(text)["code"] == 401
        status, headers, text = get(srv, path, "forged")
        assert status == 401, (path, status)
        status, headers, _ = get(srv, path, viewer)
        assert status == 200 and headers["content-type"] == "text/html; charset=utf-8", (path, status)
        assert "script-src 'self'" in headers["content-security-policy"]
    status, headers, text = get(srv, "/api/ui/queries?limit=5000", viewer)
    assert status == 400 and [d["field"] for d in json.loads(text)["details"]] == ["limit"]


def test_hostile_names_are_text_in_the_query_log_partial(srv, viewer, sent):
    answer, frag = at_the_same_moment(srv, viewer, "/api/queries?limit=200&domain=xss.example")
    domains = frag.texts("ui-domain")
    assert domains == [q["domain"] for q in answer["queries"]]
    for name in sent:
        assert shown(name) in domains, shown(name)
    assert "<img\\032src=x\\032onerror=alert(1)>.xss.example" in domains
    assert "back\\092slash\\046dot.xss.example" in domains
    assert "\\195\\188\\226\\128\\174.xss.example" in domains
    rows = [attrs for tag, attrs in frag.elements if tag == "tr" and "data-id" in attrs]
    assert [int(r["data-id"]) for r in rows] == [q["id"] for q in answer["queries"]]
    assert int(frag.elements[0][1]["data-total"]) == answer["total"] == len(sent) + 2


def test_hostile_names_are_text_in_the_top_domains_partial(srv, viewer, sent):
    def flushed():  # top domains read the written log (flushed every second here)
        top = get_json(srv, "/api/top-domains?limit=100", viewer)["domains"]
        return {shown(n) for n in sent} <= {d["domain"] for d in top}
    wait_for(flushed, what="the hostile names in /api/top-domains", interval=0.25)
    answer, frag = at_the_same_moment(srv, viewer, "/api/top-domains?limit=100")
    assert frag.texts("ui-domain") == [d["domain"] for d in answer["domains"]]
    counts = [int(attrs["value"]) for tag, attrs in frag.elements if tag == "data"]
    assert counts == [d["queries"] for d in answer["domains"]]
    assert answer["domains"][0] == {"domain": shown(sent[0]), "queries": 3, "blocked": False}
    empty = get_html(srv, "/api/ui/top-domains?blocked=true", viewer)
    assert empty.texts("ui-empty") == ["No blocked domains yet."]


def test_stats_partial_has_the_json_figures(srv, viewer, sent):
    for since in ("", "?since=1h"):
        answer, frag = at_the_same_moment(srv, viewer, "/api/stats" + since)
        figures = {attrs["data-field"]: None for attrs in frag.with_attribute("data-field")}
        values = [attrs["value"] for tag, attrs in frag.elements if tag == "data"]
        assert len(values) == len(figures) >= 6
        for name, value in zip(figures, values):
            assert json.loads(value) == answer[name], name
        assert answer["total_queries"] >= len(sent) + 2
        assert frag.elements[0][1]["data-period"] == answer["period"]
