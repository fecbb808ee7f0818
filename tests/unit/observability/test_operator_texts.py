"""What the operator writes to the cluster — Events and the DataFlow status — carries no secret
value, whichever error text the message quotes; and the operator learns the secrets of a spec
(literal and resolved from Secrets) before anything can quote them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dataflow_operator.observability.redaction import SECRETS, register_secrets, scrub
from dataflow_operator.operator.events import MAX_MESSAGE, EventRecorder
from dataflow_operator.operator.object_ref import ObjectRef
from dataflow_operator.operator.status import desired_status, failed
from dataflow_operator.spec.secrets import secret_values

PASSWORD = "s3cr3t-p@ss w0rd"
DATAFLOW = ObjectRef.of({"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
                         "metadata": {"name": "orders", "namespace": "shop", "uid": "u-1"}})


class Sink:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def create_event(self, namespace: str, body: dict[str, Any]) -> None:
        self.bodies.append(body)

    def patch_event(self, namespace: str, name: str, body: dict[str, Any]) -> bool:
        return False


def test_event_messages_are_scrubbed_before_truncation() -> None:
    register_secrets([PASSWORD])
    sink = Sink()
    recorder = EventRecorder(sink, instance="test", clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    # The secret straddles the truncation point: cut first, it would no longer be recognised.
    message = "x" * (MAX_MESSAGE - 8) + f"password {PASSWORD} refused"
    recorder.warning(DATAFLOW, "DeploymentFailed", message)
    recorder.warning(DATAFLOW, "SecretResolutionFailed", f"cannot use {PASSWORD}")
    texts = [body["message"] for body in sink.bodies]
    assert texts[1] == "cannot use [REDACTED]"
    assert all("s3cr" not in text and "w0rd" not in text for text in texts)


def test_status_message_and_conditions_are_scrubbed() -> None:
    register_secrets([PASSWORD])
    status = desired_status({}, failed("DeploymentFailed", f"connect to postgresql://app:{PASSWORD}@db failed"),
                            generation=3, maintenance=None, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert status["message"] == "connect to postgresql://app:[REDACTED]@db failed"
    assert {condition["message"] for condition in status["conditions"]} == {status["message"]}


def test_the_secret_fields_of_a_spec_are_known_in_either_encoding() -> None:
    spec = {
        "source": {"type": "kafka", "kafka": {
            "brokers": ["b:9092"], "topic": "t",
            "sasl": {"mechanism": "plain", "username": "u", "password": 123456,
                     "passwordSecretRef": {"name": "kafka-secret-name", "key": "password"}},
            "tls": {"keyFile": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "caFile": "/ca.pem"}}},
        "sink": {"type": "postgresql", "config": {"connectionString": f"host=db password='{PASSWORD}'"}},
        "errors": {"type": "http", "config": {"url": "https://bot:t0ken@hooks.invalid/x", "bearerToken": "tkn-1",
                                              "oauth2ClientSecret": "cs-2", "secretAccessKey": "sak-3"}},
    }
    SECRETS.clear()
    register_secrets(secret_values(spec))
    text = scrub(str(spec))
    for secret in ("123456", "MIIE", PASSWORD, "t0ken", "tkn-1", "cs-2", "sak-3"):
        assert secret not in text, secret
    # A URL with credentials goes whole, like a connection string; SecretRef names and paths stay.
    for visible in ("kafka-secret-name", "b:9092", "/ca.pem", "username"):
        assert visible in text, visible
