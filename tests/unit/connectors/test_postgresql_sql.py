"""SQL built by the PostgreSQL connectors (pure: composed and rendered without a server)."""

from __future__ import annotations

import pytest
from psycopg import sql

from dataflow_operator.connectors.postgresql import sink_sql, source_sql
from dataflow_operator.connectors.postgresql.connection import table_identifier
from dataflow_operator.connectors.postgresql.keyset import Keyset
from dataflow_operator.pipeline.errors import ClassifiedError

TABLE = sql.Identifier("public", "orders")


def text(composed: sql.Composable) -> str:
    return composed.as_string(None)


@pytest.mark.parametrize(("name", "parts"), [
    ("orders", '"orders"'), ("sales.orders", '"sales"."orders"'), ('"My.Table"', '"My.Table"'),
    ('s."T ""x"""', '"s"."T ""x"""'),
])
def test_table_names(name: str, parts: str) -> None:
    assert text(table_identifier(name)) == parts


@pytest.mark.parametrize("name", ["", "a.b.c", "a."])
def test_bad_table_names(name: str) -> None:
    with pytest.raises(ClassifiedError):
        table_identifier(name)


@pytest.mark.parametrize(("conflict", "clause"), [
    (sink_sql.Conflict(), "ON CONFLICT DO NOTHING"),
    (sink_sql.Conflict(key=("id",), update=True),
     'ON CONFLICT ("id") DO UPDATE SET "v" = EXCLUDED."v", "n" = EXCLUDED."n"'),
    (sink_sql.Conflict(key=("id", "v", "n"), update=True), 'ON CONFLICT ("id", "v", "n") DO NOTHING'),
    (sink_sql.Conflict(key=("id",), update=True, version_column="n"),
     'ON CONFLICT ("id") DO UPDATE SET "v" = EXCLUDED."v", "n" = EXCLUDED."n" '
     'WHERE "t"."n" IS NULL OR EXCLUDED."n" > "t"."n"'),
])
def test_conflict_clauses(conflict: sink_sql.Conflict, clause: str) -> None:
    assert text(conflict.clause(["id", "v", "n"])) == clause


def test_insert_statements() -> None:
    assert text(sink_sql.insert_from_array(TABLE, ["id", "v"], sink_sql.Conflict())) == (
        'INSERT INTO "public"."orders" AS "t" ("id", "v") SELECT "r"."id", "r"."v" '
        'FROM jsonb_populate_recordset(NULL::"public"."orders", %s::jsonb) AS r ON CONFLICT DO NOTHING')
    assert text(sink_sql.create_stage()) == 'CREATE TEMP TABLE IF NOT EXISTS "dataflow_stage" (payload jsonb)'
    assert text(sink_sql.copy_into_stage()) == 'COPY "dataflow_stage" (payload) FROM STDIN'
    assert text(sink_sql.insert_from_stage(TABLE, ["id", "v"], sink_sql.Conflict(key=("id",), update=True))) == (
        'WITH moved AS (DELETE FROM "dataflow_stage" RETURNING payload) INSERT INTO "public"."orders" AS "t" '
        '("id", "v") SELECT "r"."id", "r"."v" FROM moved, jsonb_populate_record(NULL::"public"."orders", '
        'moved.payload) AS r ON CONFLICT ("id") DO UPDATE SET "v" = EXCLUDED."v"')


def test_delete_statements() -> None:
    assert text(sink_sql.delete_by_key(TABLE, ["a", "b"], None)) == (
        'DELETE FROM "public"."orders" WHERE "a" = %s AND "b" = %s')
    assert text(sink_sql.delete_by_key(TABLE, ["id"], "deleted_at")) == (
        'UPDATE "public"."orders" SET "deleted_at" = now() WHERE "id" = %s')


def test_table_creation() -> None:
    assert text(sink_sql.create_table(TABLE, [("id", "BIGINT"), ("doc", "JSONB")], ["id"])) == (
        'CREATE TABLE IF NOT EXISTS "public"."orders" ("id" BIGINT, "doc" JSONB, PRIMARY KEY ("id"))')
    assert text(sink_sql.add_columns(TABLE, [("x", "TEXT"), ("y", "BOOLEAN")])) == (
        'ALTER TABLE "public"."orders" ADD COLUMN IF NOT EXISTS "x" TEXT, ADD COLUMN IF NOT EXISTS "y" BOOLEAN')
    raw = [text(statement) for statement in sink_sql.create_raw_table(TABLE)]
    assert "data JSONB, _metadata JSONB" in raw[0] and raw[1].startswith(
        'CREATE INDEX IF NOT EXISTS "public_orders_data_gin" ON "public"."orders" USING GIN (data)')


def test_poll_pages() -> None:
    query = source_sql.PollQuery(TABLE, "updated_at", "id", insert_flag=True)
    first, params = query.page(None, 100)
    assert text(first) == (
        'SELECT row_to_json(t)::text, "t"."updated_at", "t"."id", t.created_at = t.updated_at '
        'FROM "public"."orders" AS t WHERE "t"."updated_at" IS NOT NULL AND "t"."id" IS NOT NULL '
        'ORDER BY "t"."updated_at", "t"."id" LIMIT 100')
    assert params == []
    after, params = query.page(Keyset("2024-01-01T00:00:00Z", 7), 10)
    assert 'AND ("t"."updated_at", "t"."id") > (%s, %s)' in text(after)
    assert params == ["2024-01-01T00:00:00Z", "7"]
    legacy, params = query.page(Keyset("2024-01-01T00:00:00Z", None), 10)
    assert 'AND "t"."updated_at" > %s' in text(legacy) and params == ["2024-01-01T00:00:00Z"]
    delayed = source_sql.PollQuery(TABLE, "updated_at", "id", insert_flag=False, delay_seconds=2.5)
    statement, params = delayed.page(Keyset("2024-01-01T00:00:00Z", 7), 10)
    assert ('AND ("t"."updated_at", "t"."id") > (%s, %s) '
            'AND "t"."updated_at" <= statement_timestamp() - make_interval(secs => %s::float8) ORDER BY') in text(statement)
    assert params == ["2024-01-01T00:00:00Z", "7", "2.5"]


def test_user_queries_are_subqueries_with_literal_percent_signs() -> None:
    wrapped = source_sql.user_query("SELECT * FROM t WHERE name LIKE 'a%' AND id % 2 = 0;  ")
    assert text(wrapped) == "(SELECT * FROM t WHERE name LIKE 'a%%' AND id %% 2 = 0)"
    assert text(source_sql.verbatim("SELECT 1 AS id;", "id", False)) == (
        'SELECT row_to_json(t)::text, "t"."id" FROM (SELECT 1 AS id) AS t')
