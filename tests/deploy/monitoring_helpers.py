"""Reading the Grafana dashboard and the alert rules: shared by the static checks
(tests/deploy/test_monitoring_artifacts.py), the promtool checks (tests/deploy/test_chart.py) and
the end-to-end run against a real Prometheus (tests/deploy/test_monitoring_e2e.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_PATH = REPO / "grafana" / "grafana-dashboard.json"
RULES_PATH = REPO / "alerts" / "prometheusrule.yaml"


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())
    return data


def query_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            yield panel


def alert_rules() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(RULES_PATH.read_text())
    return {rule["alert"]: rule for group in document["spec"]["groups"] for rule in group["rules"]}


def write_rule_groups(source: dict[str, Any], directory: Path) -> Path:
    """Prometheus and promtool read plain rule files (`groups:`), not PrometheusRule objects: write spec.groups."""
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": source["spec"]["groups"]}, sort_keys=False, width=1000))
    return path


GRAFANA_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def substitute_variables(expr: str, values: Mapping[str, str]) -> str:
    """The query Grafana sends: each `$name` / `${name}` replaced by its value. A variable without a
    value is an error, not left in place (Prometheus would reject it, or worse, accept it)."""

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for dashboard variable ${name} in {expr!r}")
        return values[name]

    return GRAFANA_VARIABLE.sub(value_of, expr)


# ------------------------------------------------------------------------------------------------
# A small PromQL reader: enough to find selectors, matchers and grouping labels


SELECTOR = re.compile(r"\b(dataflow_[a-z0-9_]+)\b\s*(?:\{([^}]*)\})?")
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


@dataclass
class Selector:
    series: str
    matchers: list[tuple[str, str, str]]


def selectors(expr: str) -> list[Selector]:
    found = []
    for match in SELECTOR.finditer(expr):
        matchers = [m.groups() for m in MATCHER.finditer(match.group(2) or "")]
        found.append(Selector(match.group(1), matchers))
    return found


def grouping_labels(expr: str) -> set[str]:
    labels = set()
    for _keyword, names in GROUPING.findall(expr):
        labels.update(name.strip() for name in names.split(",") if name.strip())
    return labels
