"""Turns any exception into one ``error_type`` of the closed set in the metric contract, and says
whether it is about the message or about the environment.

Dashboards and alerts filter on these values, so nothing outside ``ERROR_TYPES`` may be produced.
Connectors may raise :class:`ClassifiedError` to state the type themselves.

The second question decides what happens to the message (docs/delivery.md): a failure of the
*environment* (no space left, an I/O error, a lost connection, refused credentials, a table that
disappeared) says nothing about the data, so the message is never diverted to the error sink and
never acknowledged; only a failure the *message* causes is.
"""

from __future__ import annotations

import errno
import json
import socket
import ssl

ERROR_TYPES = (
    "context_canceled",
    "timeout",
    "connection_error",
    "constraint_violation",
    "invalid_data",
    "transient",
    "auth_error",
    "unknown",
)

_TIMEOUT_WORDS = ("timeout", "timed out", "deadline exceeded")
_CONNECTION_WORDS = ("connection refused", "connection reset", "broken pipe", "could not connect",
                     "connection closed", "server closed the connection", "all brokers down",
                     "network is unreachable", "no route to host", "transport", "name or service not known")
_AUTH_WORDS = ("authentication", "password", "permission denied", "unauthorized", "forbidden",
               "sasl", "not authorized")


#: OS errors that are the machine's state, not the data's: the write may succeed once it changes.
_ENVIRONMENT_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EMFILE,
    errno.ENFILE, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ESTALE, errno.EAGAIN, errno.EBADF,
})
#: error_type values that describe the peer or the machine rather than the message.
ENVIRONMENTAL_TYPES = frozenset({"timeout", "connection_error", "auth_error", "transient", "context_canceled"})


class ClassifiedError(Exception):
    """An error whose ``error_type`` is known where it is raised. ``environmental`` overrides what
    the type alone says (a client library's "unknown" state is still not the message's fault)."""

    def __init__(self, message: str, error_type: str, *, environmental: bool | None = None) -> None:
        if error_type not in ERROR_TYPES:
            raise ValueError(f"unknown error_type {error_type!r}")
        super().__init__(message)
        self.error_type = error_type
        self.environmental = error_type in ENVIRONMENTAL_TYPES if environmental is None else environmental


class EnvironmentalError(ClassifiedError):
    """A failure of the environment (disk, network, credentials, a missing table) whatever its
    ``error_type``: the message is never blamed for it."""

    def __init__(self, message: str, error_type: str = "transient") -> None:
        super().__init__(message, error_type, environmental=True)


class InvalidDataError(ClassifiedError):
    """The payload cannot be taken as it is (not JSON, wrong shape, bad value)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "invalid_data")


def classify(exc: BaseException) -> str:
    """The ``error_type`` label for ``exc``: explicit first, then by exception class, then by text."""
    if isinstance(exc, ClassifiedError):
        return exc.error_type
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:
        return "transient"
    if isinstance(exc, RecursionError):
        return "invalid_data"  # a document nested deeper than the interpreter can walk
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError, KeyError)):
        return "invalid_data"
    if isinstance(exc, ssl.SSLError):
        return "connection_error"
    if isinstance(exc, PermissionError):
        return "auth_error"
    if isinstance(exc, (ConnectionError, socket.gaierror)):
        return "connection_error"
    text = str(exc).lower()
    if any(word in text for word in _TIMEOUT_WORDS):
        return "timeout"
    if any(word in text for word in _AUTH_WORDS):
        return "auth_error"
    if any(word in text for word in _CONNECTION_WORDS):
        return "connection_error"
    return "unknown"


def is_environmental(exc: BaseException) -> bool:
    """True when ``exc`` is about the sink, the network or the machine, not about the message: such
    a failure never sends a message to the error sink and never acknowledges it."""
    if isinstance(exc, ClassifiedError):
        return exc.environmental
    if isinstance(exc, OSError) and not isinstance(exc, UnicodeError):
        return True  # every OSError that reaches a writer is the file system's or the network's
    return classify(exc) in ENVIRONMENTAL_TYPES


def is_retryable(exc: BaseException) -> bool:
    """Errors worth another attempt (3 attempts, 0.5 s doubling): timeouts, as the spec says, and
    lost connections and transient server states, which a reconnect on the next attempt may cure."""
    return classify(exc) in ("timeout", "connection_error", "transient")
