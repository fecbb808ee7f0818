"""The test node's pod network cannot reach beyond the machine: checked on the CNI config the node
runs with, without starting it (the journey shows the same config carrying the real traffic)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from tests.peers.node_network import NodeNetwork, write_cni_config


def test_pods_get_no_default_route_no_masquerade_and_no_gateway_role(tmp_path: Path) -> None:
    network = NodeNetwork()
    config = json.loads(write_cni_config(network, tmp_path / "net.d", tmp_path / "ipam").read_text())
    (bridge,) = config["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == network.bridge
    # isGateway would make the plugin turn on the host's ip_forward; ipMasq would NAT pods outwards.
    assert bridge["isGateway"] is False and bridge["ipMasq"] is False
    routes = [ipaddress.ip_network(route["dst"]) for route in bridge["ipam"]["routes"]]
    assert routes == [ipaddress.ip_network(network.service_subnet)]
    assert not any(route.prefixlen == 0 for route in routes)


def test_the_node_addresses_are_the_suites_own_private_ranges() -> None:
    network = NodeNetwork()
    pods, services = ipaddress.ip_network(network.pod_subnet), ipaddress.ip_network(network.service_subnet)
    assert pods.is_private and services.is_private and not pods.overlaps(services)
    assert ipaddress.ip_address(network.host_ip) in pods
    assert ipaddress.ip_address(network.kubernetes_service_ip) in services
