"""librdkafka properties from DataFlow Kafka configs (pure)."""

from __future__ import annotations

import os
import stat
from typing import Any

import pytest

from dataflow_operator.connectors.kafka.config import (
    KafkaConfigError,
    consumer_properties,
    producer_properties,
    security_properties,
)
from dataflow_operator.connectors.kafka.settings import KafkaSasl, KafkaSinkConfig, KafkaSourceConfig, KafkaTls
from dataflow_operator.connectors.pem_files import PemFiles
from dataflow_operator.observability.redaction import scrub
from tests.integration.connectors.harness import typed_config

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def kafka(raw: dict[str, Any]) -> KafkaSourceConfig:
    """The typed config of a valid source config: ``raw`` with a broker and a topic."""
    return typed_config(KafkaSourceConfig.parse, {"brokers": ["k:9092"], "topic": "t", **raw})


@pytest.fixture
def pem_files() -> Any:
    files = PemFiles()
    yield files
    files.cleanup()


@pytest.mark.parametrize(("config", "expected"), [
    ({}, {"security.protocol": "PLAINTEXT"}),
    ({"securityProtocol": "sasl-plaintext", "sasl": {"username": "u", "password": "p"}},
     {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": "u", "sasl.password": "p"}),
    ({"sasl": {"mechanism": "SCRAM-SHA-512", "username": "u", "password": "p"}},
     {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "u",
      "sasl.password": "p"}),
    ({"tls": {"insecureSkipVerify": True}},
     {"security.protocol": "SSL", "enable.ssl.certificate.verification": False,
      "ssl.endpoint.identification.algorithm": "none"}),
    ({"tls": {}}, {"security.protocol": "SSL", "ssl.ca.location": "probe"}),
    ({"tls": {"caFile": "/etc/ca.pem", "insecureSkipVerify": True}, "sasl": {"mechanism": "scram-sha-256",
                                                                             "username": "u", "password": "p"}},
     {"security.protocol": "SASL_SSL", "ssl.ca.location": "/etc/ca.pem", "sasl.mechanism": "SCRAM-SHA-256",
      "sasl.username": "u", "sasl.password": "p"}),
])
def test_security_mapping(config: dict[str, Any], expected: dict[str, Any], pem_files: PemFiles) -> None:
    assert security_properties(kafka(config), pem_files) == expected


def test_inline_pem_becomes_a_private_file(pem_files: PemFiles) -> None:
    properties = security_properties(kafka({"tls": {"caFile": PEM, "certFile": PEM,
                                                     "keyFile": "/keys/client.key"}}), pem_files)
    ca_path = properties["ssl.ca.location"]
    with open(ca_path, encoding="utf-8") as handle:
        assert ca_path != PEM and handle.read() == PEM
    assert stat.S_IMODE(os.stat(ca_path).st_mode) == 0o600
    assert properties["ssl.key.location"] == "/keys/client.key"
    pem_files.cleanup()
    assert not os.path.exists(ca_path)


def test_client_certificate_needs_both_parts(pem_files: PemFiles) -> None:
    # Validation refuses a certificate without its key; a config that has one anyway uses neither.
    config = KafkaSinkConfig(("k:9092",), "t", "SSL", KafkaTls(ca_file="/ca", cert_file="/cert"))
    properties = security_properties(config, pem_files)
    assert "ssl.certificate.location" not in properties


@pytest.mark.parametrize("sasl", [KafkaSasl(username="u"), KafkaSasl(username="", password="p"),
                                  KafkaSasl(mechanism="gssapi", username="u", password="p"), None])
def test_unusable_sasl_is_refused(sasl: KafkaSasl | None, pem_files: PemFiles) -> None:
    with pytest.raises(KafkaConfigError):
        security_properties(KafkaSinkConfig(("k:9092",), "t", "SASL_PLAINTEXT", sasl=sasl), pem_files)


def test_consumer_properties(pem_files: PemFiles) -> None:
    properties = consumer_properties(kafka({"brokers": ["a:9092", " b:9092 "], "sessionTimeoutSeconds": 20}),
                                     pem_files)
    assert properties["bootstrap.servers"] == "a:9092,b:9092"
    assert properties["group.id"] == "dataflow-operator"
    assert properties["client.id"] == "dataflow-operator"
    assert properties["enable.auto.commit"] is False and properties["enable.auto.offset.store"] is False
    assert properties["auto.offset.reset"] == "earliest"
    assert properties["partition.assignment.strategy"] == "roundrobin"
    assert properties["session.timeout.ms"] == 20_000
    assert consumer_properties(kafka({"consumerGroup": " g "}), pem_files)["group.id"] == "g"


def test_producer_properties_and_redaction(pem_files: PemFiles) -> None:
    properties = producer_properties(kafka({"sasl": {"username": "u", "password": "s3cret"}}), pem_files)
    assert properties["enable.idempotence"] is True and properties["acks"] == "all"
    assert "s3cret" not in scrub("sasl password s3cret")  # registered when read
    with pytest.raises(KafkaConfigError):
        producer_properties(KafkaSinkConfig((), "t"), pem_files)
