"""Sending to a shoot's subscribers: what the actor (owner) and the follower share.

Both keep a set of subscribers and send them the same frames the same way: a welcome with
the catch-up first, then each update encoded once and offered to everyone (a slow one is
resynced from the full state, see :class:`~relay.subscriber.Subscriber`), and at the
shoot's end an ``expired`` error and a close. Both send a run of updates that arrive
together (the writes queued in a busy shoot's inbox, the entries of one read of the log)
as one merged update (:class:`HeldUpdates`): a send per subscriber per run, not per write,
which is most of what a busy shoot costs.
"""

from __future__ import annotations

from collections.abc import Callable

from sync.codec import encode
from sync.document import merged
from sync.models import Shoot
from sync.protocol import CLOSE_EXPIRED, Error, Update, Welcome
from sync.relay_state import Catchup

from .metrics import Metrics
from .subscriber import Subscriber
from .wsframes import binary_frame

__all__ = ["HeldUpdates", "expire", "fan_out", "welcome"]


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


class HeldUpdates:
    """Document updates on their way to the subscribers, held while a run is handled.

    Outside a run (:meth:`hold` ... :meth:`release`) an update goes out at once. Inside
    one, updates wait and go out merged into one, at :meth:`flush` (before anything that
    must follow them, such as a notice or a welcome) or at :meth:`release`. Nothing waits
    for more to come: a run is only what had already arrived.

    Args:
        send: Fans an encoded ``update`` frame out to the subscribers.
        sent: Called with the arrival time (``time.perf_counter``) of the first write
            whose update just went out, for the fan-out latency metric (the owner's).
    """

    def __init__(
        self, send: Callable[[bytes], None], sent: Callable[[float], None] = lambda _: None
    ) -> None:
        self._send = send
        self._sent = sent
        self._held: list[bytes] | None = None
        self._first: float | None = None

    def offer(self, update: bytes, received: float | None = None) -> None:
        """Send ``update`` (made by a write that arrived at ``received``), or hold it."""
        if self._held is None:
            self._send(encode(Update(update)))
            if received is not None:
                self._sent(received)
            return
        self._held.append(update)
        if self._first is None:
            self._first = received

    def hold(self) -> None:
        """Start a run."""
        self._held = []

    def flush(self) -> None:
        """Send what the run holds so far, as one update."""
        held = self._held
        if held:
            self._held = []
            self._send(encode(Update(merged(held))))
            first, self._first = self._first, None
            if first is not None:
                self._sent(first)

    def release(self) -> None:
        """End the run, sending what it holds."""
        self.flush()
        self._held = None
