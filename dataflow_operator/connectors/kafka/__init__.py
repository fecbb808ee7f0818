"""Kafka source and sink on confluent-kafka (librdkafka), connectors.md §2.1."""

from .sink import KafkaSink
from .source import KafkaSource

__all__ = ["KafkaSink", "KafkaSource"]
