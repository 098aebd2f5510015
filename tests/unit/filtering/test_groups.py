"""Client groups: membership by IP/CIDR, the default group, persistence, validation; and how
the filter stage, the allow/deny lists and the pause apply them."""

import asyncio

import pytest

from burrow.dns.decision import Decision
from burrow.dns.stages.filter import FilterStage
from burrow.filtering.compiler import Source, compile_index
from burrow.dns.names import view_groups
from burrow.filtering.groups import DEFAULT, Duplicate, GroupError, Groups
from burrow.filtering.index import Index
from burrow.filtering.pause import BlockingPause
from burrow.filtering.userlists import UserList

from tests.support.dnsq import Next, make_query


def test_membership_by_ip_and_cidr_with_default_for_the_rest(db):
    g = Groups(db)
    g.add_group("kids")
    g.add_group("iot")
    g.add_client("192.168.1.40", ["kids"], name="tablet")
    g.add_client("192.168.5.0/24", ["iot"])
    g.add_client("192.168.5.7", ["kids"])
    g.add_client("fd00::/64", ["iot"])
    assert g.groups_of("192.168.1.40") == {"kids"}
    assert g.groups_of("192.168.5.7") == {"iot", "kids"}  # a member of every covering entry
    assert g.view_of("192.168.5.7") == "iot,kids"
    assert g.groups_of("192.168.5.200") == {"iot"}
    assert g.groups_of("::ffff:192.168.1.40") == {"kids"}  # v4-mapped counts as v4
    assert g.groups_of("fd00::1%eth0") == {"iot"}
    assert g.groups_of("192.168.1.41") == {DEFAULT} and g.view_of("10.0.0.1") == "default"
    assert g.groups_of("not an ip") == {DEFAULT}
    assert view_groups("iot,kids") == ("iot", "kids") and view_groups("default") == ("default",)


def test_persisted_and_validated(db):
    g = Groups(db)
    g.add_group("kids", "tablets")
    c = g.add_client("10.0.0.9", ["kids"])
    again = Groups(db)
    assert again.groups_of("10.0.0.9") == {"kids"} and again.client(c["id"])["client"] == "10.0.0.9"
    with pytest.raises(Duplicate):
        again.add_group("kids")
    with pytest.raises(Duplicate):
        again.add_group("default")
    with pytest.raises(Duplicate):
        again.add_client("10.0.0.9/32", ["kids"])  # the same network written differently
    for bad_name in ("", "Bad Name", "-x", "a" * 65, 5):
        with pytest.raises(GroupError) as e:
            again.add_group(bad_name)
        assert e.value.field == "name"
    for bad_client in ("10.0.0.300", "10.0.0.1/8", "ten", ""):
        with pytest.raises(GroupError) as e:
            again.add_client(bad_client, ["kids"])
        assert e.value.field == "client"
    with pytest.raises(GroupError) as e:
        again.add_client("10.0.0.10", ["nope"])
    assert e.value.field == "groups"
    with pytest.raises(GroupError):
        again.add_client("10.0.0.10", [])
    with pytest.raises(GroupError):
        again.delete_group("default")
    assert Groups(db).clients == again.clients  # failed calls changed nothing


def test_deleting_a_group_takes_it_off_clients(db):
    g = Groups(db)
    g.add_group("kids")
    g.add_group("guests")
    a = g.add_client("10.0.0.1", ["kids", "guests"])
    g.add_client("10.0.0.2", ["kids"])
    g.delete_group("kids")
    assert [c["client"] for c in g.clients] == ["10.0.0.1"] and g.client(a["id"])["groups"] == ["guests"]
    assert g.groups_of("10.0.0.2") == {DEFAULT}
    assert g.names() == ["default", "guests"]
    with pytest.raises(KeyError):
        g.delete_group("kids")


def test_update_client(db):
    g = Groups(db)
    g.add_group("kids")
    g.add_group("guests")
    c = g.add_client("10.0.0.1", ["kids"])
    g.add_client("10.0.0.2", ["kids"])
    assert g.update_client(c["id"], {"groups": ["guests"], "name": "tv"})["groups"] == ["guests"]
    assert g.groups_of("10.0.0.1") == {"guests"}
    with pytest.raises(Duplicate):
        g.update_client(c["id"], {"client": "10.0.0.2"})
    with pytest.raises(KeyError):
        g.update_client(99, {"name": "x"})


def test_user_list_entries_limited_to_groups(db):
    lst = UserList(db, "filtering.denylist")
    lst.add("games.example", ["kids"])
    lst.add("*.ads.example")
    assert lst.match("games.example", ("kids",)) == "games.example"
    assert lst.match("games.example", ("default",)) is None
    assert lst.match("games.example") == "games.example"  # no groups given: limits ignored
    assert lst.match("x.ads.example", ("default",)) == "*.ads.example"
    assert lst.summary()["groups"] == {"games.example": ["kids"]}
    assert UserList(db, "filtering.denylist").match("games.example", ("guests", "kids")) == "games.example"
    lst.drop_group("kids")
    assert lst.match("games.example") is None and lst.counts()["total"] == 1


@pytest.fixture
def index(tmp_path):
    (tmp_path / "all.txt").write_text("ads.example\n")
    (tmp_path / "kids.txt").write_text("games.example\n")
    report = compile_index([Source(0, str(tmp_path / "all.txt"), "domains", "block", name="all"),
                            Source(1, str(tmp_path / "kids.txt"), "domains", "block", name="kids-only")],
                           tmp_path / "index.bin")
    assert report.ok
    idx = Index.open(tmp_path / "index.bin")
    yield idx
    idx.close()


def resolve(stage, name, view):
    q = make_query(name)
    q.view = view
    return asyncio.run(stage.resolve(q, Next()))


def test_filter_applies_lists_of_the_clients_groups(index, db):
    s = FilterStage()
    s.set_index(index)
    limits = {0: [], 1: ["kids"]}
    s.list_groups = lambda: limits
    assert resolve(s, "games.example", "kids").decision is Decision.BLOCKED
    assert resolve(s, "games.example", "guests,kids").decision is Decision.BLOCKED
    assert resolve(s, "games.example", "default").decision is Decision.RESOLVED
    assert resolve(s, "ads.example", "default").decision is Decision.BLOCKED  # [] = every group
    limits[1] = ["guests"]
    assert resolve(s, "games.example", "kids").decision is Decision.BLOCKED  # remembered per view
    s.forget_views()
    assert resolve(s, "games.example", "kids").decision is Decision.RESOLVED
    s.shared.pause = BlockingPause(db)
    s.shared.pause.pause(60, group="guests")
    assert resolve(s, "ads.example", "guests").decision is Decision.RESOLVED  # paused for guests
    assert resolve(s, "ads.example", "kids").decision is Decision.BLOCKED
