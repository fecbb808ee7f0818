"""Which processor pods the aggregator scrapes, chosen from the operator's Pod watch cache."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..contract import METRICS_PORT as PROCESSOR_METRICS_PORT
from ..contract import NAME_LABEL as DATAFLOW_NAME_LABEL
from ..contract import PROCESSOR_APP


@dataclass(frozen=True, slots=True)
class PodTarget:
    namespace: str
    name: str  # the pod's name: the ``pod`` label of its series
    dataflow: str  # the DataFlow's name: the ``name`` label of the aggregator's error series
    ip: str
    port: int = PROCESSOR_METRICS_PORT

    @property
    def url(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip  # an IPv6 address needs brackets
        return f"http://{host}:{self.port}/metrics"


def select_targets(pods: Iterable[Any], dataflow_keys: Collection[tuple[str, str]],
                   port: int = PROCESSOR_METRICS_PORT) -> list[PodTarget]:
    """The processor pods worth scraping, sorted by namespace, DataFlow and pod name.

    ``pods`` are what the watch cache holds: ``kubernetes`` ``V1Pod`` objects or the API's JSON dicts.
    A pod qualifies when it is labelled ``app=dataflow-processor`` with a DataFlow name, that DataFlow
    ``(namespace, name)`` is in ``dataflow_keys``, and it is Running, Ready and has an IP: a starting or
    terminated pod would only cost a timeout and an error count on every scrape.
    """
    targets = []
    for pod in pods:
        metadata = _get(pod, "metadata", "metadata")
        status = _get(pod, "status", "status")
        if metadata is None or status is None:
            continue
        labels = _get(metadata, "labels", "labels") or {}
        namespace = _get(metadata, "namespace", "namespace")
        dataflow = labels.get(DATAFLOW_NAME_LABEL)
        ip = _get(status, "podIP", "pod_ip")
        if (labels.get("app") != PROCESSOR_APP or not dataflow or (namespace, dataflow) not in dataflow_keys
                or _get(status, "phase", "phase") != "Running" or not ip or not _is_ready(status)):
            continue
        targets.append(PodTarget(namespace, _get(metadata, "name", "name"), dataflow, ip, port))
    targets.sort(key=lambda target: (target.namespace, target.dataflow, target.name))
    return targets


def _is_ready(status: Any) -> bool:
    return any(_get(condition, "type", "type") == "Ready" and _get(condition, "status", "status") == "True"
               for condition in _get(status, "conditions", "conditions") or ())


def _get(obj: Any, json_key: str, attribute: str) -> Any:
    """A field of either representation: JSON dicts use the API's camelCase keys, the client's
    model objects snake_case attributes."""
    if isinstance(obj, Mapping):
        return obj.get(json_key)
    return getattr(obj, attribute, None)
