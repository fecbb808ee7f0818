"""gjson/sjson-style paths and the JSON value helpers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from dataflow_operator.transformers.jsonvalues import (
    MISSING,
    decode,
    encode,
    format_float,
    metadata_text,
    to_text,
)
from dataflow_operator.transformers.paths import Path, normalize, split

DOC = {"a": {"b": 1, "c.d": 2}, "items": [{"id": 1}, {"id": 2}, {"x": 0}], "n": None, "0": "zero"}


@pytest.mark.parametrize(("raw", "expected"), [
    ("$.a.b", "a.b"), ("$a", "a"), ("$", ""), ("a.b", "a.b"), ("$.items[0].id", "items.0.id"),
    ("items[*].id", "items.#.id"), ("$[0]", "0"), ("[1][2]", "1.2"), ("$$.a", "$.a"),
])
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("a.b", ("a", "b")), ("a\\.b.c", ("a.b", "c")), ("", ()), ("a..b", ("a", "", "b")), ("a\\\\b", ("a\\b",)),
])
def test_split(text: str, expected: tuple[str, ...]) -> None:
    assert split(text) == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("a.b", 1), ("a.c\\.d", 2), ("items.1.id", 2), ("items.#", 3), ("items.#.id", [1, 2]),
    ("items[0].id", 1), ("n", None), ("0", "zero"), ("missing", MISSING), ("a.b.c", MISSING),
    ("items.9", MISSING), ("items.x", MISSING), ("", MISSING), ("$", MISSING), ("items.-1", MISSING),
])
def test_get(path: str, expected: Any) -> None:
    found = Path(path).get(DOC)
    if expected is MISSING:
        assert found is MISSING
    else:
        assert found == expected


@pytest.mark.parametrize(("doc", "path", "value", "expected"), [
    ({}, "a.b", 1, {"a": {"b": 1}}),
    ({"a": 1}, "a.b", 2, {"a": {"b": 2}}),
    ({"a": {"x": 0}}, "a.b", 2, {"a": {"x": 0, "b": 2}}),
    ({}, "list.0", "v", {"list": ["v"]}),
    ({"l": [1]}, "l.2", 3, {"l": [1, None, 3]}),
    ({"l": [1]}, "l.-1", 2, {"l": [1, 2]}),
    ({"l": [{"a": 1}]}, "l.0.b", 2, {"l": [{"a": 1, "b": 2}]}),
    ({"o": {}}, "o.0", 1, {"o": {"0": 1}}),
])
def test_set(doc: dict[str, Any], path: str, value: Any, expected: Any) -> None:
    assert Path(path).set(doc, value) is True
    assert doc == expected


@pytest.mark.parametrize(("doc", "path"), [
    ({"l": [1]}, "l.name"), ({}, ""), ({"l": []}, "l.99999999"), ({"l": [1]}, "l.#"), ("scalar", "a"),
])
def test_set_refuses(doc: Any, path: str) -> None:
    assert Path(path).set(doc, 1) is False


@pytest.mark.parametrize(("doc", "path", "removed", "expected"), [
    ({"a": {"b": 1}}, "a.b", True, {"a": {}}),
    ({"a": 1}, "b", False, {"a": 1}),
    ({"l": [1, 2]}, "l.0", True, {"l": [2]}),
    ({"l": [1, 2]}, "l.-1", True, {"l": [1]}),
    ({"l": [1, 2]}, "l.5", False, {"l": [1, 2]}),
    ({"a": 1}, "a.b", False, {"a": 1}),
])
def test_delete(doc: dict[str, Any], path: str, removed: bool, expected: Any) -> None:
    assert Path(path).delete(doc) is removed
    assert doc == expected


def test_prune_empty_parents_stops_at_the_first_non_empty_one() -> None:
    doc = {"a": {"b": {"c": {}}, "keep": 1}}
    path = Path("a.b.c.d")
    path.prune_empty_parents(doc)
    assert doc == {"a": {"keep": 1}}


@pytest.mark.parametrize(("value", "text"), [
    ("s", "s"), (5, "5"), (5.0, "5"), (10.5, "10.5"), (1e3, "1000"), (1e21, "1000000000000000000000"),
    (1e-7, "0.0000001"), (-0.0, "-0"), (None, ""), (True, "true"), (False, "false"),
    ({"k": [1, "é"]}, '{"k":[1,"é"]}'), (12345678901234567890, "12345678901234567890"),
])
def test_to_text(value: Any, text: str) -> None:
    assert to_text(value) == text


def test_format_float_non_finite() -> None:
    assert [format_float(v) for v in (math.nan, math.inf, -math.inf)] == ["NaN", "+Inf", "-Inf"]


@pytest.mark.parametrize(("value", "text"), [
    ("s", "s"), (b"raw", "raw"), (3, "3"), (None, ""), (True, "true"), ({"a": 1}, '{"a":1}'),
    (datetime(2024, 1, 15, 11, 0, 7, 486000, tzinfo=timezone(timedelta(hours=3))),
     "2024-01-15T08:00:07.486Z"),
    (datetime(2024, 1, 15, 8, 0, 0), "2024-01-15T08:00:00Z"),
    (datetime(2024, 1, 15, 8, 0, 0, tzinfo=UTC), "2024-01-15T08:00:00Z"),
    (Decimal("1.50"), "1.50"),
])
def test_metadata_text(value: Any, text: str) -> None:
    assert metadata_text(value) == text


@pytest.mark.parametrize("data", [b"", b"nan", b"NaN", b"Infinity", b"{", b"\xff", b"\xef\xbb\xbf{}",
                                  b"[" * 100000])
def test_not_json(data: bytes) -> None:
    assert decode(data) is MISSING


def test_encode_is_compact_utf8_and_keeps_big_ints() -> None:
    assert encode({"b": "é", "a": 12345678901234567890123, "f": 1.5}) == \
        '{"b":"é","a":12345678901234567890123,"f":1.5}'.encode()
