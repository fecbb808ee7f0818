"""Field-level reshaping (transformations.md §4.2 to §4.4, §5.1, §5.2, §5.5): replaceField,
headersToPayload, structFlatten, extractField, hoistField, insertField."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ..pipeline.api_fields import api_field, build
from ..pipeline.config_fields import FieldError, Fields, field_path
from ..pipeline.errors import InvalidDataError
from ..pipeline.message import Message
from ..pipeline.timetext import format_rfc3339
from ..pipeline.transformer import Transformer
from . import validation
from .jsonvalues import MISSING, decode_text, encode, metadata_text, take_doc
from .paths import Path, normalize
from .registry import register
from .validation import FieldConfig


def _split_pair(text: str) -> tuple[str, str] | None:
    """``left:right`` split at the first colon, both halves trimmed; None when either is blank."""
    left, colon, right = text.partition(":")
    left, right = left.strip(), right.strip()
    if not colon or not left or not right:
        return None
    return left, right


def _has_errors(f: Fields) -> bool:
    """Whether this config object has a problem reported so far. ``f.errors`` may also hold the
    rest of the spec's problems (and the entry's ``when``), which do not count."""
    return any(error.path == f.path or error.path.startswith(f.path + ".") for error in f.errors)


@dataclass(frozen=True, slots=True)
class ReplaceFieldConfig:
    renames: tuple[str, ...] = api_field("`oldPath:newPath` pairs: each moves a value, creating new parents and "
                                         "pruning the parents the old field leaves empty.", default=())
    include: tuple[str, ...] = api_field("Paths of the fields to keep, at their nested place (not with `exclude`).",
                                         default=())
    exclude: tuple[str, ...] = api_field("Paths of the fields to delete, with any parent object they leave empty "
                                         "(not with `include`).", default=())

    @classmethod
    def parse(cls, f: Fields) -> ReplaceFieldConfig:
        renames = validation.pair_list(f, "renames", "oldPath:newPath", required=False)
        include = f.string_list("include")
        exclude = f.string_list("exclude")
        if not (renames or include or exclude) and not _has_errors(f):
            f.errors.append(FieldError(f.path, "at least one of renames, include, or exclude is required"))
        if include and exclude:
            f.error("exclude", "include and exclude are mutually exclusive")
        # Renames stay as written: a malformed one fails each object payload (reference behaviour).
        return cls(renames=tuple(renames), include=tuple(item.strip() for item in include),
                   exclude=tuple(item.strip() for item in exclude))


@register
class ReplaceFieldTransformer(Transformer):
    """Keep (include) or drop (exclude) fields, then rename; emptied parents are pruned."""

    type_name = "replaceField"
    config_class = ReplaceFieldConfig

    def __init__(self, config: ReplaceFieldConfig) -> None:
        self.include = [Path(item) for item in config.include]
        self.exclude = [Path(item) for item in config.exclude]
        self.renames: list[tuple[Path, Path]] = []
        self.bad_rename: str | None = None
        for rename in config.renames:
            pair = _split_pair(rename)
            if pair is None:
                self.bad_rename = rename
                break
            old, new = Path(pair[0]), Path(pair[1])
            if old.text != new.text and not old.empty and not new.empty:
                self.renames.append((old, new))

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


@dataclass(frozen=True, slots=True)
class HeadersToPayloadConfig:
    mappings: tuple[str, ...] = api_field("`HeaderName:field.path` pairs, split at the first `:`, both sides "
                                          "trimmed; header names match exactly.")

    @classmethod
    def parse(cls, f: Fields) -> HeadersToPayloadConfig:
        # As written: a malformed mapping fails each message with headers (reference behaviour).
        return cls(mappings=tuple(validation.pair_list(f, "mappings", "headerName:fieldPath", required=True)))


@register
class HeadersToPayloadTransformer(Transformer):
    """Copies Kafka headers (``metadata["headers"]``) into the payload as strings."""

    type_name = "headersToPayload"
    config_class = HeadersToPayloadConfig

    def __init__(self, config: HeadersToPayloadConfig) -> None:
        self.mappings: list[tuple[str, Path]] = []
        self.bad_mapping: str | None = None
        for mapping in config.mappings:
            pair = _split_pair(mapping)
            if pair is None:
                self.bad_mapping = mapping
                break
            self.mappings.append((pair[0], Path(pair[1])))

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


@dataclass(frozen=True, slots=True)
class StructFlattenConfig:
    delimiter: str = api_field("Joins the keys of nested objects; it may not be `\"\"`, and surrounding spaces "
                               "are trimmed.", default=".")

    @classmethod
    def parse(cls, f: Fields) -> StructFlattenConfig:
        delimiter = f.string("delimiter")
        if delimiter == "":
            f.error("delimiter", "delimiter must be a non-empty string")
        # Blank means the default, as the reference reads it.
        return build(cls, delimiter=(delimiter or "").strip() or None)


@register
class StructFlattenTransformer(Transformer):
    """Nested objects → one level, keys joined by ``delimiter``; arrays stay whole."""

    type_name = "structFlatten"
    config_class = StructFlattenConfig
    config_optional = True

    def __init__(self, config: StructFlattenConfig) -> None:
        self.delimiter = config.delimiter

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
    config_class = FieldConfig

    def __init__(self, config: FieldConfig) -> None:
        self.path = Path(config.field)

    def transform(self, message: Message) -> list[Message]:
        if self.path.empty:
            return [message]
        value = self.path.get(take_doc(message))
        if value is MISSING:
            return [message]
        return [message.derive(encode(value))]


@dataclass(frozen=True, slots=True)
class HoistFieldConfig:
    field: str = api_field("The key to wrap the payload in: a top-level key without dots.")

    @classmethod
    def parse(cls, f: Fields) -> HoistFieldConfig:
        value = validation.path(f, "field")
        if value is not None and "." in normalize(value.strip()):
            f.error("field", "must be a simple top-level key without dots")
        return cls(field=(value or "").strip())


@register
class HoistFieldTransformer(Transformer):
    """The payload becomes ``{"<field>": <payload>}``, the payload bytes copied verbatim."""

    type_name = "hoistField"
    config_class = HoistFieldConfig

    def __init__(self, config: HoistFieldConfig) -> None:
        # The key is read like a one-segment path, exactly as extractField reads its field, so
        # hoistField(X) then extractField(X) gives the original back for every valid X.
        path = Path(config.field)
        key = path.segments[0] if len(path.segments) == 1 else path.text
        self.prefix = b"{" + encode(key) + b":" if key else b""

    def transform(self, message: Message) -> list[Message]:
        if not self.prefix or take_doc(message) is MISSING:
            return [message]
        return [message.derive(self.prefix + message.data + b"}")]


def _local_now() -> datetime:
    return datetime.now().astimezone()


#: A resolved insertField value for one message: (metadata, now) -> JSON value.
_Resolver = Callable[[Mapping[str, Any], Callable[[], datetime]], Any]


@dataclass(frozen=True, slots=True)
class InsertFieldConfig:
    fields: Mapping[str, str] = api_field("Path → value, applied in the order written: `${now}`, "
                                          "`${metadata.KEY}`, `json:<JSON>` or a literal string.")

    @classmethod
    def parse(cls, f: Fields) -> InsertFieldConfig:
        values = f.string_map("fields", required=True)
        for key, raw in values.items():
            if not normalize(key.strip()):
                f.errors.append(FieldError(field_path(f.at("fields"), key), "must name a field"))
            if raw.startswith("json:") and decode_text(raw[5:]) is MISSING:
                f.errors.append(FieldError(field_path(f.at("fields"), key), f"invalid json value {raw!r}"))
        # Keys as written (trimmed into paths by the transformer): trimming here could merge two
        # entries, and each is applied in turn. An invalid json: value fails each object payload.
        return cls(fields=values)


@register
class InsertFieldTransformer(Transformer):
    """Sets fields to literals, ``${now}``, ``${metadata.KEY}`` or ``json:`` values."""

    type_name = "insertField"
    config_class = InsertFieldConfig
    clock: Callable[[], datetime] = staticmethod(_local_now)

    def __init__(self, config: InsertFieldConfig) -> None:
        fields = config.fields
        self.entries: list[tuple[Path, _Resolver]] = []
        self.error: str | None = None
        paths = [Path(key.strip()) for key in fields]
        for position, (path, raw) in enumerate(zip(paths, fields.values(), strict=True)):
            if path.empty:
                continue
            resolver = _resolver(raw, path, paths[position + 1:])
            if resolver is None:
                self.error = f'insertField "{path.text}": invalid json value "{raw}"'
                break
            self.entries.append((path, resolver))

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

