"""A resync of 300 converged DataFlows writes nothing: every desired object is compared with the cache,
and status is written only when it changed (counted in the API server's audit log)."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from dataflow_operator.operator.manager import Manager
from tests.integration.operator.conftest import (
    GROUP,
    KAFKA_TO_POSTGRES,
    PLURAL,
    VERSION,
    WRITE_VERBS,
    Operators,
    audit_entries,
    bind_chart_rbac,
    create_dataflow,
    create_secret,
)
from tests.processes import wait_for

COUNT = 300
USER = "operator-3"


def reconciles(operator: Manager) -> float:
    return sum(sample.value for metric in operator.registry.collect()
               if metric.name == "dataflow_controller_reconcile"
               for sample in metric.samples if sample.name.endswith("_total"))


def idle(operator: Manager) -> bool:
    def value(metric: str, **labels: str) -> float | None:
        return operator.registry.get_sample_value(metric, labels)

    return (operator.controller.running() and value("workqueue_depth", name="dataflows") == 0
            and value("dataflow_controller_reconcile_inflight") == 0)


def test_noop_resync_of_300_dataflows_issues_zero_writes(cluster: Any, admin: k8s.ApiClient, namespace: str,
                                                        operators: Operators, helm: Path) -> None:
    bind_chart_rbac(admin, helm, USER, f"dataflow-system-{uuid.uuid4().hex[:6]}")
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    operator = operators.start(namespace, kubeconfig=cluster.kubeconfig_for(USER), workers=4)
    for index in range(COUNT):
        spec = {**KAFKA_TO_POSTGRES, "maintenance": {"startTime": "2030-01-01T00:00:00Z", "duration": "1h",
                                                     "repeat": "weekly"}} if index % 3 == 0 else KAFKA_TO_POSTGRES
        create_dataflow(admin, namespace, f"flow-{index}", spec)

    def converged() -> bool:
        items = k8s.CustomObjectsApi(admin).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        return len(items) == COUNT and all((item.get("status") or {}).get("phase") == "Pending" for item in items)

    wait_for(converged, timeout=600, interval=1, message=f"{COUNT} DataFlows Pending")
    wait_for(lambda: idle(operator), timeout=120, message="operator idle")

    mark = len(audit_entries(cluster))
    before = reconciles(operator)
    operator.informers["dataflows"].resync()
    wait_for(lambda: reconciles(operator) >= before + COUNT and idle(operator), timeout=300,
             message="every DataFlow reconciled again")

    requests = [entry for entry in audit_entries(cluster)[mark:] if entry["user"]["username"] == USER]
    writes = [f"{entry['verb']} {entry['requestURI']}" for entry in requests if entry["verb"] in WRITE_VERBS]
    assert writes == [], f"{len(writes)} writes on a no-op resync, e.g. {writes[:5]}"
    verbs = Counter(entry["verb"] for entry in requests)
    assert verbs["get"] == 0, f"a no-op resync reads from the caches, not the API: {verbs}"
