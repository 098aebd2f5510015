"""Filter stage: decisions from a real compiled index, blocking modes, EDE, CNAME inspection."""

import asyncio

import dns.message
import pytest

from burrow.dns.decision import Decision
from burrow.dns.message import DROP, render
from burrow.dns.blocking import BlockingSettings
from burrow.dns.shared import Shared
from burrow.dns.stages.filter import FilterStage
from burrow.filtering.compiler import Source, compile_index
from burrow.filtering.index import Index

from tests.support.dnsq import Next, make_query, upstream_cname_answer


@pytest.fixture
def index(tmp_path):
    (tmp_path / "ads.txt").write_text("||ads.example^\n||tracker.example^\n@@||ok.ads.example^\n"
                                      "||must.example^$important\n||nx.example^\n")
    (tmp_path / "allow.txt").write_text("must.example\nfine.example\n")
    (tmp_path / "wild.txt").write_text("*.x.com\n")
    (tmp_path / "threat.txt").write_text("malware.example\n")
    (tmp_path / "nx.txt").write_text("nxlist.example\n")
    report = compile_index([
        Source(0, str(tmp_path / "ads.txt"), "adblock", "block", name="ads"),
        Source(1, str(tmp_path / "allow.txt"), "domains", "allow", name="mine"),
        Source(2, str(tmp_path / "wild.txt"), "wildcard", "block", name="wild"),
        Source(3, str(tmp_path / "threat.txt"), "domains", "threat", name="feed"),
        Source(4, str(tmp_path / "nx.txt"), "domains", "block", mode="nxdomain", name="nxl"),
    ], tmp_path / "index.bin")
    assert report.ok, report.error
    idx = Index.open(tmp_path / "index.bin")
    yield idx
    idx.close()


def stage(index, **kw):
    s = FilterStage(Shared(BlockingSettings(**kw)))
    s.set_index(index)
    return s


def run(coro):
    return asyncio.run(coro)


def reply(query, answer):
    return dns.message.from_wire(render(query, answer))


def test_unlisted_name_passes_to_next(index):
    nxt = Next()
    ans = run(stage(index).resolve(make_query("www.example.org"), nxt))
    assert ans is nxt.answer and len(nxt.calls) == 1


def test_blocked_null_mode_answers_zero_address_with_ede(index):
    nxt = Next()
    q = make_query("sub.ads.example", "A", use_edns=0)
    ans = run(stage(index).resolve(q, nxt))
    assert not nxt.calls and ans.decision is Decision.BLOCKED
    m = reply(q, ans)
    assert m.answer[0][0].address == "0.0.0.0" and m.answer[0].ttl == 10
    ede = [o for o in m.options if o.otype == 15][0]
    assert ede.code == 15 and "ads" in ede.text
    assert q.trace[-1].stage == "blocklist" and q.trace[-1].rule == "ads"
    q6 = make_query("ads.example", "AAAA")
    assert reply(q6, run(stage(index).resolve(q6, nxt))).answer[0][0].address == "::"
    qmx = make_query("ads.example", "MX")
    m = reply(qmx, run(stage(index).resolve(qmx, nxt)))
    assert m.rcode() == 0 and not m.answer  # NODATA for other types


@pytest.mark.parametrize("mode,rcode,has_answer", [("nxdomain", 3, False), ("nodata", 0, False), ("custom", 0, True)])
def test_blocking_modes(index, mode, rcode, has_answer):
    q = make_query("ads.example", "A")
    m = reply(q, run(stage(index, mode=mode, custom_ipv4="192.0.2.99").resolve(q, Next())))
    assert m.rcode() == rcode and bool(m.answer) == has_answer
    if has_answer:
        assert m.answer[0][0].address == "192.0.2.99"


def test_per_list_mode_overrides_and_threat_lists_use_ede_17(index):
    q = make_query("nxlist.example", "A")
    assert reply(q, run(stage(index).resolve(q, Next()))).rcode() == 3
    q = make_query("malware.example", "A", use_edns=0)
    m = reply(q, run(stage(index).resolve(q, Next())))
    assert [o.code for o in m.options if o.otype == 15] == [17]


def test_allow_beats_block_and_important_beats_allow(index):
    nxt = Next()
    ans = run(stage(index).resolve(make_query("ok.ads.example"), nxt))  # @@ exception
    assert len(nxt.calls) == 1 and ans.decision is Decision.ALLOWED
    run(stage(index).resolve(make_query("fine.example"), nxt))
    assert len(nxt.calls) == 2
    ans = run(stage(index).resolve(make_query("must.example"), nxt))  # allowed but $important
    assert ans.decision is Decision.BLOCKED and len(nxt.calls) == 2


def test_wildcard_is_dot_bounded_and_strictly_below(index):
    assert run(stage(index).resolve(make_query("a.x.com"), Next())).decision is Decision.BLOCKED
    nxt = Next()
    run(stage(index).resolve(make_query("evilx.com"), nxt))
    run(stage(index).resolve(make_query("x.com"), nxt))
    assert len(nxt.calls) == 2


def test_cname_chain_through_a_blocked_name_is_blocked(index):
    q = make_query("www.shop.test")
    ans = run(stage(index).resolve(q, Next(upstream_cname_answer("www.shop.test", "pixel.tracker.example"))))
    assert ans.decision is Decision.BLOCKED
    assert "cname pixel.tracker.example" in q.trace[-1].detail
    clean = upstream_cname_answer("www.shop.test", "cdn.example.net")
    assert run(stage(index).resolve(make_query("www.shop.test"), Next(clean))) is clean


def test_paused_blocking_passes_everything(index):
    class Paused:
        def paused(self, groups=()):
            return True
    s = stage(index)
    s.shared.pause = Paused()
    nxt = Next()
    run(s.resolve(make_query("ads.example"), nxt))
    assert len(nxt.calls) == 1


def test_redirect_and_drop_actions(tmp_path):
    (tmp_path / "m.txt").write_text("address=/redir.example/192.0.2.5\n")
    (tmp_path / "r.rpz").write_text("$TTL 300\n@ SOA localhost. root.localhost. 1 3600 600 86400 300\n"
                                    "  NS localhost.\ndropme CNAME rpz-drop.\n")
    report = compile_index([Source(0, str(tmp_path / "m.txt"), "dnsmasq", "block", name="m"),
                            Source(1, str(tmp_path / "r.rpz"), "rpz", "block", name="rpz")],
                           tmp_path / "i.bin")
    assert report.ok, report.error
    idx = Index.open(tmp_path / "i.bin")
    try:
        q = make_query("redir.example", "A")
        ans = run(stage(idx).resolve(q, Next()))
        assert ans.decision is Decision.REDIRECTED and reply(q, ans).answer[0][0].address == "192.0.2.5"
        q = make_query("dropme")
        assert run(stage(idx).resolve(q, Next())) is DROP
        # a drop is its own decision, blocked but never rate-limited, and its trace says so
        assert DROP.decision is Decision.DROPPED and Decision.DROPPED.blocked
        assert [(e.stage, e.action, e.rule) for e in q.trace] == [("blocklist", "drop", "rpz")]
    finally:
        idx.close()


def test_the_index_words_the_stage_restates_are_the_index_s():
    # the DNS core imports nothing from filtering/, so the stage restates these two
    from burrow.dns.stages import filter as stage_module
    from burrow.filtering import index as index_module
    assert stage_module.ALL_LISTS == index_module.ALL_LISTS
    assert stage_module.ALLOW_ACTIONS == index_module.ALLOW_ACTIONS
