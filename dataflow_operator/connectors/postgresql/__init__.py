"""PostgreSQL polling source and batch sink on psycopg 3, connectors.md §2.2.

The connectors load on first use (PEP 562), so that :mod:`.settings` serves spec validation
without importing psycopg.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"PostgreSQLSink": ".sink", "PostgreSQLSource": ".source"}
__all__ = ["PostgreSQLSink", "PostgreSQLSource"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
