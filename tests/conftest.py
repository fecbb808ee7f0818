from collections.abc import Iterator

import pytest
from hypothesis import settings

from dataflow_operator.observability.redaction import SECRETS

pytest_plugins = ["tests.peers.fixtures"]

# Hypothesis's per-example deadline (200 ms) is a timed assertion: on a shared 2-core machine an
# example that is fast alone takes seconds under load (seen in tox's lowest env), and the test then
# fails for the machine, not the code.
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")


@pytest.fixture(autouse=True)
def empty_secret_registry() -> Iterator[None]:
    """The secret registry is process-wide: a secret one test registered (say "p") would be scrubbed
    from the texts every later test asserts on."""
    SECRETS.clear()
    yield
    SECRETS.clear()
