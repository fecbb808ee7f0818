"""Peers for the single-node cluster tests: Kafka and PostgreSQL where the pods reach them, on the
node bridge's host address (the session-wide `kafka` and `postgres` fixtures listen on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers import paths, provision
from tests.peers.cluster import LocalCluster
from tests.peers.fixtures import require, unavailable
from tests.peers.kafka import KafkaBroker
from tests.peers.postgres import PostgresServer


@pytest.fixture(scope="session")
def node_kafka(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    require("kafka")
    java = paths.java_binary()
    if java is None:
        unavailable("kafka: no Java runtime (Kafka 4.x needs Java 17+)")
    broker = KafkaBroker(java, paths.kafka_libs_dir(), tmp_path_factory.mktemp("node-kafka"),
                         host=cluster.network.host_ip)
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="session")
def node_postgres(cluster: LocalCluster) -> Iterator[PostgresServer]:
    require("postgresql")
    bindir = provision.postgres_bindir()
    assert bindir is not None  # guaranteed by require()
    server = PostgresServer(bindir, host=cluster.network.host_ip)
    try:
        server.start()
        yield server
    finally:
        server.close()
