"""Where the webhook's serving certificate comes from, kept current while the operator runs.

- :class:`SecretCertificates` (the chart's default): the operator keeps its own PKI (:mod:`.pki`)
  in a Secret of its namespace, creates and renews it, and writes the CA bundle into the
  ``caBundle`` of every webhook of its ValidatingWebhookConfiguration. Every replica runs it: writes
  are guarded by the Secret's resourceVersion, so when two replicas renew at once one wins and the
  other serves what the winner stored.
- :class:`FileCertificates` (``certManager.enabled``): cert-manager writes ``tls.crt``/``tls.key``
  into the mounted Secret and its CA injector fills ``caBundle``; the files are re-read.

Both re-check every ``interval`` seconds and hand the listener a new TLS context when the
certificate changed: connections from then on get the new certificate, with no restart.
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from ..kube import SECRET, KubeClient, KubeError, decode, error_text, is_status
from .pki import Policy, WebhookPki, plan

log = logging.getLogger(__name__)

CA_BUNDLE_KEY: Final = "ca.crt"
CA_KEY_KEY: Final = "ca.key"
CERT_KEY: Final = "tls.crt"
KEY_KEY: Final = "tls.key"
JSON_PATCH: Final = "application/json-patch+json"
DEFAULT_POLICY: Final = Policy()


class ServingContext:
    """The TLS context of the current certificate (None until there is one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        self._material: tuple[bytes, bytes] | None = None

    def context(self) -> ssl.SSLContext | None:
        return self._context

    def load(self, cert: bytes, key: bytes) -> bool:
        """Serve ``cert`` with ``key`` from the next connection on; False when they are what is
        served already. Raises ssl.SSLError when they do not make a certificate and its key."""
        with self._lock:
            if self._material == (cert, key):
                return False
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            # load_cert_chain reads files only; these live for the call, readable by us alone.
            with tempfile.TemporaryDirectory(prefix="webhook-tls-") as directory:
                cert_file, key_file = Path(directory) / CERT_KEY, Path(directory) / KEY_KEY
                cert_file.write_bytes(cert)
                key_file.touch(mode=0o600)
                key_file.write_bytes(key)
                context.load_cert_chain(cert_file, key_file)
            self._context, self._material = context, (cert, key)
            return True


class _Refresher(ABC):
    """Runs ``sync`` now and then every ``interval`` seconds on a thread of its own."""

    name = "webhook-certificates"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.serving = ServingContext()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def context(self) -> ssl.SSLContext | None:
        return self.serving.context()

    @abstractmethod
    def sync(self) -> None:
        """Bring the served certificate up to date (issue, renew, or re-read it)."""

    def _sync_logged(self) -> None:
        try:
            self.sync()
        except (*KubeError, ssl.SSLError, ValueError) as exc:
            log.warning("webhook certificate not refreshed; retrying",
                        extra={"error": error_text(exc), "retry_in_seconds": self.interval})

    def start(self) -> None:
        self._sync_logged()

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self._sync_logged()

        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class SecretCertificates(_Refresher):
    def __init__(self, kube: KubeClient, *, namespace: str, secret: str, configuration: str | None,
                 hosts: Sequence[str], policy: Policy = DEFAULT_POLICY, interval: float = 60.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(interval)
        self.kube = kube
        self.namespace, self.secret, self.configuration = namespace, secret, configuration
        self.hosts = list(hosts)
        self.policy = policy
        self.clock = clock

    def sync(self) -> None:
        """One round: read the Secret, renew what is due, store it, publish the bundle, serve."""
        stored = self.kube.read(SECRET, self.namespace, self.secret)
        current = pki_from_secret(stored)
        published = current is not None and self._published(current.ca_bundle)
        wanted = plan(current, self.clock(), self.hosts, self.policy, published=published)
        if wanted is not None:
            try:
                self._store(stored, wanted)
            except ApiException as exc:
                if is_status(exc, 409):
                    return  # another replica renewed first; its result is read next round
                raise
            log.info("webhook certificate stored", extra={"secret": f"{self.namespace}/{self.secret}",
                                                          "not_after": wanted.serving.not_valid_after_utc.isoformat(),
                                                          "trusted_cas": len(wanted.cas)})
            current, published = wanted, False
        assert current is not None  # plan() returns a PKI when there is none
        if not published:
            self._publish(current.ca_bundle)
        self.serving.load(current.cert, current.key)

    def _store(self, stored: dict[str, Any] | None, pki: WebhookPki) -> None:
        data = {key: base64.b64encode(value).decode() for key, value in (
            (CA_BUNDLE_KEY, pki.ca_bundle), (CA_KEY_KEY, pki.ca_key), (CERT_KEY, pki.cert), (KEY_KEY, pki.key))}
        if stored is None:
            self.kube.create(SECRET, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
                                      "metadata": {"name": self.secret, "namespace": self.namespace}})
        else:  # the resourceVersion read makes a concurrent renewal a 409
            self.kube.replace(SECRET, {**stored, "data": data})

    def _webhook_configuration(self) -> dict[str, Any] | None:
        if self.configuration is None:
            return None
        api = k8s.AdmissionregistrationV1Api(self.kube.api_client)
        try:
            response: Any = api.read_validating_webhook_configuration(  # raw: _preload_content=False
                self.configuration, _preload_content=False, _request_timeout=self.kube.timeout)
            return decode(response)
        except ApiException as exc:
            if is_status(exc, 404):
                log.warning("the ValidatingWebhookConfiguration does not exist; no caBundle to inject",
                            extra={"configuration": self.configuration})
                return None
            raise

    def _published(self, bundle: bytes) -> bool:
        """Every webhook of the configuration trusts exactly ``bundle`` (vacuously without one)."""
        configuration = self._webhook_configuration()
        if configuration is None:
            return self.configuration is None
        encoded = base64.b64encode(bundle).decode()
        return all((webhook.get("clientConfig") or {}).get("caBundle") == encoded
                   for webhook in configuration.get("webhooks") or [])

    def _publish(self, bundle: bytes) -> None:
        configuration = self._webhook_configuration()
        if configuration is None:
            return
        encoded = base64.b64encode(bundle).decode()
        patch: list[dict[str, Any]] = []
        for index, webhook in enumerate(configuration.get("webhooks") or []):
            if (webhook.get("clientConfig") or {}).get("caBundle") != encoded:
                # "test" pins the index to the webhook read, should the list change in between.
                patch += [{"op": "test", "path": f"/webhooks/{index}/name", "value": webhook.get("name")},
                          {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": encoded}]
        if patch:
            api = k8s.AdmissionregistrationV1Api(self.kube.api_client)
            response: Any = api.patch_validating_webhook_configuration(
                configuration["metadata"]["name"], patch, _content_type=JSON_PATCH, _preload_content=False,
                _request_timeout=self.kube.timeout)
            decode(response)
            log.info("webhook caBundle injected", extra={"configuration": self.configuration,
                                                         "webhooks": len(patch) // 2})


def pki_from_secret(secret: dict[str, Any] | None) -> WebhookPki | None:
    """The PKI a Secret holds; None when it is missing or incomplete (then a new one is made)."""
    data = (secret or {}).get("data") or {}
    try:
        values = [base64.b64decode(data[key], validate=True)
                  for key in (CA_BUNDLE_KEY, CA_KEY_KEY, CERT_KEY, KEY_KEY)]
    except (KeyError, ValueError, TypeError):
        return None
    return WebhookPki(*values)


class FileCertificates(_Refresher):
    """``tls.crt`` and ``tls.key`` in ``directory`` (a mounted Secret that cert-manager renews)."""

    def __init__(self, directory: str | os.PathLike[str], interval: float = 10.0) -> None:
        super().__init__(interval)
        self.directory = Path(directory)

    def sync(self) -> None:
        try:
            cert, key = (self.directory / CERT_KEY).read_bytes(), (self.directory / KEY_KEY).read_bytes()
        except FileNotFoundError:
            log.warning("no webhook certificate yet", extra={"directory": str(self.directory)})
            return
        # The kubelet swaps a mounted Secret's files at once; a pair read across a swap fails to
        # load and the current certificate stays until the next round.
        try:
            loaded = self.serving.load(cert, key)
        except ssl.SSLError as exc:
            log.warning("webhook certificate files do not load; keeping the current one",
                        extra={"directory": str(self.directory), "error": str(exc)})
            return
        if loaded:
            log.info("webhook certificate loaded", extra={"directory": str(self.directory)})
