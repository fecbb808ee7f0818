"""debeziumUnwrap: a Debezium change envelope → the row it describes (transformations.md §4.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..pipeline.config_fields import FieldError
from ..pipeline.errors import InvalidDataError
from ..pipeline.message import Message
from ..pipeline.transformer import Transformer
from . import validation
from .jsonvalues import decode_text, encode, take_doc
from .registry import register

SNAPSHOT_OPERATIONS: Final = ("", "insert", "update")
# Debezium op letter → (the envelope field holding the row, the metadata operation).
_OPS: Final = {"c": ("after", "insert"), "u": ("after", "update"), "r": ("after", "insert"),
               "d": ("before", "delete")}


@register
class DebeziumUnwrapTransformer(Transformer):
    type_name = "debeziumUnwrap"
    config_optional = True

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.infer_delete = bool(config.get("inferDeleteFromTombstone", False))
        self.source_in_metadata = bool(config.get("includeSourceInMetadata", False))
        self.add_operation = bool(config.get("addOperationFields", False))
        self.source_fields = [key.strip() for key in config.get("addSourceFields") or []
                              if isinstance(key, str) and key.strip()]
        self.ops = dict(_OPS)
        if config.get("snapshotOperation") == "update":
            self.ops["r"] = ("after", "update")

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], path: str) -> list[FieldError]:
        fields, errors = validation.reader(config, path, (
            "inferDeleteFromTombstone", "includeSourceInMetadata", "snapshotOperation",
            "addOperationFields", "addSourceFields"))
        for key in ("inferDeleteFromTombstone", "includeSourceInMetadata", "addOperationFields"):
            fields.boolean(key)
        value = fields.config.get("snapshotOperation")
        if value is not None and value not in SNAPSHOT_OPERATIONS:
            fields.error("snapshotOperation", f"Unsupported value: {value!r}: supported values: "
                                              "\"insert\", \"update\"")
        fields.string_list("addSourceFields")
        return errors

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
