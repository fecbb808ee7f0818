"""Command-line entry points; each command hands off to one function."""

from __future__ import annotations

import sys

import click

from .contract import HEALTH_PROBE_PORT, METRICS_PORT, SPEC_PATH


@click.group()
@click.version_option(package_name="dataflow-operator")
def main() -> None:
    """Declarative data pipelines on Kubernetes, with first-class Prometheus metrics."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--strict", is_flag=True, help="Documents that are not DataFlows (e.g. Secrets) are errors, "
                                              "not skipped.")
def validate(files: tuple[str, ...], strict: bool) -> None:
    """Check DataFlow manifests offline (YAML, multi-document; '-' reads stdin)."""
    from .spec.files import validate_files

    sys.exit(validate_files(files, sys.stdout, strict=strict))


@main.command()
@click.option("--spec-path", default=SPEC_PATH, show_default=True,
              help="The spec (JSON or YAML; a bare spec or a whole DataFlow manifest).")
@click.option("--namespace", default=None, help="DataFlow namespace (metrics labels); default from the manifest.")
@click.option("--name", default=None, help="DataFlow name (metrics labels); default from the manifest.")
@click.option("--metrics-bind-address", default=f":{METRICS_PORT}", show_default=True, help="/metrics and probes.")
@click.option("--checkpoint-dir", default=None,
              help="Keep checkpoints in files here (default: the ConfigMap in a cluster, "
                   "./.dataflow-checkpoints elsewhere).")
def processor(spec_path: str, namespace: str | None, name: str | None, metrics_bind_address: str,
              checkpoint_dir: str | None) -> None:
    """Run one pipeline: source → transformations → sink (+ error sink)."""
    from .observability.logging import setup_logging
    from .observability.sentry import setup_sentry
    from .processor.runtime import run_processor

    setup_logging(role="processor")
    setup_sentry("processor")
    sys.exit(run_processor(spec_path=spec_path, namespace=namespace, name=name,
                           metrics_bind_address=metrics_bind_address, checkpoint_dir=checkpoint_dir))


@main.command()
@click.option("--kubeconfig", default=None, help="Kubeconfig file (default: in-cluster, else ~/.kube/config).")
@click.option("--namespace", default=None, help="Watch only this namespace (default: all).")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(min=1), help="Reconciler threads.")
@click.option("--leader-elect", default=True, show_default=True, type=click.BOOL,
              help="Run workers only while holding the Lease (true/false).")
@click.option("--leader-election-namespace", default=None,
              help="Namespace of the Lease (default: $OPERATOR_NAMESPACE).")
@click.option("--metrics-bind-address", default=f":{METRICS_PORT}", show_default=True)
@click.option("--health-probe-bind-address", default=f":{HEALTH_PROBE_PORT}", show_default=True)
@click.option("--resync-period", default=600.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds between full resyncs of every DataFlow.")
@click.option("--aggregation-timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Deadline in seconds for scraping all processor pods on one /metrics request.")
def run(*, kubeconfig: str | None, namespace: str | None, workers: int, leader_elect: bool,
        leader_election_namespace: str | None, metrics_bind_address: str, health_probe_bind_address: str,
        resync_period: float, aggregation_timeout: float) -> None:
    """Run the operator: keep a processor Deployment per DataFlow and serve the merged /metrics."""
    from prometheus_client import disable_created_metrics

    from .observability.logging import setup_logging
    from .observability.sentry import setup_sentry
    from .operator.manager import OperatorOptions, run_operator

    disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series, like the aggregated ones
    setup_logging(role="operator")
    setup_sentry("operator")
    sys.exit(run_operator(OperatorOptions(
        kubeconfig=kubeconfig, namespace=namespace, workers=workers, leader_elect=leader_elect,
        leader_election_namespace=leader_election_namespace, metrics_bind_address=metrics_bind_address,
        health_probe_bind_address=health_probe_bind_address, resync_period=resync_period,
        aggregation_timeout=aggregation_timeout)))
