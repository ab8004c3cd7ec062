"""The relay's owned WebSocket write path, over real sockets with small kernel buffers.

One path for every byte: a subscriber writes at once while nothing is queued, queues
while the kernel's buffer is full, and the session's sender task finishes partial writes
and drains the queue. These tests read the far end with a WebSocket client parser, so a
frame written into the middle of another shows up as a parse failure or a wrong order.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import trio
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.frame_protocol import FrameProtocol, Opcode

from relay.connection import _send_loop
from relay.subscriber import Subscriber
from relay.wsframes import binary_frame, close_frame, ping_frame
from relay.wssocket import OwnedSocket, configure


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair whose relay side has a small send buffer, so writes fill it."""
    relay_side, client_side = socket.socketpair()
    relay_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client_side.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    configure(relay_side)
    client_side.setblocking(False)
    yield relay_side, client_side
    relay_side.close()
    client_side.close()


def _owned(sock: socket.socket) -> OwnedSocket:
    return OwnedSocket(sock, Connection(ConnectionType.SERVER), "127.0.0.1")


def _session(sock: socket.socket, limit: int) -> tuple[OwnedSocket, Subscriber]:
    """A socket with its session's subscriber attached, as the relay pairs them."""
    owned = _owned(sock)
    subscriber = Subscriber(limit=limit)
    owned.attach(subscriber)
    return owned, subscriber


class Reader:
    """The client's side: reads slowly and parses server frames (unmasked)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.protocol = FrameProtocol(client=True, extensions=[])
        self.frames: list[tuple[Opcode, bytes]] = []
        self._message = bytearray()

    async def read_some(self, size: int = 1024) -> None:
        await trio.lowlevel.wait_readable(self.sock)
        data = self.sock.recv(size)
        self.protocol.receive_bytes(data)
        for frame in self.protocol.received_frames():  # raises ParseFailed on a torn frame
            payload = frame.payload
            if frame.opcode in (Opcode.BINARY, Opcode.CONTINUATION):
                assert isinstance(payload, bytes | bytearray)
                self._message += payload
                if frame.message_finished:
                    self.frames.append((Opcode.BINARY, bytes(self._message)))
                    self._message.clear()
            elif frame.opcode is Opcode.CLOSE:
                assert isinstance(payload, tuple)
                self.frames.append((Opcode.CLOSE, str(payload[0]).encode()))
            else:
                assert isinstance(payload, bytes | bytearray)
                self.frames.append((frame.opcode, bytes(payload)))

    async def read_until(self, count: int) -> None:
        while len(self.frames) < count:
            await self.read_some()


async def test_frames_never_interleave_under_a_slow_reader(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    relay_side, client_side = pair
    owned, subscriber = _session(relay_side, 10_000)
    expected: list[tuple[Opcode, bytes]] = []
    full_seen = 0

    async def produce() -> None:
        """Everything a session sends, from the actor and the reader: frames of many sizes
        (most far larger than the buffer), answers, the relay's pings; a few at a time,
        while the client reads, so the kernel's buffer keeps filling and draining."""
        nonlocal full_seen
        for n in range(300):
            update = bytes([n % 251]) * (50 + 997 * (n % 7))
            subscriber.offer(update, lambda: b"resync")
            expected.append((Opcode.BINARY, update))
            if n % 5 == 0:
                answer = b"answer %d" % n
                subscriber.answer(answer)
                expected.append((Opcode.BINARY, answer))
            if n % 9 == 0:
                payload = n.to_bytes(8, "big")
                owned.control(ping_frame(payload))
                expected.append((Opcode.PING, payload))
            full_seen += owned.busy or subscriber.statistics().queued > 0
            if n % 3 == 0:
                await trio.lowlevel.checkpoint()
        subscriber.finish(4408, "bye")
        expected.append((Opcode.CLOSE, b"4408"))

    reader = Reader(client_side)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            # The session's scope: the sender cancels it after the close (not this one,
            # which still reads).
            session = trio.CancelScope()
            nursery.start_soon(_send_loop, owned, subscriber, session)
            nursery.start_soon(produce)
            await trio.lowlevel.checkpoint()
            while not expected or expected[-1][0] is not Opcode.CLOSE:
                await reader.read_some()
            await reader.read_until(len(expected))
    assert full_seen > 100  # the queue and partial writes were really exercised
    assert reader.frames == expected
    assert session.cancel_called
    assert subscriber.statistics().queued == 0
    assert not owned.busy


async def test_a_frame_started_by_the_fast_path_is_finished_before_a_resync(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A resync drops queued updates, never the rest of one already partly written."""
    relay_side, client_side = pair
    owned, subscriber = _session(relay_side, 2)
    big = b"B" * 200_000
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            subscriber.offer(big, lambda: b"full")  # partly written: the rest is held
            assert owned.busy
            for n in range(4):  # two fit in the queue, then a resync replaces them
                subscriber.offer(b"u%d" % n, lambda: b"full")
            nursery.start_soon(_send_loop, owned, subscriber, nursery.cancel_scope)
            reader = Reader(client_side)
            await reader.read_until(2)
            nursery.cancel_scope.cancel()
    assert reader.frames[0] == (Opcode.BINARY, big)
    assert reader.frames[1] == (Opcode.BINARY, b"full")
    assert subscriber.resyncs == 1


async def test_one_update_is_framed_once_for_every_subscriber() -> None:
    """The fan-out hands each subscriber the same payload; all of them queue the same
    frame object (built once), not a copy each."""
    pairs = [socket.socketpair() for _ in range(5)]
    try:
        subscribers = []
        for relay_side, _ in pairs:
            relay_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            configure(relay_side)
            _, subscriber = _session(relay_side, 8)
            subscriber.offer(b"x" * 200_000, lambda: b"full")  # fills the kernel's buffer
            subscribers.append(subscriber)
        update = b"the update"
        for subscriber in subscribers:
            subscriber.offer(update, lambda: b"full")
        queued = [await subscriber.next_frame() for subscriber in subscribers]
        assert queued[0] == binary_frame(update)
        assert all(frame is queued[0] for frame in queued)
    finally:
        for left, right in pairs:
            left.close()
            right.close()


def test_server_frames_follow_rfc_6455_lengths() -> None:
    for size in (0, 125, 126, 65535, 65536):
        payload = bytes(size)
        frame = binary_frame(payload)
        protocol = FrameProtocol(client=True, extensions=[])
        protocol.receive_bytes(frame)
        (parsed,) = list(protocol.received_frames())
        assert (parsed.opcode, parsed.payload, parsed.message_finished) == (
            Opcode.BINARY,
            payload,
            True,
        )
    long_reason = close_frame(1001, "é" * 100)  # cut to 123 bytes at a character boundary
    assert len(long_reason) <= 127
    protocol = FrameProtocol(client=True, extensions=[])
    protocol.receive_bytes(long_reason)
    (parsed,) = list(protocol.received_frames())
    assert parsed.payload[0] == 1001


async def test_writes_to_a_peer_that_hung_up_are_dropped(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    relay_side, client_side = pair
    owned, subscriber = _session(relay_side, 8)
    client_side.close()
    for _ in range(3):
        subscriber.offer(b"x" * 10_000, lambda: b"full")
    assert owned.gone
    with trio.fail_after(5):
        await owned.send(b"more")  # returns at once: nobody to write to
        assert await owned.receive() is None


async def test_an_ended_session_takes_fan_out_without_failing(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """The actor may fan out to a subscriber before it hears that the session ended and
    the door closed the socket: the frame goes nowhere, and the actor forgets it."""
    relay_side, _ = pair
    owned, subscriber = _session(relay_side, 8)
    relay_side.close()  # as the door does when the connection ends
    assert owned.write_nowait(b"x")  # EBADF: dropped, not raised into the actor
    owned.finished()
    assert not subscriber.offer(b"update", lambda: b"full")
    assert subscriber.closed


async def test_the_sender_starts_once_and_only_when_a_frame_has_to_wait(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Most connections never need a sender task: the kernel takes their frames at once.
    The session's starter runs the first time one must wait, and never twice."""
    relay_side, _ = pair
    owned, subscriber = _session(relay_side, 8)
    starts: list[int] = []
    subscriber.start_sender_with(lambda: starts.append(1))
    subscriber.offer(b"small", lambda: b"full")
    subscriber.answer(b"ack")
    assert starts == []  # both went straight to the socket
    subscriber.offer(b"x" * 200_000, lambda: b"full")  # in part: the rest must wait
    assert owned.busy
    assert starts == [1]
    subscriber.offer(b"queued", lambda: b"full")
    subscriber.finish(1000, "")
    assert starts == [1]


async def test_a_close_starts_the_sender_and_nothing_starts_one_after_the_session(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    relay_side, client_side = pair
    owned, subscriber = _session(relay_side, 8)
    reader = Reader(client_side)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            subscriber.start_sender_with(
                lambda: nursery.start_soon(_send_loop, owned, subscriber, nursery.cancel_scope)
            )
            subscriber.finish(4408, "bye")  # nothing else queued: only the close starts it
        subscriber.start_sender_with(None)  # as the session does once its nursery ends
        await reader.read_until(1)
    assert reader.frames == [(Opcode.CLOSE, b"4408")]
    subscriber.close(1001, "going away")  # after the session: queued, never started
    assert subscriber.statistics().closed


async def test_a_session_closed_by_the_relays_shutdown_starts_no_sender(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """The shutdown closes every session in one pass; each close goes straight out, so
    starting a sender for each (thousands at once) would only slow the relay's exit."""
    relay_side, client_side = pair
    owned, subscriber = _session(relay_side, 8)
    starts: list[int] = []
    subscriber.start_sender_with(lambda: starts.append(1))
    owned.going_away(1001, "relay shutting down")
    assert subscriber.closed
    assert starts == []
    reader = Reader(client_side)
    with trio.fail_after(5):
        await reader.read_until(1)
    assert reader.frames == [(Opcode.CLOSE, b"1001")]
