"""``dataflow-operator processor``: load the spec, serve metrics and probes, run the pipeline.

Exit codes: 0 after a clean drain (SIGTERM/SIGINT or an exhausted source); 1 when the spec is
invalid, a connector cannot connect, or a write fails with no error sink to take the message —
nothing unwritten is acknowledged, so a restart reads it again.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry

from ..contract import DEFAULT_PROGRESS_TIMEOUT_SECONDS, PROGRESS_TIMEOUT_ENV, RESET_TOKEN_ENV
from ..observability.http import HttpServer
from ..observability.redaction import register_secrets
from ..observability.sentry import report
from ..pipeline.checkpoint import CheckpointStore, CorruptCheckpointError, FileCheckpointStore, MemoryCheckpointStore
from ..pipeline.config_fields import FieldError, SpecError
from ..pipeline.metrics import ProcessorMetrics
from ..pipeline.progress import ProgressTracker
from ..spec import spec_from_document, validate_spec, with_defaults
from ..spec.manifest_loader import WHOLE_DOCUMENT, ManifestError, load_single_document, read_manifest
from ..spec.metadata import validate_metadata
from ..spec.model import reset_requested
from ..spec.secrets import secret_values
from .assembly import RunSettings, build_pipeline, settings_from_spec
from .engine import PipelineResult, Services

log = logging.getLogger(__name__)


def load_spec_file(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The spec and manifest metadata from a JSON or YAML file holding a DataFlow or a bare spec,
    loaded as ``validate`` loads manifests (bounded; duplicate keys, NaN in JSON refused)."""
    try:
        document = load_single_document(read_manifest(path))
    except ManifestError as exc:
        raise SpecError([FieldError(exc.path, exc.detail)]) from None
    spec, metadata = spec_from_document(document)
    if spec is None:
        raise SpecError([FieldError(WHOLE_DOCUMENT, "expected a DataFlow manifest or a spec with source and sink")])
    if isinstance(document, Mapping) and "metadata" in document:
        errors = validate_metadata(document["metadata"], name_required=False)
        if errors:
            raise SpecError(errors)
    return spec, metadata


def progress_timeout_from_env() -> float:
    raw = os.environ.get(PROGRESS_TIMEOUT_ENV, "").strip()
    if not raw:
        return float(DEFAULT_PROGRESS_TIMEOUT_SECONDS)
    try:
        return max(float(raw), 0.0)
    except ValueError:
        log.warning("the progress timeout is not a number; using the default",
                    extra={"variable": PROGRESS_TIMEOUT_ENV, "value": raw, "default": DEFAULT_PROGRESS_TIMEOUT_SECONDS})
        return float(DEFAULT_PROGRESS_TIMEOUT_SECONDS)


def checkpoint_store_for(spec: Mapping[str, Any], namespace: str, name: str,
                         checkpoint_dir: str | None) -> CheckpointStore:
    """Memory when persistence is off; the ``df-<name>-checkpoint`` ConfigMap inside a cluster;
    otherwise a JSON file under ``checkpoint_dir``."""
    if not settings_from_spec(spec).checkpoint_persistence:
        return MemoryCheckpointStore()
    if checkpoint_dir is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        from .configmap_checkpoint import in_cluster_store
        store: CheckpointStore = in_cluster_store(namespace, name)
        return store
    directory = Path(checkpoint_dir or ".dataflow-checkpoints")
    return FileCheckpointStore(directory / f"{namespace}.{name}.json")


RESET_TOKEN_KEY = "reset-token"


def pending_reset_token(store: CheckpointStore) -> str | None:
    """The operator's one-shot reset request, if this processor has not applied it yet.

    The operator clears ``checkpointReset`` right after handing it over and passes a token instead
    (the DataFlow's resourceVersion at the request), so a later pod restart does not wipe again.
    """
    token = os.environ.get(RESET_TOKEN_ENV, "").strip()
    if not token or store.load(RESET_TOKEN_KEY) == token:
        return None
    return token


def run_processor(*, spec_path: str, namespace: str | None, name: str | None, metrics_bind_address: str,
                  checkpoint_dir: str | None, metrics_enabled: bool = True) -> int:
    try:
        raw_spec, metadata = load_spec_file(spec_path)
        # Before anything can quote the spec (validation errors, connector errors): its secrets are
        # scrubbed by value from every log line and Sentry event from here on.
        register_secrets(secret_values(raw_spec))
        errors = validate_spec(raw_spec)
        if errors:
            raise SpecError(errors)
    except (OSError, SpecError) as exc:
        details = [str(e) for e in exc.errors] if isinstance(exc, SpecError) else [str(exc)]
        log.error("invalid spec; not starting", extra={"spec_path": spec_path, "errors": details})
        return 1
    namespace = namespace or str(metadata.get("namespace") or "default")
    name = name or str(metadata.get("name") or Path(spec_path).stem)
    spec = with_defaults(raw_spec)

    registry = CollectorRegistry(auto_describe=False)
    metrics = ProcessorMetrics(namespace, name, enabled=metrics_enabled, registry=registry)
    progress = ProgressTracker(progress_timeout_from_env(), timeout_setting=PROGRESS_TIMEOUT_ENV)
    checkpoints = checkpoint_store_for(spec, namespace, name, checkpoint_dir)
    try:
        token = pending_reset_token(checkpoints)
    except CorruptCheckpointError as exc:
        log.error("unreadable checkpoint; not starting", extra={"error": str(exc)})
        return 1
    # The token is recorded only once the source has connected, i.e. after it wiped its position:
    # a crash in between repeats the reset rather than skipping it.
    services = Services(namespace=namespace, name=name, metrics=metrics, checkpoints=checkpoints,
                        progress=progress, on_source_connected=None if token is None else
                        lambda: checkpoints.save(RESET_TOKEN_KEY, token))
    pipeline = build_pipeline(spec, services, settings=RunSettings(
        reset_checkpoint=token is not None or reset_requested(spec, metadata)))
    server = HttpServer(metrics_bind_address, registry=registry, probes={
        "/healthz": lambda: (True, "ok"),
        "/readyz": progress.readiness,
        "/livez": progress.liveness,
    }).start()
    log.info("processor started", extra={"metrics_port": server.port, "source": pipeline.source_type,
                                         "sink": pipeline.sink_type})

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received", extra={"signal": signal.Signals(signum).name})
        pipeline.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        result: PipelineResult = pipeline.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    if result.failure is not None:
        progress.mark_not_ready(str(result.failure))
        log.error("processor stopped on a failure", extra={"error": str(result.failure)})
        report(result.failure)
        return 1
    log.info("processor stopped cleanly", extra={"exhausted": result.exhausted})
    return 0
