"""Error records are strict JSON whatever the failed message held, and building one never fails."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow_operator.observability.redaction import SECRETS, register_secrets
from dataflow_operator.pipeline.errors import InvalidDataError
from dataflow_operator.pipeline.message import Message
from dataflow_operator.processor.error_record import error_record
from tests.hostile.accounting import strict_json

NOW = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


def record_of(data: bytes, error: BaseException | None = None, metadata: dict[str, Any] | None = None,
              **kwargs: Any) -> dict[str, Any]:
    record = error_record(Message(data, metadata or {}), error or InvalidDataError("bad"), stage="transformer_0", original_sink="file",
                          now=NOW, **kwargs)
    assert b"\n" not in record.data and b"\r" not in record.data
    body: dict[str, Any] = strict_json(record.data)
    return body


def original_bytes(body: dict[str, Any]) -> bytes:
    if "original_data_base64" in body:
        return base64.b64decode(body["original_data_base64"])
    assert "original_data" in body, body
    return str(body["original_data"]).encode("utf-8")


def test_the_documented_shape() -> None:
    message = Message(b'{"id": 7, "total": 1.50}', {"topic": "t", "partition": 0,
                                                     "ts": datetime(2026, 1, 1, tzinfo=UTC)})
    record = error_record(message, InvalidDataError("bad total"), stage="transformer_1", original_sink="postgresql",
                          now=NOW)
    body = strict_json(record.data)
    assert body["error"] == {"message": "bad total", "type": "invalid_data", "timestamp": "2026-02-03T04:05:06Z",
                             "original_sink": "postgresql", "stage": "transformer_1",
                             "metadata": {"topic": "t", "partition": 0, "ts": "2026-01-01T00:00:00Z"}}
    assert body["original_message"] == {"id": 7, "total": 1.5}
    assert record.data.endswith(b'"original_message":{"id": 7, "total": 1.50}}'), "the payload is kept verbatim"
    assert record.metadata["is_error_message"] is True and record.metadata["original_sink"] == "postgresql"


def test_a_lone_surrogate_escape_is_kept_as_text() -> None:
    # json.loads turns this escape into a str that cannot be encoded as UTF-8: the old builder crashed on it.
    body = record_of(b'{"name": "\\ud800"}', InvalidDataError("cannot cast '\ud800'"))
    assert body["original_data"] == '{"name": "\\ud800"}'
    assert body["error"]["message"] == "cannot cast '\\ud800'"


def test_cesu8_surrogate_bytes_and_invalid_utf8_go_as_base64() -> None:
    for data in (b'{"s": "\xed\xa0\x80"}', b"\xff\xfe\x00binary"):
        assert original_bytes(record_of(data)) == data


def test_numbers_beyond_a_double_and_nan_are_not_written_as_infinity() -> None:
    for data in (b'{"amount": 1e400}', b'{"amount": -1e400}', b'{"amount": NaN}', b'[Infinity]'):
        body = record_of(data)
        assert body["original_data"] == data.decode()


def test_deep_nesting_and_line_breaks() -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    assert record_of(deep)["original_data"] == deep.decode()
    pretty = b'{\n  "id": 1,\r\n  "tags": ["a"]\n}'
    assert record_of(pretty)["original_message"] == {"id": 1, "tags": ["a"]}


def test_metadata_of_any_shape_becomes_json() -> None:
    body = record_of(b"{}", metadata={"headers": {"h": b"\xff\x00", "t": "\udcff"}, "nan": float("nan"),
                                      "inf": float("inf"), "obj": object(), 7: (1, 2)})
    metadata = body["error"]["metadata"]
    assert metadata["headers"] == {"h": base64.b64encode(b"\xff\x00").decode(), "t": "\\udcff"}
    assert metadata["nan"] == "nan" and metadata["inf"] == "inf" and metadata["7"] == [1, 2]


def test_secrets_and_oversized_error_texts_are_not_copied() -> None:
    register_secrets(["s3cr3t-pa55"])
    try:
        body = record_of(b"{}", RuntimeError("login with s3cr3t-pa55 refused " + "x" * 100_000),
                         metadata={"note": "s3cr3t-pa55"})
    finally:
        SECRETS.clear()
    assert "s3cr3t-pa55" not in json.dumps(body)
    assert len(body["error"]["message"]) < 4200


def test_a_refused_record_can_be_rebuilt_without_its_payload() -> None:
    body = record_of(b'{"big": "' + b"x" * 1000 + b'"}', omit_original_because="Broker: Message size too large")
    assert "original_message" not in body
    assert body["original_omitted"]["bytes"] == 1011
    assert body["original_omitted"]["reason"] == "Broker: Message size too large"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20)
metadata_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary() | st.datetimes(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3),
    max_leaves=10)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
       text=st.text(), metadata=st.dictionaries(st.text(), metadata_values, max_size=4))
def test_any_message_gives_a_strict_record_that_keeps_its_original(data: bytes, text: str,
                                                                   metadata: dict[str, Any]) -> None:
    body = record_of(data, ValueError(text), metadata)
    if "original_message" in body:
        assert body["original_message"] == json.loads(data)
    else:
        assert original_bytes(body) == data
