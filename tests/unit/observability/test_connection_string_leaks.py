"""Adversary properties: for any password, in any connection string shape (valid or malformed), no
piece of it (four characters or more, as typed, decoded or percent-encoded) survives in ``scrub()``
output, in a JSON log line (message, extra field, traceback) or in the error ``connect()`` raises
against a closed loopback port.

Each output is compared with the same output for a placeholder password, so that a piece that the
message shows anyway (``127.0.0.1``, ``[REDACTED]``) is not taken for a leak.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow_operator.observability.logging import setup_logging
from dataflow_operator.observability.redaction import SECRETS, register_secrets, scrub
from dataflow_operator.spec.secrets import secret_values
from tests.unit.observability.closed_port import closed_port, connect_error
from tests.unit.observability.leaks import SHAPES, Shape, json_log_text, leaked, passwords, placeholder_for

shapes = st.sampled_from(SHAPES)
PORT = closed_port()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _learn(dsn: str) -> None:
    """What the processor does with a spec: register its secrets, here from a PostgreSQL sink."""
    SECRETS.clear()
    register_secrets(secret_values({"sink": {"type": "postgresql", "config": {"connectionString": dsn}}}))


@SETTINGS
@given(shapes, passwords)
def test_scrub_leaves_no_piece_of_the_password(shape: Shape, password: str) -> None:
    dsn = shape.build(password, PORT)
    _learn(dsn)
    # The same texts around a placeholder password: a piece they show anyway (the word "password"
    # when the password is "0pass") is not a leak.
    placeholder = placeholder_for(password)
    controls = _texts(shape.build(placeholder, PORT), placeholder)
    for text, control in zip(_texts(dsn, password), controls, strict=True):
        assert leaked(scrub(text), password, f"{control} [REDACTED]") == [], (dsn, text)


def _texts(dsn: str, password: str) -> tuple[str, ...]:
    return dsn, f"failed: {dsn!r}", f"url={dsn}&more", f"password {password} was refused"


@contextmanager
def _json_logging() -> Iterator[io.StringIO]:
    """The processor's logging (setup_logging) writing to a buffer; everything it changed restored."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.stderr, sys.excepthook, threading.excepthook)
    buffer = io.StringIO()
    sys.stderr = buffer
    try:
        setup_logging(role="processor")
        yield buffer
    finally:
        root.handlers[:], level, sys.stderr, sys.excepthook, threading.excepthook = saved
        root.setLevel(level)
        logging.captureWarnings(False)


def _log_everywhere(dsn: str) -> str:
    with _json_logging() as buffer:
        log = logging.getLogger("dataflow_operator.test")
        log.warning("connecting to %s", dsn)
        log.warning("connecting", extra={"dsn": dsn, "nested": {"tries": [dsn, 1]}})
        try:
            raise RuntimeError(f"cannot use {dsn}")
        except RuntimeError:
            log.exception("failed")
    return json_log_text(buffer.getvalue())


@SETTINGS
@given(shapes, passwords)
def test_json_log_lines_leave_no_piece_of_the_password(shape: Shape, password: str) -> None:
    dsn = shape.build(password, PORT)
    _learn(dsn)
    output = _log_everywhere(dsn)
    control_dsn = shape.build(placeholder_for(password), PORT)
    _learn(control_dsn)
    control = _log_everywhere(control_dsn)
    assert leaked(output, password, control) == [], (dsn, output)


@SETTINGS
@given(shapes, passwords)
def test_connect_errors_leave_no_piece_of_the_password(shape: Shape, password: str) -> None:
    """connect() registers what it is given: nothing else has to have seen the string before."""
    dsn = shape.build(password, PORT)
    SECRETS.clear()
    error = connect_error(dsn)
    SECRETS.clear()
    control = connect_error(shape.build(placeholder_for(password), PORT))
    assert leaked(error, password, control) == [], (dsn, error)
