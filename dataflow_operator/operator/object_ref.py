"""Which Kubernetes object something is about, read once off its API body at the edge: the owner
references of what a DataFlow owns, and the ``involvedObject`` of the Events recorded for it, are
built from this, never from the whole object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        """``obj``'s identity; a field it lacks is empty (list items may carry no apiVersion or kind)."""
        metadata = obj.get("metadata") or {}
        return cls(api_version=str(obj.get("apiVersion", "")), kind=str(obj.get("kind", "")),
                   namespace=str(metadata.get("namespace", "")), name=str(metadata.get("name", "")),
                   uid=str(metadata.get("uid", "")))

    def involved_object(self) -> dict[str, str]:
        """core/v1 ObjectReference, as an Event names its object."""
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name,
                "namespace": self.namespace, "uid": self.uid}
