"""debeziumUnwrap: a Debezium change envelope → the row it describes (transformations.md §4.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ..pipeline.api_fields import api_field
from ..pipeline.config_fields import Fields
from ..pipeline.errors import InvalidDataError
from ..pipeline.message import Message
from ..pipeline.transformer import Transformer
from .jsonvalues import decode_text, encode, take_doc
from .registry import register

SNAPSHOT_OPERATIONS: Final = ("", "insert", "update")
# Debezium op letter → (the envelope field holding the row, the metadata operation).
_OPS: Final = {"c": ("after", "insert"), "u": ("after", "update"), "r": ("after", "insert"),
               "d": ("before", "delete")}


@dataclass(frozen=True, slots=True)
class DebeziumUnwrapConfig:
    infer_delete_from_tombstone: bool = api_field(
        "Turn a tombstone (empty payload) into a delete whose row is the record key, instead of dropping it.",
        default=False)
    include_source_in_metadata: bool = api_field("Copy every `payload.source` key into metadata as `source_<key>`.",
                                                 default=False)
    snapshot_operation: str = api_field("The metadata operation of a snapshot read (op `r`).", default="insert",
                                        enum=SNAPSHOT_OPERATIONS)
    add_operation_fields: bool = api_field("Add `__op` (the op letter) and `__deleted` (`\"true\"`/`\"false\"`) "
                                           "to the row.", default=False)
    add_source_fields: tuple[str, ...] = api_field("`payload.source` keys to copy into the row as `source_<key>`; "
                                                   "absent keys are skipped.", default=())

    @classmethod
    def parse(cls, f: Fields) -> DebeziumUnwrapConfig:
        infer_delete = f.boolean("inferDeleteFromTombstone")
        source_in_metadata = f.boolean("includeSourceInMetadata")
        add_operation = f.boolean("addOperationFields")
        value = f.config.get("snapshotOperation")
        if value is not None and value not in SNAPSHOT_OPERATIONS:
            f.error("snapshotOperation", f"Unsupported value: {value!r}: supported values: \"insert\", \"update\"")
        source_fields = f.string_list("addSourceFields")
        # Anything but "update" (blank, or a value validation refuses) means the default, as the reference reads it.
        return cls(infer_delete_from_tombstone=infer_delete, include_source_in_metadata=source_in_metadata,
                   snapshot_operation="update" if value == "update" else "insert",
                   add_operation_fields=add_operation,
                   add_source_fields=tuple(key.strip() for key in source_fields))


@register
class DebeziumUnwrapTransformer(Transformer):
    """A Debezium change event → the row it describes, with the operation in metadata."""

    type_name = "debeziumUnwrap"
    config_class = DebeziumUnwrapConfig
    config_optional = True

    def __init__(self, config: DebeziumUnwrapConfig) -> None:
        self.infer_delete = config.infer_delete_from_tombstone
        self.source_in_metadata = config.include_source_in_metadata
        self.add_operation = config.add_operation_fields
        self.source_fields = list(config.add_source_fields)
        self.ops = dict(_OPS)
        if config.snapshot_operation == "update":
            self.ops["r"] = ("after", "update")

    def transform(self, message: Message) -> list[Message]:
        data = message.data
        if not data.strip():
            return self._tombstone(message)
        root = take_doc(message)
        if not isinstance(root, dict):
            raise InvalidDataError("invalid JSON payload: not a JSON object")
        envelope = root.get("payload")
        if not isinstance(envelope, dict):
            return [message]  # not a Debezium envelope: mixed topics pass through
        op = envelope.get("op")
        if not isinstance(op, str) or not op:
            return [message]
        mapping = self.ops.get(op)
        if mapping is None:
            raise InvalidDataError(f'unsupported op "{op}"')
        field, operation = mapping
        row = envelope.get(field)
        if not isinstance(row, dict):
            raise InvalidDataError(f"payload.{field} must be object")
        source = envelope.get("source")
        if not isinstance(source, dict):
            source = {}
        if self.add_operation:
            row["__op"] = op
            row["__deleted"] = "true" if operation == "delete" else "false"
        for key in self.source_fields:
            if key in source:
                row[f"source_{key}"] = source[key]
        metadata = self._metadata(message, operation, row)
        if self.source_in_metadata:
            for key, value in source.items():
                metadata[f"source_{key}"] = value
        return [message.derive(encode(row), metadata)]

    def _tombstone(self, message: Message) -> list[Message]:
        """An empty value is a Kafka tombstone: dropped, or a delete rebuilt from the record key."""
        if not self.infer_delete:
            return []
        key = message.metadata.get("key")
        if isinstance(key, (bytes, bytearray)):
            key = bytes(key).decode("utf-8", errors="replace")
        if not isinstance(key, str) or not key.strip():
            return []
        parsed = decode_text(key)
        if not isinstance(parsed, dict):
            return []
        inner = parsed.get("payload")
        row: dict[str, Any] = inner if isinstance(inner, dict) else parsed  # Connect JSON with schema
        if self.add_operation:
            row["__op"] = "d"
            row["__deleted"] = "true"
        return [message.derive(encode(row), self._metadata(message, "delete", row))]

    @staticmethod
    def _metadata(message: Message, operation: str, row: dict[str, Any]) -> dict[str, Any]:
        metadata = dict(message.metadata)
        metadata["operation"] = operation
        if "id" in row:
            metadata["id"] = row["id"]
        return metadata
