"""Secrets stay out of logs: masked connection strings; PEM content only in private files."""

from __future__ import annotations

import pytest

from dataflow_operator.connectors.pem_files import PemFiles, is_pem_content
from dataflow_operator.connectors.postgresql.connection import mask_dsn


@pytest.mark.parametrize(("dsn", "masked"), [
    ("postgresql://app:s3cr%40t@db:5432/x?sslmode=require", "postgresql://app:***@db:5432/x?sslmode=require"),
    ("postgres://app@db/x", "postgres://app@db/x"),
    ("host=db user=app password=s3cret dbname=x", "host=db user=app password=*** dbname=x"),
    ("host=db password='a b\\' c' dbname=x", "host=db password=*** dbname=x"),
    ("postgresql://db/x?user=app&password=s3cret&sslmode=disable",
     "postgresql://db/x?user=app&password=***&sslmode=disable"),
])
def test_passwords_are_masked(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked


def test_paths_are_used_as_they_are() -> None:
    files = PemFiles()
    assert files.path_for("/etc/ssl/ca.pem") == "/etc/ssl/ca.pem"
    assert is_pem_content("  -----BEGIN PRIVATE KEY-----\n...") and not is_pem_content("/k.pem")
    files.cleanup()
