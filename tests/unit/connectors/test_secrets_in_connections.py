"""Secrets stay out of what a PostgreSQL connection says about itself, for every connection string
in the hostile corpus (hostile_connection_strings.json: add each string a bug report brings); PEM
content only in private files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataflow_operator.connectors.pem_files import PemFiles, is_pem_content
from dataflow_operator.connectors.postgresql.connection import UNPARSABLE, describe_connection
from dataflow_operator.observability.connection_strings import connection_string_secrets
from dataflow_operator.observability.redaction import SECRETS, register_secrets, scrub
from tests.unit.observability.closed_port import closed_port, connect_error
from tests.unit.observability.leaks import leaked, placeholder_for

CORPUS = json.loads((Path(__file__).with_name("hostile_connection_strings.json")).read_text(encoding="utf-8"))


def _dsn(case: dict[str, str], port: int, password: str | None = None) -> str:
    dsn = case["dsn"].replace("{port}", str(port))
    return dsn if password is None else dsn.replace(case["password"], password)


@pytest.mark.parametrize("case", CORPUS, ids=[case["note"] for case in CORPUS])
def test_connect_errors_carry_no_piece_of_the_password(case: dict[str, str]) -> None:
    port = closed_port()
    error = connect_error(_dsn(case, port))
    SECRETS.clear()
    control = connect_error(_dsn(case, port, placeholder_for(case["password"])))
    assert leaked(error, case["password"], control) == [], error
    assert _dsn(case, port) not in error


@pytest.mark.parametrize("case", CORPUS, ids=[case["note"] for case in CORPUS])
def test_scrub_removes_the_password_in_every_form(case: dict[str, str]) -> None:
    dsn = _dsn(case, 5432)
    register_secrets(connection_string_secrets(dsn))
    for text in (dsn, case["password"], f"connecting with {dsn!r} failed", describe_connection(dsn)):
        assert leaked(scrub(text), case["password"], "[REDACTED]") == [], text


@pytest.mark.parametrize(("dsn", "description"), [
    ("postgresql://app:s3cr%40t@db:5432/x?sslmode=require", "host=db port=5432 dbname=x"),
    ("host=db user=app password='a b\\' c' dbname=x", "host=db dbname=x"),
    ("postgresql://db/x?user=app&password=s3cret", "host=db dbname=x"),
    ("postgresql://app:pw@db:5432/x?bogus=1", UNPARSABLE),
    ("host=db password=s3cret dbname", UNPARSABLE),
])
def test_descriptions_are_built_from_parsed_parts_only(dsn: str, description: str) -> None:
    assert describe_connection(dsn) == description


def test_a_user_name_alone_is_not_taken_for_a_secret() -> None:
    """Over-scrubbing has a limit: without a password the user info is just a name."""
    assert connection_string_secrets("postgresql://postgres@127.0.0.1:5432/db") == {
        "postgresql://postgres@127.0.0.1:5432/db"}


def test_paths_are_used_as_they_are() -> None:
    files = PemFiles()
    assert files.path_for("/etc/ssl/ca.pem") == "/etc/ssl/ca.pem"
    assert is_pem_content("  -----BEGIN PRIVATE KEY-----\n...") and not is_pem_content("/k.pem")
    files.cleanup()


def test_a_short_piece_of_a_malformed_password_is_not_registered_on_its_own() -> None:
    """libpq reads "p" as the password here; scrubbing every "p" would make logs unreadable."""
    assert "p" not in connection_string_secrets("postgresql://app:p@ss?w#rd@127.0.0.1:5432/db")
    assert "pw" in connection_string_secrets("postgresql://app:pw@127.0.0.1:5432/db")
