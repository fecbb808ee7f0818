"""A Prometheus configured from the chart's live ServiceMonitor and PrometheusRule objects, as
prometheus-operator would configure it: the operator's Service endpoints are discovered through the
API server (kubernetes_sd, role `endpoints`), kept by the ServiceMonitor's selector and port name,
scraped with its path and honorLabels; the PrometheusRule's groups are its rule file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.peers.prometheus import PrometheusServer

MONITORING_CRDS = Path(__file__).parent / "data" / "monitoring-crds.yaml"
# The rule evaluation interval; the scrape interval is the ServiceMonitor's.
EVALUATION_INTERVAL = "1s"


def service_monitor_job(monitor: dict[str, Any], kubeconfig: Path) -> dict[str, Any]:
    """The scrape job prometheus-operator derives from a ServiceMonitor with one endpoint (the chart's,
    without the metricRelabelings it has only with podMonitor.enabled)."""
    metadata, spec = monitor["metadata"], monitor["spec"]
    (endpoint,) = spec["endpoints"]
    keep = [{"source_labels": [f"__meta_kubernetes_service_label_{_label_name(key)}"], "regex": value,
             "action": "keep"} for key, value in spec["selector"]["matchLabels"].items()]
    keep.append({"source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": endpoint["port"],
                 "action": "keep"})
    return {
        "job_name": f"serviceMonitor/{metadata['namespace']}/{metadata['name']}/0",
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "metrics_path": endpoint.get("path", "/metrics"),
        "scrape_interval": endpoint["interval"], "scrape_timeout": endpoint["scrapeTimeout"],
        "kubernetes_sd_configs": [{"role": "endpoints", "kubeconfig_file": str(kubeconfig),
                                   "namespaces": {"names": spec["namespaceSelector"]["matchNames"]}}],
        "relabel_configs": keep,
    }


def _label_name(key: str) -> str:
    """Prometheus' sanitised form of a Kubernetes label key in __meta_* label names."""
    return "".join(char if char.isalnum() else "_" for char in key)


class ServiceMonitorPrometheus(PrometheusServer):
    """The peer's Prometheus with its static job replaced by the ServiceMonitor's."""

    def __init__(self, binary: Path, base_dir: Path, monitor: dict[str, Any], kubeconfig: Path,
                 rule_file: Path) -> None:
        super().__init__(binary, base_dir, [], EVALUATION_INTERVAL, [rule_file])
        config = yaml.safe_load(self.config_path.read_text())
        config["scrape_configs"] = [service_monitor_job(monitor, kubeconfig)]
        self.config_path.write_text(yaml.safe_dump(config))
