"""KafkaSource against a real broker: metadata, contiguous commits, granularity, rebalance, outages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataflow_operator.connectors.kafka.settings import KafkaSourceConfig
from dataflow_operator.connectors.kafka.source import KafkaSource
from dataflow_operator.pipeline.checkpoint import deferred_saves
from dataflow_operator.pipeline.progress import ProgressTracker
from tests.processes import wait_for

from .harness import Harness, SourceRunner, pipeline_settings, typed_config
from .kafka_helpers import committed, produce


def make_source(kafka: Any, topic: str, group: str, **settings: Any) -> tuple[KafkaSource, Harness]:
    harness = Harness("kafka", "source", settings=pipeline_settings(**settings))
    source = KafkaSource(typed_config(KafkaSourceConfig.parse, {"brokers": [kafka.bootstrap], "topic": topic, "consumerGroup": group}),
                         harness.context)
    source.connect()
    return source, harness


@pytest.fixture
def group() -> str:
    return f"group-{uuid.uuid4().hex[:8]}"


def test_metadata_and_contiguous_commits(kafka: Any, group: str) -> None:
    topic = kafka.new_topic()
    before = datetime.now(UTC) - timedelta(seconds=5)
    produce(kafka.bootstrap, topic, [
        {"value": b'{"n": 0}', "key": b"k0", "headers": [("trace", b"abc"), ("empty", None)]},
        {"value": b'{"n": 1}'},
        {"value": b'{"n": 2}', "key": b"\xff\xfe"},
        {"value": b'{"n": 3}', "key": b""},
        {"value": b'{"n": 4}'},
        {"value": b'{"n": 5}'},
    ])
    source, _ = make_source(kafka, topic, group)
    runner = SourceRunner(source).start()
    try:
        messages = wait_for(lambda: runner.taken(6), 30, message="6 messages")
        assert [m.data for m in messages] == [f'{{"n": {i}}}'.encode() for i in range(6)]
        first = messages[0].metadata
        assert (first["topic"], first["partition"], first["offset"], first["key"]) == (topic, 0, 0, "k0")
        assert first["headers"] == {"trace": "abc", "empty": ""}
        assert before <= first["timestamp"] <= datetime.now(UTC) and first["timestamp"].tzinfo is not None
        assert messages[1].metadata["key"] is None and "headers" not in messages[1].metadata
        assert messages[2].metadata["key"] == b"\xff\xfe"  # not UTF-8: kept as bytes
        assert messages[3].metadata["key"] == ""

        for index in (0, 1, 3):
            messages[index].acknowledge()
        source.flush_positions()
        assert committed(kafka.bootstrap, group, topic, 1) == [2]  # 3 is acknowledged, 2 is not
        messages[2].acknowledge()
        source.flush_positions()
        assert committed(kafka.bootstrap, group, topic, 1) == [4]
    finally:
        runner.stop()
        source.close()

    resumed, _ = make_source(kafka, topic, group)
    runner = SourceRunner(resumed).start()
    try:
        again = wait_for(lambda: runner.taken(2), 30, message="the unacknowledged messages again")
        assert [m.metadata["offset"] for m in again] == [4, 5]
    finally:
        runner.stop()
        resumed.close()


def test_batch_granularity_commits_without_being_asked(kafka: Any, group: str) -> None:
    topic = kafka.new_topic(partitions=2)
    produce(kafka.bootstrap, topic, [{"value": b"{}", "partition": i % 2} for i in range(20)])
    source, _ = make_source(kafka, topic, group)
    runner = SourceRunner(source).start()
    try:
        for message in wait_for(lambda: runner.taken(20), 30, message="20 messages"):
            message.acknowledge()
        wait_for(lambda: committed(kafka.bootstrap, group, topic, 2) == [10, 10], 10,
                 message="offsets committed by the committer thread")
    finally:
        runner.stop()
        source.close()


def test_message_granularity_ack_returns_after_the_commit(kafka: Any, group: str) -> None:
    topic = kafka.new_topic()
    produce(kafka.bootstrap, topic, [{"value": b"{}"} for _ in range(3)])
    source, _ = make_source(kafka, topic, group, ack_granularity="message")
    runner = SourceRunner(source).start()
    try:
        messages = wait_for(lambda: runner.taken(3), 30, message="3 messages")
        for offset, message in enumerate(messages):
            message.acknowledge()
            assert committed(kafka.bootstrap, group, topic, 1) == [offset + 1]
    finally:
        runner.stop()
        source.close()


def test_message_granularity_acks_of_a_block_share_one_commit_made_before_it_ends(kafka: Any, group: str) -> None:
    topic = kafka.new_topic(partitions=2)
    produce(kafka.bootstrap, topic, [{"value": b"{}", "partition": i % 2} for i in range(40)])
    source, _ = make_source(kafka, topic, group, ack_granularity="message")
    runner = SourceRunner(source).start()
    try:
        messages = wait_for(lambda: runner.taken(40), 30, message="40 messages")
        with deferred_saves():  # as a writer acknowledges the batch it wrote
            for message in messages:
                message.acknowledge()  # returns at once: the block's end commits for all of them
            assert committed(kafka.bootstrap, group, topic, 2) == [-1001, -1001]
        assert committed(kafka.bootstrap, group, topic, 2) == [20, 20]
    finally:
        runner.stop()
        source.close()


def test_rebalance_commits_acknowledged_and_drops_revoked_partitions(kafka: Any, group: str) -> None:
    topic = kafka.new_topic(partitions=2)
    produce(kafka.bootstrap, topic, [{"value": f'{{"i": {i}}}'.encode(), "partition": p}
                                     for p in range(2) for i in range(10)])
    first, _ = make_source(kafka, topic, group)
    first_runner = SourceRunner(first).start()
    second: KafkaSource | None = None
    second_runner: SourceRunner | None = None
    try:
        in_hand = wait_for(lambda: first_runner.taken(20), 30, message="all 20 messages")
        by_partition = {p: [m for m in in_hand if m.metadata["partition"] == p] for p in range(2)}
        for partition in range(2):
            for message in by_partition[partition][:3]:
                message.acknowledge()

        second, _ = make_source(kafka, topic, group)
        second_runner = SourceRunner(second).start()
        # The second member starts where the revocation commit left its partition: offset 3.
        joined = wait_for(lambda: second_runner.taken(1), 60, message="the second member reads")
        assert joined[0].metadata["offset"] == 3
        assert committed(kafka.bootstrap, group, topic, 2) == [3, 3]

        # Acks of messages read under the old assignment must not commit anything any more.
        for partition in range(2):
            for message in by_partition[partition][3:]:
                message.acknowledge()
        first.flush_positions()
        assert committed(kafka.bootstrap, group, topic, 2) == [3, 3]
    finally:
        for runner in (first_runner, second_runner):
            if runner is not None:
                runner.stop()
        first.close()
        if second is not None:
            second.close()


def test_progress_is_bumped_while_assigned_on_an_idle_topic(kafka: Any, group: str) -> None:
    now = [0.0]
    progress = ProgressTracker(timeout_seconds=10, clock=lambda: now[0])
    progress.mark_ready()
    topic = kafka.new_topic()
    harness = Harness("kafka", "source", progress=progress)
    source = KafkaSource(typed_config(KafkaSourceConfig.parse, {"brokers": [kafka.bootstrap], "topic": topic, "consumerGroup": group}), harness.context)
    source.connect()
    runner = SourceRunner(source).start()
    try:
        now[0] = 1000.0  # long past the timeout: only a bump after this makes the processor live again
        wait_for(lambda: progress.liveness()[0], 30, message="progress bumped on an idle topic")
    finally:
        runner.stop()
        source.close()


@pytest.mark.slow
def test_broker_outage_is_reported_and_survived(kafka: Any, group: str) -> None:
    topic = kafka.new_topic()
    produce(kafka.bootstrap, topic, [{"value": b'{"before": true}'}])
    source, harness = make_source(kafka, topic, group)
    runner = SourceRunner(source).start()
    try:
        wait_for(lambda: runner.taken(1), 30, message="the first message")[0].acknowledge()
        assert harness.connection_status() == 1
        kafka.stop()
        try:
            wait_for(lambda: harness.connection_status() == 0, 60, message="connection_status 0")
            wait_for(lambda: harness.errors("read", "connection_error") > 0, 30, message="read errors counted")
        finally:
            kafka.start()
        wait_for(lambda: harness.connection_status() == 1, 60, message="connection_status back to 1")
        produce(kafka.bootstrap, topic, [{"value": b'{"after": true}'}])
        after = wait_for(lambda: runner.taken(2), 60, message="a message after the outage")
        assert after[1].data == b'{"after": true}'
        after[1].acknowledge()
        source.flush_positions()
        assert committed(kafka.bootstrap, group, topic, 1) == [2]
    finally:
        runner.stop()
        source.close()
