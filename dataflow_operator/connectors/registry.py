"""Connector implementations by type. Imported lazily so that ``validate`` and the operator never
load client libraries (librdkafka, libpq) they do not need."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ..pipeline.connector import ConnectorContext, Sink, Source

_SOURCES = {
    "file": "dataflow_operator.connectors.file:FileSource",
    "kafka": "dataflow_operator.connectors.kafka.source:KafkaSource",
    "postgresql": "dataflow_operator.connectors.postgresql:PostgreSQLSource",
}
_SINKS = {
    "file": "dataflow_operator.connectors.file:FileSink",
    "kafka": "dataflow_operator.connectors.kafka.sink:KafkaSink",
    "postgresql": "dataflow_operator.connectors.postgresql:PostgreSQLSink",
}


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def create_source(component: Mapping[str, Any], context: ConnectorContext) -> Source:
    source: Source = _load(_SOURCES[component["type"]])(component["config"], context)
    return source


def create_sink(component: Mapping[str, Any], context: ConnectorContext) -> Sink:
    sink: Sink = _load(_SINKS[component["type"]])(component["config"], context)
    return sink
