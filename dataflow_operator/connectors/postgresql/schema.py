"""The sink table: what it looks like (introspection) and what to create (type inference, pure).

Inference for ``autoCreateTable`` looks at every row of the first batch, per key, at the non-null
values:

=========================  ==================
values seen                column type
=========================  ==================
booleans                   BOOLEAN
integers within int64      BIGINT
other numbers              NUMERIC (exact: JSON numbers are parsed as decimals, never floats)
strings                    TEXT
objects / arrays           JSONB
a mix of kinds             JSONB (keeps each value's JSON type)
only nulls                 TEXT
=========================  ==================

Flattened metadata columns (rawMode) are typed from Python values instead: datetimes and the key
``timestamp`` become TIMESTAMPTZ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_name: str


@dataclass(slots=True)
class TableInfo:
    columns: dict[str, Column] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    has_unique_index: bool = False  # any unique or exclusion index: ON CONFLICT can act


_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
WHERE a.attrelid = %(rel)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_PRIMARY_KEY = """
SELECT a.attname
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %(rel)s::regclass AND i.indisprimary
ORDER BY k.ord
"""
_UNIQUE = """
SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = %(rel)s::regclass AND (indisunique OR indisexclusion))
"""


def describe_table(conn: psycopg.Connection[Any], table: sql.Identifier) -> TableInfo | None:
    """The table's columns and keys, or None when it does not exist."""
    rel = table.as_string(conn)
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [rel]).fetchone()
    if not exists or not exists[0]:
        return None
    params = {"rel": rel}
    columns = {name: Column(name, type_name) for name, type_name in conn.execute(_COLUMNS, params).fetchall()}
    primary_key = tuple(row[0] for row in conn.execute(_PRIMARY_KEY, params).fetchall())
    unique = conn.execute(_UNIQUE, params).fetchone()
    return TableInfo(columns, primary_key, bool(unique and unique[0]))


def infer_column_types(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Column name → SQL type, in order of first appearance (see the module table)."""
    kinds: dict[str, set[str]] = {}
    for row in rows:
        for key, value in row.items():
            seen = kinds.setdefault(key, set())
            if value is not None:
                seen.add(_kind(value))
    return {key: _type_for(seen) for key, seen in kinds.items()}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if _INT64[0] <= value <= _INT64[1] else "number"
    if isinstance(value, (float, Decimal)):
        return "number"
    if isinstance(value, str):
        return "text"
    return "json"


def _type_for(kinds: set[str]) -> str:
    if not kinds:
        return "TEXT"
    if kinds <= {"int", "number"}:
        return "BIGINT" if kinds == {"int"} else "NUMERIC"
    if len(kinds) > 1:
        return "JSONB"
    return {"bool": "BOOLEAN", "text": "TEXT", "json": "JSONB"}[next(iter(kinds))]


def metadata_column_type(key: str, value: Any) -> str:
    """A flattened metadata column's type, from the first value seen (connectors.md §2.2)."""
    if key == "timestamp" or isinstance(value, datetime):
        return "TIMESTAMPTZ"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, (float, Decimal)):
        return "NUMERIC"
    if isinstance(value, (dict, list)):
        return "JSONB"
    return "TEXT"
