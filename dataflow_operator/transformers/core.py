"""The nine core transformations except the two key-case ones (see casing.py) and router, which
the engine runs as a route choice (spec/routes.py, processor/routes.py): timestamp, flatten, filter,
mask, select, remove (transformations.md §3)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..pipeline.api_fields import api_field, build
from ..pipeline.config_fields import Fields
from ..pipeline.message import Message
from ..pipeline.transformer import Transformer
from . import validation
from .conditions import Condition
from .jsonvalues import MISSING, encode, encode_text, take_doc, to_text
from .paths import Path, parse_paths
from .registry import register
from .timeformat import formatter_for, whole_seconds
from .validation import ConditionConfig, FieldConfig, FieldsConfig


def _local_now() -> datetime:
    return datetime.now().astimezone()


@dataclass(frozen=True, slots=True)
class TimestampConfig:
    field_name: str = api_field("Path of the field to set; `meta.ts` creates `{\"meta\":{\"ts\":…}}`.",
                                default="created_at")
    format: str = api_field("`RFC3339`, `RFC3339Nano`, `Unix`, `UnixMilli`, a Go layout name or a Go layout "
                            "(docs/transformations.md).", default="RFC3339")

    @classmethod
    def parse(cls, f: Fields) -> TimestampConfig:
        field_name = validation.path(f, "fieldName", required=False)
        format_ = f.string("format")
        # Blank means the default, as the reference reads it.
        return build(cls, field_name=(field_name or "").strip() or None, format=(format_ or "").strip() or None)


@register
class TimestampTransformer(Transformer):
    """Sets ``fieldName`` (default ``created_at``) to the processing time as a string."""

    type_name = "timestamp"
    config_class = TimestampConfig
    config_optional = True
    #: The wall clock, in the process's local zone; tests replace it per instance.
    clock: Callable[[], datetime] = staticmethod(_local_now)

    def __init__(self, config: TimestampConfig) -> None:
        self.path = Path(config.field_name)
        self.format = formatter_for(config.format)
        self._whole_seconds = whole_seconds(config.format)
        self._second_text: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def transform(self, message: Message) -> list[Message]:
        doc = take_doc(message)
        if not isinstance(doc, dict) or not self.path.set(doc, self._now_text()):
            return [message]
        return [message.derive(encode(doc), doc=doc)]

    def _now_text(self) -> str:
        """The clock's reading as text. The wall clock in a format without a fraction of a second
        is read and formatted once per second (per second, so a zone's offset change shows)."""
        if self.clock is not _local_now or not self._whole_seconds:
            return self.format(self.clock())
        second = int(time.time())
        cached = self._second_text
        if cached[0] != second:
            cached = self._second_text = (second, self.format(datetime.fromtimestamp(second).astimezone()))
        return cached[1]


@register
class FlattenTransformer(Transformer):
    """One message per element of the array at ``field``."""

    type_name = "flatten"
    config_class = FieldConfig

    def __init__(self, config: FieldConfig) -> None:
        self.path = Path(config.field)
        # Non-object elements go under the configured field name; for a nested path that is the
        # whole normalised path text as one top-level key, as the reference does.
        segments = self.path.segments
        self.element_key = segments[0] if len(segments) == 1 else self.path.text

    def transform(self, message: Message) -> list[Message]:
        doc = take_doc(message)
        if not isinstance(doc, dict):
            return [message]
        value = self.path.get(doc)
        if isinstance(value, list):
            items = value
        elif isinstance(value, dict) and isinstance(value.get("array"), list):
            items = value["array"]  # the Avro union wrapper {"array": [...]}
        else:
            return [message]
        # The docs' behaviour: the nested path goes, an emptied parent object stays.
        self.path.delete(doc)
        if not items:
            return [message.derive(encode(doc))]
        # The part of every output that comes from the parent is encoded once; each child only
        # encodes its element and is spliced on, which gives the same bytes as encoding the
        # merged object. A key clash needs the real merge (the element's value takes the
        # parent key's place), so that rare case encodes the whole child.
        base = encode_text(doc)
        head = base[:-1] + ("," if doc else "")
        key = self.element_key
        key_text = encode_text(key) + ":"
        outputs = []
        for item in items:
            if isinstance(item, dict):
                if not item:
                    text = base
                elif doc.keys().isdisjoint(item):
                    text = head + encode_text(item)[1:]
                else:
                    text = encode_text({**doc, **item})
            elif key not in doc:
                text = head + key_text + encode_text(item) + "}"
            else:
                text = encode_text({**doc, key: item})
            outputs.append(message.derive(text.encode("utf-8")))
        return outputs


@register
class FilterTransformer(Transformer):
    """Keeps the message when ``condition`` holds, drops it otherwise. Never raises."""

    type_name = "filter"
    config_class = ConditionConfig

    def __init__(self, config: ConditionConfig) -> None:
        self.condition = Condition(config.condition)

    def transform(self, message: Message) -> list[Message]:
        return [message] if self.condition.matches(message) else []


@dataclass(frozen=True, slots=True)
class MaskConfig:
    fields: tuple[str, ...] = api_field("Paths of the fields to mask.")
    mask_char: str = api_field("The mask; several characters are repeated as a unit.", default="*")
    keep_length: bool = api_field("One mask per character of the value's text instead of three.", default=False)

    @classmethod
    def parse(cls, f: Fields) -> MaskConfig:
        fields = validation.path_list(f, "fields")
        mask_char = f.string("maskChar")
        return build(cls, fields=tuple(fields), mask_char=mask_char or None, keep_length=f.boolean("keepLength"))


@register
class MaskTransformer(Transformer):
    """Replaces each existing field with a mask string (always a JSON string)."""

    type_name = "mask"
    config_class = MaskConfig

    def __init__(self, config: MaskConfig) -> None:
        self.paths = parse_paths(config.fields)
        self.mask = config.mask_char
        self.keep_length = config.keep_length
        self.fixed = self.mask * 3

    def transform(self, message: Message) -> list[Message]:
        doc = take_doc(message)
        if doc is MISSING:
            return [message]
        # Lengths are measured on the original payload, before any field is replaced.
        masks: list[tuple[Path, str]] = []
        for path in self.paths:
            value = path.get(doc)
            if value is MISSING:
                continue
            # keepLength counts characters, not UTF-8 bytes as Go does (docs/transformations.md).
            masks.append((path, self.mask * len(to_text(value)) if self.keep_length else self.fixed))
        if not masks:
            return [message]
        for path, mask in masks:
            if not path.set(doc, mask):
                return [message]
        return [message.derive(encode(doc), doc=doc)]


class _FieldListTransformer(Transformer):
    """A step configured by ``fields`` alone: a non-empty list of paths."""

    config_class = FieldsConfig

    def __init__(self, config: FieldsConfig) -> None:
        self.paths = parse_paths(config.fields)


@register
class SelectTransformer(_FieldListTransformer):
    """A flat object of the selected fields, keyed by each path's last segment."""

    type_name = "select"

    def transform(self, message: Message) -> list[Message]:
        doc = take_doc(message)
        if doc is MISSING:
            return [message]
        selected: dict[str, Any] = {}
        for path in self.paths:
            value = path.get(doc)
            if value is not MISSING:
                selected[path.last] = value
        if not selected:
            return [message]  # nothing matched: the original, not {}
        return [message.derive(encode(selected))]


@register
class RemoveTransformer(_FieldListTransformer):
    """Deletes each existing field; emptied parents stay."""

    type_name = "remove"

    def transform(self, message: Message) -> list[Message]:
        doc = take_doc(message)
        if doc is MISSING:
            return [message]
        removed = False
        for path in self.paths:
            removed = path.delete(doc) or removed
        # Nothing removed: the original bytes go on untouched, saving an encode.
        return [message.derive(encode(doc), doc=doc)] if removed else [message]
