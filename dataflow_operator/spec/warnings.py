"""Fields a valid spec sets that have no effect: reported as warnings, never as errors.

Each rule names a field the processor or the operator really ignores in that combination (read
from the code that would use it, not guessed): the spec stays valid, but a user who set the field
expected it to do something. ``dataflow-operator validate`` prints these as ``warning:`` lines and
the admission webhook returns them as AdmissionResponse warnings (``kubectl`` prints
``Warning: ...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..pipeline.config_fields import FieldError
from ..transformers.conditions import unread_operators
from .model import normalize, normalize_component

#: Fields that steer the checkpoint store (processor/runtime.py, processor/checkpoint.py).
CHECKPOINT_FIELDS = ("checkpointPersistence", "checkpointSyncOnAck", "checkpointSaveInterval", "checkpointReset")
#: Fields that steer how often the store is written; moot when positions live in memory.
SAVE_FIELDS = ("checkpointSyncOnAck", "checkpointSaveInterval")


def spec_warnings(spec: Any, path: str = "spec") -> list[FieldError]:
    """Warnings for a spec that :func:`~.validation.validate_spec` accepted (on an invalid one
    they may be incomplete, never wrong)."""
    if not isinstance(spec, Mapping):
        return []
    warnings: list[FieldError] = []
    source = normalize_component(spec.get("source"))
    source_type = source.get("type") if isinstance(source, Mapping) else None
    if source_type == "kafka":
        # The Kafka source keeps its position as the consumer group's committed offsets and never
        # opens the checkpoint store (connectors/kafka/source.py).
        for key in CHECKPOINT_FIELDS:
            if key in spec:
                warnings.append(FieldError(f"{path}.{key}", _KAFKA_IGNORES[key]))
    elif spec.get("checkpointPersistence") is False:
        for key in SAVE_FIELDS:
            if key in spec:
                warnings.append(FieldError(f"{path}.{key}", "ignored: checkpointPersistence is false, so "
                                                            "positions are kept in memory only and never saved"))
    image, version = spec.get("processorImage"), spec.get("processorVersion")
    if isinstance(image, str) and isinstance(version, str) and version and _has_tag_or_digest(image):
        warnings.append(FieldError(f"{path}.processorImage",
                                   f"its tag or digest is replaced by processorVersion ({version}); give the "
                                   f"image without one, or drop processorVersion"))
    warnings.extend(_condition_warnings(spec, path))
    return warnings


def _condition_warnings(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    """Conditions (filter, router routes, ``when``) that compare in a way the language does not: such a
    condition is valid, as in the reference, but tests a field named like ``n > 10`` instead."""
    entries = normalize(spec).get("transformations")
    if not isinstance(entries, list):
        return []
    conditions: list[tuple[str, Any]] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            continue
        at = f"{path}.transformations[{index}]"
        conditions.append((f"{at}.when", entry.get("when")))
        config = entry.get("config")
        if not isinstance(config, Mapping):
            continue
        if entry.get("type") == "filter":
            conditions.append((f"{at}.config.condition", config.get("condition")))
        routes = config.get("routes") if entry.get("type") == "router" else None
        for route_index, route in enumerate(routes if isinstance(routes, list) else []):
            if isinstance(route, Mapping):
                conditions.append((f"{at}.config.routes[{route_index}].condition", route.get("condition")))
    return [FieldError(field, f"{', '.join(found)}: not a comparison of the condition language (only == and "
                              f"!= with a space or a quote after them, &&, ||, !), so this part is read as the "
                              f"name of a field, not as a comparison")
            for field, text in conditions if isinstance(text, str) and (found := unread_operators(text))]


_KAFKA_POSITION = "a kafka source keeps its position as the consumer group's committed offsets"
_KAFKA_IGNORES = {
    "checkpointPersistence": f"ignored: {_KAFKA_POSITION}, never in a checkpoint",
    "checkpointSyncOnAck": f"ignored: {_KAFKA_POSITION}, committed as messages are acknowledged",
    "checkpointSaveInterval": f"ignored: {_KAFKA_POSITION}, committed as messages are acknowledged",
    "checkpointReset": f"ignored: {_KAFKA_POSITION}; reset them with kafka-consumer-groups --reset-offsets "
                       f"or use a new consumerGroup",
}


def _has_tag_or_digest(image: str) -> bool:
    """``repo:tag`` or ``repo@sha256:…`` (a registry's ``host:port/`` is not a tag)."""
    if "@" in image:
        return True
    return ":" in image.rsplit("/", 1)[-1]
