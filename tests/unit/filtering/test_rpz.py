"""RPZ zones: rule validation, rendering that our own parser reads back, hand-zone storage."""

import pytest

from burrow.filtering.parsers import parse
from burrow.filtering.rpz import HandZones, RpzError, check_rule, parse_zone_text, render_zone, rules_from_list
from burrow.storage.settings import SettingsDB

RULES = [{"trigger": "nx.example", "action": "nxdomain", "data": ""},
         {"trigger": "*.nodata.example", "action": "nodata", "data": ""},
         {"trigger": "ok.example", "action": "passthru", "data": ""},
         {"trigger": "drop.example", "action": "drop", "data": ""},
         {"trigger": "ip.example", "action": "redirect", "data": "192.0.2.1,2001:db8::1"},
         {"trigger": "cn.example", "action": "redirect", "data": "target.example"}]


def test_render_then_parse_gives_the_same_rules():
    text = render_zone("rpz.home", RULES, 7)
    assert "@ IN SOA localhost. hostmaster.localhost. 7 " in text and "$ORIGIN rpz.home." in text
    res = parse(text.splitlines(), "rpz")
    assert res.errors == 0
    assert sorted(rules_from_list(res.rules), key=lambda r: r["trigger"]) == sorted(RULES, key=lambda r: r["trigger"])
    assert parse_zone_text(text) == rules_from_list(res.rules)


@pytest.mark.parametrize("trigger, action, data, field", [
    ("", "nxdomain", "", "trigger"), ("a*.x", "drop", "", "trigger"), ("bad name.x", "drop", "", "trigger"),
    ("x.example", "block", "", "action"), ("x.example", "nxdomain", "1.2.3.4", "data"),
    ("x.example", "redirect", "", "data"), ("x.example", "redirect", "a.example,b.example", "data"),
    ("x.example", "redirect", "1.2.3.4,a.example", "data")])
def test_bad_rules_name_the_field(trigger, action, data, field):
    with pytest.raises(RpzError) as e:
        check_rule(trigger, action, data)
    assert e.value.field == field


def test_rules_are_normalised():
    assert check_rule("*.X.Example.", "drop") == {"trigger": "*.x.example", "action": "drop", "data": ""}
    assert check_rule("a.example", "redirect", " 2001:DB8::1 , 192.0.2.1")["data"] == "2001:db8::1,192.0.2.1"


def test_hand_zones_store_then_write_and_resync(tmp_path):
    db = SettingsDB(tmp_path / "s.db")
    hz = HandZones(db, str(tmp_path), clock=lambda: 1000)
    state = hz.save(3, "rpz.home", [{"id": 1, **RULES[0]}])
    assert state["serial"] == 1000 and hz.is_hand(3) and not hz.is_hand(4)
    assert hz.save(3, "rpz.home", [{"id": 1, **RULES[0]}])["serial"] == 1001  # bumped on every change
    path = tmp_path / "rpz-3.zone"
    assert "nx.example IN CNAME ." in path.read_text()
    path.unlink()  # a power cut between the settings write and the file
    hz.sync([3, 4])
    assert "nx.example IN CNAME ." in path.read_text()
    with pytest.raises(RpzError):
        hz.save(3, "rpz.home", [{"id": i, **RULES[0]} for i in range(10_001)])
    hz.forget(3)
    assert not path.exists() and not hz.is_hand(3)
    db.close()
