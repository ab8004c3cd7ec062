"""Sending to a shoot's subscribers: what the actor (owner) and the follower share.

Both keep a set of subscribers and send them the same frames the same way: a welcome with
the catch-up first, then each update encoded once and offered to everyone (a slow one is
resynced from the full state, see :class:`~relay.subscriber.Subscriber`), and at the
shoot's end an ``expired`` error and a close.
"""

from __future__ import annotations

from collections.abc import Callable

from sync.codec import encode
from sync.models import Shoot
from sync.protocol import CLOSE_EXPIRED, Error, Update, Welcome
from sync.relay_state import Catchup

from .metrics import Metrics
from .subscriber import Subscriber
from .wsframes import binary_frame

__all__ = ["expire", "fan_out", "welcome"]


def welcome(
    subscribers: set[Subscriber],
    subscriber: Subscriber,
    shoot: Shoot,
    catchup: Catchup,
    now_ms: int,
) -> None:
    """Queue the subscriber's welcome; only then does it join the fan-out, so it never
    receives an update it cannot apply."""
    frame = Welcome(
        shoot=shoot,
        reset=catchup.reset,
        update=catchup.update,
        server_ms=now_ms,
        role="archer" if subscriber.archer_id else "viewer",
        archer=subscriber.archer_id,
    )
    if subscriber.answer(encode(frame)):
        subscribers.add(subscriber)


def fan_out(
    subscribers: set[Subscriber], frame: bytes, full_state: Callable[[], bytes], metrics: Metrics
) -> None:
    """Offer the same frame to every subscriber; ``full_state`` (built at most once) is
    the resync for those that fell behind. Closed subscribers leave the set."""
    resync_frame: list[bytes] = []

    def resync() -> bytes:
        metrics.resyncs += 1
        if not resync_frame:
            resync_frame.append(encode(Update(full_state())))
        return resync_frame[0]

    framed = binary_frame(frame)  # once, for every subscriber's socket
    closed = [s for s in subscribers if not s.offer(frame, resync, framed)]
    subscribers.difference_update(closed)
    metrics.frames_fanned_out += len(subscribers)


def expire(subscribers: set[Subscriber]) -> None:
    """The shoot has ended: tell every subscriber, close them, and forget them."""
    for subscriber in subscribers:
        subscriber.answer(encode(Error("expired", "This shoot has ended.", fatal=True)))
        subscriber.finish(CLOSE_EXPIRED, "shoot expired")
    subscribers.clear()
