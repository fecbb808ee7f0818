"""Values as strict JSON (RFC 8259), whatever Python object or text they started as.

"Clean JSON" is what any strict parser reads back as the same value: valid UTF-8, standard JSON, no
``NaN``/``Infinity``, no number beyond a double's range (``1e400``), no lone surrogate escape, not
nested deeper than the parser can go. Error records embed such payloads verbatim; the PostgreSQL
sink stores metadata through :func:`jsonable`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from .timetext import rfc3339_nano_utc

#: Metadata nested deeper than this is written as text (metadata comes from sources, e.g. headers).
MAX_METADATA_DEPTH = 32

STRICT_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=False)


def _reject(_text: str) -> Any:
    raise ValueError("not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is beyond a double's range")
    return value


_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject, parse_float=_finite_float)


def safe_text(text: str) -> str:
    """``text`` encodable as UTF-8: lone surrogates become their escape text (``\\ud800``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def jsonable(value: Any, depth: int = 0) -> Any:
    """Metadata values as strict JSON values: datetimes as RFC3339, bytes as text (or base64 when
    binary), non-finite floats and anything unknown as text, every string encodable."""
    if isinstance(value, str):
        return safe_text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value - value == 0 else str(value)  # NaN and ±inf are not JSON
    if depth >= MAX_METADATA_DEPTH:
        return safe_text(str(value))
    if isinstance(value, Mapping):
        return {safe_text(str(k)): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, datetime):
        return rfc3339_nano_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii")
    return safe_text(str(value))


def is_clean_json(data: bytes) -> bool:
    """True when every strict JSON parser reads ``data`` as the value Python reads."""
    try:
        value = _STRICT_DECODER.decode(data.decode("utf-8"))
        STRICT_ENCODER.encode(value).encode("utf-8")  # raises on a lone surrogate
    except (ValueError, RecursionError):  # UnicodeError and JSONDecodeError are ValueErrors
        return False
    return True
