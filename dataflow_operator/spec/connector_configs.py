"""Config validation for each connector type, pure (no client libraries imported).

``SOURCE_VALIDATORS`` and ``SINK_VALIDATORS`` are the allow-lists: a type missing here is an error
that names the allowed values. Field rules follow connectors.md §1 (webhook rules) and §2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..connectors.kafka.security import SECURITY_PROTOCOLS, infer_security_protocol, normalize_security_protocol
from ..pipeline.config_fields import FieldError, Fields

Validator = Callable[[Fields], None]

SASL_MECHANISMS = ("plain", "scram-sha-256", "scram-sha-512")

_TLS_KEYS = ("insecureSkipVerify", "caFile", "certFile", "keyFile", "caSecretRef", "certSecretRef",
             "keySecretRef")
_SASL_KEYS = ("mechanism", "username", "password", "usernameSecretRef", "passwordSecretRef")


def _kafka_common(f: Fields) -> None:
    f.value_or_secret("brokers", kind="list")
    f.value_or_secret("topic")
    protocol_raw = f.string("securityProtocol")
    if protocol_raw is not None and normalize_security_protocol(protocol_raw) not in SECURITY_PROTOCOLS:
        f.error("securityProtocol", f"must be one of {', '.join(SECURITY_PROTOCOLS)}; got {protocol_raw!r}")
        return
    protocol = infer_security_protocol(f.config)
    has_tls, has_sasl = f.has("tls"), f.has("sasl")
    if protocol.startswith("SASL") and not has_sasl:
        f.error("sasl", f"required when securityProtocol is {protocol}")
    if not protocol.startswith("SASL") and has_sasl:
        f.error("sasl", f"not allowed when securityProtocol is {protocol}")
    if protocol.endswith("PLAINTEXT") and has_tls:
        f.error("tls", f"not allowed when securityProtocol is {protocol}")
    if has_tls:
        tls = f.obj("tls")
        tls.unknown_keys(_TLS_KEYS)
        tls.boolean("insecureSkipVerify")
        for key in ("ca", "cert", "key"):
            if not tls.secret_ref(key):
                tls.string(f"{key}File", non_empty=True)
        has_cert = tls.has("certFile") or tls.has("certSecretRef")
        has_key = tls.has("keyFile") or tls.has("keySecretRef")
        if has_cert != has_key:
            tls.error("certFile" if has_key else "keyFile", "client certificate and key must be given together")
    if has_sasl:
        sasl = f.obj("sasl")
        sasl.unknown_keys(_SASL_KEYS)
        mechanism = sasl.string("mechanism")
        if mechanism is not None and mechanism.lower() not in (*SASL_MECHANISMS, ""):
            sasl.error("mechanism", f"must be one of {', '.join(SASL_MECHANISMS)}; got {mechanism!r}")
        sasl.value_or_secret("username")
        sasl.value_or_secret("password")


_KAFKA_SINK_KEYS = ("brokers", "brokersSecretRef", "topic", "topicSecretRef", "securityProtocol", "tls", "sasl")
_KAFKA_SOURCE_KEYS = (*_KAFKA_SINK_KEYS, "consumerGroup", "consumerGroupSecretRef", "format",
                      "sessionTimeoutSeconds", "heartbeatIntervalSeconds")


def kafka_source(f: Fields) -> None:
    f.unknown_keys(_KAFKA_SOURCE_KEYS)
    _kafka_common(f)
    if not f.secret_ref("consumerGroup"):
        f.string("consumerGroup", non_empty=True)
    fmt = f.string("format", default="json")
    if fmt == "avro":
        f.error("format", "avro is not supported by this version; use json")
    elif fmt not in ("json", None):
        f.error("format", f"must be json; got {fmt!r}")
    f.integer("sessionTimeoutSeconds", minimum=1)
    f.integer("heartbeatIntervalSeconds", minimum=1)


def kafka_sink(f: Fields) -> None:
    f.unknown_keys(_KAFKA_SINK_KEYS)
    _kafka_common(f)


_PG_SOURCE_KEYS = ("connectionString", "connectionStringSecretRef", "table", "tableSecretRef", "query",
                   "pollInterval", "readBatchSize", "changeTrackingColumn", "orderByColumn", "changeTrackingDelay",
                   "autoCreateTable")
_PG_SINK_KEYS = ("connectionString", "connectionStringSecretRef", "table", "tableSecretRef", "batchSize",
                 "batchFlushIntervalSeconds", "autoCreateTable", "rawMode", "upsertMode", "conflictKey",
                 "upsertStrategy", "upsertVersionColumn", "softDeleteColumn", "flattenMetadataColumns",
                 "flattenMetadataColumnsPrefix", "connectionTimeout")


def postgresql_source(f: Fields) -> None:
    f.unknown_keys(_PG_SOURCE_KEYS)
    f.value_or_secret("connectionString")
    if f.has("query"):
        f.string("query", non_empty=True)
        if not f.secret_ref("table"):
            f.string("table", non_empty=True)
    else:
        f.value_or_secret("table")
    f.integer("pollInterval", minimum=1)
    f.integer("readBatchSize", minimum=0)
    f.string("changeTrackingColumn", non_empty=True)
    f.string("orderByColumn", non_empty=True)
    delay = f.number("changeTrackingDelay", minimum=0)
    if delay and f.has("query") and not f.has("changeTrackingColumn"):
        f.error("changeTrackingDelay", "applies only to tracked reads: a query needs changeTrackingColumn too")
    f.boolean("autoCreateTable")


def postgresql_sink(f: Fields) -> None:
    f.unknown_keys(_PG_SINK_KEYS)
    f.value_or_secret("connectionString")
    f.value_or_secret("table")
    batch_size = f.integer("batchSize", 1, minimum=0)
    interval = f.integer("batchFlushIntervalSeconds", 10, minimum=0)
    if batch_size == 0 and interval == 0:
        f.error("batchFlushIntervalSeconds", "batchSize 0 and batchFlushIntervalSeconds 0 would never flush")
    f.boolean("autoCreateTable")
    raw_mode = f.boolean("rawMode")
    upsert = f.boolean("upsertMode")
    f.string("conflictKey", non_empty=True)
    strategy = f.string("upsertStrategy", default="always", choices=("always", "ifNewer"))
    version = f.string("upsertVersionColumn", non_empty=True)
    if strategy == "ifNewer" and version is None:
        f.error("upsertVersionColumn", "required when upsertStrategy is ifNewer")
    if strategy == "ifNewer" and not upsert:
        f.error("upsertStrategy", "ifNewer requires upsertMode: true")
    f.string("softDeleteColumn", non_empty=True)
    flatten = f.boolean("flattenMetadataColumns")
    f.string("flattenMetadataColumnsPrefix")
    if flatten and not raw_mode:
        f.error("flattenMetadataColumns", "only allowed with rawMode: true")
    f.integer("connectionTimeout", minimum=1)


_FILE_SOURCE_KEYS = ("path", "follow", "pollIntervalSeconds")
_FILE_SINK_KEYS = ("path", "batchSize", "batchFlushIntervalSeconds")


def file_source(f: Fields) -> None:
    f.unknown_keys(_FILE_SOURCE_KEYS)
    f.string("path", required=True)
    follow = f.boolean("follow")
    f.number("pollIntervalSeconds", minimum=0.01)
    if follow and f.config.get("path") == "-":
        f.error("follow", "cannot follow stdin")


def file_sink(f: Fields) -> None:
    f.unknown_keys(_FILE_SINK_KEYS)
    f.string("path", required=True)
    batch_size = f.integer("batchSize", minimum=1)
    interval = f.number("batchFlushIntervalSeconds", minimum=0)
    del batch_size, interval


SOURCE_VALIDATORS: dict[str, Validator] = {
    "file": file_source,
    "kafka": kafka_source,
    "postgresql": postgresql_source,
}
SINK_VALIDATORS: dict[str, Validator] = {
    "file": file_sink,
    "kafka": kafka_sink,
    "postgresql": postgresql_sink,
}
#: Sources whose position lives in the checkpoint store; only one replica may read them.
POLLING_SOURCES = frozenset({"postgresql", "file"})


def validate_connector(role: str, component: Any, path: str) -> list[FieldError]:
    """``role`` is ``source`` or ``sink`` (error sinks and route sinks are sinks)."""
    errors: list[FieldError] = []
    f = Fields(component, path, errors)
    if errors:
        return errors
    validators = SOURCE_VALIDATORS if role == "source" else SINK_VALIDATORS
    type_ = f.string("type", required=True)
    if type_ is None:
        return errors
    validator = validators.get(type_)
    if validator is None:
        errors.append(FieldError(f"{path}.type", f"unsupported {role} type {type_!r}; allowed: "
                                                 f"{', '.join(sorted(validators))}"))
        return errors
    if component.get("config") is None:
        errors.append(FieldError(f"{path}.config", "required"))
        return errors
    validator(Fields(component["config"], f"{path}.config", errors))
    return errors
