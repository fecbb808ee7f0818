"""PostgreSQL polling source (connectors.md §2.2).

Reads keyset pages ordered by ``(changeTrackingColumn, orderByColumn)``. A row that is updated after
it was read gets a newer change value and is read again.

No row is lost to a late commit. A row whose transaction stamped its change value early and
committed after the reader passed that value is found because each poll cycle starts at the
*settled* position, below which no row can still appear (:mod:`.commit_horizon`), and reads
everything above it again; rows already delivered there (by change and order value) are skipped, so
each row is delivered once. The position checkpointed is the settled one, moved only contiguously
as messages are acknowledged: a message's ticket carries its own position when it was settled when
read, else the settled position of that moment; a cycle that settles rows delivered earlier issues
a ticket of its own for the new settled position. After a restart the rows above the checkpoint are
delivered again (at-least-once).

Within a poll cycle pages follow one another until a short page; then the source sleeps
``pollInterval`` seconds. ``readBatchSize`` caps each page (0: pages of :data:`.settings.DEFAULT_PAGE_SIZE`,
which only bounds memory; the rows read are the same).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import psycopg

from ...pipeline.checkpoint import Checkpointer
from ...pipeline.connector import ConnectorContext, Source
from ...pipeline.errors import ClassifiedError, classify
from ...pipeline.message import Message
from ...pipeline.positions import ContiguousTracker
from . import source_sql
from .commit_horizon import SETTLE_MARGIN, CommitHorizon, HorizonKind, Observation
from .connection import connect, connection_string, describe_connection, table_identifier
from .keyset import CHECKPOINT_KEY, Keyset, SourceIdentity, position_value
from .settings import PostgreSQLSourceConfig

log = logging.getLogger(__name__)

CHUNK_SIZE = 500
MAX_RECONNECT_DELAY = 30.0
_TIME_TYPES = frozenset(psycopg.adapters.types[name].oid for name in ("date", "timestamp", "timestamptz"))
_SEQUENCE_TYPES = frozenset(psycopg.adapters.types[name].oid for name in ("int2", "int4", "int8", "numeric"))
#: Rows above the settled position remembered as delivered; beyond this a warning says what holds
#: the horizon back (a long transaction makes every poll read its whole window again).
WINDOW_WARNING_ROWS = 100_000
#: What :meth:`PostgreSQLSource._settle_delivered` returns when no delivered row waits to settle
#: (a change value itself may be None, so None cannot say it).
_NOTHING_HELD = object()
#: Past the margin by more than the server clock's resolution (microseconds), so one wait is enough.
_CLOCK_STEP = 0.01


class PostgreSQLSource(Source):
    type_name: ClassVar[str] = "postgresql"

    def __init__(self, settings: PostgreSQLSourceConfig, context: ConnectorContext) -> None:
        super().__init__(context)
        self.settings = settings
        self._dsn = connection_string(settings.connection_string)
        self._table_name = settings.table
        self._query_text = settings.query
        self._change_column = settings.tracking_column
        self._order_column = settings.order_by_column
        # Query mode without an explicit change-tracking column re-runs the query verbatim (REF).
        self._tracked = settings.tracked
        self._identity: SourceIdentity = {"table": self._label, "changeTrackingColumn": self._change_column,
                                          "orderByColumn": self._order_column}
        self._poll_interval = float(settings.poll_interval)
        self._page_size = settings.page_size
        self._delay = settings.change_tracking_delay
        self._conn: psycopg.Connection[Any] | None = None
        self._query: source_sql.PollQuery | None = None
        self._order_present = False
        self._checkpointer = Checkpointer(context.checkpoints, CHECKPOINT_KEY,
                                          save_interval=context.settings.checkpoint_save_interval,
                                          sync_on_ack=context.settings.checkpoint_sync_on_ack)
        self._tracker: ContiguousTracker[Keyset | None] = ContiguousTracker()
        self._settled: Keyset | None = None  # every row at or below it is delivered and final
        self._delivered: set[tuple[Any, Any]] = set()  # keys of rows above it already delivered
        self._largest_read: Any = None  # the largest change value read (sequence horizons)
        self._horizon = CommitHorizon("none")
        self._warned_unseen = False
        self._closed = False

    @property
    def _label(self) -> str:
        return self._table_name or "query"

    def _resume_from(self, saved: str) -> Keyset | None:
        """The saved position, if it is a position in this table with this ordering."""
        try:
            position, identity = Keyset.loads(saved)
        except ValueError as exc:
            raise self.context.checkpoints.corrupt(CHECKPOINT_KEY, f"does not hold a PostgreSQL position: {exc}") \
                from None
        if identity is not None and identity != self._identity:
            log.warning("the checkpoint is a position in another table or ordering; reading from the start",
                        extra={"checkpoint_source": identity, "source": self._identity})
            return None
        log.info("resuming %s after %s", self._label, saved)
        return position

    # -- lifecycle -----------------------------------------------------------------------------

    def connect(self) -> None:
        if self.context.settings.checkpoint_reset:
            log.info("checkpoint reset requested: reading %s from the start", self._label)
            self._checkpointer.reset()
        saved = self._checkpointer.load()
        if saved and self._tracked:
            self._settled = self._resume_from(saved)
        self._open()
        log.info("postgresql source connected", extra={"target": describe_connection(self._dsn), "table": self._label})

    def _open(self) -> None:
        conn = connect(self._dsn)
        try:
            self._describe(conn)
        except Exception:
            conn.close()
            raise
        self._conn = conn
        self.context.metrics.set_connected(True)

    def _describe(self, conn: psycopg.Connection[Any]) -> None:
        if self._query_text:
            source = source_sql.user_query(str(self._query_text))
        else:
            table = table_identifier(self._table_name)
            if self.settings.auto_create_table:
                conn.execute(source_sql.create_source_table(table))
            source = table
        try:
            # Parameters (none) given so that the doubled % of a user query is read back as one.
            cursor = conn.execute(source_sql.probe(source), [])
        except psycopg.errors.UndefinedTable as exc:
            raise ClassifiedError(f"table {self._table_name!r} does not exist", "invalid_data") from exc
        types = {column.name: column.type_code for column in cursor.description or ()}
        columns = set(types)
        missing = [c for c in (self._change_column, self._order_column) if c not in columns]
        if self._tracked and missing:
            raise ClassifiedError(f"{self._label} has no column(s) {', '.join(missing)} "
                                  f"(changeTrackingColumn/orderByColumn)", "invalid_data")
        if self._tracked and self._delay and types[self._change_column] not in _TIME_TYPES:
            type_name = conn.adapters.types.get(types[self._change_column])
            raise ClassifiedError(
                f"changeTrackingDelay needs a date or timestamp changeTrackingColumn; {self._change_column!r} of "
                f"{self._label} is {type_name.name if type_name else 'another type'}", "invalid_data")
        self._order_present = self._order_column in columns
        if self._tracked and self._horizon.kind == "none":  # kept across reconnects
            self._horizon = CommitHorizon(_horizon_kind(types[self._change_column]))
            if self._horizon.kind == "none":
                log.warning("%s: rows of transactions that commit late may be missed: the change-tracking column %r "
                            "is neither a date/timestamp nor a sequence-valued number (changeTrackingDelay is the "
                            "only margin)", self._label, self._change_column)
        self._query = source_sql.PollQuery(source, self._change_column, self._order_column,
                                           insert_flag={"created_at", "updated_at"} <= columns,
                                           delay_seconds=self._delay)

    def flush_positions(self) -> None:
        """At a graceful stop, every message read has been written: settle what now can be, so a
        restart does not read again rows that were delivered a moment before the stop. Rows held
        back only by the horizon's margin (stamped within the last second, nothing older running)
        are waited for, at most that margin: a rolling restart then repeats nothing."""
        try:
            held = self._settle_delivered()
            wait = None if held is _NOTHING_HELD else self._horizon.margin_left(held)
            if wait is not None:
                time.sleep(min(wait, SETTLE_MARGIN.total_seconds()) + _CLOCK_STEP)
                self._settle_delivered()
        except psycopg.Error as exc:  # best effort: the restart then reads those rows again
            log.warning("%s: could not settle the last rows read before stopping: %s", self._label, exc)
        self._checkpointer.flush()

    def _settle_delivered(self) -> Any:
        """Moves the settled position over the rows above it that are final now *and* were
        delivered, stopping at the first that is not: a final row that committed after the last
        read was never delivered, and the position must not pass it. Returns the change value of
        the delivered row it stopped at because that is not final yet, else :data:`_NOTHING_HELD`."""
        if not self._tracked or self._conn is None or self._query is None or not self._delivered:
            return _NOTHING_HELD
        self._observe(self._conn)
        position, settled = self._settled, self._settled
        while True:
            statement, params = self._query.page(position, self._page_size)
            rows = self._conn.execute(statement, params).fetchall()
            for row in rows:
                position = Keyset.of_row(row[1], row[2])
                delivered = (position.change, position.order) in self._delivered
                if not delivered or not self._horizon.settled(row[1]):
                    self._settle(settled)
                    return row[1] if delivered else _NOTHING_HELD
                settled = position
            if len(rows) < self._page_size:
                self._settle(settled)
                return _NOTHING_HELD

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._checkpointer.flush()
        finally:
            if self._conn is not None:
                self._conn.close()
            self.context.metrics.set_connected(False)

    # -- reading -------------------------------------------------------------------------------

    def read(self) -> Iterator[list[Message]]:
        stop = self.context.stop
        failures = 0
        while not stop.is_set():
            try:
                if self._tracked:
                    yield from self._read_cycle()
                else:
                    yield from self._read_verbatim()
                failures = 0
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                failures += 1
                self._lost_connection(exc, failures)
                continue
            self._sleep(self._poll_interval)

    def _read_cycle(self) -> Iterator[list[Message]]:
        """From the settled position, pages until one comes back short."""
        conn, query = self._require()
        self._observe(conn)
        position = self._settled
        sequence = self._horizon.kind == "sequence"
        above: set[tuple[Any, Any]] = set()  # keys read this cycle that are not settled yet
        while not self.context.stop.is_set():
            statement, params = query.page(position, self._page_size)
            rows = conn.execute(statement, params).fetchall()
            self._flush_if_due()  # a long catch-up never reaches the sleep between cycles
            messages: list[Message] = []
            settled = self._settled
            for row in rows:
                position = Keyset.of_row(row[1], row[2])
                key = (position.change, position.order)
                if self._horizon.settled(row[1]):
                    settled = position
                else:
                    above.add(key)
                if sequence and (self._largest_read is None or row[1] > self._largest_read):
                    self._largest_read = row[1]
                if key not in self._delivered:
                    self._delivered.add(key)
                    messages.append(self._tracked_message(row, position, settled))
            for start in range(0, len(messages), CHUNK_SIZE):
                yield messages[start:start + CHUNK_SIZE]
            self._settle(settled)
            if len(rows) < self._page_size:
                self._delivered = above  # what was delivered and is now settled, or gone, is not read again
                if len(above) > WINDOW_WARNING_ROWS:
                    log.warning("%s: %d rows above the settled position are read again every poll; a long-running "
                                "transaction in the database holds it back", self._label, len(above))
                return

    def _observe(self, conn: psycopg.Connection[Any]) -> None:
        if self._horizon.kind == "none":
            return
        rows = conn.execute(source_sql.RUNNING_TRANSACTIONS).fetchall()
        self._horizon.observe(Observation(rows[0][0], {row[1]: row[2] for row in rows if row[1] is not None}),
                              self._largest_read)
        if self._horizon.unseen_starts and not self._warned_unseen:
            self._warned_unseen = True
            log.warning("%s: this role cannot see when other roles' transactions started (grant it pg_read_all_stats); "
                        "late commits are still read, but rows settle only a poll later, and not while a "
                        "transaction that was running before the source started is still open", self._label)

    def _settle(self, settled: Keyset | None) -> None:
        """Moves the settled position, with a ticket of its own: the checkpoint follows it once every
        message delivered before is acknowledged."""
        if settled is None or settled == self._settled:
            return
        self._settled = settled
        self._ack(self._tracker.issue(settled))()

    def _tracked_message(self, row: tuple[Any, ...], position: Keyset, settled: Keyset | None) -> Message:
        # Acknowledged, this message vouches for the rows up to its own position when it is settled,
        # else only up to the settled position of now.
        ticket = self._tracker.issue(position if settled == position else settled)
        metadata = {"table": self._label, "operation": _operation(row, 3), "id": position_value(row[2])}
        return Message(data=row[0].encode("utf-8"), metadata=metadata, ack=self._ack(ticket))

    def _read_verbatim(self) -> Iterator[list[Message]]:
        conn, query = self._require()
        statement = source_sql.verbatim(str(self._query_text), self._order_column if self._order_present else None,
                                        query.insert_flag)
        chunk: list[Message] = []
        for row in conn.cursor().stream(statement):
            metadata: dict[str, Any] = {"table": self._label, "operation": _operation(row, 2)}
            if row[1] is not None:
                metadata["id"] = position_value(row[1])
            chunk.append(Message(data=row[0].encode("utf-8"), metadata=metadata))
            if len(chunk) >= CHUNK_SIZE:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _ack(self, ticket: int) -> Callable[[], None]:
        tracker, checkpointer, identity = self._tracker, self._checkpointer, self._identity

        def ack() -> None:
            position = tracker.ack(ticket)
            if position is not None:
                checkpointer.update(position.dumps(identity))

        return ack

    # -- failures and waiting ------------------------------------------------------------------

    def _lost_connection(self, exc: BaseException, failures: int) -> None:
        error_type = classify(exc)
        self.context.metrics.error("read", "connection_error" if error_type == "unknown" else error_type)
        self.context.metrics.set_connected(False)
        log.warning("postgresql source %s: %s; reconnecting", self._label, exc)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        delay = min(MAX_RECONNECT_DELAY, 2.0 ** (failures - 1))
        while not self._sleep(delay):
            try:
                self._open()
                log.info("postgresql source %s reconnected", self._label)
                return
            except (ClassifiedError, psycopg.Error) as retry_exc:
                self.context.metrics.error("read", classify(retry_exc))
                delay = min(MAX_RECONNECT_DELAY, delay * 2)

    def _sleep(self, seconds: float) -> bool:
        """Wait, persisting the acknowledged position when it is due; True when stopping."""
        deadline = time.monotonic() + seconds
        stop = self.context.stop
        while True:
            self._flush_if_due()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return stop.is_set()
            if stop.wait(min(remaining, 1.0)):
                return True

    def _flush_if_due(self) -> None:
        try:
            self._checkpointer.flush_if_due()
        except Exception as exc:  # kept pending and retried; reading goes on
            self.context.metrics.error("checkpoint", classify(exc))
            log.warning("saving the checkpoint of %s failed: %s", self._label, exc)

    def _require(self) -> tuple[psycopg.Connection[Any], source_sql.PollQuery]:
        if self._conn is None or self._query is None:
            raise psycopg.OperationalError("not connected")
        return self._conn, self._query


def _horizon_kind(type_oid: int) -> HorizonKind:
    if type_oid in _TIME_TYPES:
        return "time"
    return "sequence" if type_oid in _SEQUENCE_TYPES else "none"


def _operation(row: tuple[Any, ...], flag_index: int) -> str:
    """``insert`` when the row was never updated (created_at = updated_at), ``update`` when it was.
    Without both columns a row cannot be told apart and is reported as ``insert``."""
    if len(row) > flag_index and row[flag_index] is False:
        return "update"
    return "insert"
