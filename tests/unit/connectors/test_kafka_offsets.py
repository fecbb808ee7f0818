"""OffsetLedger: contiguous per-partition commits, revocation, asynchronous failures (pure)."""

from __future__ import annotations

from dataflow_operator.connectors.kafka.offsets import OffsetLedger


def offsets(ledger: OffsetLedger) -> dict[tuple[str, int], int]:
    commits, _ = ledger.pending()
    return {(c.topic, c.partition): c.offset for c in commits}


def test_only_contiguous_acknowledgements_become_committable() -> None:
    ledger = OffsetLedger()
    ledger.assign([("t", 0), ("t", 1)])
    tickets = [ledger.issue("t", 0, offset) for offset in (10, 11, 12)]
    other = ledger.issue("t", 1, 5)
    assert all(tickets) and other is not None
    assert ledger.ack(*tickets[1]) is None  # 11 before 10: nothing yet
    version = ledger.ack(*tickets[0])
    assert version is not None
    assert offsets(ledger) == {("t", 0): 12}  # 10 and 11 done: next to read is 12
    ledger.ack(*other)
    assert offsets(ledger) == {("t", 0): 12, ("t", 1): 6}
    commits, _ = ledger.pending()
    ledger.mark_committed(commits)
    assert offsets(ledger) == {}
    ledger.ack(*tickets[2])
    assert offsets(ledger) == {("t", 0): 13}


def test_revocation_returns_what_is_pending_and_later_acks_are_ignored() -> None:
    ledger = OffsetLedger()
    ledger.assign([("t", 0)])
    first, second = ledger.issue("t", 0, 0), ledger.issue("t", 0, 1)
    assert first is not None and second is not None
    ledger.ack(*first)
    revoked = ledger.revoke([("t", 0)])
    assert [(c.partition, c.offset) for c in revoked] == [(0, 1)]
    assert ledger.ack(*second) is None  # read under the old assignment
    assert ledger.issue("t", 0, 2) is None and not ledger.owns_partitions()
    ledger.assign([("t", 0)])  # back again: a fresh ledger, the old one stays dead
    assert offsets(ledger) == {}
    assert ledger.ack(*second) is None


def test_a_failed_asynchronous_commit_is_offered_again() -> None:
    ledger = OffsetLedger()
    ledger.assign([("t", 0)])
    issued = ledger.issue("t", 0, 3)
    assert issued is not None
    ledger.ack(*issued)
    commits, _ = ledger.pending()
    ledger.mark_committed(commits)
    assert offsets(ledger) == {}
    ledger.commit_failed([("t", 0)])
    assert offsets(ledger) == {("t", 0): 4}


class _Clock:
    """Time that moves only when the waiter sleeps; ``on_sleep`` plays the writer threads."""

    def __init__(self, on_sleep: dict[float, object]) -> None:
        self.now = 0.0
        self.on_sleep = on_sleep

    def sleep(self, seconds: float) -> None:
        self.now = round(self.now + seconds, 6)
        action = self.on_sleep.pop(self.now, None)
        if callable(action):
            action()


def test_revocation_waits_for_what_was_read_to_be_acknowledged() -> None:
    ledger = OffsetLedger()
    ledger.assign([("t", 0), ("t", 1)])
    first, second = ledger.issue("t", 0, 0), ledger.issue("t", 0, 1)
    unrelated = ledger.issue("t", 1, 0)  # not revoked: not waited for
    assert first is not None and second is not None and unrelated is not None
    clock = _Clock({0.5: lambda: ledger.ack(*first), 1.5: lambda: ledger.ack(*second)})
    assert ledger.wait_acknowledged([("t", 0)], quiet=2.0, limit=15.0, clock=lambda: clock.now, sleep=clock.sleep)
    assert clock.now == 1.5
    assert [(c.partition, c.offset) for c in ledger.revoke([("t", 0)])] == [(0, 2)]


def test_revocation_stops_waiting_when_acknowledgements_stop_or_at_the_limit() -> None:
    ledger = OffsetLedger()
    ledger.assign([("t", 0)])
    tickets = [ledger.issue("t", 0, offset) for offset in range(40)]
    assert all(tickets)
    # One acknowledgement, then none (a message the error sink keeps, say): quiet after 2 s.
    clock = _Clock({0.5: lambda: ledger.ack(*tickets[0])})
    assert not ledger.wait_acknowledged([("t", 0)], quiet=2.0, limit=15.0, clock=lambda: clock.now,
                                        sleep=clock.sleep)
    assert clock.now == 2.5
    # Acknowledgements that keep trickling in never outlast the limit.
    trickle = {round(0.5 * (i + 1), 6): (lambda t=t: ledger.ack(*t)) for i, t in enumerate(tickets[1:])}
    clock = _Clock(trickle)
    assert not ledger.wait_acknowledged([("t", 0)], quiet=2.0, limit=15.0, clock=lambda: clock.now,
                                        sleep=clock.sleep)
    assert clock.now == 15.0
