"""The nine core transformations except the two key-case ones (see casing.py) and router, which
the engine runs as a route choice (spec/routes.py, processor/routes.py): timestamp, flatten, filter,
mask, select, remove (transformations.md §3)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..pipeline.config_fields import FieldError
from ..pipeline.message import Message
from ..pipeline.transformer import Transformer
from . import validation
from .conditions import Condition
from .jsonvalues import MISSING, encode, encode_text, take_doc, to_text
from .paths import Path, parse_paths
from .registry import register
from .timeformat import formatter_for, whole_seconds


def _local_now() -> datetime:
    return datetime.now().astimezone()


@register
class TimestampTransformer(Transformer):
    """Sets ``fieldName`` (default ``created_at``) to the processing time as a string."""

    type_name = "timestamp"
    config_keys = ("fieldName", "format")
    config_optional = True
    #: The wall clock, in the process's local zone; tests replace it per instance.
    clock: Callable[[], datetime] = staticmethod(_local_now)

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.path = Path((config.get("fieldName") or "").strip() or "created_at")
        format_ = (config.get("format") or "").strip() or "RFC3339"
        self.format = formatter_for(format_)
        self._whole_seconds = whole_seconds(format_)
        self._second_text: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, cls.config_keys)
        validation.path(fields, "fieldName", required=False)
        fields.string("format")
        return errors

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
    config_keys = ("field",)

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.path = Path(str(config.get("field") or "").strip())
        # Non-object elements go under the configured field name; for a nested path that is the
        # whole normalised path text as one top-level key, as the reference does.
        segments = self.path.segments
        self.element_key = segments[0] if len(segments) == 1 else self.path.text

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, cls.config_keys)
        validation.path(fields, "field")
        return errors

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
    config_keys = ("condition",)

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.condition = Condition(str(config.get("condition") or ""))

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, cls.config_keys)
        validation.condition(fields, "condition")
        return errors

    def transform(self, message: Message) -> list[Message]:
        return [message] if self.condition.matches(message) else []


@register
class MaskTransformer(Transformer):
    """Replaces each existing field with a mask string (always a JSON string)."""

    type_name = "mask"
    config_keys = ("fields", "maskChar", "keepLength")

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.paths = parse_paths([str(field) for field in config.get("fields") or []])
        self.mask = str(config.get("maskChar") or "") or "*"
        self.keep_length = bool(config.get("keepLength", False))
        self.fixed = self.mask * 3

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, cls.config_keys)
        validation.path_list(fields, "fields")
        fields.string("maskChar")
        fields.boolean("keepLength")
        return errors

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

    config_keys = ("fields",)

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.paths = parse_paths([str(field) for field in config.get("fields") or []])

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, cls.config_keys)
        validation.path_list(fields, "fields")
        return errors


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
