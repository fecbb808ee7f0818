"""PostgreSQL polling source and batch sink on psycopg 3, connectors.md §2.2."""

from .sink import PostgreSQLSink
from .source import PostgreSQLSource

__all__ = ["PostgreSQLSink", "PostgreSQLSource"]
