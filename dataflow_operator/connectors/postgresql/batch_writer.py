"""One batch, one transaction: rows grouped and written fast, failing rows found exactly.

Order is kept: the batch is cut into runs of writes and runs of deletes. Upserts are cut further into
*waves* so no key appears twice in one statement (``ON CONFLICT DO UPDATE`` cannot touch a row twice):
the n-th occurrence of a key goes into wave n, and waves run in order — the same result as applying
the messages one by one, with every message really applied.

A statement that fails on a row's data (:func:`.server_errors.is_row_level`) is retried on halves,
each in a savepoint, down to single rows: ``k`` bad rows among ``n`` cost about ``2k·log2(n)`` extra
statements, and every good row is written in the same transaction. Any other error aborts the batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ...pipeline.connector import WriteFailure
from ...pipeline.errors import ClassifiedError
from . import sink_sql
from .copy_format import copy_text
from .payloads import Row, key_text
from .schema import TableInfo
from .server_errors import is_row_level, row_error


@dataclass(frozen=True, slots=True)
class WritePlan:
    table: sql.Identifier
    info: TableInfo
    conflict: sink_sql.Conflict
    key: tuple[str, ...]  # for deletes (and upsert waves); empty when the table has none
    soft_delete_column: str | None


class BatchWriter:
    """Writes the rows of one batch on ``conn`` (autocommit; the transaction is opened here)."""

    def __init__(self, conn: psycopg.Connection[Any], plan: WritePlan, stage_ready: bool,
                 parameter_max_bytes: int) -> None:
        self.conn = conn
        self.parameter_max_bytes = parameter_max_bytes  # larger groups go through the COPY stage
        self.plan = plan
        self.stage_ready = stage_ready  # the temp stage exists on this connection
        self.failures: list[WriteFailure] = []

    def write(self, rows: list[Row]) -> list[WriteFailure]:
        steps = list(self._steps(rows))
        if not self.stage_ready and any(c is not None and not self._fits_parameter(g) for c, g in steps):
            # Outside the batch transaction, so that a rollback cannot undo it.
            self.conn.execute(sink_sql.create_stage())
            self.stage_ready = True
        with self.conn.transaction():
            for columns, group in steps:
                if columns is None:
                    self._bisect(group, self._delete)
                else:
                    self._bisect(group, functools.partial(self._insert, columns=columns))
        return self.failures

    # -- planning ------------------------------------------------------------------------------

    def _steps(self, rows: list[Row]) -> Iterator[tuple[tuple[str, ...] | None, list[Row]]]:
        """``(columns, rows)`` to insert, or ``(None, rows)`` to delete, in batch order."""
        for delete, run in _runs(rows):
            if delete:
                yield None, run
                continue
            waves = _waves(run, self.plan.key) if self.plan.conflict.update else [run]
            for wave in waves:
                groups: dict[tuple[str, ...], list[Row]] = {}
                for row in wave:
                    groups.setdefault(tuple(row.values), []).append(row)
                yield from groups.items()

    # -- statements ----------------------------------------------------------------------------

    def _insert(self, rows: list[Row], columns: tuple[str, ...]) -> None:
        plan = self.plan
        with self.conn.cursor() as cursor:
            if self._fits_parameter(rows):
                array = b"[" + b",".join(row.text for row in rows) + b"]"
                cursor.execute(sink_sql.insert_from_array(plan.table, columns, plan.conflict),
                               [array.decode("utf-8")])
                return
            with cursor.copy(sink_sql.copy_into_stage()) as copy:
                copy.write(b"".join(copy_text(row.text) for row in rows))
            cursor.execute(sink_sql.insert_from_stage(plan.table, columns, plan.conflict))

    def _key_texts(self, row: Row) -> list[str | None]:
        return [key_text(row.values[c]) for c in self.plan.key]

    def _delete(self, rows: list[Row]) -> None:
        plan = self.plan
        params = []
        for row in rows:
            if not plan.key:
                self.failures.append(WriteFailure(row.message, ClassifiedError(
                    "delete needs a key: the table has no primary key and no conflictKey is set", "invalid_data")))
                continue
            missing = [c for c in plan.key if row.values.get(c) is None]
            if missing:
                # Not a database error: report it for this row alone, without failing the others.
                self.failures.append(WriteFailure(row.message, ClassifiedError(
                    f"delete needs the key column(s) {', '.join(missing)} in the payload", "invalid_data")))
                continue
            params.append(self._key_texts(row))
        if params:
            with self.conn.cursor() as cursor:
                cursor.executemany(sink_sql.delete_by_key(plan.table, plan.key, plan.soft_delete_column), params)

    # -- exact failures ------------------------------------------------------------------------

    def _fits_parameter(self, rows: list[Row]) -> bool:
        return sum(len(row.text) for row in rows) + len(rows) <= self.parameter_max_bytes

    def _bisect(self, rows: list[Row], write: Callable[[list[Row]], None]) -> None:
        failures_before = len(self.failures)
        try:
            with self.conn.transaction():  # a savepoint inside the batch transaction
                write(rows)
        except (psycopg.Error, UnicodeEncodeError) as exc:
            if not is_row_level(exc):
                raise
            del self.failures[failures_before:]  # the part is retried; its own reports go again
            if len(rows) == 1:
                self.failures.append(WriteFailure(rows[0].message, row_error(exc)))
                return
            middle = len(rows) // 2
            self._bisect(rows[:middle], write)
            self._bisect(rows[middle:], write)


def _runs(rows: list[Row]) -> Iterator[tuple[bool, list[Row]]]:
    """Consecutive rows of the same kind (write or delete)."""
    run: list[Row] = []
    for row in rows:
        if run and run[-1].delete != row.delete:
            yield run[-1].delete, run
            run = []
        run.append(row)
    if run:
        yield run[-1].delete, run


def _waves(rows: list[Row], key: tuple[str, ...]) -> list[list[Row]]:
    """The n-th occurrence of each key in wave n. Rows without the whole key cannot conflict with
    one another through it and go in the first wave."""
    waves: list[list[Row]] = []
    seen: dict[tuple[str | None, ...], int] = {}
    for row in rows:
        values = tuple(key_text(row.values.get(c)) for c in key)
        if not key or None in values:
            index = 0
        else:
            index = seen.get(values, 0)
            seen[values] = index + 1
        while len(waves) <= index:
            waves.append([])
        waves[index].append(row)
    return waves
