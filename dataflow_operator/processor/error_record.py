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

A payload that is clean JSON (:func:`~dataflow_operator.pipeline.jsontext.is_clean_json`) is embedded
*verbatim* — the record holds the
original bytes, not a re-encoding that would turn ``1.50`` into ``1.5`` — except that line breaks,
which can only be insignificant whitespace in clean JSON, become spaces so each record is one line.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from ..observability.redaction import scrub, scrub_value
from ..pipeline.errors import classify
from ..pipeline.jsontext import STRICT_ENCODER, is_clean_json, jsonable, safe_text
from ..pipeline.message import Message
from ..pipeline.timetext import rfc3339_nano_utc

#: An error text longer than this is cut: an exception that quotes a whole oversized value must not
#: make the record oversized too.
MAX_ERROR_TEXT = 4096


def _outgoing_text(text: str) -> str:
    """A text that is not the payload, as it may leave the process: encodable, bounded, scrubbed."""
    if len(text) > MAX_ERROR_TEXT:
        text = text[:MAX_ERROR_TEXT] + f"… ({len(text) - MAX_ERROR_TEXT} more characters)"
    return scrub(safe_text(text))


def original_field(data: bytes) -> bytes:
    """The record's ``"original_…": …`` member for payload ``data`` (UTF-8 JSON text)."""
    if is_clean_json(data):
        return b'"original_message":' + data.replace(b"\r", b" ").replace(b"\n", b" ")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return b'"original_data_base64":' + STRICT_ENCODER.encode(base64.b64encode(data).decode("ascii")).encode()
    return b'"original_data":' + STRICT_ENCODER.encode(text).encode("utf-8")  # escapes any surrogate text


def omitted_field(data: bytes, reason: str) -> bytes:
    """In place of the payload when the error sink refused the record with it (e.g. too large)."""
    summary = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "reason": _outgoing_text(reason)}
    return b'"original_omitted":' + STRICT_ENCODER.encode(summary).encode("utf-8")


def error_record(message: Message, error: BaseException, *, stage: str, original_sink: str, now: datetime,
                 omit_original_because: str | None = None) -> Message:
    """The record for ``message``, which failed with ``error`` at ``stage``."""
    timestamp = rfc3339_nano_utc(now)
    text = _outgoing_text(str(error) or type(error).__name__)
    head = STRICT_ENCODER.encode({"error": {
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

