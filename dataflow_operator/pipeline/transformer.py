"""The transformation contract.

A transformer turns one message into zero or more messages: ``[]`` drops it (not an error),
``[message]`` passes it through, and an exception is a per-message transform error (the engine
counts it and routes the input to the error sink). Transformers are pure and thread-compatible:
they keep no per-message state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from .config_fields import FieldError
from .message import Message


class Transformer(ABC):
    type_name: ClassVar[str]
    #: True when a missing ``config`` means "all defaults" (documented choice, docs/transformations.md).
    config_optional: ClassVar[bool] = False
    #: The keys ``config`` may hold (unknown ones are errors; the reference page lists these).
    config_keys: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def __init__(self, config: Mapping[str, Any]) -> None:
        """Each transformer reads ``config`` (accepted by :meth:`validate_config`) once, here, into
        typed attributes; the raw mapping is not kept."""

    @classmethod
    @abstractmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        """Every problem in ``config``; ``path`` is the config's field path, e.g.
        ``spec.transformations[2].config``."""

    @abstractmethod
    def transform(self, message: Message) -> list[Message]:
        ...
