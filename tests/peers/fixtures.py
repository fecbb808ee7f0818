"""pytest fixtures that start real peers on 127.0.0.1 (registered by tests/conftest.py).

A peer that is not provisioned makes its tests skip with the reason, or fail under `CI=true` (CI must
never go green by skipping). A peer that is provisioned but does not start is an error, with the tail
of its log. Peer modules are imported lazily so that unit tests do not pay for the clients' imports.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

from tests.peers import paths, provision

if TYPE_CHECKING:
    from tests.peers.apiserver import KubeAPIServer
    from tests.peers.cluster import LocalCluster
    from tests.peers.kafka import KafkaBroker, KafkaSecurity
    from tests.peers.node_images import ProjectImage
    from tests.peers.postgres import PostgresServer
    from tests.peers.prometheus import PrometheusServer

PrometheusFactory = Callable[..., "PrometheusServer"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def unavailable(reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing peer fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def require(*peers: str) -> None:
    """Skip (or fail in CI) unless every named peer is provisioned at its pinned version."""
    missing = [peer for peer in peers if not provision.peer_ready(peer)]
    if not missing:
        return
    details = [provision.last_error(peer) or f"{peer}: not provisioned" for peer in missing]
    unavailable("test peer(s) unavailable - run `python -m tests.peers provision`; " + "; ".join(details))


def running_postgres(host: str = "127.0.0.1") -> Iterator[PostgresServer]:
    """A PostgreSQL server for a fixture to yield, listening on ``host``."""
    require("postgresql")
    from tests.peers.postgres import PostgresServer

    bindir = provision.postgres_bindir()
    assert bindir is not None  # guaranteed by require()
    server = PostgresServer(bindir, host=host)
    try:
        server.start()
        yield server
    finally:
        server.close()


def running_kafka(base_dir: Path, host: str = "127.0.0.1",
                  security: KafkaSecurity | None = None) -> Iterator[KafkaBroker]:
    """A Kafka broker for a fixture to yield, listening on ``host`` (with TLS and SASL listeners too
    when ``security`` is given)."""
    require("kafka")
    java = paths.java_binary()
    if java is None:
        unavailable("kafka: no Java runtime (Kafka 4.x needs Java 17+)")
    from tests.peers.kafka import KafkaBroker

    broker = KafkaBroker(java, paths.kafka_libs_dir(), base_dir, host=host, security=security)
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """PostgreSQL 15: `.dsn`, `.port`, `.stop()`, `.start()`, `.new_database() -> dsn`."""
    yield from running_postgres()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """Single-node KRaft Kafka: `.bootstrap`, `.stop()`, `.start()`, `.create_topic()`, `.new_topic()`."""
    yield from running_kafka(tmp_path_factory.mktemp("kafka"))


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPIServer]:
    """etcd + kube-apiserver: `.url`, `.admin_kubeconfig`, `.kubeconfig_for(user)`, `.api_client()`,
    `.install_crds(path)`, `.restart()`, `.audit_log`."""
    require("etcd", "kube-apiserver")
    from tests.peers.apiserver import KubeAPIServer

    server = KubeAPIServer(paths.binary("kube-apiserver"), paths.binary("etcd"),
                           tmp_path_factory.mktemp("kube-apiserver"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextmanager
def prometheus_servers(base_dirs: Callable[[], Path],
                       server_class: type[PrometheusServer] | None = None) -> Iterator[PrometheusFactory]:
    """The factory behind the ``prometheus`` fixture, for any fixture scope: each call starts a
    ``server_class`` (default PrometheusServer) in a fresh directory from ``base_dirs``; every server
    started is stopped on exit."""
    require("prometheus")
    from tests.peers.prometheus import PrometheusServer

    cls = server_class or PrometheusServer
    servers: list[PrometheusServer] = []

    def start(scrape_targets: Sequence[str], scrape_interval: str = "1s",
              rule_files: Sequence[Path | str] = ()) -> PrometheusServer:
        server = cls(paths.binary("prometheus"), base_dirs(), scrape_targets, scrape_interval, rule_files)
        servers.append(server)  # before start(): a failed start is cleaned up too
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusFactory]:
    """Factory: `prometheus(scrape_targets, scrape_interval="1s", rule_files=())` -> started server
    with `.url`, `.query(promql)`, `.wait_for(promql, deadline_s)`; all stopped at teardown."""
    with prometheus_servers(lambda: tmp_path_factory.mktemp("prometheus")) as start:
        yield start


@pytest.fixture(scope="session")
def promtool() -> Path:
    """Path of the promtool binary."""
    require("prometheus")
    return paths.binary("promtool")


@pytest.fixture(scope="session")
def project_image() -> ProjectImage:
    """The image built from the repository's Dockerfile for the test node (`.ref`, `.tag`, `.archive`)."""
    require("node-images")
    from tests.peers import node_images

    log = paths.cache_dir() / "logs" / "project-image.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    return node_images.build_project_image(log)


@pytest.fixture(scope="session")
def cluster(project_image: ProjectImage) -> Iterator[LocalCluster]:
    """A real single-node cluster (tests/peers/cluster.py) with the project's image imported:
    `.apiserver`, `.network`, `.node_name`, `.log_dir`."""
    require(*provision.NODE_PEERS)
    if os.geteuid() != 0:
        unavailable("the test cluster needs root (network namespaces, mounts, cgroups, iptables)")
    from tests.peers.cluster import running_cluster

    with running_cluster(images=[project_image.archive]) as started:
        yield started


@pytest.fixture(scope="session")
def helm() -> Path:
    """Path of the helm 3 binary."""
    require("helm")
    return paths.binary("helm")
