"""The operator under the chart's least-privilege RBAC, through an API server restart with every watch
forced through 410, and with a watch that goes silent."""

from __future__ import annotations

import copy
import uuid
from typing import Any
from urllib.parse import urlparse

from kubernetes import client as k8s

from dataflow_operator.operator.informer import Informer
from dataflow_operator.operator.kube import KubeClient
from dataflow_operator.operator.listwatch import ApiListWatch
from dataflow_operator.operator.manager import load_configuration
from tests.integration.operator.conftest import (
    KAFKA_TO_POSTGRES,
    Operators,
    audit_entries,
    bind_chart_rbac,
    create_dataflow,
    create_secret,
    delete_dataflow,
    events_for,
    get_dataflow,
    patch_dataflow,
    set_deployment_ready,
    spec_document,
    wait_phase,
)
from tests.integration.operator.tcp_proxy import SilencingProxy
from tests.peers.kube import create_namespace
from tests.processes import wait_for


def test_everything_works_as_the_chart_clusterrole(cluster: Any, admin: k8s.ApiClient, namespace: str,
                                                   operators: Operators, helm: Any) -> None:
    lease_namespace = f"dataflow-system-{uuid.uuid4().hex[:6]}"
    bind_chart_rbac(admin, helm, "operator", lease_namespace)
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    # All namespaces, leader election on: every permission the operator uses is exercised.
    operator = operators.start(None, kubeconfig=cluster.kubeconfig_for("operator"), leader_elect=True,
                               leader_election_namespace=lease_namespace, lease_duration=8, renew_deadline=5,
                               retry_period=1)
    wait_for(operator.is_leader, message="leadership")
    lease = k8s.CoordinationV1Api(admin).read_namespaced_lease("dataflow-operator.dataflow.io", lease_namespace)
    assert lease.spec.holder_identity == operator.elector.identity  # type: ignore[union-attr]

    create_dataflow(admin, namespace, "orders", KAFKA_TO_POSTGRES)
    wait_phase(admin, namespace, "orders", "Pending")
    set_deployment_ready(admin, namespace, "orders", 1)
    wait_phase(admin, namespace, "orders", "Running")
    patch_dataflow(admin, namespace, "orders", {"spec": {"checkpointReset": True,
                                                         "maintenance": {"suspended": True}}})
    wait_phase(admin, namespace, "orders", "Stopped")
    wait_for(lambda: "checkpointReset" not in get_dataflow(admin, namespace, "orders")["spec"],
             message="reset request cleared")
    create_dataflow(admin, namespace, "broken", {"source": {"type": "kafka", "config": {}},
                                                 "sink": {"type": "file", "config": {"path": "/x"}}})
    wait_phase(admin, namespace, "broken", "Error")
    wait_for(lambda: events_for(admin, namespace, "broken"), message="events")
    delete_dataflow(admin, namespace, "orders")
    wait_for(lambda: (namespace, "orders") not in operator.metrics.phases(), message="series dropped")

    denied = [entry for entry in audit_entries(cluster)
              if entry["user"]["username"] == "operator" and entry.get("responseStatus", {}).get("code") == 403]
    assert denied == [], f"requests the chart's RBAC does not allow: {[d['requestURI'] for d in denied][:5]}"


def test_api_server_restart_and_410_relist_converge_without_restarting(cluster: Any, admin: k8s.ApiClient,
                                                                      namespace: str, operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    operator = operators.start(namespace)
    create_dataflow(admin, namespace, "before", KAFKA_TO_POSTGRES)
    wait_phase(admin, namespace, "before", "Pending")
    relists = {name: informer.relists for name, informer in operator.informers.items()}

    # Writes the informers do not see move etcd's revision past every resourceVersion they hold; the
    # restarted API server's watch cache starts after it, so every resumed watch gets 410 Gone.
    scratch = f"scratch-{uuid.uuid4().hex[:6]}"
    create_namespace(admin, scratch)
    for index in range(5):
        k8s.CoreV1Api(admin).create_namespaced_config_map(scratch, {"metadata": {"name": f"c{index}"}})
    cluster.restart()

    create_dataflow(admin, namespace, "after", KAFKA_TO_POSTGRES)
    patch_dataflow(admin, namespace, "before", {"spec": {"source": {"config": {"topic": "renamed"}}}})
    wait_phase(admin, namespace, "after", "Pending", timeout=60)
    wait_for(lambda: spec_document(admin, namespace, "before")["source"]["config"]["topic"] == "renamed",
             timeout=60, message="edit made during the restart applied")
    set_deployment_ready(admin, namespace, "after", 1)
    wait_phase(admin, namespace, "after", "Running", timeout=60)
    relisted = [name for name, informer in operator.informers.items() if informer.relists > relists[name]]
    assert "dataflows" in relisted, f"expected a 410 relist; relisted: {relisted}"


def test_watchdog_restarts_a_silent_watch(cluster: Any, admin: k8s.ApiClient, namespace: str) -> None:
    target = urlparse(cluster.url)
    proxy = SilencingProxy(target.hostname or "127.0.0.1", target.port or 443)
    configuration = copy.deepcopy(load_configuration(str(cluster.admin_kubeconfig)))
    configuration.host = f"https://127.0.0.1:{proxy.port}"
    # The kubeconfig loader's hook would put the real server back on every request; the token is static.
    configuration.refresh_api_key_hook = None
    client = k8s.ApiClient(configuration)
    function, args = KubeClient(client).list_function(None, namespace)
    # A read timeout far beyond the test: only the watchdog can notice the silence.
    informer = Informer("dataflows", ApiListWatch(function, args), inactivity_timeout=2.0, read_timeout=600.0)
    informer.start()
    try:
        assert informer.wait_for_sync(30)
        create_dataflow(admin, namespace, "first", KAFKA_TO_POSTGRES)
        wait_for(lambda: informer.store.get(f"{namespace}/first"), timeout=10, message="first in cache")

        assert proxy.silence_open_connections() >= 1
        create_dataflow(admin, namespace, "second", KAFKA_TO_POSTGRES)
        wait_for(lambda: informer.store.get(f"{namespace}/second"), timeout=20, message="second after restart")
        assert informer.watchdog_restarts >= 1
    finally:
        informer.stop()
        client.close()
        proxy.close()
