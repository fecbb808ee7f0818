"""Manifest loading under fuzzing: no exception escapes, every rejection names a field path.

The cases run in this process; their time is bounded by the loader's limits, not asserted here:
the maximum is recorded and printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import validate_manifests
from tests.fuzz.manifest_mutations import mutated_manifest


def test_mutated_manifests_never_crash_and_always_name_a_field() -> None:
    durations: list[float] = []

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.randoms(use_true_random=False), st.booleans())
    def check(rng: random.Random, strict: bool) -> None:
        outcome = validate_manifests.run_case(mutated_manifest(rng), strict=strict)
        durations.append(outcome.seconds)
        assert outcome.crash is None, outcome.crash
        assert not outcome.lines_without_path, outcome.output
        assert outcome.exit_code in (0, 1)

    check()
    print(f"validate fuzz (hypothesis) examples={len(durations)} max_seconds={max(durations):.3f}")


def test_the_seeded_runner_passes_a_short_run() -> None:
    assert validate_manifests.main(["--count", "300", "--seed", "7"]) == 0
