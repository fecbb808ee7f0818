"""snakeCase and camelCase: rename object keys, values untouched (transformations.md §3.8/3.9)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..pipeline.api_fields import api_field
from ..pipeline.config_fields import Fields
from ..pipeline.message import Message
from ..pipeline.transformer import Transformer
from .jsonvalues import MISSING, encode, take_doc
from .registry import register

# Payloads repeat the same few keys over and over, so converted keys are cached; the bound keeps
# a stream of unique keys (e.g. ids used as keys) from growing the cache without limit.
_CACHE_LIMIT = 4096


def to_snake(key: str) -> str:
    """``XMLHttpRequest`` → ``xml_http_request``. An ``_`` goes before an uppercase letter that is
    not first when the previous character was lowercase/digit, or uppercase with a lowercase next;
    any other character (``_``, ``-``, space) is copied and resets that memory."""
    out: list[str] = []
    previous_lower = previous_upper = False
    last = len(key) - 1
    for position, char in enumerate(key):
        if char.isupper():
            if position > 0 and (previous_lower or (
                    previous_upper and position < last and key[position + 1].islower())):
                out.append("_")
            out.append(char.lower())
            previous_lower, previous_upper = False, True
        elif char.islower() or char.isdigit():
            out.append(char)
            previous_lower, previous_upper = True, False
        else:
            out.append(char)
            previous_lower = previous_upper = False
    return "".join(out)


def to_pascal(key: str) -> str:
    """``user_id_123`` → ``UserId123``: split on ``_``, drop empty pieces, uppercase each piece's
    first character and keep the rest as is; a key with nothing left stays as it was."""
    pieces = [piece[0].upper() + piece[1:] for piece in key.split("_") if piece]
    return "".join(pieces) if pieces else key


@dataclass(frozen=True, slots=True)
class KeyCaseConfig:
    deep: bool = api_field("Rename the keys of every object at any depth, including objects inside arrays, "
                           "instead of only the root object's.", default=False)

    @classmethod
    def parse(cls, f: Fields) -> KeyCaseConfig:
        return cls(deep=f.boolean("deep"))


class _KeyCase(Transformer):
    config_optional = True
    config_class = KeyCaseConfig
    convert: Callable[[str], str]

    def __init__(self, config: KeyCaseConfig) -> None:
        self.deep = config.deep
        self._cache: dict[str, str] = {}

    def _key(self, key: str) -> str:
        try:
            return self._cache[key]
        except KeyError:
            converted = type(self).convert(key)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = converted
            return converted

    def _deep(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self._key(key): self._deep(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._deep(item) for item in value]
        return value

    def transform(self, message: Message) -> list[Message]:
        doc = take_doc(message)
        if doc is MISSING:
            return [message]
        if self.deep:
            if not isinstance(doc, (dict, list)):
                return [message]
            converted = self._deep(doc)
            return [message.derive(encode(converted), doc=converted if isinstance(converted, dict) else None)]
        if not isinstance(doc, dict):
            return [message]  # only a root object's keys change
        # When two keys convert to the same name, the later one wins (dict assignment order).
        renamed = {self._key(key): item for key, item in doc.items()}
        return [message.derive(encode(renamed), doc=renamed)]


@register
class SnakeCaseTransformer(_KeyCase):
    """snake_case keys (``firstName`` → ``first_name``, ``XMLHttpRequest`` → ``xml_http_request``)."""

    type_name = "snakeCase"
    convert = staticmethod(to_snake)


@register
class CamelCaseTransformer(_KeyCase):
    """PascalCase in fact (``first_name`` → ``FirstName``), as the reference does."""

    type_name = "camelCase"
    convert = staticmethod(to_pascal)
