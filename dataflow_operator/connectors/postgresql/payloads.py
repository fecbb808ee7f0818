"""Messages → table rows (pure).

A row travels to the server as a JSON object text, which the server maps onto the columns
(:mod:`.sink_sql`). For a plain payload that text is the message's own bytes, so the server parses
exactly what was sent: ``1.10`` reaches a NUMERIC column as ``1.10``. The payload is still parsed here
(non-integers as :class:`~decimal.Decimal`, nothing through a binary float) to refuse what cannot be a
row and to learn its columns and key values. Rows built here (rawMode) are written with
:func:`json_text`, which keeps Decimals digit for digit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from ...pipeline.errors import InvalidDataError
from ...pipeline.jsontext import jsonable
from ...pipeline.message import Message

#: The deepest document a row may hold. Deeper ones are refused here, as one message's failure:
#: every later step that walks a value (COPY cells, key texts, rawMode's row text) recurses, and
#: the interpreter's recursion limit must not be reachable from a payload.
MAX_DEPTH = 256
RAW_DATA_COLUMN = "data"
RAW_METADATA_COLUMN = "_metadata"
_ENVELOPE_KEYS = frozenset({"value", "_metadata"})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every payload: json.loads(parse_float=...) would build a new one per call. NaN and
# Infinity are refused, as msgspec and the server refuse them.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
_FAST_DECODER = msgspec.json.Decoder(float_hook=Decimal)
_FAST_ENCODER = msgspec.json.Encoder(decimal_format="number")


@dataclass(slots=True)
class Row:
    message: Message
    values: dict[str, Any]
    delete: bool
    text: bytes  # the row as a JSON object

    def with_values(self, values: dict[str, Any]) -> Row:
        return Row(self.message, values, self.delete, json_text(values).encode("utf-8"))


@dataclass(frozen=True, slots=True)
class PayloadShape:
    raw_mode: bool = False
    flatten_metadata: bool = False
    metadata_prefix: str = ""


def parse_payload(message: Message, shape: PayloadShape) -> Row:
    """The row a message stands for; :class:`InvalidDataError` when the payload cannot be one. No
    other exception comes out of it, whatever the bytes."""
    try:
        body = decode_payload(message.data)
    except RecursionError as exc:
        raise InvalidDataError(f"payload is nested deeper than {MAX_DEPTH} levels") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidDataError(f"payload is not JSON: {exc}") from exc
    if _may_be_deeper(message.data) and _deeper_than(body, MAX_DEPTH):
        raise InvalidDataError(f"payload is nested deeper than {MAX_DEPTH} levels")
    delete = message.metadata.get("operation") == "delete"
    if not shape.raw_mode:
        if not isinstance(body, dict):
            raise InvalidDataError(f"payload must be a JSON object, got {_json_type(body)}")
        return Row(message, body, delete, message.data)
    if isinstance(body, dict) and body.keys() == _ENVELOPE_KEYS:
        data, metadata = body["value"], body["_metadata"]
    else:
        # As JSON values (times as RFC3339 text, bytes as text or base64), which every write path
        # then writes alike.
        data, metadata = body, jsonable(message.metadata)
    if shape.flatten_metadata:
        values = {f"{shape.metadata_prefix}{key}": value for key, value in _as_mapping(metadata).items()}
        values[RAW_DATA_COLUMN] = data
    else:
        values = {RAW_DATA_COLUMN: data, RAW_METADATA_COLUMN: metadata}
    return Row(message, values, delete, json_text(values).encode("utf-8"))


def _may_be_deeper(data: bytes) -> bool:
    """A cheap bound first (two C-speed counts): a document cannot be deeper than it has brackets."""
    return data.count(b"[") + data.count(b"{") > MAX_DEPTH


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` containers deep (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def decode_payload(data: bytes) -> Any:
    """The payload's JSON value, numbers exact: integers as ints, other numbers as Decimals.

    msgspec reads it (several times faster than the standard library); what msgspec refuses is read
    again by ``_DECODER``, for its own error message or to accept what msgspec is stricter about
    (a lone surrogate escape, which the server then refuses row by row)."""
    try:
        return _FAST_DECODER.decode(data)
    except msgspec.DecodeError:
        return _DECODER.decode(data.decode("utf-8"))


def _as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def json_text(value: Any) -> str:
    """Compact JSON for ``value``, writing Decimals digit for digit and other non-JSON values as the
    error records do (:func:`~dataflow_operator.pipeline.jsontext.jsonable`: RFC3339 times, bytes
    as text or base64)."""
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_text(item) for item in value) + "]"
    if isinstance(value, Decimal) and value.is_finite():
        return _decimal_text(value)
    if value is None or isinstance(value, (bool, int, str)):
        return json.dumps(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return json.dumps(scalar_text(value))


def value_json_text(value: Any) -> str:
    """:func:`json_text` of a JSON value as :func:`decode_payload` or ``jsonable`` make them (dicts,
    lists, strings, ints, Decimals, booleans, None), written by msgspec: the same JSON value, in
    less than a tenth of the time (a Decimal may come out as ``1E+2`` where json_text writes ``100``)."""
    try:
        return _FAST_ENCODER.encode(value).decode("utf-8")
    except (TypeError, ValueError):  # another type; ValueError: a lone surrogate, which is not UTF-8
        return json_text(value)


def scalar_text(value: Any) -> str:
    """The PostgreSQL input text of a scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _decimal_text(value) if value.is_finite() else _special_float(float(value))
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else _special_float(value)
    plain = jsonable(value)
    return plain if isinstance(plain, str) else json.dumps(plain)


def key_text(value: Any) -> str | None:
    """A key column value as an untyped parameter (``None`` is SQL NULL)."""
    if value is None:
        return None
    if isinstance(value, (Mapping, list, tuple)):
        return json_text(value)
    return scalar_text(value)


def _decimal_text(value: Decimal) -> str:
    # Positional notation keeps integral values like 1E+2 acceptable to integer columns.
    return format(value, "f") if -30 <= value.adjusted() <= 30 else str(value)


def _special_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
