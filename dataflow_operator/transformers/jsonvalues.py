"""JSON decoding/encoding for payloads, and the one way a JSON value becomes text.

Every transformer decodes a payload at most once and encodes its result at most once, through the
two prebuilt codec objects here: ``json.loads``/``json.dumps`` with non-default options would build
a new decoder/encoder on every call, which shows on the hot path.

Payload rules (transformations.md §1.6): a payload is JSON when it is UTF-8 text that parses as
standard JSON. ``NaN``/``Infinity`` are not JSON (Python would accept them, Go does not), and a
nesting too deep for the parser counts as "not JSON" rather than an error. Integers stay Python
ints (exact, never through float), objects keep their key order.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ..pipeline.timetext import rfc3339_nano_utc

if TYPE_CHECKING:
    from ..pipeline.message import Message


class _Missing:
    """The value of a path that does not exist (distinct from JSON ``null`` = ``None``)."""

    __slots__ = ()
    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# The reference codec: what decode and encode mean. Decoded payloads cannot contain reference
# cycles, so the encoder's cycle check is skipped.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                                   check_circular=False)
# The fast codec: msgspec reads and writes the same JSON 4-8x faster. Where it could differ, the
# reference decides: msgspec refuses what the reference reads more leniently (lone surrogate
# escapes, numbers beyond a double's range), writes ±inf/NaN as ``null`` (the reference refuses
# them) and some floats in other forms: ``1e16``/``5e-324`` for ``1e+16``/``5e-324``... and
# ``0.00001`` for ``1e-05`` (see _float_form_may_differ).
_FAST_DECODER: Final = msgspec.json.Decoder()
_FAST_ENCODER: Final = msgspec.json.Encoder()
_EXPONENT: Final = re.compile(rb"e[-0-9]")
_NUMBER_BODY: Final = frozenset(b"0123456789.")
_VALUE_START: Final = frozenset(b":,[")


def decode(data: bytes) -> Any:
    """The payload's JSON value, or :data:`MISSING` when it is not JSON."""
    try:
        return _FAST_DECODER.decode(data)
    # Older msgspec releases (0.19) raise UnicodeDecodeError for bytes that are not UTF-8.
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass
    try:
        return _DECODER.decode(data.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return MISSING


def take_doc(message: Message) -> Any:
    """The payload decoded, for a step that may change it: the object a previous step left on the
    message (handed over and removed, so no two steps ever hold the same one), else a fresh decode."""
    doc = message.doc
    if doc is None:
        return decode(message.data)
    message.doc = None
    return doc


def peek_doc(message: Message) -> Any:
    """The payload decoded, for a step that only reads it (conditions). A fresh object is left on
    the message for the next step to take."""
    doc = message.doc
    if doc is None:
        value = decode(message.data)
        if isinstance(value, dict):
            message.doc = value
        return value
    return doc


def decode_text(text: str) -> Any:
    """Like :func:`decode` for text already in hand (config values, metadata keys)."""
    try:
        return _DECODER.decode(text)
    except (ValueError, RecursionError):
        return MISSING


def encode(value: Any) -> bytes:
    """Compact UTF-8 JSON: ``{"a":1}``, non-ASCII kept as is.

    ``value`` is a JSON value (dicts with string keys, lists, strings, ints, floats, booleans,
    None), as :func:`decode` returns and transformations build; the bytes are the reference
    encoder's, byte for byte, and what it refuses (NaN, a lone surrogate) raises as it does.
    """
    try:
        data = _FAST_ENCODER.encode(value)
    except (TypeError, ValueError, msgspec.EncodeError):  # e.g. a key msgspec does not take
        pass
    else:
        if not _float_form_may_differ(data) and (b"null" not in data or _nulls_are_none(data, value)):
            return data
    return _ENCODER.encode(value).encode("utf-8")


def _nulls_are_none(data: bytes, value: Any) -> bool:
    """Whether every ``null`` msgspec wrote was a None, not a NaN or ±inf (which the reference
    refuses): then reading ``data`` back gives ``value``."""
    try:
        return bool(_FAST_DECODER.decode(data) == value)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return False


def _float_form_may_differ(data: bytes) -> bool:
    """Whether msgspec's ``data`` may hold a float that Python writes otherwise: one in exponent
    form (a number, i.e. digits starting a value, then ``e``) or below 1e-4. Text inside a string
    that looks so only costs the slower path."""
    if b"0.0000" in data:
        return True
    for match in _EXPONENT.finditer(data):  # cheap: "e" followed by a digit or "-" is rare in text
        before = position = match.start() - 1
        while position >= 0 and data[position] in _NUMBER_BODY:
            position -= 1
        if position == before:
            continue  # a letter before the "e": text
        if position >= 0 and data[position] == 0x2D:  # "-"
            position -= 1
        if position < 0 or data[position] in _VALUE_START:
            return True
    return False


def encode_text(value: Any) -> str:
    return _ENCODER.encode(value)


def format_float(value: float) -> str:
    """Shortest decimal form without an exponent, as gjson prints a non-integer number
    (Go ``strconv.FormatFloat(f, 'f', -1, 64)``): ``5.0``→"5", ``10.50``→"10.5", ``1e3``→"1000"."""
    if value.is_integer() and abs(value) < 1e16:
        text = str(int(value))
        return "-0" if text == "0" and math.copysign(1.0, value) < 0 else text
    if not math.isfinite(value):  # cannot come from a payload; from Python callers only
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    text = format(Decimal(repr(value)), "f")  # repr = shortest round-trip digits
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def to_text(value: Any) -> str:
    """A JSON value as text for comparisons, masks and casts (transformations.md §2.1).

    strings as they are, integers with their digits, other numbers via :func:`format_float`,
    booleans ``true``/``false``, null ``""``, objects and arrays as compact JSON text.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    return _ENCODER.encode(value)


def is_truthy(value: Any) -> bool:
    """Payload truthiness (§2.1): true, a string other than "" and "false", a non-zero number,
    and *any* object or array (even empty). null and missing are false."""
    if isinstance(value, str):
        return value not in ("", "false")
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return isinstance(value, (dict, list))


def metadata_text(value: Any) -> str:
    """A metadata value as text (conditions, insertField, headersToPayload): str as is, bytes
    decoded, datetimes as UTC RFC3339Nano, None as "", numbers and bools as in :func:`to_text`,
    containers as JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return rfc3339_nano_utc(value)
    if value is None or isinstance(value, (bool, int, float)):
        return to_text(value)
    if isinstance(value, (dict, list, tuple)):
        try:
            return _ENCODER.encode(value)
        except (TypeError, ValueError, RecursionError):  # not JSON-able, or a cycle
            return str(value)
    return str(value)


def metadata_truthy(value: Any) -> bool:
    """Truthiness of a metadata value. Unlike ref-new (where any non-float number is truthy,
    even 0), numbers follow the payload rule: 0 is false. Everything else non-empty is true."""
    if value is None:
        return False
    if isinstance(value, (str, bytes, bytearray)):
        text = value if isinstance(value, str) else bytes(value).decode("utf-8", errors="replace")
        return text not in ("", "false")
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return True
