"""Building a pipeline from a spec, kept apart from running it (as Benthos' constructor builds the
pipeline, then runs it): :func:`build_pipeline` turns a validated spec with defaults into a
:class:`~.engine.Pipeline` whose parts are all made.

What assembly uses is passed in, never looked up in module state: :class:`Factories` make the
connectors and transformers (production uses the registries; tests and benches pass their own),
:class:`RunSettings` hold what is not in the spec (retry delays, a pending checkpoint reset), and
:class:`Services` what the process provides (identity, metrics, checkpoint store, progress).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..connectors import registry as connectors
from ..pipeline.connector import ConnectorContext, PipelineSettings, Sink, Source
from ..spec.durations import parse_duration
from ..spec.model import DEFAULT_ACK_POLICY, SPEC_DEFAULTS
from ..spec.routes import ROUTER_TYPE, RouterSpec
from ..transformers import registry as transformers
from .chain import Step, TransformChain
from .engine import Pipeline, PipelineParts, Services
from .error_sink import ErrorSinkWriter
from .routes import RouteChoice, RouteTable

SourceFactory = Callable[[Mapping[str, Any], ConnectorContext], Source]
SinkFactory = Callable[[Mapping[str, Any], ConnectorContext], Sink]
TransformerFactory = Callable[[str, Mapping[str, Any] | None, str | None], Step]


@dataclass(frozen=True, slots=True)
class Factories:
    """Make a connector from its ``{type, config}`` component, a transformer from its entry."""

    source: SourceFactory = connectors.create_source
    sink: SinkFactory = connectors.create_sink
    transformer: TransformerFactory = transformers.build


#: Three attempts, 0.5 s doubling (docs/delivery.md).
RETRY_DELAYS = (0.5, 1.0)


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How this run behaves beyond the spec."""

    #: Waits between attempts at a batch whose write timed out (main and route sinks).
    write_retry_delays: tuple[float, ...] = RETRY_DELAYS
    #: Waits between attempts at error records the error sink could not take for environmental reasons.
    error_sink_retry_delays: tuple[float, ...] = RETRY_DELAYS
    #: Sources start from nothing, discarding their stored positions (the operator's one-shot reset).
    reset_checkpoint: bool = False


def settings_from_spec(spec: Mapping[str, Any], reset: bool = False) -> PipelineSettings:
    """The connectors' view of the spec-level settings; what the spec leaves out is ``SPEC_DEFAULTS``."""
    def value(key: str) -> Any:
        return spec.get(key, SPEC_DEFAULTS[key])

    return PipelineSettings(
        channel_buffer_size=int(value("channelBufferSize")),
        ack_granularity=str(value("ackGranularity")),
        checkpoint_persistence=bool(value("checkpointPersistence")),
        checkpoint_sync_on_ack=bool(value("checkpointSyncOnAck")),
        checkpoint_save_interval=parse_duration(str(value("checkpointSaveInterval"))),
        checkpoint_reset=reset,
    )


def build_pipeline(spec: Mapping[str, Any], services: Services, factories: Factories = Factories(),
                   settings: RunSettings = RunSettings()) -> Pipeline:
    """Every part of the pipeline ``spec`` (validated, with defaults) describes, made and wired;
    nothing is connected or started until :meth:`Pipeline.run`."""
    pipeline_settings = settings_from_spec(spec, settings.reset_checkpoint)
    metrics = services.metrics

    def context(connector_name: str, connector_type: str) -> ConnectorContext:
        connector_metrics = metrics.connector(connector_type, connector_name)
        connector_metrics.initialise_errors(("read",) if connector_name == "source" else ("write",))
        return ConnectorContext(namespace=services.namespace, name=services.name, connector_name=connector_name,
                                metrics=connector_metrics, checkpoints=services.checkpoints,
                                progress=services.progress, settings=pipeline_settings, stop=services.stop)

    entries: list[Mapping[str, Any]] = list(spec.get("transformations") or [])
    routers = {index: RouterSpec.from_entry(entry) for index, entry in enumerate(entries)
               if entry["type"] == ROUTER_TYPE}
    steps: list[tuple[str, Step]] = [
        (str(entry["type"]), RouteChoice(routers[index]) if index in routers
         else factories.transformer(str(entry["type"]), entry.get("config"), entry.get("when")))
        for index, entry in enumerate(entries)]
    chain = TransformChain(steps, metrics)
    table = RouteTable.of(routers.values())
    source = factories.source(spec["source"], context("source", str(spec["source"]["type"])))
    sink_type = str(spec["sink"]["type"])
    main_sink = factories.sink(spec["sink"], context("sink", sink_type))
    route_sinks = {label: factories.sink(sink, context(f"route_{index}", str(sink["type"])))
                   for index, (label, sink) in enumerate(table.sinks.items())}
    error_sink = None
    errors = spec.get("errors")
    if errors:
        error_type = str(errors["type"])
        error_context = context("error_sink", error_type)
        error_sink = ErrorSinkWriter(factories.sink(errors, error_context), sink_type=error_type,
                                     ack_policy=str(errors.get("ackPolicy", DEFAULT_ACK_POLICY)),
                                     original_sink=sink_type, metrics=metrics,
                                     connector_metrics=error_context.metrics,
                                     retry_delays=settings.error_sink_retry_delays)
    return Pipeline(PipelineParts(source=source, chain=chain, main_sink=main_sink, route_sinks=route_sinks,
                                  error_sink=error_sink),
                    services=services, channel_buffer_size=pipeline_settings.channel_buffer_size,
                    write_retry_delays=settings.write_retry_delays)
