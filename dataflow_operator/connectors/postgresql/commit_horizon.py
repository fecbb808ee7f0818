"""Below which change-tracking value no row can still appear: the PostgreSQL source's *horizon*.

A row becomes visible when its transaction commits, but its change value is stamped earlier: ``now()``
is the transaction's start time, a sequence value is taken when ``nextval`` runs. A reader that has
passed a value may later see a row stamped below it. The horizon is the value below which that can
no longer happen, worked out from the transactions still running in the source's database:

* every running transaction holds a lock on its own virtual transaction id, which ``pg_locks``
  shows to every role (prepared transactions are listed in ``pg_prepared_xacts``);
* a transaction's start is ``pg_stat_activity.xact_start`` when the role may see it (its own
  sessions, superusers, ``pg_read_all_stats``); otherwise it is bounded by the previous
  observation: a transaction first seen now was not running then, so it started after it. A
  transaction already running at the source's first observation, whose start the role cannot see,
  holds the horizon until it ends.

For a date or timestamp column stamped by the server's clock in the writing transaction (``now()``,
``clock_timestamp()``, a trigger), values below the earliest start of a running transaction are
final. For a sequence-valued column (integer or numeric, filled by ``nextval`` of a sequence without
a per-session ``CACHE``), values taken after time *t* exceed every value read before *t*; so the
largest value read before the earliest running start is final. Any other column type, or values
stamped by a client's clock, have no horizon: ``changeTrackingDelay`` is the margin there.

The horizon only ever moves up: rows below it stay final once they are.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

#: The instant between a transaction taking its start time and registering its virtual transaction
#: id (microseconds in practice): a transaction in it is not yet seen, though its rows carry that
#: time. Not a delay: rows within it are delivered at once, only re-checked a little longer. (Time
#: columns only: a sequence value is taken after the transaction registered.)
SETTLE_MARGIN = timedelta(seconds=1)

HorizonKind = Literal["time", "sequence", "none"]


@dataclass(frozen=True, slots=True)
class Observation:
    """The running transactions of the source's database at one moment of the server's clock."""

    at: datetime
    #: identity (``v<vxid>`` or ``p<gid>``) → start time, or None when this role may not see it
    transactions: Mapping[str, datetime | None]


class CommitHorizon:
    """Fed one :class:`Observation` per poll cycle, before the cycle reads; :meth:`settled` says
    whether a change value read after that observation is final."""

    def __init__(self, kind: HorizonKind) -> None:
        self.kind = kind
        self._bounds: dict[str, datetime | None] = {}  # running transaction → earliest possible start
        self._previous: Observation | None = None
        self._previous_bound: datetime | None = None
        self._history: list[tuple[datetime, Any]] = []  # (time, largest sequence value read before it)
        self._time: datetime | None = None  # time horizon: values below it are final
        self._sequence: Any = None  # sequence horizon: values up to it are final
        self.unseen_starts = 0  # running transactions whose start this role cannot see

    def observe(self, observation: Observation, largest_read: Any) -> None:
        """``largest_read``: the largest change value read so far (all of it before ``observation``)."""
        bounds: dict[str, datetime | None] = {}
        for identity, start in observation.transactions.items():
            if start is not None:
                bounds[identity] = start
            elif identity in self._bounds:
                bounds[identity] = self._bounds[identity]
            elif self._previous is None:
                bounds[identity] = None  # running before the source looked first: start unknown
            elif identity.startswith("v"):
                bounds[identity] = self._previous.at  # not running at the previous observation
            else:
                # Prepared since the previous observation: it was a running transaction then, or began
                # after it, so it started no earlier than that observation's bound.
                bounds[identity] = self._previous_bound
        self._bounds = bounds
        self.unseen_starts = sum(1 for start in observation.transactions.values() if start is None)
        known = [bound for bound in bounds.values() if bound is not None]
        bound = None if len(known) < len(bounds) else min([observation.at, *known])
        self._previous, self._previous_bound = observation, bound
        if self.kind == "sequence" and largest_read is not None:
            self._history.append((observation.at, largest_read))
        if bound is not None:
            self._advance(bound)

    def _advance(self, bound: datetime) -> None:
        if self.kind == "time":
            if self._time is None or bound - SETTLE_MARGIN > self._time:
                self._time = bound - SETTLE_MARGIN
        elif self.kind == "sequence":
            # No margin: a transaction not yet seen calls nextval only after it registered, so after
            # the values read before this observation were taken.
            # The latest value read before the bound; older entries are not needed again.
            index = bisect.bisect_right([at for at, _ in self._history], bound)
            if index:
                value = self._history[index - 1][1]
                if self._sequence is None or value > self._sequence:
                    self._sequence = value
                del self._history[:index - 1]

    def margin_left(self, change: Any) -> float | None:
        """Seconds of the server's clock until a row stamped ``change`` settles when only
        :data:`SETTLE_MARGIN` holds it back; None when a transaction that was running at the last
        observation (or one whose start is unknown) holds the horizon, or the column has no margin."""
        if self.kind != "time" or self._previous is None or not isinstance(change, datetime):
            return None
        if self._previous_bound != self._previous.at:  # an earlier-started transaction is running
            return None
        # A timestamp without time zone is UTC: the session's zone.
        stamp: datetime = change if change.tzinfo is not None else change.replace(tzinfo=UTC)
        return max(0.0, (stamp + SETTLE_MARGIN - self._previous.at).total_seconds())

    def settled(self, change: Any) -> bool:
        """Whether no row with this change value can still commit."""
        if self.kind == "none":
            return True
        if self.kind == "sequence":
            return self._sequence is not None and isinstance(change, (int, Decimal)) and change <= self._sequence
        if self._time is None:
            return False
        if isinstance(change, datetime):
            if change.tzinfo is None:  # timestamp without time zone: the session's zone is UTC
                return change < self._time.astimezone(UTC).replace(tzinfo=None)
            return change < self._time
        if isinstance(change, date):
            return change < self._time.astimezone(UTC).date()
        return False
