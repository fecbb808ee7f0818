"""DataFlow phase and status: pure functions from what a reconcile found to ``status``.

Phase (operator.md step 7): ready replicas > 0 -> Running; replicas wanted but none ready -> Pending;
scaled to 0 by maintenance or suspension -> Stopped; a failure in steps 2-6, or a Deployment that
reports it cannot make progress -> Error. The operator owns ``phase``, ``message``,
``observedGeneration``, ``maintenanceStatus`` and ``conditions``; ``processedCount``, ``errorCount`` and
``lastProcessedTime`` are left as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..observability.redaction import scrub
from ..pipeline.timetext import rfc3339_utc
from .maintenance import MaintenanceState

PENDING, RUNNING, ERROR, STOPPED = "Pending", "Running", "Error", "Stopped"
PHASES = (PENDING, RUNNING, ERROR, STOPPED)
# Events and conditions share these reasons.
INVALID_SPEC = "InvalidSpec"
SECRET_RESOLUTION_FAILED = "SecretResolutionFailed"
DEPLOYMENT_FAILED = "DeploymentFailed"


@dataclass(frozen=True, slots=True)
class Outcome:
    phase: str
    reason: str      # CamelCase, used as the Ready/Degraded condition reason
    message: str


def failed(reason: str, message: str) -> Outcome:
    return Outcome(ERROR, reason, message)


def _condition(deployment_status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in deployment_status.get("conditions") or [] if c.get("type") == kind), None)


def phase_from_deployment(deployment: Mapping[str, Any] | None,
                          maintenance: MaintenanceState | None) -> Outcome:
    """The phase once every object was applied without error."""
    if maintenance is not None and maintenance.paused:
        return Outcome(STOPPED, "Suspended" if maintenance.suspended else "MaintenanceWindow",
                       maintenance.message or "")
    if deployment is None:
        return Outcome(PENDING, "DeploymentNotFound", "Deployment not found")
    status = deployment.get("status") or {}
    if int(status.get("readyReplicas") or 0) > 0:
        return Outcome(RUNNING, "ProcessorRunning", "Processor pod is running")
    replica_failure = _condition(status, "ReplicaFailure")
    if replica_failure is not None and replica_failure.get("status") == "True":
        return failed(DEPLOYMENT_FAILED,
                      f"Deployment cannot create pods: {replica_failure.get('message', '')}")
    progressing = _condition(status, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return failed(DEPLOYMENT_FAILED, f"Deployment is not progressing: {progressing.get('message', '')}")
    return Outcome(PENDING, "ProcessorStarting", "Processor pod is starting")


def _conditions(current: list[Mapping[str, Any]], outcome: Outcome, message: str, generation: int,
                now: datetime) -> list[dict[str, Any]]:
    degraded = outcome.phase == ERROR
    wanted = [("Ready", outcome.phase == RUNNING, outcome.reason),
              ("Degraded", degraded, outcome.reason if degraded else "AsExpected")]
    existing = {c.get("type"): c for c in current}
    result = []
    for kind, true, reason in wanted:
        status = "True" if true else "False"
        previous = existing.get(kind)
        # lastTransitionTime moves only when the status flips, as for built-in conditions.
        unchanged = previous is not None and previous.get("status") == status
        transition = previous.get("lastTransitionTime") if previous is not None and unchanged else None
        result.append({"type": kind, "status": status, "reason": reason, "message": message,
                       "observedGeneration": generation,
                       "lastTransitionTime": transition or rfc3339_utc(now)})
    return result


def desired_status(current: Mapping[str, Any], outcome: Outcome, *, generation: int,
                   maintenance: MaintenanceState | None, now: datetime,
                   keep_maintenance: bool = False) -> dict[str, Any]:
    """The operator-owned part of ``status``; ``maintenanceStatus`` None means remove it.
    ``keep_maintenance`` leaves it as it is (an invalid spec touches nothing else). The message, which
    may quote an error from a connector or the API server, is scrubbed of secret values here."""
    message = scrub(outcome.message)
    status: dict[str, Any] = {
        "phase": outcome.phase,
        "message": message,
        "observedGeneration": generation,
        "conditions": _conditions(list(current.get("conditions") or []), outcome, message, generation, now),
    }
    if keep_maintenance:
        if "maintenanceStatus" in current:
            status["maintenanceStatus"] = current["maintenanceStatus"]
    else:
        status["maintenanceStatus"] = maintenance.status() if maintenance is not None else None
    return status


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch of ``status`` turning ``current`` into ``desired``; None when equal (no write).
    Top-level fields not in ``desired`` belong to others and are left alone; inside an owned object
    (``maintenanceStatus``) a field that is no longer wanted is removed."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        old = current.get(key)
        if value is None:
            if key in current:
                patch[key] = None
        elif isinstance(value, Mapping) and isinstance(old, Mapping):
            changes = {k: v for k, v in value.items() if old.get(k) != v}
            changes.update({k: None for k in old if k not in value})
            if changes:
                patch[key] = changes
        elif old != value:
            patch[key] = value
    return patch or None
