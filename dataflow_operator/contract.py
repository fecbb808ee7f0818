"""Every name the operator and the processor share, each written once.

The operator builds a processor's Deployment, Secret and ConfigMap; the processor, the metrics
aggregator, the Helm chart's defaults and the tests find those objects again by these names. A name
changed on one side only would break the other side silently, so both import it from here. This
module imports nothing: anything may depend on it.
"""

from __future__ import annotations

from typing import Final

#: The DataFlow API (the CRD in helm/).
API_GROUP: Final = "dataflow.dataflow.io"
API_VERSION_NAME: Final = "v1"
API_VERSION: Final = f"{API_GROUP}/{API_VERSION_NAME}"
KIND: Final = "DataFlow"
PLURAL: Final = "dataflows"

#: Annotation a user sets on a DataFlow to start its source over (docs/delivery.md).
RESET_CHECKPOINT_ANNOTATION: Final = f"{API_GROUP}/reset-checkpoint"

#: Labels on every object the operator makes for a DataFlow; the aggregator selects processor pods by them.
APP_LABEL: Final = "app"
PROCESSOR_APP: Final = "dataflow-processor"
NAME_LABEL: Final = f"{API_GROUP}/name"

#: The spec Secret is mounted here in the processor pod; the processor reads SPEC_PATH by default.
SPEC_DIR: Final = "/etc/dataflow"
SPEC_KEY: Final = "spec.json"
SPEC_PATH: Final = f"{SPEC_DIR}/{SPEC_KEY}"

#: Both roles serve /metrics on METRICS_PORT (the processor also its probes); the operator's
#: probes are on HEALTH_PROBE_PORT.
METRICS_PORT: Final = 9090
HEALTH_PROBE_PORT: Final = 9091

#: One-shot checkpoint reset, handed from operator to processor in the pod template: a processor
#: wipes its checkpoint at start-up when this differs from the token it last applied.
RESET_TOKEN_ENV: Final = "DATAFLOW_CHECKPOINT_RESET_TOKEN"
#: Seconds without pipeline progress before the processor's /livez fails (0: never).
PROGRESS_TIMEOUT_ENV: Final = "PROCESSOR_PROGRESS_TIMEOUT_SECONDS"
DEFAULT_PROGRESS_TIMEOUT_SECONDS: Final = 3600


def checkpoint_configmap_name(dataflow_name: str) -> str:
    """The ConfigMap the operator creates and the processor keeps its positions in."""
    return f"df-{dataflow_name}-checkpoint"
