"""Sentry for both roles, configured only from ``SENTRY_*`` (off when ``SENTRY_DSN`` is empty).

Every event, transaction and breadcrumb is scrubbed of registered secret values just before it is
sent (:func:`scrub_event`): exception texts, log messages and their arguments, and the local
variables Sentry captures with each frame, which is where a connection string sits. The SDK cuts
strings only when ``max_value_length`` is set, which is never done here: a cut secret could no
longer be recognised.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import sentry_sdk

from .redaction import scrub_value

log = logging.getLogger(__name__)

SENTRY_VARIABLES = ("SENTRY_DSN", "SENTRY_ENVIRONMENT", "SENTRY_TRACES_SAMPLE_RATE", "SENTRY_DEBUG",
                    "SENTRY_RELEASE")


def setup_sentry(role: str) -> bool:
    dsn = os.environ.get("SENTRY_DSN", "").strip()
    if not dsn:
        return False
    try:
        rate = float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0") or 0)
    except ValueError:
        log.warning("SENTRY_TRACES_SAMPLE_RATE is not a number; tracing disabled")
        rate = 0.0
    sentry_sdk.init(
        dsn=dsn,
        environment=os.environ.get("SENTRY_ENVIRONMENT") or None,
        release=os.environ.get("SENTRY_RELEASE") or None,
        traces_sample_rate=min(max(rate, 0.0), 1.0),
        debug=os.environ.get("SENTRY_DEBUG", "").strip().lower() in ("1", "true", "yes"),
        send_default_pii=False,
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=scrub_event,
    )
    sentry_sdk.set_tag("role", role)
    log.info("sentry enabled", extra={"role": role})
    return True


def scrub_event(event: Any, _hint: Any) -> Any:
    """An event (or breadcrumb) with every string in it scrubbed, keys included."""
    return scrub_value(event)


def report(exc: BaseException) -> None:
    """Report an unhandled failure and wait briefly so it leaves before the process exits."""
    if sentry_sdk.get_client().is_active():
        sentry_sdk.capture_exception(exc)
        sentry_sdk.flush(timeout=5)
