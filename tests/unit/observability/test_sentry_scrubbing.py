"""Sentry events leave scrubbed: exception texts, log messages, breadcrumbs and frame variables.
The events are caught by a transport of our own, the SDK's seam for where envelopes go."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from dataflow_operator.observability import sentry
from dataflow_operator.observability.redaction import register_secrets
from tests.unit.observability.leaks import leaked

# Built, not written out: Sentry sends the source lines around each frame, this file's included.
PASSWORD = "@".join(("p", "ss?w#rd%20x y"))
DSN = f"postgresql://app:{PASSWORD}@127.0.0.1:1/db"


class CapturingTransport(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def text(self) -> str:
        return "\n".join(item.get_bytes().decode("utf-8") for envelope in self.envelopes for item in envelope.items)


@pytest.fixture
def transport(monkeypatch: pytest.MonkeyPatch) -> Iterator[CapturingTransport]:
    capturing = CapturingTransport()
    real_init = sentry_sdk.init

    def init_with_transport(**options: Any) -> None:
        real_init(transport=capturing, **options)

    monkeypatch.setattr(sentry_sdk, "init", init_with_transport)
    monkeypatch.setenv("SENTRY_DSN", "https://public@sentry.invalid/1")
    assert sentry.setup_sentry("processor")
    yield capturing
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # a disabled client again


def _fail_with(dsn: str) -> None:
    connection_string = dsn  # a frame variable, which Sentry sends with the frame
    raise RuntimeError(f"cannot connect with {connection_string}")


def test_events_breadcrumbs_and_frame_variables_are_scrubbed(transport: CapturingTransport) -> None:
    register_secrets([PASSWORD, DSN])
    logging.getLogger("dataflow_operator.test").warning("about to use %s", DSN)  # a breadcrumb
    try:
        _fail_with(DSN)
    except RuntimeError as exc:
        sentry.report(exc)
    text = transport.text()
    assert "cannot connect with [REDACTED]" in text and "about to use [REDACTED]" in text
    assert leaked(text, PASSWORD) == []
