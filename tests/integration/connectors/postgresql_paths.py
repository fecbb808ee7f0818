"""The PostgreSQL sink's write paths, each forced on its own through :class:`SinkTuning`."""

from __future__ import annotations

from dataflow_operator.connectors.postgresql.tuning import SinkTuning

#: COPY into the table, falling back to INSERT when a row is refused (production).
COPY = SinkTuning()
#: One INSERT … SELECT with the rows as a JSON array parameter.
PARAMETER = SinkTuning(copy_first=False)
#: COPY of the payloads into a temp stage, then INSERT … SELECT.
STAGE = SinkTuning(copy_first=False, parameter_max_bytes=0)
