"""The operator's only door to the API server: the official client's typed APIs, spoken in dicts.

Every call passes ``_preload_content=False`` and decodes the JSON itself. The client's model
deserialisation is several times slower than ``json.loads`` and would turn every cached object into
a model; the informers, the resource builders and the diff all work on the wire form (camelCase
dicts) instead, the same for built-in kinds and for DataFlows (which have no model anyway).
Requests carry ``_request_timeout`` so that a hung connection fails instead of blocking a worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError

from ..contract import API_GROUP, API_VERSION_NAME, PLURAL

MERGE_PATCH = "application/merge-patch+json"
# (connect, read) seconds for ordinary requests; watches set their own read timeout.
REQUEST_TIMEOUT = (5.0, 30.0)

# What a failed request can raise: the API said no (ApiException) or the connection failed
# (urllib3's errors; an API server restart shows up as these).
KubeError = (ApiException, HTTPError, OSError)


@dataclass(frozen=True, slots=True)
class Kind:
    """A built-in kind the operator reads and writes, and its functions in the official client."""

    name: str
    api: type
    method_suffix: str     # create_namespaced_<suffix>, list_<suffix>_for_all_namespaces, ...

    def method(self, api_client: k8s.ApiClient, verb: str, *, all_namespaces: bool = False) -> Any:
        name = f"{verb}_{self.method_suffix}_for_all_namespaces" if all_namespaces \
            else f"{verb}_namespaced_{self.method_suffix}"
        return getattr(self.api(api_client), name)


SECRET = Kind("Secret", k8s.CoreV1Api, "secret")
CONFIG_MAP = Kind("ConfigMap", k8s.CoreV1Api, "config_map")
SERVICE_ACCOUNT = Kind("ServiceAccount", k8s.CoreV1Api, "service_account")
POD = Kind("Pod", k8s.CoreV1Api, "pod")
ROLE = Kind("Role", k8s.RbacAuthorizationV1Api, "role")
ROLE_BINDING = Kind("RoleBinding", k8s.RbacAuthorizationV1Api, "role_binding")
DEPLOYMENT = Kind("Deployment", k8s.AppsV1Api, "deployment")


def decode(response: BaseHTTPResponse) -> dict[str, Any]:
    try:
        data = json.loads(response.data)
    finally:
        response.release_conn()
    if not isinstance(data, dict):
        raise ValueError(f"unexpected response: {type(data).__name__}")
    return data


def is_status(error: BaseException, *codes: int) -> bool:
    return isinstance(error, ApiException) and error.status in codes


def error_text(error: BaseException) -> str:
    """A short description of a failed request: the API server's own message when it sent one."""
    if isinstance(error, ApiException):
        try:
            message = json.loads(error.body or "{}").get("message")
        except (ValueError, AttributeError):
            message = None
        return f"{error.status} {error.reason}" + (f": {message}" if message else "")
    return f"{type(error).__name__}: {error}"


class KubeClient:
    def __init__(self, api_client: k8s.ApiClient,
                 request_timeout: tuple[float, float] = REQUEST_TIMEOUT) -> None:
        self.api_client = api_client
        self.timeout = request_timeout
        self._custom = k8s.CustomObjectsApi(api_client)
        self._core = k8s.CoreV1Api(api_client)

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return decode(function(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs))

    # ---------------------------------------------------------------------------------------------
    # built-in kinds

    def create(self, kind: Kind, manifest: dict[str, Any]) -> dict[str, Any]:
        namespace = manifest["metadata"]["namespace"]
        return self._call(kind.method(self.api_client, "create"), namespace, manifest)

    def replace(self, kind: Kind, manifest: dict[str, Any]) -> dict[str, Any]:
        metadata = manifest["metadata"]
        return self._call(kind.method(self.api_client, "replace"), metadata["name"], metadata["namespace"],
                          manifest)

    def read(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call(kind.method(self.api_client, "read"), name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    # ---------------------------------------------------------------------------------------------
    # DataFlows

    def read_dataflow(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call(self._custom.get_namespaced_custom_object, API_GROUP, API_VERSION_NAME, namespace,
                              PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_dataflow(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._custom.patch_namespaced_custom_object, API_GROUP, API_VERSION_NAME, namespace,
                          PLURAL, name, patch, _content_type=MERGE_PATCH)

    def patch_dataflow_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._custom.patch_namespaced_custom_object_status, API_GROUP, API_VERSION_NAME,
                          namespace, PLURAL, name, patch, _content_type=MERGE_PATCH)

    # ---------------------------------------------------------------------------------------------
    # Events (the EventSink protocol)

    def create_event(self, namespace: str, body: dict[str, Any]) -> None:
        self._call(self._core.create_namespaced_event, namespace, body)

    def patch_event(self, namespace: str, name: str, body: dict[str, Any]) -> bool:
        try:
            self._call(self._core.patch_namespaced_event, name, namespace, body, _content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # ---------------------------------------------------------------------------------------------
    # list and watch (informers)

    def list_function(self, kind: Kind | None, namespace: str | None) -> tuple[Any, tuple[Any, ...]]:
        """The client function listing (and, with ``watch=True``, watching) ``kind`` (None: DataFlows)
        in ``namespace`` (None: all), with its positional arguments."""
        if kind is None:
            if namespace is None:
                return self._custom.list_cluster_custom_object, (API_GROUP, API_VERSION_NAME, PLURAL)
            return self._custom.list_namespaced_custom_object, (API_GROUP, API_VERSION_NAME, namespace, PLURAL)
        if namespace is None:
            return kind.method(self.api_client, "list", all_namespaces=True), ()
        return kind.method(self.api_client, "list"), (namespace,)
