"""The admission webhook called by a real kube-apiserver over TLS on loopback.

The operator runs in-process with the webhook on 127.0.0.1 and its self-managed certificate: it
creates the Secret, injects the caBundle into a ValidatingWebhookConfiguration that points the API
server at ``https://127.0.0.1:PORT/validate-dataflow``, and renews both. Each test's configuration
selects only the test's namespace, so other tests sharing the API server are never reviewed.
"""

from __future__ import annotations

import base64
import copy
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from dataflow_operator.operator.manager import Manager
from dataflow_operator.operator.webhook.server import PATH
from dataflow_operator.operator.webhook.wiring import WebhookOptions
from tests.integration.operator.conftest import GROUP, PLURAL, VERSION, Operators
from tests.peers.kube import create_namespace
from tests.peers.process import free_port
from tests.processes import wait_for
from tests.unit.operator.webhook.reviews import example_dataflows, hostile_dataflows

DENIED = 'admission webhook "validate.dataflow.dataflow.io" denied the request'
UNREACHABLE = 'failed calling webhook "validate.dataflow.dataflow.io"'
VALID: dict[str, Any] = {
    "source": {"type": "kafka", "config": {"brokers": ["kafka:9092"], "topic": "orders"}},
    "sink": {"type": "file", "config": {"path": "/tmp/out.jsonl"}},
}
#: Past the CRD's schema (a string), refused by validate.
INVALID: dict[str, Any] = {**VALID, "maintenance": {"startTime": "2026-01-01T02:00:00Z", "duration": "1h",
                                                    "timezone": "Mars/Olympus_Mons"}}


@dataclass
class Webhook:
    admin: k8s.ApiClient
    namespace: str
    configuration: str
    port: int
    manager: Manager

    def create(self, spec: Any, *, name: str | None = None, dry_run: bool = False,
               document: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        body = document or {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DataFlow",
                            "metadata": {"name": name or f"df-{uuid.uuid4().hex[:8]}"}, "spec": spec}
        data, _status, headers = k8s.CustomObjectsApi(self.admin).create_namespaced_custom_object_with_http_info(
            GROUP, VERSION, self.namespace, PLURAL, body, dry_run="All" if dry_run else None,
            field_validation="Strict")  # as kubectl apply sends it: unknown fields are errors, not pruned
        return data, dict(headers)

    def refusal(self, spec: Any = None, **kwargs: Any) -> ApiException:
        with pytest.raises(ApiException) as raised:
            self.create(spec, **kwargs)
        return raised.value

    def set_failure_policy(self, policy: str) -> None:
        api = k8s.AdmissionregistrationV1Api(self.admin)
        api.patch_validating_webhook_configuration(self.configuration, [
            {"op": "replace", "path": "/webhooks/0/failurePolicy", "value": policy}])

    def served_certificate(self) -> x509.Certificate:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as plain, \
                context.wrap_socket(plain) as sock:
            der = sock.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)


def webhook_configuration(name: str, namespace: str, port: int) -> dict[str, Any]:
    """The chart's webhook, addressed by URL (the API server reaches loopback, not a Service)."""
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{"name": "validate.dataflow.dataflow.io", "admissionReviewVersions": ["v1"],
                          "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 5,
                          "matchPolicy": "Equivalent",
                          "rules": [{"apiGroups": [GROUP], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                                     "resources": [PLURAL], "scope": "Namespaced"}],
                          "clientConfig": {"url": f"https://127.0.0.1:{port}{PATH}"},
                          "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                                      "operator": "In", "values": [namespace]}]}}]}


def start_webhook(operators: Operators, admin: k8s.ApiClient, namespace: str, **policy: Any) -> Webhook:
    system = f"sys-{uuid.uuid4().hex[:6]}"
    create_namespace(admin, system)
    name = f"dataflow-webhook-{uuid.uuid4().hex[:6]}"
    port = free_port()
    k8s.AdmissionregistrationV1Api(admin).create_validating_webhook_configuration(
        webhook_configuration(name, namespace, port))
    options = WebhookOptions(bind_address=f"127.0.0.1:{port}", secret="webhook-tls", secret_namespace=system,
                             configuration=name, hosts=("127.0.0.1",), **policy)
    manager = operators.start(namespace, webhook=options)
    webhook = Webhook(admin, namespace, name, port, manager)
    # The API server picks up the injected caBundle from its own watch; a dry run tells when.
    wait_for(lambda: webhook.create(VALID, dry_run=True), timeout=30, message="the API server trusting the webhook")
    return webhook


@pytest.fixture
def webhooks(admin: k8s.ApiClient) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        k8s.AdmissionregistrationV1Api(admin).delete_validating_webhook_configuration(name)


@pytest.fixture
def webhook(operators: Operators, admin: k8s.ApiClient, namespace: str, webhooks: list[str]) -> Webhook:
    running = start_webhook(operators, admin, namespace)
    webhooks.append(running.configuration)
    return running


def message(error: ApiException) -> str:
    text: str = json.loads(error.body).get("message", "")
    return text


def causes(error: ApiException) -> list[str]:
    body = json.loads(error.body)
    return [cause.get("field", "") for cause in (body.get("details") or {}).get("causes", [])]


def test_the_self_managed_certificate_is_stored_and_its_ca_injected(webhook: Webhook) -> None:
    configuration = k8s.AdmissionregistrationV1Api(webhook.admin).read_validating_webhook_configuration(
        webhook.configuration)
    bundle = base64.b64decode(configuration.webhooks[0].client_config.ca_bundle)
    assert webhook.served_certificate().issuer == x509.load_pem_x509_certificates(bundle)[0].subject


def test_hostile_manifests_are_refused_at_create_with_their_field_paths(webhook: Webhook) -> None:
    by_webhook = 0
    admitted = []
    for name, hostile, expect in hostile_dataflows():
        if all(path.startswith("metadata.namespace") for path in expect):
            continue  # the namespace is the request's, set below: this document is valid once sent
        document = copy.deepcopy(hostile)
        if isinstance(document.get("metadata"), dict):
            document["metadata"]["namespace"] = webhook.namespace
        try:
            webhook.create(None, document=document)
        except ApiException as exc:
            error = exc
        else:
            admitted.append(name)
            continue
        assert error.status in (400, 422), (name, error.status, error.body)
        if DENIED not in message(error):
            continue  # refused before admission: by the CRD's schema or the API server's own rules
        by_webhook += 1
        fields = causes(error)
        for expected in expect:
            assert any(f == expected or f.startswith((f"{expected}.", f"{expected}[")) for f in fields), \
                (name, fields, error.body)
            assert expected in json.loads(error.body)["message"], name
    assert not admitted
    # The CRD schema is loose where validate is strict: most of the corpus reaches the webhook.
    assert by_webhook >= 15, (by_webhook, error.body)


def test_valid_dataflows_are_admitted_with_warnings_and_dry_run_stores_nothing(webhook: Webhook) -> None:
    for _name, example in example_dataflows():
        document = {**copy.deepcopy(example), "metadata": {"name": example["metadata"]["name"]}}
        created, _headers = webhook.create(None, document=document)
        assert created["metadata"]["name"] == document["metadata"]["name"]
    spec = {**VALID, "checkpointReset": True}
    created, headers = webhook.create(spec, name="dry", dry_run=True)
    assert "spec.checkpointReset: ignored: a kafka source" in headers.get("Warning", "")
    with pytest.raises(ApiException) as missing:
        k8s.CustomObjectsApi(webhook.admin).get_namespaced_custom_object(GROUP, VERSION, webhook.namespace,
                                                                          PLURAL, "dry")
    assert missing.value.status == 404
    refused = webhook.refusal(INVALID, dry_run=True)
    assert refused.status == 422 and DENIED in message(refused)
    assert causes(refused) == ["spec.maintenance.timezone"]


def test_an_update_that_breaks_the_spec_is_refused(webhook: Webhook) -> None:
    webhook.create(VALID, name="orders")
    api = k8s.CustomObjectsApi(webhook.admin)
    with pytest.raises(ApiException) as refused:
        api.patch_namespaced_custom_object(GROUP, VERSION, webhook.namespace, PLURAL, "orders",
                                           {"spec": {"sink": {"config": {"path": 7}}}})
    assert DENIED in message(refused.value) and "spec.sink.config.path" in causes(refused.value)
    api.patch_namespaced_custom_object(GROUP, VERSION, webhook.namespace, PLURAL, "orders",
                                       {"metadata": {"labels": {"team": "data"}}})


def test_a_password_in_the_manifest_is_not_echoed(webhook: Webhook) -> None:
    spec = copy.deepcopy(VALID)
    spec["source"]["config"]["sasl"] = {"mechanism": "Pa55-w0rd-x", "username": "u", "password": "Pa55-w0rd-x"}
    refused = webhook.refusal(spec)
    assert DENIED in message(refused) and "spec.source.config.sasl.mechanism" in causes(refused)
    assert "Pa55-w0rd-x" not in refused.body


def test_creates_keep_working_while_the_certificate_rotates(operators: Operators, admin: k8s.ApiClient,
                                                           namespace: str, webhooks: list[str]) -> None:
    running = start_webhook(operators, admin, namespace, refresh_interval=0.5,
                            ca_validity=timedelta(seconds=45), cert_validity=timedelta(seconds=15),
                            propagation=timedelta(seconds=3))
    webhooks.append(running.configuration)
    failures: list[str] = []
    served: dict[int, x509.Name] = {}
    stop = threading.Event()

    def watch_certificates() -> None:
        while not stop.is_set():
            certificate = running.served_certificate()
            served[certificate.serial_number] = certificate.issuer
            time.sleep(0.5)

    watcher = threading.Thread(target=watch_certificates, daemon=True)
    watcher.start()
    deadline = time.monotonic() + 60
    creates = 0
    while time.monotonic() < deadline:
        try:
            running.create(VALID, dry_run=True)
        except ApiException as exc:
            failures.append(f"valid: {exc.status} {exc.body[:200]}")
        refused = running.refusal(INVALID)
        if DENIED not in message(refused):
            failures.append(f"invalid: {refused.status} {refused.body[:200]}")
        creates += 2
        time.sleep(0.2)
    stop.set()
    watcher.join()
    print(f"rotation: creates={creates} certificates_served={len(served)} cas={len(set(served.values()))} "
          f"failures={len(failures)}")
    assert not failures, failures[:5]
    assert creates >= 40
    assert len(served) >= 4, served  # renewed about every 10 s
    assert len(set(served.values())) >= 2, served  # and the CA about every 30 s


def test_a_dead_webhook_blocks_with_fail_and_not_with_ignore(webhook: Webhook) -> None:
    webhook.manager.stop()
    refused = wait_for(lambda: _refused_unreachable(webhook), timeout=30, message="creates refused (Fail)")
    assert UNREACHABLE in message(refused)
    webhook.set_failure_policy("Ignore")
    created, _headers = wait_for(lambda: webhook.create(VALID), timeout=30, message="creates admitted (Ignore)")
    assert created["metadata"]["namespace"] == webhook.namespace
    # Unchecked now: what the webhook would have refused is stored (the operator reports it as Error).
    webhook.create(INVALID, name="unchecked")


def _refused_unreachable(webhook: Webhook) -> ApiException | None:
    try:
        webhook.create(VALID, dry_run=True)
    except ApiException as exc:
        return exc if UNREACHABLE in message(exc) else None
    return None
