"""A single-node KRaft Apache Kafka broker (combined broker + controller) on 127.0.0.1.

With :class:`KafkaSecurity` the broker also listens with TLS (``SSL``) and with SASL
(``SASL_PLAINTEXT``: SCRAM-SHA-256 and PLAIN) for the clients under test; the fixture's own admin
client keeps the plaintext listener.
"""

from __future__ import annotations

import base64
import itertools
import logging
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
from confluent_kafka.cimpl import NewTopic

from tests.peers.process import ManagedProcess, PeerStartError, free_port, wait_until

START_DEADLINE_S = 120.0
STOP_TIMEOUT_S = 60.0
TOPIC_DEADLINE_S = 30.0
NODE_ID = 1

# Kafka is quiet at WARN except for the lines that explain a failed start.
LOG4J2_PROPERTIES = """\
status = warn
# Kafka installs its own SIGTERM handling; Log4j's hook only races it and warns on every stop.
shutdownHook = disable
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.raft.name = org.apache.kafka.raft
logger.raft.level = warn
logger.log.name = org.apache.kafka.storage.internals.log
logger.log.level = warn
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = warn
"""


@dataclass(frozen=True)
class KafkaSecurity:
    """TLS material for the ``SSL`` listener (a PEM CA, certificate and PKCS#8 key) and the users of
    the ``SASL_PLAINTEXT`` listener, name → password, for both SCRAM-SHA-256 and PLAIN."""

    ca: Path
    certificate: Path
    key: Path
    users: dict[str, str] = field(default_factory=dict)


def _cluster_id() -> str:
    # Kafka's Uuid text form: URL-safe base64 of 16 random bytes, unpadded (what `random-uuid` prints);
    # generated here to save a JVM start.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaBroker:
    """`bootstrap`, `stop()`, `start()` (same port and log dir), `create_topic()`, `new_topic()`."""

    def __init__(self, java: str, libs_dir: Path, base_dir: Path, host: str = "127.0.0.1",
                 security: KafkaSecurity | None = None) -> None:
        # `host`: where clients reach it; the test cluster's pods reach the bridge's host address.
        self.host = host
        self.port = free_port(host)
        self.controller_port = free_port(host)
        self.security = security
        self.tls_port = free_port(host) if security else None
        self.sasl_port = free_port(host) if security else None
        self.base_dir = base_dir
        self.log_dirs = base_dir / "kraft-logs"
        self.config_path = base_dir / "server.properties"
        self.log4j_path = base_dir / "log4j2.properties"
        self.log_path = base_dir / "kafka.log"
        self._topic_counter = itertools.count(1)
        self._admin: AdminClient | None = None
        base_dir.mkdir(parents=True, exist_ok=True)
        self.log4j_path.write_text(LOG4J2_PROPERTIES)
        self.config_path.write_text(self._server_properties())
        jvm: list[str | Path] = [java, "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={self.log4j_path}", "-cp", f"{libs_dir}/*"]
        self._jvm = jvm
        self._process = ManagedProcess("kafka", [*jvm, "kafka.Kafka", self.config_path], self.log_path)
        self._format_storage()

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def tls_bootstrap(self) -> str:
        assert self.tls_port is not None, "started without KafkaSecurity"
        return f"{self.host}:{self.tls_port}"

    @property
    def sasl_bootstrap(self) -> str:
        assert self.sasl_port is not None, "started without KafkaSecurity"
        return f"{self.host}:{self.sasl_port}"

    def _listeners(self) -> dict[str, int]:
        """Listener name (= its security protocol) → port, the controller's excepted."""
        listeners = {"PLAINTEXT": self.port}
        if self.tls_port is not None and self.sasl_port is not None:
            listeners.update({"SSL": self.tls_port, "SASL_PLAINTEXT": self.sasl_port})
        return listeners

    def _security_properties(self) -> dict[str, str]:
        security = self.security
        if security is None:
            return {}
        # Kafka's PEM keystore is one file: the private key, then the certificate chain.
        keystore = self.base_dir / "keystore.pem"
        keystore.write_text(security.key.read_text() + security.certificate.read_text())
        keystore.chmod(0o600)
        plain_users = " ".join(f'user_{name}="{password}"' for name, password in security.users.items())
        return {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(security.ca),
            "ssl.client.auth": "none",
            "sasl.enabled.mechanisms": "SCRAM-SHA-256,PLAIN",
            "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config":
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};",
        }

    def _server_properties(self) -> str:
        listeners = self._listeners()
        advertised = ",".join(f"{name}://{self.host}:{port}" for name, port in listeners.items())
        protocols = ",".join(f"{name}:{name}" for name in listeners)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@{self.host}:{self.controller_port}",
            "listeners": f"{advertised},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": advertised,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": f"{protocols},CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dirs),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "true",
            # One broker: every internal topic has replication factor 1.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Few internal partitions: the first consumer group is ready in a second, not fifty.
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.num.partitions": "1",
            # Consumer groups rebalance at once instead of waiting 3 s for more members.
            "group.initial.rebalance.delay.ms": "0",
            "log.flush.interval.messages": "9223372036854775807",
            "delete.topic.enable": "true",
            **self._security_properties(),
        }
        return "".join(f"{key}={value}\n" for key, value in props.items())

    def _format_storage(self) -> None:
        # --cluster-id=ID, not "-t ID": one id in 64 starts with "-", which argparse4j takes for an option.
        formatter = ManagedProcess(
            "kafka-storage-format",
            [*self._jvm, "kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}", "-c", self.config_path,
             "--ignore-formatted"],
            self.base_dir / "format.log",
        )
        formatter.start()
        try:
            wait_until(lambda: formatter.returncode() is not None, deadline_s=START_DEADLINE_S,
                       what="storage is formatted")
        finally:
            formatter.stop()
        if formatter.returncode() != 0:
            raise formatter.failure("could not format the KRaft storage")

    def admin(self) -> AdminClient:
        """The fixture's own admin client. Its librdkafka logs go to Python logging (captured by pytest)
        rather than stderr, where its reconnect attempts would flood fault tests that stop the broker."""
        if self._admin is None:
            config: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 10000,
                                      "logger": logging.getLogger("tests.peers.kafka.admin")}
            self._admin = AdminClient(config)
        return self._admin

    def _port_open(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1):
            return True

    def _broker_registered(self) -> bool:
        return NODE_ID in self.admin().list_topics(timeout=5).brokers

    def start(self) -> None:
        """Start (or restart after `stop()`) on the same ports and log dirs; no-op if running."""
        if self._process.alive():
            return
        self._process.start()
        # The listener first (cheap to poll), then the broker's registration with the controller.
        wait_until(self._port_open, deadline_s=START_DEADLINE_S, what="the broker listens",
                   process=self._process)
        wait_until(self._broker_registered, deadline_s=START_DEADLINE_S, what="the broker answers metadata",
                   process=self._process)
        if self.security is not None and self.security.users:
            self._add_scram_users(self.security.users)

    def _add_scram_users(self, users: dict[str, str]) -> None:
        """SCRAM credentials live in the cluster metadata: upserted through the plaintext listener,
        then waited for until a SCRAM login on the SASL listener succeeds."""
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096)
        upserts = [UserScramCredentialUpsertion(name, info, password.encode()) for name, password in users.items()]
        for future in self.admin().alter_user_scram_credentials(upserts).values():
            future.result(timeout=TOPIC_DEADLINE_S)
        name, password = next(iter(users.items()))

        def scram_login_works() -> bool:
            consumer = Consumer({"bootstrap.servers": self.sasl_bootstrap, "group.id": "scram-probe",
                                 "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
                                 "sasl.username": name, "sasl.password": password,
                                 "logger": logging.getLogger("tests.peers.kafka.probe")})
            try:
                return NODE_ID in consumer.list_topics(timeout=5).brokers
            finally:
                consumer.close()

        wait_until(scram_login_works, deadline_s=TOPIC_DEADLINE_S, what="SCRAM credentials are in effect",
                   process=self._process)

    def stop(self) -> None:
        """Controlled shutdown (SIGTERM), as when a broker is taken down."""
        self._process.stop(timeout_s=STOP_TIMEOUT_S)

    def create_topic(self, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> None:
        new_topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
        futures = self.admin().create_topics([new_topic], operation_timeout=TOPIC_DEADLINE_S)
        futures[name].result(timeout=TOPIC_DEADLINE_S)

        def leaders_elected() -> bool:
            topic = self.admin().list_topics(topic=name, timeout=5).topics.get(name)
            return (topic is not None and topic.error is None and len(topic.partitions) == partitions
                    and all(part.leader >= 0 for part in topic.partitions.values()))

        wait_until(leaders_elected, deadline_s=TOPIC_DEADLINE_S, what=f"topic {name} has leaders",
                   process=self._process)

    def new_topic(self, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        """Create a topic with a unique name, so tests sharing the broker do not collide."""
        name = f"test-{next(self._topic_counter)}-{uuid.uuid4().hex[:8]}"
        self.create_topic(name, partitions, config)
        return name

    def close(self) -> None:
        self._admin = None
        self.stop()

    def tail(self) -> str:
        return self._process.tail()


__all__ = ["KafkaBroker", "KafkaSecurity", "PeerStartError"]
