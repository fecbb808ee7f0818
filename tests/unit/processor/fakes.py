"""Sinks for engine tests, passed in through :class:`Factories` (no registry is patched)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from dataflow_operator.connectors import registry
from dataflow_operator.pipeline.connector import BatchLimits, ConnectorContext, Sink
from dataflow_operator.processor.assembly import SinkFactory


class FakeSink(Sink):
    """Connects and closes at once; a test subclass says what ``write`` does."""

    limits: ClassVar[BatchLimits] = BatchLimits(100, None)

    def connect(self) -> None:
        pass

    def batch_limits(self) -> BatchLimits:
        return self.limits

    def close(self) -> None:
        pass


def sinks_with(fake: type[FakeSink]) -> SinkFactory:
    """The registry's sinks, and ``fake`` for components of its ``type_name``."""
    def create(component: Mapping[str, Any], context: ConnectorContext) -> Sink:
        if component["type"] == fake.type_name:
            return fake(component["config"], context)
        return registry.create_sink(component, context)

    return create
