"""A throw-away PostgreSQL cluster on 127.0.0.1 with trust auth."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.peers.process import ManagedProcess, PeerStartError, free_port, wait_until

START_DEADLINE_S = 60.0
STOP_TIMEOUT_S = 30.0


def _unprivileged_ids() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root; when we are root, run it as `postgres` (or `nobody`)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise PeerStartError("running as root and neither a `postgres` nor a `nobody` user exists")


class PostgresServer:
    """`dsn`, `port`, `stop()`, `start()` (same port and data dir) and `new_database()`."""

    def __init__(self, bindir: Path, host: str = "127.0.0.1") -> None:
        self.bindir = bindir
        # `host`: where clients reach it; the test cluster's pods reach the bridge's host address.
        self.host = host
        self.port = free_port(host)
        # Not under pytest's tmp_path: that is mode 0700 and owned by root, which the unprivileged
        # server user could not traverse.
        self.base_dir = Path(tempfile.mkdtemp(prefix="dataflow-pg-"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "sock"
        self.log_path = self.base_dir / "postgres.log"
        self._ids = _unprivileged_ids()
        self._db_counter = itertools.count(1)
        self._process = ManagedProcess(
            "postgres",
            [self.bindir / "postgres", "-D", self.data_dir, "-p", str(self.port), "-k", self.socket_dir,
             "-c", f"listen_addresses={host}",
             # A test cluster: durability is not under test here, speed is welcome.
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200", "-c", "log_min_messages=warning"],
            self.log_path,
            user=self._ids[0] if self._ids else None,
            group=self._ids[1] if self._ids else None,
        )
        self._initdb()

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def _initdb(self) -> None:
        self.socket_dir.mkdir(parents=True)
        self.log_path.touch()
        if self._ids:
            for path in (self.base_dir, self.socket_dir, self.log_path):
                os.chown(path, *self._ids)
        result = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            capture_output=True, text=True, check=False,
            user=self._ids[0] if self._ids else None, group=self._ids[1] if self._ids else None,
        )
        if result.returncode != 0:
            raise PeerStartError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        if self.host != "127.0.0.1":
            # initdb trusts loopback only; clients on the host's subnet (the test cluster's pods) too.
            with (self.data_dir / "pg_hba.conf").open("a") as hba:
                hba.write("host all all samenet trust\n")

    def _answers(self) -> bool:
        with psycopg.connect(self.dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def start(self) -> None:
        """Start (or restart after `stop()`) on the same port and data directory; no-op if running."""
        if self._process.alive():
            return
        self._process.start()
        wait_until(self._answers, deadline_s=START_DEADLINE_S, what="PostgreSQL accepts connections",
                   process=self._process)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: disconnect clients, checkpoint), as for a server going away."""
        self._process.stop(signal.SIGINT, timeout_s=STOP_TIMEOUT_S)

    def new_database(self) -> str:
        """A fresh empty database, so tests sharing the cluster do not collide; returns its DSN."""
        name = f"test_{os.getpid()}_{next(self._db_counter)}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
