"""One WebSocket session, from ``hello`` to close: the driver between a socket and an actor.

Theory of operation
-------------------
The session talks to a :class:`FrameSocket` (the relay's own socket,
:class:`relay.wssocket.OwnedSocket`, implements it), so it reads without knowing how
frames travel.

1. Every byte the session sends goes through its :class:`~relay.subscriber.Subscriber`,
   from the first frame to the close: answers, updates, the socket's own pings and pongs.
   The subscriber writes a frame at once while nothing is queued, and queues it
   otherwise; the *sender* task drains the queue onto the socket. So frames never
   interleave, and a slow reader's backlog stays bounded by the subscriber's rules.
2. The first frame must be a ``hello`` within ``hello_timeout_s``. A failed hello (unknown
   code, wrong token) counts against the client address's throttle.
3. The session subscribes to the shoot's actor, which queues the ``welcome`` (the diff for
   the client's state vector, or a full state with ``reset``) before adding the session
   to its fan-out.
4. The *reader* decodes frames and hands writes to the actor. The sender ends the session
   when it has sent a close; the reader ends it when the peer has gone.

Frames that cannot be decoded are fatal (``docs/protocol.md``): an ``error`` with
``fatal`` set, then a close. Writes that decode but break a rule are answered with an
``error``, nothing changes, and the session goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from typing import Final, Protocol

import trio

from sync.codec import decode_client, encode
from sync.errors import ProtocolError
from sync.limits import TokenBucket
from sync.protocol import (
    CLOSE_POLICY,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_BIG,
    ClientMessage,
    Error,
    Hello,
    Ping,
    Pong,
    Write,
)

from .actor import Submit, Subscribe, Unsubscribe, wall_ms
from .auth import authorize
from .context import RelayContext
from .refusals import REFUSALS, refusal_for
from .subscriber import Close, Subscriber

__all__ = ["FrameSocket", "Refused", "refusal", "serve_session"]

log = logging.getLogger(__name__)

#: Writes a connection may have refused for rate before it is closed with 4429; one is
#: forgiven per second. A client that paces itself after a few refusals goes on; one that
#: ignores them is closed within seconds, however slowly the relay reads its frames.
MAX_RATE_LIMITED: Final = 50
RATE_LIMITED_FORGIVEN_PER_S: Final = 1.0


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


@dataclass(frozen=True, slots=True)
class Refused(Exception):
    """A session the relay will not serve, with the error and close code to say so."""

    code: str
    message: str
    close_code: int


def refusal(exc: Exception) -> Refused:
    """Map the relay's reasons for refusing a session to protocol terms."""
    if isinstance(exc, Refused):
        return exc
    known = refusal_for(exc)
    if known is None:
        raise exc
    return Refused(known.code, known.message, known.close_code)


_REFUSALS: tuple[type[Exception], ...] = (Refused, *REFUSALS)
_GONE: tuple[type[Exception], ...] = (*_REFUSALS, trio.BrokenResourceError)


async def serve_session(socket: FrameSocket, relay: RelayContext) -> None:
    """Run one client's session until either side closes it."""
    subscriber = Subscriber(relay.settings.subscriber_queue)
    socket.attach(subscriber)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_send_loop, socket, subscriber, nursery.cancel_scope)
        try:
            hello = await _receive_hello(socket, relay)
            if hello is None:
                nursery.cancel_scope.cancel()
                return
            archer_id = await authorize(relay, hello, socket.client_address)
        except _REFUSALS as exc:
            refused = refusal(exc)
            _end(subscriber, relay, Error(refused.code, refused.message), refused.close_code)
            return
        subscriber.role = hello.role
        subscriber.archer_id = archer_id
        relay.session_opened()
        try:
            await _subscribed(socket, relay, hello, subscriber)
        finally:
            relay.session_closed()
        if socket.gone:
            nursery.cancel_scope.cancel()


async def _subscribed(
    socket: FrameSocket, relay: RelayContext, hello: Hello, subscriber: Subscriber
) -> None:
    try:
        subscribe = Subscribe(subscriber, hello.sv)
        await relay.registry.send(hello.shoot, subscribe)
        # False: the actor refused the hello (e.g. a malformed state vector) and
        # has queued the error and the close; the sender delivers them.
        if await subscribe.done.wait():
            await _read_loop(socket, relay, hello.shoot, subscriber)
    except _REFUSALS as exc:
        refused = refusal(exc)
        _end(subscriber, relay, Error(refused.code, refused.message), refused.close_code)
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


def _end(subscriber: Subscriber, relay: RelayContext, error: Error, close_code: int) -> None:
    """Queue ``error`` (marked fatal: the close follows it) and then the close."""
    relay.metrics.errors += 1
    subscriber.answer(encode(dataclasses.replace(error, fatal=True)))
    subscriber.finish(close_code, error.code)


async def _receive_hello(socket: FrameSocket, relay: RelayContext) -> Hello | None:
    with trio.move_on_after(relay.settings.hello_timeout_s):
        frame = await socket.receive()
        if frame is None:
            return None
        message = _decode(frame)
        if not isinstance(message, Hello):
            raise Refused("unexpected", "The first message must be hello.", CLOSE_POLICY)
        return message
    raise Refused("timeout", "No hello arrived in time.", CLOSE_POLICY)


def _decode(frame: bytes | str) -> ClientMessage:
    if isinstance(frame, str):
        raise Refused(
            "malformed", "Frames must be binary WebSocket messages, not text.", CLOSE_PROTOCOL_ERROR
        )
    try:
        return decode_client(frame)
    except ProtocolError as exc:
        close_code = CLOSE_TOO_BIG if exc.code == "frame_too_large" else CLOSE_PROTOCOL_ERROR
        raise Refused(exc.code, exc.message, close_code) from exc


async def _read_loop(
    socket: FrameSocket, relay: RelayContext, code: str, subscriber: Subscriber
) -> None:
    settings = relay.settings
    writes = TokenBucket(settings.writes_burst, settings.writes_per_s, updated=trio.current_time())
    strikes = TokenBucket(MAX_RATE_LIMITED, RATE_LIMITED_FORGIVEN_PER_S, updated=writes.updated)
    while not subscriber.closed:
        frame = await socket.receive()
        if frame is None:
            return
        try:
            message = _decode(frame)
        except Refused as refused:
            _end(
                subscriber,
                relay,
                Error(refused.code, refused.message, fatal=True),
                refused.close_code,
            )
            return
        match message:
            case Ping(nonce):
                subscriber.answer(encode(Pong(nonce, wall_ms())))
            case Hello():
                error = Error("unexpected", "This session has already said hello.", fatal=True)
                _end(subscriber, relay, error, CLOSE_POLICY)
                return
            case Write(request_id, register):
                # Every write takes a token, refused or not: answering a refusal costs the
                # relay as much as answering a write, so a flood of them is a flood too.
                now = trio.current_time()
                if not writes.try_take(now):
                    error = Error("rate_limited", "Too many writes; resend later.", id=request_id)
                    if not strikes.try_take(now):
                        _end(subscriber, relay, error, CLOSE_RATE_LIMITED)
                        return
                    relay.metrics.errors += 1
                    subscriber.answer(encode(error))
                    continue
                refusal_error = _write_refusal(subscriber, register.archer_id, request_id)
                if refusal_error is not None:
                    relay.metrics.errors += 1
                    subscriber.answer(encode(refusal_error))
                else:
                    await relay.registry.send(code, Submit(register, request_id, subscriber))


def _write_refusal(subscriber: Subscriber, archer_id: str, request_id: int) -> Error | None:
    if subscriber.archer_id is None:
        return Error("read_only", "Viewers cannot write; join as an archer to score.", request_id)
    if archer_id != subscriber.archer_id:
        return Error("not_your_register", "An archer can only write their own scores.", request_id)
    return None


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
