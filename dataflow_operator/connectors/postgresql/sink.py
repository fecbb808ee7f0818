"""PostgreSQL sink (connectors.md §2.2): each batch is one transaction (:mod:`.batch_writer`).

Messages that cannot become rows (not JSON, not an object, nested too deep, columns the table lacks)
and rows the database refuses are reported one by one, so exactly those reach the error sink; no
exception from one message's data leaves :meth:`PostgreSQLSink.write`. A lost connection is re-opened
and the batch written again (at-least-once: a batch whose COMMIT was in flight may be written twice,
which ON CONFLICT absorbs when the table has a key). What does raise is about the environment
(:mod:`.server_errors`): a table dropped, or a column of it dropped, while the sink runs is one of
those, not bad data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import psycopg

from ...pipeline.connector import BatchLimits, ConnectorContext, Sink, WriteFailure
from ...pipeline.errors import ClassifiedError, EnvironmentalError, InvalidDataError
from ...pipeline.message import Message
from . import sink_sql
from .batch_writer import BatchWriter, WritePlan
from .connection import connect, connection_string, describe_connection, table_identifier
from .copy_writer import CopyAbandonedError, copy_batch
from .payloads import RAW_DATA_COLUMN, PayloadShape, Row, parse_payload
from .schema import TableInfo, column_name_problem, describe_table, infer_column_types, metadata_column_type
from .server_errors import environmental_error
from .tuning import PRODUCTION, SinkTuning

log = logging.getLogger(__name__)
_Items = TypeVar("_Items", list[Message], list[Row])

#: ``batchSize: 0`` means "flush on the timer only"; this still bounds one transaction.
TIMER_ONLY_BATCH = 10_000
DEFAULT_CONFLICT_KEY = "id"  # REF's literal default when the table has no primary key yet


class PostgreSQLSink(Sink):
    type_name: ClassVar[str] = "postgresql"

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext,
                 tuning: SinkTuning = PRODUCTION) -> None:
        super().__init__(config, context)
        self._tuning = tuning
        self._dsn = connection_string(config)
        self._table_name = str(config.get("table") or "")
        self._table = table_identifier(self._table_name)
        self._shape = PayloadShape(raw_mode=bool(config.get("rawMode")),
                                   flatten_metadata=bool(config.get("flattenMetadataColumns")),
                                   metadata_prefix=str(config.get("flattenMetadataColumnsPrefix") or ""))
        self._auto_create = bool(config.get("autoCreateTable"))
        self._upsert = bool(config.get("upsertMode"))
        self._conflict_key = _split_key(config.get("conflictKey"))
        self._version_column = (str(config["upsertVersionColumn"])
                                if config.get("upsertStrategy") == "ifNewer" else None)
        self._soft_delete_column = config.get("softDeleteColumn") or None
        self._timeout = config.get("connectionTimeout")
        self._conn: psycopg.Connection[Any] | None = None
        self._info: TableInfo | None = None
        self._columns_seen: set[str] = set()  # every column the table had while this sink ran
        self._stage_ready = False
        self._copy_pause = 0  # batches left before COPY is offered again
        self._warned_columns: set[str] = set()
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    def connect(self) -> None:
        conn = self._open()
        if self._info is None and self._auto_create and self._shape.raw_mode and not self._shape.flatten_metadata:
            for statement in sink_sql.create_raw_table(self._table):
                conn.execute(statement)
            self._describe(conn)
        if self._info is None and not self._auto_create:
            raise ClassifiedError(f"table {self._table_name!r} does not exist (set autoCreateTable to create it)",
                                  "invalid_data")
        if self._info is not None and self._upsert and not self._conflict_key and not self._info.primary_key:
            raise ClassifiedError(f"upsertMode needs conflictKey: table {self._table_name!r} has no primary key",
                                  "invalid_data")
        log.info("postgresql sink connected",
                 extra={"target": describe_connection(self._dsn), "table": self._table_name})

    def _open(self) -> psycopg.Connection[Any]:
        conn = connect(self._dsn, timeout=self._timeout)
        self._conn = conn
        self._stage_ready = False
        self._describe(conn)
        self.context.metrics.set_connected(True)
        return conn

    def _describe(self, conn: psycopg.Connection[Any]) -> None:
        self._info = describe_table(conn, self._table)
        if self._info is not None:
            self._columns_seen.update(self._info.columns)

    def batch_limits(self) -> BatchLimits:
        batch_size = int(self.config.get("batchSize", 1))
        interval = float(self.config.get("batchFlushIntervalSeconds", 10))
        if self.context.settings.ack_granularity == "message":
            batch_size = 1  # connectors.md §3: per-message acknowledgement means per-message flushes
        return BatchLimits(batch_size or TIMER_ONLY_BATCH, interval or None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._conn is not None:
            self._conn.close()
        self.context.metrics.set_connected(False)

    # -- writing -------------------------------------------------------------------------------

    def write(self, batch: list[Message]) -> list[WriteFailure]:
        if self._copy_pause:
            self._copy_pause -= 1
        elif self._copy_possible():
            try:
                return self._connected(self._copy_batch, batch)
            except CopyAbandonedError as exc:
                log.debug("batch for %s goes by INSERT: %s", self._table_name, exc)
                self._copy_pause = self._tuning.copy_pause_batches
        rows: list[Row] = []
        failures: list[WriteFailure] = []
        for message in batch:
            try:
                rows.append(parse_payload(message, self._shape))
            except InvalidDataError as exc:
                failures.append(WriteFailure(message, exc))
        if rows:
            failures.extend(self._connected(self._insert_rows, rows))
        return failures

    def _copy_possible(self) -> bool:
        """Plain inserts into a known table that COPY treats as INSERT."""
        return self._tuning.copy_first and not self._upsert and self._info is not None and self._info.copy_target

    def _copy_batch(self, conn: psycopg.Connection[Any], batch: list[Message]) -> list[WriteFailure]:
        if not self._copy_possible():  # a reconnect found the table gone or changed
            raise CopyAbandonedError("the table is not what it was")
        assert self._info is not None
        return copy_batch(conn, self._table, self._info, self._shape, batch)

    def _insert_rows(self, conn: psycopg.Connection[Any], rows: list[Row]) -> list[WriteFailure]:
        writable, refused = self._fit_to_table(conn, rows)
        if not writable:
            return refused
        writer = BatchWriter(conn, self._plan(), self._stage_ready, self._tuning.parameter_max_bytes)
        try:
            return refused + writer.write(writable)
        finally:
            self._stage_ready = writer.stage_ready

    def _connected(self, write: Callable[[psycopg.Connection[Any], _Items], list[WriteFailure]],
                   items: _Items) -> list[WriteFailure]:
        """``write(conn, items)``, on a new connection when the last one was lost (then retried for
        ~15 s); errors classified."""
        reconnect_delays: tuple[float, ...] = self._tuning.reconnect_delays
        for attempt, delay in enumerate((0.0, *reconnect_delays)):
            if delay:
                time.sleep(delay)
            try:
                conn = self._conn if self._conn is not None and not self._conn.closed else self._open()
                return write(conn, items)
            except (psycopg.OperationalError, psycopg.InterfaceError, ClassifiedError) as exc:
                if not self._connection_lost(exc) or attempt == len(reconnect_delays):
                    raise environmental_error(exc) from exc
                self.context.metrics.error("write", "connection_error")
                self.context.metrics.set_connected(False)
                log.warning("postgresql sink %s lost its connection (%s); reconnecting", self._table_name, exc)
                self._drop_connection()
            except psycopg.Error as exc:
                if isinstance(exc, (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)):
                    self._info = None  # the table changed under us: look again next time
                raise environmental_error(exc) from exc
        raise AssertionError("unreachable")

    def _connection_lost(self, exc: BaseException) -> bool:
        if isinstance(exc, ClassifiedError):
            return exc.error_type == "connection_error"
        return self._conn is None or self._conn.closed or self._conn.broken

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _plan(self) -> WritePlan:
        assert self._info is not None
        key = self._conflict_key or self._info.primary_key
        conflict = sink_sql.Conflict(key=key if self._upsert else (), update=self._upsert,
                                     version_column=self._version_column)
        return WritePlan(self._table, self._info, conflict, key, self._soft_delete_column)

    # -- the table -----------------------------------------------------------------------------

    def _fit_to_table(self, conn: psycopg.Connection[Any], rows: list[Row]) -> tuple[list[Row], list[WriteFailure]]:
        """Creates or widens the table when ``autoCreateTable`` allows; rows that still name
        columns the table lacks are refused (or, for flattened metadata, lose those columns)."""
        if self._info is None:
            self._describe(conn)
        refused: list[WriteFailure] = []
        if self._info is None:
            if not self._auto_create or self._columns_seen:
                # Gone while the sink ran (or never there): the environment's state, not the data's.
                raise EnvironmentalError(f"table {self._table_name!r} does not exist", "transient")
            rows, refused = _named_properly(rows)
            rows, refused = self._create_table(conn, rows, refused)
            if self._info is None:
                return [], refused
        known = self._info.columns
        signatures = {tuple(row.values) for row in rows}  # rows usually share a handful of key sets
        new_keys = {key for signature in signatures for key in signature if key not in known}
        dropped = sorted(new_keys & self._columns_seen)
        if dropped:
            raise EnvironmentalError(f"column(s) {', '.join(dropped)} of table {self._table_name!r} were dropped "
                                     f"while the sink ran", "transient")
        if new_keys and self._auto_create and not self._shape.raw_mode:
            rows, refused = _named_properly(rows, refused)
            types = infer_column_types({k: v for k, v in row.values.items() if k in new_keys} for row in rows)
            if types:
                conn.execute(sink_sql.add_columns(self._table, list(types.items())))
                log.info("added columns to %s: %s", self._table_name, ", ".join(types))
                self._describe(conn)
                assert self._info is not None
                known = self._info.columns
        if all(key in known for key in new_keys):
            return rows, refused
        writable: list[Row] = []
        for row in rows:
            unknown = [key for key in row.values if key not in known]
            if unknown and self._shape.flatten_metadata:
                self._warn_skipped(unknown)
                writable.append(row.with_values({k: v for k, v in row.values.items() if k in known}))
            elif unknown:
                refused.append(WriteFailure(row.message, InvalidDataError(
                    f"table {self._table_name} has no column(s) {', '.join(sorted(unknown))}")))
            else:
                writable.append(row)
        return writable, refused

    def _create_table(self, conn: psycopg.Connection[Any], rows: list[Row],
                      refused: list[WriteFailure]) -> tuple[list[Row], list[WriteFailure]]:
        """Creates the table from the first batch's rows; rows without the key columns are refused
        (and when none has them, nothing is created)."""
        if self._shape.flatten_metadata:
            columns = [("id", "BIGSERIAL"), (RAW_DATA_COLUMN, "JSONB")]
            seen = {RAW_DATA_COLUMN}
            prefix = self._shape.metadata_prefix
            for row in rows:
                for name, value in row.values.items():
                    if name not in seen and value is not None:
                        seen.add(name)
                        columns.append((name, metadata_column_type(name.removeprefix(prefix), value)))
            columns += [("created_at", "TIMESTAMPTZ NOT NULL DEFAULT now()"),
                        ("updated_at", "TIMESTAMPTZ NOT NULL DEFAULT now()")]
            primary_key: tuple[str, ...] = ("id",)
        else:
            types = infer_column_types(row.values for row in rows)
            columns = list(types.items())
            primary_key = self._conflict_key
            if self._upsert and not primary_key:
                primary_key = (DEFAULT_CONFLICT_KEY,)
            keyed = [row for row in rows if all(row.values.get(c) is not None for c in primary_key)]
            if len(keyed) < len(rows):
                kept = {id(row) for row in keyed}
                refused = refused + [WriteFailure(row.message, InvalidDataError(
                    f"cannot create table {self._table_name} from a row without its key column(s) "
                    f"{', '.join(primary_key)}")) for row in rows if id(row) not in kept]
                rows = keyed
                if not rows:
                    return rows, refused
                columns = list(infer_column_types(row.values for row in rows).items())
        conn.execute(sink_sql.create_table(self._table, columns, primary_key))
        log.info("created table %s (%s)", self._table_name, ", ".join(f"{n} {t}" for n, t in columns))
        self._describe(conn)
        return rows, refused

    def _warn_skipped(self, columns: list[str]) -> None:
        fresh = [c for c in columns if c not in self._warned_columns]
        if fresh:
            self._warned_columns.update(fresh)
            log.warning("metadata keys without a column in %s are not stored: %s", self._table_name,
                        ", ".join(sorted(fresh)))


def _split_key(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


def _named_properly(rows: list[Row], refused: list[WriteFailure] | None = None) -> tuple[list[Row], list[WriteFailure]]:
    """Before columns are created from the rows' keys: rows with a key that cannot name a column are
    refused, so one message cannot fail the CREATE or ALTER of the whole batch."""
    good: list[Row] = []
    refused = list(refused or [])
    for row in rows:
        problem = next((p for p in map(column_name_problem, row.values) if p is not None), None)
        if problem is None:
            good.append(row)
        else:
            refused.append(WriteFailure(row.message, InvalidDataError(problem)))
    return good, refused
