"""The typed Kafka connector config (connectors.md §2.1): parsed and checked once, with field paths.

Free of client libraries, so that ``validate`` and the operator can use it without librdkafka.
:mod:`.config` turns the same settings into librdkafka properties.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...pipeline.api_fields import allowed_keys, api_field, build
from ...pipeline.config_fields import Fields
from .security import SECURITY_PROTOCOLS, infer_security_protocol, normalize_security_protocol

SASL_MECHANISMS = ("plain", "scram-sha-256", "scram-sha-512")


@dataclass(frozen=True, slots=True)
class KafkaTls:
    insecure_skip_verify: bool = api_field("Skip verifying the broker's certificate (ignored when caFile is "
                                           "given).", default=False)
    ca_file: str | None = api_field("CA certificate: a path or inline PEM", secret_ref="caSecretRef",
                                    default=None)
    cert_file: str | None = api_field("Client certificate: a path or inline PEM", secret_ref="certSecretRef",
                                      default=None)
    key_file: str | None = api_field("Client key: a path or inline PEM", secret_ref="keySecretRef",
                                     default=None)

    @classmethod
    def parse(cls, f: Fields) -> KafkaTls:
        f.unknown_keys(allowed_keys(cls))
        insecure = f.boolean("insecureSkipVerify")
        files = {key: None if f.secret_ref(key) else f.string(f"{key}File", non_empty=True)
                 for key in ("ca", "cert", "key")}
        has_cert = f.has("certFile") or f.has("certSecretRef")
        has_key = f.has("keyFile") or f.has("keySecretRef")
        if has_cert != has_key:
            f.error("certFile" if has_key else "keyFile", "client certificate and key must be given together")
        return cls(insecure, files["ca"], files["cert"], files["key"])


@dataclass(frozen=True, slots=True)
class KafkaSasl:
    mechanism: str = api_field("SASL mechanism.", default="plain", enum=SASL_MECHANISMS)
    username: str | None = api_field("SASL user", secret_ref=True, default=None)
    password: str | None = api_field("SASL password", secret_ref=True, default=None)

    @classmethod
    def parse(cls, f: Fields) -> KafkaSasl:
        f.unknown_keys(allowed_keys(cls))
        mechanism = f.string("mechanism")
        if mechanism is not None and mechanism.lower() not in (*SASL_MECHANISMS, ""):
            f.error("mechanism", f"must be one of {', '.join(SASL_MECHANISMS)}; got {mechanism!r}")
            mechanism = None
        f.value_or_secret("username")
        f.value_or_secret("password")
        return build(cls, mechanism=(mechanism or "").lower() or None, username=_text(f, "username"),
                     password=_text(f, "password"))


def _text(f: Fields, key: str) -> str | None:
    value = f.config.get(key)
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class KafkaSinkConfig:
    brokers: tuple[str, ...] = api_field("Bootstrap brokers, host:port", secret_ref=True)
    topic: str = api_field("Topic", secret_ref=True)
    security_protocol: str = api_field("Inferred from tls and sasl when not given; case-insensitive.",
                                       default="PLAINTEXT", enum=SECURITY_PROTOCOLS)
    tls: KafkaTls | None = api_field("TLS settings.", default=None)
    sasl: KafkaSasl | None = api_field("SASL settings.", default=None)

    @classmethod
    def parse(cls, f: Fields) -> KafkaSinkConfig:
        f.unknown_keys(allowed_keys(cls))
        return cls(*_common(f))


def _common(f: Fields) -> tuple[tuple[str, ...], str, str, KafkaTls | None, KafkaSasl | None]:
    f.value_or_secret("brokers", kind="list")
    f.value_or_secret("topic")
    raw_brokers = f.config.get("brokers")
    brokers = tuple(item for item in raw_brokers if isinstance(item, str)) if isinstance(raw_brokers, list) else ()
    topic = _text(f, "topic") or ""
    protocol_raw = f.string("securityProtocol")
    if protocol_raw is not None and normalize_security_protocol(protocol_raw) not in SECURITY_PROTOCOLS:
        f.error("securityProtocol", f"must be one of {', '.join(SECURITY_PROTOCOLS)}; got {protocol_raw!r}")
        return brokers, topic, "PLAINTEXT", None, None
    protocol = infer_security_protocol(f.config)
    has_tls, has_sasl = f.has("tls"), f.has("sasl")
    if protocol.startswith("SASL") and not has_sasl:
        f.error("sasl", f"required when securityProtocol is {protocol}")
    if not protocol.startswith("SASL") and has_sasl:
        f.error("sasl", f"not allowed when securityProtocol is {protocol}")
    if protocol.endswith("PLAINTEXT") and has_tls:
        f.error("tls", f"not allowed when securityProtocol is {protocol}")
    tls = KafkaTls.parse(f.obj("tls")) if has_tls else None
    sasl = KafkaSasl.parse(f.obj("sasl")) if has_sasl else None
    return brokers, topic, protocol, tls, sasl


@dataclass(frozen=True, slots=True)
class KafkaSourceConfig(KafkaSinkConfig):
    consumer_group: str = api_field("Consumer group", secret_ref=True,
                                    default="dataflow-operator")
    format: str = api_field("Message format (avro is not supported).", default="json", enum=("json",))
    session_timeout_seconds: int | None = api_field("Consumer session timeout (librdkafka's default when "
                                                    "unset).", default=None, minimum=1)
    heartbeat_interval_seconds: int | None = api_field("Consumer heartbeat interval (librdkafka's default when "
                                                       "unset).", default=None, minimum=1)

    @classmethod
    def parse(cls, f: Fields) -> KafkaSourceConfig:
        f.unknown_keys(allowed_keys(cls))
        common = _common(f)
        group = None if f.secret_ref("consumerGroup") else f.string("consumerGroup", non_empty=True)
        fmt = f.string("format", default="json")
        if fmt == "avro":
            f.error("format", "avro is not supported by this version; use json")
        elif fmt not in ("json", None):
            f.error("format", f"must be json; got {fmt!r}")
        session = f.integer("sessionTimeoutSeconds", minimum=1)
        heartbeat = f.integer("heartbeatIntervalSeconds", minimum=1)
        brokers, topic, protocol, tls, sasl = common
        return build(cls, brokers=brokers, topic=topic, security_protocol=protocol, tls=tls, sasl=sasl,
                     consumer_group=(group or "").strip() or None, session_timeout_seconds=session,
                     heartbeat_interval_seconds=heartbeat)
