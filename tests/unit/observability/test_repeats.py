"""Identical library log lines are held back for a window and counted (observability/repeats.py)."""

from __future__ import annotations

import logging

from dataflow_operator.observability.repeats import HELD_BACK_FIELD, RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(text: str, level: int = logging.ERROR, name: str = "lib") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, text, None, None)


REFUSED = ("FAIL [client#consumer-1]: Connect to ipv4#127.0.0.1:1 failed: Connection refused "
           "(after {0}ms in state CONNECT, {0} identical error(s) suppressed)")


def test_the_first_passes_repeats_within_the_window_are_counted_on_the_next_that_passes() -> None:
    clock = Clock()
    repeats = RepeatFilter(60, clock=clock)
    first = record(REFUSED.format(0))
    assert repeats.filter(first) and not hasattr(first, HELD_BACK_FIELD)
    for elapsed in range(1, 60):
        clock.now = elapsed
        assert not repeats.filter(record(REFUSED.format(elapsed)))  # timings differ; still the same line
    clock.now = 60
    after_window = record(REFUSED.format(3))
    assert repeats.filter(after_window) and getattr(after_window, HELD_BACK_FIELD) == 59
    clock.now = 200
    quiet_then_again = record(REFUSED.format(0))
    assert repeats.filter(quiet_then_again) and not hasattr(quiet_then_again, HELD_BACK_FIELD)


def test_other_texts_levels_and_loggers_are_lines_of_their_own() -> None:
    repeats = RepeatFilter(60, clock=Clock())
    assert repeats.filter(record("broker 1 down"))
    assert repeats.filter(record("broker 2 down"))  # a number outside a timing is part of the text
    assert repeats.filter(record("broker 1 down", level=logging.WARNING))
    assert repeats.filter(record("broker 1 down", name="other"))
    assert not repeats.filter(record("broker 1 down"))


def test_only_so_many_texts_are_remembered() -> None:
    clock = Clock()
    repeats = RepeatFilter(60, kinds=2, clock=clock)
    for text in ("a", "b", "c"):  # "a" is forgotten when "c" arrives
        assert repeats.filter(record(text))
    assert repeats.filter(record("a"))
    assert not repeats.filter(record("c"))
