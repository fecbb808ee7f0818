"""Parsing a whole DataFlow spec into a :class:`~.api.DataFlowSpec`, reporting every problem with
its field path.

The same function serves ``dataflow-operator validate``, the processor at start-up and the
operator's reconciler, so a spec is judged identically everywhere. Connector configs are checked
and typed by their connector's config class, found through the connector registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from ..connectors import registry as connectors
from ..pipeline.api_fields import allowed_keys, build
from ..pipeline.config_fields import FieldError, Fields, SpecError, field_path, shown
from ..pipeline.timetext import parse_rfc3339
from ..transformers import registry as transformers
from .api import (
    ACK_GRANULARITIES,
    ACK_POLICIES,
    REPEATS,
    DataFlowSpec,
    ErrorSinkSpec,
    LocalObjectReference,
    Maintenance,
    ResourceClaim,
    Resources,
    SinkSpec,
    SourceSpec,
    TransformationSpec,
)
from .durations import parse_duration
from .model import normalize, normalize_component
from .quantities import quantity_problem
from .routes import ROUTER_TYPE, RouterSpec, RouteSpec, entry_rules
from .timezones import zone_problem

_Component = TypeVar("_Component", SourceSpec, SinkSpec)


def parse_spec(spec: Any, path: str = "spec") -> tuple[DataFlowSpec | None, list[FieldError]]:
    """The typed spec and no errors, or None and every problem found."""
    errors: list[FieldError] = []
    if not isinstance(spec, Mapping):
        return None, [FieldError(path, "must be an object")]
    _validate_component_keys(spec, path, errors)
    spec = normalize(spec)
    f = Fields(spec, path, errors)
    f.unknown_keys(allowed_keys(DataFlowSpec))

    source = sink = None
    if "source" not in spec:
        f.error("source", "required")
    else:
        source = _connector(SourceSpec, "source", spec["source"], f.at("source"), errors)
    if "sink" not in spec:
        f.error("sink", "required")
    else:
        sink = _connector(SinkSpec, "sink", spec["sink"], f.at("sink"), errors)
    error_sink = _error_sink(spec["errors"], f.at("errors"), errors) if spec.get("errors") is not None else None
    transformations = _transformations(spec.get("transformations"), f.at("transformations"), errors)

    source_type = spec["source"].get("type") if isinstance(spec.get("source"), Mapping) else None
    if not isinstance(source_type, str):
        source_type = None  # reported with the source; a list would not even be hashable below
    replicas = f.integer("replicas", minimum=1)
    if replicas is not None and replicas > 1 and source_type != "kafka":
        f.error("replicas", f"must be 1 for a {source_type} source (only kafka sources may scale out)")
    channel_buffer_size = f.integer("channelBufferSize", minimum=1)
    flags = {key: f.boolean(key) if f.has(key) else None
             for key in ("checkpointPersistence", "checkpointSyncOnAck", "checkpointReset", "strictIdempotency")}
    values = dict(
        replicas=replicas, channel_buffer_size=channel_buffer_size,
        checkpoint_persistence=flags["checkpointPersistence"], checkpoint_sync_on_ack=flags["checkpointSyncOnAck"],
        checkpoint_reset=flags["checkpointReset"], strict_idempotency=flags["strictIdempotency"],
        checkpoint_save_interval=_duration(f, "checkpointSaveInterval"),
        ack_granularity=f.string("ackGranularity", choices=ACK_GRANULARITIES),
        processor_image=f.string("processorImage", non_empty=True),
        processor_version=f.string("processorVersion", non_empty=True),
        **_pod_fields(f),
        maintenance=parse_maintenance(spec["maintenance"], f.at("maintenance"), errors)
        if spec.get("maintenance") is not None else None,
    )
    if spec.get("strictIdempotency") is True and source_type in connectors.POLLING_SOURCES:
        raw_sink = spec.get("sink")
        config = raw_sink.get("config") if isinstance(raw_sink, Mapping) else None
        if not (isinstance(config, Mapping) and config.get("upsertMode") is True):
            errors.append(FieldError(f"{path}.sink.config.upsertMode",
                                     "strictIdempotency requires upsertMode: true for a polling source"))
    errors = _unique(errors)
    if errors or source is None or sink is None:
        return None, errors
    return build(DataFlowSpec, source=source, sink=sink, transformations=transformations, errors=error_sink,
                 **values), []


def validate_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    return parse_spec(spec, path)[1]


def load_spec(spec: Any) -> DataFlowSpec:
    """The typed spec; raises :class:`SpecError` with every problem when it is not valid."""
    parsed, errors = parse_spec(spec)
    if parsed is None:
        raise SpecError(errors)
    return parsed


def _connector(cls: type[_Component], role: str, component: Any, path: str,
               errors: list[FieldError]) -> _Component | None:
    """``role`` is ``source`` or ``sink`` (error sinks and route sinks are sinks)."""
    before = len(errors)
    f = Fields(component, path, errors)
    if len(errors) > before:
        return None
    type_ = f.string("type", required=True)
    if type_ is None:
        return None
    config_class = connectors.config_class(role, type_)
    if config_class is None:
        errors.append(FieldError(f"{path}.type", f"unsupported {role} type {type_!r}; allowed: "
                                                 f"{', '.join(sorted(connectors.connector_types(role)))}"))
        return None
    if component.get("config") is None:
        errors.append(FieldError(f"{path}.config", "required"))
        return None
    config = config_class.parse(Fields(component["config"], f"{path}.config", errors))
    return cls(type_, config)


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
        errors.append(FieldError(field_path(path, type_), f"differs from {path}.config; give the settings once, "
                                                    f"as config or as {type_}"))


def _error_sink(component: Any, path: str, errors: list[FieldError]) -> ErrorSinkSpec | None:
    if not isinstance(component, Mapping):
        errors.append(FieldError(path, "must be an object"))
        return None
    sink = _connector(SinkSpec, "sink", {key: value for key, value in component.items() if key != "ackPolicy"},
                      path, errors)
    policy = Fields(component, path, errors).string("ackPolicy", choices=ACK_POLICIES)
    return None if sink is None else build(ErrorSinkSpec, type=sink.type, config=sink.config, ack_policy=policy)


def _transformations(value: Any, path: str, errors: list[FieldError]) -> tuple[TransformationSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        errors.append(FieldError(path, "must be a list"))
        return ()
    result = []
    for index, entry in enumerate(value):
        entry_path = f"{path}[{index}]"
        f = Fields(entry, entry_path, errors)
        if not isinstance(entry, Mapping):
            continue
        f.unknown_keys(allowed_keys(TransformationSpec))
        type_ = f.string("type", required=True)
        when = f.string("when")
        if type_ is None:
            continue
        config = entry.get("config")
        typed = transformers.parse(type_, config, entry_path, errors, when=when, rules=entry_rules())
        router = _router(config, when, f"{entry_path}.config", errors) if type_ == ROUTER_TYPE else None
        result.append(TransformationSpec(type_, typed, when, router))
    return tuple(result)


def _router(config: Any, when: str | None, path: str, errors: list[FieldError]) -> RouterSpec:
    """A router with its route sinks checked and typed as any sink (:class:`~.routes.RouterSpec`
    checks the rest of its config)."""
    routes: list[RouteSpec] = []
    if not isinstance(config, Mapping) or not isinstance(config.get("routes"), list):
        return RouterSpec(())
    for index, route in enumerate(config["routes"]):
        route_path = f"{path}.routes[{index}]"
        if not isinstance(route, Mapping):
            continue
        if "sink" not in route:
            errors.append(FieldError(f"{route_path}.sink", "required"))
            continue
        sink = _connector(SinkSpec, "sink", route["sink"], f"{route_path}.sink", errors)
        if sink is not None and isinstance(route.get("condition"), str):
            routes.append(RouteSpec(route["condition"], sink))
    return RouterSpec(tuple(routes), when if when is not None and when.strip() else None)


def _duration(f: Fields, key: str) -> str | None:
    """A positive Go duration."""
    text = f.string(key)
    if text is None:
        return None
    try:
        if parse_duration(text) <= 0:
            f.error(key, "must be positive")
    except ValueError as exc:
        f.error(key, str(exc))
    return text


def _pod_fields(f: Fields) -> dict[str, Any]:
    """The fields passed through to the processor pod, checked where the API server would not."""
    resources = f.obj("resources")
    resources.unknown_keys(allowed_keys(Resources))
    quantities = {key: _quantities(resources.obj(key)) for key in ("requests", "limits")}
    node_selector = f.string_map("nodeSelector")
    if f.has("affinity"):
        f.obj("affinity")
    tolerations = f.config.get("tolerations")
    if tolerations is not None and not isinstance(tolerations, list):
        f.error("tolerations", "must be a list")
    pull_secrets = []
    secrets = f.config.get("imagePullSecrets")
    if secrets is not None:
        if not isinstance(secrets, list):
            f.error("imagePullSecrets", "must be a list of {name}")
        else:
            for index, item in enumerate(secrets):
                name = Fields(item, f"{f.at('imagePullSecrets')}[{index}]", f.errors).string("name", required=True)
                pull_secrets.append(LocalObjectReference(name or ""))
    affinity = f.config.get("affinity")
    # An empty resources object means the defaults, as an absent one does.
    return dict(
        resources=Resources(_claims(resources.config.get("claims")), **quantities) if resources.config else None,
        node_selector=node_selector, affinity=dict(affinity) if isinstance(affinity, Mapping) else None,
        tolerations=tuple(item for item in tolerations if isinstance(item, Mapping))
        if isinstance(tolerations, list) else None,
        image_pull_secrets=tuple(pull_secrets))


def _quantities(quantities: Fields) -> dict[str, str | int]:
    result: dict[str, str | int] = {}
    for name, value in quantities.config.items():
        problem = quantity_problem(value)
        if problem is not None:
            quantities.error(str(name), problem)
        else:
            result[str(name)] = value
    return result


def _claims(value: Any) -> tuple[ResourceClaim, ...]:
    """core/v1 ResourceClaims, passed through (the API server checks their shape)."""
    if not isinstance(value, list):
        return ()
    return tuple(ResourceClaim(item["name"], item.get("request")) for item in value
                 if isinstance(item, Mapping) and isinstance(item.get("name"), str))


def parse_maintenance(value: Any, path: str, errors: list[FieldError]) -> Maintenance:
    f = Fields(value, path, errors)
    f.unknown_keys(allowed_keys(Maintenance))
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
    repeat = f.string("repeat", choices=REPEATS)
    timezone = f.string("timezone")
    if timezone:
        problem = zone_problem(timezone)
        if problem is not None:
            f.error("timezone", problem)
    return build(Maintenance, start_time=start, duration=duration, repeat=repeat, timezone=timezone or None,
                 description=f.string("description"), suspended=f.boolean("suspended"))


def _unique(errors: list[FieldError]) -> list[FieldError]:
    seen: set[FieldError] = set()
    result = []
    for error in errors:
        if error not in seen:
            seen.add(error)
            result.append(error)
    return result
