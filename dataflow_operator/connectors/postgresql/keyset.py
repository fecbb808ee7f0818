"""The PostgreSQL source's read position: a ``(changeTrackingColumn, orderByColumn)`` keyset.

Checkpoint value (connectors.md §2.2)::

    {"lastReadChangeTime": "2024-05-01T10:00:00.123456Z", "lastReadOrderByValue": 42}

Times are written RFC3339 with up to nine fractional digits, trailing zeros trimmed (Go's
RFC3339Nano). A ``timestamp without time zone`` is written as if UTC: the session time zone is UTC,
so the value reads back unchanged. Integers stay JSON numbers; anything else is its text form.
Values are bound as untyped text, so PostgreSQL casts them to the column's own type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ...pipeline.timetext import rfc3339_nano_utc

CHECKPOINT_KEY = "postgresql"

JsonScalar = str | int | float


def position_value(value: Any) -> JsonScalar:
    """A column value as it is stored in the checkpoint."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return rfc3339_nano_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return value
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def bind_text(value: JsonScalar) -> str:
    """The text PostgreSQL parses back into the column's type (bound with an unknown type oid)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


#: What a keyset position is a position in: the table (or "query") and the two columns it orders
#: by. A position is never applied to another table or ordering (DESIGN.md, decision 9).
SourceIdentity = dict[str, str]


@dataclass(frozen=True, slots=True)
class Keyset:
    """The last position read or acknowledged. ``order`` is None for a legacy, time-only checkpoint."""

    change: JsonScalar
    order: JsonScalar | None

    @classmethod
    def of_row(cls, change: Any, order: Any) -> Keyset:
        return cls(position_value(change), position_value(order))

    def dumps(self, source: SourceIdentity) -> str:
        return json.dumps({"source": source, "lastReadChangeTime": self.change, "lastReadOrderByValue": self.order})

    @classmethod
    def loads(cls, text: str) -> tuple[Keyset, SourceIdentity | None]:
        """The position and what it is a position in (``None`` for a checkpoint written before
        positions recorded it). Raises ValueError for a checkpoint that is not of this source."""
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError(f"not a PostgreSQL source checkpoint: {text[:200]!r}") from None
        if not isinstance(data, dict) or data.get("lastReadChangeTime") is None:
            raise ValueError(f"not a PostgreSQL source checkpoint: {text[:200]!r}")
        change, order = data["lastReadChangeTime"], data.get("lastReadOrderByValue")
        for value in (change, order):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
                raise ValueError(f"checkpoint values must be strings or numbers: {text[:200]!r}")
        source = data.get("source")
        if source is not None and not (isinstance(source, dict)
                                       and all(isinstance(v, str) for v in source.values())):
            raise ValueError(f"checkpoint source must be an object of strings: {text[:200]!r}")
        return cls(change, order), source
