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
from typing import Any, Literal

import psycopg
from psycopg import sql

_INT64 = (-(2**63), 2**63 - 1)


#: How ``jsonb_populate_record`` fills a column, by the column's type after one level of domain:
#: ``scalar`` — the type's input function reads the JSON scalar's text (what COPY text does);
#: ``jsonb`` — the JSON value itself; ``other`` (json, arrays, composites, nested domains) — a
#: conversion of its own that COPY would not reproduce.
ColumnKind = Literal["scalar", "jsonb", "other"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_name: str
    kind: ColumnKind = "scalar"


@dataclass(slots=True)
class TableInfo:
    columns: dict[str, Column] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    has_unique_index: bool = False  # any unique or exclusion index: ON CONFLICT can act
    # A plain or partitioned table without rules or row security: COPY FROM behaves as INSERT there
    # (COPY ignores rules, refuses row security and views).
    copy_target: bool = False


_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod),
       CASE WHEN b.typtype = 'd' OR b.oid = 'json'::regtype OR b.typcategory = 'A' OR b.typtype = 'c' THEN 'other'
            WHEN b.oid = 'jsonb'::regtype THEN 'jsonb'
            ELSE 'scalar' END
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = %(rel)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_COPY_TARGET = """
SELECT relkind IN ('r', 'p') AND NOT relhasrules AND NOT relrowsecurity FROM pg_class WHERE oid = %(rel)s::regclass
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
    columns = {name: Column(name, type_name, kind)
               for name, type_name, kind in conn.execute(_COLUMNS, params).fetchall()}
    primary_key = tuple(row[0] for row in conn.execute(_PRIMARY_KEY, params).fetchall())
    unique = conn.execute(_UNIQUE, params).fetchone()
    copy_target = conn.execute(_COPY_TARGET, params).fetchone()
    return TableInfo(columns, primary_key, bool(unique and unique[0]), bool(copy_target and copy_target[0]))


#: PostgreSQL truncates longer identifiers (NAMEDATALEN - 1 bytes), so a longer key would name
#: another column than the one created for it.
MAX_NAME_BYTES = 63


def column_name_problem(name: str) -> str | None:
    """Why a payload key cannot name a new column, or None when it can."""
    shown = repr(name[:MAX_NAME_BYTES + 1])
    if not name:
        return "an empty key cannot name a column"
    if "\x00" in name:
        return f"key {shown} cannot name a column: it contains NUL"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return f"key {shown} cannot name a column: it is not valid Unicode (a lone surrogate)"
    if len(encoded) > MAX_NAME_BYTES:
        return f"key {shown}… cannot name a column: longer than {MAX_NAME_BYTES} bytes"
    return None


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
