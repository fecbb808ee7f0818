"""Transformation types by name, config validation and chain construction.

Each transformer module registers its class with :func:`register`; :data:`_MODULES` lists them so
that importing this registry is enough to know every type.

A missing or null ``config`` is accepted as ``{}`` for the types whose every field is optional
(``config_optional``: timestamp, snakeCase, camelCase, debeziumUnwrap, structFlatten) and rejected
for the others (docs/transformations.md, "Missing config").
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from ..pipeline.config_fields import FieldError
from ..pipeline.message import Message
from ..pipeline.transformer import Transformer
from . import conditions

_MODULES = (
    "dataflow_operator.transformers.core",
    "dataflow_operator.transformers.casing",
    "dataflow_operator.transformers.cdc",
    "dataflow_operator.transformers.reshape",
    "dataflow_operator.transformers.conversions",
)

_TYPES: dict[str, type[Transformer]] = {}


def register(cls: type[Transformer]) -> type[Transformer]:
    _TYPES[cls.type_name] = cls
    return cls


@functools.cache
def _load_modules() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def types() -> dict[str, type[Transformer]]:
    _load_modules()
    return _TYPES


class EntryRules(Protocol):
    """How one ``type`` of transformations entry checks its ``config``."""

    type_name: str
    config_optional: bool

    def validate_config(self, config: Mapping[str, Any], path: str) -> list[FieldError]: ...


def allowed_types() -> list[str]:
    return sorted(types())


def validate(type_: str, config: Mapping[str, Any] | None, path: str, when: str | None = None,
             rules: Mapping[str, EntryRules] | None = None) -> list[FieldError]:
    """Errors for one ``{type, config, when}`` entry; ``path`` is the entry's path
    (``spec.transformations[2]``). ``rules``: the entry types accepted, by name (default: the
    transformers; the spec adds ``router``, which is not one)."""
    rules = types() if rules is None else rules
    errors: list[FieldError] = []
    if when is not None and when.strip():
        errors.extend(FieldError(f"{path}.when", f"invalid condition {when!r}: {problem}")
                      for problem in conditions.problems(when))
    cls = rules.get(type_)
    if cls is None:
        errors.append(FieldError(f"{path}.type",
                                 f"unsupported transformation type {type_!r}; "
                                 f"allowed: {', '.join(sorted(rules))}"))
        return errors
    if config is None:
        if not cls.config_optional:
            errors.append(FieldError(f"{path}.config", f"{type_} transformation configuration is required"))
        return errors
    if not isinstance(config, Mapping):
        errors.append(FieldError(f"{path}.config", "must be an object"))
        return errors
    errors.extend(cls.validate_config(config, f"{path}.config"))
    return errors


class ConditionalTransformer(Transformer):
    """A step with a ``when`` predicate (§6): applies ``inner`` when the condition holds and
    passes the message through unchanged when it does not (the step is skipped, not a drop)."""

    def __init__(self, inner: Transformer, when: str) -> None:
        super().__init__(inner.config)
        self.inner = inner
        self.type_name = inner.type_name  # type: ignore[misc]  # per instance: the wrapped type
        self.when = conditions.Condition(when)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        return []  # validated as the wrapped type by validate()

    def transform(self, message: Message) -> list[Message]:
        if self.when.matches(message):
            return self.inner.transform(message)
        return [message]


def build(type_: str, config: Mapping[str, Any] | None, when: str | None = None) -> Transformer:
    """The transformer for one validated entry; a blank ``when`` means "always apply"."""
    transformer = types()[type_](config or {})
    if when is not None and when.strip():
        return ConditionalTransformer(transformer, when)
    return transformer
