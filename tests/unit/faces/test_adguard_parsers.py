"""The AdGuard Home face's parsers: Basic credentials, body fields, and Burrow's allow and deny
lists written as AdGuard user rules."""

from __future__ import annotations

import base64

import pytest

from burrow.faces.adguard import user_rules
from burrow.faces.adguard.http import Refused, basic_credentials, field


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("header, expected", [
    (f"Basic {b64('alice:pass word:with colon')}", ("alice", "pass word:with colon")),
    (f"basic  {b64('x:brw_token')} ", ("x", "brw_token")),
    (f"Basic {b64(':')}", ("", "")),
    (f"Basic {b64('ünï:cödé')}", ("ünï", "cödé")),
])
def test_basic_credentials(header, expected):
    assert basic_credentials(header) == expected


@pytest.mark.parametrize("header", [
    None, "", "Basic", "Bearer abc", f"Basic {b64('no-colon')}", "Basic !!notbase64",
    "Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Basic " + "A" * 5000,
])
def test_basic_credentials_refused(header):
    assert basic_credentials(header) is None


def test_field_types():
    body = {"enabled": True, "n": 3, "f": 1.5, "s": "x", "d": {}, "l": []}
    assert field(body, "enabled", bool) is True and field(body, "n", int) == 3
    assert field(body, "n", float) == 3 and field(body, "f", float) == 1.5
    assert field(body, "missing", str, required=False, default="d") == "d"
    for name, kind in (("enabled", int), ("n", bool), ("s", dict), ("enabled", float), ("l", dict)):
        with pytest.raises(Refused) as refused:
            field(body, name, kind)
        assert refused.value.status == 400 and refused.value.message.startswith(f"{name}: must be")
    with pytest.raises(Refused, match="missing: required"):
        field(body, "missing", str)


def test_user_rules_in_adguard_syntax():
    deny = {"exact": ["ads.example"], "wildcard": ["*.track.example"], "regex": ["^ad[0-9]+\\."]}
    allow = {"exact": ["ok.example"], "wildcard": [], "regex": []}
    assert user_rules(allow, deny) == ["|ads.example^", "/\\.track\\.example$/", "/^ad[0-9]+\\./",
                                        "@@|ok.example^"]
