"""Field-path errors and the small typed readers that spec validation is written with.

Every reader appends a :class:`FieldError` naming the full path (``spec.sink.config.table``) and
what was expected, instead of raising, so one pass reports every problem in a manifest.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

#: Integers beyond a signed 64-bit value have no Kubernetes (JSON/Go) representation.
INT64_MAX = 2**63 - 1
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecError(ValueError):
    """A spec that failed validation; ``errors`` holds every problem found."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(error) for error in self.errors))


_SHOWN_CHARS = 40
#: Keys written bare in a field path; any other key is written quoted, ``parent["a.b"]``, so that a
#: key holding dots, colons, spaces or line breaks neither forges another path nor breaks the line.
_BARE_KEY = re.compile(r"[A-Za-z0-9_$-]+")


def field_path(parent: str, key: object) -> str:
    """The path of ``key`` inside the object at ``parent`` ("" for the document itself)."""
    text = str(key)
    if _BARE_KEY.fullmatch(text):
        return f"{parent}.{text}" if parent else text
    return f"{parent}[{json.dumps(text)}]"


def shown(text: str) -> str:
    """``text`` quoted for a message, cut to a readable length (a value may be megabytes)."""
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


class Fields:
    """Reads one config object and collects errors under ``path``."""

    def __init__(self, config: Any, path: str, errors: list[FieldError]) -> None:
        self.path = path
        self.errors = errors
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            errors.append(FieldError(path, f"must be an object, got {type_name(config)}"))
            config = {}
        self.config: Mapping[str, Any] = config

    def at(self, key: str) -> str:
        return field_path(self.path, key)

    def error(self, key: str, message: str) -> None:
        self.errors.append(FieldError(self.at(key), message))

    def has(self, key: str) -> bool:
        return self.config.get(key) is not None

    def string(self, key: str, *, required: bool = False, default: str | None = None,
               choices: Sequence[str] | None = None, non_empty: bool = False) -> str | None:
        value = self.config.get(key)
        if value is None:
            if required:
                self.error(key, "required")
            return default
        if not isinstance(value, str):
            self.error(key, f"must be a string, got {type_name(value)}")
            return default
        if (required or non_empty) and not value.strip():
            self.error(key, "must not be empty")
            return default
        if choices is not None and value not in choices:
            self.error(key, f"must be one of {', '.join(choices)}; got {shown(value)}")
            return default
        return value

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.config.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(key, f"must be a boolean, got {type_name(value)}")
            return default
        return value

    def integer(self, key: str, default: int | None = None, *, minimum: int | None = None,
                required: bool = False) -> int | None:
        value = self.config.get(key)
        if value is None:
            if required:
                self.error(key, "required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"must be an integer, got {type_name(value)}")
            return default
        if abs(value) > INT64_MAX:
            self.error(key, "must fit in a signed 64-bit integer")
            return default
        if minimum is not None and value < minimum:
            self.error(key, f"must be at least {minimum}, got {value}")
            return default
        return value

    def number(self, key: str, default: float | None = None, *, minimum: float | None = None) -> float | None:
        value = self.config.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error(key, f"must be a number, got {type_name(value)}")
            return default
        if not math.isfinite(value):  # NaN passes every comparison below; an infinite interval never ends
            self.error(key, f"must be a finite number, got {value}")
            return default
        if minimum is not None and value < minimum:
            self.error(key, f"must be at least {minimum}, got {value}")
            return default
        return float(value)

    def string_list(self, key: str, *, required: bool = False, non_empty: bool = False) -> list[str]:
        value = self.config.get(key)
        if value is None:
            if required:
                self.error(key, "required")
            return []
        if not isinstance(value, list):
            self.error(key, f"must be a list of strings, got {type_name(value)}")
            return []
        result: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.errors.append(FieldError(f"{self.at(key)}[{index}]",
                                              f"must be a non-empty string, got {type_name(item)}"))
            else:
                result.append(item)
        if (required or non_empty) and not value:
            self.error(key, "must contain at least one entry")
        return result

    def string_map(self, key: str, *, required: bool = False) -> dict[str, str]:
        value = self.config.get(key)
        if value is None:
            if required:
                self.error(key, "required")
            return {}
        if not isinstance(value, Mapping):
            self.error(key, f"must be an object of strings, got {type_name(value)}")
            return {}
        result: dict[str, str] = {}
        for item_key, item in value.items():
            if not isinstance(item_key, str):
                self.errors.append(FieldError(field_path(self.at(key), item_key),
                                              f"key must be a string, got {type_name(item_key)}"))
            elif not isinstance(item, str):
                self.errors.append(FieldError(field_path(self.at(key), item_key),
                                              f"must be a string, got {type_name(item)}"))
            else:
                result[item_key] = item
        if required and not value:
            self.error(key, "must contain at least one entry")
        return result

    def obj(self, key: str) -> Fields:
        return Fields(self.config.get(key), self.at(key), self.errors)

    def secret_ref(self, key: str) -> bool:
        """Validates ``<key>SecretRef`` if present; True when it is present and well-formed."""
        ref_key = f"{key}SecretRef"
        value = self.config.get(ref_key)
        if value is None:
            return False
        ref = Fields(value, self.at(ref_key), self.errors)
        before = len(self.errors)
        ref.string("name", required=True)
        ref.string("key", required=True)
        ref.string("namespace")
        return len(self.errors) == before

    def value_or_secret(self, key: str, *, kind: str = "string") -> None:
        """``key`` or ``keySecretRef`` is required (the reference's connector rule)."""
        has_ref = self.config.get(f"{key}SecretRef") is not None
        if has_ref:
            self.secret_ref(key)
            return
        if kind == "list":
            self.string_list(key, required=True)
        else:
            self.string(key, required=True)

    def unknown_keys(self, allowed: Sequence[str]) -> None:
        """Names keys the type does not know (a typo would otherwise be silently ignored)."""
        for key in self.config:
            if key not in allowed:
                self.error(str(key), f"unknown field; allowed: {', '.join(sorted(allowed))}")
