"""Config readers shared by the transformer modules (transformations.md §1.1), and the config
classes of the transformers configured by one path or a list of paths."""

from __future__ import annotations

from dataclasses import dataclass

from ..pipeline.api_fields import api_field
from ..pipeline.config_fields import FieldError, Fields
from . import conditions
from .paths import normalize


def condition(fields: Fields, key: str) -> str | None:
    """``key`` must be a non-empty, well-formed condition; its text (even when ill-formed)."""
    text = fields.string(key, required=True)
    if text is not None:
        for problem in conditions.problems(text):
            fields.error(key, f"invalid condition {text!r}: {problem}")
    return text


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


@dataclass(frozen=True, slots=True)
class FieldConfig:
    field: str = api_field("Path of the field (`a.b`, `$.a.b`, `items[0]`).")

    @classmethod
    def parse(cls, f: Fields) -> FieldConfig:
        return cls(field=(path(f, "field") or "").strip())


@dataclass(frozen=True, slots=True)
class FieldsConfig:
    fields: tuple[str, ...] = api_field("Paths of the fields.")

    @classmethod
    def parse(cls, f: Fields) -> FieldsConfig:
        return cls(fields=tuple(path_list(f, "fields")))


@dataclass(frozen=True, slots=True)
class ConditionConfig:
    condition: str = api_field("The condition (docs/transformations.md, \"Conditions\").")

    @classmethod
    def parse(cls, f: Fields) -> ConditionConfig:
        return cls(condition=condition(f, "condition") or "")
