"""Payload parsing, exact value text, type inference and checkpoint values (pure)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from dataflow_operator.connectors.postgresql.copy_format import CopyLine, NotCopyableError, copy_text
from dataflow_operator.connectors.postgresql.keyset import Keyset, position_value
from dataflow_operator.connectors.postgresql.payloads import (
    PayloadShape,
    decode_payload,
    json_text,
    key_text,
    parse_payload,
)
from dataflow_operator.connectors.postgresql.schema import infer_column_types, metadata_column_type
from dataflow_operator.pipeline.errors import InvalidDataError
from dataflow_operator.pipeline.message import Message


def test_numbers_are_parsed_and_written_exactly() -> None:
    row = parse_payload(Message(b'{"a": 1.10, "b": 12345678901234567890.123456789, "c": 7, "d": 1e2}'),
                        PayloadShape())
    assert row.values == {"a": Decimal("1.10"), "b": Decimal("12345678901234567890.123456789"), "c": 7,
                          "d": Decimal("1E+2")}
    assert json_text(row.values) == '{"a":1.10,"b":12345678901234567890.123456789,"c":7,"d":100}'
    assert key_text(row.values["d"]) == "100"


@pytest.mark.parametrize("data", [b"nope", b"[1]", b'"x"', b"", b"null", b"\xff"])
def test_only_json_objects_make_rows(data: bytes) -> None:
    with pytest.raises(InvalidDataError):
        parse_payload(Message(data), PayloadShape())


def test_raw_mode_envelopes_and_flattening() -> None:
    raw = PayloadShape(raw_mode=True)
    assert parse_payload(Message(b"[1]", {"k": 1}), raw).values == {"data": [1], "_metadata": {"k": 1}}
    wrapped = Message(b'{"value": {"a": 1}, "_metadata": {"m": 2}}', {"ignored": True})
    assert parse_payload(wrapped, raw).values == {"data": {"a": 1}, "_metadata": {"m": 2}}
    flat = PayloadShape(raw_mode=True, flatten_metadata=True, metadata_prefix="meta_")
    assert parse_payload(Message(b"1", {"topic": "t"}), flat).values == {"meta_topic": "t", "data": 1}
    with pytest.raises(InvalidDataError):
        parse_payload(Message(b"{oops"), raw)
    assert parse_payload(Message(b"{}", {"operation": "delete"}), PayloadShape()).delete


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),
    (True, "true"),
    ("text", "text"),
    (Decimal("NaN"), "NaN"),
    ({"a": [1, None]}, '{"a":[1,null]}'),
    ([1, "x"], '[1,"x"]'),
    (float("-inf"), "-Infinity"),
    (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
    (b"\xff\x00", "/wA="),
    (b"caf\xc3\xa9", "caf\u00e9"),
])
def test_key_text(value: Any, expected: str | None) -> None:
    assert key_text(value) == expected


def test_json_text_of_values_json_lacks() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    assert json_text({"at": when, "raw": b"\x00\xff", "n": float("nan")}) == (
        '{"at":"2024-01-02T03:04:05.6Z","raw":"AP8=","n":"NaN"}')


def test_rows_travel_as_json_text() -> None:
    plain = Message(b'{"a": 1.10}\n')
    assert parse_payload(plain, PayloadShape()).text is plain.data  # the server parses what was sent
    raw = parse_payload(Message(b'{"a": 1.10}', {"offset": 3}), PayloadShape(raw_mode=True))
    assert raw.text == b'{"data":{"a":1.10},"_metadata":{"offset":3}}'
    assert raw.with_values({"data": 1}).text == b'{"data":1}'
    assert copy_text(b'{"s": "a\\b\tc"}\r\n') == b'{"s": "a\\\\b\\tc"}\\r\\n\n'


def test_type_inference() -> None:
    rows = [
        {"i": 1, "big": 2**63, "f": Decimal("1.5"), "n": 1, "b": True, "s": "x", "o": {"a": 1}, "l": [1],
         "m": 1, "z": None},
        {"i": 2, "big": 1, "f": 2, "n": Decimal("2.5"), "b": False, "s": "y", "o": {}, "l": [], "m": "one",
         "z": None, "late": "x"},
    ]
    assert infer_column_types(rows) == {"i": "BIGINT", "big": "NUMERIC", "f": "NUMERIC", "n": "NUMERIC",
                                        "b": "BOOLEAN", "s": "TEXT", "o": "JSONB", "l": "JSONB", "m": "JSONB",
                                        "z": "TEXT", "late": "TEXT"}
    assert list(infer_column_types(rows)) == list(rows[1])  # order of first appearance


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("timestamp", "2024-01-01T00:00:00Z", "TIMESTAMPTZ"), ("seen", datetime.now(UTC), "TIMESTAMPTZ"),
    ("offset", 7, "BIGINT"), ("flag", True, "BOOLEAN"), ("headers", {"a": "b"}, "JSONB"), ("topic", "t", "TEXT"),
])
def test_metadata_column_types(key: str, value: Any, expected: str) -> None:
    assert metadata_column_type(key, value) == expected


def test_checkpoint_values() -> None:
    assert position_value(datetime(2024, 5, 1, 10, 0, 0, 120000, tzinfo=UTC)) == "2024-05-01T10:00:00.12Z"
    assert position_value(datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        "2024-05-01T10:00:00Z")
    assert position_value(datetime(2024, 5, 1, 10, 0)) == "2024-05-01T10:00:00Z"  # naive: as UTC
    assert position_value(date(2024, 5, 1)) == "2024-05-01"
    assert position_value(Decimal("1.50")) == "1.50" and position_value(42) == 42
    keyset = Keyset.of_row(datetime(2024, 5, 1, tzinfo=UTC), "abc")
    source = {"table": "orders", "changeTrackingColumn": "updated_at", "orderByColumn": "id"}
    assert json.loads(keyset.dumps(source)) == {"source": source, "lastReadChangeTime": "2024-05-01T00:00:00Z",
                                                "lastReadOrderByValue": "abc"}
    assert Keyset.loads(keyset.dumps(source)) == (keyset, source)
    legacy, identity = Keyset.loads('{"lastReadChangeTime": "2024-05-01T00:00:00Z"}')  # time only, no source
    assert legacy.order is None and identity is None
    for bad in ('{"lastReadOrderByValue": 1}', "[]", '{"lastReadChangeTime": {"x": 1}}', "nope", "[" * 100_000,
                '{"lastReadChangeTime": "t", "source": {"table": 1}}'):
        with pytest.raises(ValueError):
            Keyset.loads(bad)


def test_payloads_decode_exactly_whichever_decoder_reads_them() -> None:
    assert decode_payload(b'{"a": 1.10, "b": 123456789012345678901234567890, "c": [2.5e3]}') == {
        "a": Decimal("1.10"), "b": 123456789012345678901234567890, "c": [Decimal("2.5E+3")]}
    assert decode_payload(b'"\\ud800"') == "\ud800"  # refused by msgspec, read by the standard library
    for text in (b"NaN", b'{"a": Infinity}', b"{oops"):
        with pytest.raises(ValueError):
            decode_payload(text)


def test_copy_lines_hold_what_the_insert_path_would() -> None:
    line = CopyLine(("scalar", "scalar", "jsonb", "scalar", "other"))
    assert line({"a": "x", "b": 7, "j": {"k": [Decimal("2.50"), None]}, "t": True, "o": None}) == \
        'x\t7\t{"k":[2.50,null]}\ttrue\t\\N'
    assert line({"a": "tab\there\\", "b": None, "j": "text", "t": Decimal("1E+2"), "o": None}) == \
        'tab\\there\\\\\t\\N\t"text"\t100\t\\N'
    assert line({"a": "\\N", "b": "new\nline\r", "j": None, "t": False, "o": None}) == \
        '\\\\N\tnew\\nline\\r\t\\N\tfalse\t\\N'


@pytest.mark.parametrize("value", [
    Decimal("-0.0"),  # the server prints 0.0
    Decimal("1E+40"),  # the server prints it positionally
    {"o": 1}, [1], 1.5,
])
def test_values_a_scalar_column_would_see_differently_are_not_copied(value: Any) -> None:
    with pytest.raises(NotCopyableError):
        CopyLine(("scalar",))({"a": value})


def test_other_columns_take_only_null() -> None:
    assert CopyLine(("other",))({"a": None}) == "\\N"
    with pytest.raises(NotCopyableError):
        CopyLine(("other",))({"a": [1, 2]})
