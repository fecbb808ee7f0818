"""Connector implementations and their typed configs by type. Imported lazily so that ``validate``
and the operator never load client libraries (librdkafka, libpq) they do not need: a config class
lives in a module of its own beside its connector."""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from ..pipeline.config_fields import Fields
from ..pipeline.connector import ConnectorContext, Sink, Source


class ConfigClass(Protocol):
    """A connector's typed config: ``parse`` checks the raw config, appending every problem to
    ``fields.errors``, and returns the typed object (defaults where a value was absent or wrong)."""

    def parse(self, fields: Fields) -> object: ...


# In the order the CRD and the reference list them.
_CONFIGS: dict[str, dict[str, str]] = {
    "source": {
        "kafka": "dataflow_operator.connectors.kafka.settings:KafkaSourceConfig",
        "postgresql": "dataflow_operator.connectors.postgresql.settings:PostgreSQLSourceConfig",
        "file": "dataflow_operator.connectors.file_settings:FileSourceConfig",
    },
    "sink": {
        "kafka": "dataflow_operator.connectors.kafka.settings:KafkaSinkConfig",
        "postgresql": "dataflow_operator.connectors.postgresql.settings:PostgreSQLSinkConfig",
        "file": "dataflow_operator.connectors.file_settings:FileSinkConfig",
    },
}
#: Sources whose position lives in the checkpoint store; only one replica may read them.
POLLING_SOURCES = frozenset({"postgresql", "file"})


def connector_types(role: str) -> list[str]:
    """``role`` is ``source`` or ``sink``."""
    return list(_CONFIGS[role])


def config_class(role: str, type_: str) -> ConfigClass | None:
    target = _CONFIGS[role].get(type_)
    if target is None:
        return None
    cls: ConfigClass = _load(target)
    return cls

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


def create_source(type_: str, config: object, context: ConnectorContext) -> Source:
    """The source of ``type_``; ``config`` is an instance of that type's config class."""
    source: Source = _load(_SOURCES[type_])(config, context)
    return source


def create_sink(type_: str, config: object, context: ConnectorContext) -> Sink:
    """The sink of ``type_``; ``config`` is an instance of that type's config class."""
    sink: Sink = _load(_SINKS[type_])(config, context)
    return sink
