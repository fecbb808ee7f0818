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

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    @classmethod
    @abstractmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        """Every problem in ``config``; ``path`` is the config's field path, e.g.
        ``spec.transformations[2].config``."""

    @abstractmethod
    def transform(self, message: Message) -> list[Message]:
        ...
