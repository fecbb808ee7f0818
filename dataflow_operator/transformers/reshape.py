"""Field-level reshaping (transformations.md §4.2 to §4.4, §5.1, §5.2, §5.5): replaceField,
headersToPayload, structFlatten, extractField, hoistField, insertField."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from ..pipeline.config_fields import FieldError
from ..pipeline.errors import InvalidDataError
from ..pipeline.message import Message
from ..pipeline.timetext import format_rfc3339
from ..pipeline.transformer import Transformer
from . import validation
from .jsonvalues import MISSING, decode_text, encode, metadata_text, take_doc
from .paths import Path, normalize
from .registry import register


def _split_pair(text: str) -> tuple[str, str] | None:
    """``left:right`` split at the first colon, both halves trimmed; None when either is blank."""
    left, colon, right = text.partition(":")
    left, right = left.strip(), right.strip()
    if not colon or not left or not right:
        return None
    return left, right


@register
class ReplaceFieldTransformer(Transformer):
    """Keep (include) or drop (exclude) fields, then rename; emptied parents are pruned."""

    type_name = "replaceField"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.include = [Path(str(item).strip()) for item in config.get("include") or []]
        self.exclude = [Path(str(item).strip()) for item in config.get("exclude") or []]
        self.renames: list[tuple[Path, Path]] = []
        self.bad_rename: str | None = None
        for rename in config.get("renames") or []:
            pair = _split_pair(str(rename))
            if pair is None:
                self.bad_rename = str(rename)
                break
            old, new = Path(pair[0]), Path(pair[1])
            if old.text != new.text and not old.empty and not new.empty:
                self.renames.append((old, new))

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, ("renames", "include", "exclude"))
        renames = validation.pair_list(fields, "renames", "oldPath:newPath", required=False)
        include = fields.string_list("include")
        exclude = fields.string_list("exclude")
        if not (renames or include or exclude) and not errors:
            errors.append(FieldError(path, "at least one of renames, include, or exclude is required"))
        if include and exclude:
            fields.error("exclude", "include and exclude are mutually exclusive")
        return errors

    def transform(self, message: Message) -> list[Message]:
        doc = take_doc(message)
        if not isinstance(doc, dict):
            return [message]
        if self.bad_rename is not None:
            raise InvalidDataError(f'invalid rename format: "{self.bad_rename}" (expected oldPath:newPath)')
        if self.include:
            kept: dict[str, Any] = {}
            for path in self.include:
                value = path.get(doc)
                if value is not MISSING:
                    path.set(kept, value)  # same nested place: the structure is kept
            doc = kept
        elif self.exclude:
            for path in self.exclude:
                if path.delete(doc):
                    path.prune_empty_parents(doc)
        for old, new in self.renames:
            value = old.get(doc)
            if value is MISSING:
                continue
            new.set(doc, value)
            if old.delete(doc):
                old.prune_empty_parents(doc)
        return [message.derive(encode(doc))]


@register
class HeadersToPayloadTransformer(Transformer):
    """Copies Kafka headers (``metadata["headers"]``) into the payload as strings."""

    type_name = "headersToPayload"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.mappings: list[tuple[str, Path]] = []
        self.bad_mapping: str | None = None
        for mapping in config.get("mappings") or []:
            pair = _split_pair(str(mapping))
            if pair is None:
                self.bad_mapping = str(mapping)
                break
            self.mappings.append((pair[0], Path(pair[1])))

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, ("mappings",))
        validation.pair_list(fields, "mappings", "headerName:fieldPath", required=True)
        return errors

    def transform(self, message: Message) -> list[Message]:
        headers = message.metadata.get("headers")
        if not isinstance(headers, Mapping):
            return [message]
        doc = take_doc(message)
        if not isinstance(doc, dict):
            return [message]
        if self.bad_mapping is not None:
            raise InvalidDataError(
                f'invalid header mapping format: "{self.bad_mapping}" (expected headerName:fieldPath)')
        changed = False
        for name, path in self.mappings:
            if name in headers:
                changed = path.set(doc, metadata_text(headers[name])) or changed
        return [message.derive(encode(doc))] if changed else [message]


MAX_FLATTEN_DEPTH: Final = 64


@register
class StructFlattenTransformer(Transformer):
    """Nested objects → one level, keys joined by ``delimiter``; arrays stay whole."""

    type_name = "structFlatten"
    config_optional = True

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.delimiter = str(config.get("delimiter") or "").strip() or "."

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, ("delimiter",))
        if fields.string("delimiter") == "":
            fields.error("delimiter", "delimiter must be a non-empty string")
        return errors

    def transform(self, message: Message) -> list[Message]:
        doc = take_doc(message)
        if not isinstance(doc, dict):
            return [message]
        flat: dict[str, Any] = {}
        if _flatten(doc, "", self.delimiter, flat, 0):
            # Two paths produced one key. The reference writes, in each object, the leaves (sorted
            # by key) before the nested objects (sorted), so the last of those writes wins; keep
            # our input-order key positions but take the values that ordering picks.
            winners: dict[str, Any] = {}
            _flatten_reference_order(doc, "", self.delimiter, winners)
            flat = {key: winners[key] for key in flat}
        return [message.derive(encode(flat))]


def _flatten(obj: dict[str, Any], prefix: str, delimiter: str, out: dict[str, Any], depth: int) -> bool:
    """Flattens in input order; True when some key was written twice."""
    collided = False
    for key, value in obj.items():
        name = prefix + key
        if isinstance(value, dict):
            if value:
                if depth >= MAX_FLATTEN_DEPTH:
                    raise InvalidDataError(f"structFlatten: nesting depth exceeds {MAX_FLATTEN_DEPTH}")
                collided = _flatten(value, name + delimiter, delimiter, out, depth + 1) or collided
            continue  # an empty object produces no key at all
        if name in out:
            collided = True
        out[name] = value
    return collided


def _flatten_reference_order(obj: dict[str, Any], prefix: str, delimiter: str, out: dict[str, Any]) -> None:
    items = sorted(obj.items())
    for key, value in items:
        if not isinstance(value, dict):
            out[prefix + key] = value
    for key, value in items:
        if isinstance(value, dict) and value:
            _flatten_reference_order(value, prefix + key + delimiter, delimiter, out)


@register
class ExtractFieldTransformer(Transformer):
    """The payload becomes the value at ``field`` (any JSON type)."""

    type_name = "extractField"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.path = Path(str(config.get("field") or "").strip())

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, ("field",))
        validation.path(fields, "field")
        return errors

    def transform(self, message: Message) -> list[Message]:
        if self.path.empty:
            return [message]
        value = self.path.get(take_doc(message))
        if value is MISSING:
            return [message]
        return [message.derive(encode(value))]


@register
class HoistFieldTransformer(Transformer):
    """The payload becomes ``{"<field>": <payload>}``, the payload bytes copied verbatim."""

    type_name = "hoistField"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        # The key is read like a one-segment path, exactly as extractField reads its field, so
        # hoistField(X) then extractField(X) gives the original back for every valid X.
        path = Path(str(config.get("field") or "").strip())
        key = path.segments[0] if len(path.segments) == 1 else path.text
        self.prefix = b"{" + encode(key) + b":" if key else b""

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, ("field",))
        value = validation.path(fields, "field")
        if value is not None and "." in normalize(value.strip()):
            fields.error("field", "must be a simple top-level key without dots")
        return errors

    def transform(self, message: Message) -> list[Message]:
        if not self.prefix or take_doc(message) is MISSING:
            return [message]
        return [message.derive(self.prefix + message.data + b"}")]


def _local_now() -> datetime:
    return datetime.now().astimezone()


#: A resolved insertField value for one message: (metadata, now) -> JSON value.
_Resolver = Callable[[Mapping[str, Any], Callable[[], datetime]], Any]


@register
class InsertFieldTransformer(Transformer):
    """Sets fields to literals, ``${now}``, ``${metadata.KEY}`` or ``json:`` values."""

    type_name = "insertField"
    clock: Callable[[], datetime] = staticmethod(_local_now)

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        fields = config.get("fields") or {}
        self.entries: list[tuple[Path, _Resolver]] = []
        self.error: str | None = None
        paths = [Path(str(key).strip()) for key in fields]
        for position, (path, raw) in enumerate(zip(paths, fields.values(), strict=True)):
            if path.empty:
                continue
            resolver = _resolver(str(raw), path, paths[position + 1:])
            if resolver is None:
                self.error = f'insertField "{path.text}": invalid json value "{raw}"'
                break
            self.entries.append((path, resolver))

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, ("fields",))
        values = fields.string_map("fields", required=True)
        for key, raw in values.items():
            if not normalize(key.strip()):
                errors.append(FieldError(f"{fields.at('fields')}.{key}", "must name a field"))
            if raw.startswith("json:") and decode_text(raw[5:]) is MISSING:
                errors.append(FieldError(f"{fields.at('fields')}.{key}", f"invalid json value {raw!r}"))
        return errors

    def transform(self, message: Message) -> list[Message]:
        doc = take_doc(message)
        if not isinstance(doc, dict):
            return [message]
        if self.error is not None:
            raise InvalidDataError(self.error)
        metadata = message.metadata
        for path, resolve in self.entries:
            path.set(doc, resolve(metadata, self.clock))
        return [message.derive(encode(doc))]


def _resolver(raw: str, path: Path, later: list[Path]) -> _Resolver | None:
    """How one configured value becomes a JSON value; None for an invalid ``json:`` value."""
    if raw == "${now}":
        return lambda metadata, clock: format_rfc3339(clock().replace(microsecond=0))
    if raw.startswith("${metadata.") and raw.endswith("}"):
        key = raw[len("${metadata."):-1]
        return lambda metadata, clock: metadata_text(metadata.get(key)) if key else ""
    if raw.startswith("json:"):
        value = decode_text(raw[5:])
        if value is MISSING:
            return None
        # A container that a later path writes into would be changed in place and carried into
        # the next message, so each message then gets its own copy.
        if isinstance(value, (dict, list)) and any(
                other.segments[:len(path.segments)] == path.segments for other in later):
            return lambda metadata, clock: copy.deepcopy(value)
        return lambda metadata, clock: value
    return lambda metadata, clock: raw

