"""Spec validation: both encodings, defaults, and bad specs reported with their field paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dataflow_operator.spec import normalize, validate_spec
from dataflow_operator.spec.validation import load_spec

KAFKA_SINK = {"brokers": ["127.0.0.1:9092"], "topic": "out"}
KAFKA = {**KAFKA_SINK, "topic": "in", "consumerGroup": "g"}
PG_SINK = {"connectionString": "postgresql://db/x", "table": "t"}


def good() -> dict[str, Any]:
    return {
        "source": {"type": "kafka", "config": dict(KAFKA)},
        "sink": {"type": "postgresql", "config": dict(PG_SINK)},
        "transformations": [
            {"type": "filter", "config": {"condition": "$.ok"}},
            {"type": "flatten", "config": {"field": "items"}},
            {"type": "router", "config": {"routes": [
                {"condition": "$.level == 'error'", "sink": {"type": "kafka", "config": {**KAFKA_SINK, "topic": "e"}}}]}},
        ],
        "errors": {"type": "file", "config": {"path": "errors.jsonl"}, "ackPolicy": "afterWrite"},
    }


def test_a_good_spec_has_no_errors() -> None:
    assert validate_spec(good()) == []


def test_typed_subkey_encoding_is_normalised_everywhere() -> None:
    legacy = {
        "source": {"type": "kafka", "kafka": dict(KAFKA)},
        "sink": {"type": "postgresql", "postgresql": dict(PG_SINK)},
        "transformations": [
            {"type": "timestamp", "timestamp": {"fieldName": "ts"}},
            {"type": "router", "router": {"routes": [
                {"condition": "$.x", "sink": {"type": "kafka", "kafka": {**KAFKA_SINK, "topic": "r"}}}]}},
        ],
        "errors": {"type": "kafka", "kafka": {**KAFKA_SINK, "topic": "dlq"}},
    }
    assert validate_spec(legacy) == []
    spec = normalize(legacy)
    assert spec["source"] == {"type": "kafka", "config": KAFKA}
    assert spec["sink"] == {"type": "postgresql", "config": PG_SINK}
    assert spec["transformations"][0] == {"type": "timestamp", "config": {"fieldName": "ts"}}
    route_sink = spec["transformations"][1]["config"]["routes"][0]["sink"]
    assert route_sink == {"type": "kafka", "config": {**KAFKA_SINK, "topic": "r"}}
    assert spec["errors"]["config"]["topic"] == "dlq"
    assert "kafka" not in spec["errors"]


def test_both_encodings_give_the_same_normalised_spec() -> None:
    generic = good()
    typed = copy.deepcopy(generic)
    typed["source"] = {"type": "kafka", "kafka": typed["source"]["config"]}
    typed["sink"] = {"type": "postgresql", "postgresql": typed["sink"]["config"]}
    assert normalize(typed) == normalize(generic)


def test_defaults_are_filled_in() -> None:
    spec = load_spec(good())
    assert spec.replicas == 1
    assert spec.channel_buffer_size == 100
    assert spec.checkpoint_persistence is True
    assert spec.checkpoint_save_interval == "30s"
    assert spec.ack_granularity == "batch"
    spec_without_policy = good()
    del spec_without_policy["errors"]["ackPolicy"]
    errors = load_spec(spec_without_policy).errors
    assert errors is not None and errors.ack_policy == "afterWrite"


def _set(path: str, value: Any) -> Any:
    """A mutation of good() that sets (or with value DELETE, removes) the dotted path."""
    def mutate(spec: dict[str, Any]) -> None:
        parts = path.replace("]", "").replace("[", ".").split(".")
        node: Any = spec
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return mutate


DELETE = object()

BAD_SPECS: list[tuple[str, Any, str]] = [
    ("no source", _set("source", DELETE), "spec.source: required"),
    ("no sink", _set("sink", DELETE), "spec.sink: required"),
    ("unknown source type", _set("source.type", "mongodb"), "spec.source.type: unsupported source type 'mongodb'; allowed: file, kafka, postgresql"),
    ("unknown sink type", _set("sink.type", "s3"), "spec.sink.type: unsupported sink type 's3'"),
    ("source without config", _set("source.config", DELETE), "spec.source.config: required"),
    ("source type missing", _set("source.type", DELETE), "spec.source.type: required"),
    ("source not an object", _set("source", "kafka"), "spec.source: must be an object, got string"),
    ("kafka brokers missing", _set("source.config.brokers", DELETE), "spec.source.config.brokers: required"),
    ("kafka brokers not a list", _set("source.config.brokers", "a:1"), "spec.source.config.brokers: must be a list of strings"),
    ("kafka broker empty", _set("source.config.brokers", [""]), "spec.source.config.brokers[0]: must be a non-empty string"),
    ("kafka topic missing", _set("source.config.topic", DELETE), "spec.source.config.topic: required"),
    ("kafka topic empty", _set("source.config.topic", " "), "spec.source.config.topic: must not be empty"),
    ("kafka unknown field", _set("source.config.topics", ["a"]), "spec.source.config.topics: unknown field"),
    ("kafka bad protocol", _set("source.config.securityProtocol", "TLS"), "spec.source.config.securityProtocol: must be one of"),
    ("sasl protocol without sasl", _set("source.config.securityProtocol", "SASL_SSL"), "spec.source.config.sasl: required when securityProtocol is SASL_SSL"),
    ("sasl without password", _set("source.config.sasl", {"username": "u"}), "spec.source.config.sasl.password: required"),
    ("sasl bad mechanism", _set("source.config.sasl", {"mechanism": "gssapi", "username": "u", "password": "p"}), "spec.source.config.sasl.mechanism: must be one of"),
    ("tls with plaintext", _set("source.config.securityProtocol", "plaintext"), None),
    ("secret ref without key", _set("source.config.topicSecretRef", {"name": "s"}), "spec.source.config.topicSecretRef.key: required"),
    ("avro format", _set("source.config.format", "avro"), "spec.source.config.format: avro is not supported"),
    ("pg connection missing", _set("sink.config.connectionString", DELETE), "spec.sink.config.connectionString: required"),
    ("pg table missing", _set("sink.config.table", DELETE), "spec.sink.config.table: required"),
    ("pg negative batch", _set("sink.config.batchSize", -1), "spec.sink.config.batchSize: must be at least 0, got -1"),
    ("pg batch as string", _set("sink.config.batchSize", "10"), "spec.sink.config.batchSize: must be an integer, got string"),
    ("pg never flushes", _set("sink.config", {**PG_SINK, "batchSize": 0, "batchFlushIntervalSeconds": 0}), "spec.sink.config.batchFlushIntervalSeconds: batchSize 0 and batchFlushIntervalSeconds 0 would never flush"),
    ("pg ifNewer without column", _set("sink.config", {**PG_SINK, "upsertMode": True, "upsertStrategy": "ifNewer"}), "spec.sink.config.upsertVersionColumn: required when upsertStrategy is ifNewer"),
    ("pg bad strategy", _set("sink.config.upsertStrategy", "sometimes"), "spec.sink.config.upsertStrategy: must be one of always, ifNewer"),
    ("pg upsert flag not bool", _set("sink.config.upsertMode", "yes"), "spec.sink.config.upsertMode: must be a boolean, got string"),
    ("transformations not a list", _set("transformations", {"type": "filter"}), "spec.transformations: must be a list"),
    ("unknown transformation", _set("transformations[1].type", "explode"), "spec.transformations[1].type: unsupported transformation type 'explode'; allowed:"),
    ("transformation without type", _set("transformations[0].type", DELETE), "spec.transformations[0].type: required"),
    ("filter without condition", _set("transformations[0].config", {}), "spec.transformations[0].config.condition"),
    ("flatten without field", _set("transformations[1].config", {}), "spec.transformations[1].config.field"),
    ("router route sink invalid", _set("transformations[2].config.routes[0].sink.config.topic", DELETE), "spec.transformations[2].config.routes[0].sink.config.topic: required"),
    ("router route sink unknown type", _set("transformations[2].config.routes[0].sink.type", "ftp"), "spec.transformations[2].config.routes[0].sink.type: unsupported sink type 'ftp'"),
    ("router route without sink", _set("transformations[2].config.routes[0].sink", DELETE), "spec.transformations[2].config.routes[0].sink"),
    ("error sink bad policy", _set("errors.ackPolicy", "sometimes"), "spec.errors.ackPolicy: must be one of afterWrite, never, afterMainSinkSuccess"),
    ("error sink unknown type", _set("errors.type", "null"), "spec.errors.type: unsupported sink type 'null'"),
    ("replicas for a polling source", lambda s: s.update(source={"type": "postgresql", "config": {**PG_SINK}}, replicas=2), "spec.replicas: must be 1 for a postgresql source"),
    ("replicas zero", _set("replicas", 0), "spec.replicas: must be at least 1, got 0"),
    ("channel buffer zero", _set("channelBufferSize", 0), "spec.channelBufferSize: must be at least 1"),
    ("bad ack granularity", _set("ackGranularity", "row"), "spec.ackGranularity: must be one of batch, message"),
    ("bad checkpoint interval", _set("checkpointSaveInterval", "30 seconds"), "spec.checkpointSaveInterval: invalid duration"),
    ("unknown spec field", _set("suspended", True), "spec.suspended: unknown field"),
    ("maintenance start without duration", _set("maintenance", {"startTime": "2026-01-01T02:00:00Z"}), "spec.maintenance.duration: startTime and duration must be set together"),
    ("maintenance bad time", _set("maintenance", {"startTime": "tomorrow", "duration": "1h"}), "spec.maintenance.startTime: must be an RFC3339 time"),
    ("maintenance bad duration", _set("maintenance", {"startTime": "2026-01-01T02:00:00Z", "duration": "1 hour"}), "spec.maintenance.duration: invalid duration"),
    ("maintenance bad zone", _set("maintenance", {"timezone": "Mars/Olympus"}), "spec.maintenance.timezone: unknown IANA time zone 'Mars/Olympus'"),
    ("maintenance bad repeat", _set("maintenance", {"repeat": "hourly"}), "spec.maintenance.repeat: must be one of daily, weekly, monthly"),
    ("strict idempotency without upsert", lambda s: s.update(source={"type": "postgresql", "config": {**PG_SINK}}, strictIdempotency=True), "spec.sink.config.upsertMode: strictIdempotency requires upsertMode: true"),
    ("negative change tracking delay", lambda s: s.update(source={"type": "postgresql", "config": {**PG_SINK, "changeTrackingDelay": -1}}), "spec.source.config.changeTrackingDelay: must be at least 0"),
    ("change tracking delay on an untracked query", lambda s: s.update(source={"type": "postgresql", "config": {**PG_SINK, "query": "SELECT 1", "changeTrackingDelay": 5}}), "spec.source.config.changeTrackingDelay: applies only to tracked reads"),
    ("file source without path", _set("source", {"type": "file", "config": {}}), "spec.source.config.path: required"),
    ("follow stdin", _set("source", {"type": "file", "config": {"path": "-", "follow": True}}), "spec.source.config.follow: cannot follow stdin"),
    ("image pull secret without name", _set("imagePullSecrets", [{}]), "spec.imagePullSecrets[0].name: required"),
    ("resources limits not a map", _set("resources", {"limits": "1"}), "spec.resources.limits: must be an object"),
]


@pytest.mark.parametrize(("case", "mutate", "expected"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_specs_name_the_field(case: str, mutate: Any, expected: str | None) -> None:
    spec = good()
    if case == "tls with plaintext":
        spec["source"]["config"]["tls"] = {"caFile": "/ca.pem"}
        expected = "spec.source.config.tls: not allowed when securityProtocol is PLAINTEXT"
    mutate(spec)
    errors = [str(error) for error in validate_spec(spec)]
    assert any(error.startswith(expected) for error in errors), errors  # type: ignore[arg-type]


def test_every_problem_is_reported_in_one_pass() -> None:
    spec = good()
    del spec["source"]["config"]["topic"]
    spec["sink"]["config"]["batchSize"] = -5
    spec["transformations"][1]["type"] = "nope"
    paths = {error.path for error in validate_spec(spec)}
    assert {"spec.source.config.topic", "spec.sink.config.batchSize", "spec.transformations[1].type"} <= paths


def test_security_protocol_is_case_and_dash_insensitive() -> None:
    spec = good()
    spec["source"]["config"]["securityProtocol"] = "sasl-plaintext"
    spec["source"]["config"]["sasl"] = {"mechanism": "scram-sha-512", "username": "u", "password": "p"}
    assert validate_spec(spec) == []
