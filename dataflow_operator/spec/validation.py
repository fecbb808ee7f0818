"""Validation of a whole DataFlow spec, reporting every problem with its field path.

The same function serves ``dataflow-operator validate``, the processor at start-up and the
operator's reconciler, so a spec is judged identically everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..pipeline.config_fields import FieldError, Fields, shown
from ..pipeline.timetext import parse_rfc3339
from ..transformers import registry as transformers
from .connector_configs import POLLING_SOURCES, validate_connector
from .durations import parse_duration
from .model import normalize, normalize_component
from .quantities import quantity_problem
from .routes import entry_rules
from .timezones import zone_problem

SPEC_KEYS = ("source", "sink", "transformations", "errors", "resources", "nodeSelector", "affinity",
             "tolerations", "imagePullSecrets", "processorImage", "processorVersion", "replicas",
             "channelBufferSize", "checkpointPersistence", "checkpointSyncOnAck", "checkpointSaveInterval",
             "checkpointReset", "ackGranularity", "strictIdempotency", "maintenance")
ACK_POLICIES = ("afterWrite", "never", "afterMainSinkSuccess")
MAINTENANCE_KEYS = ("startTime", "duration", "repeat", "timezone", "description", "suspended")


def validate_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(spec, Mapping):
        return [FieldError(path, "must be an object")]
    _validate_component_keys(spec, path, errors)
    spec = normalize(spec)
    f = Fields(spec, path, errors)
    f.unknown_keys(SPEC_KEYS)

    if "source" not in spec:
        f.error("source", "required")
    else:
        errors.extend(validate_connector("source", spec["source"], f.at("source")))
    if "sink" not in spec:
        f.error("sink", "required")
    else:
        errors.extend(validate_connector("sink", spec["sink"], f.at("sink")))
    if spec.get("errors") is not None:
        _validate_error_sink(spec["errors"], f.at("errors"), errors)
    _validate_transformations(spec.get("transformations"), f.at("transformations"), errors)

    source_type = spec["source"].get("type") if isinstance(spec.get("source"), Mapping) else None
    if not isinstance(source_type, str):
        source_type = None  # reported with the source; a list would not even be hashable below
    replicas = f.integer("replicas", 1, minimum=1)
    if replicas is not None and replicas > 1 and source_type != "kafka":
        f.error("replicas", f"must be 1 for a {source_type} source (only kafka sources may scale out)")
    f.integer("channelBufferSize", 100, minimum=1)
    for key in ("checkpointPersistence", "checkpointSyncOnAck", "checkpointReset", "strictIdempotency"):
        f.boolean(key)
    interval = f.string("checkpointSaveInterval")
    if interval is not None:
        try:
            if parse_duration(interval) <= 0:
                f.error("checkpointSaveInterval", "must be positive")
        except ValueError as exc:
            f.error("checkpointSaveInterval", str(exc))
    f.string("ackGranularity", choices=("batch", "message"))
    f.string("processorImage", non_empty=True)
    f.string("processorVersion", non_empty=True)
    _validate_pod_fields(f)
    if spec.get("maintenance") is not None:
        validate_maintenance(spec["maintenance"], f.at("maintenance"), errors)
    if spec.get("strictIdempotency") is True and source_type in POLLING_SOURCES:
        sink = spec.get("sink")
        config = sink.get("config") if isinstance(sink, Mapping) else None
        if not (isinstance(config, Mapping) and config.get("upsertMode") is True):
            errors.append(FieldError(f"{path}.sink.config.upsertMode",
                                     "strictIdempotency requires upsertMode: true for a polling source"))
    return _unique(errors)


def _validate_component_keys(spec: Mapping[str, Any], path: str, errors: list[FieldError]) -> None:
    """Connector-level keys, checked before normalisation drops the typed encoding: only
    ``type``, ``config`` and ``<type>`` (and ``ackPolicy`` for the error sink), and ``config``
    and ``<type>`` both present only with the same contents."""
    for key, extra in (("source", ()), ("sink", ()), ("errors", ("ackPolicy",))):
        _check_component(spec.get(key), f"{path}.{key}", ("type", "config", *extra), errors)
    transformations = spec.get("transformations")
    if not isinstance(transformations, list):
        return
    for index, entry in enumerate(transformations):
        entry_path = f"{path}.transformations[{index}]"
        _check_encodings(entry, entry_path, errors)  # its other keys are checked with the entry
        normalized = normalize_component(entry)
        config = normalized.get("config") if isinstance(normalized, Mapping) else None
        routes = config.get("routes") if isinstance(config, Mapping) and normalized.get("type") == "router" else None
        for route_index, route in enumerate(routes if isinstance(routes, list) else ()):
            if isinstance(route, Mapping):
                _check_component(route.get("sink"), f"{entry_path}.config.routes[{route_index}].sink",
                                 ("type", "config"), errors)


def _check_component(component: Any, path: str, allowed: tuple[str, ...], errors: list[FieldError]) -> None:
    if not isinstance(component, Mapping):
        return  # reported by the component's own validation
    type_ = component.get("type")
    Fields(component, path, errors).unknown_keys((*allowed, type_) if isinstance(type_, str) else allowed)
    _check_encodings(component, path, errors)


def _check_encodings(component: Any, path: str, errors: list[FieldError]) -> None:
    if not isinstance(component, Mapping):
        return
    type_ = component.get("type")
    if isinstance(type_, str) and type_ not in ("type", "config") and type_ in component \
            and "config" in component and component[type_] != component["config"]:
        errors.append(FieldError(f"{path}.{type_}", f"differs from {path}.config; give the settings once, "
                                                    f"as config or as {type_}"))


def _validate_error_sink(component: Any, path: str, errors: list[FieldError]) -> None:
    if not isinstance(component, Mapping):
        errors.append(FieldError(path, "must be an object"))
        return
    sink = {key: value for key, value in component.items() if key != "ackPolicy"}
    errors.extend(validate_connector("sink", sink, path))
    Fields(component, path, errors).string("ackPolicy", choices=ACK_POLICIES)


def _validate_transformations(value: Any, path: str, errors: list[FieldError]) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        errors.append(FieldError(path, "must be a list"))
        return
    for index, entry in enumerate(value):
        entry_path = f"{path}[{index}]"
        f = Fields(entry, entry_path, errors)
        if not isinstance(entry, Mapping):
            continue
        f.unknown_keys(("type", "config", "when"))
        type_ = f.string("type", required=True)
        when = f.string("when")
        if type_ is None:
            continue
        config = entry.get("config")
        errors.extend(transformers.validate(type_, config, entry_path, when=when, rules=entry_rules()))
        if type_ == "router" and isinstance(config, Mapping) and isinstance(config.get("routes"), list):
            for route_index, route in enumerate(config["routes"]):
                route_path = f"{entry_path}.config.routes[{route_index}]"
                if isinstance(route, Mapping):
                    if "sink" in route:
                        errors.extend(validate_connector("sink", route["sink"], f"{route_path}.sink"))
                    else:
                        errors.append(FieldError(f"{route_path}.sink", "required"))


def _validate_pod_fields(f: Fields) -> None:
    resources = f.obj("resources")
    resources.unknown_keys(("requests", "limits", "claims"))
    for key in ("requests", "limits"):
        quantities = resources.obj(key)
        for name, value in quantities.config.items():
            problem = quantity_problem(value)
            if problem is not None:
                quantities.error(str(name), problem)
    f.string_map("nodeSelector")
    if f.has("affinity"):
        f.obj("affinity")
    tolerations = f.config.get("tolerations")
    if tolerations is not None and not isinstance(tolerations, list):
        f.error("tolerations", "must be a list")
    secrets = f.config.get("imagePullSecrets")
    if secrets is not None:
        if not isinstance(secrets, list):
            f.error("imagePullSecrets", "must be a list of {name}")
        else:
            for index, item in enumerate(secrets):
                Fields(item, f"{f.at('imagePullSecrets')}[{index}]", f.errors).string("name", required=True)


def validate_maintenance(value: Any, path: str, errors: list[FieldError]) -> None:
    f = Fields(value, path, errors)
    f.unknown_keys(MAINTENANCE_KEYS)
    start = f.string("startTime")
    duration = f.string("duration")
    if (start is None) != (duration is None):
        f.error("duration" if start is not None else "startTime", "startTime and duration must be set together")
    if start is not None:
        try:
            parse_rfc3339(start)
        except ValueError:
            f.error("startTime", f"must be an RFC3339 time such as 2026-01-31T02:00:00Z; got {shown(start)}")
    if duration is not None:
        try:
            if parse_duration(duration) <= 0:
                f.error("duration", "must be positive")
        except ValueError as exc:
            f.error("duration", str(exc))
    f.string("repeat", choices=("daily", "weekly", "monthly", ""))
    timezone = f.string("timezone")
    if timezone:
        problem = zone_problem(timezone)
        if problem is not None:
            f.error("timezone", problem)
    f.string("description")
    f.boolean("suspended")


def _unique(errors: list[FieldError]) -> list[FieldError]:
    seen: set[FieldError] = set()
    result = []
    for error in errors:
        if error not in seen:
            seen.add(error)
            result.append(error)
    return result
