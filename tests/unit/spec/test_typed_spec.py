"""The spec parsed once into typed objects: defaults from the field declarations, connector configs
typed by their connector's class, routes parsed with their sinks."""

from __future__ import annotations

from typing import Any

import pytest

from dataflow_operator.connectors.file_settings import FileSinkConfig, FileSourceConfig
from dataflow_operator.connectors.kafka.settings import KafkaSasl, KafkaSourceConfig
from dataflow_operator.connectors.postgresql.settings import PostgreSQLSinkConfig
from dataflow_operator.pipeline.config_fields import SpecError
from dataflow_operator.spec.api import Resources, default_resources
from dataflow_operator.spec.validation import load_spec, parse_spec


def minimal() -> dict[str, Any]:
    return {"source": {"type": "file", "config": {"path": "in.jsonl"}},
            "sink": {"type": "file", "file": {"path": "out.jsonl"}}}


def test_defaults_come_from_the_field_declarations() -> None:
    spec = load_spec(minimal())
    assert (spec.replicas, spec.channel_buffer_size, spec.checkpoint_save_interval, spec.ack_granularity) == \
        (1, 100, "30s", "batch")
    assert spec.checkpoint_persistence is True and spec.checkpoint_reset is False
    assert spec.resources == default_resources()
    assert spec.source.config == FileSourceConfig(path="in.jsonl", follow=False, poll_interval_seconds=0.2)
    assert spec.sink.config == FileSinkConfig(path="out.jsonl")  # the second encoding, normalised
    assert spec.transformations == () and spec.errors is None and spec.maintenance is None


def test_connector_configs_are_typed_with_their_defaults() -> None:
    spec = load_spec({
        "source": {"type": "kafka", "config": {"brokers": ["b:9092"], "topic": "t",
                                                "sasl": {"mechanism": "SCRAM-SHA-512", "username": "u",
                                                         "password": "p"}}},
        "sink": {"type": "postgresql", "config": {"connectionString": "postgres://db", "table": "t",
                                                   "batchSize": 0}},
        "errors": {"type": "file", "config": {"path": "errors.jsonl"}, "ackPolicy": "never"},
    })
    source = spec.source.config
    assert isinstance(source, KafkaSourceConfig)
    assert source.brokers == ("b:9092",) and source.security_protocol == "SASL_PLAINTEXT"
    assert source.sasl == KafkaSasl("scram-sha-512", "u", "p") and source.consumer_group == "dataflow-operator"
    sink = spec.sink.config
    assert isinstance(sink, PostgreSQLSinkConfig)
    assert (sink.batch_size, sink.batch_flush_interval_seconds, sink.upsert_strategy) == (0, 10, "always")
    assert spec.errors is not None and spec.errors.ack_policy == "never"


def test_resources_given_replace_the_defaults_whole() -> None:
    spec = load_spec({**minimal(), "resources": {"requests": {"cpu": 1}}})
    assert spec.resources == Resources(requests={"cpu": 1})
    assert spec.resources.manifest() == {"requests": {"cpu": 1}}
    assert load_spec({**minimal(), "resources": {}}).resources == default_resources()


def test_an_invalid_spec_gives_no_object_and_every_error() -> None:
    parsed, errors = parse_spec({**minimal(), "replicas": 0, "ackGranularity": "sometimes"})
    assert parsed is None
    assert [error.path for error in errors] == ["spec.replicas", "spec.ackGranularity"]
    with pytest.raises(SpecError):
        load_spec({"source": {"type": "file"}})


def test_typed_objects_are_frozen() -> None:
    spec = load_spec(minimal())
    with pytest.raises(AttributeError):
        spec.replicas = 2  # type: ignore[misc]
