"""SQL of the PostgreSQL sink (pure: psycopg's ``sql`` composition, no connection).

Rows reach the table as JSON objects, turned into typed columns by the server
(``jsonb_populate_record``): numbers keep every digit, strings go through each column type's input
function (an RFC3339 string becomes a ``timestamptz``), objects and arrays fill ``jsonb`` and array
columns. Only the columns present in the payload are inserted, so the others get their defaults.
Plain inserts first try ``COPY`` straight into the table, with each value as the text
``jsonb_populate_record`` would give its column (:class:`.copy_format.CopyLine`); when that fails on a
row (a key already present, a bad value) the batch goes the way below, which finds the rows exactly.
The ways with ``INSERT … ON CONFLICT DO NOTHING`` or the upsert clause:

* up to a few MiB of rows: one ``INSERT … SELECT … FROM jsonb_populate_recordset($1::jsonb)``;
* more: ``COPY`` of the payloads, streamed, into a session temp table (no WAL, no constraints), then
  ``WITH moved AS (DELETE FROM stage RETURNING payload) INSERT INTO table SELECT …
  jsonb_populate_record(…) ON CONFLICT …`` — rows already present after a crash are skipped (or
  updated) instead of failing the batch, and the stage is empty again without another round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

TARGET_ALIAS = "t"


@dataclass(frozen=True, slots=True)
class Conflict:
    """What ON CONFLICT does. ``key`` empty: DO NOTHING on any unique index (plain insert mode)."""

    key: tuple[str, ...] = ()
    update: bool = False
    version_column: str | None = None  # upsertStrategy ifNewer

    def clause(self, columns: Sequence[str]) -> sql.Composable:
        if not self.update or not self.key:
            target = sql.SQL(" ({})").format(_names(self.key)) if self.key else sql.SQL("")
            return sql.SQL("ON CONFLICT{} DO NOTHING").format(target)
        updates = [c for c in columns if c not in self.key]
        if not updates:  # only the key arrived: nothing to update
            return sql.SQL("ON CONFLICT ({}) DO NOTHING").format(_names(self.key))
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in updates)
        clause = sql.SQL("ON CONFLICT ({}) DO UPDATE SET {}").format(_names(self.key), assignments)
        if self.version_column:
            stored = sql.Identifier(TARGET_ALIAS, self.version_column)
            clause = sql.SQL("{} WHERE {} IS NULL OR EXCLUDED.{} > {}").format(
                clause, stored, sql.Identifier(self.version_column), stored)
        return clause


def _names(columns: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)


STAGE = sql.Identifier("dataflow_stage")


def create_stage() -> sql.Composed:
    return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (payload jsonb)").format(STAGE)


def copy_into_stage() -> sql.Composed:
    return sql.SQL("COPY {} (payload) FROM STDIN").format(STAGE)


def copy_into_table(table: sql.Identifier, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(table, _names(columns))


def _fields(columns: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier("r", c) for c in columns)


def insert_from_stage(table: sql.Identifier, columns: Sequence[str], conflict: Conflict) -> sql.Composed:
    return sql.SQL("WITH moved AS (DELETE FROM {stage} RETURNING payload) "
                   "INSERT INTO {table} AS {alias} ({names}) SELECT {fields} "
                   "FROM moved, jsonb_populate_record(NULL::{table}, moved.payload) AS r {conflict}").format(
        stage=STAGE, table=table, alias=sql.Identifier(TARGET_ALIAS), names=_names(columns),
        fields=_fields(columns), conflict=conflict.clause(columns))


def insert_from_array(table: sql.Identifier, columns: Sequence[str], conflict: Conflict) -> sql.Composed:
    """One parameter: the rows as a JSON array text."""
    return sql.SQL("INSERT INTO {table} AS {alias} ({names}) SELECT {fields} "
                   "FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) AS r {conflict}").format(
        table=table, alias=sql.Identifier(TARGET_ALIAS), names=_names(columns), fields=_fields(columns),
        conflict=conflict.clause(columns))


def delete_by_key(table: sql.Identifier, key: Sequence[str], soft_delete_column: str | None) -> sql.Composed:
    """Physical delete, or ``softDeleteColumn = now()`` when configured."""
    match = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in key)
    if soft_delete_column:
        return sql.SQL("UPDATE {} SET {} = now() WHERE {}").format(
            table, sql.Identifier(soft_delete_column), match)
    return sql.SQL("DELETE FROM {} WHERE {}").format(table, match)


def create_table(table: sql.Identifier, columns: Sequence[tuple[str, str]],
                 primary_key: Sequence[str]) -> sql.Composed:
    """Types come from :mod:`.schema` (a fixed set of type names, never user text)."""
    definitions = [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(type_name))
                   for name, type_name in columns]
    if primary_key:
        definitions.append(sql.SQL("PRIMARY KEY ({})").format(_names(primary_key)))
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(table, sql.SQL(", ").join(definitions))


def add_columns(table: sql.Identifier, columns: Sequence[tuple[str, str]]) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} {}").format(table, sql.SQL(", ").join(
        sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(sql.Identifier(name), sql.SQL(type_name))
        for name, type_name in columns))


def create_raw_table(table: sql.Identifier) -> list[sql.Composed]:
    """rawMode's table (connectors.md §2.2), with a GIN index on the payload."""
    index = sql.Identifier(f"{table.as_string().replace(chr(34), '').replace('.', '_')[:50]}_data_gin")
    return [
        sql.SQL("CREATE TABLE IF NOT EXISTS {} (id BIGSERIAL PRIMARY KEY, data JSONB, _metadata JSONB, "
                "created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
                "deleted_at TIMESTAMPTZ)").format(table),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING GIN (data)").format(index, table),
    ]
