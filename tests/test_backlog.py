"""The slow-subscriber rule (:mod:`sync.backlog`) from counts alone: queue, resync, close."""

from __future__ import annotations

from sync.backlog import (
    MAX_QUEUED_ANSWERS,
    MAX_RESYNCS,
    TOO_SLOW,
    Verdict,
    answer_verdict,
    update_verdict,
)
from sync.protocol import CLOSE_TOO_SLOW


def test_updates_queue_below_the_limit() -> None:
    assert update_verdict(0, 4, 0) is Verdict.QUEUE
    assert update_verdict(3, 4, MAX_RESYNCS) is Verdict.QUEUE  # resyncs only count when full


def test_a_full_queue_is_resynced_a_few_times_then_closed() -> None:
    verdicts = [update_verdict(4, 4, resyncs) for resyncs in range(MAX_RESYNCS + 2)]
    assert verdicts == [Verdict.RESYNC] * MAX_RESYNCS + [Verdict.CLOSE] * 2
    assert MAX_RESYNCS == 3


def test_answers_have_their_own_bound_and_are_never_resynced() -> None:
    assert answer_verdict(0) is Verdict.QUEUE
    assert answer_verdict(MAX_QUEUED_ANSWERS - 1) is Verdict.QUEUE
    assert answer_verdict(MAX_QUEUED_ANSWERS) is Verdict.CLOSE
    assert MAX_QUEUED_ANSWERS == 4096


def test_a_subscriber_that_cannot_keep_up_is_closed_with_the_documented_code() -> None:
    assert TOO_SLOW == (CLOSE_TOO_SLOW, "too slow to keep up")
