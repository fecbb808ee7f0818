"""What an error while writing says: one row's fault, or the environment's.

A row's fault is an error of the classes the server raises for the data of a row (SQLSTATE 21
cardinality, 22 data, 23 integrity, 54 limits such as a too-deep document or an oversized index row,
P0 a trigger's RAISE), or a value the client cannot send (a lone surrogate, a NUL in a text
parameter). Such a row is reported alone (:func:`row_error`) and its neighbours are written.

Everything else is about the sink, never the message (:func:`environmental_error`): a lost connection
or an administrator's shutdown, refused credentials or privileges, a table dropped or altered while
the sink runs, a disk full or read-only server, a cancelled statement, a deadlock, or an error of the
sink's own SQL. The batch stays unacknowledged and nothing goes to the error sink.
"""

from __future__ import annotations

import psycopg

from ...pipeline.errors import ClassifiedError, EnvironmentalError, classify

_ROW_LEVEL_CLASSES = ("21", "22", "23", "54", "P0")
#: SQLSTATE prefix → error_type, most specific first; anything else is "unknown" (still environmental).
_ENVIRONMENTAL_TYPES = (
    ("57014", "timeout"),  # statement_timeout or a cancel
    ("57P", "connection_error"),  # administrator or crash shutdown, cannot connect now, database dropped
    ("08", "connection_error"),
    ("28", "auth_error"),
    ("42501", "auth_error"),  # insufficient privilege (a revoked INSERT)
    ("42P01", "transient"),  # the table was dropped …
    ("42703", "transient"),  # … or lost a column
    ("3D000", "transient"),  # the database is gone
    ("25006", "transient"),  # read-only transaction (a standby, default_transaction_read_only)
    ("53", "transient"),  # disk full, out of memory, too many connections
    ("40", "transient"),  # serialization failure, deadlock
    ("55", "transient"),  # lock not available, object in use
    ("58", "transient"),  # I/O error
    ("XX", "transient"),  # internal error, data corrupted
)
#: Bound on an error text taken from the server: its primary message may quote a whole value.
MAX_MESSAGE_CHARS = 300


def is_row_level(exc: BaseException) -> bool:
    if isinstance(exc, UnicodeEncodeError):  # a lone surrogate cannot be sent as UTF-8
        return True
    if isinstance(exc, psycopg.DataError) and exc.sqlstate is None:  # refused by the client: NUL in text
        return True
    return isinstance(exc, psycopg.Error) and (exc.sqlstate or "").startswith(_ROW_LEVEL_CLASSES)


def row_error(exc: BaseException) -> ClassifiedError:
    """The per-row error: class 23 is a constraint violation, the rest is data the table cannot take."""
    if not isinstance(exc, psycopg.Error):
        return ClassifiedError(_bounded(f"a value cannot be sent: {exc}"), "invalid_data")
    state = exc.sqlstate or ""
    error_type = "constraint_violation" if state.startswith("23") else "invalid_data"
    return ClassifiedError(_server_text(exc), error_type)


def environmental_error(exc: BaseException) -> ClassifiedError:
    """``exc`` as an error that never blames the batch's messages."""
    if isinstance(exc, ClassifiedError) and exc.environmental:
        return exc
    if isinstance(exc, psycopg.Error) and exc.sqlstate:
        state = exc.sqlstate
        error_type = next((kind for prefix, kind in _ENVIRONMENTAL_TYPES if state.startswith(prefix)), "unknown")
        return EnvironmentalError(_server_text(exc), error_type)
    error_type = classify(exc)
    if error_type == "unknown" and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        error_type = "connection_error"
    return EnvironmentalError(_bounded(str(exc)), error_type)


def _server_text(exc: psycopg.Error) -> str:
    # The primary message only: the server's DETAIL quotes row values ("Failing row contains ..."),
    # which would carry payload data into logs.
    return f"{_bounded(exc.diag.message_primary or type(exc).__name__)} [SQLSTATE {exc.sqlstate}]"


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "…"
