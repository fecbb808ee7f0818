"""librdkafka properties from a DataFlow Kafka config (connectors.md §2.1).

Pure apart from :class:`PemFiles`, which turns inline PEM content into files, and from registering
the SASL password and inline key material as secrets the moment they are read, so that nothing the
client or librdkafka logs afterwards can carry them. The returned dicts hold the password: callers
never log them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...observability.redaction import register_secrets
from ..pem_files import PemFiles, is_pem_content
from .security import infer_security_protocol

CLIENT_ID = "dataflow-operator"
DEFAULT_CONSUMER_GROUP = "dataflow-operator"
_SASL_MECHANISMS = {"plain": "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"}
# The Java producer's delivery.timeout.ms default: a broker outage shorter than this delays a write;
# a longer one fails it with a timeout that the engine retries.
DELIVERY_TIMEOUT_MS = 120_000
# librdkafka emits statistics this often; the broker states in them drive connection_status.
STATISTICS_INTERVAL_MS = 1000


class KafkaConfigError(ValueError):
    """A config that cannot become a working client (e.g. SASL without a password)."""


def brokers_of(config: Mapping[str, Any]) -> str:
    brokers = config.get("brokers")
    if isinstance(brokers, str):
        items = [item.strip() for item in brokers.split(",")]
    elif isinstance(brokers, list):
        items = [str(item).strip() for item in brokers]
    else:
        items = []
    items = [item for item in items if item]
    if not items:
        raise KafkaConfigError("brokers: at least one broker address is required")
    return ",".join(items)


def topic_of(config: Mapping[str, Any]) -> str:
    topic = config.get("topic")
    if not isinstance(topic, str) or not topic.strip():
        raise KafkaConfigError("topic: required")
    return topic.strip()


def security_properties(config: Mapping[str, Any], pem_files: PemFiles) -> dict[str, Any]:
    """``security.protocol`` plus the SASL and TLS properties it needs."""
    protocol = infer_security_protocol(config)
    properties: dict[str, Any] = {"security.protocol": protocol}
    if protocol.startswith("SASL"):
        properties.update(_sasl_properties(config.get("sasl")))
    if protocol.endswith("SSL"):
        properties.update(_tls_properties(config.get("tls"), pem_files))
    return properties


def _sasl_properties(sasl: Any) -> dict[str, Any]:
    if not isinstance(sasl, Mapping):
        raise KafkaConfigError("sasl: required for a SASL security protocol")
    raw_mechanism = str(sasl.get("mechanism") or "plain").lower()
    mechanism = _SASL_MECHANISMS.get(raw_mechanism)
    if mechanism is None:
        raise KafkaConfigError(f"sasl.mechanism: must be one of {', '.join(_SASL_MECHANISMS)}; "
                               f"got {raw_mechanism!r}")
    username, password = sasl.get("username"), sasl.get("password")
    if not username or not password:
        raise KafkaConfigError("sasl: username and password must both be non-empty")
    register_secrets([str(password)])
    return {"sasl.mechanism": mechanism, "sasl.username": str(username), "sasl.password": str(password)}


def _tls_properties(tls: Any, pem_files: PemFiles) -> dict[str, Any]:
    tls = tls if isinstance(tls, Mapping) else {}
    properties: dict[str, Any] = {}
    ca = tls.get("caFile")
    if ca:
        # A CA given means verification against it, even if insecureSkipVerify is also set (REF).
        properties["ssl.ca.location"] = pem_files.path_for(str(ca))
    elif tls.get("insecureSkipVerify"):
        properties["enable.ssl.certificate.verification"] = False
        properties["ssl.endpoint.identification.algorithm"] = "none"
    else:
        properties["ssl.ca.location"] = "probe"  # the system's CA store
    cert, key = tls.get("certFile"), tls.get("keyFile")
    if cert and key:
        if is_pem_content(str(key)):
            register_secrets([str(key)])
        properties["ssl.certificate.location"] = pem_files.path_for(str(cert))
        properties["ssl.key.location"] = pem_files.path_for(str(key))
    return properties


def common_properties(config: Mapping[str, Any], pem_files: PemFiles) -> dict[str, Any]:
    return {
        "bootstrap.servers": brokers_of(config),
        "client.id": CLIENT_ID,
        "statistics.interval.ms": STATISTICS_INTERVAL_MS,
        **security_properties(config, pem_files),
    }


def consumer_properties(config: Mapping[str, Any], pem_files: PemFiles) -> dict[str, Any]:
    group = config.get("consumerGroup")
    properties = {
        **common_properties(config, pem_files),
        "group.id": str(group).strip() if group and str(group).strip() else DEFAULT_CONSUMER_GROUP,
        # A new group starts at the oldest record (REF: sarama OffsetOldest).
        "auto.offset.reset": "earliest",
        # Positions move only through acknowledgements: nothing is stored or committed behind our back.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "partition.assignment.strategy": "roundrobin",
    }
    if config.get("sessionTimeoutSeconds"):
        properties["session.timeout.ms"] = int(config["sessionTimeoutSeconds"]) * 1000
    if config.get("heartbeatIntervalSeconds"):
        properties["heartbeat.interval.ms"] = int(config["heartbeatIntervalSeconds"]) * 1000
    return properties


def producer_properties(config: Mapping[str, Any], pem_files: PemFiles) -> dict[str, Any]:
    return {
        **common_properties(config, pem_files),
        # Idempotence implies acks=all and in-order, duplicate-free retries within one session.
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": DELIVERY_TIMEOUT_MS,
    }
