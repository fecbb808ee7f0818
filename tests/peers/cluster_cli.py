"""`python -m tests.peers cluster up|down`: the test suite's single-node cluster for a contributor to
poke at (docs/try-it-locally.md). `up` provisions what is missing, builds the image from the
Dockerfile, starts the cluster and keeps it until Ctrl-C; `down` removes what an interrupted run left."""

from __future__ import annotations

import os
import signal
import sys
import threading

from tests.peers import cluster, node_images, paths, provision


def up() -> int:
    if os.geteuid() != 0:
        print("the test cluster needs root (network namespaces, mounts, cgroups, iptables)", file=sys.stderr)
        return 1
    if provision.provision(provision.NODE_PEERS) != 0:
        return 1
    log = paths.cache_dir() / "logs" / "project-image.log"
    print(f"[cluster] building the image from the Dockerfile (log {log})...", flush=True)
    image = node_images.build_project_image(log)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with cluster.running_cluster(images=[image.archive]) as running:
        assert running.apiserver is not None
        print(f"""[cluster] ready: node {running.node_name}, pods on {running.network.pod_subnet}
  export KUBECONFIG={running.apiserver.admin_kubeconfig}
  helm install dataflow-operator helm/dataflow-operator --set image.repository={image.repository} \\
      --set image.tag={image.tag}
  component logs: {running.log_dir}   (Ctrl-C stops the cluster and cleans up)""", flush=True)
        stop.wait()
    return 0


def down() -> int:
    errors = cluster.tear_down_leftovers()
    for error in errors:
        print(f"could not unmount {error}", file=sys.stderr)
    return 1 if errors else 0
