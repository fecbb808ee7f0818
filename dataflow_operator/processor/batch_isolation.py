"""Writing a batch so that one message cannot fail it whole.

A sink reports the messages it could not write; when it *raises* instead, the exception covers the
whole batch. If that exception is about the environment (disk, network, credentials) the whole batch
did fail and must stay unacknowledged. If it is not, one message is usually the cause — a value the
driver cannot encode, a key of the wrong type — and blaming its neighbours would send good messages
to the error sink. So the batch is split in halves and each is written again, down to the single
messages that fail on their own. Messages of a half that was written before the exception may be
written twice: at-least-once allows that, losing or misplacing them does not.
"""

from __future__ import annotations

from collections.abc import Callable

from ..pipeline.connector import WriteFailure
from ..pipeline.errors import is_environmental
from ..pipeline.message import Message

Write = Callable[[list[Message]], list[WriteFailure]]


def write_isolating(write: Write, batch: list[Message]) -> list[WriteFailure]:
    """``write(batch)``, with a non-environmental exception narrowed down to the messages that cause it."""
    try:
        return write(batch)
    except Exception as exc:
        if len(batch) == 1 or is_environmental(exc):
            return [WriteFailure(message, exc) for message in batch]
    middle = len(batch) // 2
    first = write_isolating(write, batch[:middle])
    down = next((f.error for f in first if is_environmental(f.error)), None)
    if down is not None:  # the sink went away meanwhile: no point trying the rest now
        return first + [WriteFailure(message, down) for message in batch[middle:]]
    return first + write_isolating(write, batch[middle:])
