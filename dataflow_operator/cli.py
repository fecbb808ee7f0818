"""Command-line entry points; each command hands off to one function."""

from __future__ import annotations

import sys

import click

from .contract import HEALTH_PROBE_PORT, METRICS_PORT, SPEC_PATH

LOG_FORMAT = click.option(
    "--log-format", envvar="LOG_FORMAT", default="auto", show_default=True,
    type=click.Choice(["auto", "json", "text"], case_sensitive=False),
    help="Log lines on stderr: JSON, or text for a person; auto = text on a terminal outside a pod, "
         "JSON otherwise. Also $LOG_FORMAT.")


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


@main.command(name="test")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--verbose", "-v", is_flag=True, help="Also show the pipeline's own log lines.")
def test_command(files: tuple[str, ...], verbose: bool) -> None:
    """Run pipeline tests (input messages, expected outputs per sink and route, expected error
    records) offline: the DataFlow's source and sinks are replaced by in-memory ones."""
    import logging

    from .pipeline_tests.report import run_test_files

    # The engine logs every failing message; a test that expects failures would drown in them.
    logging.basicConfig(level=logging.DEBUG if verbose else logging.CRITICAL, format="%(levelname)s %(message)s")
    sys.exit(0 if run_test_files(files, sys.stdout) else 1)


@main.command()
@click.option("--spec-path", default=SPEC_PATH, show_default=True,
              help="The spec (JSON or YAML; a bare spec or a whole DataFlow manifest).")
@click.option("--namespace", default=None, help="DataFlow namespace (metrics labels); default from the manifest.")
@click.option("--name", default=None, help="DataFlow name (metrics labels); default from the manifest.")
@click.option("--metrics-bind-address", default=f":{METRICS_PORT}", show_default=True, help="/metrics and probes.")
@click.option("--checkpoint-dir", default=None,
              help="Keep checkpoints in files here (default: the ConfigMap in a cluster, "
                   "./.dataflow-checkpoints elsewhere).")
@LOG_FORMAT
def processor(*, spec_path: str, namespace: str | None, name: str | None, metrics_bind_address: str,
              checkpoint_dir: str | None, log_format: str) -> None:
    """Run one pipeline: source → transformations → sink (+ error sink).

    On a terminal: a live progress line and, at the end, a summary per sink and route (stderr)."""
    from .observability.logging import setup_logging
    from .observability.sentry import setup_sentry
    from .observability.terminal import LogFormat
    from .processor.runtime import run_processor

    status_line = setup_logging(LogFormat(log_format.lower()), role="processor")
    setup_sentry("processor")
    sys.exit(run_processor(spec_path=spec_path, namespace=namespace, name=name,
                           metrics_bind_address=metrics_bind_address, checkpoint_dir=checkpoint_dir,
                           status_line=status_line))


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
@click.option("--status-counts-interval", default=15.0, show_default=True, type=click.FloatRange(min=1),
              help="Least seconds between two writes of a DataFlow's status.processedCount/errorCount.")
@click.option("--webhook-bind-address", default=None,
              help="Serve the validating admission webhook (HTTPS) here, e.g. :9443 (default: no webhook).")
@click.option("--webhook-cert-dir", default=None,
              help="Serve tls.crt/tls.key from this directory, re-read when they change (cert-manager).")
@click.option("--webhook-secret", default=None,
              help="Keep the webhook's own CA and certificate in this Secret of $OPERATOR_NAMESPACE, renewed "
                   "before expiry.")
@click.option("--webhook-configuration", default=None,
              help="With --webhook-secret: the ValidatingWebhookConfiguration whose caBundle to keep current.")
@click.option("--webhook-service", default=None,
              help="With --webhook-secret: the Service name the certificate is issued for.")
@click.option("--webhook-cert-refresh", default=60.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds between checks of the webhook certificate.")
@LOG_FORMAT
def run(*, kubeconfig: str | None, namespace: str | None, workers: int, leader_elect: bool,
        leader_election_namespace: str | None, metrics_bind_address: str, health_probe_bind_address: str,
        resync_period: float, aggregation_timeout: float, status_counts_interval: float,
        webhook_bind_address: str | None, webhook_cert_dir: str | None, webhook_secret: str | None,
        webhook_configuration: str | None, webhook_service: str | None, webhook_cert_refresh: float,
        log_format: str) -> None:
    """Run the operator: keep a processor Deployment per DataFlow and serve the merged /metrics."""
    from prometheus_client import disable_created_metrics

    from .observability.logging import setup_logging
    from .observability.sentry import setup_sentry
    from .observability.terminal import LogFormat
    from .operator.manager import OperatorOptions, run_operator
    from .operator.webhook.wiring import WebhookOptions

    webhook = WebhookOptions(bind_address=webhook_bind_address, cert_dir=webhook_cert_dir, secret=webhook_secret,
                             configuration=webhook_configuration, service=webhook_service,
                             refresh_interval=webhook_cert_refresh) if webhook_bind_address else None

    disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series, like the aggregated ones
    setup_logging(LogFormat(log_format.lower()), role="operator")
    setup_sentry("operator")
    sys.exit(run_operator(OperatorOptions(
        kubeconfig=kubeconfig, namespace=namespace, workers=workers, leader_elect=leader_elect,
        leader_election_namespace=leader_election_namespace, metrics_bind_address=metrics_bind_address,
        health_probe_bind_address=health_probe_bind_address, resync_period=resync_period,
        aggregation_timeout=aggregation_timeout, status_counts_interval=status_counts_interval,
        webhook=webhook)))
