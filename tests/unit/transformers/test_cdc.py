"""debeziumUnwrap (transformations.md §4.1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .helpers import DROP, PASS, Raises, build, check, message


def envelope(op: Any, *, before: Any = None, after: Any = None, source: Any = None) -> str:
    payload: dict[str, Any] = {"op": op, "before": before, "after": after}
    if source is not None:
        payload["source"] = source
    return json.dumps({"schema": {}, "payload": payload})


ROW = {"id": 7, "s": "ok"}
SOURCE = {"table": "orders", "db": "shop", "lsn": 42}

CASES: list[tuple[dict[str, Any] | None, str, Any, dict[str, Any]]] = [
    ({"addOperationFields": True, "addSourceFields": ["table"]},
     envelope("u", after=ROW, source={"table": "orders"}),
     [{"id": 7, "s": "ok", "__op": "u", "__deleted": "false", "source_table": "orders"}],
     {"operation": "update", "id": 7}),
    (None, envelope("c", after=ROW), [ROW], {"operation": "insert", "id": 7}),
    ({}, envelope("u", before={"id": 7}, after=ROW), [ROW], {"operation": "update", "id": 7}),
    ({}, envelope("r", after=ROW), [ROW], {"operation": "insert", "id": 7}),
    ({"snapshotOperation": "insert"}, envelope("r", after=ROW), [ROW], {"operation": "insert", "id": 7}),
    ({"snapshotOperation": "update"}, envelope("r", after=ROW), [ROW], {"operation": "update", "id": 7}),
    ({}, envelope("d", before=ROW), [ROW], {"operation": "delete", "id": 7}),
    ({"addOperationFields": True}, envelope("d", before=ROW),
     [{**ROW, "__op": "d", "__deleted": "true"}], {"operation": "delete", "id": 7}),
    ({}, envelope("c", after={"name": "x"}), [{"name": "x"}], {"operation": "insert"}),
    ({"addSourceFields": [" db ", "missing"]}, envelope("c", after=ROW, source=SOURCE),
     [{**ROW, "source_db": "shop"}], {"operation": "insert", "id": 7}),
    ({"addSourceFields": ["table"]}, envelope("c", after={"id": 1, "source_table": "old"}, source=SOURCE),
     [{"id": 1, "source_table": "orders"}], {"operation": "insert", "id": 1}),
    ({"addOperationFields": True}, envelope("c", after={"__op": "x", "id": 1}),
     [{"__op": "c", "id": 1, "__deleted": "false"}], {"operation": "insert", "id": 1}),
    ({"includeSourceInMetadata": True}, envelope("c", after=ROW, source=SOURCE), [ROW],
     {"operation": "insert", "id": 7, "source_table": "orders", "source_db": "shop", "source_lsn": 42}),
    ({"includeSourceInMetadata": True, "addSourceFields": ["lsn"]}, envelope("c", after=ROW, source=SOURCE),
     [{**ROW, "source_lsn": 42}],
     {"operation": "insert", "id": 7, "source_table": "orders", "source_db": "shop", "source_lsn": 42}),
    # passthrough: no envelope, or no usable op
    ({}, '{"id":1}', PASS, {}),
    ({}, '{"payload":"x"}', PASS, {}),
    ({}, '{"payload":{"after":{"id":1}}}', PASS, {}),
    ({}, '{"payload":{"op":"","after":{"id":1}}}', PASS, {}),
    ({}, '{"payload":{"op":1,"after":{"id":1}}}', PASS, {}),
    # errors
    ({}, "not json", Raises("invalid JSON payload: not a JSON object"), {}),
    ({}, "[1,2]", Raises("not a JSON object"), {}),
    ({}, '"x"', Raises("not a JSON object"), {}),
    ({}, envelope("t"), Raises('unsupported op "t"'), {}),
    ({}, envelope("m", after=ROW), Raises('unsupported op "m"'), {}),
    ({}, envelope("c"), Raises("payload.after must be object"), {}),
    ({}, envelope("d", after=ROW), Raises("payload.before must be object"), {}),
    ({}, envelope("u", after=[1]), Raises("payload.after must be object"), {}),
    # tombstones
    ({}, "", DROP, {}),
    ({}, "  \n", DROP, {}),
]


@pytest.mark.parametrize(("config", "data", "expected", "metadata"), CASES)
def test_debezium_unwrap(config: dict[str, Any] | None, data: str, expected: Any,
                         metadata: dict[str, Any]) -> None:
    inbound = {"topic": "cdc.orders"}
    out = check(build("debeziumUnwrap", config), data, expected, inbound)
    if isinstance(expected, list) and expected:
        assert out[0].metadata == {**inbound, **metadata}


TOMBSTONE_CASES: list[tuple[dict[str, Any], Any, Any, dict[str, Any]]] = [
    ({"inferDeleteFromTombstone": True}, '{"id":7}', [{"id": 7}], {"operation": "delete", "id": 7}),
    ({"inferDeleteFromTombstone": True}, b'{"id":7}', [{"id": 7}], {"operation": "delete", "id": 7}),
    ({"inferDeleteFromTombstone": True}, '{"schema":{},"payload":{"id":9,"t":"a"}}', [{"id": 9, "t": "a"}],
     {"operation": "delete", "id": 9}),
    ({"inferDeleteFromTombstone": True}, '{"schema":{},"payload":5}', [{"schema": {}, "payload": 5}],
     {"operation": "delete"}),
    ({"inferDeleteFromTombstone": True, "addOperationFields": True}, '{"id":7}',
     [{"id": 7, "__op": "d", "__deleted": "true"}], {"operation": "delete", "id": 7}),
    ({"inferDeleteFromTombstone": True}, "not json", DROP, {}),
    ({"inferDeleteFromTombstone": True}, "[1]", DROP, {}),
    ({"inferDeleteFromTombstone": True}, "   ", DROP, {}),
    ({"inferDeleteFromTombstone": True}, None, DROP, {}),
    ({"inferDeleteFromTombstone": True}, 7, DROP, {}),
    ({}, '{"id":7}', DROP, {}),
]


@pytest.mark.parametrize(("config", "key", "expected", "metadata"), TOMBSTONE_CASES)
def test_debezium_tombstone(config: dict[str, Any], key: Any, expected: Any,
                            metadata: dict[str, Any]) -> None:
    inbound = {"topic": "cdc", "key": key}
    out = check(build("debeziumUnwrap", config), b"", expected, inbound)
    if expected:
        assert out[0].metadata == {**inbound, **metadata}


def test_debezium_output_keeps_ack_and_copies_metadata() -> None:
    acks: list[int] = []
    incoming = message(envelope("c", after=ROW), {"topic": "t"})
    incoming.ack = lambda: acks.append(1)
    out = build("debeziumUnwrap", {}).transform(incoming)
    assert out[0].ack is incoming.ack
    assert incoming.metadata == {"topic": "t"}
