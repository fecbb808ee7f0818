"""The DataFlow status as the API declares it (the operator writes it; ``operator/status.py``).

Declared here so that the CRD schema is generated from one set of types, spec and status alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..pipeline.api_fields import api_field

PHASES = ("Pending", "Running", "Error", "Stopped")
#: metav1.Condition's constraints, as the API server's own types declare them.
CONDITION_TYPE_PATTERN = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                          r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$")
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


@dataclass(frozen=True, slots=True)
class Condition:
    """metav1.Condition."""

    type: str = api_field(extra={"maxLength": 316, "pattern": CONDITION_TYPE_PATTERN})
    status: str = api_field(enum=("True", "False", "Unknown"))
    last_transition_time: str = api_field(format="date-time")
    reason: str = api_field(extra={"maxLength": 1024, "minLength": 1, "pattern": CONDITION_REASON_PATTERN})
    message: str = api_field(extra={"maxLength": 32768})
    observed_generation: int | None = api_field(default=None, format="int64", minimum=0)


@dataclass(frozen=True, slots=True)
class MaintenanceStatus:
    in_maintenance: bool = api_field(default=False)
    next_maintenance_time: str | None = api_field(default=None, format="date-time")
    last_maintenance_time: str | None = api_field(default=None, format="date-time")
    suspended: bool = api_field(default=False)


@dataclass(frozen=True, slots=True)
class DataFlowStatus:
    phase: str | None = api_field(default=None, enum=PHASES)
    message: str | None = api_field(default=None)
    last_processed_time: str | None = api_field(default=None, format="date-time")
    processed_count: int = api_field(default=0, format="int64")
    error_count: int = api_field(default=0, format="int64")
    maintenance_status: MaintenanceStatus | None = api_field(default=None)
    observed_generation: int | None = api_field(default=None, format="int64")
    conditions: tuple[Condition, ...] = api_field("Ready and Degraded.", default=(), extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
