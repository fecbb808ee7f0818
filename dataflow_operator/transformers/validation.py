"""Config-validation helpers shared by the transformer modules (transformations.md §1.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..pipeline.config_fields import FieldError, Fields
from . import conditions
from .paths import normalize


def reader(config: Mapping[str, Any], path: str, allowed: tuple[str, ...]) -> tuple[Fields, list[FieldError]]:
    """A :class:`Fields` over ``config`` that has already flagged unknown keys (typos would
    otherwise be ignored silently)."""
    errors: list[FieldError] = []
    fields = Fields(config, path, errors)
    fields.unknown_keys(allowed)
    return fields, errors


def condition(fields: Fields, key: str) -> None:
    """``key`` must be a non-empty, well-formed condition."""
    text = fields.string(key, required=True)
    if text is not None:
        for problem in conditions.problems(text):
            fields.error(key, f"invalid condition {text!r}: {problem}")


def path(fields: Fields, key: str, *, required: bool = True) -> str | None:
    """``key`` must be a path that is non-empty once ``$``/``$.`` is stripped."""
    value = fields.string(key, required=required)
    if value is not None and value.strip() and not normalize(value.strip()):
        fields.error(key, "must name a field (empty after removing the $ prefix)")
        return None
    return value


def path_list(fields: Fields, key: str) -> list[str]:
    """``key`` must be a non-empty list of non-empty paths."""
    values = fields.string_list(key, required=True)
    raw = fields.config.get(key)
    for index, value in enumerate(raw if isinstance(raw, list) else ()):  # a non-list is reported above
        if isinstance(value, str) and value.strip() and not normalize(value.strip()):
            fields.errors.append(FieldError(f"{fields.at(key)}[{index}]",
                                            "must name a field (empty after removing the $ prefix)"))
    return values


def pair_list(fields: Fields, key: str, expected: str, *, required: bool) -> list[str]:
    """``key`` must be a list of ``left:right`` strings, both halves non-blank."""
    values = fields.string_list(key, required=required)
    raw = fields.config.get(key)
    if isinstance(raw, list):
        for index, value in enumerate(raw):
            if isinstance(value, str) and value.strip():
                left, colon, right = value.partition(":")
                if not colon or not left.strip() or not right.strip():
                    fields.errors.append(FieldError(f"{fields.at(key)}[{index}]",
                                                    f"must have the form {expected}, got {value!r}"))
    return values
