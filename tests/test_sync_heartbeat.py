"""The relay's WebSocket heartbeat (:mod:`sync.heartbeat`) driven by events alone: the
timer's firings with explicit times in, pings and evictions out. No socket, no clock."""

from __future__ import annotations

import math

from sync.heartbeat import PING_INTERVAL_S, PONG_TIMEOUT_S, Evict, Heartbeat, SendPing


def _ping(number: int) -> SendPing:
    return SendPing(number.to_bytes(8, "big"))


def test_the_defaults_are_the_documented_ones() -> None:
    beat = Heartbeat(100.0)
    assert (beat.interval_s, beat.timeout_s) == (PING_INTERVAL_S, PONG_TIMEOUT_S) == (15.0, 15.0)
    assert beat.next_timer == 115.0


def test_nothing_happens_before_the_timer_is_due() -> None:
    beat = Heartbeat(0.0, interval_s=5, timeout_s=15)
    assert beat.timer_fired(4.999) == []
    assert beat.next_timer == 5.0
    assert beat.timer_fired(5.0) == [_ping(1)]


def test_an_answered_ping_is_followed_by_the_next_at_the_next_look() -> None:
    beat = Heartbeat(0.0, interval_s=5, timeout_s=15)
    assert beat.timer_fired(5.0) == [_ping(1)]
    assert beat.next_timer == 10.0
    beat.pong_received(_ping(1).payload)
    assert beat.timer_fired(10.0) == [_ping(2)]
    beat.pong_received(_ping(2).payload)
    # The next look counts from when the timer fired, late or not.
    assert beat.timer_fired(16.5) == [_ping(3)]
    assert beat.next_timer == 21.5


def test_a_pending_ping_is_not_repeated_while_within_its_time() -> None:
    beat = Heartbeat(0.0, interval_s=5, timeout_s=15)
    assert beat.timer_fired(5.0) == [_ping(1)]
    assert beat.timer_fired(10.0) == []
    assert beat.timer_fired(15.0) == []
    # Exactly the timeout is still within it: only more than that is dead.
    assert beat.timer_fired(20.0) == []
    assert not beat.evicted


def test_a_silent_peer_is_evicted_at_the_first_look_past_the_timeout() -> None:
    beat = Heartbeat(0.0, interval_s=5, timeout_s=15)
    assert beat.timer_fired(5.0) == [_ping(1)]
    for now in (10.0, 15.0, 20.0):
        assert beat.timer_fired(now) == []
    assert beat.timer_fired(25.0) == [Evict()]
    assert beat.evicted
    assert beat.next_timer == math.inf
    # Nothing more is decided once it is dead, whatever arrives.
    beat.pong_received(_ping(1).payload)
    assert beat.timer_fired(30.0) == []


def test_a_late_pong_still_saves_the_connection_before_the_look_that_would_evict() -> None:
    beat = Heartbeat(0.0, interval_s=5, timeout_s=15)
    beat.timer_fired(5.0)
    for now in (10.0, 15.0, 20.0):
        beat.timer_fired(now)
    beat.pong_received(_ping(1).payload)
    assert beat.timer_fired(25.0) == [_ping(2)]
    assert not beat.evicted


def test_only_a_pong_carrying_the_pending_pings_payload_answers_it() -> None:
    beat = Heartbeat(0.0, interval_s=1, timeout_s=2)
    beat.timer_fired(1.0)
    beat.pong_received(b"")  # unsolicited (RFC 6455 allows it): answers nothing
    beat.pong_received(_ping(2).payload)  # a payload it never sent
    beat.pong_received(_ping(0).payload)
    assert beat.timer_fired(2.0) == []
    assert beat.timer_fired(3.0) == []
    assert beat.timer_fired(4.0) == [Evict()]


def test_a_pong_for_an_earlier_ping_does_not_answer_the_current_one() -> None:
    beat = Heartbeat(0.0, interval_s=1, timeout_s=1.5)
    beat.timer_fired(1.0)
    beat.pong_received(_ping(1).payload)
    assert beat.timer_fired(2.0) == [_ping(2)]
    beat.pong_received(_ping(1).payload)  # the first one's again, late or replayed
    assert beat.timer_fired(3.0) == []
    assert beat.timer_fired(4.0) == [Evict()]


def test_an_unsolicited_pong_after_the_answer_does_not_undo_it() -> None:
    beat = Heartbeat(0.0, interval_s=1, timeout_s=1.5)
    beat.timer_fired(1.0)
    beat.pong_received(_ping(1).payload)
    beat.pong_received(b"keepalive")
    assert beat.timer_fired(2.0) == [_ping(2)]


def test_a_peer_heard_from_since_the_last_look_is_not_pinged() -> None:
    """A browser sends its own ``ping`` when it has sent nothing for an interval: the
    relay's ping and its pong would say nothing more."""
    beat = Heartbeat(0.0, interval_s=5, timeout_s=15)
    assert beat.timer_fired(5.0, heard=True) == []
    assert beat.timer_fired(10.0, heard=True) == []
    assert beat.next_timer == 15.0  # the looks go on
    assert beat.timer_fired(15.0, heard=False) == [_ping(1)]  # silent since the last look


def test_frames_from_the_peer_do_not_answer_its_outstanding_ping() -> None:
    """Only a pong shows that the peer reads: one that only sends is dropped all the same."""
    beat = Heartbeat(0.0, interval_s=5, timeout_s=15)
    assert beat.timer_fired(5.0) == [_ping(1)]
    for now in (10.0, 15.0, 20.0):
        assert beat.timer_fired(now, heard=True) == []
    assert beat.timer_fired(25.0, heard=True) == [Evict()]


def test_a_peer_that_goes_silent_is_dropped_at_most_63_75_s_later() -> None:
    """The documented worst case (``docs/protocol.md``): its last bytes came right after
    the connection opened, the first look comes a tick late and still finds them, and the
    ping sent at the look after is exactly a timeout old (not more) at the next."""
    tick = PING_INTERVAL_S / 4
    beat = Heartbeat(0.0)
    silent_since = 0.001
    assert beat.timer_fired(PING_INTERVAL_S + tick, heard=True) == []
    looks = [beat.next_timer + n * PING_INTERVAL_S for n in range(3)]
    assert [beat.timer_fired(now) for now in looks] == [[_ping(1)], [], [Evict()]]
    assert 63.7 < looks[-1] - silent_since <= 63.75
