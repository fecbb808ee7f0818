"""The test node's pod network: a bridge of the suite's own, a pod subnet, and the CNI config for it.

Pods get an address on the bridge and exactly two routes: their own subnet (on the link) and the
Service range via the bridge's host address, where kube-proxy's DNAT rules take it. No default
route, no masquerading, and the host's `ip_forward` is left as it is (the bridge plugin is told it is
not the gateway, so it does not turn forwarding on): nothing a pod sends can leave the machine.
Peers the pods need (the API server, Kafka, PostgreSQL) listen on the bridge's host address.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

CNI_NETWORK_NAME = "dataflow-test"


@dataclass(frozen=True)
class NodeNetwork:
    bridge: str = "dftest0"
    # Chosen to collide with nothing on these machines (their only interface is 192.0.2.0/24).
    pod_subnet: str = "10.244.0.0/24"
    host_ip: str = "10.244.0.1"
    # The API server's --service-cluster-ip-range; its first address is the `kubernetes` Service.
    service_subnet: str = "10.0.0.0/24"
    kubernetes_service_ip: str = "10.0.0.1"

    @property
    def prefix_length(self) -> int:
        return int(self.pod_subnet.split("/")[1])


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def create_bridge(network: NodeNetwork) -> None:
    """The bridge with the host's address, up; an existing one (from a crashed run) is made anew."""
    delete_bridge(network)
    _ip("link", "add", network.bridge, "type", "bridge")
    _ip("addr", "add", f"{network.host_ip}/{network.prefix_length}", "dev", network.bridge)
    _ip("link", "set", network.bridge, "up")


def delete_bridge(network: NodeNetwork) -> None:
    if _ip("link", "show", network.bridge, check=False).returncode == 0:
        _ip("link", "delete", network.bridge)


def write_cni_config(network: NodeNetwork, conf_dir: Path, ipam_dir: Path) -> Path:
    conf_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK_NAME,
        "plugins": [{
            "type": "bridge",
            "bridge": network.bridge,
            # Not the gateway: the bridge plugin would otherwise enable ip_forward on the host.
            "isGateway": False,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": network.pod_subnet, "gateway": network.host_ip}]],
                "routes": [{"dst": network.service_subnet}],
                "dataDir": str(ipam_dir),
            },
        }],
    }
    path = conf_dir / f"10-{CNI_NETWORK_NAME}.conflist"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path
