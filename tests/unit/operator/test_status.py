"""Phase mapping and the status the operator writes (only when it changed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dataflow_operator.operator.maintenance import MaintenanceState
from dataflow_operator.operator.status import (
    ERROR,
    PENDING,
    RUNNING,
    STOPPED,
    DeploymentHealth,
    Outcome,
    desired_status,
    failed,
    phase_from_deployment,
    status_patch,
)

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
LATER = datetime(2026, 5, 1, 13, 0, 0, tzinfo=UTC)
WINDOW = MaintenanceState(in_window=True, suspended=False, next_boundary=LATER, next_start=None,
                          last_start=NOW)
SUSPENDED = MaintenanceState(in_window=False, suspended=True, next_boundary=None, next_start=None, last_start=None)
IDLE = MaintenanceState(in_window=False, suspended=False, next_boundary=LATER, next_start=LATER, last_start=None)


def deployment(**status: Any) -> DeploymentHealth:
    return DeploymentHealth.of({"spec": {"replicas": 1}, "status": status})


@pytest.mark.parametrize(("live", "maintenance", "phase", "message"), [
    (deployment(readyReplicas=1, replicas=1), None, RUNNING, "Processor pod is running"),
    (deployment(readyReplicas=2, replicas=3), IDLE, RUNNING, "Processor pod is running"),
    (deployment(replicas=1), None, PENDING, "Processor pod is starting"),
    (deployment(), None, PENDING, "Processor pod is starting"),
    (None, None, PENDING, "Deployment not found"),
    (deployment(readyReplicas=1), WINDOW, STOPPED, "Processor paused for scheduled maintenance window"),
    (deployment(readyReplicas=1), SUSPENDED, STOPPED, "Processor suspended manually"),
])
def test_phase_from_deployment(live: DeploymentHealth | None, maintenance: MaintenanceState | None, phase: str,
                               message: str) -> None:
    outcome = phase_from_deployment(live, maintenance)
    assert (outcome.phase, outcome.message) == (phase, message)


def test_a_deployment_that_cannot_create_pods_is_an_error() -> None:
    live = deployment(replicas=0, conditions=[{"type": "ReplicaFailure", "status": "True",
                                               "message": "pods \"x\" is forbidden: exceeded quota"}])
    outcome = phase_from_deployment(live, None)
    assert outcome.phase == ERROR and outcome.reason == "DeploymentFailed"
    assert "exceeded quota" in outcome.message


def test_a_deployment_past_its_progress_deadline_is_an_error() -> None:
    live = deployment(replicas=1, conditions=[{"type": "Progressing", "status": "False",
                                               "reason": "ProgressDeadlineExceeded", "message": "too slow"}])
    assert phase_from_deployment(live, None).phase == ERROR
    # Still serving from an older ReplicaSet: running wins.
    still_serving = deployment(replicas=1, readyReplicas=1, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}])
    assert phase_from_deployment(still_serving, None).phase == RUNNING


def test_desired_status_fields_and_conditions() -> None:
    status = desired_status({}, Outcome(RUNNING, "ProcessorRunning", "Processor pod is running"), generation=4,
                            maintenance=IDLE, now=NOW)
    assert status == {
        "phase": RUNNING, "message": "Processor pod is running", "observedGeneration": 4,
        "maintenanceStatus": {"inMaintenance": False, "suspended": False,
                              "nextMaintenanceTime": "2026-05-01T13:00:00Z"},
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "ProcessorRunning", "message": "Processor pod is running",
             "observedGeneration": 4, "lastTransitionTime": "2026-05-01T12:00:00Z"},
            {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "Processor pod is running",
             "observedGeneration": 4, "lastTransitionTime": "2026-05-01T12:00:00Z"}],
    }


def test_error_sets_degraded_with_the_failure_reason() -> None:
    status = desired_status({}, failed("InvalidSpec", "Invalid spec: spec.sink: required"), generation=1,
                            maintenance=None, now=NOW)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == ERROR
    assert (conditions["Degraded"]["status"], conditions["Degraded"]["reason"]) == ("True", "InvalidSpec")
    assert conditions["Ready"]["status"] == "False"
    assert status["maintenanceStatus"] is None


def test_transition_time_moves_only_when_a_condition_flips() -> None:
    first = desired_status({}, Outcome(PENDING, "ProcessorStarting", "starting"), generation=1, maintenance=None,
                           now=NOW)
    same = desired_status(first, Outcome(PENDING, "ProcessorStarting", "starting"), generation=1, maintenance=None,
                          now=LATER)
    assert same["conditions"] == first["conditions"]
    flipped = desired_status(first, Outcome(RUNNING, "ProcessorRunning", "running"), generation=1, maintenance=None,
                             now=LATER)
    ready = {c["type"]: c for c in flipped["conditions"]}
    assert ready["Ready"]["lastTransitionTime"] == "2026-05-01T13:00:00Z"
    assert ready["Degraded"]["lastTransitionTime"] == "2026-05-01T12:00:00Z"


def test_unchanged_status_needs_no_write() -> None:
    outcome = Outcome(RUNNING, "ProcessorRunning", "Processor pod is running")
    current = {**desired_status({}, outcome, generation=2, maintenance=IDLE, now=NOW),
               "processedCount": 10, "errorCount": 1}
    assert status_patch(current, desired_status(current, outcome, generation=2, maintenance=IDLE, now=LATER)) is None


def test_patch_contains_only_changes_and_removes_maintenance_status() -> None:
    outcome = Outcome(RUNNING, "ProcessorRunning", "Processor pod is running")
    current = desired_status({}, outcome, generation=2, maintenance=IDLE, now=NOW)
    patch = status_patch(current, desired_status(current, outcome, generation=3, maintenance=None, now=NOW))
    assert patch is not None
    assert set(patch) == {"observedGeneration", "maintenanceStatus", "conditions"}
    assert patch["maintenanceStatus"] is None


def test_keep_maintenance_leaves_it_untouched() -> None:
    current = {"maintenanceStatus": {"inMaintenance": True, "suspended": False}}
    status = desired_status(current, failed("InvalidSpec", "bad"), generation=1, maintenance=None, now=NOW,
                            keep_maintenance=True)
    assert status["maintenanceStatus"] == current["maintenanceStatus"]
    patch = status_patch(current, status)
    assert patch is not None and "maintenanceStatus" not in patch
    assert "maintenanceStatus" not in (status_patch({}, desired_status({}, failed("X", "y"), generation=1,
                                                                       maintenance=None, now=NOW,
                                                                       keep_maintenance=True)) or {})


def test_a_maintenance_field_no_longer_wanted_is_removed_by_the_merge_patch() -> None:
    current = {"maintenanceStatus": {"inMaintenance": False, "suspended": False,
                                     "nextMaintenanceTime": "2026-05-01T13:00:00Z"}}
    desired = {"maintenanceStatus": {"inMaintenance": True, "suspended": False,
                                     "lastMaintenanceTime": "2026-05-01T13:00:00Z"}}
    assert status_patch(current, desired) == {"maintenanceStatus": {
        "inMaintenance": True, "lastMaintenanceTime": "2026-05-01T13:00:00Z", "nextMaintenanceTime": None}}
