"""The DataFlow API as frozen, typed objects: what a spec means once it has been parsed.

:func:`dataflow_operator.spec.validation.parse_spec` builds a :class:`DataFlowSpec` from the
manifest's plain values in one pass that also reports every problem with its field path. Every
spec-level default is the default of a field here and nowhere else (``field_default`` reads one);
each connector's config class, beside its connector, holds that connector's defaults. The CRD's
``openAPIV3Schema`` and docs/reference.md are generated from these classes
(``python -m dataflow_operator.spec.generate``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..connectors.registry import connector_types
from ..pipeline.api_fields import api_field
from .routes import RouterSpec, entry_rules

ACK_POLICIES = ("afterWrite", "never", "afterMainSinkSuccess")
ACK_GRANULARITIES = ("batch", "message")
REPEATS = ("daily", "weekly", "monthly", "")
#: A Kubernetes resource quantity (k8s.io/apimachinery's pattern), as the API server checks it.
QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
                    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
_QUANTITIES = {"type": "object", "additionalProperties": {
    "anyOf": [{"type": "integer"}, {"type": "string"}], "pattern": QUANTITY_PATTERN,
    "x-kubernetes-int-or-string": True}}
_CONFIG = "Connector configuration (docs/reference.md lists each type's keys); SecretRefs allowed where documented."


def _source_types() -> list[str]:
    return connector_types("source")


def _sink_types() -> list[str]:
    return connector_types("sink")


def _transformation_types() -> list[str]:
    return list(entry_rules())


#: A connector's typed config: one of the config classes of the connector registry
#: (``KafkaSourceConfig``, ``PostgreSQLSinkConfig``, ...).
ConnectorConfig = object
#: A transformation's typed config: its transformer's ``config_class`` (``MaskConfig``, ...).
TransformationConfig = object


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Where messages are read from."""

    ENCODED_BY_TYPE: ClassVar[bool] = True

    type: str = api_field("Connector type.", choices=_source_types)
    config: ConnectorConfig = api_field(_CONFIG, free_form=True, required=False)


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """Where messages are written to."""

    ENCODED_BY_TYPE: ClassVar[bool] = True

    type: str = api_field("Connector type.", choices=_sink_types)
    config: ConnectorConfig = api_field(_CONFIG, free_form=True, required=False)


@dataclass(frozen=True, slots=True)
class ErrorSinkSpec(SinkSpec):
    """Optional error sink: receives the messages the main sink could not take."""

    ack_policy: str = api_field("When a message sent to the error sink is acknowledged at the source.",
                                default="afterWrite", enum=ACK_POLICIES)


@dataclass(frozen=True, slots=True)
class TransformationSpec:
    ENCODED_BY_TYPE: ClassVar[bool] = True

    type: str = api_field("Transformation type.", choices=_transformation_types)
    #: The transformer's typed config (its ``config_class``); None for ``router``, whose config is
    #: :attr:`router`, and for an entry that failed validation.
    config: TransformationConfig = api_field("Transformation configuration (docs/reference.md lists each type's "
                                             "keys); may be omitted for types whose settings are all optional.",
                                             default=None, free_form=True)
    when: str | None = api_field("Condition (the filter/router condition language); the transformation "
                                 "applies only to messages that match.", default=None)
    #: A ``router`` entry's routes with their typed sinks, parsed with the spec.
    router: RouterSpec | None = api_field(default=None, in_api=False)


@dataclass(frozen=True, slots=True)
class ResourceClaim:
    name: str = api_field()
    request: str | None = api_field(default=None)


@dataclass(frozen=True, slots=True)
class Resources:
    """core/v1 ResourceRequirements."""

    claims: tuple[ResourceClaim, ...] = api_field(default=(), extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    limits: Mapping[str, str | int] = api_field(default_factory=dict, schema=_QUANTITIES)
    requests: Mapping[str, str | int] = api_field(default_factory=dict, schema=_QUANTITIES)

    def manifest(self) -> dict[str, Any]:
        """The container's ``resources`` (only the parts that are set)."""
        result: dict[str, Any] = {}
        if self.claims:
            result["claims"] = [{"name": claim.name, **({"request": claim.request} if claim.request else {})}
                                for claim in self.claims]
        for key, quantities in (("limits", self.limits), ("requests", self.requests)):
            if quantities:
                result[key] = dict(quantities)
        return result


def default_resources() -> Resources:
    return Resources(limits={"cpu": "500m", "memory": "512Mi"}, requests={"cpu": "100m", "memory": "128Mi"})


@dataclass(frozen=True, slots=True)
class LocalObjectReference:
    name: str = api_field(required=False)  # as in core/v1; validation requires it


@dataclass(frozen=True, slots=True)
class Maintenance:
    """Maintenance window or manual suspension: the processor is scaled to 0 while active."""

    start_time: str | None = api_field("Start of the (first) window, RFC3339; set together with duration.",
                                       default=None, format="date-time")
    duration: str | None = api_field("Length of the window, a Go duration such as 2h30m.", default=None)
    repeat: str = api_field("Repetition; empty for a one-off window.", default="", enum=REPEATS)
    timezone: str = api_field("IANA time zone of startTime's wall-clock repetition.", default="UTC")
    description: str | None = api_field(default=None)
    suspended: bool = api_field("Stop the processor until set back to false.", default=False)


@dataclass(frozen=True, slots=True)
class DataFlowSpec:
    """The pipeline: source, transformations, sink and optional error sink, and how its processor runs."""

    CRD_EXTENSIONS: ClassVar[Mapping[str, Any]] = {"x-kubernetes-validations": [{
        "rule": "!has(self.replicas) || self.replicas <= 1 || self.source.type == 'kafka'",
        "message": "replicas greater than 1 is allowed only for a kafka source (other sources share one checkpoint)",
        "fieldPath": ".replicas"}]}

    source: SourceSpec = api_field("Where messages are read from.")
    sink: SinkSpec = api_field("Where messages are written to.")
    transformations: tuple[TransformationSpec, ...] = api_field("Applied in list order.", default=())
    errors: ErrorSinkSpec | None = api_field("Optional error sink: receives the messages the main sink could "
                                             "not take.", default=None)
    resources: Resources = api_field("Processor container resources.", default_factory=default_resources)
    node_selector: Mapping[str, str] = api_field("Passed to the processor pod.", default_factory=dict)
    affinity: Mapping[str, Any] = api_field("Passed to the processor pod (core/v1 Affinity).",
                                            default_factory=dict, free_form=True)
    tolerations: tuple[Mapping[str, Any], ...] = api_field("Passed to the processor pod (core/v1 Toleration).",
                                                           default=(), free_form=True)
    image_pull_secrets: tuple[LocalObjectReference, ...] = api_field("Passed to the processor pod.", default=())
    processor_image: str | None = api_field("Processor image; default: the operator's PROCESSOR_IMAGE.",
                                            default=None)
    processor_version: str | None = api_field("Processor image tag, applied to the default processor image.",
                                              default=None)
    replicas: int = api_field("Processor pods (more than 1 only for a kafka source).", default=1, minimum=1,
                              format="int32")
    channel_buffer_size: int = api_field("Capacity of every internal queue.", default=100, minimum=1,
                                         format="int32")
    checkpoint_persistence: bool = api_field("Keep polling sources' read positions in a ConfigMap.",
                                             default=True)
    checkpoint_sync_on_ack: bool = api_field("Save the checkpoint right after each acknowledgement, at most once "
                                             "per checkpointSaveInterval.", default=False)
    checkpoint_save_interval: str = api_field("Debounce of checkpoint writes, a Go duration.", default="30s")
    checkpoint_reset: bool = api_field("One-shot: the processor starts from the beginning; the operator clears "
                                       "the flag afterwards.", default=False)
    ack_granularity: str = api_field("Acknowledge per written batch or per message.", default="batch",
                                     enum=ACK_GRANULARITIES)
    strict_idempotency: bool = api_field("Reject a polling source with a main sink that is not idempotent "
                                         "(false: warn only).", default=False)
    maintenance: Maintenance | None = api_field("Maintenance window or manual suspension: the processor is "
                                                "scaled to 0 while active.", default=None)
