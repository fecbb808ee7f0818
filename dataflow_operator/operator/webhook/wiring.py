"""The webhook as the operator runs it: options, certificate source and listener started together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from ..kube import KubeClient
from .certificates import FileCertificates, SecretCertificates
from .pki import CA_VALIDITY, CERT_VALIDITY, PROPAGATION, Policy
from .server import WebhookServer


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """``--webhook-*`` of ``dataflow-operator run``. Exactly one of ``cert_dir`` (certificates
    written by cert-manager) and ``secret`` (the operator's own, in ``secret_namespace``)."""

    bind_address: str = ":9443"
    cert_dir: str | None = None
    secret: str | None = None
    secret_namespace: str | None = None      # else $OPERATOR_NAMESPACE
    configuration: str | None = None         # the ValidatingWebhookConfiguration whose caBundle to fill
    service: str | None = None               # the Service name the certificate is issued for
    hosts: tuple[str, ...] = ()              # more names or IPs for the certificate
    refresh_interval: float = 60.0
    ca_validity: timedelta = CA_VALIDITY
    cert_validity: timedelta = CERT_VALIDITY
    propagation: timedelta = PROPAGATION

    def certificate_hosts(self, namespace: str) -> list[str]:
        names = [f"{self.service}.{namespace}.svc", f"{self.service}.{namespace}.svc.cluster.local",
                 f"{self.service}.{namespace}", self.service] if self.service else []
        return [*names, *self.hosts]


class Webhook:
    """The certificate source and the listener; :meth:`start` binds and serves, :meth:`stop` stops
    both. Options are checked on construction (ValueError), the port is bound by :meth:`start`
    (OSError), as the operator's other servers do."""

    def __init__(self, options: WebhookOptions, kube: KubeClient, environ: Mapping[str, str]) -> None:
        if (options.cert_dir is None) == (options.secret is None):
            raise ValueError("the webhook needs exactly one of --webhook-cert-dir and --webhook-secret")
        self.certificates: FileCertificates | SecretCertificates
        if options.cert_dir is not None:
            self.certificates = FileCertificates(options.cert_dir, interval=min(options.refresh_interval, 10.0))
        else:
            assert options.secret is not None
            namespace = options.secret_namespace or environ.get("OPERATOR_NAMESPACE", "").strip()
            if not namespace:
                raise ValueError("the webhook's Secret needs --webhook-secret-namespace or OPERATOR_NAMESPACE")
            hosts = options.certificate_hosts(namespace)
            if not hosts:
                raise ValueError("the webhook's certificate needs --webhook-service (the names it is issued for)")
            self.certificates = SecretCertificates(
                kube, namespace=namespace, secret=options.secret, configuration=options.configuration,
                hosts=hosts, interval=options.refresh_interval,
                policy=Policy(ca_validity=options.ca_validity, cert_validity=options.cert_validity,
                              propagation=options.propagation))
        self.bind_address = options.bind_address
        self.server: WebhookServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None, "not started"
        return self.server.port

    def start(self) -> Webhook:
        self.server = WebhookServer(self.bind_address, self.certificates).start()
        self.certificates.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.certificates.stop()
