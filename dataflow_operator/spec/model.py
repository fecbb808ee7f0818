"""The DataFlow spec: loading, normalisation of both encodings, and defaults.

Two encodings of a connector or transformation exist in the wild (connectors.md §1):
``{type: kafka, config: {...}}`` and ``{type: kafka, kafka: {...}}``. :func:`normalize` turns the
second into the first everywhere (including router route sinks), so nothing downstream sees it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..contract import RESET_CHECKPOINT_ANNOTATION

SPEC_DEFAULTS: dict[str, Any] = {
    "replicas": 1,
    "channelBufferSize": 100,
    "checkpointPersistence": True,
    "checkpointSyncOnAck": False,
    "checkpointSaveInterval": "30s",
    "checkpointReset": False,
    "ackGranularity": "batch",
    "strictIdempotency": False,
}
DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}
DEFAULT_ACK_POLICY = "afterWrite"


def normalize_component(component: Any) -> Any:
    """``{type, <type>: {...}}`` → ``{type, config: {...}}``; anything malformed is left for validation."""
    if not isinstance(component, Mapping):
        return component
    result = dict(component)
    type_ = result.get("type")
    if not isinstance(type_, str) or type_ in ("type", "config") or type_ not in result:
        return result
    if "config" not in result:
        result["config"] = result.pop(type_)
    else:
        # Both encodings at once: keep `config`, drop the other so nothing downstream is confused
        # (validation rejects the two when their contents differ).
        result.pop(type_)
    return result


def _normalize_transformation(entry: Any) -> Any:
    entry = normalize_component(entry)
    if isinstance(entry, dict) and entry.get("type") == "router" and isinstance(entry.get("config"), Mapping):
        config = dict(entry["config"])
        routes = config.get("routes")
        if isinstance(routes, list):
            config["routes"] = [
                {**route, "sink": normalize_component(route.get("sink"))} if isinstance(route, Mapping)
                else route
                for route in routes
            ]
        entry["config"] = config
    return entry


def normalize(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``spec`` with every component in ``{type, config}`` form."""
    result = copy.deepcopy(dict(spec))
    for key in ("source", "sink", "errors"):
        if key in result:
            result[key] = normalize_component(result[key])
    transformations = result.get("transformations")
    if isinstance(transformations, list):
        result["transformations"] = [_normalize_transformation(t) for t in transformations]
    return result


def with_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised spec with spec-level defaults filled in (connector defaults live with
    each connector)."""
    result = normalize(spec)
    for key, value in SPEC_DEFAULTS.items():
        result.setdefault(key, value)
    result.setdefault("transformations", [])
    errors = result.get("errors")
    if isinstance(errors, dict):
        errors.setdefault("ackPolicy", DEFAULT_ACK_POLICY)
    return result


def spec_from_document(document: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Accepts a whole DataFlow manifest or a bare spec; returns ``(spec, metadata)``.

    A document with ``kind``/``apiVersion``/``spec`` is a manifest; one with ``source`` at the top
    is a bare spec. Returns ``(None, {})`` when it is neither.
    """
    if not isinstance(document, Mapping):
        return None, {}
    if "spec" in document and ("kind" in document or "apiVersion" in document):
        spec = document.get("spec")
        metadata = document.get("metadata") or {}
        return (dict(spec) if isinstance(spec, Mapping) else None,
                dict(metadata) if isinstance(metadata, Mapping) else {})
    if "source" in document or "sink" in document:
        return dict(document), {}
    return None, {}


def reset_requested(spec: Mapping[str, Any], metadata: Mapping[str, Any]) -> bool:
    annotations = metadata.get("annotations") or {}
    return bool(spec.get("checkpointReset")) or str(annotations.get(RESET_CHECKPOINT_ANNOTATION, "")).lower() == "true"
