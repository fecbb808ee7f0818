"""Peers for the single-node cluster tests: Kafka and PostgreSQL where the pods reach them, on the
node bridge's host address (the session-wide `kafka` and `postgres` fixtures listen on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.cluster import LocalCluster
from tests.peers.fixtures import running_kafka, running_postgres
from tests.peers.kafka import KafkaBroker
from tests.peers.postgres import PostgresServer


@pytest.fixture(scope="session")
def node_kafka(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    yield from running_kafka(tmp_path_factory.mktemp("node-kafka"), host=cluster.network.host_ip)


@pytest.fixture(scope="session")
def node_postgres(cluster: LocalCluster) -> Iterator[PostgresServer]:
    yield from running_postgres(host=cluster.network.host_ip)
