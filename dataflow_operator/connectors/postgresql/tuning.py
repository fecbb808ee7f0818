"""How the PostgreSQL sink chooses its write path and waits out a lost connection.

Not spec fields: the production defaults are measured choices (bench/bench_postgresql_sink.py), and
the tests and the bench pass other values to exercise and time each write path on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SinkTuning:
    #: Offer each plain-insert batch to COPY before INSERT (off: every batch takes the INSERT paths).
    copy_first: bool = True
    #: Rows up to this many bytes go in one INSERT with the rows as a JSON array parameter: measured
    #: ~35 % faster than COPY into the stage plus INSERT … SELECT. Larger groups stream through COPY,
    #: so no single value grows without bound (0: every group goes through the stage).
    parameter_max_bytes: int = 4 * 1024 * 1024
    #: After a batch could not go by COPY (usually keys already written: a replay after a crash), this
    #: many batches go straight to INSERT … ON CONFLICT, so a stream of duplicates does not pay twice.
    copy_pause_batches: int = 16
    #: A lost connection is re-opened and the batch retried for ~15 s before the batch is given up
    #: on: a server restart should not send a whole batch to the error sink.
    reconnect_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)


PRODUCTION = SinkTuning()
