"""PostgreSQLSource against a real server: keyset reading, exact JSON, checkpoints, re-reads, reconnects."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest

from dataflow_operator.connectors.postgresql import PostgreSQLSource
from dataflow_operator.connectors.postgresql.settings import PostgreSQLSourceConfig
from dataflow_operator.pipeline.checkpoint import CheckpointStore, CorruptCheckpointError, MemoryCheckpointStore
from dataflow_operator.pipeline.errors import ClassifiedError
from dataflow_operator.pipeline.message import Message
from tests.processes import wait_for

from .harness import Harness, SourceRunner, pipeline_settings, typed_config


@pytest.fixture
def table(db: psycopg.Connection[Any]) -> str:
    name = f"src_{uuid.uuid4().hex[:10]}"
    db.execute(f"CREATE TABLE {name} (id BIGSERIAL PRIMARY KEY, name TEXT, amount NUMERIC, doc JSONB, "
               f"created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    return name


def insert(db: psycopg.Connection[Any], table: str, count: int, *, settled: bool = False) -> None:
    """``settled``: stamped a minute ago, so the rows are final when first read (a row stamped by a
    transaction that just committed settles a poll cycle later, when the next one sees no older
    transaction running)."""
    stamps = (", created_at, updated_at", ", now() - interval '1 minute'" * 2) if settled else ("", "")
    db.execute(f"INSERT INTO {table} (name, amount, doc{stamps[0]}) "
               f"SELECT 'row ' || i, 1.10 * i, jsonb_build_object('i', i){stamps[1]} "
               f"FROM generate_series(1, %s) AS i", [count])


def make_source(dsn: str, table: str, store: CheckpointStore | None = None,
                **config: Any) -> tuple[PostgreSQLSource, Harness]:
    settings = config.pop("settings", pipeline_settings(checkpoint_save_interval=0))
    harness = Harness("postgresql", "source", settings=settings, checkpoints=store or MemoryCheckpointStore())
    # table "": a query read with no table name (validation refuses an empty one)
    raw = {"connectionString": dsn, **({"table": table} if table else {}), "pollInterval": 1, **config}
    source = PostgreSQLSource(typed_config(PostgreSQLSourceConfig.parse, raw), harness.context)
    source.connect()
    return source, harness


def read(source: PostgreSQLSource, count: int) -> tuple[SourceRunner, list[Message]]:
    runner = SourceRunner(source).start()
    return runner, wait_for(lambda: runner.taken(count), 30, message=f"{count} rows")


def test_rows_as_exact_json_with_metadata(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    insert(db, table, 3)
    db.execute(f"UPDATE {table} SET name = 'changed', updated_at = now() + interval '1 second' WHERE id = 2")
    source, _ = make_source(dsn, table)
    runner, messages = read(source, 3)
    runner.stop()
    source.close()
    payloads = [json.loads(m.data) for m in messages]
    assert [p["id"] for p in payloads] == [1, 3, 2]  # ordered by (updated_at, id)
    assert b'"amount":1.10' in messages[0].data  # numerics keep their digits
    assert payloads[0]["doc"] == {"i": 1} and payloads[0]["created_at"].endswith("+00:00")
    assert [m.metadata for m in messages] == [
        {"table": table, "operation": "insert", "id": 1},
        {"table": table, "operation": "insert", "id": 3},
        {"table": table, "operation": "update", "id": 2},
    ]


def test_checkpoint_follows_contiguous_acks_and_survives_a_restart(dsn: str, db: psycopg.Connection[Any],
                                                                   table: str) -> None:
    db.execute(f"ALTER TABLE {table} ALTER COLUMN updated_at SET DEFAULT '2024-05-01T10:00:00.5Z'")
    insert(db, table, 5)
    store = MemoryCheckpointStore()
    settings = pipeline_settings(checkpoint_sync_on_ack=True, checkpoint_save_interval=0)
    source, _ = make_source(dsn, table, store, readBatchSize=2, settings=settings)  # pages of two
    runner, messages = read(source, 5)
    messages[0].acknowledge()
    messages[2].acknowledge()
    assert json.loads(store.load("postgresql") or "{}") == {
        "source": {"table": table, "changeTrackingColumn": "updated_at", "orderByColumn": "id"},
        "lastReadChangeTime": "2024-05-01T10:00:00.5Z", "lastReadOrderByValue": 1}
    messages[1].acknowledge()
    assert json.loads(store.load("postgresql") or "{}")["lastReadOrderByValue"] == 3
    runner.stop()
    source.close()

    resumed, _ = make_source(dsn, table, store)
    runner, again = read(resumed, 2)
    assert [m.metadata["id"] for m in again] == [4, 5]
    runner.stop()
    resumed.close()


def test_a_position_in_another_table_is_not_applied(dsn: str, db: psycopg.Connection[Any], table: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    insert(db, table, 3, settled=True)
    store = MemoryCheckpointStore()
    source, _ = make_source(dsn, table, store)
    runner, messages = read(source, 3)
    for message in messages:
        message.acknowledge()
    runner.stop()
    source.close()
    other = f"{table}_b"
    db.execute(f"CREATE TABLE {other} (LIKE {table} INCLUDING ALL)")
    db.execute(f"INSERT INTO {other} SELECT * FROM {table}")
    # The spec now names another table: the old position says nothing about it.
    moved, _ = make_source(dsn, other, store)
    runner, everything = read(moved, 3)
    assert sorted(m.metadata["id"] for m in everything) == [1, 2, 3]
    assert "a position in another table or ordering" in caplog.text
    runner.stop()
    moved.close()


def test_a_corrupt_checkpoint_names_its_store_and_the_reset(dsn: str, table: str) -> None:
    store = MemoryCheckpointStore()
    store.save("postgresql", '{"lastReadChangeTime": ')
    with pytest.raises(CorruptCheckpointError, match=r"checkpoint 'postgresql' does not hold a PostgreSQL position.*"
                                                           r"to read the source from the start instead"):
        make_source(dsn, table, store)


def test_updated_rows_are_read_again_and_reset_starts_over(dsn: str, db: psycopg.Connection[Any],
                                                          table: str) -> None:
    insert(db, table, 3)
    store = MemoryCheckpointStore()
    source, _ = make_source(dsn, table, store)
    runner, messages = read(source, 3)
    for message in messages:
        message.acknowledge()
    db.execute(f"UPDATE {table} SET name = 'again', updated_at = now() + interval '1 minute' WHERE id = 1")
    updated = wait_for(lambda: runner.taken(4), 30, message="the updated row")[3]
    assert json.loads(updated.data)["name"] == "again" and updated.metadata["operation"] == "update"
    updated.acknowledge()
    runner.stop()
    source.close()

    reset, _ = make_source(dsn, table, store, settings=pipeline_settings(checkpoint_reset=True))
    runner, everything = read(reset, 3)
    assert sorted(m.metadata["id"] for m in everything) == [1, 2, 3]
    runner.stop()
    reset.close()


def test_checkpoint_is_debounced_and_flushed_on_close(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    insert(db, table, 2, settled=True)
    store = MemoryCheckpointStore()
    source, _ = make_source(dsn, table, store, settings=pipeline_settings(checkpoint_save_interval=3600))
    runner, messages = read(source, 2)
    for message in messages:
        message.acknowledge()
    assert store.load("postgresql") is None  # within the save interval, only in memory
    runner.stop()
    source.flush_positions()
    assert json.loads(store.load("postgresql") or "{}")["lastReadOrderByValue"] == 2
    source.close()


def test_checkpoint_is_saved_by_the_poll_loop_without_sync_on_ack(dsn: str, db: psycopg.Connection[Any],
                                                                  table: str) -> None:
    insert(db, table, 2)
    store = MemoryCheckpointStore()
    source, _ = make_source(dsn, table, store, settings=pipeline_settings(checkpoint_save_interval=0.2))
    runner, messages = read(source, 2)
    for message in messages:
        message.acknowledge()
    wait_for(lambda: json.loads(store.load("postgresql") or "{}").get("lastReadOrderByValue") == 2, 10,
             message="the checkpoint saved between polls")
    runner.stop()
    source.close()


def test_query_mode_with_and_without_change_tracking(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    insert(db, table, 4)
    query = f"SELECT id, name, updated_at FROM {table} WHERE name LIKE 'row %' AND id % 2 = 0"
    tracked, _ = make_source(dsn, "", query=query, changeTrackingColumn="updated_at")
    runner, messages = read(tracked, 2)
    assert [m.metadata["id"] for m in messages] == [2, 4]
    assert set(json.loads(messages[0].data)) == {"id", "name", "updated_at"}
    runner.stop()
    tracked.close()

    verbatim, _ = make_source(dsn, "", query=query)  # no change tracking: every poll repeats the rows
    runner, repeated = read(verbatim, 4)
    assert [m.metadata["id"] for m in repeated] == [2, 4, 2, 4]
    assert all(m.ack is None for m in repeated)
    runner.stop()
    verbatim.close()


def test_missing_tracking_column_is_a_connect_error(dsn: str, db: psycopg.Connection[Any]) -> None:
    name = f"plain_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE TABLE {name} (id INT)")
    harness = Harness("postgresql", "source")
    source = PostgreSQLSource(typed_config(PostgreSQLSourceConfig.parse, {"connectionString": dsn, "table": name}), harness.context)
    with pytest.raises(ClassifiedError, match="updated_at"):
        source.connect()


def test_auto_create_table(dsn: str, db: psycopg.Connection[Any]) -> None:
    name = f"auto_{uuid.uuid4().hex[:8]}"
    source, _ = make_source(dsn, name, autoCreateTable=True)
    source.close()
    columns = [r[0] for r in db.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                                        "ORDER BY ordinal_position", [name]).fetchall()]
    assert columns == ["id", "created_at", "updated_at"]


def test_reconnects_after_the_connection_is_lost(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    insert(db, table, 1)
    source, harness = make_source(dsn, table)
    runner, first = read(source, 1)
    first[0].acknowledge()
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE application_name = 'dataflow-operator' AND datname = current_database()")
    wait_for(lambda: harness.errors("read", "connection_error") >= 1, 30, message="the read error counted")
    insert(db, table, 1)
    second = wait_for(lambda: runner.taken(2), 30, message="a row after reconnecting")[1]
    assert second.metadata["id"] == 2
    assert harness.connection_status() == 1
    runner.stop()
    source.close()


def _names(runner: SourceRunner) -> list[str]:
    return [json.loads(m.data)["name"] for m in runner.received()]


def _reader_role(dsn: str, db: psycopg.Connection[Any], table: str) -> str:
    """A role that may read ``table`` and nothing more (no pg_read_all_stats): the DSN to use it."""
    role = f"reader_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    db.execute(f"GRANT SELECT ON {table} TO {role}")
    return dsn.replace("://postgres@", f"://{role}@")


def _late_commit_run(dsn: str, db: psycopg.Connection[Any], table: str, *, source_dsn: str | None = None,
                     late_starts_first: bool = True, **config: Any) -> list[str]:
    """A transaction stamps its row with its start time (``now()``) and commits after a later row was
    committed and read. Returns the names read, in order, up to a row committed after both."""
    source, _ = make_source(source_dsn or dsn, table, **config)
    runner = SourceRunner(source)
    with psycopg.connect(dsn) as late:
        if late_starts_first:  # running before the source's first look at the database
            late.execute(f"INSERT INTO {table} (name) VALUES ('late')")
            runner.start()
        else:  # begun after the source has polled at least once
            db.execute(f"INSERT INTO {table} (name) VALUES ('before')")
            runner.start()
            wait_for(lambda: runner.taken(1), 30, message="the row committed before")
            late.execute(f"INSERT INTO {table} (name) VALUES ('late')")
        db.execute(f"INSERT INTO {table} (name) VALUES ('early')")
        if not config.get("changeTrackingDelay"):
            wait_for(lambda: "early" in _names(runner) or None, 30, message="the row committed first")
        late.commit()
    db.execute(f"INSERT INTO {table} (name) VALUES ('after')")

    def through_after() -> list[str] | None:
        names = _names(runner)
        return names if names[-1:] == ["after"] else None

    names = wait_for(through_after, 30, message="the row committed last")
    runner.stop()
    source.close()
    return [name for name in names if name != "before"]


@pytest.mark.parametrize("role", ["superuser", "without pg_read_all_stats"])
@pytest.mark.parametrize("late_starts_first", [True, False], ids=["late-began-first", "late-began-later"])
def test_a_late_committing_row_is_read_once_with_the_defaults(dsn: str, db: psycopg.Connection[Any], table: str,
                                                              role: str, late_starts_first: bool) -> None:
    # 'late' is stamped before 'early' but visible only after 'early' was read: the poll after its
    # commit still finds it, and 'early' is not delivered again. Without the privilege the source
    # cannot see when the writer's transaction began, and bounds it by its own earlier observation.
    source_dsn = _reader_role(dsn, db, table) if role != "superuser" else None
    names = _late_commit_run(dsn, db, table, source_dsn=source_dsn, late_starts_first=late_starts_first)
    assert names == ["early", "late", "after"]


def test_a_late_committing_row_of_a_sequence_valued_column(dsn: str, db: psycopg.Connection[Any]) -> None:
    name = f"seq_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE SEQUENCE {name}_version")
    db.execute(f"CREATE TABLE {name} (id BIGSERIAL PRIMARY KEY, name TEXT, "
               f"version BIGINT NOT NULL DEFAULT nextval('{name}_version'))")
    # 'late' takes version 1 and commits after 'early' (version 2) was read.
    assert _late_commit_run(dsn, db, name, changeTrackingColumn="version") == ["early", "late", "after"]


def test_the_checkpoint_never_passes_a_row_that_may_still_commit(dsn: str, db: psycopg.Connection[Any],
                                                                 table: str) -> None:
    store = MemoryCheckpointStore()
    settings = pipeline_settings(checkpoint_sync_on_ack=True, checkpoint_save_interval=0)
    source, _ = make_source(dsn, table, store, settings=settings)
    runner = SourceRunner(source).start()
    with psycopg.connect(dsn) as late:
        late.execute(f"INSERT INTO {table} (name) VALUES ('late')")
        db.execute(f"INSERT INTO {table} (name) VALUES ('early')")
        early = wait_for(lambda: runner.taken(1), 30, message="the row committed first")[0]
        early.acknowledge()
        runner.stop()
        source.close()
        assert store.load("postgresql") is None  # 'late' may still commit below 'early'
        late.commit()
    # A restart reads from the checkpoint: 'late' is there, and 'early' again (at-least-once).
    resumed, _ = make_source(dsn, table, store, settings=settings)
    runner = SourceRunner(resumed).start()
    again = wait_for(lambda: runner.taken(2), 30, message="both rows after the restart")
    assert sorted(json.loads(m.data)["name"] for m in again) == ["early", "late"]
    for message in again:
        message.acknowledge()
    # Once no older transaction runs, both settle and the checkpoint moves past them.
    wait_for(lambda: json.loads(store.load("postgresql") or "{}").get("lastReadOrderByValue") == 2, 30,
             message="the checkpoint past both rows")
    runner.stop()
    resumed.close()


def test_a_graceful_stop_settles_delivered_rows_but_never_an_undelivered_one(dsn: str, db: psycopg.Connection[Any],
                                                                          table: str) -> None:
    store = MemoryCheckpointStore()
    settings = pipeline_settings(checkpoint_sync_on_ack=True, checkpoint_save_interval=0)

    def final_now() -> bool:  # every stamp older than the horizon's margin: a stop may settle them all
        row = db.execute(f"SELECT now() - max(updated_at) > interval '1.5 seconds' FROM {table}").fetchone()
        return bool(row and row[0])

    def stop(source: PostgreSQLSource, runner: SourceRunner) -> Any:
        wait_for(final_now, 10, message="the rows older than the settle margin")
        runner.stop()
        source.flush_positions()  # what the engine calls after a graceful drain
        source.close()
        return json.loads(store.load("postgresql") or "{}").get("lastReadOrderByValue")

    # One read cycle only (a long poll interval): whatever settles, the stop settles.
    source, _ = make_source(dsn, table, store, settings=settings, pollInterval=3600)
    runner = SourceRunner(source)
    with psycopg.connect(dsn) as late:
        late.execute(f"INSERT INTO {table} (name) VALUES ('late')")  # id 1, stamped first
        db.execute(f"INSERT INTO {table} (name) VALUES ('early')")  # id 2
        runner.start()
        wait_for(lambda: runner.taken(1), 30, message="the row committed first")[0].acknowledge()
        late.commit()
    # 'late' is final now but was never delivered: the position must stay below it.
    assert stop(source, runner) is None
    resumed, _ = make_source(dsn, table, store, settings=settings, pollInterval=3600)
    runner = SourceRunner(resumed).start()
    for message in wait_for(lambda: runner.taken(2), 30, message="both rows after the restart"):
        message.acknowledge()
    # Both delivered and final: the stop moves the position past them, so the next start reads neither.
    assert stop(resumed, runner) == 2


def test_a_graceful_stop_right_after_the_read_waits_out_the_margin_only(dsn: str, db: psycopg.Connection[Any],
                                                                        table: str) -> None:
    """Rows stamped a moment ago are held back only by the horizon's one-second margin: a stop then
    waits it out, so a restart repeats nothing. A transaction older than the rows, still running,
    is a reason the wait cannot remove: the stop does not wait and leaves the rows to be read again."""
    store = MemoryCheckpointStore()
    settings = pipeline_settings(checkpoint_sync_on_ack=True, checkpoint_save_interval=0)

    def read_and_stop() -> Any:
        source, _ = make_source(dsn, table, store, settings=settings, pollInterval=3600)
        runner, messages = read(source, 3)
        for message in messages:
            message.acknowledge()
        runner.stop()
        source.flush_positions()
        source.close()
        return json.loads(store.load("postgresql") or "{}").get("lastReadOrderByValue")

    insert(db, table, 3)  # stamped now(): not final for another second when the source first looks
    assert read_and_stop() == 3

    store.delete("postgresql")
    with psycopg.connect(dsn) as older:
        older.execute("SELECT 1")  # a transaction that started before the rows were stamped
        time.sleep(0.05)
        db.execute(f"UPDATE {table} SET updated_at = now()")
        assert read_and_stop() is None
        older.rollback()


def test_concurrent_writers_with_random_commit_delays_lose_nothing(dsn: str, db: psycopg.Connection[Any],
                                                                   table: str) -> None:
    writers, per_writer = 4, 200
    store = MemoryCheckpointStore()
    # The shortest poll interval the API allows (whole seconds): many polls while the writers commit.
    source, _ = make_source(dsn, table, store, pollInterval=1)
    runner = SourceRunner(source).start()

    def write(writer: int) -> None:
        generator = random.Random(writer)
        with psycopg.connect(dsn) as conn:
            for i in range(per_writer):
                with conn.transaction():
                    conn.execute(f"INSERT INTO {table} (name) VALUES (%s)", [f"w{writer}-{i}"])
                    time.sleep(generator.uniform(0, 0.02))  # the commit comes late, by a random amount

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = {f"w{w}-{i}" for w in range(writers) for i in range(per_writer)}
    wait_for(lambda: set(_names(runner)) >= expected or None, 60, message="every row")
    for message in runner.received():
        message.acknowledge()
    # Everything settled: the checkpoint is past the last row, so no later poll reads any of them.
    last = db.execute(f"SELECT id FROM {table} ORDER BY updated_at DESC, id DESC LIMIT 1").fetchone()
    wait_for(lambda: json.loads(store.load("postgresql") or "{}").get("lastReadOrderByValue") == (last or [0])[0],
             30, message="the checkpoint at the last row")
    names = _names(runner)
    runner.stop()
    source.close()
    duplicates = {name: count for name, count in Counter(names).items() if count > 1}
    assert (len(names), duplicates) == (len(expected), {})


def test_change_tracking_delay_reads_rows_that_commit_within_it(dsn: str, db: psycopg.Connection[Any],
                                                                table: str) -> None:
    # An extra margin on top of the horizon: rows are read only once they are two seconds old.
    assert _late_commit_run(dsn, db, table, changeTrackingDelay=2) == ["late", "early", "after"]


def test_change_tracking_delay_needs_a_time_column(dsn: str, db: psycopg.Connection[Any], table: str) -> None:
    harness = Harness("postgresql", "source")
    source = PostgreSQLSource(typed_config(PostgreSQLSourceConfig.parse, {"connectionString": dsn, "table": table, "changeTrackingColumn": "id",
                               "changeTrackingDelay": 5}), harness.context)
    with pytest.raises(ClassifiedError, match=r"changeTrackingDelay needs a date or timestamp changeTrackingColumn; "
                                              r"'id' of .* is int8"):
        source.connect()
