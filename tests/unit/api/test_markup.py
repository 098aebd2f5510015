"""The HTML builder of the /api/ui/… partials (burrow/api/markup.py): data is only ever text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burrow.api import markup
from burrow.api.markup import Html, el, join, number

from tests.support.fragments import parse_fragment

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "&lt;already-escaped&gt; &amp; & &#60; &#x3c;",
    "<!-- comment --><![CDATA[x]]><?pi?>",
    "javascript:alert(1)",
    "a\\060b\\.c",  # presentation-format escapes (burrow/dns/wire.py) stay as typed
    "`${alert(1)}`",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_text_is_text_in_content_and_attributes(value):
    frag = el("div", el("span", value, class_="t", title=value, data_domain=value), class_="root")
    out = str(frag)
    assert "<img" not in out and "<script" not in out and "<!--" not in out
    parsed = parse_fragment(out)
    assert [tag for tag, _ in parsed.elements] == ["div", "span"]
    assert parsed.texts("t") == [value]
    assert parsed.elements[1][1] == {"class": "t", "title": value, "data-domain": value}


@pytest.mark.parametrize("char,entity", [("<", "&lt;"), (">", "&gt;"), ("&", "&amp;"), ('"', "&quot;"),
                                         ("'", "&#x27;")])
def test_every_markup_character_is_an_entity_in_text_and_attribute(char, entity):
    assert str(el("span", f"a{char}b")) == f"<span>a{entity}b</span>"
    assert str(el("span", title=f"a{char}b")) == f'<span title="a{entity}b"></span>'


@pytest.mark.parametrize("char,shown", [
    ("\x00", "\\x00"), ("\x08", "\\x08"), ("\t", "\\x09"), ("\n", "\\x0a"), ("\r", "\\x0d"),
    ("\x1b", "\\x1b"), ("\x7f", "\\x7f"), ("\x85", "\\x85"), ("\x9f", "\\x9f"),
    ("\u202e", "\\u202e"), ("\u2066", "\\u2066"), ("\u200f", "\\u200f"), ("\u061c", "\\u061c"),
    ("\ud800", "\\ud800"), ("\udfff", "\\udfff"), ("\ufffe", "\\ufffe"), ("\ufdd0", "\\ufdd0"),
])
def test_control_bidi_surrogate_and_noncharacters_are_shown_as_escapes(char, shown):
    out = str(el("span", f"a{char}b", title=f"a{char}b"))
    assert out == f'<span title="a{shown}b">a{shown}b</span>'
    out.encode("utf-8")  # a lone surrogate would fail here (and the answer with a 500)


@pytest.mark.parametrize("name", ["bücher.example", "xn--bcher-kva.example", "пример.испытание",
                                  "例え.テスト", "مثال.إختبار", "b\\195\\188cher.example"])
def test_international_names_stay_as_they_are(name):
    out = str(el("span", name, title=name))
    assert out == f'<span title="{name}">{name}</span>'
    assert parse_fragment(out).elements == [("span", {"title": name})]


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_text_comes_out_as_the_same_text(value):
    shown = markup._INVISIBLE.sub(markup._visible, value)
    out = str(el("p", el("span", value, class_="v", title=value), class_="r"))
    parsed = parse_fragment(out)
    assert [tag for tag, _ in parsed.elements] == ["p", "span"]
    assert parsed.texts("v") == [shown]
    assert parsed.elements[1][1]["title"] == shown
    out.encode("utf-8")


def test_elements_outside_the_builders_set_are_refused():
    for tag in ("script", "img", "style", "iframe", "a", "form", "svg", "math", "object", "IMG", "span onclick=x"):
        with pytest.raises(ValueError):
            el(tag)


@pytest.mark.parametrize("name", ["onclick", "onerror", "style", "href", "src", "srcset", "action",
                                  "formaction", "xlink_href", "data_", "data_X", "Class", "id"])
def test_attributes_outside_the_builders_set_are_refused(name):
    with pytest.raises(ValueError):
        el("span", **{name: "x"})


def test_attribute_names_and_values():
    assert str(el("td", colspan=7, class_="a b", data_row_id=3, title=None, value=False)) == \
        '<td colspan="7" class="a b" data-row-id="3"></td>'
    assert str(el("data", value=True)) == "<data value></data>"
    with pytest.raises(TypeError):
        el("span", title=object())


def test_children_nest_and_join_without_a_wrapper():
    inner = el("li", "x")
    assert str(el("ol", [inner, inner], None, "&")) == "<ol><li>x</li><li>x</li>&amp;</ol>"
    assert str(join(el("span", "a"), " < ", el("span", "b"))) == "<span>a</span> &lt; <span>b</span>"
    assert str(el("span", 3, " ", 2.5)) == "<span>3 2.5</span>"


def test_nothing_but_the_builder_makes_html():
    with pytest.raises(TypeError):
        Html("<img src=x onerror=alert(1)>", None)
    with pytest.raises(TypeError):
        Html("<b>", object())
    for child in (True, object(), b"<b>", {"a": 1}):
        with pytest.raises(TypeError):
            el("span", child)
    with pytest.raises(TypeError):
        markup.text(b"bytes")  # type: ignore[arg-type]


def test_numbers_are_written_as_the_json_answers_write_them():
    assert number(10000) == "10000" and number(25.0) == "25.0" and number(33.33) == "33.33"
    assert number(0.1 + 0.2) == repr(0.1 + 0.2)
    for bad in (True, "1", None):
        with pytest.raises(TypeError):
            number(bad)  # type: ignore[arg-type]
