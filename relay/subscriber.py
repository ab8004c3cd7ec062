"""One connected client as the shoot's actor sees it: a bounded queue of frames.

Backpressure: the actor must never wait for a slow phone, so it only ever calls the
non-blocking :meth:`Subscriber.offer`. A sender task (in the connection's nursery) drains
the queue onto the socket; it is started the first time a frame has to wait
(:meth:`Subscriber.start_sender_with`), so the many connections whose frames always go
straight out never have one. When to queue a frame, when a
subscriber that fell behind is *resynced* (its queued updates replaced by the whole
document, its answers kept) and when it is closed instead is decided by
:mod:`sync.backlog` from the queue's counts; this module keeps the queue and carries the
verdicts out. Either way its memory stays bounded: ``limit`` updates plus
:data:`~sync.backlog.MAX_QUEUED_ANSWERS` answers, each at most one frame.

The fast path: with a :class:`Transport` attached (the connection's socket), a frame
offered while nothing is queued is written to the socket at once, from the caller's task
and without waiting (the actor's fan-out loop writes the same bytes to one subscriber
after another, one non-blocking ``send`` each). Only when the kernel's buffer is full does
a frame wait in the queue, where the rules above apply, for the connection's sender task.
The transport says when it is busy (the rest of a partly written frame, or the sender in
the middle of a frame), so queued frames always go first and frames never interleave.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from sync.backlog import (
    MAX_QUEUED_ANSWERS,
    MAX_RESYNCS,
    TOO_SLOW,
    Verdict,
    answer_verdict,
    update_verdict,
)

__all__ = [
    "MAX_QUEUED_ANSWERS",
    "MAX_RESYNCS",
    "Close",
    "Subscriber",
    "SubscriberStats",
    "Transport",
]

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Close:
    """Queued after the last frame: the sender closes the socket with this code."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Answer:
    """A queued answer, told apart from updates by its type (not its bytes: two answers
    may well be byte-identical, e.g. the same refusal of the same request id)."""

    frame: bytes


class Transport(Protocol):
    """Where a subscriber's frames go: the connection's socket."""

    def frame(self, payload: bytes) -> bytes:
        """The bytes to write for a message (the same object for the same payload): its
        WebSocket binary frame, :func:`relay.wsframes.binary_frame`, which the fan-out
        builds once and hands to every subscriber instead of asking each transport."""

    def write_nowait(self, frame: bytes) -> bool:
        """Write ``frame`` now if the transport is idle, without waiting.

        Returns:
            ``True`` when the transport took the frame (the kernel has it, or holds the
            rest of it until the socket is writable, or the peer is gone and it is
            dropped); ``False`` when it must wait in the queue (busy, or the kernel's
            buffer is full), and nothing of it was written.
        """


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    queued: int
    """Frames waiting to be sent, answers included."""
    answers: int
    """How many of them are answers."""
    resyncs: int
    closed: bool


class Subscriber:
    """A client connection's outgoing frames.

    Args:
        limit: Frames held before the subscriber counts as fallen behind.
        role: ``"archer"`` or ``"viewer"``.
        archer_id: The archer this connection may write for, if any.
    """

    # The fan-out reads these for every subscriber of every update, usually with cold
    # caches (an update every few tens of milliseconds): slots keep them in the object,
    # with no dictionary to reach first (2 µs less per subscriber, benchmarks/README.md).
    __slots__ = (
        "_answers",
        "_closed",
        "_frames",
        "_start_sender",
        "_transport",
        "_wakeup",
        "archer_id",
        "id",
        "limit",
        "resyncs",
        "role",
    )

    def __init__(self, limit: int, *, role: str = "viewer", archer_id: str | None = None) -> None:
        self.id = next(_ids)
        self.limit = limit
        self.role = role
        self.archer_id = archer_id
        self.resyncs = 0
        self._frames: deque[bytes | _Answer | Close] = deque()
        # How many of the queued frames are answers (kept through a resync).
        self._answers = 0
        self._wakeup = trio.Event()
        self._closed = False
        self._transport: Transport | None = None
        self._start_sender: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def attach(self, transport: Transport) -> None:
        """Write frames to ``transport``: offered frames are framed for it, and written at
        once while nothing is queued. Attach before anything is queued."""
        self._transport = transport

    def detach(self) -> None:
        """Forget the transport, once closed: nothing more is written, and a transport
        that keeps its subscriber (the relay's socket does) no longer makes a reference
        cycle with it, which only the collector's full walk could free."""
        assert self._closed, "detached while it could still write"
        self._transport = None

    def start_sender_with(self, start: Callable[[], None] | None) -> None:
        """Have ``start`` called once, the first time the sender is needed (a frame queued,
        the rest of a frame to finish, the close), to start the sender task; ``None``
        once the connection can start no task (its nursery is ending).

        A sender per connection from the start cost every connection a task: spawned,
        scheduled, parked, and cancelled at its end, all for nothing on a connection
        whose frames the kernel always takes at once (nearly all of them). In a reconnect
        storm that was thousands of tasks for the restarted relay to start and stop.
        """
        self._start_sender = start
        if start is not None and self._wakeup.is_set():
            self.wake()

    def wake(self) -> None:
        """Wake the sender task, starting it if it is not running yet (a frame is queued,
        or the transport holds the rest of one to finish)."""
        self._wakeup.set()
        start, self._start_sender = self._start_sender, None
        if start is not None:
            start()

    def _push(self, frame: bytes | _Answer) -> None:
        transport = self._transport
        if transport is not None and not self._frames:
            data = frame.frame if isinstance(frame, _Answer) else frame
            if transport.write_nowait(data):
                return
        if isinstance(frame, _Answer):
            self._answers += 1
        self._frames.append(frame)
        self.wake()

    def _framed(self, payload: bytes) -> bytes:
        return payload if self._transport is None else self._transport.frame(payload)

    def statistics(self) -> SubscriberStats:
        return SubscriberStats(len(self._frames), self._answers, self.resyncs, self._closed)

    def offer(self, frame: bytes, resync: Callable[[], bytes], framed: bytes | None = None) -> bool:
        """Queue a document update without waiting.

        This is the fan-out's inner loop, run once per subscriber per update, so the
        common case (nothing queued, the socket takes the frame) is one test of the queue
        and one call into the transport, nothing else.

        Args:
            frame: The encoded frame (the same bytes object for every subscriber).
            resync: Builds the full-state frame, called only if the queue is full.
            framed: ``frame`` as the transport writes it, when the caller framed it once
                for everyone (:func:`relay.fanout.fan_out` does); else it is framed here.

        Returns:
            ``False`` when the subscriber is closed (or has just been closed).
        """
        if self._closed:
            return False
        transport = self._transport
        if transport is not None:
            frame = transport.frame(frame) if framed is None else framed
            if not self._frames and transport.write_nowait(frame):
                return True
        verdict = update_verdict(len(self._frames) - self._answers, self.limit, self.resyncs)
        if verdict is Verdict.QUEUE:
            self._frames.append(frame)
            self.wake()
        elif verdict is Verdict.RESYNC:
            self.resyncs += 1
            kept = [f for f in self._frames if isinstance(f, _Answer)]
            self._frames.clear()
            self._frames.append(self._framed(resync()))
            self._frames.extend(kept)
            self.wake()
        else:
            self.close(*TOO_SLOW)
            return False
        return True

    def answer(self, frame: bytes) -> bool:
        """Queue an answer meant for this client alone (ack, superseded, error, pong).

        Answers are never dropped by a resync. Their number is bounded by the client's own
        request rate; a client that lets more than :data:`MAX_QUEUED_ANSWERS` frames pile up
        (sending without reading) is closed (:func:`sync.backlog.answer_verdict`). Every
        answer counts, even one byte-identical to another already queued.
        """
        if self._closed:
            return False
        if answer_verdict(self._answers) is Verdict.CLOSE:
            self.close(*TOO_SLOW)
            return False
        self._push(_Answer(self._framed(frame)))
        return True

    def control(self, frame: bytes) -> bool:
        """Queue a WebSocket control frame, already framed (a ping, or a pong answering
        the client's ping). Bounded as answers are: a client that pings without reading
        is closed like one that writes without reading."""
        if self._closed:
            return False
        if answer_verdict(self._answers) is Verdict.CLOSE:
            self.close(*TOO_SLOW)
            return False
        self._push(_Answer(frame))
        return True

    def close(self, code: int, reason: str) -> None:
        """Drop anything unsent and queue the close (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._frames.clear()
        self._answers = 0
        self._frames.append(Close(code, reason))
        self.wake()

    def finish(self, code: int, reason: str) -> None:
        """Queue the close after what is already queued (a graceful close)."""
        if self._closed:
            return
        self._closed = True
        self._frames.append(Close(code, reason))
        self.wake()

    async def next_frame(self) -> bytes | Close | None:
        """The oldest queued frame, waiting for one; ``None`` after a wake-up with nothing
        queued (the transport has the rest of a frame to finish)."""
        if not self._frames:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            if not self._frames:
                return None
        item = self._frames.popleft()
        if isinstance(item, _Answer):
            self._answers -= 1
            return item.frame
        return item

    async def next_batch(self) -> list[bytes | Close]:
        """Wait for frames, then take everything queued (for a consumer without a
        transport, such as the actor's tests)."""
        while not self._frames:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
        batch = [item.frame if isinstance(item, _Answer) else item for item in self._frames]
        self._frames.clear()
        self._answers = 0
        return batch
