"""gjson-style paths over decoded JSON values: read, write (sjson-style) and delete.

Syntax (transformations.md §1.6), compiled once per configured path:

- a leading ``$.`` (or else a lone leading ``$``) is dropped, so ``$.a.b`` = ``a.b`` and ``$`` = "";
- ``[n]`` is rewritten to ``.n`` and ``[*]`` to ``.#``, so ``$.items[0].id`` = ``items.0.id``;
- keys are separated by ``.``; a backslash makes the next character literal (``a\\.b`` is the one
  key ``a.b``, as structFlatten produces);
- on an array, a numeric segment is an index; ``#`` as the last segment is the array's length,
  and ``items.#.name`` maps the rest of the path over the elements (read-only);
- on an object, every segment (numeric ones too) is a key.

gjson's wildcards (``*``, ``?``), queries (``#(...)``) and modifiers (``@``) are not supported:
those characters are ordinary key characters here. An empty path addresses nothing.

Writes follow sjson: missing parents are created (an array when the next segment is a number,
an object otherwise), a scalar in the way is replaced by an object, ``-1`` appends to an array and an
index past the end pads with nulls. Deleting a path that does not exist is a no-op.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from .jsonvalues import MISSING

_BRACKET_INDEX: Final = re.compile(r"\[(\d+)\]")
_BRACKET_ALL: Final = re.compile(r"\[\*\]")
# sjson pads an array up to any index; a typo like ``a.99999999`` in a config would then allocate
# a huge list for every message, so writes beyond this many new slots fail instead.
_MAX_PADDING: Final = 65536


def normalize(path: str) -> str:
    """The path text without its ``$`` root and with brackets rewritten to dots."""
    if path.startswith("$."):
        path = path[2:]
    elif path.startswith("$"):
        path = path[1:]
    if "[" in path:
        path = _BRACKET_ALL.sub(".#", _BRACKET_INDEX.sub(r".\1", path))
        if path.startswith("."):
            path = path[1:]
    return path


def split(path: str) -> tuple[str, ...]:
    """Segments of an already normalised path, with backslash escapes resolved."""
    if not path:
        return ()
    if "\\" not in path:
        return tuple(path.split("."))
    segments: list[str] = []
    current: list[str] = []
    chars = iter(path)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ".":
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    return tuple(segments)


def _index(segment: str) -> int | None:
    # Only plain digits index an array: gjson reads "01" as index 1 but "+1" or " 1" as keys.
    return int(segment) if segment.isdigit() and segment.isascii() else None


class Path:
    """One compiled path. Immutable and shared by every message."""

    __slots__ = ("_indexes", "segments", "text")

    def __init__(self, raw: str) -> None:
        self.text = normalize(raw)
        self.segments = split(self.text)
        self._indexes = tuple(_index(segment) for segment in self.segments)

    def __repr__(self) -> str:
        return f"Path({self.text!r})"

    @property
    def empty(self) -> bool:
        return not self.segments

    @property
    def last(self) -> str:
        """The last key (``user.name`` → ``name``); "" for the empty path."""
        return self.segments[-1] if self.segments else ""

    # -- reading ---------------------------------------------------------------------------------

    def get(self, doc: Any) -> Any:
        """The value at this path, or :data:`MISSING`."""
        if not self.segments:
            return MISSING
        return _get(doc, self.segments, self._indexes, 0)

    # -- writing ---------------------------------------------------------------------------------

    def set(self, doc: Any, value: Any) -> bool:
        """Sets ``value`` in ``doc`` (an object or array, changed in place); False when the path
        cannot be written (empty, ``#``, a key on an array, too far past an array's end)."""
        segments = self.segments
        if not segments or not isinstance(doc, (dict, list)):
            return False
        node: Any = doc
        last = len(segments) - 1
        for position, segment in enumerate(segments):
            if isinstance(node, dict):
                if position == last:
                    node[segment] = value
                    return True
                child = node.get(segment, MISSING)
                if not isinstance(child, (dict, list)):
                    child = _new_container(segments[position + 1])
                    node[segment] = child
                node = child
                continue
            index = _list_slot(node, segment)  # node is a list
            if index is None:
                return False
            if position == last:
                node[index] = value
                return True
            child = node[index]
            if not isinstance(child, (dict, list)):
                child = _new_container(segments[position + 1])
                node[index] = child
            node = child
        return False  # pragma: no cover - the loop always returns

    def delete(self, doc: Any) -> bool:
        """Removes the value at this path; True when something was removed."""
        parent = self._parent(doc)
        if parent is MISSING:
            return False
        key = self.segments[-1]
        if isinstance(parent, dict):
            if key in parent:
                del parent[key]
                return True
            return False
        if isinstance(parent, list) and parent:
            index = len(parent) - 1 if key == "-1" else self._indexes[-1]
            if index is not None and index < len(parent):
                del parent[index]
                return True
        return False

    def prune_empty_parents(self, doc: Any) -> None:
        """After a delete: removes the parent objects that are now empty, nearest first, and
        stops at the first one that still holds something (the root itself always stays)."""
        segments, indexes = self.segments, self._indexes
        for end in range(len(segments) - 1, 0, -1):
            value = _get(doc, segments[:end], indexes[:end], 0, mapping=False)
            if not isinstance(value, dict) or value:
                return
            container = doc if end == 1 else _get(doc, segments[:end - 1], indexes[:end - 1], 0,
                                                  mapping=False)
            index = indexes[end - 1]
            if isinstance(container, dict):
                del container[segments[end - 1]]
            elif isinstance(container, list) and index is not None:
                del container[index]
            else:
                return

    def _parent(self, doc: Any) -> Any:
        if not self.segments:
            return MISSING
        if len(self.segments) == 1:
            return doc
        return _get(doc, self.segments[:-1], self._indexes[:-1], 0, mapping=False)


def _get(doc: Any, segments: tuple[str, ...], indexes: tuple[int | None, ...], start: int,
         *, mapping: bool = True) -> Any:
    node = doc
    for position in range(start, len(segments)):
        if isinstance(node, dict):
            node = node.get(segments[position], MISSING)
            if node is MISSING:
                return MISSING
        elif isinstance(node, list):
            index = indexes[position]
            if index is not None:
                if index >= len(node):
                    return MISSING
                node = node[index]
            elif segments[position] == "#" and mapping:
                if position == len(segments) - 1:
                    return len(node)
                # items.#.name: the rest of the path on every element, skipping misses (gjson).
                results = (_get(item, segments, indexes, position + 1) for item in node)
                return [result for result in results if result is not MISSING]
            else:
                return MISSING
        else:
            return MISSING
    return node


def _new_container(next_segment: str) -> Any:
    return [] if next_segment == "-1" or _index(next_segment) is not None else {}


def _list_slot(node: list[Any], segment: str) -> int | None:
    """The list index a write to ``segment`` goes to, padding with nulls as sjson does."""
    if segment == "-1":
        node.append(None)
        return len(node) - 1
    index = _index(segment)
    if index is None:
        return None
    missing = index + 1 - len(node)
    if missing > _MAX_PADDING:
        return None
    if missing > 0:
        node.extend([None] * missing)
    return index


def parse_paths(raw: Iterable[str]) -> list[Path]:
    return [Path(item) for item in raw]
