"""The error sink's record for one failed message: strict JSON (RFC 8259) whatever the message held.

Record shape (connectors.md §2.8, plus the two fallbacks for payloads that are not clean JSON)::

    {"error": {"message", "type", "timestamp", "original_sink", "stage", "metadata"},
     "original_message": <the payload, verbatim>}      # clean JSON
     "original_data": "<the payload as text>"          # valid UTF-8, not clean JSON
     "original_data_base64": "<the payload, base64>"   # not UTF-8

Building a record never fails: a poison message must cost that message only, and a record builder
that raises on it would stop the pipeline on every restart. So every value is made representable
first — lone surrogates (a ``"\\ud800"`` escape decodes to one) are written as their escape text,
non-finite numbers as strings, unknown objects as their ``str`` — and every text that is not the
payload passes the secret scrubber.

"Clean JSON" is what any strict parser reads back as the same value: valid UTF-8, standard JSON, no
``NaN``/``Infinity``, no number beyond a double's range (``1e400``), no lone surrogate escape, not
nested deeper than the parser can go. Such a payload is embedded *verbatim* — the record holds the
original bytes, not a re-encoding that would turn ``1.50`` into ``1.5`` — except that line breaks,
which can only be insignificant whitespace in clean JSON, become spaces so each record is one line.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from ..observability.redaction import scrub, scrub_value
from .errors import classify
from .message import Message

#: An error text longer than this is cut: an exception that quotes a whole oversized value must not
#: make the record oversized too.
MAX_ERROR_TEXT = 4096
#: Metadata nested deeper than this is written as text (metadata comes from sources, e.g. headers).
MAX_METADATA_DEPTH = 32

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=False)


def _reject(_text: str) -> Any:
    raise ValueError("not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is beyond a double's range")
    return value


_STRICT = json.JSONDecoder(parse_constant=_reject, parse_float=_finite_float)


def safe_text(text: str) -> str:
    """``text`` encodable as UTF-8: lone surrogates become their escape text (``\\ud800``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _outgoing_text(text: str) -> str:
    """A text that is not the payload, as it may leave the process: encodable, bounded, scrubbed."""
    if len(text) > MAX_ERROR_TEXT:
        text = text[:MAX_ERROR_TEXT] + f"… ({len(text) - MAX_ERROR_TEXT} more characters)"
    return scrub(safe_text(text))


def rfc3339(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
        return rfc3339(value)
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
        value = _STRICT.decode(data.decode("utf-8"))
        _ENCODER.encode(value).encode("utf-8")  # raises on a lone surrogate
    except (ValueError, RecursionError):  # UnicodeError and JSONDecodeError are ValueErrors
        return False
    return True


def original_field(data: bytes) -> bytes:
    """The record's ``"original_…": …`` member for payload ``data`` (UTF-8 JSON text)."""
    if is_clean_json(data):
        return b'"original_message":' + data.replace(b"\r", b" ").replace(b"\n", b" ")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return b'"original_data_base64":' + _ENCODER.encode(base64.b64encode(data).decode("ascii")).encode()
    return b'"original_data":' + _ENCODER.encode(text).encode("utf-8")  # escapes any surrogate text


def omitted_field(data: bytes, reason: str) -> bytes:
    """In place of the payload when the error sink refused the record with it (e.g. too large)."""
    summary = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "reason": _outgoing_text(reason)}
    return b'"original_omitted":' + _ENCODER.encode(summary).encode("utf-8")


def error_record(message: Message, error: BaseException, *, stage: str, original_sink: str, now: datetime,
                 omit_original_because: str | None = None) -> Message:
    """The record for ``message``, which failed with ``error`` at ``stage``."""
    timestamp = rfc3339(now)
    text = _outgoing_text(str(error) or type(error).__name__)
    head = _ENCODER.encode({"error": {
        "message": text,
        "type": classify(error),
        "timestamp": timestamp,
        "original_sink": original_sink,
        "stage": stage,
        "metadata": scrub_value(jsonable(message.metadata)),
    }}).encode("utf-8")
    original = (original_field(message.data) if omit_original_because is None
                else omitted_field(message.data, omit_original_because))
    metadata = dict(message.metadata)
    metadata.update(error=text, error_timestamp=timestamp, original_sink=original_sink, is_error_message=True)
    return Message(data=head[:-1] + b"," + original + b"}", metadata=metadata, timestamp=message.timestamp,
                   received_at=message.received_at)

