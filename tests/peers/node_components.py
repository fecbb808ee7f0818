"""kube-controller-manager, kube-scheduler, kubelet and kube-proxy of the single-node test cluster,
all one multi-call binary (hack/kube-node), each with the configuration this host needs.

Every component authenticates with the admin's static token (system:masters): one node, no node
authorizer, and fewer moving parts than a client-certificate PKI per component.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.peers.node_network import NodeNetwork
from tests.peers.process import ManagedProcess, free_port

NODE_NAME = "dataflow-test-node"


@dataclass(frozen=True)
class NodeInputs:
    """What the components share: the binary, the admin kubeconfig, the PKI and the network."""

    binary: Path
    kubeconfig: Path
    ca_file: Path
    service_account_key: Path
    network: NodeNetwork
    runtime_endpoint: str


def _component(inputs: NodeInputs, name: str, args: list[str], log_dir: Path) -> ManagedProcess:
    return ManagedProcess(name, [inputs.binary, name, *args], log_dir / f"{name}.log")


def controller_manager(inputs: NodeInputs, log_dir: Path) -> ManagedProcess:
    return _component(inputs, "kube-controller-manager", [
        f"--kubeconfig={inputs.kubeconfig}", "--leader-elect=false",
        # Serves nothing: its health is read from what it does (service accounts, ReplicaSets).
        "--secure-port=0",
        # The root CA it publishes as the kube-root-ca.crt ConfigMap, which every projected
        # service-account volume mounts as ca.crt: in-cluster clients verify the API server with it.
        f"--root-ca-file={inputs.ca_file}",
        f"--service-account-private-key-file={inputs.service_account_key}",
        f"--cluster-cidr={inputs.network.pod_subnet}", "--allocate-node-cidrs=false",
        f"--service-cluster-ip-range={inputs.network.service_subnet}",
        "--v=1",
    ], log_dir)


def scheduler(inputs: NodeInputs, log_dir: Path) -> ManagedProcess:
    return _component(inputs, "kube-scheduler", [
        f"--kubeconfig={inputs.kubeconfig}", "--leader-elect=false",
        "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--v=1",
    ], log_dir)


def kubelet_configuration(inputs: NodeInputs, base_dir: Path, resolv_conf: Path) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": inputs.runtime_endpoint,
        # The host has cgroup v1 (hybrid), which kubelets since 1.35 refuse by default (KEP-5573).
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        # The root filesystem is not recognised for stats; with isolation on, the kubelet would not start.
        "localStorageCapacityIsolation": False,
        "enforceNodeAllocatable": [],
        # A shared machine's disk and memory must not make the kubelet evict the pods under test.
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%",
                         "imagefs.available": "1%"},
        # The images are imported, not pulled: a garbage-collected image could not come back.
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "address": inputs.network.host_ip, "port": free_port(), "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": free_port(),
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True}},
        "authorization": {"mode": "Webhook"},
        "resolvConf": str(resolv_conf),
        # Under the node's directory rather than /var/log/pods and /usr/libexec: cleanup finds them.
        "podLogsDir": str(base_dir / "pod-logs"),
        "volumePluginDir": str(base_dir / "volume-plugins"),
        # Probes and status reach the API server quickly, so the journey does not wait on defaults.
        "nodeStatusUpdateFrequency": "4s",
        "syncFrequency": "10s",
    }


def kubelet(inputs: NodeInputs, base_dir: Path, log_dir: Path) -> ManagedProcess:
    base_dir.mkdir(parents=True, exist_ok=True)
    # Pods get no resolver: the test node has no cluster DNS and the machine no outside DNS to offer.
    resolv_conf = base_dir / "resolv.conf"
    resolv_conf.write_text("")
    config = base_dir / "kubelet.yaml"
    config.write_text(yaml.safe_dump(kubelet_configuration(inputs, base_dir, resolv_conf)))
    return _component(inputs, "kubelet", [
        f"--config={config}", f"--kubeconfig={inputs.kubeconfig}", f"--root-dir={base_dir / 'root'}",
        f"--cert-dir={base_dir / 'pki'}", f"--hostname-override={NODE_NAME}",
        f"--node-ip={inputs.network.host_ip}", "--v=1",
    ], log_dir)


def kube_proxy_configuration(inputs: NodeInputs) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(inputs.kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": inputs.network.pod_subnet,
        "bindAddress": inputs.network.host_ip,
        "healthzBindAddress": f"127.0.0.1:{free_port()}",
        "metricsBindAddress": f"127.0.0.1:{free_port()}",
        # Leave the host's sysctls alone: no conntrack table resizing, no route_localnet for
        # NodePorts on 127.0.0.1.
        "conntrack": {"maxPerCore": 0, "min": 0},
        "iptables": {"localhostNodePorts": False},
        "nodePortAddresses": [f"{inputs.network.host_ip}/32"],
    }


def kube_proxy(inputs: NodeInputs, base_dir: Path, log_dir: Path) -> ManagedProcess:
    base_dir.mkdir(parents=True, exist_ok=True)
    config = base_dir / "kube-proxy.yaml"
    config.write_text(yaml.safe_dump(kube_proxy_configuration(inputs)))
    return _component(inputs, "kube-proxy", [f"--config={config}", "--v=1"], log_dir)


def kube_proxy_cleanup(binary: Path, log_dir: Path) -> ManagedProcess:
    """`kube-proxy --cleanup`: removes every iptables chain and rule kube-proxy made, then exits."""
    return ManagedProcess("kube-proxy-cleanup", [binary, "kube-proxy", "--cleanup", "--v=1"],
                          log_dir / "kube-proxy-cleanup.log")
