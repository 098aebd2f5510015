"""Schema objects validate with field paths and describe themselves as JSON Schema."""

import pytest

from burrow.api.errors import ValidationError
from burrow.api.schema import Bool, Int, List, Obj, Query, Str

Rule = Obj("Rule", {
    "name": Str(min_len=1, max_len=20),
    "priority": Int(minimum=1, maximum=100, default=50),
    "upstreams": List(Str(pattern=r"[0-9.]+:\d+"), min_items=1),
    "enabled": Bool(required=False),
})


def test_valid_body_is_cleaned_with_defaults():
    out = Rule.validate({"name": " home ", "upstreams": ["10.0.0.1:53"]})
    assert out == {"name": "home", "priority": 50, "upstreams": ["10.0.0.1:53"]}


def test_every_problem_is_named_by_path():
    with pytest.raises(ValidationError) as e:
        Rule.validate({"name": "", "priority": 0, "upstreams": ["x", "10.0.0.1:53"], "typo": 1})
    fields = {d["field"] for d in e.value.details}
    assert fields == {"name", "priority", "upstreams[0]", "typo"}
    assert e.value.status == 400


def test_types_are_strict_but_query_strings_convert():
    with pytest.raises(ValidationError):
        Rule.validate({"name": "a", "upstreams": ["1.1.1.1:53"], "priority": True})
    q = Query({"limit": Int(minimum=1, maximum=1000, default=100), "blocked": Bool(required=False)})
    assert q.from_args({"limit": "5", "blocked": "true"}) == {"limit": 5, "blocked": True}
    with pytest.raises(ValidationError):
        q.from_args({"limit": "0"})
    with pytest.raises(ValidationError):
        q.from_args({"nope": "1"})


def test_json_schema_shape():
    s = Rule.json_schema()
    assert s["required"] == ["name", "upstreams"]
    assert s["properties"]["priority"]["minimum"] == 1 and s["additionalProperties"] is False
    assert s["properties"]["upstreams"]["items"]["pattern"]


def test_a_body_that_must_name_a_field_says_so_in_its_schema():
    """Issue 20, item 11: PUT bodies with min_fields refused {} while their schema allowed it."""
    update = Obj("Update", {"a": Str(required=False), "b": Int(required=False)}, min_fields=1)
    assert update.json_schema()["minProperties"] == 1
    with pytest.raises(ValidationError):
        update.validate({})
    assert "minProperties" not in Rule.json_schema()
