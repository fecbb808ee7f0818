"""PostgreSQLSink against a real server: every write path, exact failures, schema handling, reconnects."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from dataflow_operator.connectors.postgresql import PostgreSQLSink
from dataflow_operator.connectors.postgresql.tuning import SinkTuning
from dataflow_operator.pipeline.connector import BatchLimits
from dataflow_operator.pipeline.errors import ClassifiedError
from dataflow_operator.pipeline.message import Message

from .harness import Harness, pipeline_settings
from .postgresql_paths import COPY, PARAMETER, STAGE


@pytest.fixture
def table() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def make_sink(dsn: str, table: str, **config: Any) -> tuple[PostgreSQLSink, Harness]:
    settings = config.pop("settings", pipeline_settings())
    tuning = config.pop("tuning", SinkTuning())
    harness = Harness("postgresql", "sink", settings=settings)
    sink = PostgreSQLSink({"connectionString": dsn, "table": table, **config}, harness.context, tuning)
    sink.connect()
    return sink, harness


def rows(*payloads: dict[str, Any], **metadata: Any) -> list[Message]:
    return [Message(json.dumps(p).encode(), dict(metadata)) for p in payloads]


def fetch(db: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    return db.execute(query).fetchall()


SIZE = 200


WRITE_PATHS = {"copy": COPY, "parameter": PARAMETER, "stage": STAGE}


@pytest.fixture(params=list(WRITE_PATHS))
def insert_path(request: pytest.FixtureRequest) -> SinkTuning:
    return WRITE_PATHS[request.param]


def test_plain_inserts_into_a_table_without_keys(dsn: str, db: psycopg.Connection[Any], table: str,
                                                insert_path: SinkTuning) -> None:
    size = SIZE
    db.execute(f"CREATE TABLE {table} (id BIGINT, name TEXT, amount NUMERIC, doc JSONB, seen TIMESTAMPTZ)")
    sink, _ = make_sink(dsn, table, tuning=insert_path)
    batch = [Message(f'{{"id": {i}, "name": "n{i}\\ttab", "amount": 1.10, "doc": {{"a": [1, 2.50]}}, '
                     f'"seen": "2024-05-01T10:00:00.123456Z"}}'.encode()) for i in range(size)]
    try:
        assert sink.write(batch) == []
        assert sink.write(batch[:3]) == []  # no unique key: a repeat is another row
    finally:
        sink.close()
    assert fetch(db, f"SELECT count(*), count(DISTINCT id) FROM {table}") == [(size + 3, size)]
    name, amount, doc, seen = fetch(db, f"SELECT name, amount::text, doc::text, seen FROM {table} WHERE id = 1")[0]
    assert (name, amount, doc) == ("n1\ttab", "1.10", '{"a": [1, 2.50]}')
    assert seen == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)


def test_duplicates_after_a_crash_are_skipped_when_the_table_has_a_key(
        dsn: str, db: psycopg.Connection[Any], table: str, insert_path: SinkTuning) -> None:
    size = SIZE
    db.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, v TEXT, created TIMESTAMPTZ DEFAULT now())")
    sink, _ = make_sink(dsn, table, tuning=insert_path)
    batch = rows(*({"id": i, "v": "first"} for i in range(size)))
    try:
        assert sink.write(batch) == []
        replay = rows(*({"id": i, "v": "second"} for i in range(size + 5)))
        assert sink.write(replay) == []  # ON CONFLICT DO NOTHING: nothing fails, new rows land
    finally:
        sink.close()
    assert fetch(db, f"SELECT count(*), count(*) FILTER (WHERE v = 'first') FROM {table}") == [(size + 5, size)]
    assert fetch(db, f"SELECT count(*) FROM {table} WHERE created IS NULL") == [(0,)]  # defaults applied


def test_exactly_the_violating_rows_fail(dsn: str, db: psycopg.Connection[Any], table: str,
                                         insert_path: SinkTuning) -> None:
    size = SIZE
    db.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, qty INT NOT NULL CHECK (qty >= 0), note TEXT)")
    sink, harness = make_sink(dsn, table, upsertMode=True, tuning=insert_path)
    bad = {1: {"id": 1, "qty": -1}, size - 2: {"id": size - 2, "qty": None},
           size // 2: {"id": size // 2, "qty": "many"}}
    payloads = [bad.get(i, {"id": i, "qty": i, "note": "ok"}) for i in range(size)]
    batch = rows(*payloads)
    try:
        failures = sink.write(batch)
    finally:
        sink.close()
    assert sorted(batch.index(f.message) for f in failures) == sorted(bad)
    kinds = {batch.index(f.message): f.error.error_type for f in failures if isinstance(f.error, ClassifiedError)}
    assert kinds == {1: "constraint_violation", size - 2: "constraint_violation", size // 2: "invalid_data"}
    assert fetch(db, f"SELECT count(*) FROM {table}") == [(size - 3,)]
    assert harness.errors("write", "connection_error") == 0


def test_payloads_that_are_not_json_objects_fail_one_by_one(dsn: str, db: psycopg.Connection[Any],
                                                            table: str) -> None:
    db.execute(f"CREATE TABLE {table} (id BIGINT)")
    sink, _ = make_sink(dsn, table)
    good = rows({"id": 1})[0]
    batch = [Message(b"not json"), Message(b"[1, 2]"), good, Message(b'"text"'), Message(b""),
             rows({"id": 2, "nope": True})[0]]
    try:
        failures = sink.write(batch)
    finally:
        sink.close()
    assert [batch.index(f.message) for f in failures] == [0, 1, 3, 4, 5]
    assert all(isinstance(f.error, ClassifiedError) and f.error.error_type == "invalid_data" for f in failures)
    assert "nope" in str(failures[-1].error)
    assert fetch(db, f"SELECT id FROM {table}") == [(1,)]


def test_upsert_applies_messages_in_order(dsn: str, db: psycopg.Connection[Any], table: str,
                                          insert_path: SinkTuning) -> None:
    size = SIZE
    db.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, v TEXT, n INT)")
    db.execute(f"INSERT INTO {table} VALUES (0, 'old', 0)")
    sink, _ = make_sink(dsn, table, upsertMode=True, tuning=insert_path)
    # Every key three times in one batch: the last occurrence wins, as if written one by one.
    payloads = [{"id": i % (size // 3 or 1), "v": f"v{i}", "n": i} for i in range(size)]
    try:
        assert sink.write(rows(*payloads)) == []
        assert sink.write(rows({"id": 0})) == []  # only the key: nothing to update
    finally:
        sink.close()
    expected = {p["id"]: (p["v"], p["n"]) for p in payloads}
    assert {r[0]: (r[1], r[2]) for r in fetch(db, f"SELECT id, v, n FROM {table}")} == expected


def test_upsert_if_newer_keeps_the_highest_version(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    db.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, v TEXT, version INT)")
    sink, _ = make_sink(dsn, table, upsertMode=True, upsertStrategy="ifNewer", upsertVersionColumn="version")
    try:
        assert sink.write(rows({"id": 1, "v": "v5", "version": 5}, {"id": 2, "v": "v1", "version": 1})) == []
        batch = rows({"id": 1, "v": "v3", "version": 3}, {"id": 2, "v": "v7", "version": 7},
                     {"id": 2, "v": "v6", "version": 6}, *({"id": 100 + i, "version": 1} for i in range(20)))
        assert sink.write(batch) == []
    finally:
        sink.close()
    assert fetch(db, f"SELECT id, v, version FROM {table} WHERE id < 100 ORDER BY id") == [(1, "v5", 5),
                                                                                            (2, "v7", 7)]


def test_deletes_physical_and_soft(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    db.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, v TEXT, deleted_at TIMESTAMPTZ)")
    other = f"{table}_soft"
    db.execute(f"CREATE TABLE {other} (LIKE {table} INCLUDING ALL)")
    hard, _ = make_sink(dsn, table, upsertMode=True)
    soft, _ = make_sink(dsn, other, upsertMode=True, softDeleteColumn="deleted_at")
    try:
        for sink in (hard, soft):
            # insert 1..3, delete 2, re-insert... in one batch, in order
            batch = [*rows({"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}),
                     *rows({"id": 2}, {"v": "no key"}, operation="delete"), *rows({"id": 3, "v": "c2"})]
            failures = sink.write(batch)
            assert [batch.index(f.message) for f in failures] == [4]  # a delete without its key
    finally:
        hard.close()
        soft.close()
    assert fetch(db, f"SELECT id, v FROM {table} ORDER BY id") == [(1, "a"), (3, "c2")]
    assert fetch(db, f"SELECT id, v, deleted_at IS NOT NULL FROM {other} ORDER BY id") == [
        (1, "a", False), (2, "b", True), (3, "c2", False)]


def test_auto_create_infers_types_and_adds_new_columns(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    sink, _ = make_sink(dsn, table, autoCreateTable=True, upsertMode=True, conflictKey="id")
    first = rows({"id": 1, "flag": True, "price": 1.5, "name": "x", "tags": ["a"], "meta": {"k": 1},
                  "mixed": 1, "empty": None},
                 {"id": 2, "flag": False, "price": 2, "name": "y", "tags": [], "meta": {}, "mixed": "two"})
    try:
        assert sink.write(first) == []
        assert sink.write(rows({"id": 3, "later": 7})) == []
    finally:
        sink.close()
    types = dict(fetch(db, f"SELECT column_name, data_type FROM information_schema.columns "
                           f"WHERE table_name = '{table}'"))
    assert types == {"id": "bigint", "flag": "boolean", "price": "numeric", "name": "text", "tags": "jsonb",
                     "meta": "jsonb", "mixed": "jsonb", "empty": "text", "later": "bigint"}
    assert fetch(db, f"SELECT price, mixed::text FROM {table} ORDER BY id")[:2] == [(Decimal("1.5"), "1"),
                                                                                  (Decimal("2"), '"two"')]
    key = fetch(db, f"SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                    f"AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '{table}'::regclass AND i.indisprimary")
    assert key == [("id",)]


def test_raw_mode_stores_payload_and_metadata(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    sink, _ = make_sink(dsn, table, autoCreateTable=True, rawMode=True)
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    batch = [Message(b'{"a": 1.50}', {"topic": "t", "offset": 7, "timestamp": when}),
             Message(b'{"value": [1, 2], "_metadata": {"source": "x"}}', {"ignored": True}),
             Message(b'"just text"')]
    try:
        assert sink.write(batch) == []
    finally:
        sink.close()
    stored = fetch(db, f"SELECT data::text, _metadata::text FROM {table} ORDER BY id")
    assert stored == [('{"a": 1.50}', '{"topic": "t", "offset": 7, "timestamp": "2024-01-02T03:04:05Z"}'),
                      ("[1, 2]", '{"source": "x"}'), ('"just text"', "{}")]


def test_raw_mode_with_flattened_metadata_columns(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    sink, _ = make_sink(dsn, table, autoCreateTable=True, rawMode=True, flattenMetadataColumns=True,
                        flattenMetadataColumnsPrefix="kafka_")
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    try:
        assert sink.write([Message(b'{"a": 1}', {"topic": "t", "offset": 7, "timestamp": when})]) == []
        assert sink.write([Message(b'{"a": 2}', {"topic": "t", "offset": 8, "new_key": "skipped"})]) == []
    finally:
        sink.close()
    types = dict(fetch(db, f"SELECT column_name, data_type FROM information_schema.columns "
                           f"WHERE table_name = '{table}'"))
    assert {k: v for k, v in types.items() if k.startswith("kafka_")} == {
        "kafka_topic": "text", "kafka_offset": "bigint", "kafka_timestamp": "timestamp with time zone"}
    assert "_metadata" not in types
    assert fetch(db, f"SELECT data::text, kafka_offset, kafka_timestamp FROM {table} ORDER BY id") == [
        ('{"a": 1}', 7, when), ('{"a": 2}', 8, None)]


def test_unknown_table_is_a_connect_error(dsn: str, table: str) -> None:
    harness = Harness("postgresql", "sink")
    sink = PostgreSQLSink({"connectionString": dsn, "table": table}, harness.context)
    with pytest.raises(ClassifiedError, match="does not exist"):
        sink.connect()
    sink.close()


def test_reconnects_after_the_connection_is_lost(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    db.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY)")
    sink, harness = make_sink(dsn, table)
    try:
        assert sink.write(rows({"id": 1})) == []
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE application_name = 'dataflow-operator' AND datname = current_database()")
        assert sink.write(rows({"id": 2})) == []
        assert harness.errors("write", "connection_error") == 1
        assert harness.connection_status() == 1
    finally:
        sink.close()
    assert fetch(db, f"SELECT id FROM {table} ORDER BY id") == [(1,), (2,)]


@pytest.mark.parametrize("case", [
    ({}, "batch", BatchLimits(1, 10.0)),
    ({"batchSize": 500, "batchFlushIntervalSeconds": 2}, "batch", BatchLimits(500, 2.0)),
    ({"batchSize": 0, "batchFlushIntervalSeconds": 5}, "batch", BatchLimits(10_000, 5.0)),
    ({"batchSize": 100, "batchFlushIntervalSeconds": 0}, "batch", BatchLimits(100, None)),
    ({"batchSize": 500}, "message", BatchLimits(1, 10.0)),
])
def test_batch_limits(dsn: str, db: psycopg.Connection[Any], table: str,
                      case: tuple[dict[str, Any], str, BatchLimits]) -> None:
    config, granularity, limits = case
    db.execute(f"CREATE TABLE {table} (id BIGINT)")
    sink, _ = make_sink(dsn, table, settings=pipeline_settings(ack_granularity=granularity), **config)
    try:
        assert sink.batch_limits() == limits
    finally:
        sink.close()
