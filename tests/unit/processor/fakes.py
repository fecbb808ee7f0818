"""Sinks for engine tests, passed in through :class:`Factories` (no registry is patched)."""

from __future__ import annotations

from typing import ClassVar

from dataflow_operator.pipeline.connector import BatchLimits, ConnectorContext, Sink
from dataflow_operator.processor.assembly import SinkFactory, registry_sink
from dataflow_operator.spec.api import SinkSpec


class FakeSink(Sink):
    """Connects and closes at once; a test subclass says what ``write`` does."""

    limits: ClassVar[BatchLimits] = BatchLimits(100, None)

    def __init__(self, config: object, context: ConnectorContext) -> None:
        super().__init__(context)
        self.config = config

    def connect(self) -> None:
        pass

    def batch_limits(self) -> BatchLimits:
        return self.limits

    def close(self) -> None:
        pass


def sinks_with(fake: type[FakeSink]) -> SinkFactory:
    """The registry's sinks, and ``fake`` for components of its ``type_name``."""
    def create(component: SinkSpec, context: ConnectorContext) -> Sink:
        if component.type == fake.type_name:
            return fake(component.config, context)
        return registry_sink(component, context)

    return create
