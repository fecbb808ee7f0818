"""cast and timezone (transformations.md §5.3, §5.4)."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import PASS, Raises, build, built, check, message

NOT_JSON = "not json"

# -- cast ----------------------------------------------------------------------------------------

CAST_CASES: list[tuple[dict[str, str], str, Any]] = [
    ({"id": "int64", "amount": "float64", "active": "bool", "note": "string", "gone": "null"},
     '{"id":"42","amount":"1.5","active":"true","note":7,"gone":"x"}',
     [{"id": 42, "amount": 1.5, "active": True, "note": "7", "gone": None}]),
    # string
    ({"v": "string"}, '{"v":"s"}', [{"v": "s"}]),
    ({"v": "string"}, '{"v":1.50}', [{"v": "1.5"}]),
    ({"v": "string"}, '{"v":1e3}', [{"v": "1000"}]),
    ({"v": "string"}, '{"v":12345678901234567890}', [{"v": "12345678901234567890"}]),
    ({"v": "string"}, '{"v":false}', [{"v": "false"}]),
    ({"v": "string"}, '{"v":{"a":1}}', Raises('cast "v" to string: cannot cast object/array to string')),
    ({"v": "string"}, '{"v":[1]}', Raises("cannot cast object/array to string")),
    ({"v": "string"}, '{"v":null}', Raises("cannot cast null to string")),
    # int64
    ({"v": "int64"}, '{"v":7}', [{"v": 7}]),
    ({"v": "int64"}, '{"v":10.0}', [{"v": 10}]),
    ({"v": "int64"}, '{"v":"1e3"}', [{"v": 1000}]),
    ({"v": "int64"}, '{"v":"10.0"}', [{"v": 10}]),
    ({"v": "int64"}, '{"v":" -42 "}', [{"v": -42}]),
    ({"v": "int64"}, '{"v":"+5"}', [{"v": 5}]),
    ({"v": "int64"}, '{"v":"9223372036854775807"}', [{"v": 9223372036854775807}]),
    ({"v": "int64"}, '{"v":"9223372036854775808"}', Raises("out of int64 range")),
    ({"v": "int64"}, '{"v":1e19}', Raises("out of int64 range")),
    ({"v": "int64"}, '{"v":"1.5"}', Raises("not an integer")),
    ({"v": "int64"}, '{"v":1.5}', Raises("not an integer")),
    ({"v": "int64"}, '{"v":"abc"}', Raises("not a number")),
    ({"v": "int64"}, '{"v":"1_000"}', Raises("not a number")),
    ({"v": "int64"}, '{"v":null}', Raises('cast "v" to int64: cannot cast null to int64')),
    ({"v": "int64"}, '{"v":true}', Raises("cannot cast bool to int64")),
    ({"v": "int64"}, '{"v":{}}', Raises("cannot cast object to int64")),
    # float64
    ({"v": "float64"}, '{"v":"1.5"}', [{"v": 1.5}]),
    ({"v": "float64"}, '{"v":" 2.25 "}', [{"v": 2.25}]),
    ({"v": "float64"}, '{"v":10}', [{"v": 10}]),
    ({"v": "float64"}, '{"v":"10.0"}', [{"v": 10}]),
    ({"v": "float64"}, '{"v":"1e400"}', Raises("out of float64 range")),
    ({"v": "float64"}, '{"v":"nan"}', Raises("not a number")),
    ({"v": "float64"}, '{"v":"inf"}', Raises("not a number")),
    ({"v": "float64"}, '{"v":true}', Raises("cannot cast bool to float64")),
    ({"v": "float64"}, '{"v":null}', Raises("cannot cast null to float64")),
    # bool
    ({"v": "bool"}, '{"v":"TRUE"}', [{"v": True}]),
    ({"v": "bool"}, '{"v":" false "}', [{"v": False}]),
    ({"v": "bool"}, '{"v":1}', [{"v": True}]),
    ({"v": "bool"}, '{"v":0}', [{"v": False}]),
    ({"v": "bool"}, '{"v":1.0}', [{"v": True}]),
    ({"v": "bool"}, '{"v":false}', [{"v": False}]),
    ({"v": "bool"}, '{"v":"yes"}', Raises('cast "v" to bool: cannot cast yes to bool')),
    ({"v": "bool"}, '{"v":2}', Raises("cannot cast 2 to bool")),
    ({"v": "bool"}, '{"v":null}', Raises("cannot cast null to bool")),
    # null
    ({"v": "null"}, '{"v":{"a":1}}', [{"v": None}]),
    ({"v": "null"}, '{"v":null}', [{"v": None}]),
    # paths, order, passthrough
    ({"$.a.b": "int64"}, '{"a":{"b":"3"}}', [{"a": {"b": 3}}]),
    ({"items[0]": "string"}, '{"items":[1,2]}', [{"items": ["1", 2]}]),
    ({"missing": "int64"}, '{"a":1}', PASS),
    ({"a": "int64"}, NOT_JSON, PASS),
    ({"a": "int64", "b": "int64"}, '{"a":"1","b":"x"}', Raises('cast "b" to int64')),
    ({"a": "string", "a.b": "int64"}, '{"a":{"b":"1"}}', Raises("cannot cast object/array to string")),
]


@pytest.mark.parametrize(("spec", "data", "expected"), CAST_CASES)
def test_cast(spec: dict[str, str], data: str, expected: Any) -> None:
    check(build("cast", {"spec": spec}), data, expected)


def test_cast_writes_whole_floats_like_go() -> None:
    out = build("cast", {"spec": {"v": "float64", "w": "float64"}}).transform(
        message('{"v":"10","w":12345678901234567890}'))
    assert out[0].data == b'{"v":10,"w":12345678901234567000}'


def test_cast_unknown_type_at_runtime() -> None:
    check(built("cast", {"spec": {"v": "decimal"}}), '{"v":1}', Raises("unsupported type"))


# -- timezone ------------------------------------------------------------------------------------

TZ_CASES: list[tuple[dict[str, Any], str, Any]] = [
    ({"timezone": "Europe/Moscow", "format": "RFC3339", "fields": ["c"]}, '{"c":"2024-01-15T12:00:00Z"}',
     [{"c": "2024-01-15T15:00:00+03:00"}]),
    ({"timezone": "+03:00", "format": "RFC3339"}, '{"ts":"2024-01-15T12:00:00"}',
     [{"ts": "2024-01-15T15:00:00+03:00"}]),
    ({"timezone": "UTC", "format": "RFC3339"}, '{"ts":1705320000}', [{"ts": "2024-01-15T12:00:00Z"}]),
    ({"timezone": "UTC", "format": "UnixMilli"}, '{"ts":"1705320000000"}', [{"ts": 1705320000000}]),
    ({"timezone": "+00:00", "format": "RFC3339"}, '{"ts":"2024-01-15T15:00:00+03:00"}',
     [{"ts": "2024-01-15T12:00:00Z"}]),
    ({"timezone": "UTC"}, '{"ts":"2024-01-15T12:00:00.120000Z"}', [{"ts": "2024-01-15T12:00:00.12Z"}]),
    ({"timezone": "UTC"}, '{"ts":"2024-01-15T12:00:00.000Z"}', [{"ts": "2024-01-15T12:00:00Z"}]),
    ({"timezone": "UTC"}, '{"ts":"2024-01-15T12:00:00.123456789Z"}',
     [{"ts": "2024-01-15T12:00:00.123456789Z"}]),
    ({"timezone": "UTC", "format": "RFC3339"}, '{"ts":"2024-01-15T12:00:00.9Z"}',
     [{"ts": "2024-01-15T12:00:00Z"}]),
    ({"timezone": "UTC"}, '{"ts":1705320000.5}', [{"ts": "2024-01-15T12:00:00.5Z"}]),
    ({"timezone": "UTC"}, '{"ts":99999999999}', [{"ts": "5138-11-16T09:46:39Z"}]),
    ({"timezone": "UTC"}, '{"ts":999999999999}', Raises("out of range")),  # year 33658
    ({"timezone": "UTC"}, '{"ts":1000000000000}', [{"ts": "2001-09-09T01:46:40Z"}]),
    ({"timezone": "UTC"}, '{"ts":1705320000123.9}', [{"ts": "2024-01-15T12:00:00.123Z"}]),
    ({"timezone": "UTC"}, '{"ts":-1}', [{"ts": "1969-12-31T23:59:59Z"}]),
    ({"timezone": "UTC", "format": "UnixMilli"}, '{"ts":"2024-01-15T12:00:00.5+01:00"}',
     [{"ts": 1705316400500}]),
    ({"timezone": "UTC", "sourceTimezone": "Europe/Moscow"}, '{"ts":"2024-01-15 15:00:00"}',
     [{"ts": "2024-01-15T12:00:00Z"}]),
    ({"timezone": "UTC", "sourceTimezone": "-05:30"}, '{"ts":"2024-01-15T12:00:00.25"}',
     [{"ts": "2024-01-15T17:30:00.25Z"}]),
    ({"timezone": "America/New_York", "format": "RFC3339"}, '{"ts":"2024-07-01T12:00:00Z"}',
     [{"ts": "2024-07-01T08:00:00-04:00"}]),
    ({"timezone": "UTC"}, '{"ts":" 1705320000 "}', [{"ts": "2024-01-15T12:00:00Z"}]),
    ({"timezone": "UTC", "fields": ["a", "b", "$.c.d"]}, '{"a":1705320000,"b":null,"c":{"d":0}}',
     [{"a": "2024-01-15T12:00:00Z", "b": None, "c": {"d": "1970-01-01T00:00:00Z"}}]),
    ({"timezone": "UTC"}, '{"other":1}', PASS),
    ({"timezone": "UTC"}, '{"ts":null}', PASS),
    ({"timezone": "UTC"}, NOT_JSON, PASS),
    ({"timezone": "UTC"}, '{"ts":"2024-01-15"}',
     Raises('timezone "ts": cannot parse "2024-01-15" as timestamp')),
    ({"timezone": "UTC"}, '{"ts":""}', Raises('cannot parse "" as timestamp')),
    ({"timezone": "UTC"}, '{"ts":"  "}', Raises("as timestamp")),
    ({"timezone": "UTC"}, '{"ts":"yesterday"}', Raises('cannot parse "yesterday"')),
    ({"timezone": "UTC"}, '{"ts":"2024-02-30T00:00:00Z"}', Raises("cannot parse")),
    ({"timezone": "UTC"}, '{"ts":"2024-01-15T24:00:00Z"}', Raises("cannot parse")),
    ({"timezone": "UTC"}, '{"ts":true}', Raises("cannot parse true as timestamp")),
    ({"timezone": "UTC"}, '{"ts":{"a":1}}', Raises("as timestamp")),
    ({"timezone": "UTC"}, '{"ts":1e300}', Raises('timezone "ts"')),
]


@pytest.mark.parametrize(("config", "data", "expected"), TZ_CASES)
def test_timezone(config: dict[str, Any], data: str, expected: Any) -> None:
    check(build("timezone", {"fields": ["ts"], **config}), data, expected)


@pytest.mark.parametrize("config", [
    {"timezone": "Mars/Olympus", "fields": ["ts"]},
    {"timezone": "UTC", "sourceTimezone": "+24:00", "fields": ["ts"]},
    {"timezone": "UTC", "format": "Kitchen", "fields": ["ts"]},
])
def test_timezone_invalid_config_fails_every_message(config: dict[str, Any]) -> None:
    transformer = built("timezone", config)
    check(transformer, '{"ts":1}', Raises("timezone: "))
    check(transformer, NOT_JSON, PASS)
