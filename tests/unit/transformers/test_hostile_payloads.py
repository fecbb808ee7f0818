"""Every transformation, fed hostile payloads and metadata, fails only that message or passes it on:
nothing escapes the chain, and whatever it passes on can be written."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow_operator.pipeline.errors import is_environmental
from dataflow_operator.pipeline.message import Message
from dataflow_operator.pipeline.metrics import ProcessorMetrics
from dataflow_operator.processor.chain import TransformChain
from dataflow_operator.spec.routes import entry_rules
from tests.hostile.corpus import CORPUS

from .helpers import step

#: One representative configuration per type, touching the fields the corpus holds.
CONFIGS: dict[str, dict[str, Any] | None] = {
    "snakeCase": {"deep": True},
    "camelCase": {"deep": True},
    "debeziumUnwrap": {"addOperationFields": True, "addSourceFields": ["table"]},
    "cast": {"spec": {"amount": "float64", "n": "int64", "s": "string", "v": "bool", "name": "null"}},
    "timezone": {"timezone": "Europe/Moscow", "fields": ["s", "name"], "format": "RFC3339"},
    "timestamp": {"fieldName": "ts", "format": "RFC3339"},
    "flatten": {"field": "v"},
    "filter": {"condition": "$.k != 'drop'"},
    "router": {"routes": [{"condition": "$.n", "sink": {"type": "file", "config": {"path": "r.jsonl"}}}]},
    "mask": {"fields": ["s", "name"], "keepLength": True},
    "select": {"fields": ["k", "s", "v"]},
    "remove": {"fields": ["s", "v.0"]},
    "replaceField": {"renames": ["s:t", "name:n2"]},
    "headersToPayload": {"mappings": ["binary:b", "cesu8:metadata.c"]},
    "structFlatten": {"delimiter": "_"},
    "extractField": {"field": "v"},
    "hoistField": {"field": "wrapped"},
    "insertField": {"fields": {"from_json": "json:{\"a\":[1,2]}", "topic": "${metadata.topic}", "h": "${metadata.headers}"}},
}
HOSTILE_METADATA: dict[str, Any] = {"headers": {"binary": b"\x00\xff", "cesu8": b"\xed\xa0\x80", "lone": "\ud800"},
                                    "key": b"\xff", "topic": "t"}


def chain_of(type_name: str) -> TransformChain:
    return TransformChain([(type_name, step(type_name, CONFIGS[type_name]))],
                          ProcessorMetrics("ns", "n", enabled=False))


def assert_contained(chain: TransformChain, data: bytes) -> None:
    outputs, failures = chain.run(Message(data, dict(HOSTILE_METADATA)))
    for output in outputs:
        assert isinstance(output.data, bytes)
    for failure in failures:
        assert not is_environmental(failure.error), failure.error


def test_every_type_has_a_configuration() -> None:
    assert set(CONFIGS) == set(entry_rules())


@pytest.mark.parametrize("type_name", sorted(CONFIGS))
@pytest.mark.parametrize("entry", CORPUS, ids=[entry.name for entry in CORPUS])
def test_the_hostile_corpus(type_name: str, entry: Any) -> None:
    assert_contained(chain_of(type_name), entry.payload)


HOSTILE_PIECES = st.sampled_from([b'{"s":"\\ud800"}', b"\xed\xa0\x80", b"1e400", b"NaN", b"\xef\xbb\xbf", b"[" * 3000,
                                  b'{"v":[', b'"\\u0000"', b"\xff", b'{"n":99999999999999999999999}', b"}", b","])


@settings(max_examples=60, deadline=None)
@given(type_name=st.sampled_from(sorted(CONFIGS)),
       data=st.lists(HOSTILE_PIECES | st.binary(max_size=12), max_size=6).map(b"".join))
def test_generated_hostile_payloads(type_name: str, data: bytes) -> None:
    assert_contained(chain_of(type_name), data)
