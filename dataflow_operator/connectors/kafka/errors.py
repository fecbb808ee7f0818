"""librdkafka error codes → the contract's ``error_type`` values.

Mapped by code, not by text: librdkafka's messages change between releases, its codes do not.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from ...pipeline.errors import ClassifiedError

_BY_CODE: dict[int, str] = {
    KafkaError._TIMED_OUT: "timeout",
    KafkaError._MSG_TIMED_OUT: "timeout",
    KafkaError._TIMED_OUT_QUEUE: "timeout",
    KafkaError.REQUEST_TIMED_OUT: "timeout",
    KafkaError._TRANSPORT: "connection_error",
    KafkaError._ALL_BROKERS_DOWN: "connection_error",
    KafkaError._RESOLVE: "connection_error",
    KafkaError._SSL: "connection_error",
    KafkaError.NETWORK_EXCEPTION: "connection_error",
    KafkaError._AUTHENTICATION: "auth_error",
    KafkaError.SASL_AUTHENTICATION_FAILED: "auth_error",
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "auth_error",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "auth_error",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "auth_error",
    KafkaError.MSG_SIZE_TOO_LARGE: "invalid_data",
    KafkaError.INVALID_RECORD: "invalid_data",
    KafkaError._BAD_MSG: "invalid_data",
    KafkaError._INVALID_ARG: "invalid_data",
}


def error_type_of(error: KafkaError) -> str:
    mapped = _BY_CODE.get(error.code())
    if mapped is not None:
        return mapped
    return "transient" if error.retriable() else "unknown"


#: The only librdkafka errors that are the message's fault; every other one is the client's or the
#: cluster's state (an unknown topic, a fenced producer, a fatal client error) and never bad data.
MESSAGE_ERROR_TYPES = frozenset({"invalid_data"})


class KafkaClientError(ClassifiedError):
    """A librdkafka error with its ``error_type`` already decided."""

    def __init__(self, error: KafkaError, context: str = "") -> None:
        prefix = f"{context}: " if context else ""
        error_type = error_type_of(error)
        super().__init__(f"{prefix}{error.str()} ({error.name()})", error_type,
                         environmental=error_type not in MESSAGE_ERROR_TYPES)
        self.kafka_error = error


def from_exception(exc: KafkaException, context: str = "") -> KafkaClientError:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else KafkaError(KafkaError._FAIL)
    return KafkaClientError(error, context)
