"""The sink's COPY path stores exactly what its INSERT path stores, and refuses exactly the same rows.

Every case is written twice, once by a sink that COPYs first and once by one with COPY turned off,
into two tables of the same shape; the tables must end up equal as text and the failures must name
the same messages with the same error types.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow_operator.connectors.postgresql import PostgreSQLSink
from dataflow_operator.connectors.postgresql import sink as sink_module
from dataflow_operator.connectors.postgresql.tuning import SinkTuning
from dataflow_operator.pipeline.connector import WriteFailure
from dataflow_operator.pipeline.errors import ClassifiedError
from dataflow_operator.pipeline.message import Message

from .harness import Harness

COLUMNS = ("seq BIGINT PRIMARY KEY, txt TEXT, num NUMERIC, i INT, b BOOLEAN, j JSONB, js JSON, "
           "ts TIMESTAMPTZ, d DATE, u UUID, arr INT[], mood {schema}.mood, dom {schema}.positive, "
           "pt {schema}.pair")


class Pair:
    """Two sinks over two equal tables: ``copy`` COPYs first, ``insert`` never does. By default the
    ``copy`` sink offers every batch to COPY, even right after one COPY refused."""

    def __init__(self, dsn: str, db: psycopg.Connection[Any], columns: str, copy_pause_batches: int = 0) -> None:
        self.db = db
        self.tables = {path: f"{path}_{uuid.uuid4().hex[:10]}" for path in ("copy", "insert")}
        tunings = {"copy": SinkTuning(copy_pause_batches=copy_pause_batches), "insert": SinkTuning(copy_first=False)}
        self.sinks: dict[str, PostgreSQLSink] = {}
        for path, table in self.tables.items():
            db.execute(f"CREATE TABLE {table} ({columns})")
            self.sinks[path] = PostgreSQLSink({"connectionString": dsn, "table": table},
                                              Harness("postgresql", "sink").context, tunings[path])
            self.sinks[path].connect()
        self.copied: list[list[Message]] = []  # batches the COPY path wrote itself

    def write(self, batch: list[Message]) -> dict[str, list[tuple[int, str]]]:
        return {path: sorted(_described(batch, f) for f in sink.write(batch)) for path, sink in self.sinks.items()}

    def contents(self, path: str) -> list[tuple[Any, ...]]:
        return self.db.execute(f"SELECT t::text FROM {self.tables[path]} AS t ORDER BY 1").fetchall()

    def truncate(self) -> None:
        for table in self.tables.values():
            self.db.execute(f"TRUNCATE {table}")

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()


def _described(batch: list[Message], failure: WriteFailure) -> tuple[int, str]:
    error = failure.error
    return batch.index(failure.message), error.error_type if isinstance(error, ClassifiedError) else "?"


@pytest.fixture
def record_copies(monkeypatch: pytest.MonkeyPatch) -> list[list[Message]]:
    """The batches the COPY path wrote (rather than handing them to INSERT)."""
    copied: list[list[Message]] = []
    real = sink_module.copy_batch

    def recording(*args: Any) -> list[WriteFailure]:
        result = real(*args)
        copied.append(args[-1])
        return result

    monkeypatch.setattr(sink_module, "copy_batch", recording)  # a spy: the write itself is unchanged
    return copied


@pytest.fixture
def types_schema(db: psycopg.Connection[Any]) -> str:
    schema = f"s_{uuid.uuid4().hex[:10]}"
    db.execute(f"CREATE SCHEMA {schema}")
    db.execute(f"CREATE TYPE {schema}.mood AS ENUM ('happy', 'sad')")
    db.execute(f"CREATE DOMAIN {schema}.positive AS INT CHECK (VALUE > 0)")
    db.execute(f"CREATE TYPE {schema}.pair AS (a INT, b TEXT)")
    return schema


# (payload, goes by COPY): each is its own batch, so a case COPY leaves to INSERT shows alone.
CASES: list[tuple[bytes, bool]] = [
    (b'{"seq": 1, "txt": "tab\\there", "num": 1.10, "i": 7, "b": true, "j": {"a": [1, 2.50]}, '
     b'"ts": "2024-05-01T10:00:00.123456Z"}', True),
    (b'{"seq": 2, "txt": "back\\\\slash \\\\N new\\nline cr\\r", "j": "a string"}', True),
    (b'{"seq": 3, "txt": "\\\\N"}', True),  # the text \N, not NULL
    (b'{"seq": 4, "txt": 1.10, "num": 1e2}', True),
    (b'{"seq": 5, "txt": true, "b": "yes"}', True),
    (b'{"seq": 6, "txt": null, "j": null, "arr": null, "js": null}', True),
    (b'{"seq": 7, "num": 12345678901234567890.123456789, "i": "42"}', True),
    (b'{"seq": 8, "txt": "\xc3\xbcn\xc3\xafc\xc3\xb8d\xc3\xa9 \xf0\x9f\x8e\x89", "j": [1, "x", null, {"k": 1e400}]}', True),
    (b'{"seq": 9, "mood": "happy", "dom": 5, "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "d": "2024-02-29"}', True),
    (b'{"txt": "keys in another order", "seq": 10, "ts": "2024-05-01 10:00:00+02"}', True),
    (b'{"seq": 11, "txt": -0.0}', False),  # the server prints 0.0
    (b'{"seq": 12, "txt": 1e40}', False),  # printed positionally by the server
    (b'{"seq": 13, "txt": {"o": 1}}', False),  # jsonb's own text, with spaces
    (b'{"seq": 14, "js": {"a": 1}}', False),  # json keeps jsonb's text
    (b'{"seq": 15, "arr": [1, 2]}', False),
    (b'{"seq": 16, "pt": {"a": 1, "b": "x"}}', False),
    (b'{"seq": 17, "i": 12345678901234567890123}', False),  # out of range: refused on both paths
    (b'{"seq": 18, "mood": "nope"}', False),
    (b'{"seq": 19, "dom": -1}', False),
    (b'{"seq": 20, "d": "2024-02-30"}', False),
    (b'{"seq": 21, "txt": "nul\\u0000char"}', False),
    (b'{"seq": 22, "txt": "\\ud800"}', False),  # a lone surrogate
    (b'{"seq": 23, "nope": 1}', False),  # a column the table lacks
]


@pytest.fixture
def pair(dsn: str, db: psycopg.Connection[Any], types_schema: str) -> Iterator[Pair]:
    pair = Pair(dsn, db, COLUMNS.format(schema=types_schema))
    yield pair
    pair.close()


def test_each_value_is_stored_as_the_insert_path_stores_it(pair: Pair, record_copies: list[list[Message]]) -> None:
    for payload, _ in CASES:
        batch = [Message(payload)]
        failures = pair.write(batch)
        assert failures["copy"] == failures["insert"], payload
    assert pair.contents("copy") == pair.contents("insert")
    assert len(pair.contents("copy")) == 16  # seq 17 to 23 are refused
    assert [batch[0].data for batch in record_copies] == [payload for payload, copied in CASES if copied]


def test_a_batch_with_a_key_already_written_goes_by_insert(pair: Pair, record_copies: list[list[Message]]) -> None:
    first = [Message(json.dumps({"seq": n, "txt": "first"}).encode()) for n in range(100)]
    replay = [Message(json.dumps({"seq": n, "txt": "second"}).encode()) for n in range(50, 150)]
    assert pair.write(first) == {"copy": [], "insert": []}
    assert pair.write(replay) == {"copy": [], "insert": []}
    assert pair.contents("copy") == pair.contents("insert")
    assert len(record_copies) == 1  # the replay was refused by COPY and written by INSERT


def test_the_pause_after_a_refused_batch(dsn: str, db: psycopg.Connection[Any],
                                         record_copies: list[list[Message]]) -> None:
    pair = Pair(dsn, db, "seq BIGINT PRIMARY KEY", copy_pause_batches=2)
    try:
        batches = [[Message(b'{"seq": %d}' % n)] for n in (1, 1, 2, 3, 4)]
        for batch in batches:
            pair.write(batch)
    finally:
        pair.close()
    # seq 1 by COPY; its repeat refused; the next two batches skip COPY; then COPY again.
    assert record_copies == [batches[0], batches[4]]


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.decimals(allow_nan=False, allow_infinity=False), st.text(max_size=12))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=6)


def _payload_text(value: Any) -> str:
    """JSON text, Decimals as numbers in their own notation (``1E+2``, ``-0``, ``0.10``)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_payload_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_payload_text(v) for v in value) + "]"
    return str(value) if isinstance(value, Decimal) else json.dumps(value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries({}, optional={"txt": _scalars, "num": _scalars, "j": _json}),
                     min_size=1, max_size=4))
def test_generated_rows_are_stored_alike(pair: Pair, rows: list[dict[str, Any]]) -> None:
    pair.truncate()
    batch = [Message(_payload_text({"seq": n, **row}).encode()) for n, row in enumerate(rows)]
    failures = pair.write(batch)
    assert failures["copy"] == failures["insert"]
    assert pair.contents("copy") == pair.contents("insert")
