"""etcd + kube-apiserver on 127.0.0.1, configured like controller-runtime's envtest, plus RBAC,
static-token identities and a JSON audit log. No scheduler, controller-manager or kubelet, unless
`for_node` says where the single-node test cluster (tests/peers/cluster.py) reaches it."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, cast

import requests
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from tests.peers import certs
from tests.peers.process import ManagedProcess, free_port, wait_until

START_DEADLINE_S = 120.0
CRD_DEADLINE_S = 60.0
STOP_TIMEOUT_S = 30.0

ADMIN_USER = "admin"
# Identities that exist (static token auth) but hold no rights until a test binds a Role to them;
# like any authenticated user they only get discovery and self-review (system:authenticated).
RESTRICTED_USERS = ("operator", "operator-2", "operator-3", "viewer", "nobody")

# One event per request at Metadata level (no bodies): RequestReceived is omitted so that counting
# writes per verb/user is a plain count of lines (long-running watches also log ResponseStarted).
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


KUBERNETES_SERVICE_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                            "kubernetes.default.svc.cluster.local")
_NO_NODE_FLAGS = (
    # No controller-manager mints service-account tokens, so pods must not require one.
    "--disable-admission-plugins=ServiceAccount",
    # No kubelets: there is no endpoint to reconcile for the `kubernetes` Service, and a loopback
    # address would fail Endpoints validation in a loop.
    "--endpoint-reconciler-type=none",
)


class NodeAddresses(Protocol):
    """Where pods reach the API server (tests/peers/node_network.NodeNetwork)."""

    @property
    def host_ip(self) -> str: ...

    @property
    def kubernetes_service_ip(self) -> str: ...


class Etcd:
    def __init__(self, binary: Path, base_dir: Path) -> None:
        self.port = free_port()
        peer_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._process = ManagedProcess("etcd", [
            binary, "--name=default", f"--data-dir={base_dir / 'etcd-data'}",
            f"--listen-client-urls={self.url}", f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            # As envtest: a test store does not need to survive power loss.
            "--unsafe-no-fsync=true", "--log-level=warn",
        ], base_dir / "etcd.log")

    def _healthy(self) -> bool:
        response = requests.get(f"{self.url}/health", timeout=2)
        return response.status_code == 200 and response.json().get("health") == "true"

    def start(self) -> None:
        self._process.start()
        wait_until(self._healthy, deadline_s=START_DEADLINE_S, what="etcd is healthy", process=self._process)

    def stop(self) -> None:
        self._process.stop(timeout_s=STOP_TIMEOUT_S)


class KubeAPIServer:
    """`url`, `admin_kubeconfig`, `kubeconfig_for(user)`, `api_client()`, `install_crds()`, `restart()`,
    `audit_log`."""

    def __init__(self, apiserver_binary: Path, etcd_binary: Path, base_dir: Path, *,
                 for_node: NodeAddresses | None = None) -> None:
        base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir = base_dir
        self.port = free_port()
        address = for_node.host_ip if for_node else "127.0.0.1"
        self.url = f"https://{address}:{self.port}"
        self.audit_log = base_dir / "audit.log"
        self.log_path = base_dir / "kube-apiserver.log"
        self.etcd = Etcd(etcd_binary, base_dir)
        pki = base_dir / "pki"
        pki.mkdir()
        hosts = ["127.0.0.1", "localhost"]
        if for_node:
            # As pods address it: through the `kubernetes` Service, by IP or by its DNS names.
            hosts += [for_node.host_ip, for_node.kubernetes_service_ip, *KUBERNETES_SERVICE_NAMES]
        self.ca_file, tls_cert, tls_key = certs.write_serving_pki(pki, hosts)
        self.service_account_key = sa_key = certs.write_service_account_key(pki / "sa.key")
        self._tokens = {user: secrets.token_hex(16) for user in (ADMIN_USER, *RESTRICTED_USERS)}
        token_file = base_dir / "tokens.csv"
        token_file.write_text("".join(
            f'{token},{user},{user},"{"system:masters" if user == ADMIN_USER else "dataflow:test"}"\n'
            for user, token in self._tokens.items()))
        token_file.chmod(0o600)
        policy_file = base_dir / "audit-policy.yaml"
        policy_file.write_text(yaml.safe_dump(AUDIT_POLICY))
        self._process = ManagedProcess("kube-apiserver", [
            apiserver_binary,
            # --- what envtest passes
            f"--advertise-address={address}", f"--bind-address={address}", f"--secure-port={self.port}",
            f"--etcd-servers={self.etcd.url}",
            f"--tls-cert-file={tls_cert}", f"--tls-private-key-file={tls_key}",
            "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
            f"--service-account-issuer={self.url}/",
            f"--service-account-key-file={sa_key}", f"--service-account-signing-key-file={sa_key}",
            # --- what this project's tests need on top
            "--authorization-mode=RBAC", f"--token-auth-file={token_file}",
            f"--audit-policy-file={policy_file}", f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            # Written before the response returns, so a test reading the log after a call sees it.
            "--audit-log-mode=blocking",
            "--profiling=false", "--v=1",
            # With a node the defaults apply: pods get service-account tokens, and the `kubernetes`
            # Service's endpoint is the advertised address, which pods reach through kube-proxy.
            *(() if for_node else _NO_NODE_FLAGS),
        ], self.log_path)
        self.admin_kubeconfig = self.kubeconfig_for(ADMIN_USER)

    # ---------------------------------------------------------------------------------------------
    # lifecycle

    def _ready(self) -> bool:
        response = requests.get(f"{self.url}/readyz", verify=str(self.ca_file), timeout=5,
                                headers={"Authorization": f"Bearer {self._tokens[ADMIN_USER]}"})
        return response.status_code == 200

    def _default_namespace_exists(self) -> bool:
        # Created by a post-start controller shortly after /readyz; tests expect it to be there.
        response = requests.get(f"{self.url}/api/v1/namespaces/default", verify=str(self.ca_file), timeout=5,
                                headers={"Authorization": f"Bearer {self._tokens[ADMIN_USER]}"})
        return response.status_code == 200

    def _start_apiserver(self) -> None:
        self._process.start()
        wait_until(self._ready, deadline_s=START_DEADLINE_S, what="/readyz is ok", process=self._process)
        wait_until(self._default_namespace_exists, deadline_s=START_DEADLINE_S,
                   what="namespace default exists", process=self._process)

    def start(self) -> None:
        """Start etcd and the API server (no-op for whichever is already running)."""
        self.etcd.start()
        self._start_apiserver()

    def restart(self) -> None:
        """Stop the API server process and start it again on the same port with the same etcd (which
        keeps running), as in an API server rollout: watches break, state survives."""
        self._process.stop(timeout_s=STOP_TIMEOUT_S)
        self._start_apiserver()

    def stop(self) -> None:
        self._process.stop(timeout_s=STOP_TIMEOUT_S)
        self.etcd.stop()

    def tail(self) -> str:
        return self._process.tail()

    # ---------------------------------------------------------------------------------------------
    # identities and clients

    def token_for(self, user: str) -> str:
        try:
            return self._tokens[user]
        except KeyError:
            raise KeyError(f"unknown test identity {user!r}; known: {', '.join(self._tokens)}") from None

    def kubeconfig_for(self, user: str) -> Path:
        """Kubeconfig authenticating as `user` (ADMIN_USER or one of RESTRICTED_USERS) with its token."""
        path = self.base_dir / f"kubeconfig-{user}.yaml"
        if not path.exists():
            kubeconfig = {
                "apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": self.url,
                                                          "certificate-authority": str(self.ca_file)}}],
                "users": [{"name": user, "user": {"token": self.token_for(user)}}],
                "contexts": [{"name": f"{user}@test", "context": {"cluster": "test", "user": user}}],
                "current-context": f"{user}@test",
            }
            path.write_text(yaml.safe_dump(kubeconfig))
            path.chmod(0o600)
        return path

    def api_client(self, kubeconfig: Path | str | None = None) -> k8s.ApiClient:
        """An official-client ApiClient for `kubeconfig` (the admin's by default)."""
        api_client = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.admin_kubeconfig))
        return cast(k8s.ApiClient, api_client)

    # ---------------------------------------------------------------------------------------------
    # CRDs

    def install_crds(self, source: Path | str) -> list[str]:
        """Create (or replace) every CustomResourceDefinition in a YAML/JSON file or directory and wait
        until each is Established and its resource answers a LIST; returns the CRD names."""
        documents = list(_crd_documents(Path(source)))
        if not documents:
            raise ValueError(f"no CustomResourceDefinition found in {source}")
        with self.api_client() as api_client:
            extensions = k8s.ApiextensionsV1Api(api_client)
            custom = k8s.CustomObjectsApi(api_client)
            for document in documents:
                name = document["metadata"]["name"]
                try:
                    extensions.create_custom_resource_definition(body=_crd_model(document))
                except ApiException as exc:
                    if exc.status != 409:
                        raise
                    current = extensions.read_custom_resource_definition(name)
                    assert current.metadata is not None
                    document["metadata"]["resourceVersion"] = current.metadata.resource_version
                    extensions.replace_custom_resource_definition(name, body=_crd_model(document))
            for document in documents:
                self._wait_crd_served(extensions, custom, document)
        return [document["metadata"]["name"] for document in documents]

    def _wait_crd_served(self, extensions: k8s.ApiextensionsV1Api, custom: k8s.CustomObjectsApi,
                         document: dict[str, Any]) -> None:
        name = document["metadata"]["name"]
        spec = document["spec"]

        def established() -> bool:
            status = extensions.read_custom_resource_definition(name).status
            conditions = (status.conditions if status else None) or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        wait_until(established, deadline_s=CRD_DEADLINE_S, what=f"CRD {name} is Established",
                   process=self._process)
        group, plural = spec["group"], spec["names"]["plural"]
        version = next(v["name"] for v in spec["versions"] if v.get("served", True))

        def served() -> bool:
            # Established can precede the handler serving the resource by a moment.
            if spec.get("scope") == "Namespaced":
                custom.list_namespaced_custom_object(group, version, "default", plural)
            else:
                custom.list_cluster_custom_object(group, version, plural)
            return True

        wait_until(served, deadline_s=CRD_DEADLINE_S, what=f"{name} answers LIST", process=self._process)


def _crd_model(document: dict[str, Any]) -> k8s.V1CustomResourceDefinition:
    model = k8s.V1CustomResourceDefinition.from_dict(document)
    if model is None:
        raise ValueError(f"not a CustomResourceDefinition: {document.get('metadata')}")
    return model


def _crd_documents(source: Path) -> Iterable[dict[str, Any]]:
    files = sorted(p for p in source.rglob("*") if p.suffix in {".yaml", ".yml", ".json"}) \
        if source.is_dir() else [source]
    for file in files:
        for document in yaml.safe_load_all(file.read_text()):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                yield document
