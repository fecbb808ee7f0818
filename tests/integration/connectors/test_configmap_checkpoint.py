"""ConfigMapCheckpointStore against a real API server: create, update, delete, concurrent writers."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dataflow_operator.processor.configmap_checkpoint import ConfigMapCheckpointStore


@pytest.fixture
def core(kube_apiserver: Any) -> client.CoreV1Api:
    return client.CoreV1Api(kube_apiserver.api_client())


@pytest.fixture
def namespace(core: client.CoreV1Api) -> str:
    name = f"ckpt-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


class CountingCoreV1Api(client.CoreV1Api):  # type: ignore[misc]
    """Counts the 409s the API server answers to replaces."""

    def __init__(self, api_client: Any) -> None:
        super().__init__(api_client)
        self.conflicts = 0

    def replace_namespaced_config_map(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().replace_namespaced_config_map(*args, **kwargs)
        except ApiException as exc:
            if exc.status == 409:
                self.conflicts += 1
            raise


def test_save_load_delete(core: client.CoreV1Api, namespace: str) -> None:
    store = ConfigMapCheckpointStore(core, namespace, "flow")
    assert store.load("postgresql") is None
    store.delete("postgresql")  # nothing to delete, no ConfigMap created for it
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("df-flow-checkpoint", namespace)
    assert missing.value.status == 404

    store.save("postgresql", '{"lastReadOrderByValue": 1}')
    configmap = core.read_namespaced_config_map("df-flow-checkpoint", namespace)
    assert configmap.data == {"postgresql": '{"lastReadOrderByValue": 1}'}
    assert configmap.metadata.labels == {"dataflow.dataflow.io/name": "flow"}

    store.save("postgresql", '{"lastReadOrderByValue": 2}')
    store.save("file", "7")
    assert store.load("postgresql") == '{"lastReadOrderByValue": 2}'
    store.delete("postgresql")
    assert store.load("postgresql") is None
    assert core.read_namespaced_config_map("df-flow-checkpoint", namespace).data == {"file": "7"}


def test_concurrent_writers_never_overwrite_each_other(kube_apiserver: Any, namespace: str) -> None:
    apis = [CountingCoreV1Api(kube_apiserver.api_client()) for _ in range(4)]
    stores = [ConfigMapCheckpointStore(api, namespace, "busy") for api in apis]
    rounds = 15
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def write(index: int) -> None:
        start.wait()
        try:
            for round_ in range(rounds):
                stores[index].save(f"key{index}", str(round_))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    data = apis[0].read_namespaced_config_map("df-busy-checkpoint", namespace).data
    assert data == {f"key{i}": str(rounds - 1) for i in range(len(stores))}
    assert sum(api.conflicts for api in apis) > 0  # the writers really did collide and retry
