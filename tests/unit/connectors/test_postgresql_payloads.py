"""Hostile payloads: whatever the bytes, parsing gives a row or an InvalidDataError, never another exception."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow_operator.connectors.postgresql.copy_format import CopyLine, NotCopyableError
from dataflow_operator.connectors.postgresql.payloads import MAX_DEPTH, PayloadShape, Row, key_text, parse_payload
from dataflow_operator.pipeline.errors import InvalidDataError
from dataflow_operator.pipeline.message import Message

SHAPES = [PayloadShape(), PayloadShape(raw_mode=True), PayloadShape(raw_mode=True, flatten_metadata=True)]
METADATA = {"topic": "t", "offset": 7, "timestamp": datetime(2024, 1, 2, tzinfo=UTC), "key": b"\xff\x00"}

# Pieces that make JSON texts hostile in ways a random byte string rarely is.
_ATOMS = st.sampled_from([
    b'"\\ud800"', b'"\\udfff\\ud800"', b'"\\u0000"', b'"\xed\xa0\x80"', b'"\xc0\x80"', b'"\xff"', b"1e400",
    b"-1e-400", b"9" * 5000, b"NaN", b"Infinity", b"-0", b"0.0000000000000000000001", b"true", b"null",
    b'"x"', b"{}", b"[]", b"1", b"",
])


@st.composite
def _json_like(draw: st.DrawFn) -> bytes:
    """An object of hostile atoms, sometimes wrapped deep, sometimes cut short."""
    items = draw(st.lists(st.tuples(_ATOMS, _ATOMS), max_size=4))
    text = b"{" + b",".join(b'"k%d":' % i + value for i, (_, value) in enumerate(items)) + b"}"
    depth = draw(st.sampled_from([0, 1, MAX_DEPTH - 1, MAX_DEPTH + 1, 5000]))
    text = b'{"a":' * depth + text + b"}" * depth
    cut = draw(st.integers(min_value=0, max_value=3))
    return text[:len(text) - cut] if cut else text


def _outcome(data: bytes, shape: PayloadShape) -> Row | InvalidDataError:
    try:
        return parse_payload(Message(data, dict(METADATA)), shape)
    except InvalidDataError as exc:
        return exc


@pytest.mark.parametrize("shape", SHAPES)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200) | _json_like())
def test_any_bytes_make_a_row_or_an_invalid_data_error(shape: PayloadShape, data: bytes) -> None:
    outcome = _outcome(data, shape)
    if isinstance(outcome, Row):
        # What a row carries on can be sent: its text is UTF-8, its values walk without recursing
        # too deep, and a COPY line either forms or is refused as not copyable.
        outcome.text.decode("utf-8")
        for value in outcome.values.values():
            key_text(value)
        with contextlib.suppress(NotCopyableError, UnicodeEncodeError):
            CopyLine(("jsonb",) * len(outcome.values))(outcome.values)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("data", "reason"), [
    (b'{"s": "\xed\xa0\x80"}', "not JSON"),  # CESU-8 surrogate bytes
    (b'{"s": "\xff\xfe"}', "not JSON"),
    (b"", "not JSON"),
    (b'{"n": NaN}', "not JSON"),
    (b'{"n": ' + b"9" * 5000 + b"}", "not JSON"),  # beyond the interpreter's integer text limit
    (b'{"j": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", f"deeper than {MAX_DEPTH}"),
    (b'{"j": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}", f"deeper than {MAX_DEPTH}"),
])
def test_hostile_payloads_name_the_reason(shape: PayloadShape, data: bytes, reason: str) -> None:
    with pytest.raises(InvalidDataError, match=reason):
        parse_payload(Message(data, dict(METADATA)), shape)


def test_a_document_at_the_depth_limit_is_a_row() -> None:
    depth = MAX_DEPTH - 1  # the row object itself is one level
    data = b'{"j": ' + b"[" * depth + b"]" * depth + b"}"
    row = parse_payload(Message(data), PayloadShape())
    assert row.text == data
    assert json.loads(key_text(row.values["j"]) or "") == json.loads(b"[" * depth + b"]" * depth)


def test_escapes_the_server_refuses_are_left_to_the_server() -> None:
    # Valid JSON that PostgreSQL refuses in text and jsonb: parsed here, refused row by row there.
    for data in (b'{"s": "\\ud800"}', b'{"s": "a\\u0000b"}'):
        assert parse_payload(Message(data), PayloadShape()).text == data
