"""Building a pipeline from a spec, kept apart from running it (as Benthos' constructor builds the
pipeline, then runs it): :func:`build_pipeline` turns a typed spec (``spec.validation.parse_spec``) into a
:class:`~.engine.Pipeline` whose parts are all made.

What assembly uses is passed in, never looked up in module state: :class:`Factories` make the
connectors and transformers (production uses the registries; tests and benches pass their own),
:class:`RunSettings` hold what is not in the spec (retry delays, a pending checkpoint reset), and
:class:`Services` what the process provides (identity, metrics, checkpoint store, progress).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..connectors import registry as connectors
from ..pipeline.connector import ConnectorContext, PipelineSettings, Sink, Source
from ..spec.api import DataFlowSpec, SinkSpec, SourceSpec, TransformationSpec
from ..spec.durations import parse_duration
from ..transformers import registry as transformers
from . import connector_names as names
from .chain import Step, TransformChain
from .engine import Pipeline, PipelineParts, Services
from .error_sink import ErrorSinkWriter
from .routes import RouteChoice, RouteTable

SourceFactory = Callable[[SourceSpec, ConnectorContext], Source]
SinkFactory = Callable[[SinkSpec, ConnectorContext], Sink]
TransformerFactory = Callable[[TransformationSpec], Step]


def registry_source(component: SourceSpec, context: ConnectorContext) -> Source:
    return connectors.create_source(component.type, component.config, context)


def registry_sink(component: SinkSpec, context: ConnectorContext) -> Sink:
    return connectors.create_sink(component.type, component.config, context)


def registry_transformer(entry: TransformationSpec) -> Step:
    return transformers.build(entry.type, entry.config, entry.when)


@dataclass(frozen=True, slots=True)
class Factories:
    """Make a connector from its typed component, a transformer from its entry."""

    source: SourceFactory = registry_source
    sink: SinkFactory = registry_sink
    transformer: TransformerFactory = registry_transformer


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


def settings_from_spec(spec: DataFlowSpec, reset: bool = False) -> PipelineSettings:
    """The connectors' view of the spec-level settings."""
    return PipelineSettings(
        channel_buffer_size=spec.channel_buffer_size,
        ack_granularity=spec.ack_granularity,
        checkpoint_persistence=spec.checkpoint_persistence,
        checkpoint_sync_on_ack=spec.checkpoint_sync_on_ack,
        checkpoint_save_interval=parse_duration(spec.checkpoint_save_interval),
        checkpoint_reset=reset,
    )


def build_pipeline(spec: DataFlowSpec, services: Services, factories: Factories = Factories(),
                   settings: RunSettings = RunSettings()) -> Pipeline:
    """Every part of the pipeline ``spec`` describes, made and wired; nothing is connected or started
    until :meth:`Pipeline.run`."""
    pipeline_settings = settings_from_spec(spec, settings.reset_checkpoint)
    metrics = services.metrics

    def context(connector_name: str, connector_type: str) -> ConnectorContext:
        connector_metrics = metrics.connector(connector_type, connector_name)
        connector_metrics.initialise_errors(("read",) if connector_name == names.SOURCE else ("write",))
        return ConnectorContext(namespace=services.namespace, name=services.name, connector_name=connector_name,
                                metrics=connector_metrics, checkpoints=services.checkpoints,
                                progress=services.progress, settings=pipeline_settings, stop=services.stop)

    steps: list[tuple[str, Step]] = [
        (entry.type, RouteChoice(entry.router) if entry.router is not None
         else factories.transformer(entry))
        for entry in spec.transformations]
    chain = TransformChain(steps, metrics)
    table = RouteTable.of(entry.router for entry in spec.transformations if entry.router is not None)
    source = factories.source(spec.source, context(names.SOURCE, spec.source.type))
    sink_type = spec.sink.type
    main_sink = factories.sink(spec.sink, context(names.MAIN_SINK, sink_type))
    route_sinks = {label: factories.sink(sink, context(names.route_sink(index), sink.type))
                   for index, (label, sink) in enumerate(table.sinks.items())}
    error_sink = None
    errors = spec.errors
    if errors is not None:
        error_context = context(names.ERROR_SINK, errors.type)
        error_sink = ErrorSinkWriter(factories.sink(errors, error_context), sink_type=errors.type,
                                     ack_policy=errors.ack_policy,
                                     original_sink=sink_type, metrics=metrics,
                                     connector_metrics=error_context.metrics,
                                     retry_delays=settings.error_sink_retry_delays)
    return Pipeline(PipelineParts(source=source, chain=chain, main_sink=main_sink, route_sinks=route_sinks,
                                  error_sink=error_sink),
                    services=services, channel_buffer_size=pipeline_settings.channel_buffer_size,
                    write_retry_delays=settings.write_retry_delays)
