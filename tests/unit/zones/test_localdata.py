"""The local data snapshot: local records (exact, wildcard, round robin, NODATA), auto-PTR,
CNAME chains across local data, authoritative zones and expired secondaries."""

from __future__ import annotations

import pytest

from burrow.dns import wire
from burrow.storage.settings import SettingsDB
from burrow.zones.localdata import LocalData
from burrow.zones.records import Record
from burrow.zones.store import ZoneStore

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, CAA = 1, 2, 5, 6, 12, 15, 16, 28, 33, 257
LAB_SOA = Record("lab.test", "SOA", 3600, "ns.lab.test. hostmaster.lab.test. 1 3600 900 604800 300")
LAB = [LAB_SOA,
       Record("lab.test", "NS", 3600, "ns.lab.test."),
       Record("ns.lab.test", "A", 3600, "192.0.2.53"),
       Record("www.lab.test", "A", 600, "192.0.2.10"),
       Record("www.lab.test", "AAAA", 600, "2001:db8::10"),
       Record("alias.lab.test", "CNAME", 600, "www.lab.test."),
       Record("out.lab.test", "CNAME", 120, "cdn.example.com."),
       Record("tolocal.lab.test", "CNAME", 600, "nas.home.lan."),
       Record("lab.test", "MX", 3600, "10 mail.lab.test."),
       Record("mail.lab.test", "A", 3600, "192.0.2.25"),
       Record("lab.test", "TXT", 3600, '"v=spf1 -all"'),
       Record("_sip._tcp.lab.test", "SRV", 3600, "10 0 5060 www.lab.test."),
       Record("lab.test", "CAA", 3600, '0 issue "letsencrypt.org"')]
LOCAL = [Record("nas.home.lan", "A", 300, "192.168.1.5"),
         Record("nas.home.lan", "AAAA", 300, "fd00::5"),
         Record("web.home.lan", "A", 300, "192.168.1.10"),
         Record("web.home.lan", "A", 300, "192.168.1.11"),
         Record("web.home.lan", "A", 300, "192.168.1.12"),
         Record("*.home.lan", "A", 60, "192.168.1.2"),
         Record("*.dev.home.lan", "A", 60, "192.168.1.3"),
         Record("www.home.lan", "CNAME", 300, "nas.home.lan."),
         Record("ext.home.lan", "CNAME", 100, "www.example.org."),
         Record("inzone.home.lan", "CNAME", 300, "alias.lab.test."),
         Record("loop1.home.lan", "CNAME", 300, "loop2.home.lan."),
         Record("loop2.home.lan", "CNAME", 300, "loop1.home.lan.")]
REVERSE = [Record("1.168.192.in-addr.arpa", "SOA", 3600,
                  "ns.lab.test. hostmaster.lab.test. 1 3600 900 604800 300"),
           Record("1.168.192.in-addr.arpa", "NS", 3600, "ns.lab.test."),
           Record("10.1.168.192.in-addr.arpa", "PTR", 3600, "explicit.lab.test.")]


@pytest.fixture
def data():
    return LocalData([("lab.test", "master", LAB), ("1.168.192.in-addr.arpa", "master", REVERSE)], LOCAL)


def values(answer):
    return [r.value for r in answer.answer]


# ---- local records ----------------------------------------------------------------------------

def test_exact_local_record(data):
    ans = data.lookup("NAS.home.lan.", A)
    assert ans.rcode == wire.NOERROR and not ans.aa and ans.source == "local"
    assert ans.answer == [Record("nas.home.lan", "A", 300, "192.168.1.5")] and not ans.rotated
    assert values(data.lookup(wire.text_to_name("nas.home.lan"), AAAA)) == ["fd00::5"]


def test_local_name_other_type_is_nodata_not_upstream(data):
    ans = data.lookup("nas.home.lan", MX)
    assert ans is not None and ans.rcode == wire.NOERROR and not ans.answer and not ans.authority
    assert ans.lifetime == 300 and ans.chase is None


def test_unknown_names_are_not_local(data):
    assert data.lookup("www.example.org", A) is None
    assert data.lookup("home.lan", A) is None  # the wildcard's parent is not covered
    assert data.lookup("evilhome.lan", A) is None
    assert data.lookup("lan", A) is None


def test_round_robin_rotates_per_answer(data):
    seen = [values(data.lookup("web.home.lan", A)) for _ in range(4)]
    assert seen[0] == ["192.168.1.10", "192.168.1.11", "192.168.1.12"]
    assert seen[1] == ["192.168.1.11", "192.168.1.12", "192.168.1.10"]
    assert seen[2] == ["192.168.1.12", "192.168.1.10", "192.168.1.11"]
    assert seen[3] == seen[0]
    assert data.lookup("web.home.lan", A).rotated
    assert not data.lookup("web.home.lan", AAAA).rotated  # NODATA: nothing to rotate


def test_a_look_without_rotating_keeps_the_turn(data):
    assert values(data.lookup("web.home.lan", A)) == ["192.168.1.10", "192.168.1.11", "192.168.1.12"]
    for _ in range(2):
        look = data.lookup("web.home.lan", A, rotate=False)
        assert look.rotated and values(look) == ["192.168.1.10", "192.168.1.11", "192.168.1.12"]
    assert values(data.lookup("web.home.lan", A)) == ["192.168.1.11", "192.168.1.12", "192.168.1.10"]


def test_wildcard_matches_one_or_more_labels_below(data):
    for name in ("x.home.lan", "a.b.c.home.lan"):
        ans = data.lookup(name, A)
        assert ans.answer == [Record(name, "A", 60, "192.168.1.2")]


def test_closest_wildcard_and_exact_names_win(data):
    assert values(data.lookup("box.dev.home.lan", A)) == ["192.168.1.3"]
    assert values(data.lookup("dev.home.lan", A)) == ["192.168.1.2"]  # *.dev is below dev
    assert values(data.lookup("nas.home.lan", A)) == ["192.168.1.5"]
    assert data.lookup("nas.home.lan", TXT).answer == []  # exact name: NODATA, not the wildcard


def test_wildcard_other_type_is_nodata(data):
    ans = data.lookup("x.home.lan", AAAA)
    assert ans.rcode == wire.NOERROR and ans.answer == [] and ans.lifetime == 60


def test_covers(data):
    for name in ("nas.home.lan", "x.y.home.lan", "lab.test", "nothing.lab.test", "5.1.168.192.in-addr.arpa",
                 "1.168.192.in-addr.arpa", "anything.1.168.192.in-addr.arpa", "NAS.HOME.LAN."):
        assert data.covers(name), name
    for name in ("home.lan", "evilhome.lan", "www.example.org", "9.9.168.192.in-addr.arpa", "test"):
        assert not data.covers(name), name


def test_empty_snapshot():
    empty = LocalData()
    assert empty.empty and empty.lookup("nas.home.lan", A) is None and not empty.covers("x")


# ---- CNAME chains -----------------------------------------------------------------------------

def test_local_cname_chased_locally(data):
    ans = data.lookup("www.home.lan", A)
    assert [(r.name, r.type, r.value) for r in ans.answer] == [
        ("www.home.lan", "CNAME", "nas.home.lan."), ("nas.home.lan", "A", "192.168.1.5")]
    assert ans.chase is None


def test_cname_query_is_not_chased(data):
    ans = data.lookup("www.home.lan", CNAME)
    assert values(ans) == ["nas.home.lan."] and ans.chase is None


def test_cname_to_outside_name_asks_for_a_chase(data):
    ans = data.lookup("ext.home.lan", A)
    assert values(ans) == ["www.example.org."] and ans.chase == "www.example.org"
    zone = data.lookup("out.lab.test", AAAA)
    assert zone.aa and values(zone) == ["cdn.example.com."] and zone.chase == "cdn.example.com"


def test_chains_cross_between_zones_and_local_records(data):
    ans = data.lookup("inzone.home.lan", A)
    assert [r.value for r in ans.answer] == ["alias.lab.test.", "www.lab.test.", "192.0.2.10"]
    ans = data.lookup("tolocal.lab.test", A)
    assert ans.aa and values(ans) == ["nas.home.lan.", "192.168.1.5"] and ans.chase is None


def test_cname_loop_stops(data):
    ans = data.lookup("loop1.home.lan", A)
    assert values(ans) == ["loop2.home.lan.", "loop1.home.lan."] and ans.chase is None


# ---- auto-PTR ---------------------------------------------------------------------------------

def test_auto_ptr_v4_and_v6(data):
    ans = data.lookup("5.1.168.192.in-addr.arpa", PTR)  # inside the reverse zone, which lacks the name
    assert values(ans) == ["nas.home.lan."]
    v6 = data.lookup("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", PTR)
    assert values(v6) == ["nas.home.lan."] and v6.source == "auto-ptr"
    assert values(data.lookup("10.2.0.192.in-addr.arpa", PTR)) == ["www.lab.test."]  # from a master zone
    nodata = data.lookup("5.1.168.192.in-addr.arpa", A)
    assert nodata.answer == [] and nodata.rcode == wire.NOERROR


def test_explicit_reverse_record_wins_over_auto_ptr(data):
    ans = data.lookup("10.1.168.192.in-addr.arpa", PTR)
    assert values(ans) == ["explicit.lab.test."] and ans.aa and ans.source == "1.168.192.in-addr.arpa"
    gone = data.lookup("99.1.168.192.in-addr.arpa", PTR)
    assert gone.rcode == wire.NXDOMAIN and gone.authority[0].type == "SOA"


def test_wildcards_make_no_ptr(data):
    assert data.lookup("2.1.168.192.in-addr.arpa", PTR).rcode == wire.NXDOMAIN


def test_several_names_for_one_address():
    d = LocalData([], [Record("a.lan", "A", 300, "10.0.0.1"), Record("b.lan", "A", 60, "10.0.0.1")])
    assert sorted(values(d.lookup("1.0.0.10.in-addr.arpa", PTR))) == ["a.lan.", "b.lan."]


# ---- authoritative zones ----------------------------------------------------------------------

@pytest.mark.parametrize("name,qtype,expected", [
    ("www.lab.test", A, ["192.0.2.10"]),
    ("www.lab.test", AAAA, ["2001:db8::10"]),
    ("lab.test", MX, ["10 mail.lab.test."]),
    ("lab.test", TXT, ['"v=spf1 -all"']),
    ("_sip._tcp.lab.test", SRV, ["10 0 5060 www.lab.test."]),
    ("lab.test", CAA, ['0 issue "letsencrypt.org"']),
    ("lab.test", NS, ["ns.lab.test."]),
    ("lab.test", SOA, [LAB_SOA.value]),
    ("10.1.168.192.in-addr.arpa", PTR, ["explicit.lab.test."]),
    ("alias.lab.test", CNAME, ["www.lab.test."]),
])
def test_every_record_type_answers_authoritatively(data, name, qtype, expected):
    ans = data.lookup(name, qtype)
    assert ans.aa and ans.rcode == wire.NOERROR and values(ans) == expected


def test_nxdomain_and_nodata_carry_the_soa(data):
    nx = data.lookup("nothing.lab.test", A)
    assert nx.rcode == wire.NXDOMAIN and nx.aa and nx.answer == []
    assert nx.authority == [LAB_SOA._replace(ttl=300)]
    nodata = data.lookup("www.lab.test", MX)
    assert nodata.rcode == wire.NOERROR and nodata.answer == [] and nodata.authority[0].type == "SOA"


def test_longest_zone_wins():
    child = [Record("sub.lab.test", "SOA", 60, "ns.lab.test. h.lab.test. 1 60 60 600 30"),
             Record("sub.lab.test", "NS", 60, "ns.lab.test."),
             Record("x.sub.lab.test", "A", 60, "192.0.2.99")]
    d = LocalData([("lab.test", "master", LAB), ("sub.lab.test", "master", child)])
    assert d.lookup("x.sub.lab.test", A).source == "sub.lab.test"
    assert d.zone_for("y.sub.lab.test") == ("sub.lab.test", "master")
    assert d.zone_for("www.lab.test") == ("lab.test", "master") and d.zone_for("example.org") is None


def test_local_records_fill_names_a_zone_lacks(data):
    d = LocalData([("lab.test", "master", LAB)], [Record("nas.lab.test", "A", 300, "192.168.1.9")])
    assert values(d.lookup("nas.lab.test", A)) == ["192.168.1.9"]
    assert d.lookup("other.lab.test", A).rcode == wire.NXDOMAIN


# ---- secondary zones --------------------------------------------------------------------------

SEC = [Record("sec.test", "SOA", 3600, "ns.sec.test. h.sec.test. 7 3600 600 86400 60"),
       Record("sec.test", "NS", 3600, "ns.sec.test."),
       Record("ns.sec.test", "A", 3600, "192.0.2.53"),
       Record("www.sec.test", "A", 60, "192.0.2.80"),
       Record("sec.test", "DNSKEY", 3600, "257 3 13 AAAA")]  # a type we do not serve: left out


def test_slave_zone_answers_until_it_expires():
    state = {"expired": False}
    d = LocalData([("sec.test", "slave", SEC)], expired=lambda origin: state["expired"])
    assert values(d.lookup("www.sec.test", A)) == ["192.0.2.80"] and d.lookup("www.sec.test", A).aa
    assert d.lookup("sec.test", 48).answer == []  # DNSKEY: NODATA
    state["expired"] = True
    ans = d.lookup("www.sec.test", A)
    assert ans.rcode == wire.SERVFAIL and ans.source == "sec.test" and ans.answer == []
    assert d.covers("www.sec.test")


def test_never_transferred_slave_is_servfail():
    d = LocalData([("sec.test", "slave", [])])
    assert d.lookup("www.sec.test", A).rcode == wire.SERVFAIL


# ---- built from the store ---------------------------------------------------------------------

def test_from_store(tmp_path):
    db = SettingsDB(tmp_path / "s.db")
    store = ZoneStore(db)
    store.create_zone("lab.test")
    store.add_record("lab.test", "www", "A", "192.0.2.10")
    store.add_local("nas.home.lan", "A", ["192.168.1.5"])
    store.create_zone("sec.test", "slave", ["192.0.2.1"])
    d = LocalData.from_store(store)
    assert values(d.lookup("www.lab.test", A)) == ["192.0.2.10"]
    assert values(d.lookup("nas.home.lan", A)) == ["192.168.1.5"]
    assert values(d.lookup("10.2.0.192.in-addr.arpa", PTR)) == ["www.lab.test."]
    assert d.lookup("x.sec.test", A).rcode == wire.SERVFAIL
    assert d.stats()["zones"] == 2
    db.close()


# ---- with_local: an edit gives the snapshot a full build would ---------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_OWNERS = ["nas.home.lan", "web.home.lan", "*.home.lan", "*", "tv.home.lan", "www.lab.test"]
_ADDRESSES = ["192.168.1.5", "192.168.1.10", "192.0.2.10", "fd00::5"]  # 192.0.2.10 is also in LAB


def _owner_records(owner, picks):
    out = []
    for kind, i in picks:
        if kind == "CNAME":
            return [Record(owner, "CNAME", 300, "nas.home.lan.")]
        address = _ADDRESSES[i % len(_ADDRESSES)]
        rtype = "AAAA" if ":" in address else "A"
        rec = Record(owner, rtype, 60 + i, address)
        if all(r.value != address for r in out):
            out.append(rec)
    return out


_EDIT = st.dictionaries(st.sampled_from(_OWNERS),
                        st.lists(st.tuples(st.sampled_from(["A", "A", "CNAME"]), st.integers(0, 7)),
                                 max_size=3),
                        min_size=1, max_size=3)


def _state(data):
    return (data._exact, data._wild, data._ptr, data.records, data.empty)


@settings(max_examples=150, deadline=None)
@given(edits=st.lists(_EDIT, min_size=1, max_size=5), with_zone=st.booleans())
def test_with_local_equals_a_full_build(edits, with_zone):
    """Issue 20, item 12: with_local replaces only the edited owners; wildcards, an address
    shared by several owners and with a master zone, owners emptied, all as from scratch."""
    zones = [("lab.test", "master", LAB)] if with_zone else []
    local: dict[str, list[Record]] = {"nas.home.lan": [LOCAL[0], LOCAL[1]], "*.home.lan": [LOCAL[5]]}
    data = LocalData(zones, [r for recs in local.values() for r in recs])
    for edit in edits:
        changed = {owner: _owner_records(owner, picks) for owner, picks in edit.items()}
        local.update(changed)
        data = data.with_local(changed)
        assert _state(data) == _state(LocalData(zones, [r for recs in local.values() for r in recs]))


def test_with_local_keeps_the_old_snapshot_as_it_was():
    old = LocalData([], LOCAL)
    before = _state(old)
    answer = old.lookup("5.1.168.192.in-addr.arpa", PTR)
    new = old.with_local({"nas.home.lan": [Record("nas.home.lan", "A", 300, "192.168.1.6")]})
    assert _state(old) == before  # queries in flight on the old snapshot see the old data
    assert old.lookup("5.1.168.192.in-addr.arpa", PTR).answer == answer.answer
    assert new.lookup("5.1.168.192.in-addr.arpa", PTR) is None
    assert [r.value for r in new.lookup("6.1.168.192.in-addr.arpa", PTR).answer] == ["nas.home.lan."]
    assert [r.value for r in new.lookup("nas.home.lan", A).answer] == ["192.168.1.6"]
    assert new.lookup("nas.home.lan", AAAA).answer == []  # NODATA: the name is still local
