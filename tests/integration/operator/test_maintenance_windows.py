"""Maintenance windows and suspension scale the processor to 0 and back, at the boundaries of the injected
clock (a shifted real clock: the operator's own boundary requeue fires, nothing sleeps for hours)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client as k8s

from dataflow_operator.operator.manager import Manager
from tests.integration.operator.conftest import (
    KAFKA_TO_POSTGRES,
    Operators,
    ShiftedClock,
    create_dataflow,
    create_secret,
    deployment,
    patch_dataflow,
    wait_phase,
    wait_status,
)
from tests.processes import wait_for


def reconciles(operator: Manager, result: str) -> float:
    return operator.registry.get_sample_value("dataflow_controller_reconcile_total", {"result": result}) or 0.0


def replicas(api: k8s.ApiClient, namespace: str, name: str) -> int | None:
    live = deployment(api, namespace, name)
    return None if live is None else int(live["spec"]["replicas"])


def test_one_off_window_stops_and_restarts_at_its_boundaries(admin: k8s.ApiClient, namespace: str,
                                                            operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    clock = ShiftedClock()
    start = datetime(2026, 6, 1, 2, 0, 0, tzinfo=UTC)
    clock.set(start - timedelta(seconds=5))
    operator = operators.start(namespace, clock=clock)
    spec = {**KAFKA_TO_POSTGRES, "maintenance": {"startTime": "2026-06-01T02:00:00Z", "duration": "3s"}}
    create_dataflow(admin, namespace, "orders", spec)

    status = wait_phase(admin, namespace, "orders", "Pending")["status"]
    assert replicas(admin, namespace, "orders") == 1
    assert status["maintenanceStatus"] == {"inMaintenance": False, "suspended": False,
                                           "nextMaintenanceTime": "2026-06-01T02:00:00Z"}
    assert reconciles(operator, "requeue") >= 1, "the reconcile must requeue itself for the window's start"

    stopped = wait_phase(admin, namespace, "orders", "Stopped", timeout=20)["status"]
    assert clock() >= start, "stopped before the window began"
    assert replicas(admin, namespace, "orders") == 0
    assert stopped["message"] == "Processor paused for scheduled maintenance window"
    assert stopped["maintenanceStatus"] == {"inMaintenance": True, "suspended": False,
                                            "lastMaintenanceTime": "2026-06-01T02:00:00Z"}
    assert {c["type"]: c["status"] for c in stopped["conditions"]} == {"Ready": "False", "Degraded": "False"}

    after = wait_status(admin, namespace, "orders", lambda s: s.get("phase") == "Pending"
                        and not s["maintenanceStatus"]["inMaintenance"], timeout=20, message="window over")["status"]
    assert clock() >= start + timedelta(seconds=3), "restarted before the window ended"
    assert replicas(admin, namespace, "orders") == 1
    assert after["maintenanceStatus"] == {"inMaintenance": False, "suspended": False,
                                          "lastMaintenanceTime": "2026-06-01T02:00:00Z"}
    requeues, total = reconciles(operator, "requeue"), reconciles(operator, "success")
    operator.controller.enqueue(f"{namespace}/orders")
    wait_for(lambda: reconciles(operator, "success") > total, message="reconciled after the window")
    assert reconciles(operator, "requeue") == requeues, "a one-off window has no further boundary"


def test_daily_window_in_a_time_zone_across_a_clock_jump(admin: k8s.ApiClient, namespace: str,
                                                         operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    clock = ShiftedClock()
    clock.set(datetime(2026, 7, 15, 12, 0, tzinfo=UTC))
    operator = operators.start(namespace, clock=clock)
    window: dict[str, Any] = {"startTime": "2026-01-01T03:00:00+01:00", "duration": "2h", "repeat": "daily",
                              "timezone": "Europe/Berlin"}
    create_dataflow(admin, namespace, "orders", {**KAFKA_TO_POSTGRES, "maintenance": window})
    status = wait_phase(admin, namespace, "orders", "Pending")["status"]
    # 03:00 in Berlin is 01:00Z in summer.
    assert status["maintenanceStatus"]["nextMaintenanceTime"] == "2026-07-16T01:00:00Z"

    clock.set(datetime(2026, 7, 16, 2, 30, tzinfo=UTC))  # 04:30 CEST: inside
    operator.controller.enqueue(f"{namespace}/orders")
    wait_phase(admin, namespace, "orders", "Stopped")
    assert replicas(admin, namespace, "orders") == 0

    clock.set(datetime(2026, 7, 16, 3, 0, 1, tzinfo=UTC))  # 05:00:01 CEST: over
    operator.controller.enqueue(f"{namespace}/orders")
    wait_phase(admin, namespace, "orders", "Pending")
    assert replicas(admin, namespace, "orders") == 1


def test_suspension_scales_to_zero_until_lifted(admin: k8s.ApiClient, namespace: str, operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    operators.start(namespace)
    create_dataflow(admin, namespace, "orders", {**KAFKA_TO_POSTGRES, "replicas": 2})
    wait_for(lambda: replicas(admin, namespace, "orders") == 2, message="2 replicas")

    patch_dataflow(admin, namespace, "orders", {"spec": {"maintenance": {"suspended": True}}})
    status = wait_phase(admin, namespace, "orders", "Stopped")["status"]
    assert status["message"] == "Processor suspended manually"
    assert status["maintenanceStatus"] == {"inMaintenance": False, "suspended": True}
    assert replicas(admin, namespace, "orders") == 0

    patch_dataflow(admin, namespace, "orders", {"spec": {"maintenance": {"suspended": False}}})
    wait_phase(admin, namespace, "orders", "Pending")
    assert replicas(admin, namespace, "orders") == 2
