"""The forwarded requests' resend rule (:mod:`sync.forwarding`), with explicit times: no
Redis, no follower."""

from __future__ import annotations

from sync.forwarding import Forwarding


def test_the_looks_come_every_half_resend_period() -> None:
    pending: Forwarding[str] = Forwarding(10.0, started=100.0)
    assert pending.next_timer == 105.0
    assert pending.timer_fired(104.9) == []  # too early: no look
    assert pending.next_timer == 105.0
    assert pending.timer_fired(105.0) == []
    assert pending.next_timer == 110.0


def test_an_unanswered_request_is_sent_again_once_it_waited_the_resend_time() -> None:
    pending: Forwarding[str] = Forwarding(10.0, started=0.0)
    pending.sent("a-1", "write 1", 1.0)
    assert pending.timer_fired(5.0) == []
    assert pending.timer_fired(10.0) == []  # 9 s: not yet
    assert pending.timer_fired(15.0) == ["write 1"]  # 14 s
    assert pending.timer_fired(20.0) == []  # counted again from the resend
    assert pending.timer_fired(25.0) == ["write 1"]
    assert len(pending) == 1


def test_an_answered_request_is_not_pending_and_a_second_answer_is_ignored() -> None:
    pending: Forwarding[str] = Forwarding(10.0, started=0.0)
    pending.sent("a-1", "write 1", 0.0)
    pending.sent("a-2", "join", 0.0)
    assert pending.answered("a-1") == "write 1"
    assert pending.answered("a-1") is None  # a repeat's answer
    assert pending.answered("b-9") is None  # never sent from here
    assert pending.timer_fired(10.0) == ["join"]
    assert len(pending) == 1


def test_a_new_owner_gets_every_pending_request_at_once() -> None:
    pending: Forwarding[str] = Forwarding(10.0, started=0.0)
    pending.sent("a-1", "write 1", 0.0)
    pending.sent("a-2", "write 2", 4.0)
    assert pending.owner_changed(6.0) == ["write 1", "write 2"]
    assert pending.timer_fired(10.0) == []  # both count from the resend at 6 s
    assert pending.timer_fired(16.0) == ["write 1", "write 2"]


def test_taking_the_requests_leaves_none_pending() -> None:
    pending: Forwarding[str] = Forwarding(10.0, started=0.0)
    pending.sent("a-1", "write 1", 0.0)
    assert pending.take() == ["write 1"]
    assert len(pending) == 0
    assert pending.timer_fired(20.0) == []
    assert pending.answered("a-1") is None
