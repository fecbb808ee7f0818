"""The transformation contract.

A transformer turns one message into zero or more messages: ``[]`` drops it (not an error),
``[message]`` passes it through, and an exception is a per-message transform error (the engine
counts it and routes the input to the error sink). Transformers are pure and thread-compatible:
they keep no per-message state.

Each transformer declares its ``config`` as a frozen dataclass of :func:`~.api_fields.api_field`
fields (the reference page is generated from it) with a ``parse`` that reads the manifest's values
once, reporting every problem with its field path; the transformer is built from that typed object.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, Self

from .api_fields import allowed_keys
from .config_fields import FieldError, Fields
from .message import Message


class TransformerConfig(Protocol):
    """A transformer's typed config class."""

    @classmethod
    def parse(cls, f: Fields) -> Self:
        """The config read from ``f`` (whose unknown keys are already reported). Problems are
        appended to ``f.errors``; the object returned then holds what the transformer makes of
        the values as written, as it would at run time, so that tests of the reference's
        behaviour can build one from a config that validation refuses."""
        ...


class Transformer(ABC):
    type_name: ClassVar[str]
    #: True when a missing ``config`` means "all defaults" (documented choice, docs/transformations.md).
    config_optional: ClassVar[bool] = False
    config_class: ClassVar[type[TransformerConfig]]
    #: The keys ``config`` may hold (unknown ones are errors), from :attr:`config_class`.
    config_keys: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "config_class" in cls.__dict__:
            cls.config_keys = allowed_keys(cls.config_class)

    @abstractmethod
    def __init__(self, config: object) -> None:
        """``config`` is an instance of :attr:`config_class`; each transformer narrows the type."""

    @classmethod
    def parse_config(cls, config: Mapping[str, Any] | None, path: str, errors: list[FieldError]) -> object:
        """The typed config of a raw ``config`` object; problems are appended to ``errors`` under
        ``path`` (e.g. ``spec.transformations[2].config``)."""
        fields = Fields(config, path, errors)
        fields.unknown_keys(cls.config_keys)
        return cls.config_class.parse(fields)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        """Every problem in ``config``."""
        errors: list[FieldError] = []
        cls.parse_config(config, path, errors)
        return errors

    @abstractmethod
    def transform(self, message: Message) -> list[Message]:
        ...
