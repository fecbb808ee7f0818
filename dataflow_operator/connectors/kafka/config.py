"""librdkafka properties from a typed DataFlow Kafka config (connectors.md §2.1).

Pure apart from :class:`PemFiles`, which turns inline PEM content into files, and from registering
the SASL password and inline key material as secrets the moment they are read, so that nothing the
client or librdkafka logs afterwards can carry them. The returned dicts hold the password: callers
never log them.
"""

from __future__ import annotations

from ...observability.redaction import register_secrets
from ..pem_files import PemFiles, is_pem_content
from .settings import KafkaSasl, KafkaSinkConfig, KafkaSourceConfig, KafkaTls

CLIENT_ID = "dataflow-operator"
_SASL_MECHANISMS = {"plain": "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"}
# The Java producer's delivery.timeout.ms default: a broker outage shorter than this delays a write;
# a longer one fails it with a timeout that the engine retries.
DELIVERY_TIMEOUT_MS = 120_000
# librdkafka emits statistics this often; the broker states in them drive connection_status.
STATISTICS_INTERVAL_MS = 1000


#: librdkafka properties as plain values; the connectors add the client's callbacks.
ClientProperties = dict[str, str | int | bool]


class KafkaConfigError(ValueError):
    """A config that cannot become a working client (e.g. SASL without a password)."""


def brokers_of(config: KafkaSinkConfig) -> str:
    items = [item.strip() for item in config.brokers if item.strip()]
    if not items:
        raise KafkaConfigError("brokers: at least one broker address is required")
    return ",".join(items)


def topic_of(config: KafkaSinkConfig) -> str:
    if not config.topic.strip():
        raise KafkaConfigError("topic: required")
    return config.topic.strip()


def security_properties(config: KafkaSinkConfig, pem_files: PemFiles) -> ClientProperties:
    """``security.protocol`` plus the SASL and TLS properties it needs."""
    protocol = config.security_protocol
    properties: ClientProperties = {"security.protocol": protocol}
    if protocol.startswith("SASL"):
        properties.update(_sasl_properties(config.sasl))
    if protocol.endswith("SSL"):
        properties.update(_tls_properties(config.tls or KafkaTls(), pem_files))
    return properties


def _sasl_properties(sasl: KafkaSasl | None) -> ClientProperties:
    if sasl is None:
        raise KafkaConfigError("sasl: required for a SASL security protocol")
    mechanism = _SASL_MECHANISMS.get(sasl.mechanism)
    if mechanism is None:
        raise KafkaConfigError(f"sasl.mechanism: must be one of {', '.join(_SASL_MECHANISMS)}; "
                               f"got {sasl.mechanism!r}")
    if not sasl.username or not sasl.password:
        raise KafkaConfigError("sasl: username and password must both be non-empty")
    register_secrets([sasl.password])
    return {"sasl.mechanism": mechanism, "sasl.username": sasl.username, "sasl.password": sasl.password}


def _tls_properties(tls: KafkaTls, pem_files: PemFiles) -> ClientProperties:
    properties: ClientProperties = {}
    if tls.ca_file:
        # A CA given means verification against it, even if insecureSkipVerify is also set (REF).
        properties["ssl.ca.location"] = pem_files.path_for(tls.ca_file)
    elif tls.insecure_skip_verify:
        properties["enable.ssl.certificate.verification"] = False
        properties["ssl.endpoint.identification.algorithm"] = "none"
    else:
        properties["ssl.ca.location"] = "probe"  # the system's CA store
    if tls.cert_file and tls.key_file:
        if is_pem_content(tls.key_file):
            register_secrets([tls.key_file])
        properties["ssl.certificate.location"] = pem_files.path_for(tls.cert_file)
        properties["ssl.key.location"] = pem_files.path_for(tls.key_file)
    return properties


def common_properties(config: KafkaSinkConfig, pem_files: PemFiles) -> ClientProperties:
    return {
        "bootstrap.servers": brokers_of(config),
        "client.id": CLIENT_ID,
        "statistics.interval.ms": STATISTICS_INTERVAL_MS,
        **security_properties(config, pem_files),
    }


def consumer_properties(config: KafkaSourceConfig, pem_files: PemFiles) -> ClientProperties:
    properties: ClientProperties = {
        **common_properties(config, pem_files),
        "group.id": config.consumer_group,
        # A new group starts at the oldest record (REF: sarama OffsetOldest).
        "auto.offset.reset": "earliest",
        # Positions move only through acknowledgements: nothing is stored or committed behind our back.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "partition.assignment.strategy": "roundrobin",
    }
    if config.session_timeout_seconds:
        properties["session.timeout.ms"] = config.session_timeout_seconds * 1000
    if config.heartbeat_interval_seconds:
        properties["heartbeat.interval.ms"] = config.heartbeat_interval_seconds * 1000
    return properties


def producer_properties(config: KafkaSinkConfig, pem_files: PemFiles) -> ClientProperties:
    return {
        **common_properties(config, pem_files),
        # Idempotence implies acks=all and in-order, duplicate-free retries within one session.
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": DELIVERY_TIMEOUT_MS,
    }
