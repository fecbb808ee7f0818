"""timestamp, flatten, filter, mask, select, remove (transformations.md §3; router: processor/test_routes.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dataflow_operator.transformers.timeformat import formatter_for, whole_seconds

from .helpers import DROP, FIXED_TIME, PASS, build, check, message

NOT_JSON = "plain text, not json"

# -- timestamp -----------------------------------------------------------------------------------

TIMESTAMP_CASES: list[tuple[dict[str, Any] | None, str, Any]] = [
    (None, '{"id":1}', [{"id": 1, "created_at": "2024-01-15T10:30:00Z"}]),
    ({}, '{"id":1}', [{"id": 1, "created_at": "2024-01-15T10:30:00Z"}]),
    ({"fieldName": "ts"}, '{"id":1}', [{"id": 1, "ts": "2024-01-15T10:30:00Z"}]),
    ({"fieldName": "$.ts"}, '{"id":1}', [{"id": 1, "ts": "2024-01-15T10:30:00Z"}]),
    ({"fieldName": "meta.ts"}, '{"id":1}', [{"id": 1, "meta": {"ts": "2024-01-15T10:30:00Z"}}]),
    ({"fieldName": "id"}, '{"id":1}', [{"id": "2024-01-15T10:30:00Z"}]),
    ({"format": "Unix"}, "{}", [{"created_at": "1705314600"}]),
    ({"format": "UnixMilli"}, "{}", [{"created_at": "1705314600000"}]),
    ({"format": "RFC3339"}, "{}", [{"created_at": "2024-01-15T10:30:00Z"}]),
    ({"format": "RFC3339Nano"}, "{}", [{"created_at": "2024-01-15T10:30:00Z"}]),
    ({"format": "2006-01-02"}, "{}", [{"created_at": "2024-01-15"}]),
    ({"format": "2006-01-02 15:04:05"}, "{}", [{"created_at": "2024-01-15 10:30:00"}]),
    ({"format": "2006-01-02T15:04:05Z07:00"}, "{}", [{"created_at": "2024-01-15T10:30:00Z"}]),
    ({"format": "Kitchen"}, "{}", [{"created_at": "10:30AM"}]),
    ({"format": "ANSIC"}, "{}", [{"created_at": "Mon Jan 15 10:30:00 2024"}]),
    ({"format": "02/01/06 3:04PM -0700"}, "{}", [{"created_at": "15/01/24 10:30AM +0000"}]),
    ({}, NOT_JSON, PASS),
    ({}, "[1,2]", PASS),
    ({}, '"scalar"', PASS),
    ({}, "", PASS),
]


@pytest.mark.parametrize(("config", "data", "expected"), TIMESTAMP_CASES)
def test_timestamp(config: dict[str, Any] | None, data: str, expected: Any) -> None:
    transformer = build("timestamp", config)
    transformer.clock = lambda: FIXED_TIME  # type: ignore[attr-defined]
    check(transformer, data, expected)


def test_timestamp_keeps_key_order_and_appends_the_new_key() -> None:
    transformer = build("timestamp", {})
    transformer.clock = lambda: FIXED_TIME  # type: ignore[attr-defined]
    out = transformer.transform(message('{"b":1,"a":2}', {"topic": "t"}))
    assert out[0].data == b'{"b":1,"a":2,"created_at":"2024-01-15T10:30:00Z"}'
    assert out[0].metadata == {"topic": "t"}


def test_timestamp_fractions_and_zone_offsets() -> None:
    moment = datetime(2024, 1, 15, 13, 30, 0, 120000, tzinfo=timezone(timedelta(hours=3)))
    for format_, expected in (("RFC3339Nano", "2024-01-15T13:30:00.12+03:00"),
                              ("RFC3339", "2024-01-15T13:30:00+03:00"),
                              ("15:04:05.000 MST", "13:30:00.120 +0300"),
                              ("Unix", "1705314600")):
        transformer = build("timestamp", {"format": format_})
        transformer.clock = lambda: moment  # type: ignore[attr-defined]
        assert json.loads(transformer.transform(message("{}"))[0].data)["created_at"] == expected


def test_timestamp_uses_the_wall_clock_by_default() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    out = build("timestamp", {}).transform(message("{}"))
    stamped = datetime.fromisoformat(json.loads(out[0].data)["created_at"].replace("Z", "+00:00"))
    assert before <= stamped <= datetime.now(UTC)


@pytest.mark.parametrize("format_", ["RFC3339", "Unix", "DateTime", "RFC1123Z", "Kitchen"])
def test_the_wall_clock_read_once_per_second_writes_what_a_fresh_reading_writes(format_: str) -> None:
    transformer = build("timestamp", {"format": format_})
    formatter = formatter_for(format_)
    for _ in range(3):
        before = formatter(datetime.now().astimezone())
        written = json.loads(transformer.transform(message("{}"))[0].data)["created_at"]
        after = formatter(datetime.now().astimezone())
        assert written in (before, after)


@pytest.mark.parametrize(("format_", "whole"), [("RFC3339", True), ("Unix", True), ("DateTime", True),
                                                ("Kitchen", True), ("2006.01.02", True), ("05.09", True),
                                                ("RFC3339Nano", False), ("UnixMilli", False),
                                                ("StampMilli", False), ("15:04:05,000", False),
                                                ("15:04:05.999", False)])
def test_whole_seconds_knows_which_formats_show_a_fraction(format_: str, whole: bool) -> None:
    assert whole_seconds(format_) is whole
    late = datetime(2024, 1, 15, 13, 30, 0, 999_999, tzinfo=UTC)
    assert (formatter_for(format_)(late) == formatter_for(format_)(late.replace(microsecond=0))) is whole


# -- flatten -------------------------------------------------------------------------------------

FLATTEN_CASES: list[tuple[dict[str, Any], str, Any]] = [
    ({"field": "items"}, '{"id":7,"items":[{"p":"A"},{"p":"B"}]}',
     [{"id": 7, "p": "A"}, {"id": 7, "p": "B"}]),
    ({"field": "tags"}, '{"id":7,"tags":["x","y"]}', [{"id": 7, "tags": "x"}, {"id": 7, "tags": "y"}]),
    ({"field": "$.items"}, '{"id":7,"items":[{"p":"A"}]}', [{"id": 7, "p": "A"}]),
    ({"field": "items"}, '{"id":7,"items":[]}', [{"id": 7}]),
    ({"field": "items"}, '{"id":7}', PASS),
    ({"field": "items"}, '{"id":7,"items":"x"}', PASS),
    ({"field": "items"}, '{"id":7,"items":{"a":1}}', PASS),
    ({"field": "items"}, '{"id":7,"items":null}', PASS),
    ({"field": "items"}, '{"id":7,"items":{"array":[{"p":"A"},{"p":"B"}]}}',
     [{"id": 7, "p": "A"}, {"id": 7, "p": "B"}]),
    ({"field": "items"}, '{"id":7,"items":{"array":[]}}', [{"id": 7}]),
    ({"field": "orders.items"}, '{"id":1,"orders":{"items":[{"p":"A"}]}}',
     [{"id": 1, "orders": {}, "p": "A"}]),
    ({"field": "orders.items"}, '{"id":1,"orders":{"items":[1],"n":2}}',
     [{"id": 1, "orders": {"n": 2}, "orders.items": 1}]),
    ({"field": "items"}, '{"id":7,"p":"root","items":[{"p":"A"}]}', [{"id": 7, "p": "A"}]),
    ({"field": "items"}, '{"id":7,"items":[{"p":{"q":1}}]}', [{"id": 7, "p": {"q": 1}}]),
    ({"field": "items"}, '{"id":7,"items":[null,[1],1.5,{}]}',
     [{"id": 7, "items": None}, {"id": 7, "items": [1]}, {"id": 7, "items": 1.5}, {"id": 7}]),
    ({"field": "items"}, NOT_JSON, PASS),
    ({"field": "0"}, "[[1,2]]", PASS),
    ({"field": "items"}, '{"id":12345678901234567890,"items":[1]}',
     [{"id": 12345678901234567890, "items": 1}]),
]


@pytest.mark.parametrize(("config", "data", "expected"), FLATTEN_CASES)
def test_flatten(config: dict[str, Any], data: str, expected: Any) -> None:
    check(build("flatten", config), data, expected)


def test_flatten_children_keep_order_and_get_their_own_metadata() -> None:
    out = build("flatten", {"field": "items"}).transform(
        message('{"z":0,"items":[{"a":1},{"b":2}],"y":1}', {"topic": "t"}))
    assert [m.data for m in out] == [b'{"z":0,"y":1,"a":1}', b'{"z":0,"y":1,"b":2}']
    assert out[0].metadata == out[1].metadata == {"topic": "t"}
    assert out[0].metadata is not out[1].metadata


# -- filter --------------------------------------------------------------------------------------

FILTER_CASES: list[tuple[str, str, Any]] = [
    ("$.status != 'deleted'", '{"status":"active"}', PASS),
    ("$.status != 'deleted'", '{"status":"deleted"}', DROP),
    ("$.status != 'deleted'", "{}", DROP),
    ("$.active", '{"active":true}', PASS),
    ("$.active", '{"active":"false"}', DROP),
    ("$.active", '{"active":{}}', PASS),
    ("$.active", NOT_JSON, DROP),
    ("$.level == 'error' && $.code != '0'", '{"level":"error","code":"5"}', PASS),
]


@pytest.mark.parametrize(("condition", "data", "expected"), FILTER_CASES)
def test_filter(condition: str, data: str, expected: Any) -> None:
    check(build("filter", {"condition": condition}), data, expected)


# -- mask ----------------------------------------------------------------------------------------

MASK_CASES: list[tuple[dict[str, Any], str, Any]] = [
    ({"fields": ["pw", "n"], "keepLength": True}, '{"pw":"secret123","n":12345}',
     [{"pw": "*********", "n": "*****"}]),
    ({"fields": ["pw"]}, '{"pw":"secret123","id":1}', [{"pw": "***", "id": 1}]),
    ({"fields": ["pw"], "maskChar": "X"}, '{"pw":"s"}', [{"pw": "XXX"}]),
    ({"fields": ["pw"], "maskChar": "ab"}, '{"pw":"s"}', [{"pw": "ababab"}]),
    ({"fields": ["pw"], "maskChar": "ab", "keepLength": True}, '{"pw":"xy"}', [{"pw": "abab"}]),
    ({"fields": ["pw"], "maskChar": ""}, '{"pw":"s"}', [{"pw": "***"}]),
    ({"fields": ["pw"], "keepLength": True}, '{"pw":null}', [{"pw": ""}]),
    ({"fields": ["pw"]}, '{"pw":null}', [{"pw": "***"}]),
    ({"fields": ["o"], "keepLength": True}, '{"o":{"k": 1}}', [{"o": "*******"}]),
    ({"fields": ["b"], "keepLength": True}, '{"b":true}', [{"b": "****"}]),
    ({"fields": ["f"], "keepLength": True}, '{"f":10.50}', [{"f": "****"}]),
    ({"fields": ["pw"], "keepLength": True}, '{"pw":"пароль"}', [{"pw": "******"}]),
    ({"fields": ["user.ssn"]}, '{"user":{"ssn":"1","n":"J"}}', [{"user": {"ssn": "***", "n": "J"}}]),
    ({"fields": ["$.user.ssn"]}, '{"user":{"ssn":"1"}}', [{"user": {"ssn": "***"}}]),
    ({"fields": ["cards.0"]}, '{"cards":["4111","5500"]}', [{"cards": ["***", "5500"]}]),
    ({"fields": ["missing"]}, '{"pw":"s"}', PASS),
    ({"fields": ["pw"]}, NOT_JSON, PASS),
    ({"fields": ["a", "a.b"], "keepLength": True}, '{"a":{"b":"xy"}}', [{"a": {"b": "**"}}]),
    ({"fields": ["items.#"]}, '{"items":[1]}', PASS),
]


@pytest.mark.parametrize(("config", "data", "expected"), MASK_CASES)
def test_mask(config: dict[str, Any], data: str, expected: Any) -> None:
    check(build("mask", config), data, expected)


# -- select --------------------------------------------------------------------------------------

SELECT_CASES: list[tuple[list[str], str, Any]] = [
    (["user.id", "user.name", "meta.ts"], '{"user":{"id":1,"name":"J"},"meta":{"ts":"t"}}',
     [{"id": 1, "name": "J", "ts": "t"}]),
    (["id"], '{"id":1,"x":2}', [{"id": 1}]),
    (["$.id"], '{"id":1,"x":2}', [{"id": 1}]),
    (["missing"], '{"id":1}', PASS),
    (["id"], NOT_JSON, PASS),
    (["a.id", "b.id"], '{"a":{"id":1},"b":{"id":2}}', [{"id": 2}]),
    (["user"], '{"user":{"id":1,"tags":[1]}}', [{"user": {"id": 1, "tags": [1]}}]),
    (["items.0"], '{"items":["a","b"]}', [{"0": "a"}]),
    (["items[1]"], '{"items":["a","b"]}', [{"1": "b"}]),
    (["id", "missing"], '{"id":null}', [{"id": None}]),
    (["0.id"], '[{"id":5}]', [{"id": 5}]),
]


@pytest.mark.parametrize(("fields", "data", "expected"), SELECT_CASES)
def test_select(fields: list[str], data: str, expected: Any) -> None:
    check(build("select", {"fields": fields}), data, expected)


def test_select_keys_follow_the_field_order() -> None:
    out = build("select", {"fields": ["b", "a"]}).transform(message('{"a":1,"b":2}'))
    assert out[0].data == b'{"b":2,"a":1}'


# -- remove --------------------------------------------------------------------------------------

REMOVE_CASES: list[tuple[list[str], str, Any]] = [
    (["pw", "m.int"], '{"id":1,"pw":"s","m":{"ts":1,"int":"x"}}', [{"id": 1, "m": {"ts": 1}}]),
    (["a.b"], '{"a":{"b":1}}', [{"a": {}}]),
    (["$.pw"], '{"id":1,"pw":"s"}', [{"id": 1}]),
    (["missing"], '{"id":1}', PASS),
    (["items.1"], '{"items":[1,2,3]}', [{"items": [1, 3]}]),
    (["items.5"], '{"items":[1]}', PASS),
    (["pw"], NOT_JSON, PASS),
    (["a", "a.b"], '{"a":{"b":1},"c":2}', [{"c": 2}]),
]


@pytest.mark.parametrize(("fields", "data", "expected"), REMOVE_CASES)
def test_remove(fields: list[str], data: str, expected: Any) -> None:
    check(build("remove", {"fields": fields}), data, expected)
