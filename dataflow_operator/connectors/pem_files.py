"""TLS material given inline in a spec, turned into files that client libraries can open.

The operator resolves ``caSecretRef``/``certSecretRef``/``keySecretRef`` into ``caFile``/``certFile``/
``keyFile`` holding PEM *content* (connectors.md §2.0): the processor, not the operator, writes that
content to private files, because a path written in the operator's pod means nothing here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

PEM_MARKER = "-----BEGIN"


def is_pem_content(value: str) -> bool:
    return value.lstrip().startswith(PEM_MARKER)


class PemFiles:
    """Owns the temp files it writes; :meth:`cleanup` removes them (idempotent)."""

    def __init__(self, prefix: str = "dataflow-tls-") -> None:
        self._prefix = prefix
        self._paths: list[str] = []

    def path_for(self, value: str) -> str:
        """A path to ``value``: the value itself when it is a path, else a 0600 file holding it."""
        if not is_pem_content(value):
            return value
        # mkstemp creates the file with mode 0600, so a private key is never readable by others.
        fd, path = tempfile.mkstemp(prefix=self._prefix, suffix=".pem")
        self._paths.append(path)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        return path

    def cleanup(self) -> None:
        paths, self._paths = self._paths, []
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
