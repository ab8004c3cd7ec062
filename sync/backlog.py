"""What the relay does with a subscriber that falls behind: queue, resync, or close.

Theory of operation
-------------------
The shoot's actor never waits for a slow phone: it offers each frame to every subscriber
without blocking, and each subscriber's frames wait in a queue of their own until its
socket takes them (:mod:`relay.subscriber` holds the queue and moves the bytes). How long
that queue may grow, and what happens when it is full, is the protocol's rule, decided
here from counts alone (no frames, no sockets):

* a document **update** is queued while fewer than ``limit`` updates wait; when ``limit``
  are waiting the subscriber has fallen behind, and the waiting updates are replaced by
  one frame holding the whole document (a *resync*: Yjs updates are idempotent, so a
  replica that already had part of it is fine). After :data:`MAX_RESYNCS` resyncs the
  next overflow closes the subscriber instead (:data:`TOO_SLOW`): it reconnects and
  catches up from its state vector;
* an **answer** meant for this client alone (an ack, an error, a pong, a WebSocket control
  frame) is never dropped by a resync, since the client waits for it; answers have their
  own bound, :data:`MAX_QUEUED_ANSWERS`, and a client that lets that many pile up (sending
  without reading) is closed the same way.

So a subscriber's memory stays bounded by ``limit`` updates plus
:data:`MAX_QUEUED_ANSWERS` answers, each at most one frame.
"""

from __future__ import annotations

import enum
from typing import Final

from .protocol import CLOSE_TOO_SLOW

__all__ = [
    "MAX_QUEUED_ANSWERS",
    "MAX_RESYNCS",
    "TOO_SLOW",
    "Verdict",
    "answer_verdict",
    "update_verdict",
]

#: Resyncs allowed before a subscriber is closed instead.
MAX_RESYNCS: Final = 3
#: Answers (acks, errors) held for one client. After a Redis outage a whole backlog of
#: acks is released at once, so this is far above any queue of updates.
MAX_QUEUED_ANSWERS: Final = 4096
#: The close code and reason for a subscriber that cannot keep up.
TOO_SLOW: Final = (CLOSE_TOO_SLOW, "too slow to keep up")


class Verdict(enum.Enum):
    QUEUE = "queue"
    """Queue the frame (or write it at once if nothing is queued)."""
    RESYNC = "resync"
    """Drop the queued updates, keep the answers, and queue the whole document instead."""
    CLOSE = "close"
    """Drop everything unsent and close with :data:`TOO_SLOW`."""


def update_verdict(queued_updates: int, limit: int, resyncs: int) -> Verdict:
    """What to do with one more update for a subscriber with ``queued_updates`` waiting,
    after ``resyncs`` resyncs so far."""
    if queued_updates < limit:
        return Verdict.QUEUE
    if resyncs < MAX_RESYNCS:
        return Verdict.RESYNC
    return Verdict.CLOSE


def answer_verdict(queued_answers: int) -> Verdict:
    """What to do with one more answer (or control frame) for a subscriber with
    ``queued_answers`` waiting: queue it, or close (never a resync)."""
    return Verdict.QUEUE if queued_answers < MAX_QUEUED_ANSWERS else Verdict.CLOSE
