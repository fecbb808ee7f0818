from collections.abc import Iterator

import pytest

from dataflow_operator.observability.redaction import SECRETS

pytest_plugins = ["tests.peers.fixtures"]


@pytest.fixture(autouse=True)
def empty_secret_registry() -> Iterator[None]:
    """The secret registry is process-wide: a secret one test registered (say "p") would be scrubbed
    from the texts every later test asserts on."""
    SECRETS.clear()
    yield
    SECRETS.clear()
