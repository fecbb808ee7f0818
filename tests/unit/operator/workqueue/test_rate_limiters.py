"""The rate limiters' arithmetic (client-go's default_rate_limiters.go)."""

from __future__ import annotations

import pytest

from dataflow_operator.operator.workqueue.rate_limiters import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)
from tests.unit.operator.workqueue.fake_clock import FakeClock


def test_item_exponential_backoff_doubles_from_5ms_to_1000s_per_item() -> None:
    limiter = ItemExponentialFailureRateLimiter[str]()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[17] == pytest.approx(0.005 * 2 ** 17)
    assert delays[18] == 1000.0, "capped at 1000 s"
    assert limiter.when("b") == 0.005, "backoff is per item"
    limiter.forget("a")
    assert limiter.when("a") == 0.005, "forgetting resets the backoff"


def test_item_exponential_backoff_does_not_overflow() -> None:
    limiter = ItemExponentialFailureRateLimiter[str]()
    for _ in range(2000):
        delay = limiter.when("a")
    assert delay == 1000.0


def test_bucket_allows_burst_then_paces_at_qps() -> None:
    clock = FakeClock()
    bucket = BucketRateLimiter[str](qps=10, burst=100, now=clock.now)
    assert [bucket.when("x") for _ in range(100)] == [0.0] * 100
    assert bucket.when("x") == pytest.approx(0.1)
    assert bucket.when("y") == pytest.approx(0.2), "tokens are borrowed from the future, shared by all items"
    bucket.forget("y")
    assert bucket.when("y") == pytest.approx(0.3), "the bucket has nothing per item to forget"
    clock.advance(0.4)
    assert bucket.when("z") == pytest.approx(0.0, abs=1e-9)
    clock.advance(100)
    assert [bucket.when("x") for _ in range(100)] == [0.0] * 100, "refills to at most burst"
    assert bucket.when("x") > 0


def test_bucket_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="qps must be positive"):
        BucketRateLimiter[str](qps=0)


def test_max_of_takes_the_longest_delay_and_forgets_everywhere() -> None:
    clock = FakeClock()
    per_item = ItemExponentialFailureRateLimiter[str](base_delay=1.0, max_delay=100.0)
    bucket = BucketRateLimiter[str](qps=1, burst=1, now=clock.now)
    limiter = MaxOfRateLimiter[str](per_item, bucket)
    assert limiter.when("a") == 1.0  # per item 1 s, bucket 0
    assert limiter.when("a") == 2.0  # per item 2 s, bucket 1 s
    limiter.forget("a")
    assert limiter.when("a") == 2.0, "per item back to 1 s; the bucket, borrowed 2 s ahead, now dominates"
    with pytest.raises(ValueError, match="at least one"):
        MaxOfRateLimiter[str]()


def test_default_controller_rate_limiter_matches_client_go() -> None:
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock.now)
    assert limiter.when("a") == 0.005
    assert limiter.when("a") == 0.01
    # 98 more tokens of the burst are left; then the overall 10 qps dominates a fresh key's 5 ms.
    for index in range(98):
        limiter.when(f"k{index}")
    assert limiter.when("fresh") == pytest.approx(0.1)
