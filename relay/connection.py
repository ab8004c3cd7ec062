"""One WebSocket session, from ``hello`` to close: the driver between a socket, an actor
and the session's state machine.

Theory of operation
-------------------
Every rule of the session (hello first and in time, fatal frames and their close codes,
refusals, the write rate, who may write, pings) is decided by
:class:`sync.relay_session.RelaySession`. This module only moves things: frames from the
socket into the machine, the machine's answers into the subscriber, a hello to the
access check and a session to the shoot's actor, writes to the actor, and the hello's
deadline as a cancel scope.

The session talks to a :class:`FrameSocket` (the relay's own socket,
:class:`relay.wssocket.OwnedSocket`, implements it), so it reads without knowing how
frames travel.

1. Every byte the session sends goes through its :class:`~relay.subscriber.Subscriber`,
   from the first frame to the close: answers, updates, the socket's own pings and pongs.
   The subscriber writes a frame at once while nothing is queued, and queues it
   otherwise; the *sender* task drains the queue onto the socket. So frames never
   interleave, and a slow reader's backlog stays bounded by the subscriber's rules.
2. The hello's access is checked by :func:`relay.auth.authorize` (a failed hello counts
   against the client address's throttle); the exceptions it raises become the refusals
   of :mod:`relay.refusals`, which the machine turns into the session's end.
3. The session subscribes to the shoot's actor, which queues the ``welcome`` (the diff for
   the client's state vector, or a full state with ``reset``) before adding the session
   to its fan-out.
4. The *reader* feeds frames to the machine and hands the writes it allows to the actor.
   The sender ends the session when it has sent a close; the reader ends it when the peer
   has gone.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

import trio

from sync import relay_session as rs
from sync.codec import encode
from sync.protocol import Hello, Pong

from .actor import Submit, Subscribe, Unsubscribe, wall_ms
from .auth import authorize
from .config import Settings
from .context import RelayContext
from .refusals import REFUSALS, refusal_for
from .subscriber import Close, Subscriber

__all__ = ["FrameSocket", "serve_session", "session_limits"]

log = logging.getLogger(__name__)


class FrameSocket(Protocol):
    """What a session needs from a WebSocket."""

    client_address: str
    gone: bool
    """Set once the peer has disconnected."""

    def attach(self, subscriber: Subscriber) -> None:
        """Send everything through ``subscriber`` (which writes to this socket)."""

    async def receive(self) -> bytes | str | None:
        """The next message, or ``None`` once the peer is gone."""

    async def flush(self) -> None:
        """Finish writing a frame the subscriber started without waiting."""

    async def send(self, frame: bytes) -> None:
        """Write one frame as the subscriber queued it (already framed)."""

    async def close(self, code: int, reason: str) -> None: ...


def session_limits(settings: Settings) -> rs.SessionLimits:
    """The session machine's limits from the relay's settings."""
    return rs.SessionLimits(
        hello_timeout_s=settings.hello_timeout_s,
        writes_burst=settings.writes_burst,
        writes_per_s=settings.writes_per_s,
    )


_REFUSALS: tuple[type[Exception], ...] = tuple(REFUSALS)
_GONE: tuple[type[Exception], ...] = (*_REFUSALS, trio.BrokenResourceError)


def _refused(session: rs.RelaySession, exc: Exception) -> list[rs.Action]:
    """Feed one of the relay's reasons for refusing a session to the machine."""
    known = refusal_for(exc)
    if known is None:
        raise exc
    return session.refused(known.code, known.message, known.close_code)


def _carry(
    actions: list[rs.Action], subscriber: Subscriber, relay: RelayContext
) -> list[rs.Action]:
    """Carry out the actions that need no waiting (answers, the end); return the others,
    in order, for the caller (they wait for the access check or the actor)."""
    later: list[rs.Action] = []
    for action in actions:
        match action:
            case rs.Answer(message=message):
                if not isinstance(message, Pong):
                    relay.metrics.errors += 1
                subscriber.answer(encode(message))
            case rs.End(error=error, close_code=close_code):
                relay.metrics.errors += 1
                subscriber.answer(encode(error))
                subscriber.finish(close_code, error.code)
            case _:
                later.append(action)
    return later


async def serve_session(socket: FrameSocket, relay: RelayContext) -> None:
    """Run one client's session until either side closes it."""
    subscriber = Subscriber(relay.settings.subscriber_queue)
    socket.attach(subscriber)
    session = rs.RelaySession(trio.current_time(), session_limits(relay.settings))
    async with trio.open_nursery() as nursery:
        # The sender starts only once a frame has to wait (most connections never need
        # one); whatever ends the body below either cancels or has queued the close, which
        # starts it, so the nursery never waits for a sender nobody started.
        subscriber.start_sender_with(
            lambda: nursery.start_soon(_send_loop, socket, subscriber, nursery.cancel_scope)
        )
        try:
            await _serve(socket, relay, session, subscriber, nursery.cancel_scope)
        finally:
            subscriber.start_sender_with(None)


async def _serve(
    socket: FrameSocket,
    relay: RelayContext,
    session: rs.RelaySession,
    subscriber: Subscriber,
    scope: trio.CancelScope,
) -> None:
    hello = await _receive_hello(socket, relay, session, subscriber)
    if hello is None:
        if not session.closed:  # the peer went before its hello: no close to send
            scope.cancel()
        return
    try:
        archer_id = await authorize(relay, hello, socket.client_address)
    except _REFUSALS as exc:
        _carry(_refused(session, exc), subscriber, relay)
        return
    _carry(session.authorised(archer_id), subscriber, relay)
    subscriber.role = hello.role
    subscriber.archer_id = archer_id
    relay.session_opened()
    try:
        await _subscribed(socket, relay, hello, session, subscriber)
    finally:
        relay.session_closed()
    if socket.gone:
        scope.cancel()


async def _receive_hello(
    socket: FrameSocket, relay: RelayContext, session: rs.RelaySession, subscriber: Subscriber
) -> Hello | None:
    """The hello to authorise, or ``None`` (the peer went, or the machine ended the
    session: :attr:`~sync.relay_session.RelaySession.closed` says which)."""
    actions: list[rs.Action] | None = None
    with trio.move_on_at(session.next_timer):
        frame = await socket.receive()
        if frame is None:
            return None  # the machine stays open: nothing was decided
        actions = session.frame_received(frame, trio.current_time(), wall_ms())
    if actions is None:
        actions = session.timer_fired(trio.current_time())
    for action in _carry(actions, subscriber, relay):
        if isinstance(action, rs.Authorise):
            return action.hello
    return None


async def _subscribed(
    socket: FrameSocket,
    relay: RelayContext,
    hello: Hello,
    session: rs.RelaySession,
    subscriber: Subscriber,
) -> None:
    try:
        subscribe = Subscribe(subscriber, hello.sv)
        await relay.registry.send(hello.shoot, subscribe)
        await subscribe.done.wait()
        session.subscribed(trio.current_time())
        await _read_loop(socket, relay, hello.shoot, session, subscriber)
    except _REFUSALS as exc:
        _carry(_refused(session, exc), subscriber, relay)
    finally:
        # A closed subscriber is dropped by the actor at its next fan-out anyway;
        # telling it matters only for a session that ends while the shoot goes on.
        if not relay.closing:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await _unsubscribe(relay, hello.shoot, subscriber)


async def _unsubscribe(relay: RelayContext, code: str, subscriber: Subscriber) -> None:
    # When no actor is running for this shoot, none holds the subscriber.
    with contextlib.suppress(*_GONE):
        await relay.registry.send(code, Unsubscribe(subscriber))


async def _read_loop(
    socket: FrameSocket,
    relay: RelayContext,
    code: str,
    session: rs.RelaySession,
    subscriber: Subscriber,
) -> None:
    while not subscriber.closed and not session.closed:
        frame = await socket.receive()
        if frame is None:
            session.peer_gone()
            return
        actions = session.frame_received(frame, trio.current_time(), wall_ms())
        for action in _carry(actions, subscriber, relay):
            if isinstance(action, rs.SubmitWrite):
                write = action.write
                await relay.registry.send(code, Submit(write.register, write.id, subscriber))


async def _send_loop(socket: FrameSocket, subscriber: Subscriber, scope: trio.CancelScope) -> None:
    """Drain the subscriber's queue onto the socket; after a close, end the session.

    It sleeps while the subscriber writes straight to the socket, and wakes for a backlog:
    a frame queued because the kernel's buffer was full, or the rest of one written in
    part.
    """
    while True:
        item = await subscriber.next_frame()
        if item is None:
            await socket.flush()
        elif isinstance(item, Close):
            await socket.close(item.code, item.reason)
            scope.cancel()
            return
        else:
            await socket.send(item)
