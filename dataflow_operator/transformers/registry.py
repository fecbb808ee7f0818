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
def types() -> dict[str, type[Transformer]]:
    """Every transformer type, in :data:`_MODULES` order whatever order their modules were first
    imported in (the CRD's enum and the reference page list them in this order)."""
    for module in _MODULES:
        importlib.import_module(module)
    rank = {module: index for index, module in enumerate(_MODULES)}
    return dict(sorted(_TYPES.items(), key=lambda item: rank[item[1].__module__]))


class EntryRules(Protocol):
    """How one ``type`` of transformations entry reads its ``config``."""

    type_name: str
    config_optional: bool
    #: The keys ``config`` may hold (the reference page lists them).
    config_keys: tuple[str, ...]

    def parse_config(self, config: Mapping[str, Any] | None, path: str, errors: list[FieldError]) -> object: ...


def allowed_types() -> list[str]:
    return sorted(types())


def parse(type_: str, config: Any, path: str, errors: list[FieldError], *, when: str | None = None,
          rules: Mapping[str, EntryRules] | None = None) -> object | None:
    """The typed config of one ``{type, config, when}`` entry (None when there is none to build
    from: an unknown type, or a required config missing or not an object); every problem is appended
    to ``errors``. ``path`` is the entry's path (``spec.transformations[2]``). ``rules``: the entry
    types accepted, by name (default: the transformers; the spec adds ``router``, which is not one)."""
    rules = types() if rules is None else rules
    if when is not None and when.strip():
        errors.extend(FieldError(f"{path}.when", f"invalid condition {when!r}: {problem}")
                      for problem in conditions.problems(when))
    cls = rules.get(type_)
    if cls is None:
        errors.append(FieldError(f"{path}.type",
                                 f"unsupported transformation type {type_!r}; "
                                 f"allowed: {', '.join(sorted(rules))}"))
        return None
    if config is None and not cls.config_optional:
        errors.append(FieldError(f"{path}.config", f"{type_} transformation configuration is required"))
        return None
    if config is not None and not isinstance(config, Mapping):
        errors.append(FieldError(f"{path}.config", "must be an object"))
        return None
    return cls.parse_config(config, f"{path}.config", errors)


def validate(type_: str, config: Any, path: str, when: str | None = None,
             rules: Mapping[str, EntryRules] | None = None) -> list[FieldError]:
    """Every problem of one entry (see :func:`parse`)."""
    errors: list[FieldError] = []
    parse(type_, config, path, errors, when=when, rules=rules)
    return errors


class ConditionalTransformer(Transformer):
    """A step with a ``when`` predicate (§6): applies ``inner`` when the condition holds and
    passes the message through unchanged when it does not (the step is skipped, not a drop)."""

    def __init__(self, inner: Transformer, when: str) -> None:
        self.inner = inner
        self.type_name = inner.type_name  # type: ignore[misc]  # per instance: the wrapped type
        self.when = conditions.Condition(when)

    def transform(self, message: Message) -> list[Message]:
        if self.when.matches(message):
            return self.inner.transform(message)
        return [message]


def build(type_: str, config: object, when: str | None = None) -> Transformer:
    """The transformer of ``type_`` for its typed ``config`` (from :func:`parse`); a blank ``when``
    means "always apply"."""
    transformer = types()[type_](config)
    if when is not None and when.strip():
        return ConditionalTransformer(transformer, when)
    return transformer
