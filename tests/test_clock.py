"""The hybrid logical clock never runs backwards, and far-future stamps are refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.clock import MAX_CLOCK_SKEW_MS, RECENT_STAMPS, HybridClock, Stamp, check_skew
from sync.errors import ClockSkewError


def test_stamps_follow_the_wall_clock() -> None:
    clock = HybridClock("dev")
    assert clock.now(1000) == Stamp(1000, 0, "dev")
    assert clock.now(2000) == Stamp(2000, 0, "dev")


def test_a_wall_clock_that_steps_back_still_gives_larger_stamps() -> None:
    clock = HybridClock("dev")
    first = clock.now(5000)
    second = clock.now(4000)
    assert second > first
    assert second == Stamp(5000, 1, "dev")


def test_observing_a_newer_stamp_moves_past_it() -> None:
    behind = HybridClock("phone")
    tablet_write = Stamp(10_000, 3, "tablet")
    behind.observe(tablet_write)
    assert behind.now(1_000) > tablet_write


def test_correct_adopts_the_relays_time() -> None:
    clock = HybridClock("dev")
    clock.now(10 * MAX_CLOCK_SKEW_MS)
    clock.correct(wall_ms=10 * MAX_CLOCK_SKEW_MS, server_ms=1_000)
    stamp = clock.now(10 * MAX_CLOCK_SKEW_MS)
    assert stamp.wall_ms == 1_000
    check_skew(stamp, server_ms=1_000)


def test_check_skew_bounds_the_future_but_not_the_past() -> None:
    check_skew(Stamp(0, 0, "d"), server_ms=10**12)
    check_skew(Stamp(10**12 + MAX_CLOCK_SKEW_MS, 0, "d"), server_ms=10**12)
    with pytest.raises(ClockSkewError) as info:
        check_skew(Stamp(10**12 + 86_400_000, 0, "d"), server_ms=10**12)
    assert info.value.code == "clock_skew"
    assert info.value.server_ms == 10**12
    assert "ahead" in info.value.message


@given(st.lists(st.integers(0, 10**6) | st.tuples(st.integers(0, 10**6), st.integers(0, 50))))
def test_stamps_strictly_increase(events: list[int | tuple[int, int]]) -> None:
    clock = HybridClock("me")
    floor = Stamp(-1, 0, "me")
    for event in events:
        if isinstance(event, tuple):
            seen = Stamp(event[0], event[1], "other")
            clock.observe(seen)
            floor = max(floor, seen)
            continue
        stamp = clock.now(event)
        assert stamp > floor
        floor = stamp


def test_correct_keeps_a_stamp_the_relay_may_hold() -> None:
    """Regression: after ``clock_skew`` the clock reset to the relay's time, so a phone's
    re-stamped end lost to its tablet's earlier write that it had already seen."""
    server = 10**12
    tablet_write = Stamp(server + 4 * 60_000, 0, "tablet")  # accepted: within the bound
    phone = HybridClock("phone")
    phone.observe(tablet_write)
    refused = phone.now(server + 3_600_000)  # the phone's clock jumped an hour ahead
    phone.correct(wall_ms=server + 3_600_000, server_ms=server)
    restamped = phone.now(server + 3_600_000)
    assert tablet_write < restamped < refused
    check_skew(restamped, server_ms=server)


def test_correct_forgets_only_stamps_beyond_the_bound() -> None:
    server = 10**12
    clock = HybridClock("dev")
    within = clock.now(server + MAX_CLOCK_SKEW_MS)  # ahead, but accepted
    for n in range(5):
        clock.now(server + 2 * MAX_CLOCK_SKEW_MS + n)
    clock.correct(wall_ms=server + 2 * MAX_CLOCK_SKEW_MS, server_ms=server)
    assert clock.last == within
    after = clock.now(server + 2 * MAX_CLOCK_SKEW_MS)
    assert after > within
    check_skew(after, server_ms=server)


def test_correct_after_many_stamps_beyond_the_bound_stays_at_the_bound() -> None:
    server = 10**12
    clock = HybridClock("dev")
    within = clock.now(server + 60_000)
    for n in range(RECENT_STAMPS + 5):  # more than the clock remembers
        clock.now(server + 3_600_000 + n)
    clock.correct(wall_ms=server + 3_600_000, server_ms=server)
    after = clock.now(server + 3_600_000)
    assert after > within
    assert after.wall_ms == server + MAX_CLOCK_SKEW_MS
    check_skew(after, server_ms=server)


def test_correct_with_nothing_beyond_the_bound_changes_only_the_offset() -> None:
    clock = HybridClock("dev")
    first = clock.now(5_000)
    clock.correct(wall_ms=5_000, server_ms=4_000)
    assert clock.last == first
    assert clock.offset_ms == -1_000
    assert clock.now(5_000) > first


def test_correct_keeps_a_stamp_observed_below_a_clock_that_ran_ahead() -> None:
    """The tablet's accepted write reaches the phone after the phone's clock ran beyond
    the bound: after the refusal, the phone's next stamp must still beat the tablet's
    (found by the convergence property test)."""
    now = 1_780_000_000_000
    clock = HybridClock("phone")
    clock.now(now + MAX_CLOCK_SKEW_MS + 30_000)  # refused by the relay
    tablet = Stamp(now, 2, "tablet")
    clock.observe(tablet)  # smaller than the clock: does not move it
    clock.correct(now + MAX_CLOCK_SKEW_MS + 30_000, now)
    assert clock.now(now + MAX_CLOCK_SKEW_MS + 30_000) > tablet
