"""A loopback port nothing listens on, and connecting to it without any name resolution."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dataflow_operator.connectors.postgresql.connection import connect


def closed_port() -> int:
    """A port that was free a moment ago; nothing in the test listens on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def loopback_only() -> Iterator[None]:
    """libpq dials 127.0.0.1 whatever host a malformed string yields (PGHOSTADDR), so no name is
    ever looked up and no packet leaves the machine."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGHOSTADDR", "127.0.0.1")
        for variable in ("PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGSSLMODE"):
            patch.delenv(variable, raising=False)
        yield


def connect_error(dsn: str) -> str:
    """The text of the error connect() raises for ``dsn``, with its chained causes."""
    with loopback_only():
        try:
            connect(dsn, timeout=5).close()
        except Exception as exc:
            texts, cause = [], exc
            while cause is not None:
                texts.append(f"{type(cause).__name__}: {cause}")
                cause = cause.__cause__
            return "\n".join(texts)
    raise AssertionError("connected to a port nothing listens on")
