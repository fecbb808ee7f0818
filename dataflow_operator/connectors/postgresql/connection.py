"""Opening PostgreSQL connections, and connection strings that are safe to log."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from ...processor.errors import ClassifiedError, classify

APPLICATION_NAME = "dataflow-operator"
DEFAULT_CONNECT_TIMEOUT = 10

# user:password@ in URIs, password=... in key/value strings and URI query parameters.
_URI_PASSWORD = re.compile(r"(://[^:/?#@\s]*:)([^@/?#\s]*)(@)")
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", re.IGNORECASE)


def mask_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***``."""
    return _KV_PASSWORD.sub(r"\1***", _URI_PASSWORD.sub(r"\1***\3", dsn))


def connection_string(config: Mapping[str, Any]) -> str:
    dsn = config.get("connectionString")
    if not isinstance(dsn, str) or not dsn.strip():
        raise ClassifiedError("connectionString: required", "invalid_data")
    return dsn


def connect(dsn: str, *, timeout: int | None = None) -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are explicit) whose session time zone is UTC, so
    ``timestamp without time zone`` values and checkpoint times mean the same thing everywhere.

    Errors never carry the connection string: libpq's messages name host and user, not the password.
    """
    try:
        conn = psycopg.connect(dsn, autocommit=True, application_name=APPLICATION_NAME,
                               connect_timeout=timeout or DEFAULT_CONNECT_TIMEOUT)
        # SET rather than an ``options`` parameter, which would replace options given in the DSN.
        conn.execute("SET TIME ZONE 'UTC'")
    except psycopg.OperationalError as exc:
        error_type = classify(exc)
        if error_type == "unknown":
            error_type = "connection_error"
        raise ClassifiedError(f"cannot connect to PostgreSQL ({mask_dsn(dsn)}): {exc}", error_type) from exc
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
