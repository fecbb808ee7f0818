"""replaceField, headersToPayload, structFlatten, extractField, hoistField, insertField
(transformations.md §4.2 to §4.4, §5.1, §5.2, §5.5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from .helpers import FIXED_TIME, PASS, Raises, build, built, check, message

NOT_JSON = "not json at all"

# -- replaceField --------------------------------------------------------------------------------

REPLACE_CASES: list[tuple[dict[str, Any], str, Any]] = [
    ({"renames": ["key.sku:sku"]}, '{"key":{"sku":"1"},"o":2}', [{"o": 2, "sku": "1"}]),
    ({"include": ["user.id", "status"]}, '{"user":{"id":1,"e":"x"},"status":"a","x":0}',
     [{"user": {"id": 1}, "status": "a"}]),
    ({"renames": ["a:new.path"]}, '{"a":1,"b":2}', [{"b": 2, "new": {"path": 1}}]),
    ({"renames": ["$.a:$.b"]}, '{"a":1}', [{"b": 1}]),
    ({"renames": [" a : b "]}, '{"a":1}', [{"b": 1}]),
    ({"renames": ["a:a"]}, '{"a":1}', [{"a": 1}]),
    ({"renames": ["missing:x"]}, '{"a":1}', [{"a": 1}]),
    ({"renames": ["a:b", "b:c"]}, '{"a":1}', [{"c": 1}]),
    ({"renames": ["a:b"]}, '{"a":1,"b":2}', [{"b": 1}]),
    ({"renames": ["k.a:a"]}, '{"k":{"a":1,"b":2}}', [{"k": {"b": 2}, "a": 1}]),
    ({"renames": ["x.y.z:z"]}, '{"x":{"y":{"z":1}},"w":0}', [{"w": 0, "z": 1}]),
    ({"exclude": ["pw", "m.int"]}, '{"id":1,"pw":"s","m":{"int":"x"}}', [{"id": 1}]),
    ({"exclude": ["m.int"]}, '{"m":{"int":"x","ts":1}}', [{"m": {"ts": 1}}]),
    ({"exclude": ["a.b.c"]}, '{"a":{"b":{"c":1}},"d":{}}', [{"d": {}}]),
    ({"exclude": ["missing"]}, '{"a":{}}', [{"a": {}}]),
    ({"include": ["missing"]}, '{"a":1}', [{}]),
    ({"include": ["items.0"]}, '{"items":["a","b"],"x":1}', [{"items": ["a"]}]),
    ({"include": ["a"], "renames": ["a:b"]}, '{"a":1,"c":2}', [{"b": 1}]),
    ({"exclude": ["c"], "renames": ["a:b"]}, '{"a":1,"c":2}', [{"b": 1}]),
    ({"renames": ["a:b"]}, NOT_JSON, PASS),
    ({"renames": ["a:b"]}, "[1]", PASS),
]


@pytest.mark.parametrize(("config", "data", "expected"), REPLACE_CASES)
def test_replace_field(config: dict[str, Any], data: str, expected: Any) -> None:
    check(build("replaceField", config), data, expected)


@pytest.mark.parametrize(("rename", "data", "expected"), [
    ("nocolon", '{"a":1}', Raises('invalid rename format: "nocolon"')),
    (":b", '{"a":1}', Raises(r"expected oldPath:newPath")),
    ("a: ", '{"a":1}', Raises("invalid rename format")),
    (":b", NOT_JSON, PASS),
    (":b", '"string root"', PASS),
])
def test_replace_field_bad_rename_fails_only_object_payloads(rename: str, data: str, expected: Any) -> None:
    # The webhook rejects such a config; built anyway, it fails per message (reference behaviour).
    check(built("replaceField", {"renames": ["ok:fine", rename]}), data, expected)


# -- headersToPayload ----------------------------------------------------------------------------

HEADERS = {"X-Request-Id": "req-1", "X-Language": "en", "X-Bytes": b"raw", "X-Int": 2, "X-None": None}

HEADER_CASES: list[tuple[list[str], str, Any, Any]] = [
    (["X-Request-Id:requestId", "X-Language:metadata.language"], '{"d":1}', HEADERS,
     [{"d": 1, "requestId": "req-1", "metadata": {"language": "en"}}]),
    (["X-Request-Id:$.rid"], '{"d":1}', HEADERS, [{"d": 1, "rid": "req-1"}]),
    ([" X-Request-Id : rid "], '{"d":1}', HEADERS, [{"d": 1, "rid": "req-1"}]),
    (["X-Request-Id:d"], '{"d":1}', HEADERS, [{"d": "req-1"}]),
    (["x-request-id:rid"], '{"d":1}', HEADERS, PASS),
    (["X-Missing:m"], '{"d":1}', HEADERS, PASS),
    (["X-Bytes:b", "X-Int:i", "X-None:n"], "{}", HEADERS, [{"b": "raw", "i": "2", "n": ""}]),
    (["X-Url:u"], "{}", {"X-Url": "a:b:c"}, [{"u": "a:b:c"}]),
    (["X-Request-Id:rid"], "{}", None, PASS),
    (["X-Request-Id:rid"], "{}", "not a dict", PASS),
    (["X-Request-Id:rid"], NOT_JSON, HEADERS, PASS),
    (["X-Request-Id:rid"], "[1]", HEADERS, PASS),
]


@pytest.mark.parametrize(("mappings", "data", "headers", "expected"), HEADER_CASES)
def test_headers_to_payload(mappings: list[str], data: str, headers: Any, expected: Any) -> None:
    metadata = {} if headers is None else {"headers": headers}
    check(build("headersToPayload", {"mappings": mappings}), data, expected, metadata)


def test_headers_to_payload_malformed_mapping() -> None:
    transformer = built("headersToPayload", {"mappings": ["X-Request-Id:rid", "broken"]})
    check(transformer, "{}", Raises('invalid header mapping format: "broken"'), {"headers": HEADERS})
    check(transformer, "{}", PASS, {})  # no headers: passthrough, no error


# -- structFlatten -------------------------------------------------------------------------------

def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"x": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


STRUCT_CASES: list[tuple[dict[str, Any] | None, str, Any]] = [
    ({"delimiter": "_"}, '{"c":{"id":42,"n":{"f":"D","m":null},"t":["a"]},"ok":true}',
     [{"c_id": 42, "c_n_f": "D", "c_n_m": None, "c_t": ["a"], "ok": True}]),
    (None, '{"a":{"b":1},"c":2}', [{"a.b": 1, "c": 2}]),
    ({}, '{"a.b":1,"a":{"b":2}}', [{"a.b": 2}]),
    ({}, '{"a":{"b":2},"a.b":1}', [{"a.b": 2}]),
    ({}, '{"a":{"b.c":1},"a.b":{"c":2}}', [{"a.b.c": 2}]),
    ({}, '{"a":{},"b":{"c":{}},"d":1}', [{"d": 1}]),
    ({}, "{}", [{}]),
    ({}, '{"a":[{"b":{"c":1}}]}', [{"a": [{"b": {"c": 1}}]}]),
    ({}, json.dumps(nested(63)), [{"n." * 63 + "x": 1}]),
    ({}, json.dumps(nested(64)), [{"n." * 64 + "x": 1}]),
    ({}, json.dumps(nested(65)), Raises("structFlatten: nesting depth exceeds 64")),
    ({"delimiter": " _ "}, '{"a":{"b":1}}', [{"a_b": 1}]),
    ({"delimiter": "  "}, '{"a":{"b":1}}', [{"a.b": 1}]),
    ({"delimiter": "::"}, '{"a":{"b":1}}', [{"a::b": 1}]),
    ({}, NOT_JSON, PASS),
    ({}, '[{"a":{"b":1}}]', PASS),
    ({}, "3", PASS),
]


@pytest.mark.parametrize(("config", "data", "expected"), STRUCT_CASES)
def test_struct_flatten(config: dict[str, Any] | None, data: str, expected: Any) -> None:
    check(build("structFlatten", config), data, expected)


def test_struct_flatten_keeps_input_key_order() -> None:
    out = build("structFlatten", {}).transform(message('{"z":1,"m":{"b":2,"a":3},"a":4}'))
    assert out[0].data == b'{"z":1,"m.b":2,"m.a":3,"a":4}'


# -- extractField / hoistField -------------------------------------------------------------------

EXTRACT_CASES: list[tuple[str, str, Any]] = [
    ("payload.after", '{"payload":{"after":{"id":1}}}', [{"id": 1}]),
    ("$.payload.after", '{"payload":{"after":{"id":1}}}', [{"id": 1}]),
    ("id", '{"id":42}', [42]),
    ("items", '{"items":[1,2,3]}', [[1, 2, 3]]),
    ("deleted", '{"deleted":null}', [None]),
    ("name", '{"name":"x"}', ["x"]),
    ("0", '[{"id":1}]', [{"id": 1}]),
    ("items.#", '{"items":[1,2,3]}', [3]),
    ("missing", '{"id":1}', PASS),
    ("id", NOT_JSON, PASS),
    ("id", "5", PASS),
]


@pytest.mark.parametrize(("field", "data", "expected"), EXTRACT_CASES)
def test_extract_field(field: str, data: str, expected: Any) -> None:
    check(build("extractField", {"field": field}), data, expected)


HOIST_CASES: list[tuple[str, str, Any]] = [
    ("items", "[1,2]", [{"items": [1, 2]}]),
    ("v", '"hi"', [{"v": "hi"}]),
    ("p", "null", [{"p": None}]),
    ("row", '{"id":1}', [{"row": {"id": 1}}]),
    (" row ", '{"id":1}', [{"row": {"id": 1}}]),
    ("$row", '{"id":1}', [{"row": {"id": 1}}]),
    ("row", NOT_JSON, PASS),
    ("row", "", PASS),
]


@pytest.mark.parametrize(("field", "data", "expected"), HOIST_CASES)
def test_hoist_field(field: str, data: str, expected: Any) -> None:
    check(build("hoistField", {"field": field}), data, expected)


def test_hoist_field_copies_the_payload_verbatim() -> None:
    out = build("hoistField", {"field": "p"}).transform(message('{ "b" : 1.50, "a" : [ ] }'))
    assert out[0].data == b'{"p":{ "b" : 1.50, "a" : [ ] }}'


def test_hoist_field_blank_field_built_without_validation_passes() -> None:
    check(built("hoistField", {"field": "  "}), '{"a":1}', PASS)


# -- insertField ---------------------------------------------------------------------------------

META = {"topic": "raw.events", "partition": 2, "offset": 100, "key": b"k1",
        "ts": datetime(2024, 1, 15, 8, 0, 7, 486000, tzinfo=UTC), "none": None}

INSERT_CASES: list[tuple[dict[str, str], str, Any]] = [
    ({"pipeline": "orders-cdc", "source_topic": "${metadata.topic}", "flags.reprocessed": "json:false"},
     '{"id":1}', [{"id": 1, "pipeline": "orders-cdc", "source_topic": "raw.events",
                  "flags": {"reprocessed": False}}]),
    ({"at": "${now}"}, "{}", [{"at": "2024-01-15T10:30:00Z"}]),
    ({"p": "${metadata.partition}", "o": "${metadata.offset}", "k": "${metadata.key}"}, "{}",
     [{"p": "2", "o": "100", "k": "k1"}]),
    ({"t": "${metadata.ts}"}, "{}", [{"t": "2024-01-15T08:00:07.486Z"}]),
    ({"m": "${metadata.missing}", "n": "${metadata.none}", "e": "${metadata.}"}, "{}",
     [{"m": "", "n": "", "e": ""}]),
    ({"n": "json:42", "o": 'json:{"k":1}', "a": 'json:["a"]', "z": "json:null", "f": "json:1.5"}, "{}",
     [{"n": 42, "o": {"k": 1}, "a": ["a"], "z": None, "f": 1.5}]),
    ({"x": "x-${now}", "y": "${metadata.topic} ", "w": "plain"}, "{}",
     [{"x": "x-${now}", "y": "${metadata.topic} ", "w": "plain"}]),
    ({"id": "replaced"}, '{"id":1}', [{"id": "replaced"}]),
    ({"$.a.b": "1"}, '{"a":{"c":2}}', [{"a": {"c": 2, "b": "1"}}]),
    ({"a": "1"}, '   {"b":2}', [{"b": 2, "a": "1"}]),
    ({"a": "1"}, "[1]", PASS),
    ({"a": "1"}, '"s"', PASS),
    ({"a": "1"}, NOT_JSON, PASS),
]


@pytest.mark.parametrize(("fields", "data", "expected"), INSERT_CASES)
def test_insert_field(fields: dict[str, str], data: str, expected: Any) -> None:
    transformer = build("insertField", {"fields": fields})
    transformer.clock = lambda: FIXED_TIME  # type: ignore[attr-defined]
    check(transformer, data, expected, META)


def test_insert_field_invalid_json_value_fails_each_message() -> None:
    transformer = built("insertField", {"fields": {"ok": "1", "bad": "json:{nope"}})
    check(transformer, "{}", Raises('insertField "bad": invalid json value "json:{nope"'))
    check(transformer, "[1]", PASS)


def test_insert_field_json_containers_are_not_shared_between_messages() -> None:
    transformer = build("insertField", {"fields": {"a": "json:{}", "a.b": "${metadata.topic}"}})
    first = transformer.transform(message("{}", {"topic": "one"}))
    second = transformer.transform(message("{}", {"topic": "two"}))
    assert json.loads(first[0].data) == {"a": {"b": "one"}}
    assert json.loads(second[0].data) == {"a": {"b": "two"}}
    third = transformer.transform(message("{}", {}))
    assert json.loads(third[0].data) == {"a": {"b": ""}}


def test_insert_field_keeps_metadata_and_appends_keys() -> None:
    out = build("insertField", {"fields": {"z": "1", "a": "2"}}).transform(message('{"m":0}', {"k": "v"}))
    assert out[0].data == b'{"m":0,"z":"1","a":"2"}'
    assert out[0].metadata == {"k": "v"}
