"""Command-line entry points; each command hands off to one function."""

from __future__ import annotations

import sys

import click


@click.group()
@click.version_option(package_name="dataflow-operator")
def main() -> None:
    """Declarative data pipelines on Kubernetes, with first-class Prometheus metrics."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
def validate(files: tuple[str, ...]) -> None:
    """Check DataFlow manifests offline (YAML, multi-document; '-' reads stdin)."""
    from .spec.files import validate_files

    sys.exit(validate_files(files, sys.stdout))


@main.command()
@click.option("--spec-path", default="/etc/dataflow/spec.json", show_default=True,
              help="The spec (JSON or YAML; a bare spec or a whole DataFlow manifest).")
@click.option("--namespace", default=None, help="DataFlow namespace (metrics labels); default from the manifest.")
@click.option("--name", default=None, help="DataFlow name (metrics labels); default from the manifest.")
@click.option("--metrics-bind-address", default=":9090", show_default=True, help="/metrics and probes.")
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
