"""Connectors run on their typed configs: what a config leaves out is the default its config class
declares (the one place it is written), and what it gives is read through the same parse that
validation uses."""

from __future__ import annotations

from pathlib import Path

from dataflow_operator.connectors.file import FileSink, FileSource
from dataflow_operator.connectors.file_settings import FileSinkConfig, FileSourceConfig
from dataflow_operator.connectors.kafka.config import consumer_properties
from dataflow_operator.connectors.kafka.settings import KafkaSourceConfig
from dataflow_operator.connectors.pem_files import PemFiles
from dataflow_operator.connectors.postgresql.settings import PostgreSQLSinkConfig, PostgreSQLSourceConfig
from dataflow_operator.connectors.postgresql.sink import PostgreSQLSink
from dataflow_operator.connectors.postgresql.source import PostgreSQLSource
from dataflow_operator.pipeline.api_fields import field_default
from dataflow_operator.pipeline.connector import BatchLimits
from tests.integration.connectors.harness import Harness, typed_config

DSN = "postgresql://user@db.invalid/app"


def test_file_connectors_take_their_config_class_defaults(tmp_path: Path) -> None:
    sink = FileSink(typed_config(FileSinkConfig.parse, {"path": str(tmp_path / "out")}), Harness("file", "sink").context)
    assert sink.batch_limits() == BatchLimits(field_default(FileSinkConfig, "batch_size"),
                                              field_default(FileSinkConfig, "batch_flush_interval_seconds"))
    source = FileSource(typed_config(FileSourceConfig.parse, {"path": str(tmp_path / "in")}), Harness("file", "source").context)
    assert source.poll_interval == field_default(FileSourceConfig, "poll_interval_seconds")
    assert source.follow is False


def test_postgresql_sink_batches_by_its_config_class_defaults() -> None:
    sink = PostgreSQLSink(typed_config(PostgreSQLSinkConfig.parse, {"connectionString": DSN, "table": "t"}), Harness("postgresql", "sink").context)
    assert sink.settings == PostgreSQLSinkConfig(connection_string=DSN, table="t")
    assert sink.batch_limits() == BatchLimits(1, 10.0)
    timer_only = PostgreSQLSink(typed_config(PostgreSQLSinkConfig.parse, {"connectionString": DSN, "table": "t", "batchSize": 0,
                                 "batchFlushIntervalSeconds": 2}), Harness("postgresql", "sink").context)
    assert timer_only.batch_limits().max_messages > 1 and timer_only.batch_limits().max_wait_seconds == 2.0


def test_postgresql_source_reads_tracking_settings() -> None:
    source = PostgreSQLSource(typed_config(PostgreSQLSourceConfig.parse, {"connectionString": DSN, "query": "SELECT * FROM t", "table": "t"}),
                              Harness("postgresql", "source").context)
    assert source.settings == PostgreSQLSourceConfig(connection_string=DSN, table="t", query="SELECT * FROM t")
    assert source.settings.tracked is False  # a query without changeTrackingColumn is re-run as it is
    tracked = PostgreSQLSource(typed_config(PostgreSQLSourceConfig.parse, {"connectionString": DSN, "table": "t", "readBatchSize": 0}),
                               Harness("postgresql", "source").context)
    assert tracked.settings.tracked and tracked.settings.tracking_column == "updated_at"
    assert tracked.settings.page_size == 1000


def test_kafka_consumer_group_default_is_the_config_class_one() -> None:
    files = PemFiles()
    try:
        properties = consumer_properties(typed_config(KafkaSourceConfig.parse, {"brokers": ["k:9092"], "topic": "t"}), files)
    finally:
        files.cleanup()
    assert properties["group.id"] == field_default(KafkaSourceConfig, "consumer_group")
