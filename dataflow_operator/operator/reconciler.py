"""The reconcile loop of operator.md for one DataFlow key: desired state -> apply -> status -> events
-> ``dataflow_status``.

Reads come from the informers' caches; the API is called only to write (and to read a Secret the
cache does not hold, or an object after a conflict). Every write is skipped when the live object
already says what the desired one says, so a reconcile of a converged DataFlow writes nothing.

Checkpoint reset (``spec.checkpointReset`` or the ``reset-checkpoint`` annotation) is one-shot. The
request is handed to the processor as a token in the pod template (``DATAFLOW_CHECKPOINT_RESET_TOKEN``,
the DataFlow's resourceVersion when the request was seen), then cleared from the DataFlow. The token
stays in the template until the next reset, so clearing the flag does not roll the pods a second
time (which could kill the pods that were to do the reset before they did), and a processor
restart does not reset again: a processor wipes its checkpoint only when the token differs from the
one it last applied. ``spec.json`` never carries ``checkpointReset``.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..contract import API_VERSION, KIND, RESET_CHECKPOINT_ANNOTATION, RESET_TOKEN_ENV
from ..observability.redaction import register_secrets
from ..spec import SecretResolutionError, find_secret_refs, normalize, resolve_secret_refs, validate_spec
from ..spec.model import reset_requested
from ..spec.secrets import secret_values
from . import resources
from .controller import ReconcileResult
from .diff import first_difference, update_body
from .events import EventRecorder
from .informer import Obj, Store
from .kube import (
    CONFIG_MAP,
    DEPLOYMENT,
    ROLE,
    ROLE_BINDING,
    SECRET,
    SERVICE_ACCOUNT,
    Kind,
    KubeClient,
    KubeError,
    error_text,
    is_status,
)
from .maintenance import MaintenanceState, evaluate
from .metrics import OperatorMetrics
from .status import (
    DEPLOYMENT_FAILED,
    INVALID_SPEC,
    SECRET_RESOLUTION_FAILED,
    Outcome,
    desired_status,
    failed,
    phase_from_deployment,
    status_patch,
)

log = logging.getLogger(__name__)

# Reasons of our own beside operator.md's: the spec now lives in a Secret, and RBAC is applied too.
SECRET_FAILED, CONFIG_MAP_FAILED, RBAC_FAILED = "SecretFailed", "ConfigMapFailed", "RBACFailed"
STATUS_UPDATE_FAILED = "StatusUpdateFailed"
# A requeue for a maintenance boundary lands just after it, so the window has surely begun or ended.
BOUNDARY_SLACK = 0.05
WRITE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Caches:
    dataflows: Store
    deployments: Store
    secrets: Store
    config_maps: Store
    service_accounts: Store
    roles: Store
    role_bindings: Store

    def for_kind(self, kind: Kind) -> Store:
        return {SECRET.name: self.secrets, CONFIG_MAP.name: self.config_maps,
                SERVICE_ACCOUNT.name: self.service_accounts, ROLE.name: self.roles,
                ROLE_BINDING.name: self.role_bindings, DEPLOYMENT.name: self.deployments}[kind.name]


class StageFailedError(Exception):
    def __init__(self, stage: str, reason: str, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.stage, self.reason, self.message, self.retry = stage, reason, message, retry


def reset_token(dataflow: Mapping[str, Any]) -> str:
    return str(dataflow["metadata"].get("resourceVersion") or "")


def current_reset_token(deployment: Mapping[str, Any] | None) -> str | None:
    if deployment is None:
        return None
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    for container in containers:
        for variable in container.get("env") or []:
            if variable.get("name") == RESET_TOKEN_ENV:
                return str(variable.get("value") or "") or None
    return None


def secret_references(dataflow: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(namespace, name) of every Secret the DataFlow's spec references."""
    spec = dataflow.get("spec")
    if not isinstance(spec, Mapping):
        return set()
    namespace = str(dataflow["metadata"].get("namespace"))
    return {(ref.namespace, ref.name) for ref in find_secret_refs(normalize(spec), namespace)}


class Reconciler:
    def __init__(self, kube: KubeClient, caches: Caches, events: EventRecorder, metrics: OperatorMetrics,
                 settings: resources.ProcessorSettings, *, clock: Callable[[], datetime],
                 allow_cross_namespace_secrets: bool = False) -> None:
        self.kube = kube
        self.caches = caches
        self.events = events
        self.metrics = metrics
        self.settings = settings
        self.clock = clock
        self.allow_cross_namespace_secrets = allow_cross_namespace_secrets

    def __call__(self, key: str) -> ReconcileResult:
        namespace, name = key.split("/", 1)
        dataflow = self.caches.dataflows.get(key)
        if dataflow is None or dataflow["metadata"].get("deletionTimestamp"):
            # ownerReferences let the garbage collector remove what the operator created.
            self.metrics.forget(namespace, name)
            self.events.forget(namespace, name)
            return ReconcileResult()
        dataflow = {**dataflow, "apiVersion": API_VERSION, "kind": KIND}  # list items may lack them
        now = self.clock()
        state: MaintenanceState | None = None
        failures: list[StageFailedError] = []
        try:
            outcome, state = self._converge(dataflow, now)
        except StageFailedError as exc:
            failures.append(exc)
            outcome = failed(exc.reason, exc.message)
        try:
            self._write_status(dataflow, outcome, state, keep_maintenance=bool(failures), now=now)
        except StageFailedError as exc:
            failures.append(exc)
        self.metrics.set_phase(namespace, name, outcome.phase)
        for failure in failures:
            self.metrics.reconcile_errors.labels(failure.stage).inc()
            self.events.warning(dataflow, failure.reason, failure.message)
            log.info("reconcile failed", extra={"key": key, "stage": failure.stage, "reason": failure.reason,
                                                "detail": failure.message, "retry": failure.retry})
        if failures:
            # An invalid spec waits for an edit, but a status that could not be written is retried.
            return ReconcileResult(error=True, retry=any(failure.retry for failure in failures))
        if state is not None and state.next_boundary is not None:
            return ReconcileResult(requeue_after=(state.next_boundary - now).total_seconds() + BOUNDARY_SLACK)
        return ReconcileResult()

    # ---------------------------------------------------------------------------------------------
    # steps 2-7

    def _converge(self, dataflow: Obj, now: datetime) -> tuple[Outcome, MaintenanceState | None]:
        metadata = dataflow["metadata"]
        spec = dataflow.get("spec") or {}
        register_secrets(secret_values(spec))  # before validation errors can quote a literal credential
        errors = validate_spec(spec)
        if errors:
            raise StageFailedError("validate", INVALID_SPEC,
                                   "Invalid spec: " + "; ".join(str(error) for error in errors), retry=False)
        resolved = self._resolve_secrets(normalize(spec), metadata["namespace"])
        state = evaluate(spec.get("maintenance"), now)
        reset = reset_requested(spec, metadata)
        names = resources.Names.of(metadata["name"])
        token = reset_token(dataflow) if reset else current_reset_token(
            self.caches.deployments.get(f"{metadata['namespace']}/{names.deployment}"))
        resolved.pop("checkpointReset", None)
        document = resources.spec_json(resolved)

        self._apply(dataflow, SECRET, resources.spec_secret(dataflow, document), stage="resources",
                    reason=SECRET_FAILED, event_reasons=("SecretCreated", "SecretUpdated"))
        if spec.get("checkpointPersistence", True) is not False:
            self._apply(dataflow, CONFIG_MAP, resources.checkpoint_configmap(dataflow), stage="resources",
                        reason=CONFIG_MAP_FAILED)
            for kind, build in ((SERVICE_ACCOUNT, resources.service_account), (ROLE, resources.role),
                                (ROLE_BINDING, resources.role_binding)):
                self._apply(dataflow, kind, build(dataflow), stage="resources", reason=RBAC_FAILED)
        try:
            desired = resources.deployment(
                dataflow, spec, document_hash=resources.spec_hash(document), settings=self.settings,
                replicas=resources.desired_replicas(spec, state is not None and state.paused), reset_token=token)
        except ValueError as exc:  # no processor image anywhere: only a spec or operator change helps
            raise StageFailedError("deployment", DEPLOYMENT_FAILED, str(exc), retry=False) from exc
        live = self._apply(dataflow, DEPLOYMENT, desired, stage="deployment", reason=DEPLOYMENT_FAILED,
                           event_reasons=("DeploymentCreated", "DeploymentUpdated"))
        if reset:
            self._clear_reset_request(dataflow, spec)
        return phase_from_deployment(live, state), state

    def _resolve_secrets(self, spec: dict[str, Any], namespace: str) -> dict[str, Any]:
        def read_secret(secret_namespace: str, name: str, key: str) -> str:
            if secret_namespace != namespace and not self.allow_cross_namespace_secrets:
                raise SecretResolutionError(
                    f"Secret {secret_namespace}/{name} is in another namespace and cross-namespace "
                    "references are not allowed")
            secret = self.caches.secrets.get(f"{secret_namespace}/{name}")
            if secret is None:
                # Not cached when it has not changed since before a DataFlow referenced it; from now on it
                # is (the watch keeps it current, as the DataFlow's reference admits it).
                secret = self.kube.read(SECRET, secret_namespace, name)
                if secret is not None:
                    self.caches.secrets.mutated(secret)
            if secret is None:
                raise SecretResolutionError(f"Secret {secret_namespace}/{name} not found")
            data = secret.get("data") or {}
            if key not in data:
                raise SecretResolutionError(f"Secret {secret_namespace}/{name} has no key {key!r}")
            try:
                value = base64.b64decode(data[key]).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise SecretResolutionError(
                    f"Secret {secret_namespace}/{name} key {key!r} is not UTF-8 text") from None
            register_secrets([value])  # whatever a Secret holds is secret, a topic name included
            return value

        try:
            resolved = resolve_secret_refs(spec, namespace, read_secret)
        except SecretResolutionError as exc:
            raise StageFailedError("secrets", SECRET_RESOLUTION_FAILED, f"Failed to resolve secrets: {exc}") from exc
        except KubeError as exc:
            raise StageFailedError("secrets", SECRET_RESOLUTION_FAILED,
                                   f"Failed to resolve secrets: reading a Secret failed: {error_text(exc)}") from exc
        register_secrets(secret_values(resolved))  # e.g. the password inside a resolved connectionString
        return resolved

    def _apply(self, dataflow: Obj, kind: Kind, desired: Obj, *, stage: str, reason: str,
               event_reasons: tuple[str, str] | None = None) -> Obj:
        """Create or update one object unless the live one already matches; returns the live object."""
        metadata = desired["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        store = self.caches.for_kind(kind)
        live = store.get(f"{namespace}/{name}")
        try:
            for _ in range(WRITE_ATTEMPTS):
                if live is None:
                    try:
                        created = self.kube.create(kind, desired)
                    except KubeError as exc:
                        if not is_status(exc, 409):
                            raise
                        live = self.kube.read(kind, namespace, name)  # the cache has not seen it yet
                        continue
                    store.mutated(created)
                    if event_reasons:
                        self.events.normal(dataflow, event_reasons[0], f"Created {kind.name} {name}")
                    return created
                difference = first_difference(desired, live)
                if difference is None:
                    return live
                try:
                    updated = self.kube.replace(kind, update_body(live, desired))
                except KubeError as exc:
                    if not is_status(exc, 404, 409):
                        raise
                    # 409: the cached copy is stale; 404: deleted meanwhile. Re-read and decide again.
                    live = self.kube.read(kind, namespace, name)
                    continue
                store.mutated(updated)
                if event_reasons:
                    self.events.normal(dataflow, event_reasons[1], f"Updated {kind.name} {name} ({difference} changed)")
                return updated
        except KubeError as exc:
            raise StageFailedError(stage, reason, f"Failed to apply {kind.name} {name}: {error_text(exc)}") from exc
        raise StageFailedError(stage, reason,
                               f"Failed to apply {kind.name} {name}: kept conflicting with other writers")

    def _clear_reset_request(self, dataflow: Obj, spec: Mapping[str, Any]) -> None:
        metadata = dataflow["metadata"]
        patch: dict[str, Any] = {}
        if "checkpointReset" in spec:
            patch["spec"] = {"checkpointReset": None}
        if RESET_CHECKPOINT_ANNOTATION in (metadata.get("annotations") or {}):
            patch["metadata"] = {"annotations": {RESET_CHECKPOINT_ANNOTATION: None}}
        try:
            updated = self.kube.patch_dataflow(metadata["namespace"], metadata["name"], patch)
        except KubeError as exc:
            raise StageFailedError("resources", "CheckpointResetFailed",
                                   f"Failed to clear the checkpoint reset request: {error_text(exc)}") from exc
        self.caches.dataflows.mutated(updated)

    # ---------------------------------------------------------------------------------------------
    # step 7: status

    def _write_status(self, dataflow: Obj, outcome: Outcome, state: MaintenanceState | None, *,
                      keep_maintenance: bool, now: datetime) -> None:
        metadata = dataflow["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        generation = int(metadata.get("generation") or 0)
        current = dataflow
        for _ in range(WRITE_ATTEMPTS):
            status = current.get("status") or {}
            patch = status_patch(status, desired_status(status, outcome, generation=generation, maintenance=state,
                                                        now=now, keep_maintenance=keep_maintenance))
            if patch is None:
                return
            body = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}, "status": patch}
            try:
                updated = self.kube.patch_dataflow_status(namespace, name, body)
            except KubeError as exc:
                if is_status(exc, 404):
                    return  # deleted meanwhile
                if not is_status(exc, 409):
                    raise StageFailedError("status", STATUS_UPDATE_FAILED,
                                           f"Failed to update status: {error_text(exc)}") from exc
                try:
                    fresh = self.kube.read_dataflow(namespace, name)
                except KubeError as read_error:
                    raise StageFailedError("status", STATUS_UPDATE_FAILED,
                                           f"Failed to update status: {error_text(read_error)}") from read_error
                if fresh is None:
                    return
                current = fresh
                continue
            self.caches.dataflows.mutated(updated)
            return
        raise StageFailedError("status", STATUS_UPDATE_FAILED, "Failed to update status: kept conflicting")
