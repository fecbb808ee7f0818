"""COPY text format (pure): rows as lines for the table, payloads as lines for the stage.

A line holds one cell per column, tab-separated, ``\\N`` for NULL, with backslash, tab, newline and
carriage return escaped inside cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .payloads import scalar_text, value_json_text
from .schema import ColumnKind

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class NotCopyableError(Exception):
    """A value whose COPY text would not store what ``jsonb_populate_record`` stores."""


class CopyLine:
    """A row's values as one COPY text line (no newline), for columns of ``kinds`` in the order of
    the row's keys.

    Each cell is what ``jsonb_populate_record`` hands the column's input function (scalar columns)
    or the JSON value itself (jsonb columns), so COPY stores exactly what the INSERT path would;
    anything else raises :class:`NotCopyableError`."""

    def __init__(self, kinds: tuple[ColumnKind, ...]) -> None:
        self.kinds = kinds
        self.jsonb = [i for i, kind in enumerate(kinds) if kind == "jsonb"]
        self.other = [i for i, kind in enumerate(kinds) if kind == "other"]
        self.separators = len(kinds) - 1

    def __call__(self, values: dict[str, Any]) -> str:
        cells: list[Any] = list(values.values())
        for i in self.other:
            if cells[i] is not None:
                raise NotCopyableError(self.kinds[i])
        for i in self.jsonb:
            if cells[i] is not None:
                cells[i] = value_json_text(cells[i])
        texts = [cell if type(cell) is str else NULL if cell is None else str(cell) if type(cell) is int
                 else _scalar_cell(cell) for cell in cells]
        line = "\t".join(texts)
        # Escaping is rare; looking for it in the whole line is cheaper than cell by cell. A NULL's
        # own backslash sends the line the slow way too.
        if "\\" in line or "\n" in line or "\r" in line or line.count("\t") != self.separators:
            line = "\t".join([NULL if cell is None else text.translate(_ESCAPES)
                              for cell, text in zip(cells, texts, strict=True)])
        return line


def _scalar_cell(value: Any) -> str:
    if isinstance(value, Decimal):
        # The server prints a JSON number positionally and without a negative zero; a text column
        # would see that form, so only values whose own text is already it are copied.
        if not value.is_finite() or not -30 <= value.adjusted() <= 30 or (value.is_zero() and value.is_signed()):
            raise NotCopyableError(value)
        return format(value, "f")
    if isinstance(value, (Mapping, list, tuple, float)):
        # An object or array reaches a scalar column as jsonb's own text ({"a": 1}, with spaces), a
        # float as the server's numeric text: reproducible, but not worth it for what is rare.
        raise NotCopyableError(type(value).__name__)
    return scalar_text(value)


def copy_text(row_json: bytes) -> bytes:
    """A payload as one line for the stage's single ``jsonb`` column, newline included."""
    return (row_json.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
            .replace(b"\t", b"\\t") + b"\n")
