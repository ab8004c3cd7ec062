from __future__ import annotations

from sync.limits import TokenBucket


def test_burst_then_rate() -> None:
    bucket = TokenBucket(burst=3, rate=2.0, updated=100.0)
    assert [bucket.try_take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after(100.0) == 0.5
    assert not bucket.try_take(100.4)
    assert bucket.try_take(100.5)
    assert bucket.would_allow(200.0)
    assert bucket.tokens == 3


def test_clock_going_backwards_adds_nothing() -> None:
    bucket = TokenBucket(burst=1, rate=1.0, updated=10.0)
    assert bucket.try_take(10.0)
    assert not bucket.try_take(5.0)
