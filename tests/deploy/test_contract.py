"""The chart and the CRD say what dataflow_operator/contract.py says: one change of a shared name
that misses the YAML side fails here instead of in a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dataflow_operator import contract
from dataflow_operator.operator.resources import Names

CHART = Path(__file__).resolve().parents[2] / "helm" / "dataflow-operator"
CRD_PATH = CHART / "files" / "crds" / f"{contract.API_GROUP}_{contract.PLURAL}.yaml"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_crd_serves_the_api_the_code_calls() -> None:
    crd = _yaml(CRD_PATH)
    assert crd["metadata"]["name"] == f"{contract.PLURAL}.{contract.API_GROUP}"
    assert crd["spec"]["group"] == contract.API_GROUP
    assert (crd["spec"]["names"]["kind"], crd["spec"]["names"]["plural"]) == (contract.KIND, contract.PLURAL)
    assert [v["name"] for v in crd["spec"]["versions"] if v["storage"]] == [contract.API_VERSION_NAME]


def test_the_charts_defaults_are_the_contracts() -> None:
    values = _yaml(CHART / "values.yaml")
    assert values["metrics"]["port"] == contract.METRICS_PORT
    assert values["health"]["probePort"] == contract.HEALTH_PROBE_PORT
    assert values["processorProgressTimeoutSeconds"] == contract.DEFAULT_PROGRESS_TIMEOUT_SECONDS
    deployment = (CHART / "templates" / "deployment.yaml").read_text(encoding="utf-8")
    assert f"- name: {contract.PROGRESS_TIMEOUT_ENV}\n" in deployment


def test_the_checkpoint_configmap_name_is_the_one_the_operator_creates() -> None:
    assert Names.of("orders").checkpoint == contract.checkpoint_configmap_name("orders") == "df-orders-checkpoint"
