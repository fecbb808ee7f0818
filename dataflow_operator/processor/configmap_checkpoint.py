"""Checkpoints in the ConfigMap ``df-<name>-checkpoint``, one data key per source type.

The operator normally creates the ConfigMap (with its owner reference); the processor creates it when
it is missing. Every change is a read-modify-replace carrying the ``resourceVersion`` that was read,
so a concurrent writer (another key, a reset by the operator) is never overwritten: the API server
answers 409 and the change is re-applied to the fresh object.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ..contract import NAME_LABEL, checkpoint_configmap_name
from ..pipeline.checkpoint import RESET_REQUEST, CheckpointStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
# Between attempts: 10 ms doubling up to 1 s, jittered so that writers who collided do not collide again.
RETRY_BASE_DELAY = 0.01
RETRY_MAX_DELAY = 1.0

Change = Callable[[dict[str, str]], bool]  # edits data in place; False when nothing changed


class CheckpointConflictError(RuntimeError):
    """The ConfigMap kept changing under us for :data:`MAX_ATTEMPTS` attempts."""


class ConfigMapCheckpointStore(CheckpointStore):
    def __init__(self, api: client.CoreV1Api, namespace: str, name: str) -> None:
        self.api = api
        self.namespace = namespace
        self.dataflow_name = name
        self.configmap_name = checkpoint_configmap_name(name)

    def describe(self, key: str) -> str:
        return f"checkpoint ConfigMap {self.namespace}/{self.configmap_name} (key {key!r})"

    def reset_instructions(self, key: str) -> str:
        return (f"{RESET_REQUEST}, or remove the key {key!r} from the ConfigMap "
                f"(kubectl -n {self.namespace} edit configmap {self.configmap_name})")

    def load(self, key: str) -> str | None:
        configmap = self._read()
        if configmap is None:
            return None
        value = (configmap.data or {}).get(key)
        return str(value) if value is not None else None

    def save(self, key: str, value: str) -> None:
        def put(data: dict[str, str]) -> bool:
            if data.get(key) == value:
                return False
            data[key] = value
            return True

        self._modify(put, create_if_missing=True)

    def delete(self, key: str) -> None:
        def drop(data: dict[str, str]) -> bool:
            return data.pop(key, None) is not None

        self._modify(drop, create_if_missing=False)

    def _read(self) -> client.V1ConfigMap | None:
        try:
            configmap: client.V1ConfigMap = self.api.read_namespaced_config_map(self.configmap_name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return configmap

    def _modify(self, change: Change, *, create_if_missing: bool) -> None:
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                time.sleep(min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5))
            configmap = self._read()
            if configmap is None:
                data: dict[str, str] = {}
                if not change(data) or not create_if_missing:
                    return
                if self._create(data):
                    return
                continue  # someone created it meanwhile: apply the change to theirs
            data = dict(configmap.data or {})
            if not change(data):
                return
            configmap.data = data
            try:
                self.api.replace_namespaced_config_map(self.configmap_name, self.namespace, configmap)
                return
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise
                log.debug("checkpoint ConfigMap %s changed concurrently (%s); retrying",
                          self.configmap_name, exc.status)
        raise CheckpointConflictError(f"ConfigMap {self.namespace}/{self.configmap_name} kept changing; "
                                      f"checkpoint not saved after {MAX_ATTEMPTS} attempts")

    def _create(self, data: dict[str, str]) -> bool:
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=self.configmap_name, namespace=self.namespace,
                                         labels={NAME_LABEL: self.dataflow_name}),
            data=data)
        try:
            self.api.create_namespaced_config_map(self.namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True


def in_cluster_store(namespace: str, name: str) -> ConfigMapCheckpointStore:
    """The store of a processor pod, authenticated by its service account."""
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    return ConfigMapCheckpointStore(client.CoreV1Api(), namespace, name)
