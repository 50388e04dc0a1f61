"""What the JSON limits refuse, and the field they name, whichever walk finds it."""

from __future__ import annotations

import pytest

from snakedeck import json_limits
from snakedeck.json_limits import JsonLimitError, Limits

SMALL = Limits(max_depth=3, max_string=5, max_items=3)


@pytest.mark.parametrize(
    ("value", "field", "says"),
    [
        ({"a": {"b": [1, 2**63]}}, "a.b.1", "integer is too large"),
        ({"a": [-(2**63) - 1]}, "a.0", "integer is too large"),
        ({"a": {"b": {"c": {}}}}, "a.b.c", "nested deeper than 3"),
        ({"msg": "toolong"}, "msg", "longer than 5"),
        ({"toolong": 1}, "(root)", "key is longer than 5"),
        ({"x": ["ok", "\ud800"]}, "x.1", "lone surrogate"),
        ({"x": [1, 2, 3, 4]}, "x", "more than 3 entries"),
        ("\udc00", "(root)", "lone surrogate"),
    ],
)
def test_a_broken_value_is_refused_naming_its_field(value: object, field: str, says: str) -> None:
    with pytest.raises(JsonLimitError) as caught:
        json_limits.check(value, SMALL)
    assert caught.value.field == field
    assert says in caught.value.message


@pytest.mark.parametrize(
    "value",
    [
        {"a": {"b": [1, 2**63 - 1, -(2**63)]}, "c": [1.5, True, None], "d": ["é", ""]},
        [[["x"]]],
        "short",
        7,
        None,
    ],
)
def test_a_value_within_the_limits_passes(value: object) -> None:
    json_limits.check(value, SMALL)


def test_parse_refuses_what_json_alone_accepts() -> None:
    with pytest.raises(JsonLimitError, match="lone surrogate"):
        json_limits.parse(b'{"m": "\\ud800"}')
    assert json_limits.parse(b'{"m": "caf\\u00e9"}') == {"m": "café"}
