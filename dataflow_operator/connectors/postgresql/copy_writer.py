"""Plain inserts by ``COPY`` straight into the table, parsed while they stream.

The sink's non-upsert semantics is ``INSERT … ON CONFLICT DO NOTHING``. When no row of a batch
conflicts or fails, ``COPY`` of the same values stores exactly that, several times faster: the cells
are the text ``jsonb_populate_record`` would hand each column (:class:`.copy_format.CopyLine`). Each
message is parsed just before its row is written, so the server works through the stream while the
client parses the rest (parsing the whole batch first and copying after ran at 185k rows/s in
bench/bench_postgresql_sink.py, streamed 216k).

Anything this path does not cover leaves nothing behind: the transaction is rolled back and
:class:`CopyAbandonedError` is raised, and the caller writes the batch by the INSERT path
(:mod:`.batch_writer`), which skips conflicts and finds failing rows exactly. That happens on a key
already present (a replay after a crash), a value the table refuses, a delete, a column the table
lacks, or a value without an equal COPY text.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import psycopg

from ...pipeline.connector import WriteFailure
from ...pipeline.errors import InvalidDataError
from ...pipeline.message import Message
from . import sink_sql
from .copy_format import CopyLine, NotCopyableError
from .payloads import PayloadShape, Row, parse_payload
from .schema import TableInfo
from .server_errors import is_row_level

#: About 8 KB per write. With psycopg's own 32 KiB buffering the client waited ~1.65 ms per 1000-row
#: batch for the server to finish after the last row; with 8 KB chunks ~1.07 ms.
CHUNK_CHARS = 8 * 1024


class CopyAbandonedError(Exception):
    """The batch was not written by COPY; nothing of it is in the table."""


def copy_batch(conn: psycopg.Connection[Any], table: psycopg.sql.Identifier, info: TableInfo,
               shape: PayloadShape, batch: list[Message]) -> list[WriteFailure]:
    """Writes ``batch`` in one transaction of COPY statements (one per run of rows with the same
    columns) and returns the messages that are not rows at all; raises :class:`CopyAbandonedError`."""
    failures: list[WriteFailure] = []
    try:
        with conn.transaction(), conn.cursor() as cursor:
            for columns, run in itertools.groupby(_rows(batch, shape, failures), key=lambda row: tuple(row.values)):
                if not all(column in info.columns for column in columns):
                    raise CopyAbandonedError("a column the table lacks")
                line = CopyLine(tuple(info.columns[column].kind for column in columns))
                with cursor.copy(sink_sql.copy_into_table(table, columns)) as copy:
                    # Sent in small chunks: the server parses each while the client makes the next.
                    chunk: list[str] = []
                    size = 0
                    for row in run:
                        text = line(row.values)
                        chunk.append(text)
                        size += len(text)
                        if size >= CHUNK_CHARS:
                            copy.write("\n".join(chunk) + "\n")
                            chunk.clear()
                            size = 0
                    if chunk:
                        copy.write("\n".join(chunk) + "\n")
    except (NotCopyableError, UnicodeEncodeError) as exc:  # a lone surrogate: not UTF-8 (nor for jsonb)
        raise CopyAbandonedError(str(exc)) from exc
    except psycopg.Error as exc:
        if is_row_level(exc):  # a row the server refused; anything else is the caller's to handle
            raise CopyAbandonedError(str(exc)) from exc
        raise
    return failures


def _rows(batch: list[Message], shape: PayloadShape, failures: list[WriteFailure]) -> Iterator[Row]:
    for message in batch:
        try:
            row = parse_payload(message, shape)
        except InvalidDataError as exc:
            failures.append(WriteFailure(message, exc))
            continue
        if row.delete:
            raise CopyAbandonedError("a delete")
        yield row
