"""The subscriber's bounds: updates and answers, each counted in frames."""

from __future__ import annotations

from relay.subscriber import MAX_QUEUED_ANSWERS, MAX_RESYNCS, Close, Subscriber
from sync.protocol import CLOSE_TOO_SLOW


def _full_state() -> bytes:
    return b"full-state"


async def test_byte_identical_answers_each_count_toward_the_bound() -> None:
    # The same refusal of the same request id is the same bytes every time; a set of
    # frames once collapsed them into one entry and a flood was never closed.
    subscriber = Subscriber(limit=4)
    refusal = b"read_only, id 7"
    for _ in range(MAX_QUEUED_ANSWERS):
        assert subscriber.answer(refusal)
    assert subscriber.statistics().answers == MAX_QUEUED_ANSWERS
    assert not subscriber.answer(refusal)
    assert subscriber.closed
    assert await subscriber.next_batch() == [Close(CLOSE_TOO_SLOW, "too slow to keep up")]


async def test_a_resync_keeps_every_answer_in_order_and_drops_the_updates() -> None:
    subscriber = Subscriber(limit=2)
    subscriber.answer(b"welcome")
    subscriber.offer(b"u1", _full_state)
    subscriber.answer(b"error")
    subscriber.answer(b"error")
    subscriber.offer(b"u2", _full_state)
    assert subscriber.resyncs == 0
    subscriber.offer(b"u3", _full_state)  # a third update: the queue of updates is full
    assert subscriber.resyncs == 1
    assert await subscriber.next_batch() == [b"full-state", b"welcome", b"error", b"error"]
    assert subscriber.statistics().queued == 0
    assert subscriber.statistics().answers == 0


async def test_answers_do_not_use_up_the_room_for_updates() -> None:
    # A backlog of acks released at once (Redis is back) must not make the next update
    # look like a subscriber that fell behind.
    subscriber = Subscriber(limit=2)
    for n in range(10):
        subscriber.answer(b"ack %d" % n)
    assert subscriber.offer(b"u1", _full_state)
    assert subscriber.offer(b"u2", _full_state)
    assert subscriber.resyncs == 0
    assert len(await subscriber.next_batch()) == 12


async def test_a_subscriber_that_keeps_falling_behind_is_closed() -> None:
    subscriber = Subscriber(limit=1)
    subscriber.offer(b"u0", _full_state)
    for n in range(MAX_RESYNCS):
        assert subscriber.offer(b"u%d" % (n + 1), _full_state)
    assert subscriber.resyncs == MAX_RESYNCS
    assert not subscriber.offer(b"one too many", _full_state)
    assert subscriber.closed
    assert not subscriber.answer(b"too late")
    assert await subscriber.next_batch() == [Close(CLOSE_TOO_SLOW, "too slow to keep up")]
