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
