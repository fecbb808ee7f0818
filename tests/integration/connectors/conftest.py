"""PostgreSQL fixtures shared by the connector tests: one fresh database per test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest


@pytest.fixture(scope="module")
def dsn(postgres: Any) -> str:
    return str(postgres.new_database())


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn
