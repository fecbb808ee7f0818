"""The status count publisher: bounded, change-only, leader-only writes; refresh when nobody scrapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from dataflow_operator.operator.aggregator_targets import PodTarget
from dataflow_operator.operator.status_count_publisher import StatusCountPublisher, counts_in_status
from dataflow_operator.operator.status_counts import Counts

POD_A = PodTarget("team", "orders-a", "orders", "10.0.0.1")
POD_B = PodTarget("team", "orders-b", "orders", "10.0.0.2")


class World:
    def __init__(self) -> None:
        self.time = 1000.0
        self.leader = True
        self.refreshes = 0
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_with: Exception | None = None
        self.dataflows: dict[tuple[str, str], dict[str, Any]] = {("team", "orders"): {"status": {}}}

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.patches.append((namespace, name, body))

    def refresh(self) -> None:
        self.refreshes += 1

    def publisher(self) -> StatusCountPublisher:
        return StatusCountPublisher(
            patch_status=self.patch, dataflow=self.dataflows.get, dataflow_keys=self.dataflows.keys,
            is_leader=lambda: self.leader, refresh=self.refresh, interval=10.0, clock=lambda: self.time,
            now=lambda: datetime(2026, 12, 1, 8, 0, int(self.time) % 60, tzinfo=UTC))


def test_writes_the_sum_over_pods_at_most_once_per_interval_and_only_on_change() -> None:
    world = World()
    publisher = world.publisher()
    publisher.observe([(POD_A, Counts(10, 1)), (POD_B, Counts(5, 0))], [POD_A, POD_B])
    publisher.publish_due()
    assert world.patches == [("team", "orders", {"status": {
        "processedCount": 15, "errorCount": 1, "lastProcessedTime": "2026-12-01T08:00:40Z"}})]
    world.time += 1
    publisher.observe([(POD_A, Counts(20, 1)), (POD_B, Counts(5, 0))], [POD_A, POD_B])
    publisher.publish_due()
    assert len(world.patches) == 1          # within the interval
    world.time += 9
    publisher.observe([(POD_A, Counts(20, 1)), (POD_B, Counts(5, 0))], [POD_A, POD_B])
    publisher.publish_due()
    assert world.patches[-1][2]["status"]["processedCount"] == 25
    assert world.patches[-1][2]["status"]["lastProcessedTime"] == "2026-12-01T08:00:41Z"  # when it grew
    world.time += 60
    publisher.observe([(POD_A, Counts(20, 1)), (POD_B, Counts(5, 0))], [POD_A, POD_B])
    publisher.publish_due()
    assert len(world.patches) == 2          # nothing changed: no write


def test_only_the_leader_writes() -> None:
    world = World()
    world.leader = False
    publisher = world.publisher()
    publisher.observe([(POD_A, Counts(3, 0))], [POD_A])
    publisher.publish_due()
    assert world.patches == [] and world.refreshes == 0


def test_starts_from_the_status_already_written() -> None:
    world = World()
    world.dataflows[("team", "orders")] = {"status": {"processedCount": 500, "errorCount": 7,
                                                      "lastProcessedTime": "2026-11-30T00:00:00Z"}}
    publisher = world.publisher()
    publisher.observe([(POD_A, Counts(3, 0))], [POD_A])
    publisher.publish_due()
    assert world.patches == [("team", "orders", {"status": {"processedCount": 500, "errorCount": 7}})]


def test_asks_for_a_scrape_when_nobody_scraped_for_an_interval() -> None:
    world = World()
    publisher = world.publisher()
    publisher.publish_due()
    assert world.refreshes == 1
    publisher.observe([(POD_A, Counts(1, 0))], [POD_A])
    world.time += 5
    publisher.publish_due()
    assert world.refreshes == 1


def test_a_failed_write_is_retried_after_the_interval_and_a_deleted_dataflow_forgotten() -> None:
    world = World()
    publisher = world.publisher()
    publisher.observe([(POD_A, Counts(4, 0))], [POD_A])
    world.fail_with = ApiException(status=500)
    publisher.publish_due()
    world.fail_with = None
    world.time += 5
    publisher.publish_due()
    assert world.patches == []
    world.time += 5
    publisher.publish_due()
    assert [body["status"]["processedCount"] for _, _, body in world.patches] == [4]
    del world.dataflows[("team", "orders")]
    publisher.observe([(POD_A, Counts(9, 0))], [POD_A])
    world.time += 10
    publisher.publish_due()
    assert len(world.patches) == 1


def test_counts_in_status_ignores_what_is_not_a_count() -> None:
    assert counts_in_status(None) == Counts()
    assert counts_in_status({"status": {"processedCount": True, "errorCount": -1}}) == Counts()
    assert counts_in_status({"status": {"processedCount": "12", "errorCount": 3}}) == Counts(0, 3)
