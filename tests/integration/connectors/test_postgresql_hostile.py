"""PostgreSQLSink under hostile payloads and a failing environment, against a real server.

Hostile data costs exactly the hostile messages, on every write path; a failing environment (a table
or column dropped under the sink, a revoked privilege, a server that stops taking connections or
writes) raises for the whole batch as environmental, with no message blamed.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from dataflow_operator.connectors.postgresql import PostgreSQLSink
from dataflow_operator.connectors.postgresql.server_errors import MAX_MESSAGE_CHARS
from dataflow_operator.connectors.postgresql.tuning import SinkTuning
from dataflow_operator.pipeline.errors import ClassifiedError, is_environmental
from dataflow_operator.pipeline.message import Message

from .harness import Harness
from .postgresql_paths import COPY, PARAMETER, STAGE

GOOD = 40
HOSTILE = {
    "CESU-8 surrogate bytes": b'{"id": 1000, "s": "\xed\xa0\x80"}',
    "lone surrogate escape": b'{"id": 1001, "s": "\\ud800"}',
    "lone surrogate escape in jsonb": b'{"id": 1002, "j": {"k": ["\\udfff"]}}',
    "NUL escape in text": b'{"id": 1003, "s": "a\\u0000b"}',
    "NUL escape in jsonb": b'{"id": 1004, "j": "\\u0000"}',
    "10 000-deep array": b'{"id": 1005, "j": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "1e400 into float8": b'{"id": 1006, "f": 1e400}',
    "int beyond bigint": b'{"id": 1007, "big": 99999999999999999999999}',
    "5000-digit number": b'{"id": 1008, "n": ' + b"9" * 5000 + b"}",
    "NaN": b'{"id": 1009, "n": NaN}',
    "string into int": b'{"id": 1010, "i": "abc"}',
    "non-object JSON": b"[1, 2]",
    "invalid UTF-8": b'{"id": 1011, "s": "\xff\xfe"}',
    "empty payload": b"",
    "2 MB string into varchar(64)": b'{"id": 1012, "code": "' + os.urandom(1024 * 1024).hex().encode() + b'"}',
    "a column the table lacks": b'{"id": 1013, "nope": 1}',
}


@pytest.fixture
def table(db: psycopg.Connection[Any]) -> str:
    name = f"h_{uuid.uuid4().hex[:10]}"
    db.execute(f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, s TEXT, j JSONB, n NUMERIC, big BIGINT, i INT, "
               f"f FLOAT8, code VARCHAR(64))")
    return name


#: Each write path: COPY into the table; upsert by INSERT with the rows as a parameter; plain INSERT
#: through the COPY stage.
TUNINGS = {"copy": COPY, "upsert": PARAMETER, "stage": STAGE}


@pytest.fixture(params=list(TUNINGS))
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_sink(dsn: str, table: str, path: str = "copy", tuning: SinkTuning | None = None,
              **config: Any) -> PostgreSQLSink:
    sink = PostgreSQLSink({"connectionString": dsn, "table": table, "upsertMode": path == "upsert", **config},
                          Harness("postgresql", "sink").context, tuning or TUNINGS[path])
    sink.connect()
    return sink


def good(*ids: int) -> list[Message]:
    return [Message(json.dumps({"id": i, "s": f"row {i}", "n": 1.5, "j": {"i": i}}).encode()) for i in ids]


def ids_in(db: psycopg.Connection[Any], table: str) -> list[int]:
    return [row[0] for row in db.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()]


def test_exactly_the_hostile_messages_fail(dsn: str, db: psycopg.Connection[Any], table: str, path: str) -> None:
    rows = good(*range(GOOD))
    hostile = [Message(data) for data in HOSTILE.values()]
    batch = [message for pair in zip(rows, hostile, strict=False) for message in pair] + rows[len(hostile):]
    sink = make_sink(dsn, table, path)
    try:
        failures = sink.write(batch)
    finally:
        sink.close()
    failed = {id(f.message): f.error for f in failures}
    assert [name for name, message in zip(HOSTILE, hostile, strict=True) if id(message) not in failed] == []
    assert len(failures) == len(hostile)
    for error in failed.values():
        assert isinstance(error, ClassifiedError) and error.error_type in ("invalid_data", "constraint_violation")
        assert not is_environmental(error)
        assert len(str(error)) < MAX_MESSAGE_CHARS + 100  # the 2 MB value is not quoted whole
    assert ids_in(db, table) == list(range(GOOD))


def test_deletes_with_keys_the_client_cannot_send_fail_alone(dsn: str, db: psycopg.Connection[Any],
                                                             table: str) -> None:
    sink = make_sink(dsn, table, upsertMode=True)
    deletes = [Message(data, {"operation": "delete"}) for data in
               (b'{"id": "\\ud800"}', b'{"id": "a\\u0000b"}', b'{"id": 3}', b'{"id": "x"}')]
    try:
        assert sink.write(good(1, 2, 3, 4)) == []
        failures = sink.write(deletes)
    finally:
        sink.close()
    assert [deletes.index(f.message) for f in failures] == [0, 1, 3]
    assert all(isinstance(f.error, ClassifiedError) and not is_environmental(f.error) for f in failures)
    assert ids_in(db, table) == [1, 2, 4]


def test_keys_that_cannot_name_a_column_fail_alone_when_creating_columns(dsn: str, db: psycopg.Connection[Any]) -> None:
    name = f"auto_{uuid.uuid4().hex[:8]}"
    bad = [b'{"id": 9, "": 1}', b'{"id": 9, "a\\u0000": 1}', b'{"id": 9, "\\ud800": 1}',
           b'{"id": 9, "' + b"k" * 64 + b'": 1}']
    first = [Message(data) for data in bad] + [Message(b'{"id": 1, "v": "x"}')]
    later = [Message(b'{"id": 2, "w": 2}'), *(Message(data) for data in bad)]
    sink = make_sink(dsn, name, autoCreateTable=True)
    try:
        assert [first.index(f.message) for f in sink.write(first)] == [0, 1, 2, 3]  # CREATE TABLE
        assert [later.index(f.message) for f in sink.write(later)] == [1, 2, 3, 4]  # ALTER TABLE ADD COLUMN
    finally:
        sink.close()
    assert ids_in(db, name) == [1, 2]


def _raises_environmental(sink: PostgreSQLSink, batch: list[Message]) -> BaseException:
    with pytest.raises(Exception) as raised:  # what matters is how it is classified
        sink.write(batch)
    assert is_environmental(raised.value), repr(raised.value)
    return raised.value


@pytest.mark.parametrize("path", ["copy", "upsert", "stage"], indirect=True)
def test_a_table_dropped_mid_run_is_environmental(dsn: str, db: psycopg.Connection[Any], table: str,
                                                  path: str) -> None:
    sink = make_sink(dsn, table, path)
    try:
        assert sink.write(good(1)) == []
        db.execute(f"DROP TABLE {table}")
        _raises_environmental(sink, good(2, 3))
        error = _raises_environmental(sink, good(2, 3))  # the retry finds it gone, still not bad data
        assert "does not exist" in str(error)
    finally:
        sink.close()


@pytest.mark.parametrize("path", ["copy", "upsert"], indirect=True)
def test_a_column_dropped_mid_run_is_environmental(dsn: str, db: psycopg.Connection[Any], table: str,
                                                   path: str) -> None:
    sink = make_sink(dsn, table, path)
    try:
        assert sink.write(good(1)) == []
        db.execute(f"ALTER TABLE {table} DROP COLUMN s")
        _raises_environmental(sink, good(2))
        error = _raises_environmental(sink, good(2))
        assert "dropped" in str(error)
    finally:
        sink.close()


def test_a_revoked_insert_is_environmental(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    role = f"writer_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    db.execute(f"GRANT SELECT, INSERT, UPDATE ON {table} TO {role}")
    sink = make_sink(dsn.replace("://postgres@", f"://{role}@"), table)
    try:
        assert sink.write(good(1)) == []
        db.execute(f"REVOKE INSERT ON {table} FROM {role}")
        error = _raises_environmental(sink, good(2))
        assert isinstance(error, ClassifiedError) and error.error_type == "auth_error"
    finally:
        sink.close()
    assert ids_in(db, table) == [1]


@pytest.fixture
def admin(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to another database, for ``ALTER DATABASE`` on the test's (reset afterwards)."""
    name = dsn.rsplit("/", 1)[1]
    with psycopg.connect(dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        yield conn
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        conn.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


def _alter_database(admin: psycopg.Connection[Any], dsn: str, setting: str) -> None:
    admin.execute(f'ALTER DATABASE "{dsn.rsplit("/", 1)[1]}" {setting}')


def _terminate_sinks(db: psycopg.Connection[Any]) -> None:
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE application_name = 'dataflow-operator' AND datname = current_database()")


def test_a_terminated_backend_that_cannot_reconnect_is_environmental(
        dsn: str, db: psycopg.Connection[Any], table: str, admin: psycopg.Connection[Any]) -> None:
    sink = make_sink(dsn, table, tuning=SinkTuning(reconnect_delays=(0.01,)))
    try:
        assert sink.write(good(1)) == []
        _alter_database(admin, dsn, "WITH ALLOW_CONNECTIONS false")
        _terminate_sinks(db)
        error = _raises_environmental(sink, good(2))
        assert isinstance(error, ClassifiedError) and error.error_type == "connection_error"
    finally:
        sink.close()


@pytest.mark.parametrize("path", ["copy", "upsert"], indirect=True)
def test_a_read_only_server_is_environmental(dsn: str, db: psycopg.Connection[Any], table: str,
                                             admin: psycopg.Connection[Any], path: str) -> None:
    sink = make_sink(dsn, table, path)
    try:
        assert sink.write(good(1)) == []
        _alter_database(admin, dsn, "SET default_transaction_read_only = on")
        _terminate_sinks(db)  # the reconnect's session is read-only
        error = _raises_environmental(sink, good(2))
        assert "SQLSTATE 25006" in str(error)
    finally:
        sink.close()
    assert ids_in(db, table) == [1]
