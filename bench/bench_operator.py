"""Time for 1 000 DataFlows created at once to all have Deployments, with 1 and with 4 reconcile workers.

    python bench/bench_operator.py [--count 1000] [--workers 1,4] [--rounds 1]

Runs a real etcd + kube-apiserver (the test peers; ``python -m tests.peers provision`` first). For
each run a fresh namespace gets ``--count`` DataFlows (each referencing a Secret, with checkpoint
persistence: a spec Secret, a ConfigMap, RBAC and a Deployment each), *then* the operator starts in
this process and the clock runs until its Deployment cache holds every Deployment, and again until
every DataFlow has a status. Runs alternate between worker counts (rounds interleave) so that a
noisy neighbour hurts both alike; the ratio is the result, the absolute seconds only context.

API requests per DataFlow are counted in the API server's audit log for the run's identity, by verb:
they include the informers' lists and watches, so they fall slightly as the count grows.

CPU seconds of the operator (this process) and of kube-apiserver + etcd are measured over each run
(Linux ``/proc``): on a 2-core machine that also runs the API server, "cores busy" near 2 means the
run was CPU-bound, and then no number of workers can go faster - the printed bound says how far.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, installed or not

from kubernetes import client as k8s

from dataflow_operator.operator.manager import Manager, OperatorOptions
from tests.peers import paths, provision
from tests.peers.apiserver import RESTRICTED_USERS, KubeAPIServer
from tests.peers.kube import create_namespace

CRD = Path(__file__).resolve().parents[1] / "helm" / "dataflow-operator" / "files" / "crds" / \
    "dataflow.dataflow.io_dataflows.yaml"
SPEC: dict[str, Any] = {
    "source": {"type": "kafka", "config": {"brokers": ["kafka:9092"], "topic": "orders", "consumerGroup": "g"}},
    "sink": {"type": "postgresql", "config": {"connectionStringSecretRef": {"name": "pg", "key": "dsn"},
                                              "table": "orders"}},
}
ENVIRON = {"PROCESSOR_IMAGE": "dataflow-operator:bench"}
WRITES = {"create", "update", "patch", "delete"}


@dataclass
class Run:
    workers: int
    deployments_s: float
    status_s: float
    requests: Counter[str]
    count: int
    operator_cpu_s: float
    server_cpu_s: float

    @property
    def per_dataflow(self) -> float:
        return sum(self.requests.values()) / self.count


def grant_cluster_admin(api: k8s.ApiClient, user: str) -> None:
    body = {"metadata": {"name": f"bench-{user}"}, "subjects": [{"kind": "User", "name": user,
                                                               "apiGroup": "rbac.authorization.k8s.io"}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}}
    try:
        k8s.RbacAuthorizationV1Api(api).create_cluster_role_binding(body)
    except k8s.ApiException as exc:
        if exc.status != 409:
            raise


def create_dataflows(server: KubeAPIServer, namespace: str, count: int) -> None:
    configuration = server.api_client().configuration
    configuration.connection_pool_maxsize = 8
    with k8s.ApiClient(configuration) as api:
        create_namespace(api, namespace)
        k8s.CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": "pg"},
                                                                "stringData": {"dsn": "postgresql://db/x"}})
        custom = k8s.CustomObjectsApi(api)

        def create(index: int) -> None:
            custom.create_namespaced_custom_object("dataflow.dataflow.io", "v1", namespace, "dataflows", {
                "apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
                "metadata": {"name": f"flow-{index:04d}"}, "spec": SPEC}, _preload_content=False)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(count)))


def audit_requests(server: KubeAPIServer, offset: int, user: str) -> Counter[str]:
    verbs: Counter[str] = Counter()
    with open(server.audit_log, "rb") as handle:
        handle.seek(offset)
        for line in handle:
            entry = json.loads(line)
            # Long-running requests (watches) log ResponseStarted and ResponseComplete: count one.
            if entry["user"]["username"] == user and entry["stage"] != "ResponseStarted":
                verbs[entry["verb"]] += 1
    return verbs


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pids(server: KubeAPIServer) -> list[int]:
    # The peer classes keep their processes private; without them the run reports no server CPU.
    processes = (getattr(server, "_process", None), getattr(getattr(server, "etcd", None), "_process", None))
    return [pid for pid in (getattr(process, "pid", None) for process in processes) if pid]


def run_once(server: KubeAPIServer, workers: int, count: int, user: str, label: str) -> Run:
    namespace = f"bench-{label}"
    create_dataflows(server, namespace, count)
    offset = server.audit_log.stat().st_size
    pids = server_pids(server)
    server_cpu = sum(process_cpu(pid) for pid in pids)
    operator_cpu = time.process_time()
    options = OperatorOptions(kubeconfig=str(server.kubeconfig_for(user)), namespace=namespace, workers=workers,
                              leader_elect=False, metrics_bind_address="127.0.0.1:0",
                              health_probe_bind_address="127.0.0.1:0")
    manager = Manager(options, environ=ENVIRON)
    started = time.perf_counter()
    try:
        if not manager.start(sync_timeout=120):
            raise RuntimeError("operator caches did not sync")
        deployments, dataflows = manager.informers["deployments"].store, manager.informers["dataflows"].store
        while len(deployments) < count:
            time.sleep(0.02)
        deployments_s = time.perf_counter() - started
        while sum(1 for obj in dataflows.objects() if (obj.get("status") or {}).get("phase")) < count:
            time.sleep(0.02)
        status_s = time.perf_counter() - started
        operator_cpu = time.process_time() - operator_cpu
        server_cpu = sum(process_cpu(pid) for pid in pids) - server_cpu
    finally:
        manager.stop()
    return Run(workers, deployments_s, status_s, audit_requests(server, offset, user), count, operator_cpu,
               server_cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--workers", default="1,4", help="comma-separated worker counts")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    worker_counts = [int(value) for value in args.workers.split(",")]
    if not (provision.peer_ready("etcd") and provision.peer_ready("kube-apiserver")):
        print("kube-apiserver/etcd not provisioned: run `python -m tests.peers provision`", file=sys.stderr)
        return 2
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as scratch:
        server = KubeAPIServer(paths.binary("kube-apiserver"), paths.binary("etcd"), Path(scratch))
        server.start()
        try:
            server.install_crds(CRD)
            users = RESTRICTED_USERS
            with server.api_client() as admin:
                for user in users:
                    grant_cluster_admin(admin, user)
            for round_index in range(args.rounds):
                for position, workers in enumerate(worker_counts):
                    user = users[position % len(users)]
                    run = run_once(server, workers, args.count, user, f"r{round_index}-w{workers}")
                    runs.append(run)
                    print(f"round {round_index + 1}: {workers} worker(s): Deployments in {run.deployments_s:.1f} s, "
                          f"status in {run.status_s:.1f} s, {run.per_dataflow:.2f} requests/DataFlow, CPU "
                          f"operator {run.operator_cpu_s:.1f} s + API server/etcd {run.server_cpu_s:.1f} s",
                          flush=True)
        finally:
            server.stop()
    report(runs, worker_counts, args.count)
    return 0


def report(runs: list[Run], worker_counts: list[int], count: int) -> None:
    cores = os.cpu_count() or 1
    print(f"\n{count} DataFlows created at once, until every Deployment exists (median of rounds; {cores} cores):")
    print(f"{'workers':>8} {'deployments s':>14} {'status s':>9} {'speed-up':>9} {'cores busy':>11} "
          f"{'bound':>7} {'req/DataFlow':>13}  by verb")
    baseline = statistics.median(run.deployments_s for run in runs if run.workers == worker_counts[0])
    for workers in worker_counts:
        mine = [run for run in runs if run.workers == workers]
        seconds = statistics.median(run.deployments_s for run in mine)
        status = statistics.median(run.status_s for run in mine)
        cpu = statistics.median(run.operator_cpu_s + run.server_cpu_s for run in mine)
        # Nothing finishes faster than its CPU seconds spread over every core.
        bound = baseline / (cpu / cores) if cpu else float("nan")
        verbs: Counter[str] = Counter()
        for run in mine:
            verbs.update(run.requests)
        per_verb = ", ".join(f"{verb} {value / (count * len(mine)):.2f}" for verb, value in sorted(verbs.items()))
        print(f"{workers:>8} {seconds:>14.1f} {status:>9.1f} {baseline / seconds:>8.2f}x {cpu / seconds:>11.2f} "
              f"{bound:>6.2f}x {sum(verbs.values()) / (count * len(mine)):>13.2f}  {per_verb}")


if __name__ == "__main__":
    sys.exit(main())
