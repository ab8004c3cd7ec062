"""A WebSocket on a socket the relay owns: what a session reads, and one path for every byte.

Theory of operation
-------------------
After the handshake (:mod:`relay.websocket`) the relay holds the TCP socket itself, as a
non-blocking stdlib socket, without trio's stream wrappers or an ASGI server between the
session and the kernel.

*Reading* is one task, the session's reader: :meth:`OwnedSocket.receive` cuts what the
socket has into whole frames (:mod:`relay.wsreader`), takes a lone binary frame as the
message itself, hands every other frame to wsproto (client frames are masked and may be
fragmented), and returns the next whole message. A message is bounded while it arrives: past
:data:`~sync.protocol.MAX_CLIENT_FRAME_BYTES` the socket stops collecting it and hands
the session its first bytes, one more than the limit, which the codec refuses with
``frame_too_large`` (the session then closes with 1009); the rest of it is read and
dropped, never held. WebSocket pings are answered on the way, and pongs handed to
:attr:`OwnedSocket.on_pong` (the heartbeat, :mod:`sync.heartbeat`).

*Writing* has one path, the session's :class:`~relay.subscriber.Subscriber`, whatever
the frame: updates, answers, the relay's pings, pongs, the close. The subscriber writes a
frame at once with :meth:`write_nowait` when nothing is queued, or queues it for the
connection's sender task, which uses :meth:`send` and :meth:`flush`. The socket is
*busy* while part of a frame is still to be written or the sender is in the middle of
one, and a busy socket takes nothing new, so frames never interleave.

The kernel is not a second, hidden queue: ``TCP_NOTSENT_LOWAT`` keeps what it accepts
beyond what is in flight small (a peer that stops reading absorbed 41,185 small frames
before ``EAGAIN`` with the defaults, a few hundred with this), so the subscriber's bound
is the real bound.

Cancellation: :meth:`send` and :meth:`flush` wait for the socket to be writable and may be
cancelled there; the rest of the frame stays held, so a later flush finishes it.
"""

from __future__ import annotations

import contextlib
import errno
import socket as stdlib_socket
from collections.abc import Callable
from types import GeneratorType
from typing import Final

import trio
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from sync.protocol import CLOSE_GOING_AWAY, MAX_CLIENT_FRAME_BYTES

from .subscriber import Subscriber
from .wsframes import binary_frame, close_frame, pong_frame
from .wsreader import ClientFrames, lone_pong

__all__ = ["RECV_BYTES", "OwnedSocket", "configure"]

#: Bytes read from the socket at a time (and so the most wsproto ever buffers at once).
RECV_BYTES: Final = 65536
#: What the kernel may hold unsent beyond what is in flight (see the module's notes).
NOTSENT_LOWAT: Final = 16384
_TCP_NOTSENT_LOWAT: Final = getattr(stdlib_socket, "TCP_NOTSENT_LOWAT", 25)
#: Errors that mean the peer is gone (reading or writing).
_GONE_ERRNOS: Final = {errno.EPIPE, errno.ECONNRESET, errno.ETIMEDOUT, errno.ENOTCONN, errno.EBADF}


def configure(sock: stdlib_socket.socket) -> None:
    """Make an accepted socket fit for the owned path: non-blocking, no Nagle delay, and a
    small unsent backlog in the kernel."""
    sock.setblocking(False)
    with contextlib.suppress(OSError):  # not TCP (a unix socket in a test)
        sock.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
        sock.setsockopt(stdlib_socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)


class OwnedSocket:
    """One accepted WebSocket: a :class:`relay.connection.FrameSocket` and the subscriber's
    :class:`~relay.subscriber.Transport`.

    Args:
        sock: The connected socket, configured with :func:`configure`, handshake done.
        ws: wsproto's frame parser for the connection (the handshake is done); it
            parses client frames other than lone binary ones (:mod:`relay.wsreader`).
        client_address: Whose connection this is, for the throttles.
        received: What the client sent after its request head, without waiting for
            the ``101`` (wsproto's server handshake drops those bytes): its first frames.
        cut_frames: ``False`` has wsproto parse every frame (the reference the tests
            compare the frame cutter with).
    """

    # The fan-out reads these for every subscriber of every update, usually with cold
    # caches (an update every few tens of milliseconds): slots keep them in the object,
    # with no dictionary to reach first (2 µs less per subscriber, benchmarks/README.md).
    __slots__ = (
        "_broken",
        "_discarding",
        "_fed",
        "_fragmented",
        "_frames",
        "_going_away",
        "_pending",
        "_subscriber",
        "_unread",
        "_waited",
        "_writing",
        "_ws",
        "client_address",
        "close_sent",
        "gone",
        "heard",
        "on_pong",
        "peer_close",
        "scope",
        "sock",
    )

    def __init__(
        self,
        sock: stdlib_socket.socket,
        ws: Connection,
        client_address: str,
        *,
        received: bytes = b"",
        cut_frames: bool = True,
    ) -> None:
        self.sock = sock
        self.client_address = client_address
        self.gone = False
        """Set once the peer has closed, hung up, or broken the protocol."""
        self.close_sent = False
        self.peer_close: int | None = None
        """The code of the peer's close frame, once it came."""
        self.on_pong: Callable[[bytes], None] = lambda payload: None
        """Given every pong's payload (the heartbeat's machine judges them)."""
        self.heard = False
        """Set when bytes come from the peer; the heartbeat clears it at each look (a peer
        heard from is not pinged, :mod:`sync.heartbeat`)."""
        self._ws = ws
        # Whole frames cut here, lone binary ones taken without wsproto (relay.wsreader);
        # None once everything goes to wsproto as it comes.
        self._frames = ClientFrames(MAX_CLIENT_FRAME_BYTES) if cut_frames else None
        if self._frames is not None:
            self._frames.feed(received)
        elif received:
            ws.receive_data(received)
        self._fragmented = False
        """wsproto holds part of a message (a lone frame is then wsproto's to refuse)."""
        self._fed = False
        self._unread = True
        """wsproto may have events: it was fed since its events were last all read (asking
        it builds two generators, once per message on the common path otherwise)."""
        self._pending: memoryview | None = None
        self._writing = False
        self._broken = False
        self._subscriber: Subscriber | None = None
        self._discarding = False
        self._waited = False
        self._going_away: tuple[int, str] | None = None
        self.scope: trio.CancelScope | None = None
        """The session's scope, once it runs: the shutdown cancels it directly."""

    # -- writing -------------------------------------------------------------------------

    def attach(self, subscriber: Subscriber) -> None:
        """Route every byte through ``subscriber`` (answers, pongs and pings included)."""
        self._subscriber = subscriber
        subscriber.attach(self)
        if self._going_away is not None:  # the relay began closing before the session
            subscriber.close(*self._going_away)

    def going_away(self, code: int, reason: str) -> None:
        """End the session without waiting: the close frame is written now if the socket
        can take it, the subscriber is closed (the actor forgets it at its next fan-out,
        and its sender task ends the session, writing the close if it could not go yet).
        The relay's shutdown calls this for every session in one pass.

        When the close frame went out, the session's scope is cancelled at once: there
        is nothing left to send, and waiting for the peer's answer only delays the
        relay's exit (its clients cannot reconnect before it is back). A session whose
        close could not go yet keeps its sender, which writes it and ends the session.
        """
        self._going_away = (code, reason)
        sent = self.close_nowait(code, reason)
        if self._subscriber is not None:
            if sent:  # nothing is left to send: no sender task is started to send nothing
                self._subscriber.start_sender_with(None)
            self._subscriber.close(code, reason)
        if sent and self.scope is not None:
            self.scope.cancel()

    @property
    def busy(self) -> bool:
        return self._pending is not None or self._writing

    def frame(self, payload: bytes) -> bytes:
        return binary_frame(payload)

    def write_nowait(self, frame: bytes) -> bool:
        # The fan-out calls this once per subscriber per update: the checks are plain
        # attribute tests and the send is the socket's own, with no helper in between.
        if self._broken or self.close_sent:
            return True  # nothing follows a close, and a gone peer gets nothing
        if self._pending is not None or self._writing:
            return False
        try:
            sent = self.sock.send(frame)
        except BlockingIOError:
            return False
        except OSError as exc:
            self._break(exc)
            return True
        if sent < len(frame):
            if sent == 0:
                return False
            self._pending = memoryview(frame)[sent:]
            if self._subscriber is not None:
                self._subscriber.wake()
        return True

    def _send_some(self, data: memoryview) -> int:
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self._break(exc)
            return len(data)

    def _break(self, exc: OSError) -> None:
        if exc.errno not in _GONE_ERRNOS and not isinstance(exc, ConnectionError):
            raise exc
        self._broken = self.gone = True
        self._pending = None

    async def flush(self) -> None:
        """Finish writing a partly written frame, waiting for the socket as needed."""
        while self._pending is not None:
            await trio.lowlevel.wait_writable(self.sock)
            sent = self._send_some(self._pending)
            if self._pending is not None:
                rest = self._pending[sent:]
                self._pending = rest if len(rest) else None

    async def send(self, frame: bytes) -> None:
        """Write a whole frame (already framed), after whatever is partly written."""
        if not self.close_sent:
            await self._write(frame)

    async def _write(self, frame: bytes) -> None:
        if self._broken:
            return
        self._writing = True
        try:
            await self.flush()
            if self._broken:
                return
            sent = self._send_some(memoryview(frame))
            if sent < len(frame) and not self._broken:
                self._pending = memoryview(frame)[sent:]
                await self.flush()
        finally:
            self._writing = False

    async def close(self, code: int, reason: str) -> None:
        """Send the close frame (the session is over); the peer's answer is awaited later."""
        if not self.close_sent and not self.gone:
            self.close_sent = True
            await self._write(close_frame(code, reason))

    def close_nowait(self, code: int, reason: str) -> bool:
        """Send the close frame now if the socket is idle and its buffer has room; whether
        it went (the relay's shutdown closes every session this way, in one pass)."""
        if self.close_sent or self.gone or self.busy:
            return False
        frame = close_frame(code, reason)
        if self._send_some(memoryview(frame)) != len(frame):
            return False  # a part of it may be out: the peer sees a broken connection
        self.close_sent = True
        return True

    def control(self, frame: bytes) -> None:
        """Send a control frame (a ping or pong) through the one path."""
        if self._subscriber is not None:
            self._subscriber.control(frame)
        else:
            self.write_nowait(frame)  # before the session starts: nothing else is queued

    # -- reading -------------------------------------------------------------------------

    async def _receive_data(self) -> None:
        """Read what the socket has into the frame cutter, or wsproto (the end of the
        stream included: wsproto gets whatever partial frame is left, then the end)."""
        while True:
            try:
                data = self.sock.recv(RECV_BYTES)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self.sock)
                self._waited = True
                continue
            except OSError as exc:
                self._break(exc)
                data = b""
            if self._ws.state is ConnectionState.CLOSED:
                self.gone = True
                return
            if data:
                self.heard = True
            if self._frames is not None:
                if data:
                    self._frames.feed(data)
                    return
                self._whole_frames_off()
            self._ws.receive_data(data or None)
            self._unread = True
            return

    def _whole_frames_off(self) -> None:
        """From now on wsproto gets every byte, starting with what the cutter holds."""
        if self._frames is not None:
            rest = self._frames.take_rest()
            self._frames = None
            if rest:
                self._ws.receive_data(rest)
                self._unread = True

    def _next_whole(self) -> bytes | None:
        """A lone binary frame's payload, or ``None`` (after handing wsproto the next
        frame it must parse, if a whole one is here: ``_fed`` is then set)."""
        if self._frames is None:
            return None
        while (found := self._frames.next_frame(take_lone=not self._fragmented)) is not None:
            message, raw = found
            if message is not None:
                return message
            pong = lone_pong(raw)
            if pong is not None:
                self.on_pong(pong)  # as wsproto's Pong event would have been handed on
                continue
            if ClientFrames.starts_data(raw):
                self._fragmented = True  # until wsproto finishes the message
            self._ws.receive_data(raw)
            self._fed = self._unread = True
            return None
        return None

    async def receive(self) -> bytes | str | None:
        """The next message from the client, or ``None`` once it is gone.

        It passes through the scheduler once per message: by waiting for the socket, or,
        when the message was already here (several in one read), by a checkpoint, so a
        client that sends faster than the relay reads never keeps the others waiting.
        The checkpoint is shielded: the message is already taken, and is not lost to a
        cancellation there.
        """
        self._waited = False
        message = await self._next_message()
        if not self._waited:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return message

    async def _next_message(self) -> bytes | str | None:
        message = bytearray()
        chars: list[str] = []
        size = 0
        while not self.gone:
            for event in self._ws.events() if self._unread else ():
                match event:
                    case BytesMessage(data=data, message_finished=finished):
                        self._fragmented = not finished
                        if self._discarding:
                            self._discarding = not finished
                            continue
                        message += data
                        size = len(message)
                        if size > MAX_CLIENT_FRAME_BYTES:
                            # The codec refuses it by its size; the rest is dropped unread.
                            self._discarding = not finished
                            return bytes(message[: MAX_CLIENT_FRAME_BYTES + 1])
                        if finished:
                            return bytes(message)
                    case TextMessage(data=text, message_finished=finished):
                        self._fragmented = not finished
                        chars.append(text)
                        size += len(text)
                        if size > MAX_CLIENT_FRAME_BYTES:
                            self._discarding = not finished
                            return "".join(chars)[: MAX_CLIENT_FRAME_BYTES + 1]
                        if finished:
                            return "".join(chars)
                    case Ping(payload=payload):
                        self.control(pong_frame(bytes(payload)))
                    case Pong(payload=payload):
                        self.on_pong(bytes(payload))
                    case CloseConnection(code=code):
                        self._peer_closed(code)
                        return None
            self._unread = False  # every event read (a return above leaves some unread)
            whole = self._next_whole()
            if whole is not None:
                return whole
            if self._fed:
                self._fed = False  # wsproto has a frame to parse: its events first
                continue
            await self._receive_data()
        return None

    def _peer_closed(self, code: int) -> None:
        """The peer sent a close (or broke the protocol, or hung up): answer it once."""
        self.peer_close = code
        if code != 1006:  # 1006: the peer hung up without a close; nobody to answer
            # Answer with the peer's code, or the one naming what it broke; the codes that
            # never travel (1005: none given, 1015) become a plain 1000.
            self.close_nowait(code if code not in (1005, 1015) else 1000, "")
        self.gone = True

    async def wait_closed(self) -> None:
        """Read and drop messages until the peer has closed or hung up (after our close)."""
        self._whole_frames_off()
        while not self.gone:
            for event in self._ws.events():
                if isinstance(event, CloseConnection):
                    self.gone = True
                    self.peer_close = event.code
                    return
            await self._receive_data()

    def release(self) -> None:
        """Nothing more is read or sent here: let go of wsproto's frame parser.

        wsproto keeps its parser as a generator that holds the object it parses for: a
        reference cycle of nine objects, which it ends itself only after a close frame.
        Only the garbage collector can free such a cycle, and the relay freezes what
        survives a collection (:mod:`relay.collector`), so every session that ended
        without a close frame left its cycle until the next thaw: 8.7 objects and about
        1 KiB per session in the benchmark's churn run (``benchmarks/churn.py``). Closed,
        the generator lets go, and the rest goes with reference counting.
        ``_proto._parse_more`` is wsproto's own attribute; ``tests/test_collector.py``
        finds the cycle again if an upgrade moves it.
        """
        parser = getattr(getattr(self._ws, "_proto", None), "_parse_more", None)
        if isinstance(parser, GeneratorType):
            parser.close()

    def finished(self) -> None:
        """The session is over: whatever still reaches this socket goes nowhere (an actor
        may fan out to it before it hears of the end), and the subscriber is closed, so
        its actor forgets it at its next fan-out."""
        self._broken = True
        self._pending = None
        if self._subscriber is not None:
            self._subscriber.close(CLOSE_GOING_AWAY, "session over")
            # The socket and its subscriber hold each other: a cycle that left a closed
            # session's objects (about twenty) for a full collection to find.
            self._subscriber.detach()
            self._subscriber = None
