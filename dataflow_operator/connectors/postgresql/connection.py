"""Opening PostgreSQL connections, and descriptions of them that are safe to log."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ...observability.connection_strings import connection_string_secrets
from ...observability.redaction import register_secrets, scrub
from ...pipeline.errors import ClassifiedError, EnvironmentalError, classify

APPLICATION_NAME = "dataflow-operator"
DEFAULT_CONNECT_TIMEOUT = 10
UNPARSABLE = "unparsable connection string"

# libpq quotes the piece of a connection string it could not parse, and in a malformed string that
# piece may be part of a password: a parse error keeps its words and loses every quoted piece.
_QUOTED = re.compile(r'"[^\n]*"')


def describe_connection(dsn: str) -> str:
    """``host=… port=… dbname=…`` from the parsed string, never from its raw text (a password with
    an unescaped ``@`` or ``/`` ends up in the host; that piece is registered secret and scrubbed)."""
    try:
        parsed = conninfo_to_dict(dsn)
    except Exception:  # whatever libpq or psycopg refuse: nothing of the raw text is safe to show
        return UNPARSABLE
    return " ".join(f"{key}={parsed[key]}" for key in ("host", "port", "dbname") if parsed.get(key))


def connection_string(config: Mapping[str, Any]) -> str:
    dsn = config.get("connectionString")
    if not isinstance(dsn, str) or not dsn.strip():
        raise ClassifiedError("connectionString: required", "invalid_data")
    return dsn


def connect(dsn: str, *, timeout: int | None = None) -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are explicit) whose session time zone is UTC, so
    ``timestamp without time zone`` values and checkpoint times mean the same thing everywhere.

    The connection string's secrets are registered first, so that nothing libpq says about it (its
    errors quote hosts, ports and unparsable pieces) leaves the process with a piece of a password;
    the error raised here carries a description of the target, never the string itself.
    """
    register_secrets(connection_string_secrets(dsn))
    try:
        conn = psycopg.connect(dsn, autocommit=True, application_name=APPLICATION_NAME,
                               connect_timeout=timeout or DEFAULT_CONNECT_TIMEOUT)
        # SET rather than an ``options`` parameter, which would replace options given in the DSN.
        conn.execute("SET TIME ZONE 'UTC'")
    except psycopg.OperationalError as exc:
        error_type = classify(exc)
        if error_type == "unknown":
            error_type = "connection_error"
        # Not chained: the driver's exception would carry its text unscrubbed to whoever prints it.
        raise ClassifiedError(scrub(f"cannot connect to PostgreSQL ({describe_connection(dsn)}): {exc}"),
                              error_type) from None
    except (psycopg.Error, ValueError) as exc:
        # A string libpq cannot parse is the configuration's fault, never a message's.
        reason = scrub(_QUOTED.sub('"…"', str(exc).strip()))
        raise EnvironmentalError(f"connectionString: {UNPARSABLE} ({reason})", "invalid_data") from None
    return conn


def table_identifier(name: str) -> sql.Identifier:
    """``table`` or ``schema.table`` (each part may be double-quoted to keep dots or case)."""
    parts = [part.strip() for part in _split_qualified(name.strip())]
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise ClassifiedError(f"table: {name!r} is not a table name or schema.table", "invalid_data")
    return sql.Identifier(*parts)


def _split_qualified(name: str) -> list[str]:
    parts, current, quoted = [], [], False
    index = 0
    while index < len(name):
        char = name[index]
        if char == '"':
            if quoted and name[index + 1:index + 2] == '"':
                current.append('"')
                index += 1
            else:
                quoted = not quoted
        elif char == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts
