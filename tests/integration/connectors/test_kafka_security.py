"""Kafka with TLS and with SASL against a broker that requires them (its own, started here): the
processor connects with the spec's ``securityProtocol``, ``tls`` and ``sasl`` fields; a CA that did
not sign the broker, or a wrong password, stops it with a clear error and no secret in its logs."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers.certs import write_serving_pki
from tests.peers.fixtures import running_kafka
from tests.peers.kafka import KafkaBroker, KafkaSecurity
from tests.processes import Processor, wait_for

from .kafka_helpers import consume_all, produce_json

USER, PASSWORD = "dataflow", "scram-Pa55-7c1d0e"
WRONG_PASSWORD = "wrong-Pa55-93ab2f"


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    pki = tmp_path_factory.mktemp("kafka-pki")
    ca, certificate, key = write_serving_pki(pki, ["127.0.0.1"])
    security = KafkaSecurity(ca=ca, certificate=certificate, key=key, users={USER: PASSWORD})
    yield from running_kafka(tmp_path_factory.mktemp("secure-kafka"), security=security)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def kafka_to_file(broker: KafkaBroker, workdir: Path, connection: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """A spec reading a new topic (3 records produced over plaintext) with ``connection``'s settings."""
    topic = broker.new_topic()
    produce_json(broker.bootstrap, topic, [{"id": i} for i in range(3)])
    out = workdir / f"{topic}.jsonl"
    spec = {"source": {"type": "kafka", "config": {"topic": topic, "consumerGroup": f"g-{uuid.uuid4().hex[:8]}",
                                                   **connection}},
            "sink": {"type": "file", "config": {"path": str(out)}}}
    return spec, out


def file_to_kafka(broker: KafkaBroker, workdir: Path, connection: dict[str, Any]) -> tuple[dict[str, Any], str]:
    topic = broker.new_topic()
    source = workdir / f"{topic}.in.jsonl"
    source.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(3)))
    spec = {"source": {"type": "file", "config": {"path": str(source)}},
            "sink": {"type": "kafka", "config": {"topic": topic, **connection}}}
    return spec, topic


def run_to_completion(workdir: Path, spec: dict[str, Any], done: Callable[[], bool]) -> None:
    """Run until ``done``; a file source ends the run by itself once exhausted, a Kafka source is
    stopped with SIGTERM."""
    processor = Processor(workdir, spec, name=f"secure-{uuid.uuid4().hex[:6]}").start()
    try:
        if spec["source"]["type"] == "kafka":
            processor.wait_ready()
            wait_for(done, 60, message="the records")
            processor.signal(signal.SIGTERM)
        assert processor.wait(60) == 0, processor.logs()
        assert done(), processor.logs()
    finally:
        processor.kill()


def failed_run(workdir: Path, spec: dict[str, Any]) -> tuple[str, str]:
    """Run a processor that must not start: the error it stopped with, and all its logs."""
    processor = Processor(workdir, spec, name=f"refused-{uuid.uuid4().hex[:6]}").start()
    try:
        assert processor.wait(90) == 1, processor.logs()
    finally:
        processor.kill()
    logs = processor.logs()
    entries = [json.loads(line) for line in logs.splitlines()]
    failure = next(entry for entry in entries if entry["msg"] == "processor stopped on a failure")
    return str(failure["error"]), logs


def tls(broker: KafkaBroker, ca: str) -> dict[str, Any]:
    return {"brokers": [broker.tls_bootstrap], "securityProtocol": "SSL", "tls": {"caFile": ca}}


def sasl(broker: KafkaBroker, mechanism: str, password: str = PASSWORD) -> dict[str, Any]:
    return {"brokers": [broker.sasl_bootstrap], "securityProtocol": "SASL_PLAINTEXT",
            "sasl": {"mechanism": mechanism, "username": USER, "password": password}}


def broker_ca(broker: KafkaBroker) -> Path:
    assert broker.security is not None
    return broker.security.ca


@pytest.mark.parametrize("inline", [False, True], ids=["ca-file", "ca-pem-inline"])
def test_a_source_reads_over_tls_verified_against_the_ca(secure_kafka: KafkaBroker, tmp_path: Path,
                                                         inline: bool) -> None:
    ca = broker_ca(secure_kafka)
    spec, out = kafka_to_file(secure_kafka, tmp_path, tls(secure_kafka, ca.read_text() if inline else str(ca)))
    run_to_completion(tmp_path, spec, lambda: len(lines(out)) == 3)
    assert sorted(row["id"] for row in lines(out)) == [0, 1, 2]


def test_a_sink_writes_over_tls(secure_kafka: KafkaBroker, tmp_path: Path) -> None:
    spec, topic = file_to_kafka(secure_kafka, tmp_path, tls(secure_kafka, str(broker_ca(secure_kafka))))
    run_to_completion(tmp_path, spec, lambda: len(consume_all(secure_kafka.bootstrap, topic, 3, timeout=2)) == 3)


def test_a_ca_that_did_not_sign_the_broker_is_refused(secure_kafka: KafkaBroker, tmp_path: Path) -> None:
    other_ca, _, _ = write_serving_pki(tmp_path, ["127.0.0.1"])
    spec, _ = file_to_kafka(secure_kafka, tmp_path, tls(secure_kafka, str(other_ca)))
    error, _ = failed_run(tmp_path, spec)
    assert error.startswith(f"Kafka brokers {secure_kafka.tls_bootstrap} refused the connection: "), error
    assert "certificate verify failed" in error, error


@pytest.mark.parametrize("mechanism", ["scram-sha-256", "plain"])
def test_sasl_source_and_sink(secure_kafka: KafkaBroker, tmp_path: Path, mechanism: str) -> None:
    spec, out = kafka_to_file(secure_kafka, tmp_path, sasl(secure_kafka, mechanism))
    run_to_completion(tmp_path, spec, lambda: len(lines(out)) == 3)
    spec, topic = file_to_kafka(secure_kafka, tmp_path, sasl(secure_kafka, mechanism))
    run_to_completion(tmp_path, spec, lambda: len(consume_all(secure_kafka.bootstrap, topic, 3, timeout=2)) == 3)


@pytest.mark.parametrize("mechanism", ["scram-sha-256", "plain"])
def test_a_wrong_password_is_a_clear_error_without_the_password(secure_kafka: KafkaBroker, tmp_path: Path,
                                                                mechanism: str) -> None:
    spec, _ = file_to_kafka(secure_kafka, tmp_path, sasl(secure_kafka, mechanism, WRONG_PASSWORD))
    error, logs = failed_run(tmp_path, spec)
    assert error.startswith(f"Kafka brokers {secure_kafka.sasl_bootstrap} refused the connection: "), error
    assert "SASL authentication error: Authentication failed" in error and "(_AUTHENTICATION)" in error, error
    assert WRONG_PASSWORD not in logs and PASSWORD not in logs
