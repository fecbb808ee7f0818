"""Only the librdkafka errors that a message causes are blamed on the message."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from dataflow_operator.connectors.kafka.errors import KafkaClientError
from dataflow_operator.pipeline.errors import is_environmental


@pytest.mark.parametrize(("code", "error_type", "environmental"), [
    (KafkaError.MSG_SIZE_TOO_LARGE, "invalid_data", False),
    (KafkaError.INVALID_RECORD, "invalid_data", False),
    (KafkaError._MSG_TIMED_OUT, "timeout", True),
    (KafkaError._ALL_BROKERS_DOWN, "connection_error", True),
    (KafkaError.SASL_AUTHENTICATION_FAILED, "auth_error", True),
    (KafkaError.UNKNOWN_TOPIC_OR_PART, "unknown", True),
    (KafkaError._FATAL, "unknown", True),
])
def test_kafka_errors_are_environmental_unless_the_message_caused_them(code: int, error_type: str,
                                                                       environmental: bool) -> None:
    error = KafkaClientError(KafkaError(code), "produce failed")
    assert error.error_type == error_type
    assert is_environmental(error) is environmental
