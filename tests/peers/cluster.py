"""A real single-node Kubernetes cluster on this machine: etcd + kube-apiserver (tests/peers/apiserver.py)
+ kube-controller-manager + kube-scheduler + kubelet + kube-proxy (one binary, hack/kube-node), with
containerd, runc and the CNI bridge plugin from Debian, pods on a bridge and subnet of the suite's own
(tests/peers/node_network.py), and images imported from archives built here (tests/peers/node_images.py).

It needs root (network namespaces, mounts, cgroups, iptables) and lives in one fixed directory under
the cache, so that `python -m tests.peers cluster down` can clean up what a crashed run left behind.
One cluster at a time per machine: a lock file says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from tests.peers import node_cleanup, node_components, node_images, node_network, paths
from tests.peers.apiserver import KubeAPIServer
from tests.peers.containerd import Containerd
from tests.peers.node_network import NodeNetwork
from tests.peers.process import ManagedProcess, PeerStartError, wait_until

NODE_READY_DEADLINE_S = 120.0
STOP_TIMEOUT_S = 30.0
CNI_BIN_DIR = Path("/usr/lib/cni")


def run_dir() -> Path:
    return paths.cache_dir() / "cluster-run"


class ClusterBusyError(RuntimeError):
    pass


class LocalCluster:
    """`apiserver` (its `.url`, `.admin_kubeconfig`, `.api_client()`), `network`, `node_name`,
    `containerd`, `log_dir`; `start()`, `stop()`."""

    def __init__(self, *, images: Sequence[Path] = (), network: NodeNetwork | None = None) -> None:
        self.network = network or NodeNetwork()
        self.base_dir = run_dir()
        self.log_dir = self.base_dir / "logs"
        self.node_name = node_components.NODE_NAME
        self._images = [node_images.pause_archive(), *images]
        self._lock: IO[str] | None = None
        self._components: list[ManagedProcess] = []
        self.apiserver: KubeAPIServer | None = None
        self.containerd: Containerd | None = None
        self._inputs: node_components.NodeInputs | None = None

    # ---------------------------------------------------------------------------------------------

    def _take_lock(self) -> None:
        paths.cache_dir().mkdir(parents=True, exist_ok=True)
        handle = (paths.cache_dir() / ".cluster.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ClusterBusyError("another test cluster runs on this machine (lock "
                                   f"{paths.cache_dir() / '.cluster.lock'})") from None
        self._lock = handle

    def start(self) -> None:
        self._take_lock()
        clean_leftovers(self.network)
        self.base_dir.mkdir(parents=True)
        self.log_dir.mkdir()
        node_network.create_bridge(self.network)
        self.apiserver = KubeAPIServer(paths.binary("kube-apiserver"), paths.binary("etcd"),
                                       self.base_dir / "apiserver", for_node=self.network)
        self.apiserver.start()
        cni_conf_dir = self.base_dir / "cni" / "net.d"
        node_network.write_cni_config(self.network, cni_conf_dir, self.base_dir / "cni" / "ipam")
        self.containerd = Containerd(self.base_dir / "containerd", sandbox_image=node_images.PAUSE_IMAGE,
                                     cni_bin_dir=CNI_BIN_DIR, cni_conf_dir=cni_conf_dir)
        self.containerd.start()
        for archive in self._images:
            self.containerd.import_image(archive)
        self._inputs = node_components.NodeInputs(
            binary=paths.binary("kube-node"), kubeconfig=self.apiserver.admin_kubeconfig,
            ca_file=self.apiserver.ca_file, service_account_key=self.apiserver.service_account_key,
            network=self.network, runtime_endpoint=self.containerd.endpoint)
        inputs = self._inputs
        self._components = [
            node_components.controller_manager(inputs, self.log_dir),
            node_components.scheduler(inputs, self.log_dir),
            node_components.kube_proxy(inputs, self.base_dir / "kube-proxy", self.log_dir),
            node_components.kubelet(inputs, self.base_dir / "kubelet", self.log_dir),
        ]
        for component in self._components:
            component.start()
        self._wait_node_ready()
        self._wait_default_service_account()

    def import_image(self, archive: Path) -> None:
        assert self.containerd is not None
        self.containerd.import_image(archive)

    def _wait_node_ready(self) -> None:
        assert self.apiserver is not None
        with self.apiserver.api_client() as api_client:
            core = k8s.CoreV1Api(api_client)

            def ready() -> bool:
                node = core.read_node(self.node_name)
                conditions = (node.status.conditions if node.status else None) or []
                # The node lifecycle controller lifts the not-ready taint a moment after Ready; until
                # then nothing is scheduled.
                taints = node.spec.taints if node.spec else None
                return any(c.type == "Ready" and c.status == "True" for c in conditions) and not taints

            self._wait(ready, "the node is Ready and untainted")

    def _wait_default_service_account(self) -> None:
        """Pods are refused until the controller-manager has made the namespace's `default` account."""
        assert self.apiserver is not None
        with self.apiserver.api_client() as api_client:
            core = k8s.CoreV1Api(api_client)
            self._wait(lambda: core.read_namespaced_service_account("default", "default") is not None,
                       "the default ServiceAccount exists")

    def _wait(self, check: Callable[[], bool], what: str) -> None:
        """Poll `check` (a 404 counts as "not yet"); fail at once with its log if a component dies."""
        deadline = time.monotonic() + NODE_READY_DEADLINE_S
        while True:
            dead = [component for component in self._components if not component.alive()]
            if dead:
                raise dead[0].failure(f"died while waiting until {what}")
            try:
                if check():
                    return
            except ApiException as exc:
                if exc.status != 404:
                    raise
            if time.monotonic() >= deadline:
                raise PeerStartError(f"not ready after {NODE_READY_DEADLINE_S:.0f}s waiting until {what}; "
                                     f"logs in {self.log_dir}:\n{self.kubelet_tail()}")
            time.sleep(0.5)

    def kubelet_tail(self) -> str:
        return next((component.tail() for component in self._components if component.name == "kubelet"),
                    "(no kubelet)")

    # ---------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop everything and leave nothing behind: pods' processes, mounts, iptables rules, bridge."""
        by_name = {component.name: component for component in self._components}
        # The kubelet first, so it does not restart the containers being killed.
        for name in ("kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager"):
            if name in by_name:
                by_name[name].stop(timeout_s=STOP_TIMEOUT_S)
        node_cleanup.kill_pod_processes()
        if self.containerd is not None:
            self.containerd.stop()
        if self._inputs is not None:
            remove_kube_proxy_rules(self.log_dir)
        if self.apiserver is not None:
            self.apiserver.stop()
        clean_leftovers(self.network, keep_logs=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


# The bulky, mount-laden parts of the run directory; the rest (configs, logs) stays for a post-mortem
# until the next start.
STATE_DIRS = ("containerd/root", "containerd/state", "kubelet/root", "cni/ipam")


def clean_leftovers(network: NodeNetwork, *, keep_logs: bool = False) -> list[str]:
    """Remove what a stopped (or crashed) node left: returns what could not be removed."""
    node_cleanup.kill_pod_processes()
    errors = node_cleanup.unmount_all(run_dir())
    node_cleanup.remove_pod_cgroups()
    errors += node_cleanup.remove_kube_chains()
    node_network.delete_bridge(network)
    for state in (STATE_DIRS if keep_logs else ("",)):
        shutil.rmtree(run_dir() / state, ignore_errors=True)
    return errors


def remove_kube_proxy_rules(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    cleanup = node_components.kube_proxy_cleanup(paths.binary("kube-node"), log_dir)
    cleanup.start()
    with contextlib.suppress(PeerStartError, TimeoutError):
        wait_until(lambda: cleanup.returncode() is not None, deadline_s=60, what="kube-proxy --cleanup has finished")
    cleanup.stop()


def tear_down_leftovers() -> list[str]:
    """`python -m tests.peers cluster down`: what a crashed or interrupted run left, removed."""
    if paths.binary("kube-node").exists():
        remove_kube_proxy_rules(paths.cache_dir() / "logs")
    return clean_leftovers(NodeNetwork())


@contextlib.contextmanager
def running_cluster(images: Sequence[Path] = ()) -> Iterator[LocalCluster]:
    cluster = LocalCluster(images=images)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
